import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { WebSocket } from 'ws';
import { BridgeServer, type BridgeServerOptions } from '../../../agent/bridge/bridgeServer.js';
import type { PageToAgent } from '../../../agent/bridge/controlProtocol.js';
import {
  encodeFrame,
  FRAME_HEADER_BYTES,
  MAX_FRAME_PAYLOAD_BYTES,
  WIRE_VERSION,
  type FrameHeader,
  type WireFrame,
} from '../../../agent/bridge/wire.js';
import { createLogger } from '../../../agent/log.js';
import { AgentMetrics } from '../../../agent/ops/metrics.js';

let bridge: BridgeServer;
let webRoot: string;

test.beforeEach(async () => {
  webRoot = await mkdtemp(join(tmpdir(), 'bridge-web-'));
  await mkdir(join(webRoot, 'page'));
  await writeFile(join(webRoot, 'page', 'index.html'), '<!doctype html><title>viewer</title>');
  bridge = new BridgeServer({ webRoot, logger: createLogger({ level: 'silent' }) });
  await bridge.listen();
});

test.afterEach(async () => {
  await bridge.close();
  await rm(webRoot, { recursive: true, force: true });
});

const header: FrameHeader = {
  kind: 'video',
  key: true,
  codec: 'h264',
  rtpTimestamp: 4_294_967_000,
  receiveTimeMs: 1_700_000_000_123.5,
  ssrc: 0xdeadbeef,
  width: 1280,
  height: 720,
  seq: 7,
};

function open(url: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { origin: bridge.origin, ...headers } });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

test('serves the page and passes well-formed frames through intact', async () => {
  const page = await fetch(`${bridge.origin}/page/index.html`);
  expect(page.status).toBe(200);
  expect(await page.text()).toContain('viewer');

  const frames: WireFrame[] = [];
  bridge.on('frame', (f) => frames.push(f));
  const ws = await open(`${bridge.frameUrl}&kind=video`);
  const payload = new Uint8Array([0, 0, 0, 1, 0x67, 1, 2, 3]);
  ws.send(encodeFrame(header, payload));
  await expect.poll(() => frames.length).toBe(1);
  expect(frames[0]!.header).toEqual(header);
  expect([...frames[0]!.payload]).toEqual([...payload]);
  ws.close();
});

test('refuses sockets without the token, from another origin or on unknown paths', async () => {
  const base = bridge.frameUrl.replace(/token=[0-9a-f]+/, 'token=');
  await expect(open(`${base}${'0'.repeat(48)}&kind=video`)).rejects.toThrow('HTTP 401');
  await expect(open(`${bridge.frameUrl}&kind=video`, { origin: 'http://evil.example' })).rejects.toThrow(
    'HTTP 403',
  );
  await expect(open(`${bridge.frameUrl}&kind=data`)).rejects.toThrow('HTTP 403');
  await expect(open(bridge.frameUrl.replace('/frames', '/other'))).rejects.toThrow('HTTP 403');
  expect(bridge.stats().connectionsRefused).toBe(4);
});

test('rejects and counts malformed frames without dropping the connection', async () => {
  const frames: WireFrame[] = [];
  bridge.on('frame', (f) => frames.push(f));
  const ws = await open(`${bridge.frameUrl}&kind=video`);
  const good = new Uint8Array(encodeFrame(header, new Uint8Array([1, 2, 3])));
  const truncated = good.slice(0, 20);
  const badVersion = good.slice();
  badVersion[0] = 9;
  const wrongLength = new Uint8Array([...good, 4, 5]);
  const audioOnVideo = encodeFrame({ ...header, kind: 'audio', codec: 'opus' }, new Uint8Array([1]));
  ws.send(truncated);
  ws.send(badVersion);
  ws.send(wrongLength);
  ws.send(audioOnVideo);
  ws.send('not binary');
  ws.send(good);
  await expect.poll(() => frames.length).toBe(1);
  const stats = bridge.stats();
  expect(stats.framesRejected).toBe(5);
  expect(stats.framesAccepted).toBe(1);
  expect(ws.readyState).toBe(WebSocket.OPEN);
  ws.close();
});

