/**
 * The call as received, in a <video>: only when headed (Chromium decodes the call anyway; a headless agent
 * has nobody to show it to, so it does not render it). The audio track is played too, at full volume, so
 * that inbound-rtp `audioLevel` (computed after the element's volume: muted reads 0) feeds the meter; the
 * headed Chromium's audio output is a fake one (HEADED_CHROMIUM_FLAGS), so nothing is heard.
 */
export class VideoView {
  readonly element: HTMLVideoElement;

  constructor() {
    const video = document.createElement('video');
    video.muted = false;
    video.volume = 1;
    video.autoplay = true;
    video.playsInline = true;
    video.dataset.field = 'video';
    this.element = video;
  }

  /** Shows this peer connection's received tracks (a new session, a new peer connection). */
  attach(pc: RTCPeerConnection): void {
    const tracks = pc.getReceivers().map((r) => r.track);
    this.element.srcObject = new MediaStream(tracks);
    this.element.play().catch(() => undefined);
  }

  detach(): void {
    this.element.srcObject = null;
  }
}
