import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { WebSocket } from 'ws';
import { BridgeServer } from '../../agent/bridge/bridgeServer.js';
import type { PageToAgent } from '../../agent/bridge/controlProtocol.js';
import { pageToAgentSchema } from '../../agent/bridge/controlSchema.js';
import {
  decodeFrame,
  encodeFrame,
  FRAME_HEADER_BYTES,
  MAX_FRAME_PAYLOAD_BYTES,
  type FrameHeader,
  type TrackKind,
  type WireFrame,
} from '../../agent/bridge/wire.js';
import { createLogger } from '../../agent/log.js';
import { fuzzSeed, mutateBytes, mutateObject, report, type Prng } from './fuzzSupport.js';

/**
 * Random and mutated input into a real BridgeServer over real WebSockets. Rate limits are lifted so that
 * every input is judged on its content alone: then the counts are exact (the rate limiter has its own tests).
 */
const FRAMES = 3000;
const CONTROL = 1500;

let bridge: BridgeServer;
let webRoot: string;

test.beforeEach(async () => {
  webRoot = await mkdtemp(join(tmpdir(), 'bridge-fuzz-'));
  await mkdir(join(webRoot, 'page'));
  await writeFile(join(webRoot, 'page', 'index.html'), '<!doctype html><title>viewer</title>');
  bridge = new BridgeServer({
    webRoot,
    logger: createLogger({ level: 'silent' }),
    limits: { framesPerSecond: 1e9, frameBurst: 1e9, controlPerSecond: 1e9, controlBurst: 1e9 },
  });
  await bridge.listen();
});

test.afterEach(async () => {
  await bridge.close();
  await rm(webRoot, { recursive: true, force: true });
});

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { origin: bridge.origin } });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function validHeader(rng: Prng, kind: TrackKind): FrameHeader {
  return {
    kind,
    key: rng.bool(),
    codec: kind === 'video' ? 'h264' : 'opus',
    rtpTimestamp: rng.int(0, 0xffffffff),
    receiveTimeMs: 1_700_000_000_000 + rng.int(0, 1e9),
    ssrc: rng.int(0, 0xffffffff),
    width: rng.int(0, 4000),
    height: rng.int(0, 3000),
    seq: rng.int(0, 0xffffffff),
  };
}

function frameInput(rng: Prng, kind: TrackKind): Uint8Array | string {
  const valid = new Uint8Array(encodeFrame(validHeader(rng, kind), rng.bytes(rng.int(1, 2000))));
  switch (rng.int(0, 9)) {
    case 0:
    case 1:
    case 2:
      return valid;
    case 3:
      return rng.bytes(rng.int(0, 200));
    case 4:
      return rng.string(100);
    case 5: // the other track's frame on this socket
      return new Uint8Array(
        encodeFrame(validHeader(rng, kind === 'video' ? 'audio' : 'video'), rng.bytes(10)),
      );
    default:
      return mutateBytes(rng, valid);
  }
}

/** What the bridge must do with `input` on a `kind` socket, decided from the wire format and the socket kind. */
function expectedFrame(input: Uint8Array | string, kind: TrackKind): WireFrame | undefined {
  if (typeof input === 'string') return undefined;
  const r = decodeFrame(input);
  return r.ok && r.frame.header.kind === kind ? r.frame : undefined;
}

test('random and mutated frames: no crash, every reject counted, every valid frame delivered intact', async () => {
  test.setTimeout(60_000);
  const rng = fuzzSeed('bridge frames');
  const received: WireFrame[] = [];
  bridge.on('frame', (f) => received.push({ header: f.header, payload: new Uint8Array(f.payload) }));
  const sockets = {
    video: await open(`${bridge.frameUrl}&kind=video`),
    audio: await open(`${bridge.frameUrl}&kind=audio`),
  };
  const expected: WireFrame[] = [];
  let invalid = 0;
  for (let i = 0; i < FRAMES; i++) {
    const kind: TrackKind = rng.bool() ? 'video' : 'audio';
    const input = frameInput(rng, kind);
    const frame = expectedFrame(input, kind);
    if (frame) expected.push(frame);
    else invalid++;
    sockets[kind].send(input);
  }
  await expect
    .poll(() => bridge.stats().framesAccepted + bridge.stats().framesRejected, { timeout: 30_000 })
    .toBe(FRAMES);
  const stats = bridge.stats();
  report(
    `bridge frames: ${FRAMES} sent, ${stats.framesAccepted} accepted, ${stats.framesRejected} rejected`,
    stats.rejectReasons,
  );
  expect(stats.framesRejected).toBe(invalid);
  expect(stats.framesAccepted).toBe(expected.length);
  expect(invalid).toBeGreaterThan(FRAMES / 3);
  // Per socket, delivery keeps order; compare per kind.
  for (const kind of ['video', 'audio'] as const) {
    const want = expected.filter((f) => f.header.kind === kind);
    const got = received.filter((f) => f.header.kind === kind);
    expect(got.map((f) => f.header)).toEqual(want.map((f) => f.header));
    expect(got.every((f, i) => Buffer.from(f.payload).equals(Buffer.from(want[i]!.payload)))).toBe(true);
  }
  expect(sockets.video.readyState).toBe(WebSocket.OPEN);
  expect(sockets.audio.readyState).toBe(WebSocket.OPEN);

  // Beyond maxPayload: the socket is closed and the frame counted; the bridge goes on.
  const closedCode = new Promise<number>((resolve) => sockets.video.once('close', (code) => resolve(code)));
  sockets.video.send(new Uint8Array(FRAME_HEADER_BYTES + MAX_FRAME_PAYLOAD_BYTES + 1 + rng.int(0, 1000)));
  expect(await closedCode).toBe(1009);
  await expect.poll(() => bridge.stats().framesRejected).toBe(invalid + 1);

  // Still serving: the page, and a valid frame on a new socket.
  expect((await fetch(`${bridge.origin}/page/index.html`)).status).toBe(200);
  const again = await open(`${bridge.frameUrl}&kind=video`);
  const before = received.length;
  again.send(encodeFrame(validHeader(rng, 'video'), new Uint8Array([1, 2, 3])));
  await expect.poll(() => received.length).toBe(before + 1);
  for (const ws of [again, sockets.audio]) ws.close();
});