test('validates control messages and forwards valid ones', async () => {
  const messages: PageToAgent[] = [];
  bridge.on('control', (m) => messages.push(m));
  const ws = await open(bridge.frameUrl.replace('/frames', '/control'));
  ws.send('{not json');
  ws.send(JSON.stringify({ type: 'presign', id: 'x' }));
  ws.send(JSON.stringify({ type: 'launch-missiles' }));
  ws.send(JSON.stringify({ type: 'hello', userAgent: 'test' }));
  await expect.poll(() => messages.length).toBe(1);
  expect(messages[0]).toEqual({ type: 'hello', userAgent: 'test' });
  expect(bridge.stats().controlRejected).toBe(3);

  const received: unknown[] = [];
  ws.on('message', (d) => received.push(JSON.parse((d as Buffer).toString('utf8'))));
  bridge.sendControl({ type: 'stop' });
  await expect.poll(() => received).toEqual([{ type: 'stop' }]);
  ws.close();
});

test('frames after stopAcceptingFrames are refused', async () => {
  const frames: WireFrame[] = [];
  bridge.on('frame', (f) => frames.push(f));
  const ws = await open(`${bridge.frameUrl}&kind=video`);
  bridge.stopAcceptingFrames();
  ws.send(encodeFrame(header, new Uint8Array([1])));
  await expect.poll(() => bridge.stats().framesRejected).toBe(1);
  expect(frames).toHaveLength(0);
  ws.close();
});

test('asks the video worker for a key frame', async () => {
  const ws = await open(`${bridge.frameUrl}&kind=video`);
  const got: unknown[] = [];
  ws.on('message', (d) => got.push(JSON.parse((d as Buffer).toString('utf8'))));
  await expect.poll(() => bridge.requestKeyFrame()).toBe(true);
  await expect.poll(() => got).toEqual([{ type: 'request-keyframe' }]);
  ws.close();
});

/** Replaces the default bridge with one built from `options` (limits, clock, metrics). */
async function rebuild(options: Partial<BridgeServerOptions>): Promise<void> {
  await bridge.close();
  bridge = new BridgeServer({ webRoot, logger: createLogger({ level: 'silent' }), ...options });
  await bridge.listen();
}

function closed(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)));
}

test('a frame beyond MAX_FRAME_PAYLOAD_BYTES closes its socket (ws maxPayload) and is counted', async () => {
  const ws = await open(`${bridge.frameUrl}&kind=video`);
  const code = closed(ws);
  ws.send(new Uint8Array(FRAME_HEADER_BYTES + MAX_FRAME_PAYLOAD_BYTES + 1));
  expect(await code).toBe(1009);
  await expect.poll(() => bridge.stats().rejectsByReason.frame_too_large).toBe(1);
  expect(bridge.stats()).toMatchObject({ framesRejected: 1, socketsClosed: 1 });
  // The largest allowed frame still passes.
  const frames: WireFrame[] = [];
  bridge.on('frame', (f) => frames.push(f));
  const again = await open(`${bridge.frameUrl}&kind=video`);
  again.send(encodeFrame(header, new Uint8Array(MAX_FRAME_PAYLOAD_BYTES)));
  await expect.poll(() => frames.length).toBe(1);
  again.close();
});

