import { expect, test } from '@playwright/test';
import { RtpUnwrapper } from '../../../agent/media/rtpUnwrapper.js';

test('unwraps across 2^32 and keeps counting forward', () => {
  const u = new RtpUnwrapper();
  const start = 2 ** 32 - 3000;
  const out = [0, 1, 2, 3].map((i) => u.unwrap((start + i * 3000) % 2 ** 32));
  expect(out).toEqual([start, start + 3000, start + 6000, start + 9000]);
  // Several more wraps at 90 kHz-like steps.
  let prev = out[3]!;
  for (let i = 0; i < 10; i++) {
    const next = u.unwrap((prev + 2 ** 31 - 1) % 2 ** 32);
    expect(next).toBe(prev + 2 ** 31 - 1);
    prev = next;
  }
});

test('a slightly reordered timestamp moves back a little, not 2^32 forward', () => {
  const u = new RtpUnwrapper();
  expect(u.unwrap(10)).toBe(10);
  expect(u.unwrap(2 ** 32 - 5)).toBe(-5);
  expect(u.unwrap(20)).toBe(20);
  expect(u.unwrap(15)).toBe(15);
});

test('reset starts a new timeline', () => {
  const u = new RtpUnwrapper();
  u.unwrap(1000);
  u.reset();
  expect(u.unwrap(5)).toBe(5);
});
