import { expect, test } from '@playwright/test';
import {
  decodeFrame,
  encodeFrame,
  encodeFrameInto,
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

test('encodeFrameInto reuses one buffer: each message is its own frame, the same bytes as encodeFrame', () => {
  const scratch = new ArrayBuffer(64);
  const big = new Uint8Array([9, 8, 7, 6, 5, 4, 3, 2]);
  const first = encodeFrameInto(scratch, header, big);
  expect(first.buffer).toBe(scratch);
  expect(first.byteLength).toBe(FRAME_HEADER_BYTES + big.byteLength);
  expect(first).toEqual(new Uint8Array(encodeFrame(header, big)));
  const firstCopy = first.slice();
  // A shorter frame after a longer one: the message ends where its payload does, nothing of the last one shows.
  const small = new Uint8Array([1, 2]);
  const second = encodeFrameInto(scratch, { ...header, seq: 42 }, small);
  expect(decodeFrame(second)).toEqual({
    ok: true,
    frame: { header: { ...header, seq: 42 }, payload: small },
  });
  expect(decodeFrame(firstCopy)).toEqual({ ok: true, frame: { header, payload: big } });
  expect(() => encodeFrameInto(new ArrayBuffer(FRAME_HEADER_BYTES + 1), header, small)).toThrow(RangeError);
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
