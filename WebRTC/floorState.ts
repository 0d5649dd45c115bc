/** What the receive-floor page (floorViewer.ts) shows per channel as `window.floorState`; read by the bench. */
export interface FloorChannelState {
  connectionState: string;
  framesDecoded: number;
  /** Audio samples the receiver produced: proof that audio is decoded too. */
  audioSamples: number;
  width: number;
  height: number;
  error?: string;
}
