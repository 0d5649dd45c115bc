import { resolve } from 'node:path';
import { expect, test } from '@playwright/test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ChannelDiscovery } from '../../agent/aws/discovery.js';
import { SignalingPresigner } from '../../agent/aws/presigner.js';
import { BridgeServer } from '../../agent/bridge/bridgeServer.js';
import type { PageToAgent } from '../../agent/bridge/controlProtocol.js';
import type { WireFrame } from '../../agent/bridge/wire.js';
import { createLogger } from '../../agent/log.js';
import {
  DEFAULT_CHANNEL_NAME,
  DEFAULT_EMULATOR_CREDENTIALS,
  startEmulator,
  type Emulator,
} from '../../emulator/server.js';
import { launchMaster, type MasterHandle } from '../../scripts/lib/masterBrowser.js';

/**
 * The viewer page (`page/`) with real parts around it: the agent's BridgeServer and presigner, the emulator,
 * and the reference master with a fake camera. This proves the page's side of the protocols; the agent's
 * own wiring is proven by the e2e tests.
 */
test.describe.configure({ mode: 'serial' });

const WEB_ROOT = resolve(import.meta.dirname, '../../dist/web');
const CLIENT_ID = 'viewer-page-test';
const logger = createLogger({ level: 'warn' });
const credentials = () => Promise.resolve({ ...DEFAULT_EMULATOR_CREDENTIALS });

let emulator: Emulator;
let master: MasterHandle;
let bridge: BridgeServer;
let browser: Browser;
let page: Page;
const frames: WireFrame[] = [];
const control: PageToAgent[] = [];

function framesOf(kind: 'video' | 'audio', predicate: (f: WireFrame) => boolean = () => true): number {
  return frames.filter((f) => f.header.kind === kind && predicate(f)).length;
}

function events(event: string): number {
  return control.filter((m) => m.type === 'signaling-event' && m.event === event).length;
}

test.beforeAll(async () => {
  test.setTimeout(90_000);
  emulator = await startEmulator({ port: 0 });
  master = await launchMaster({
    endpoint: emulator.url,
    region: emulator.region,
    channel: DEFAULT_CHANNEL_NAME,
    credentials: { ...DEFAULT_EMULATOR_CREDENTIALS },
    maintainResolution: true,
    webRoot: WEB_ROOT,
    logger,
  });
  const discovery = new ChannelDiscovery({ region: emulator.region, endpoint: emulator.url, credentials });
  const channel = await discovery.describeChannel(DEFAULT_CHANNEL_NAME);
  const presigner = new SignalingPresigner({
    region: emulator.region,
    credentials,
    allowedEndpoint: channel.wssEndpoint,
    channelARN: channel.channelARN,
  });
  bridge = new BridgeServer({ webRoot: WEB_ROOT, logger });
  await bridge.listen();
  bridge.on('frame', (f) => frames.push(f));
  bridge.on('control', (msg) => {
    control.push(msg);
    if (msg.type === 'hello') {
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
      });
    } else if (msg.type === 'presign') {
      presigner
        .presign(msg.endpoint, msg.queryParams, msg.date === undefined ? undefined : new Date(msg.date))
        .then((url) => bridge.sendControl({ type: 'presigned', id: msg.id, url }))
        .catch((err: unknown) =>
          bridge.sendControl({ type: 'presign-failed', id: msg.id, message: String(err) }),
        );
    }
  });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/lib/chromium/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking'],
  });
  page = await browser.newPage();
  page.on('pageerror', (err) => logger.error({ err: err.message }, 'viewer page error'));
  await page.goto(bridge.pageUrl);
});

test.afterAll(async () => {
  await browser?.close();
  await bridge?.close();
  await master?.close();
  await emulator?.stop();
});

