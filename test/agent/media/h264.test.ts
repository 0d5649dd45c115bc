import { expect, test } from '@playwright/test';
import { annexBNalUnits, avcCodecString } from '../../../agent/media/h264.js';

const keyFrame = new Uint8Array([
  0,
  0,
  0,
  1,
  0x67,
  0x42,
  0xc0,
  0x1f,
  0xaa, // SPS, 4-byte start code
  0,
  0,
  0,
  1,
  0x68,
  0xce,
  0x3c,
  0x80, // PPS
  0,
  0,
  1,
  0x65,
  0x88,
  0x84, // IDR, 3-byte start code
]);

test('splits Annex B into NAL units with 3- and 4-byte start codes', () => {
  const nals = [...annexBNalUnits(keyFrame)].map((n) => [...n]);
  expect(nals).toEqual([
    [0x67, 0x42, 0xc0, 0x1f, 0xaa],
    [0x68, 0xce, 0x3c, 0x80],
    [0x65, 0x88, 0x84],
  ]);
});

test('names the codec from the SPS, null without one', () => {
  expect(avcCodecString(keyFrame)).toBe('avc1.42C01F');
  expect(avcCodecString(new Uint8Array([0, 0, 0, 1, 0x41, 0x9a]))).toBeNull();
});
