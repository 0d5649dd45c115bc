import { expect, test } from '@playwright/test';
import {
  decodeFrame,
  encodeFrame,
  FRAME_HEADER_BYTES,
  type FrameHeader,
} from '../../../agent/bridge/wire.js';

const header: FrameHeader = {
  kind: 'audio',
  key: true,
  codec: 'opus',
  rtpTimestamp: 2 ** 32 - 960,
  receiveTimeMs: 1_700_000_000_123.25,
  ssrc: 0xdeadbeef,
  width: 0,
  height: 0,
  seq: 41,
};

test('a frame round-trips, with and without a capture time', () => {
  const payload = new Uint8Array([1, 2, 3, 4]);
  const plain = decodeFrame(new Uint8Array(encodeFrame(header, payload)));
  expect(plain).toEqual({ ok: true, frame: { header, payload } });
  const timed = decodeFrame(
    new Uint8Array(encodeFrame({ ...header, captureTimeMs: 1_700_000_000_100.5 }, payload)),
  );
  expect(timed.ok && timed.frame.header.captureTimeMs).toBe(1_700_000_000_100.5);
});

test('a capture time that is not a finite number ≥ 0 is rejected with its own code', () => {
  for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
    const bytes = new Uint8Array(encodeFrame(header, new Uint8Array([1])));
    new DataView(bytes.buffer).setFloat64(32, bad, true);
    const r = decodeFrame(bytes);
    expect(r.ok ? 'accepted' : r.code, String(bad)).toBe('capture-time');
  }
  expect(FRAME_HEADER_BYTES).toBe(40);
});