test('receives H.264 and Opus from the master and forwards every frame to the agent', async () => {
  const viewer = await master.waitForViewerConnected(30_000);
  expect(viewer).toBe(CLIENT_ID);
  await expect.poll(() => framesOf('video'), { timeout: 20_000 }).toBeGreaterThan(90);
  await expect.poll(() => framesOf('audio')).toBeGreaterThan(100);

  const video = frames.filter((f) => f.header.kind === 'video');
  const audio = frames.filter((f) => f.header.kind === 'audio');
  expect(new Set(video.map((f) => f.header.codec))).toEqual(new Set(['h264']));
  expect(new Set(audio.map((f) => f.header.codec))).toEqual(new Set(['opus']));
  // Recording starts with a key frame (requested when the frame socket opened), at the camera's size.
  expect(video[0]!.header.key).toBe(true);
  expect(video[0]!.header).toMatchObject({ width: 1280, height: 720 });
  // Annex B with in-band SPS (NAL type 7) on the key frame.
  const first = video[0]!.payload;
  expect([...first.subarray(0, 4)]).toEqual([0, 0, 0, 1]);
  expect(first[4]! & 0x1f).toBe(7);
  // Sequence numbers from 0 without gaps: nothing skipped between worker and agent.
  expect(video.map((f) => f.header.seq)).toEqual(video.map((_, i) => i));
  expect(audio.map((f) => f.header.seq)).toEqual(audio.map((_, i) => i));
  // Receive times are wall clock (converted in the worker), not page-relative.
  expect(Math.abs(video.at(-1)!.header.receiveTimeMs - Date.now())).toBeLessThan(5_000);
  // Opus: 20 ms packets on a 48 kHz clock.
  expect(audio[1]!.header.rtpTimestamp - audio[0]!.header.rtpTimestamp).toBe(960);

  const states = control.filter((m) => m.type === 'state');
  expect(states.some((s) => s.signaling === 'open' && s.peer === 'connected')).toBe(true);
  await expect
    .poll(() => control.some((m) => m.type === 'stats' && (m.video?.framesForwarded ?? 0) > 0))
    .toBe(true);
  expect(control.filter((m) => m.type === 'log' && m.level === 'error')).toEqual([]);
});

test('a key frame request from the agent produces a new key frame', async () => {
  const before = framesOf('video', (f) => f.header.key);
  expect(bridge.requestKeyFrame()).toBe(true);
  await expect
    .poll(() => framesOf('video', (f) => f.header.key), { timeout: 10_000 })
    .toBeGreaterThan(before);
});

test('GO_AWAY: signaling reconnects while the call and the frames go on', async () => {
  const sessions = await page.evaluate(
    () => (globalThis as unknown as { viewerStatus: { sessions: number } }).viewerStatus.sessions,
  );
  expect(emulator.admin.send(DEFAULT_CHANNEL_NAME, CLIENT_ID, 'GO_AWAY')).toBe(true);
  await expect.poll(() => events('go-away')).toBe(1);
  const count = frames.length;
  await expect.poll(() => emulator.admin.connections(DEFAULT_CHANNEL_NAME).viewers).toContain(CLIENT_ID);
  await expect.poll(() => frames.length).toBeGreaterThan(count + 60);
  expect(
    await page.evaluate(
      () => (globalThis as unknown as { viewerStatus: { sessions: number } }).viewerStatus.sessions,
    ),
  ).toBe(sessions);
  await expect(page.locator('dd[data-field="signaling"]')).toHaveText('open');
});

test('RECONNECT_ICE_SERVER: reported, and a new session (fresh config) reconnects the call', async () => {
  const hellos = control.filter((m) => m.type === 'hello').length;
  expect(emulator.admin.send(DEFAULT_CHANNEL_NAME, CLIENT_ID, 'RECONNECT_ICE_SERVER')).toBe(true);
  await expect.poll(() => events('reconnect-ice-server')).toBe(1);
  await expect
    .poll(() => control.filter((m) => m.type === 'hello').length, { timeout: 15_000 })
    .toBe(hellos + 1);
  const count = framesOf('video');
  await expect.poll(() => framesOf('video'), { timeout: 30_000 }).toBeGreaterThan(count + 60);
  expect(await master.waitForViewerConnected(10_000)).toBe(CLIENT_ID);
});

test('a dropped signaling socket under a live call: only signaling reconnects, frames go on', async () => {
  const hellos = control.filter((m) => m.type === 'hello').length;
  const mark = control.length;
  expect(emulator.admin.drop(DEFAULT_CHANNEL_NAME, CLIENT_ID)).toBe(true);
  const statesSince = () => control.slice(mark).filter((m) => m.type === 'state');
  await expect
    .poll(() => statesSince().some((m) => m.signaling === 'closed'), { timeout: 15_000 })
    .toBe(true);
  await expect.poll(() => statesSince().at(-1)?.signaling, { timeout: 15_000 }).toBe('open');
  expect(emulator.admin.connections(DEFAULT_CHANNEL_NAME).viewers).toContain(CLIENT_ID);
  const count = frames.length;
  await expect.poll(() => frames.length).toBeGreaterThan(count + 60);
  expect(control.filter((m) => m.type === 'hello').length, 'no new session').toBe(hellos);
});
