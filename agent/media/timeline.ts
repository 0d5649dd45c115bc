import type { TrackKind, WireFrame } from '../bridge/wire.js';
import { RtpUnwrapper } from './rtpUnwrapper.js';

/** A frame placed on the recording clock, ready for the muxer. */
export interface TimedFrame {
  kind: TrackKind;
  key: boolean;
  /** µs since the recording origin; strictly increasing per track, also after rounding to whole ms. */
  timestampUs: number;
  /** Payload as received: H.264 Annex B (SPS/PPS in-band on key frames) or one Opus packet. */
  data: Uint8Array;
  /** From the frame header; 0 on delta frames. */
  width: number;
  height: number;
  /** Wall clock at the worker when the frame was received, for latency figures. */
  receiveTimeMs: number;
  /**
   * The frame's place on the wall clock (epoch ms): recording origin + timestamp. This is the media's own
   * timeline (RTP spacing from a receive-time anchor), so it does not move when a sink session restarts.
   */
  wallClockMs: number;
}

export interface TrackTimelineStats {
  accepted: number;
  /** Video before the first key frame (or before the next one after a re-anchor). */
  droppedBeforeKeyframe: number;
  /** Frames whose time falls before the recording origin, or arrive before there is one. */
  droppedBeforeOrigin: number;
  /** Times the track was re-anchored on the receive clock (SSRC change or RTP/receive disagreement). */
  reanchors: number;
  ssrcChanges: number;
  /** Frames whose codec is not the one this track records (video h264, audio opus). */
  rejectedCodec: number;
  /** Frames whose time had to be pushed forward to keep the track strictly monotonic. */
  clampedNonMonotonic: number;
  /**
   * Frames with the RTP timestamp of the frame before (Chromium re-delivers a frame several times to the
   * transform around a resolution switch) or an older one: writing them would corrupt decoding.
   */
  droppedDuplicate: number;
  /** Gaps in the frame sequence numbers (frames lost before the agent: worker socket down or backed up). */
  seqGaps: number;
  /** Frames missing in those gaps, as the sequence numbers count them. */
  framesLostUpstream: number;
  /** Video held back after a sequence gap until the next key frame (a partial GOP would not decode). */
  droppedAfterGap: number;
  /** Frames placed by the master's capture clock (abs-capture-time) rather than by their receive time. */
  captureTimed: number;
  /**
   * Receive time minus the stamped wall-clock time of recent frames (last 2000), ms: how far the recording's
   * times are from when frames arrived. Positive = arrived later than stamped (jitter, a paced key frame).
   */
  receiveLagMs: { p50: number | null; p95: number | null; max: number | null };
}

export type TimelineStats = Record<TrackKind, TrackTimelineStats>;

export interface MediaTimelineOptions {
  /** Re-anchor a track when its RTP-derived time and its receive time disagree by more than this. Default 5000. */
  maxRtpJumpMs?: number;
  /**
   * Frames were lost upstream (a gap in the sequence numbers): the owner asks the master for a key frame at
   * once, since video is held back until the next one.
   */
  onGap?: (gap: { kind: TrackKind; lost: number }) => void;
  /**
   * Audio is stamped this much earlier than it was captured: what the pipeline's audio chain adds (decoder
   * lookahead, encoder priming) before a player shows it, so that played audio lines up with the video.
   */
  audioLeadMs?: number;
}

const CLOCK_RATE: Record<TrackKind, number> = { video: 90_000, audio: 48_000 };
const EXPECTED_CODEC: Record<TrackKind, string> = { video: 'h264', audio: 'opus' };
/** The window of the minimum receive delay the timeline follows, and how fast it may follow it. */
const SLEW_WINDOW_MS = 10_000;
const SLEW_RATE = 0.02;
/** Nominal media time per frame, to bound the slew per frame: video ≈ 30 fps, Opus 20 ms packets. */
const FRAME_MS: Record<TrackKind, number> = { video: 33, audio: 20 };

