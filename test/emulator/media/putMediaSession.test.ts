import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import type { Ack } from '../../../emulator/media/ackStream.js';
import { Id, element } from '../../../emulator/media/ebml.js';
import type { FragmentRecord } from '../../../emulator/media/fragmentStore.js';
import {
  addStream,
  blockTrack,
  encodeWithGStreamer,
  kvsStream,
  putMedia,
  retrack,
  simpleBlock,
  splitMatroska,
  startMediaServer,
  withExtraTracks,
  type MediaServer,
  type MkvParts,
} from './mediaHarness.js';

let av: MkvParts;
let server: MediaServer;
const BASE_MS = 1_700_000_000_000;
/** Producer time where (ms × 10⁶) / 10⁶ in doubles is not ms again (1796278444241.9998): KVS keeps whole ms. */
const INEXACT_BASE_MS = 1_796_278_444_242;

test.beforeAll(async () => {
  av = splitMatroska(await encodeWithGStreamer({ seconds: 3, audio: true }));
});
test.beforeEach(async () => {
  server = await startMediaServer({ limits: { idleAckIntervalMs: 300, idleTimeoutMs: 1500 } });
});
test.afterEach(async () => {
  await server.close();
});

const errorAck = (acks: Ack[]): Ack | undefined => acks.find((a) => a.EventType === 'ERROR');

test('fragments are acknowledged BUFFERING → RECEIVED → PERSISTED with cluster timecodes and increasing numbers', async () => {
  addStream(server, 'cam');
  expect(av.clusters.length).toBeGreaterThanOrEqual(3);
  const result = await putMedia(server.url, 'cam', kvsStream(av, { baseMs: INEXACT_BASE_MS }), {
    chunkSize: 777,
  });
  expect(result.status).toBe(200);
  expect(result.gotContinue).toBe(true);
  expect(errorAck(result.acks)).toBeUndefined();

  const timecodes = av.clusters.map((c) => INEXACT_BASE_MS + c.timecode);
  const numbers: string[] = [];
  for (const tc of timecodes) {
    const forFragment = result.acks.filter((a) => a.FragmentTimecode === tc).map((a) => a.EventType);
    expect(forFragment).toEqual(['BUFFERING', 'RECEIVED', 'PERSISTED']);
    const persisted = result.acks.find((a) => a.FragmentTimecode === tc && a.EventType === 'PERSISTED');
    expect(persisted?.FragmentNumber).toMatch(/^[0-9]+$/);
    numbers.push(persisted?.FragmentNumber ?? '');
  }
  for (let i = 1; i < numbers.length; i++)
    expect(BigInt(numbers[i] ?? '0') > BigInt(numbers[i - 1] ?? '0')).toBe(true);

  // The store's index and files are there for users to inspect.
  const index = JSON.parse(
    await readFile(join(server.store.streamDir('cam'), 'index.json'), 'utf8'),
  ) as FragmentRecord[];
  expect(index.map((r) => r.fragmentNumber)).toEqual(numbers);
  expect(index.map((r) => r.producerTimestampMs)).toEqual(timecodes);
  for (const r of index) {
    expect(r.startsWithKeyFrame).toBe(true);
    expect(r.tracksPresent).toEqual([1, 2]);
    expect(r.durationMs).toBeGreaterThan(900);
    expect(r.durationMs).toBeLessThan(1100);
  }
  expect(server.counts.get('putMedia.fragmentsPersisted')).toBe(av.clusters.length);
});

test('a stream with zero retention gets RECEIVED but no PERSISTED and stores nothing', async () => {
  addStream(server, 'nostore', 0);
  const result = await putMedia(server.url, 'nostore', kvsStream(av, { baseMs: BASE_MS }));
  expect(result.acks.filter((a) => a.EventType === 'RECEIVED')).toHaveLength(av.clusters.length);
  expect(result.acks.filter((a) => a.EventType === 'PERSISTED')).toHaveLength(0);
  expect(await server.store.list('nostore')).toEqual([]);
});

