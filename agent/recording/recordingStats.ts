import type { TrackKind } from '../bridge/wire.js';
import type { MuxerStats } from '../media/muxer.js';
import type { TimedFrame, TimelineStats } from '../media/timeline.js';

export interface TrackSummary {
  frames: number;
  firstUs: number | null;
  lastUs: number | null;
}

export interface RecordingSummary {
  startedAt: string | null;
  files: string[];
  video: TrackSummary & {
    keyFrames: number;
    maxKeyFrameIntervalMs: number | null;
    meanKeyFrameIntervalMs: number | null;
    resolutions: string[];
  };
  audio: TrackSummary;
  /** Receive (worker) → handed to the muxer, ms. */
  latencyMs: { p50: number | null; p99: number | null; samples: number };
  /** Drops and re-anchors per track. */
  timeline?: TimelineStats;
  /** Queue, drops, stalls and mediabunny add() latency (muxer → gst stdin). */
  muxer?: MuxerStats;
  /** Frames this run could not keep (hold buffer full while gst started, audio before the run's start). */
  droppedFrames?: number;
}

/** What one recording run saw, for the closing report and the demo. Cheap per frame: counters only. */
export class RecordingStats {
  readonly #tracks: Record<TrackKind, TrackSummary> = {
    video: { frames: 0, firstUs: null, lastUs: null },
    audio: { frames: 0, firstUs: null, lastUs: null },
  };
  #keyFrames = 0;
  #lastKeyUs: number | null = null;
  #maxKeyIntervalUs = 0;
  #sumKeyIntervalUs = 0;
  readonly #resolutions = new Set<string>();
  // A fixed-size reservoir keeps percentile memory bounded on multi-day runs.
  readonly #latency: number[] = [];
  #latencySeen = 0;
  startedAt: Date | null = null;

  record(frame: TimedFrame, nowMs: number): void {
    const t = this.#tracks[frame.kind];
    t.frames++;
    t.firstUs ??= frame.timestampUs;
    t.lastUs = frame.timestampUs;
    if (frame.kind === 'video' && frame.key) {
      this.#keyFrames++;
      if (this.#lastKeyUs !== null) {
        const interval = frame.timestampUs - this.#lastKeyUs;
        this.#maxKeyIntervalUs = Math.max(this.#maxKeyIntervalUs, interval);
        this.#sumKeyIntervalUs += interval;
      }
      this.#lastKeyUs = frame.timestampUs;
      if (frame.width > 0 && frame.height > 0) this.#resolutions.add(`${frame.width}x${frame.height}`);
    }
    this.#latencySeen++;
    const sample = nowMs - frame.receiveTimeMs;
    if (this.#latency.length < 10_000) this.#latency.push(sample);
    else {
      const slot = Math.floor(Math.random() * this.#latencySeen);
      if (slot < this.#latency.length) this.#latency[slot] = sample;
    }
  }

  summary(files: string[]): RecordingSummary {
    const sorted = [...this.#latency].sort((a, b) => a - b);
    const pct = (p: number) =>
      sorted.length
        ? Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! * 10) / 10
        : null;
    const intervals = this.#keyFrames - 1;
    return {
      startedAt: this.startedAt?.toISOString() ?? null,
      files,
      video: {
        ...this.#tracks.video,
        keyFrames: this.#keyFrames,
        maxKeyFrameIntervalMs: intervals > 0 ? Math.round(this.#maxKeyIntervalUs / 1000) : null,
        meanKeyFrameIntervalMs: intervals > 0 ? Math.round(this.#sumKeyIntervalUs / intervals / 1000) : null,
        resolutions: [...this.#resolutions],
      },
      audio: { ...this.#tracks.audio },
      latencyMs: { p50: pct(0.5), p99: pct(0.99), samples: this.#latencySeen },
    };
  }
}
