import type { PageLog } from '../agent/bridge/controlProtocol.js';
import type { TrackKind } from '../agent/bridge/wire.js';

/** Options given to `new RTCRtpScriptTransform(worker, options)`; they arrive with the `rtctransform` event. */
export interface ForwarderOptions {
  kind: TrackKind;
  /** Base frame WebSocket URL (token included); the worker appends `&kind=`. */
  frameUrl: string;
  /** Video only: request a key frame when none was seen for this long. */
  keyframeIntervalMs: number;
}

/** Running totals of one transform worker, since it started. */
export interface ForwarderCounters {
  kind: TrackKind;
  /** Frames seen by the transform (every one of them was enqueued to the decoder). */
  framesSeen: number;
  framesForwarded: number;
  /** Frames not sent: socket not open, or too much data already buffered. */
  framesSkipped: number;
  /** Messages from the agent on the frame socket that were not valid JSON or not known. */
  frameSocketInvalid: number;
  bytesForwarded: number;
  keyFrames: number;
  /** Video: RTP time between the last two key frames, ms; 0 until two were seen. */
  keyFrameIntervalMs: number;
  keyFrameRequests: number;
  keyFrameRequestFailures: number;
  mimeType: string;
  width: number;
  height: number;
  socketOpen: boolean;
}

/** Worker → main thread. */
export type WorkerToMain = { type: 'counters'; counters: ForwarderCounters } | PageLog;