test('4004: cluster timecodes going backwards', async () => {
  addStream(server, 's');
  const parts = { ...av, clusters: [av.clusters[1]!, av.clusters[0]!] };
  const result = await putMedia(server.url, 's', kvsStream(parts, { baseMs: BASE_MS }));
  const error = errorAck(result.acks);
  expect(error?.ErrorId).toBe(4004);
  expect(error?.FragmentTimecode).toBe(BASE_MS + av.clusters[0]!.timecode);
  // The first fragment was fine and stays stored.
  expect(result.acks.filter((a) => a.EventType === 'PERSISTED')).toHaveLength(1);
  expect(result.acks.at(-1)?.EventType).toBe('ERROR');
});

test('4010: a block of an undeclared track number', async () => {
  addStream(server, 's');
  const first = av.clusters[0]!;
  const parts = { ...av, clusters: [{ ...first, blocks: [...first.blocks, retrack(first.blocks[0]!, 5)] }] };
  const result = await putMedia(server.url, 's', kvsStream(parts, { baseMs: BASE_MS }));
  expect(errorAck(result.acks)?.ErrorId).toBe(4010);
});

test('4011: a fragment with only video when audio is declared too', async () => {
  addStream(server, 's');
  const first = av.clusters[0]!;
  const videoOnly = { ...first, blocks: first.blocks.filter((b) => blockTrack(b) === 1) };
  const result = await putMedia(
    server.url,
    's',
    kvsStream({ ...av, clusters: [videoOnly] }, { baseMs: BASE_MS }),
  );
  const error = errorAck(result.acks);
  expect(error?.ErrorId).toBe(4011);
  expect(result.acks.filter((a) => a.EventType === 'RECEIVED')).toHaveLength(0);
});

test('4012: a fourth track', async () => {
  addStream(server, 's');
  const result = await putMedia(
    server.url,
    's',
    kvsStream(av, { baseMs: BASE_MS, tracks: withExtraTracks(av.tracks, 2) }),
  );
  expect(errorAck(result.acks)?.ErrorId).toBe(4012);
  expect(result.acks.filter((a) => a.EventType === 'BUFFERING')).toHaveLength(0);
});

test('4006: garbage bytes instead of Matroska, and garbage after a good fragment', async () => {
  addStream(server, 's');
  const garbage = await putMedia(server.url, 's', Buffer.from('this is not matroska at all'));
  expect(garbage.status).toBe(200);
  expect(errorAck(garbage.acks)?.ErrorId).toBe(4006);

  // Garbage inside the second (open) cluster: the first fragment is complete and kept, the second is not.
  const good = kvsStream({ ...av, clusters: [av.clusters[0]!, av.clusters[1]!] }, { baseMs: BASE_MS });
  const trailing = await putMedia(
    server.url,
    's',
    Buffer.concat([good, Buffer.from([0x00, 0x01, 0x02, 0x03])]),
  );
  const byFragment = (i: number): string[] =>
    trailing.acks
      .filter((a) => a.EventType !== 'ERROR' && a.FragmentTimecode === BASE_MS + av.clusters[i]!.timecode)
      .map((a) => a.EventType);
  expect(byFragment(0)).toEqual(['BUFFERING', 'RECEIVED', 'PERSISTED']);
  expect(byFragment(1)).toEqual(['BUFFERING']);
  expect(trailing.acks.at(-1)?.EventType).toBe('ERROR');
  expect(errorAck(trailing.acks)?.ErrorId).toBe(4006);
  expect(server.counts.get('putMedia.error.4006')).toBe(2);
});

test('4002: an 11-second cluster', async () => {
  addStream(server, 's');
  const first = av.clusters[0]!;
  const late = simpleBlock(1, 11_000, false, Buffer.from([0, 0, 0, 1, 0x41]));
  const result = await putMedia(
    server.url,
    's',
    kvsStream({ ...av, clusters: [{ ...first, blocks: [...first.blocks, late] }] }, { baseMs: BASE_MS }),
  );
  expect(errorAck(result.acks)?.ErrorId).toBe(4002);
});

test('4001: a fragment larger than 50 MB', async () => {
  addStream(server, 's');
  const first = av.clusters[0]!;
  const huge = simpleBlock(1, 10, false, Buffer.alloc(51 * 1024 * 1024));
  const result = await putMedia(
    server.url,
    's',
    kvsStream({ ...av, clusters: [{ ...first, blocks: [...first.blocks, huge] }] }, { baseMs: BASE_MS }),
    { chunkSize: 1024 * 1024 },
  );
  expect(errorAck(result.acks)?.ErrorId).toBe(4001);
});

