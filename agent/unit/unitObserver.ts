import type { TrackKind } from '../bridge/wire.js';
import type { RecorderStatus } from '../recording/recorder.js';

/** Causes of dropped frames, as metrics label them. */
export type DropCause =
  | 'bridge_rejected'
  | 'seq_gap'
  | 'before_keyframe'
  | 'duplicate'
  | 'queue_overflow'
  | 'muxer_rejected'
  | 'no_run'
  | 'after_stop';

export type ReconnectCause =
  | 'media_watchdog'
  | 'channel_changed'
  | 'go_away'
  | 'reconnect_ice_server'
  | 'page_reload'
  | 'browser_relaunch';

export type RestartedChild = 'chromium' | 'page' | 'gst';

/** What a recording unit reports as it goes (the agent turns it into metrics, labelled by channel). */
export interface UnitObserver {
  frameReceived(kind: TrackKind, bytes: number, latencyMs: number): void;
  dropped(cause: DropCause, kind: TrackKind, frames: number): void;
  gap(kind: TrackKind, seconds: number): void;
  reconnect(cause: ReconnectCause): void;
  childRestart(child: RestartedChild): void;
  recorderStatus(status: RecorderStatus): void;
}
