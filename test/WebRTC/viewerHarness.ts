import { resolve } from 'node:path';
import { CreateSignalingChannelCommand } from '@aws-sdk/client-kinesis-video';
import { test } from '@playwright/test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ChannelDiscovery } from '../../agent/aws/discovery.js';
import { SignalingPresigner } from '../../agent/aws/presigner.js';
import { BridgeServer } from '../../agent/bridge/bridgeServer.js';
import type { PageCounters, PageToAgent, ViewerConfig } from '../../agent/bridge/controlProtocol.js';
import { CHROMIUM_FLAGS } from '../../agent/browser/viewerBrowser.js';
import { agentChromiumPath } from '../../agent/config.js';
import type { WireFrame } from '../../agent/bridge/wire.js';
import { createLogger, type Logger } from '../../agent/log.js';
import {
  DEFAULT_CHANNEL_NAME,
  DEFAULT_EMULATOR_CREDENTIALS,
  startEmulator,
  type Emulator,
  type EmulatorOptions,
} from '../../emulator/server.js';
import { serveStatic } from '../../scripts/lib/staticServer.js';
import type { MasterState } from '../../WebRTC/masterState.js';
import { controlClient } from '../emulator/support.js';

/**
 * The viewer page (`page/`) with real parts around it: the agent's BridgeServer and presigner, the emulator,
 * and the reference master page with a fake camera. Stands in for the agent's control wiring (hello →
 * config, presign, ice-servers → config) and records every frame and control message with its arrival time.
 */

export const WEB_ROOT = resolve(import.meta.dirname, '../../dist/web');
export const CLIENT_ID = 'viewer-page-test';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/lib/chromium/chromium';
/** The viewer page runs in the agent's own Chromium (the headless shell unless CHROMIUM_PATH says otherwise). */
const VIEWER_CHROMIUM = agentChromiumPath();
const credentials = () => Promise.resolve({ ...DEFAULT_EMULATOR_CREDENTIALS });

export interface Received<T> {
  at: number;
  value: T;
}

/** What the page exposes as `window.viewerStatus` (this file is compiled without the DOM library). */
export interface ViewerStatus {
  state: { signaling: string; peer: string; ice: string; master: string };
  sessions: number;
  heartbeats: number;
  tracks: { video?: { framesForwarded: number; framesSkipped: number } };
  counters: PageCounters;
}

export interface HarnessOptions {
  emulator?: EmulatorOptions;
  /** Create the channel with this MessageTtlSeconds (5–120) instead of using the seeded one (60 s). */
  messageTtlSeconds?: number;
  /** Config fields for the page, e.g. `signalingMaxAgeMs`. */
  config?: Partial<ViewerConfig>;
}

/**
 * The reference master page in its own Chromium (fake camera and microphone), which tests can stop
 * (navigate away: signaling and peers close) and start again, or reload.
 */
export class MasterPage {
  private constructor(
    private readonly browser: Browser,
    readonly page: Page,
    private readonly url: string,
    private readonly closeServer: () => Promise<void>,
  ) {}

  static async launch(emulator: Emulator, channel: string, logger: Logger): Promise<MasterPage> {
    const server = await serveStatic(WEB_ROOT);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        ...CHROMIUM_FLAGS,
        '--use-fake-ui-for-media-stream',
        '--use-fake-device-for-media-stream=fps=30',
      ],
    });
    const page = await browser.newPage();
    page.on('pageerror', (err) => logger.error({ err: err.message }, 'master page error'));
    const query = new URLSearchParams({
      endpoint: emulator.url,
      region: emulator.region,
      channel,
      ...DEFAULT_EMULATOR_CREDENTIALS,
      autostart: '1',
      maintainResolution: '1',
    });
    const master = new MasterPage(browser, page, `${server.url}/WebRTC/index.html?${query.toString()}`, () =>
      server.close(),
    );
    await master.start();
    return master;
  }

  /** Opens the master page and waits until its signaling is open. */
  async start(): Promise<void> {
    await this.page.goto(this.url);
    await this.waitForSignaling();
  }

  /** The master goes away: signaling socket and peer connections close with the page. */
  async stop(): Promise<void> {
    await this.page.goto('about:blank');
  }

  async reload(): Promise<void> {
    await this.page.reload();
    await this.waitForSignaling();
  }

  async waitForSignaling(): Promise<void> {
    const state = () => (globalThis as unknown as { masterState?: MasterState }).masterState;
    const outcome = await this.page.waitForFunction(
      () => {
        const s = (globalThis as unknown as { masterState?: MasterState }).masterState;
        return s?.signaling === 'open' || s?.signaling === 'error' || s?.error !== undefined
          ? s.signaling
          : '';
      },
      undefined,
      { timeout: 30_000, polling: 50 },
    );
    if ((await outcome.jsonValue()) !== 'open') {
      const s = await this.page.evaluate(state);
      throw new Error(`the master page did not connect: ${s?.error ?? s?.signaling}`);
    }
  }

  async waitForViewerConnected(timeoutMs: number): Promise<string> {
    const id = await this.page.waitForFunction(
      () =>
        Object.entries((globalThis as unknown as { masterState: MasterState }).masterState.viewers).find(
          ([, v]) => v.connectionState === 'connected',
        )?.[0],
      undefined,
      { timeout: timeoutMs, polling: 250 },
    );
    return (await id.jsonValue()) as string;
  }

  async close(): Promise<void> {
    await this.browser.close().catch(() => undefined);
    await this.closeServer();
  }
}

