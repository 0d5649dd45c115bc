import type { FragmentAck } from '../bridge/controlProtocol.js';
import type { TimedFrame } from '../media/timeline.js';
import type { TypedEmitter } from '../typedEmitter.js';
import type { SinkSpec } from './pipeline.js';

/** What a sink knows about the run in progress, to decide whether a key frame starts the next one. */
export interface RunInfo {
  /** The run's first key frame. */
  first: TimedFrame;
  /** `WxH` of the run's first key frame. */
  size: string;
}

/** Everything one run (one gst-launch child) needs from its sink. */
export interface RunPlan {
  spec: SinkSpec;
  /** Extra environment of the gst child (kvssink: region, endpoint). Nothing else of ours reaches it. */
  gstEnv?: Record<string, string>;
  /** How long gst may take to come up (kvssink describes the stream and gets its endpoint first). */
  readyTimeoutMs: number;
  /** Every gst output line (kvssink: error parsing). */
  onGstLine?: (line: string) => void;
  /**
   * Map a frame's recording timestamp to what the Matroska stream carries. Files start each segment at 0;
   * kvssink (use-original-pts) gets the frame's own wall-clock time, so sessions never move in time.
   */
  timestampUs: (frame: TimedFrame, run: RunInfo) => number;
  /** A run must not end on a key frame (kvssink: see MatroskaStreamMuxerOptions.dropTrailingKeyFrame). */
  dropTrailingKeyFrame?: boolean;
}

export interface SinkHealth {
  ready: boolean;
  /** Why not ready (stale credentials, stream missing …). */
  reasons: string[];
  /** Unix seconds when the sink's credentials expire, if it has any. */
  credentialExpiry?: number;
}

export interface SinkEvents extends Record<string, unknown[]> {
  /** The current run cannot go on (kvssink reported a stream error it will not recover from). */
  'run-failed': [Error];
  /** kvssink acknowledged a fragment (`timecode`: the fragment's producer timestamp, ms). */
  'fragment-ack': [{ ack: FragmentAck; timecode: number }];
}

/**
 * Where a recording goes, with the sink's own rules: run boundaries (segments, renewals), how runs are
 * sequenced, credentials and which of its errors end a run. The Recorder knows none of these rules.
 */
export interface Sink extends TypedEmitter<SinkEvents> {
  readonly kind: SinkSpec['kind'];
  /**
   * A new run may start only after the previous one has finished (one PutMedia connection per stream).
   * Frames wait meanwhile.
   */
  readonly sequentialRuns: boolean;
  /** Before any media, and again before a run that follows a failure (a deleted stream is re-created). */
  prepare(): Promise<void>;
  /** The plan of the next run; called when the run starts. */
  nextRun(): RunPlan;
  /** Whether this key frame should end the current run and start the next one; the reason, or null. */
  renewalReason(run: RunInfo, keyFrame: TimedFrame): string | null;
  /** How long a run may take to finish gracefully before its gst is killed. */
  readonly closeTimeoutMs: number;
  health(): SinkHealth;
  /** After the last run has finished. Idempotent. */
  close(): Promise<void>;
}

export function frameSize(frame: TimedFrame): string {
  return `${frame.width}x${frame.height}`;
}