/** Messages of today's protocol; the schema decides what is valid, so protocol changes keep counts exact. */
function validControl(rng: Prng): Record<string, unknown> {
  return rng.pick<Record<string, unknown>>([
    { type: 'hello', userAgent: rng.string(50) },
    {
      type: 'presign',
      id: rng.int(0, 1000),
      endpoint: 'wss://x',
      queryParams: { 'X-Amz-ChannelARN': 'arn' },
    },
    { type: 'state', signaling: 'open', peer: 'connected', ice: 'connected' },
    { type: 'signaling-event', event: 'go-away', detail: rng.string(20) },
    { type: 'log', level: 'info', msg: rng.string(40), data: { a: rng.json(2) } },
    {
      type: 'stats',
      video: {
        codec: 'H264',
        width: 1280,
        height: 720,
        fps: 30,
        bitrateKbps: 900,
        framesForwarded: 10,
        keyFrames: 1,
        keyFrameRequests: 0,
      },
    },
  ]);
}

type ControlInput = { text: string } | { binary: Uint8Array };

function controlInput(rng: Prng): ControlInput {
  const valid = validControl(rng);
  switch (rng.int(0, 7)) {
    case 0:
    case 1:
      return { text: JSON.stringify(valid) };
    case 2:
      return { text: JSON.stringify(rng.json()) };
    case 3: {
      const s = JSON.stringify(valid);
      return { text: s.slice(0, rng.int(0, s.length - 1)) };
    }
    case 4:
      return { binary: rng.bytes(rng.int(0, 100)) };
    case 5:
      return { text: rng.string(200) };
    case 6: // oversized but well-formed
      return rng.bool(0.1)
        ? {
            text: JSON.stringify({ type: 'log', level: 'info', msg: 'x', data: { big: 'y'.repeat(70_000) } }),
          }
        : { text: JSON.stringify(mutateObject(rng, valid)) };
    default:
      return { text: JSON.stringify(mutateObject(rng, valid)) };
  }
}

function controlIsValid(input: ControlInput): boolean {
  if ('binary' in input) return false;
  if (Buffer.byteLength(input.text) > 64 * 1024) return false;
  try {
    return pageToAgentSchema.safeParse(JSON.parse(input.text)).success;
  } catch {
    return false;
  }
}

test('random and mutated control messages: no crash, every reject counted', async () => {
  test.setTimeout(60_000);
  const rng = fuzzSeed('bridge control');
  const received: PageToAgent[] = [];
  bridge.on('control', (m) => received.push(m));
  const ws = await open(bridge.frameUrl.replace('/frames', '/control'));
  let invalid = 0;
  for (let i = 0; i < CONTROL; i++) {
    const input = controlInput(rng);
    if (!controlIsValid(input)) invalid++;
    ws.send('text' in input ? input.text : input.binary, { binary: 'binary' in input });
  }
  await expect
    .poll(() => bridge.stats().controlAccepted + bridge.stats().controlRejected, { timeout: 30_000 })
    .toBe(CONTROL);
  const stats = bridge.stats();
  report(
    `bridge control: ${CONTROL} sent, ${stats.controlAccepted} accepted, ${stats.controlRejected} rejected`,
    stats.rejectReasons,
  );
  expect(stats.controlRejected).toBe(invalid);
  expect(received).toHaveLength(CONTROL - invalid);
  expect(invalid).toBeGreaterThan(CONTROL / 3);
  expect(ws.readyState).toBe(WebSocket.OPEN);
  // Still answering.
  ws.send(JSON.stringify({ type: 'hello', userAgent: 'after fuzz' }));
  await expect.poll(() => received.at(-1)).toEqual({ type: 'hello', userAgent: 'after fuzz' });
  const got: unknown[] = [];
  ws.on('message', (d) => got.push(JSON.parse((d as Buffer).toString('utf8'))));
  bridge.sendControl({ type: 'stop' });
  await expect.poll(() => got).toEqual([{ type: 'stop' }]);
  ws.close();
});