test('malformed requests get AWS errors: unknown stream 404, bad signature 403, bad headers 400', async () => {
  addStream(server, 's');
  const body = kvsStream({ ...av, clusters: [av.clusters[0]!] }, { baseMs: BASE_MS });
  const unknown = await putMedia(server.url, 'nope', body);
  expect(unknown.status).toBe(404);
  expect(unknown.headers['x-amzn-errortype']).toBe('ResourceNotFoundException');
  expect(JSON.parse(unknown.body)).toHaveProperty('message');

  const unsigned = await putMedia(server.url, 's', body, { signed: false });
  expect(unsigned.status).toBe(403);
  expect(unsigned.headers['x-amzn-errortype']).toBe('AccessDeniedException');

  const badType = await putMedia(server.url, 's', body, {
    headers: { 'x-amzn-fragment-timecode-type': 'SOMETIMES' },
  });
  expect(badType.status).toBe(400);
  expect(badType.headers['x-amzn-errortype']).toBe('InvalidArgumentException');
  expect(await server.store.list('s')).toEqual([]);
});

test('IDLE acks while no data arrives, and the request is closed after the idle timeout', async () => {
  addStream(server, 's');
  const body = kvsStream({ ...av, clusters: [av.clusters[0]!] }, { baseMs: BASE_MS });
  async function* stalls(): AsyncGenerator<Buffer> {
    yield body;
    await new Promise((r) => setTimeout(r, 60_000));
  }
  const result = await putMedia(server.url, 's', stalls());
  expect(result.acks.filter((a) => a.EventType === 'IDLE').length).toBeGreaterThanOrEqual(2);
  // The unknown-size cluster is still open when the connection goes idle: it is never RECEIVED.
  expect(result.acks[0]?.EventType).toBe('BUFFERING');
  expect(server.counts.get('putMedia.idleTimeout')).toBe(1);
});

test('ACKs split across reads parse, and a cluster of known size ends without a following element', async () => {
  addStream(server, 's');
  // A known-size cluster: the parser must end it by its size, not by the next element.
  const first = av.clusters[0]!;
  const known = Buffer.concat([
    av.ebmlHeader,
    Buffer.from([0x18, 0x53, 0x80, 0x67, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    av.info,
    av.tracks,
    element(
      Id.Cluster,
      element(Id.Timecode, Buffer.from(BASE_MS.toString(16).padStart(12, '0'), 'hex')),
      ...first.blocks,
    ),
  ]);
  const acks: Ack[] = [];
  const result = await putMedia(server.url, 's', known, { chunkSize: 1, onAck: (a) => acks.push(a) });
  expect(acks.map((a) => a.EventType)).toEqual(['BUFFERING', 'RECEIVED', 'PERSISTED']);
  expect(result.acks[0]?.FragmentTimecode).toBe(BASE_MS);
});

test('one PutMedia connection per stream: the newest wins', async () => {
  addStream(server, 's');
  const head = kvsStream({ ...av, clusters: [av.clusters[0]!] }, { baseMs: BASE_MS });
  let releaseFirst: () => void = () => undefined;
  const firstBlocked = new Promise<void>((r) => (releaseFirst = r));
  let firstBuffered: () => void = () => undefined;
  const firstStarted = new Promise<void>((r) => (firstBuffered = r));
  async function* slow(): AsyncGenerator<Buffer> {
    yield head;
    await firstBlocked;
  }
  const first = putMedia(server.url, 's', slow(), {
    onAck: (a) => {
      if (a.EventType === 'BUFFERING') firstBuffered();
    },
  });
  await firstStarted;
  const second = await putMedia(
    server.url,
    's',
    kvsStream({ ...av, clusters: [av.clusters[1]!] }, { baseMs: BASE_MS }),
  );
  const firstResult = await first;
  releaseFirst();
  expect(firstResult.acks.map((a) => a.EventType)).toEqual(['BUFFERING']);
  expect(second.acks.map((a) => a.EventType)).toEqual(['BUFFERING', 'RECEIVED', 'PERSISTED']);
  expect(server.counts.get('putMedia.superseded')).toBe(1);
});