interface TrackState {
  ssrc: number | null;
  readonly unwrapper: RtpUnwrapper;
  anchorRtp: number;
  anchorTimeMs: number;
  /**
   * Correction added to the anchored time, slewed towards the smallest receive delay seen lately: the first
   * frame is often late (a paced key frame), and sender and receiver clocks drift apart over days.
   */
  slewMs: number;
  /** (receive time − anchored time, at time) of recent frames, increasing in delay: a sliding-window minimum. */
  readonly delays: Array<{ atMs: number; delayMs: number }>;
  /** Last output timestamp in whole ms, or null before the first output. */
  lastOutMs: number | null;
  /** Unwrapped RTP timestamp of the last frame let through, or null after (re-)anchoring. */
  lastRtp: number | null;
  /** Video only: waiting for a key frame before frames may pass. */
  gated: boolean;
  /** Why video is gated: after a sequence gap, drops are counted as droppedAfterGap. */
  gatedByGap: boolean;
  /** The sequence number the next frame of this track must carry (the worker's count spans reconnects). */
  expectedSeq: number | null;
  /** The frame socket reconnected: a sequence that starts again lower is a new session, not a loss. */
  reconnected: boolean;
  readonly stats: TrackTimelineStats;
  /** Ring of recent receive lags (ms). */
  readonly lags: number[];
  lagNext: number;
  /** The last frame that carried a capture time: frames without one are placed from it by RTP. */
  lastCapture: { rtp: number; ms: number } | null;
}

/** The receive delay shared by both tracks when frames carry the master's capture time. */
interface CaptureClock {
  /** Receive − capture delay added to every capture time, or null before the first such frame. */
  delayMs: number | null;
}

function emptyStats(): TrackTimelineStats {
  return {
    accepted: 0,
    droppedBeforeKeyframe: 0,
    droppedBeforeOrigin: 0,
    reanchors: 0,
    ssrcChanges: 0,
    rejectedCodec: 0,
    clampedNonMonotonic: 0,
    droppedDuplicate: 0,
    seqGaps: 0,
    framesLostUpstream: 0,
    droppedAfterGap: 0,
    captureTimed: 0,
    receiveLagMs: { p50: null, p95: null, max: null },
  };
}

const LAG_SAMPLES = 2000;

/**
 * Places received frames on one recording clock.
 *
 * When the master sends abs-capture-time (Chromium does, once the page negotiates it), every frame carries its
 * capture time on the master's one clock: both tracks are placed by it plus one fixed shared delay, so
 * audio and video line up as they were captured. Otherwise the two RTP clocks have unrelated offsets and no
 * RTCP sender-report mapping reaches the page, so each track is anchored at its first frame's receive wall
 * clock and advanced by RTP deltas (RTP keeps the sender's capture spacing, which receive times lose to
 * jitter and the 64 Hz delivery tick). The recording origin is the first video key frame: nothing before it can
 * be decoded.
 */
export class MediaTimeline {
  readonly #maxRtpJumpMs: number;
  readonly #onGap: ((gap: { kind: TrackKind; lost: number }) => void) | undefined;
  readonly #tracks: Record<TrackKind, TrackState>;
  /** Wall-clock ms of the recording origin, or null until the first video key frame. */
  #originMs: number | null = null;
  readonly #capture: CaptureClock = { delayMs: null };
  readonly #audioLeadMs: number;

  constructor(options: MediaTimelineOptions = {}) {
    this.#maxRtpJumpMs = options.maxRtpJumpMs ?? 5000;
    this.#onGap = options.onGap;
    this.#audioLeadMs = options.audioLeadMs ?? 0;
    const track = (kind: TrackKind): TrackState => ({
      ssrc: null,
      unwrapper: new RtpUnwrapper(),
      anchorRtp: 0,
      anchorTimeMs: 0,
      slewMs: 0,
      delays: [],
      lastOutMs: null,
      lastRtp: null,
      gated: kind === 'video',
      gatedByGap: false,
      expectedSeq: null,
      reconnected: false,
      stats: emptyStats(),
      lags: [],
      lagNext: 0,
      lastCapture: null,
    });
    this.#tracks = { video: track('video'), audio: track('audio') };
  }

  /** True once the first video key frame has been seen (recording started). */
  get started(): boolean {
    return this.#originMs !== null;
  }

  /**
   * A track's frame socket (re)connected. Whatever was in flight on the old connection may be lost, so video
   * waits for a key frame. The worker's numbering goes on across reconnects (wire.ts), so the expected number
   * is kept: frames skipped while the socket was down show up as a gap. A number lower than expected is a new
   * viewer session (new workers start at 0), not a loss.
   */
  connectionReset(kind: TrackKind): void {
    const track = this.#tracks[kind];
    if (track.expectedSeq !== null && kind === 'video') this.#gate(track, true);
    track.reconnected = true;
  }

