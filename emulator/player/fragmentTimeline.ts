/** One KVS fragment as ListFragments describes it, in milliseconds since the epoch. */
export interface TimelineFragment {
  number: string;
  producerMs: number;
  serverMs: number;
  durationMs: number;
  bytes: number;
}

export interface TimelineGap {
  /** End of the fragment before the gap and start of the one after it (producer time, ms). */
  fromMs: number;
  toMs: number;
}

export interface FragmentTimeline {
  fragments: TimelineFragment[];
  gaps: TimelineGap[];
  startMs: number | undefined;
  endMs: number | undefined;
}

/**
 * A hole shorter than this is the rounding of fragment lengths to whole milliseconds plus a frame interval
 * (a fragment's length ends at its last frame's timestamp, not after it): not a gap anyone would see.
 */
export const GAP_TOLERANCE_MS = 100;

/** Fragments in producer-time order and the gaps between consecutive ones (ListFragments returns them unordered). */
export function fragmentTimeline(fragments: readonly TimelineFragment[]): FragmentTimeline {
  const sorted = [...fragments].sort((a, b) => a.producerMs - b.producerMs);
  const gaps: TimelineGap[] = [];
  let end: number | undefined;
  for (const f of sorted) {
    if (end !== undefined && f.producerMs - end > GAP_TOLERANCE_MS)
      gaps.push({ fromMs: end, toMs: f.producerMs });
    end = Math.max(end ?? -Infinity, f.producerMs + f.durationMs);
  }
  return { fragments: sorted, gaps, startMs: sorted[0]?.producerMs, endMs: end };
}