test('frames beyond the rate are dropped and counted; a socket flooding far beyond is closed', async () => {
  let now = 0;
  const metrics = new AgentMetrics({ defaultMetrics: false });
  await rebuild({
    now: () => now,
    limits: { framesPerSecond: 100, frameBurst: 10, floodFactor: 2 },
    metrics: metrics.channel('cam'),
  });
  const frames: WireFrame[] = [];
  bridge.on('frame', (f) => frames.push(f));
  const ws = await open(`${bridge.frameUrl}&kind=video`);
  const frame = encodeFrame(header, new Uint8Array([1, 2, 3]));
  // The clock stands still: the burst passes, the next 5 are dropped.
  for (let i = 0; i < 15; i++) ws.send(frame);
  await expect.poll(() => bridge.stats().framesRejected).toBe(5);
  expect(frames).toHaveLength(10);
  expect(bridge.stats().rejectsByReason.frame_rate_limited).toBe(5);
  // 100 ms later 10 more tokens: a paced sender is never dropped.
  now += 100;
  for (let i = 0; i < 10; i++) ws.send(frame);
  await expect.poll(() => frames.length).toBe(20);
  expect(bridge.stats().framesRejected).toBe(5);
  // Far beyond: the excess (decaying at 100/s) passes 2 × 100 → closed with 1008.
  const code = closed(ws);
  for (let i = 0; i < 250; i++) ws.send(frame);
  expect(await code).toBe(1008);
  expect(bridge.stats().socketsClosed).toBe(1);
  expect(bridge.stats().rejectsByReason.socket_flooding).toBe(1);
  const text = await metrics.render();
  expect(text).toMatch(
    /kvs_agent_frames_dropped_total\{channel="cam",kind="video",cause="rate_limited"\} \d+/,
  );
  expect(text).toContain('kvs_agent_frames_total{channel="cam",kind="video"} 20');
  expect(text).toContain('kvs_agent_bridge_rejected_total{channel="cam",reason="socket_flooding"} 1');
});

test('control messages over 64 KiB or over the rate are dropped and counted; the socket stays open', async () => {
  let now = 0;
  await rebuild({ now: () => now, limits: { controlPerSecond: 10, controlBurst: 5 } });
  const messages: PageToAgent[] = [];
  bridge.on('control', (m) => messages.push(m));
  const ws = await open(bridge.frameUrl.replace('/frames', '/control'));
  ws.send(JSON.stringify({ type: 'log', level: 'info', msg: 'x'.repeat(64 * 1024) }));
  ws.send(Buffer.from('{"type":"hello","userAgent":"binary"}'));
  ws.send(JSON.stringify({ type: 'hello', userAgent: 'ok' }));
  await expect.poll(() => messages.length).toBe(1);
  expect(bridge.stats().rejectsByReason).toMatchObject({ control_oversized: 1, control_malformed: 1 });
  // 2 of the burst of 5 are left: 2 pass, 3 are dropped.
  for (let i = 0; i < 5; i++) ws.send(JSON.stringify({ type: 'hello', userAgent: `u${i}` }));
  await expect.poll(() => bridge.stats().controlRejected).toBe(5);
  expect(messages).toHaveLength(3);
  expect(bridge.stats().rejectsByReason.control_rate_limited).toBe(3);
  expect(bridge.stats().controlAccepted).toBe(3);
  now += 1000;
  ws.send(JSON.stringify({ type: 'hello', userAgent: 'later' }));
  await expect.poll(() => messages.length).toBe(4);
  expect(ws.readyState).toBe(WebSocket.OPEN);
  ws.close();
});

test('reject reasons stay a bounded set whatever the input', async () => {
  const ws = await open(`${bridge.frameUrl}&kind=video`);
  const good = new Uint8Array(encodeFrame(header, new Uint8Array([1, 2, 3])));
  for (let i = 0; i < 50; i++) {
    const bad = new Uint8Array([...good, ...new Uint8Array(i + 1)]);
    bad[0] = i % 2 === 0 ? 9 + i : WIRE_VERSION;
    ws.send(bad);
  }
  await expect.poll(() => bridge.stats().framesRejected).toBe(50);
  expect(Object.keys(bridge.stats().rejectReasons).sort()).toEqual([
    'frame: length-mismatch',
    'frame: version',
  ]);
  ws.close();
});
