/** What the reference master page exposes as `window.masterState` (read by tests and scripts/lib/masterBrowser.ts). */
export interface ViewerPeerState {
  connectionState: string;
  framesEncoded: number;
  codec: string;
  width: number;
  height: number;
}

export interface MasterState {
  /** 'idle' before Start, then 'connecting' | 'open' | 'closed' | 'error'. */
  signaling: string;
  viewers: Record<string, ViewerPeerState>;
  /** The last error shown in the log panel, if any. */
  error?: string;
}
