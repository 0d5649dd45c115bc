import type { TrackKind } from '../bridge/wire.js';
import { LatencyReservoir } from '../media/latencyReservoir.js';
import type { LatencySummary, MuxerStats } from '../media/muxer.js';
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
  /** Receive (worker) → handed to the muxer, ms; frames received after the run was up. */
  latencyMs: LatencySummary;
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
  readonly #latency = new LatencyReservoir();
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
    // Steady state only: frames held while gst started are the start-up time, reported on its own.
    if (this.startedAt && frame.receiveTimeMs >= this.startedAt.getTime())
      this.#latency.add(nowMs - frame.receiveTimeMs);
  }

  summary(files: string[]): RecordingSummary {
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
      latencyMs: this.#latency.summary(),
    };
  }
}
