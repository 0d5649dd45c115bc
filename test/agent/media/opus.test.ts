import { expect, test } from '@playwright/test';
import {
  OPUS_SILENCE_20MS,
  opusHead,
  opusPacketChannels,
  opusPacketDurationUs,
} from '../../../agent/media/opus.js';

test('packet durations follow the TOC byte (RFC 6716 §3.1)', () => {
  expect(opusPacketDurationUs(new Uint8Array([0x78, 1]))).toBe(20_000); // config 15 hybrid FB 20 ms, 1 frame
  expect(opusPacketDurationUs(OPUS_SILENCE_20MS)).toBe(20_000); // config 31 CELT 20 ms
  expect(opusPacketDurationUs(new Uint8Array([0x09, 1]))).toBe(40_000); // config 1 SILK 20 ms, 2 frames (code 1)
  expect(opusPacketDurationUs(new Uint8Array([0x1b, 0x03]))).toBeNull(); // 3 × 60 ms = 180 ms: over the 120 ms limit
  expect(opusPacketDurationUs(new Uint8Array([0xe3, 0x04]))).toBe(10_000); // CELT 2.5 ms × 4
  expect(opusPacketDurationUs(new Uint8Array([]))).toBeNull();
  expect(opusPacketDurationUs(new Uint8Array([0x03]))).toBeNull(); // code 3 without the count byte
});

test('channels from the stereo flag; OpusHead layout', () => {
  expect(opusPacketChannels(new Uint8Array([0x78]))).toBe(1);
  expect(opusPacketChannels(new Uint8Array([0x7c]))).toBe(2);
  const head = opusHead(2);
  expect(new TextDecoder().decode(head.subarray(0, 8))).toBe('OpusHead');
  expect([...head.subarray(8, 12)]).toEqual([1, 2, 0, 0]);
  expect(new DataView(head.buffer).getUint32(12, true)).toBe(48_000);
  expect(head.byteLength).toBe(19);
});
