import { resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CHROMIUM_FLAGS } from '../../agent/browser/viewerBrowser.js';
import { createLogger, type Logger } from '../../agent/log.js';
import type { MasterState } from '../../WebRTC/masterState.js';
import { serveStatic } from './staticServer.js';

export type { MasterState } from '../../WebRTC/masterState.js';

export interface MasterOptions {
  /** Control-plane endpoint (`http://127.0.0.1:PORT` for the emulator); empty for real AWS. */
  endpoint: string;
  region: string;
  channel: string;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  headed?: boolean;
  maintainResolution?: boolean;
  /** Built pages; default `dist/web` (run `vite build` first). */
  webRoot?: string;
  logger?: Logger;
}

export interface MasterHandle {
  state(): Promise<MasterState>;
  /** Resolves with the id of the first viewer whose peer connection is `connected`. */
  waitForViewerConnected(timeoutMs: number): Promise<string>;
  /** framesEncoded for one viewer, or summed over all of them. */
  framesEncoded(clientId?: string): Promise<number>;
  /** Reloads the master page (its peer connections and signaling go with it); resolves once signaling is open again. */
  reload(): Promise<void>;
  /**
   * Stops (`false`) or resumes (`true`) sending video on every peer connection (RTCRtpSender.replaceTrack):
   * the peer stays connected but no video flows — a frozen master. Resolves with the number of senders changed.
   */
  setVideoSending(sending: boolean): Promise<number>;
  /** Scales the video down by `factor` on every sender (1 = full size): a real mid-call resolution change. */
  setVideoScale(factor: number): Promise<number>;
  close(): Promise<void>;
}

/** What the page defines on `window` (this file is compiled without the DOM library). */
interface PageGlobals {
  masterState: MasterState;
}

const ROOT = resolve(import.meta.dirname, '../..');

/** The agent's measured flags plus a fake camera at 30 fps (the default is 20) and microphone. */
const MASTER_FLAGS = [
  ...CHROMIUM_FLAGS,
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream=fps=30',
];

/**
 * The reference master page (`WebRTC/`) in its own Chromium with a fake camera and microphone, started through
 * its query parameters. The page's log goes into a pino logger.
 */
export async function launchMaster(options: MasterOptions): Promise<MasterHandle> {
  const log = options.logger ?? createLogger({ level: 'warn' }).child({ component: 'master' });
  const server = await serveStatic(options.webRoot ?? resolve(ROOT, 'dist/web'));
  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/lib/chromium/chromium',
      headless: !options.headed,
      args: MASTER_FLAGS,
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
    });
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('console', (msg) => {
      const level = msg.type() === 'error' ? 'error' : msg.type() === 'warning' ? 'warn' : 'debug';
      log[level]({ source: 'console' }, msg.text());
    });
    page.on('pageerror', (err) => log.error({ err: err.message }, 'master page error'));
    await page.exposeFunction('masterLog', (level: unknown, msg: unknown) => {
      const l = level === 'error' ? 'error' : level === 'warn' ? 'warn' : 'info';
      log[l](String(msg));
    });
    const query = new URLSearchParams({
      endpoint: options.endpoint,
      region: options.region,
      channel: options.channel,
      accessKeyId: options.credentials.accessKeyId,
      secretAccessKey: options.credentials.secretAccessKey,
      ...(options.credentials.sessionToken ? { sessionToken: options.credentials.sessionToken } : {}),
      autostart: '1',
      maintainResolution: options.maintainResolution ? '1' : '0',
    });
    await page.goto(`${server.url}/WebRTC/index.html?${query.toString()}`);
    await waitForSignalingOpen(page);
    log.info('master connected to signaling');
    return handle(browser, page, () => server.close());
  } catch (err) {
    await browser?.close().catch(() => undefined);
    await server.close();
    throw err;
  }
}