  /** Holds video back until the next key frame (a run or the muxer lost frames downstream). */
  requireKeyFrame(): void {
    this.#gate(this.#tracks.video, true);
  }

  /** Returns the frame placed on the recording clock, or null if dropped (reason counted in stats()). */
  push(frame: WireFrame): TimedFrame | null {
    const { header } = frame;
    const track = this.#tracks[header.kind];
    // Before anything else: a rejected frame still used its sequence number.
    if (track.expectedSeq !== null && header.seq !== track.expectedSeq) {
      // A sequence that went backwards restarted (a new socket whose open we missed): lost count unknown.
      const diff = (header.seq - track.expectedSeq) >>> 0;
      const forward = diff < 2 ** 31;
      if (forward || !track.reconnected) {
        const lost = forward ? diff : 0;
        track.stats.seqGaps++;
        track.stats.framesLostUpstream += lost;
        if (header.kind === 'video') this.#gate(track, true);
        this.#onGap?.({ kind: header.kind, lost });
      }
    }
    track.reconnected = false;
    track.expectedSeq = (header.seq + 1) >>> 0;
    if (header.codec !== EXPECTED_CODEC[header.kind]) {
      track.stats.rejectedCodec++;
      return null;
    }

    if (track.ssrc !== header.ssrc) {
      if (track.ssrc !== null) track.stats.ssrcChanges++;
      this.#anchor(
        track,
        header.kind,
        header.ssrc,
        header.rtpTimestamp,
        header.receiveTimeMs,
        track.ssrc !== null,
      );
    }
    let rtp = track.unwrapper.unwrap(header.rtpTimestamp);
    let timeMs: number;
    const captureMs = this.#captureTime(track, header.kind, header.captureTimeMs, rtp);
    if (captureMs !== null) {
      // The master's one capture clock for both tracks, plus one shared delay: A/V as captured.
      timeMs = captureMs + this.#captureDelay(header.receiveTimeMs - captureMs);
      track.stats.captureTimed++;
    } else {
      timeMs = track.anchorTimeMs + ((rtp - track.anchorRtp) * 1000) / CLOCK_RATE[header.kind];
      if (Math.abs(timeMs - header.receiveTimeMs) > this.#maxRtpJumpMs) {
        this.#anchor(track, header.kind, header.ssrc, header.rtpTimestamp, header.receiveTimeMs, true);
        rtp = track.anchorRtp;
        timeMs = header.receiveTimeMs;
      }
      timeMs += this.#slew(track, header.kind, timeMs, header.receiveTimeMs);
    }
    if (header.kind === 'audio') timeMs -= this.#audioLeadMs;
    // One RTP timestamp per frame, in decode order (no B-frames in WebRTC H.264; Opus packets advance):
    // the same or an older timestamp is a re-delivery, not new media.
    if (track.lastRtp !== null && rtp <= track.lastRtp) {
      track.stats.droppedDuplicate++;
      return null;
    }