export class ViewerHarness {
  readonly frames: Array<Received<WireFrame>> = [];
  readonly control: Array<Received<PageToAgent>> = [];
  /** Answer `ice-servers` requests (tests switch this off to see the fallback). */
  answerIceServers = true;

  private constructor(
    readonly emulator: Emulator,
    readonly channelName: string,
    readonly bridge: BridgeServer,
    readonly master: MasterPage,
    private readonly browser: Browser,
    readonly page: Page,
    readonly logger: Logger,
  ) {}

  static async start(options: HarnessOptions = {}): Promise<ViewerHarness> {
    const logger = createLogger({ level: 'warn' });
    const emulator = await startEmulator({ port: 0, ...options.emulator });
    let channelName = DEFAULT_CHANNEL_NAME;
    if (options.messageTtlSeconds !== undefined) {
      channelName = 'viewer-recovery-channel';
      const kvs = controlClient(emulator);
      await kvs.send(
        new CreateSignalingChannelCommand({
          ChannelName: channelName,
          SingleMasterConfiguration: { MessageTtlSeconds: options.messageTtlSeconds },
        }),
      );
      kvs.destroy();
    }
    const discovery = new ChannelDiscovery({ region: emulator.region, endpoint: emulator.url, credentials });
    const channel = await discovery.describeChannel(channelName);
    discovery.destroy();
    const presigner = new SignalingPresigner({
      region: emulator.region,
      credentials,
      allowedEndpoint: channel.wssEndpoint,
      channelARN: channel.channelARN,
      clientId: CLIENT_ID,
    });
    const bridge = new BridgeServer({ webRoot: WEB_ROOT, logger });
    await bridge.listen();
    const master = await MasterPage.launch(emulator, channelName, logger);
    const browser = await chromium.launch({ executablePath: VIEWER_CHROMIUM, args: [...CHROMIUM_FLAGS] });
    const page = await browser.newPage();
    page.on('pageerror', (err) => logger.error({ err: err.message }, 'viewer page error'));
    const harness = new ViewerHarness(emulator, channelName, bridge, master, browser, page, logger);
    const sendConfig = () =>
      bridge.sendControl({
        type: 'config',
        session: CLIENT_ID,
        channelARN: channel.channelARN,
        channelEndpoint: channel.wssEndpoint,
        region: emulator.region,
        clientId: CLIENT_ID,
        iceServers: [],
        // Long, so that key frames come only from the requests under test.
        keyframeIntervalMs: 600_000,
        frameUrl: bridge.frameUrl,
        ...options.config,
      });
    bridge.on('frame', (f) => harness.frames.push({ at: Date.now(), value: f }));
    bridge.on('control', (msg) => {
      harness.control.push({ at: Date.now(), value: msg });
      if (msg.type === 'hello') sendConfig();
      else if (msg.type === 'ice-servers' && harness.answerIceServers) sendConfig();
      else if (msg.type === 'presign') {
        presigner
          .presign(msg.endpoint, msg.queryParams, msg.date === undefined ? undefined : new Date(msg.date))
          .then((url) => bridge.sendControl({ type: 'presigned', id: msg.id, url }))
          .catch((err: unknown) =>
            bridge.sendControl({ type: 'presign-failed', id: msg.id, message: String(err) }),
          );
      }
    });
    await page.goto(bridge.pageUrl);
    return harness;
  }

  async close(): Promise<void> {
    await this.browser.close();
    await this.bridge.close();
    await this.master.close();
    await this.emulator.stop();
  }

  status(): Promise<ViewerStatus> {
    return this.page.evaluate(
      () =>
        JSON.parse(
          JSON.stringify((globalThis as unknown as { viewerStatus: ViewerStatus }).viewerStatus),
        ) as ViewerStatus,
    );
  }

  framesOf(kind: 'video' | 'audio', predicate: (f: WireFrame) => boolean = () => true): number {
    return this.frames.filter((f) => f.value.header.kind === kind && predicate(f.value)).length;
  }

  /** Control messages of one type, received at or after `since`. */
  messages<T extends PageToAgent['type']>(
    type: T,
    since = 0,
  ): Array<Received<Extract<PageToAgent, { type: T }>>> {
    return this.control.filter(
      (m): m is Received<Extract<PageToAgent, { type: T }>> => m.value.type === type && m.at >= since,
    );
  }

  /** Log lines from the page that contain `text`, received at or after `since`. */
  logs(text: string, since = 0): Array<Received<Extract<PageToAgent, { type: 'log' }>>> {
    return this.messages('log', since).filter((m) => m.value.msg.includes(text));
  }

  /** First video frame received at or after `since` (ms epoch), if any. */
  firstVideoFrameAfter(since: number): Received<WireFrame> | undefined {
    return this.frames.find((f) => f.at >= since && f.value.header.kind === 'video');
  }

  /** The longest pause between consecutive video frames received in [from, to]. */
  maxVideoGapMs(from: number, to: number): number {
    const times = this.frames
      .filter((f) => f.value.header.kind === 'video' && f.at >= from && f.at <= to)
      .map((f) => f.at);
    let gap = times.length > 0 ? Math.max(times[0]! - from, to - times.at(-1)!) : to - from;
    for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i]! - times[i - 1]!);
    return gap;
  }
}

/** A measured figure: printed with the run and kept as the test's `measured` annotation. */
export function measured(description: string): void {
  test.info().annotations.push({ type: 'measured', description });
  process.stdout.write(`measured: ${description}\n`);
}
