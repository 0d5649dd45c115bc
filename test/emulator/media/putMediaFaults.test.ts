import { expect, test } from '@playwright/test';
import { createLogger } from '../../../agent/log.js';
import type { Ack } from '../../../emulator/media/ackStream.js';
import { PutMediaFaults } from '../../../emulator/media/putMediaFaults.js';
import { startEmulator } from '../../../emulator/server.js';
import {
  addStream,
  encodeWithGStreamer,
  kvsStream,
  putMedia,
  splitMatroska,
  startMediaServer,
  type MediaServer,
} from './mediaHarness.js';

/**
 * The PutMedia fault hook the recovery tests use (KVS refusing or stalling, then back): off by default, refuses
 * with the HTTP status asked for, stalls without losing what was sent, and lets everything go on afterwards.
 */
const BASE_MS = 1_700_000_000_000;
let server: MediaServer;
let faults: PutMediaFaults;

test.beforeEach(async () => {
  faults = new PutMediaFaults();
  server = await startMediaServer({ faults });
  addStream(server, 'cam');
});
test.afterEach(async () => {
  await server.close();
});

test('refuse: new PutMedia requests get the HTTP error asked for; none: they work again', async () => {
  const av = splitMatroska(await encodeWithGStreamer({ seconds: 2, audio: true }));
  const body = kvsStream(av, { baseMs: BASE_MS });
  expect(faults.fault).toEqual({ mode: 'none' });
  faults.set({ mode: 'refuse', status: 500 });
  const refused500 = await putMedia(server.url, 'cam', body);
  expect(refused500.status).toBe(500);
  expect(refused500.headers['x-amzn-errortype']).toBe('InternalFailure');
  faults.set({ mode: 'refuse' });
  const refused503 = await putMedia(server.url, 'cam', body);
  expect(refused503.status).toBe(503);
  expect(refused503.headers['x-amzn-errortype']).toBe('ServiceUnavailableException');
  expect(faults.refused).toBe(2);
  faults.set({ mode: 'none' });
  const ok = await putMedia(server.url, 'cam', body);
  expect(ok.status).toBe(200);
  expect(ok.acks.filter((a) => a.EventType === 'PERSISTED')).toHaveLength(av.clusters.length);
  expect(() => faults.set({ mode: 'sideways' as 'none' })).toThrow(RangeError);
});

test('stall: no ACKs while stalled, new requests held; none: the held and the paused go on, nothing lost', async () => {
  const av = splitMatroska(await encodeWithGStreamer({ seconds: 4, audio: true }));
  const body = kvsStream(av, { baseMs: BASE_MS });
  const acks: Ack[] = [];
  let stallAt = -1;
  // A slow producer: one piece every 50 ms, stalled after its first PERSISTED ack.
  async function* slowly(): AsyncGenerator<Buffer> {
    for (let i = 0; i < body.length; i += 4096) {
      yield body.subarray(i, i + 4096);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const live = putMedia(server.url, 'cam', slowly(), {
    onAck: (a) => {
      acks.push(a);
      if (a.EventType === 'PERSISTED' && stallAt < 0) {
        stallAt = acks.length;
        faults.set({ mode: 'stall' });
      }
    },
  });
  await expect.poll(() => stallAt, { timeout: 30_000 }).toBeGreaterThan(0);
  let heldAnswered = false;
  // Another stream: on the same one the newer connection would supersede the paused one (KVS does too).
  addStream(server, 'cam2');
  const held = putMedia(server.url, 'cam2', body).then((r) => {
    heldAnswered = true;
    return r;
  });
  // The point is a window with nothing moving.
  await new Promise((r) => setTimeout(r, 1_500));
  expect(acks.length).toBe(stallAt);
  expect(heldAnswered).toBe(false);
  faults.set({ mode: 'none' });
  const [a, b] = await Promise.all([live, held]);
  expect(a.status).toBe(200);
  expect(acks.filter((x) => x.EventType === 'PERSISTED')).toHaveLength(av.clusters.length);
  expect(b.status).toBe(200);
  expect(b.acks.filter((x) => x.EventType === 'PERSISTED')).toHaveLength(av.clusters.length);
});

test('admin route: GET and POST /_emulator/put-media/fault, bad input refused', async () => {
  const emulator = await startEmulator({ port: 0, logger: createLogger({ level: 'silent' }) });
  try {
    const url = `${emulator.url}/_emulator/put-media/fault`;
    expect(await (await fetch(url)).json()).toEqual({ mode: 'none' });
    const post = (body: unknown) =>
      fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const set = await post({ mode: 'stall' });
    expect(set.status).toBe(200);
    expect(await set.json()).toEqual({ mode: 'stall' });
    expect(emulator.admin.putMediaFault()).toEqual({ mode: 'stall' });
    expect((await post({ mode: 'refuse', status: 418 })).status).toBe(400);
    expect((await post({ mode: 'off' })).status).toBe(400);
    expect(await (await post({ mode: 'none' })).json()).toEqual({ mode: 'none' });
  } finally {
    await emulator.stop();
  }
});
