/** The player page's playback modes (KVS HLS PlaybackMode values it offers). */
export type PlaybackMode = 'LIVE' | 'ON_DEMAND';

/** What the page shows, also read by tests (`window.playerState`). */
export interface PlayerState {
  stream: string | undefined;
  mode: PlaybackMode | undefined;
  /** `waiting`: LIVE on a stream with no fragment in the last 30 s; the page retries every 2 s. */
  state: 'idle' | 'loading' | 'waiting' | 'playing' | 'paused' | 'ended' | 'error';
  width: number;
  height: number;
  resolutionsSeen: string[];
  currentTime: number;
  /** Producer time (ms) of the frame on screen, from EXT-X-PROGRAM-DATE-TIME. */
  playingDateMs: number | undefined;
  /** Live: how far the picture's producer time is behind this machine's clock (ms). */
  behindLiveMs: number | undefined;
  audioDecodedBytes: number;
  fragments: number;
  gaps: number;
  errors: string[];
}