async function waitForSignalingOpen(page: Page): Promise<void> {
  await page.waitForFunction(
    () => {
      const s = (globalThis as unknown as Partial<PageGlobals>).masterState;
      return s?.signaling === 'open' || s?.signaling === 'error';
    },
    undefined,
    { timeout: 30_000, polling: 50 },
  );
  const state = await readState(page);
  if (state.signaling !== 'open')
    throw new Error(`the master page did not connect: ${state.error ?? state.signaling}`);
}

/** Runs `fn(arg)` in the page with `this` = every live RTCRtpSender; returns its number result. */
async function onSenders(page: Page, arg: boolean | number, fn: string): Promise<number> {
  const cdp = await page.context().newCDPSession(page);
  try {
    const proto = await cdp.send('Runtime.evaluate', { expression: 'RTCRtpSender.prototype' });
    const found = await cdp.send('Runtime.queryObjects', { prototypeObjectId: proto.result.objectId! });
    const result = await cdp.send('Runtime.callFunctionOn', {
      objectId: found.objects.objectId!,
      awaitPromise: true,
      returnByValue: true,
      arguments: [{ value: arg }],
      functionDeclaration: fn,
    });
    return Number(result.result.value);
  } finally {
    await cdp.detach().catch(() => undefined);
  }
}

/**
 * The page keeps its RTCRtpSenders to itself: find them through the DevTools protocol (every live instance of
 * the prototype) so that the page under test stays unmodified. Removed tracks are kept on the page to put back.
 */
async function setVideoSending(page: Page, sending: boolean): Promise<number> {
  return onSenders(
    page,
    sending,
    `async function (sending) {
        const held = (globalThis.__heldVideoTracks ??= new Map());
        let changed = 0;
        for (const sender of this) {
          if (!sending && sender.track && sender.track.kind === 'video') {
            held.set(sender, sender.track);
            await sender.replaceTrack(null);
            changed++;
          } else if (sending && held.has(sender)) {
            const track = held.get(sender);
            held.delete(sender);
            // A sender of a peer connection closed meanwhile refuses: nothing to resume there.
            try {
              await sender.replaceTrack(track);
              changed++;
            } catch {}
          }
        }
        return changed;
      }`,
  );
}

/** `scaleResolutionDownBy` on every video sender: a real resolution change (new SPS, new key frame). */
async function setVideoScale(page: Page, factor: number): Promise<number> {
  return onSenders(
    page,
    factor,
    `async function (factor) {
        let changed = 0;
        for (const sender of this) {
          if (!sender.track || sender.track.kind !== 'video') continue;
          const params = sender.getParameters();
          if (!params.encodings || params.encodings.length === 0) continue;
          for (const e of params.encodings) e.scaleResolutionDownBy = factor;
          await sender.setParameters(params);
          changed++;
        }
        return changed;
      }`,
  );
}

function readState(page: Page): Promise<MasterState> {
  return page.evaluate(
    () => JSON.parse(JSON.stringify((globalThis as unknown as PageGlobals).masterState)) as MasterState,
  );
}

function handle(browser: Browser, page: Page, closeServer: () => Promise<void>): MasterHandle {
  let closing: Promise<void> | undefined;
  return {
    state: () => readState(page),
    async waitForViewerConnected(timeoutMs) {
      const id = await page.waitForFunction(
        () =>
          Object.entries((globalThis as unknown as PageGlobals).masterState.viewers).find(
            ([, v]) => v.connectionState === 'connected',
          )?.[0],
        undefined,
        { timeout: timeoutMs, polling: 250 },
      );
      return (await id.jsonValue()) as string;
    },
    async framesEncoded(clientId) {
      const { viewers } = await readState(page);
      if (clientId !== undefined) return viewers[clientId]?.framesEncoded ?? 0;
      return Object.values(viewers).reduce((sum, v) => sum + v.framesEncoded, 0);
    },
    async reload() {
      await page.reload();
      await waitForSignalingOpen(page);
    },
    setVideoSending: (sending) => setVideoSending(page, sending),
    setVideoScale: (factor) => setVideoScale(page, factor),
    close() {
      closing ??= (async () => {
        await browser.close().catch(() => undefined);
        await closeServer();
      })();
      return closing;
    },
  };
}
