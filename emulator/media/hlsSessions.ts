import { randomBytes } from 'node:crypto';
import { compareFragmentNumbers, timestampOf, type TimestampKind } from './fragmentSelection.js';
import type { FragmentRecord } from './fragmentStore.js';

export type HlsPlaybackMode = 'LIVE' | 'LIVE_REPLAY' | 'ON_DEMAND';
export type HlsContainerFormat = 'FRAGMENTED_MP4' | 'MPEG_TS';
export type HlsDiscontinuityMode = 'ALWAYS' | 'NEVER' | 'ON_DISCONTINUITY';

export interface HlsSessionSettings {
  stream: string;
  playbackMode: HlsPlaybackMode;
  selector: TimestampKind;
  /** ON_DEMAND and LIVE_REPLAY: the requested range (end optional for LIVE_REPLAY). */
  startMs: number | undefined;
  endMs: number | undefined;
  container: HlsContainerFormat;
  discontinuityMode: HlsDiscontinuityMode;
  displayFragmentTimestamp: boolean;
  maxFragments: number;
}

/** One fragment of the session's timeline, in playlist order. */
export interface TimelineEntry {
  record: FragmentRecord;
  /** EXT-X-MEDIA-SEQUENCE of this fragment. */
  sequence: number;
  /** The fragment's timestamp of the session's selector type, epoch ms. */
  timestampMs: number;
  /** An EXT-X-DISCONTINUITY precedes this fragment. */
  discontinuity: boolean;
  /** Which init segment (codec private data) this fragment needs: index into `HlsSession.inits`. */
  initIndex: number;
}

/** A gap or overlap above this between fragments is a discontinuity (ON_DISCONTINUITY, as KVS: 50 ms). */
const DISCONTINUITY_TOLERANCE_MS = 50;
/** Media time of the session's first fragment: room for audio that starts a little before its cluster. */
export const SESSION_MEDIA_ORIGIN_MS = 10_000;

/**
 * An HLS streaming session: its settings, expiry, and the timeline of fragments it has listed so far. The
 * timeline only grows (LIVE adds fragments newer than the newest listed one, never older ones; LIVE_REPLAY
 * adds them as the replay clock passes them), so media sequence numbers, discontinuity sequence numbers and
 * init segment indexes stay stable across playlist reloads.
 */
export class HlsSession {
  readonly timeline: TimelineEntry[] = [];
  /** Distinct codec private data sets (all tracks), in order of first use; the index is the init segment's. */
  readonly inits: string[] = [];
  #originMs: number | undefined;

  constructor(
    readonly token: string,
    readonly settings: HlsSessionSettings,
    readonly createdAtMs: number,
    readonly expiresAtMs: number,
  ) {}

  /** Adds what the stream's fragments now allow; returns whether the playlist is complete (ENDLIST). */
  update(records: readonly FragmentRecord[], nowMs: number): boolean {
    const s = this.settings;
    const candidates = selectable(records, s);
    if (s.playbackMode === 'ON_DEMAND') {
      if (this.timeline.length === 0) for (const r of candidates.slice(0, s.maxFragments)) this.#append(r);
      return true;
    }
    if (s.playbackMode === 'LIVE') {
      const last = this.timeline.at(-1);
      const newer = last
        ? candidates.filter(
            (r) =>
              compareFragmentNumbers(r.fragmentNumber, last.record.fragmentNumber) > 0 &&
              timestampOf(r, s.selector) > last.timestampMs,
          )
        : candidates.slice(-s.maxFragments);
      for (const r of newer) this.#append(r);
      return false;
    }
    // LIVE_REPLAY: fragments from the start time, each added once the replay clock reaches it.
    const firstCandidate = candidates[0];
    const origin =
      this.timeline[0]?.timestampMs ?? (firstCandidate && timestampOf(firstCandidate, s.selector));
    if (origin === undefined) return false;
    const replayedTo = origin + (nowMs - this.createdAtMs);
    for (const r of candidates) {
      const ts = timestampOf(r, s.selector);
      if (ts <= (this.timeline.at(-1)?.timestampMs ?? -Infinity)) continue;
      if (this.timeline.length > 0 && ts > replayedTo) break;
      this.#append(r);
    }
    // Complete once the range's end has passed and every fragment in it has been replayed.
    return s.endMs !== undefined && s.endMs < nowMs && this.timeline.at(-1)?.record === candidates.at(-1);
  }

  /** The fragments a media playlist lists now: all (ON_DEMAND) or the newest `maxFragments`. */
  window(): TimelineEntry[] {
    return this.settings.playbackMode === 'ON_DEMAND'
      ? this.timeline
      : this.timeline.slice(-this.settings.maxFragments);
  }

