/** The player page's playback modes (KVS HLS PlaybackMode values it offers). */
export type PlaybackMode = 'LIVE' | 'ON_DEMAND';

/** What the page shows, also read by tests (`window.playerState`). */
export interface PlayerState {
  /** A stream name, or for `local` a recording directory under the server's recordings root. */
  stream: string | undefined;
  /** `kvs`: a Kinesis video stream through its HLS session URL; `local`: the file sink's segments on disk. */
  source: 'kvs' | 'local';
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
