import { expect, test } from '@playwright/test';
import { GAP_TOLERANCE_MS, fragmentTimeline } from '../../../emulator/player/fragmentTimeline.js';

const fragment = (number: string, producerMs: number, durationMs: number) => ({
  number,
  producerMs,
  serverMs: producerMs + 50,
  durationMs,
  bytes: 1000,
});

test('fragments are ordered by producer time; holes beyond the tolerance are gaps, overlaps are not', () => {
  const t = fragmentTimeline([
    fragment('3', 10_000, 2000),
    fragment('1', 6_000, 2000),
    fragment('2', 8_000 + GAP_TOLERANCE_MS, 2000), // a hole at the tolerance: not a gap
    fragment('4', 11_900, 2000), // overlaps its predecessor
    fragment('5', 16_000, 1000), // 2.1 s after the end of 4
  ]);
  expect(t.fragments.map((f) => f.number)).toEqual(['1', '2', '3', '4', '5']);
  expect(t.gaps).toEqual([{ fromMs: 13_900, toMs: 16_000 }]);
  expect([t.startMs, t.endMs]).toEqual([6_000, 17_000]);
  expect(fragmentTimeline([])).toEqual({ fragments: [], gaps: [], startMs: undefined, endMs: undefined });
});