  /** EXT-X-DISCONTINUITY-SEQUENCE of a window that starts at `first`: discontinuities before it. */
  discontinuitiesBefore(first: TimelineEntry): number {
    let count = 0;
    for (const e of this.timeline) {
      if (e === first) break;
      if (e.discontinuity) count++;
    }
    return count;
  }

  /** The timestamp shift that puts the fragment on the session's media timeline (see SESSION_MEDIA_ORIGIN_MS). */
  mediaTimeMs(entry: TimelineEntry): number {
    return entry.timestampMs - (this.#originMs ?? entry.timestampMs) + SESSION_MEDIA_ORIGIN_MS;
  }

  entry(fragmentNumber: string): TimelineEntry | undefined {
    return this.timeline.find((e) => e.record.fragmentNumber === fragmentNumber);
  }

  #append(record: FragmentRecord): void {
    const s = this.settings;
    const timestampMs = timestampOf(record, s.selector);
    const key = codecPrivateKey(record);
    let initIndex = this.inits.indexOf(key);
    const previous = this.timeline.at(-1);
    if (initIndex < 0 || (previous && previous.initIndex !== initIndex)) {
      // A CPD seen before and then replaced still gets a new index: the init segment list follows the playlist.
      this.inits.push(key);
      initIndex = this.inits.length - 1;
    }
    this.#originMs ??= timestampMs;
    let discontinuity = s.discontinuityMode === 'ALWAYS';
    if (previous) {
      // New codec private data (a new PutMedia session, e.g. a resolution change): decoders must reset.
      if (previous.initIndex !== initIndex) discontinuity = true;
      const gap = timestampMs - (previous.timestampMs + previous.record.durationMs);
      if (s.discontinuityMode === 'ON_DISCONTINUITY' && Math.abs(gap) > DISCONTINUITY_TOLERANCE_MS) {
        discontinuity = true;
      }
    }
    this.timeline.push({
      record,
      sequence: this.timeline.length,
      timestampMs,
      discontinuity,
      initIndex,
    });
  }
}

/** The CPD of every track: a change in any of them needs a new init segment. */
export function codecPrivateKey(record: FragmentRecord): string {
  return record.tracks
    .map((t) => `${t.number}:${t.codecId}:${t.codecPrivateHex ?? ''}`)
    .sort()
    .join('|');
}

/**
 * The fragments a session may list, in timestamp order: inside the requested range (ON_DEMAND, LIVE_REPLAY),
 * starting with a key frame, and for PRODUCER_TIMESTAMP one per start timestamp (the newest ingested, as KVS).
 */
export function selectable(records: readonly FragmentRecord[], s: HlsSessionSettings): FragmentRecord[] {
  const inRange = records.filter((r) => {
    const ts = timestampOf(r, s.selector);
    return (
      r.startsWithKeyFrame &&
      (s.startMs === undefined || ts >= s.startMs) &&
      (s.endMs === undefined || ts <= s.endMs)
    );
  });
  let kept = inRange;
  if (s.selector === 'PRODUCER_TIMESTAMP') {
    const byTimestamp = new Map<number, FragmentRecord>();
    for (const r of inRange) {
      const seen = byTimestamp.get(r.producerTimestampMs);
      if (!seen || compareFragmentNumbers(r.fragmentNumber, seen.fragmentNumber) > 0) {
        byTimestamp.set(r.producerTimestampMs, r);
      }
    }
    kept = [...byTimestamp.values()];
  }
  return kept.sort(
    (a, b) =>
      timestampOf(a, s.selector) - timestampOf(b, s.selector) ||
      compareFragmentNumbers(a.fragmentNumber, b.fragmentNumber),
  );
}

/** Live sessions; a token is a random 256-bit value, looked up here (expired ones are dropped lazily). */
export class HlsSessions {
  readonly #sessions = new Map<string, HlsSession>();

  create(settings: HlsSessionSettings, nowMs: number, expiresInS: number): HlsSession {
    this.#sweep(nowMs);
    const token = randomBytes(32).toString('base64url');
    const session = new HlsSession(token, settings, nowMs, nowMs + expiresInS * 1000);
    this.#sessions.set(token, session);
    return session;
  }

  /** The session, 'expired' once past its Expires, or undefined for a token never issued. */
  find(token: string, nowMs: number): HlsSession | 'expired' | undefined {
    const session = this.#sessions.get(token);
    if (!session) return undefined;
    return nowMs >= session.expiresAtMs ? 'expired' : session;
  }

  #sweep(nowMs: number): void {
    // Expired sessions are kept for an hour so their tokens are still refused as expired, not unknown.
    for (const [token, s] of this.#sessions)
      if (nowMs > s.expiresAtMs + 3_600_000) this.#sessions.delete(token);
  }
}