    if (header.kind === 'video' && track.gated) {
      if (!header.key) {
        if (track.gatedByGap) track.stats.droppedAfterGap++;
        else track.stats.droppedBeforeKeyframe++;
        return null;
      }
      track.gated = false;
      track.gatedByGap = false;
      // Whole ms: every output time (and its wall-clock time) is then a whole ms too, as Matroska stores them.
      this.#originMs ??= Math.round(timeMs);
    }
    // Matroska stores whole milliseconds: two frames in the same ms would collide, so quantise first. The
    // origin is a whole ms too, so compare after rounding: the key frame that set it (at …x.5 ms or later, so
    // rounded up) is at 0, not before the origin.
    const originMs = this.#originMs;
    // (`|| 0`: a key frame just under its rounded-up origin gives -0, which must not reach the muxer.)
    let outMs = originMs === null ? -1 : Math.round(timeMs - originMs) || 0;
    if (originMs === null || outMs < 0) {
      track.stats.droppedBeforeOrigin++;
      return null;
    }
    if (track.lastOutMs !== null && outMs <= track.lastOutMs) {
      outMs = track.lastOutMs + 1;
      track.stats.clampedNonMonotonic++;
    }
    track.lastOutMs = outMs;
    track.lastRtp = rtp;
    track.stats.accepted++;
    const lag = header.receiveTimeMs - (originMs + outMs);
    if (track.lags.length < LAG_SAMPLES) track.lags.push(lag);
    else track.lags[track.lagNext] = lag;
    track.lagNext = (track.lagNext + 1) % LAG_SAMPLES;
    return {
      kind: header.kind,
      key: header.key,
      timestampUs: outMs * 1000,
      data: frame.payload,
      width: header.width,
      height: header.height,
      receiveTimeMs: header.receiveTimeMs,
      wallClockMs: originMs + outMs,
    };
  }

  /**
   * Moves the track's correction towards the minimum receive delay of the last SLEW_WINDOW_MS, by at most
   * SLEW_RATE of the media time that passed: frames then carry times within the network's least delay of
   * when they were received, without a jump (at most a 2 % change of pace, invisible in playback).
   */
  #slew(track: TrackState, kind: TrackKind, anchoredMs: number, receiveMs: number): number {
    const delay = receiveMs - anchoredMs;
    const d = track.delays;
    while (d.length > 0 && d[d.length - 1]!.delayMs >= delay) d.pop();
    d.push({ atMs: receiveMs, delayMs: delay });
    while (d.length > 1 && d[0]!.atMs < receiveMs - SLEW_WINDOW_MS) d.shift();
    const target = d[0]!.delayMs;
    const step = SLEW_RATE * FRAME_MS[kind];
    track.slewMs += Math.max(-step, Math.min(step, target - track.slewMs));
    return track.slewMs;
  }

  /** The frame's capture time: its own, or from the track's last one by RTP; null without any. */
  #captureTime(track: TrackState, kind: TrackKind, own: number | undefined, rtp: number): number | null {
    if (own !== undefined) {
      track.lastCapture = { rtp, ms: own };
      return own;
    }
    const last = track.lastCapture;
    return last ? last.ms + ((rtp - last.rtp) * 1000) / CLOCK_RATE[kind] : null;
  }

  /**
   * The delay between the master's capture clock and our receive clock, shared by both tracks: the least delay
   * seen until the recording starts (frames before the first key frame are not written, so it may still go
   * down: a paced first key frame is often the latest frame of all), then fixed. Never slewed while recording:
   * audio reaches the encoder as back-to-back samples, so any change of pace applied to timestamps would move
   * the video against the audio a player hears (a 2 % slew measured +20 ms of A/V offset per second). It starts
   * over only when the clocks disagree by more than maxRtpJumpMs (a clock step, or days of drift): one counted
   * re-anchor.
   */
  #captureDelay(delayMs: number): number {
    const c = this.#capture;
    if (c.delayMs === null || Math.abs(delayMs - c.delayMs) > this.#maxRtpJumpMs) {
      if (c.delayMs !== null) for (const t of Object.values(this.#tracks)) t.stats.reanchors++;
      c.delayMs = delayMs;
    } else if (this.#originMs === null) {
      c.delayMs = Math.min(c.delayMs, delayMs);
    }
    return c.delayMs;
  }

  #gate(track: TrackState, byGap: boolean): void {
    if (!track.gated) track.gatedByGap = byGap;
    track.gated = true;
  }

  #anchor(
    track: TrackState,
    kind: TrackKind,
    ssrc: number,
    rtpTimestamp: number,
    receiveTimeMs: number,
    isReanchor: boolean,
  ): void {
    track.ssrc = ssrc;
    track.unwrapper.reset();
    track.anchorRtp = track.unwrapper.unwrap(rtpTimestamp);
    track.anchorTimeMs = receiveTimeMs;
    track.slewMs = 0;
    track.delays.length = 0;
    track.lastRtp = null;
    track.lastCapture = null;
    if (isReanchor) {
      track.stats.reanchors++;
      // A new RTP stream (or a broken clock) means the decoder state is gone: wait for a fresh key frame.
      if (kind === 'video') this.#gate(track, false);
    }
  }

  stats(): TimelineStats {
    const of = (t: TrackState): TrackTimelineStats => {
      const sorted = [...t.lags].sort((a, b) => a - b);
      const at = (p: number) =>
        sorted.length
          ? Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!)
          : null;
      return { ...t.stats, receiveLagMs: { p50: at(0.5), p95: at(0.95), max: at(1) } };
    };
    return { video: of(this.#tracks.video), audio: of(this.#tracks.audio) };
  }
}
