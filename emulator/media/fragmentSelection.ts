import type { FragmentRecord } from './fragmentStore.js';

export type TimestampKind = 'PRODUCER_TIMESTAMP' | 'SERVER_TIMESTAMP';

export interface TimestampRangeMs {
  kind: TimestampKind;
  startMs: number;
  endMs: number;
}

export function timestampOf(record: FragmentRecord, kind: TimestampKind): number {
  return kind === 'PRODUCER_TIMESTAMP' ? record.producerTimestampMs : record.serverTimestampMs;
}

/** ListFragments: fragments whose start timestamp lies in [start, end] (both inclusive, as KVS). */
export function fragmentsStartingIn(
  records: readonly FragmentRecord[],
  range: TimestampRangeMs,
): FragmentRecord[] {
  return records.filter((r) => {
    const ts = timestampOf(r, range.kind);
    return ts >= range.startMs && ts <= range.endMs;
  });
}

/**
 * GetClip: fragments that overlap [start, end], in producer order — including the one that contains the
 * start, so the clip begins on that fragment's key frame.
 */
export function fragmentsOverlapping(
  records: readonly FragmentRecord[],
  range: TimestampRangeMs,
): FragmentRecord[] {
  const sorted = [...records].sort((a, b) => timestampOf(a, range.kind) - timestampOf(b, range.kind));
  // The fragment holding the start is the last one starting at or before it (if it lasts until the start).
  const before = sorted.filter((r) => timestampOf(r, range.kind) <= range.startMs).at(-1);
  return sorted.filter((r) => {
    const ts = timestampOf(r, range.kind);
    if (ts > range.endMs) return false;
    if (ts >= range.startMs) return true;
    return r === before && ts + Math.max(r.durationMs, 1) > range.startMs;
  });
}

/** Fragment numbers are equal-length decimal strings; BigInt keeps the comparison right anyway. */
export function compareFragmentNumbers(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}
