import type { TrackKind } from '../bridge/wire.js';

/**
 * Watches what users care about — frames arriving per track, and the page's heartbeat — and escalates in
 * steps when they stop while the call claims to be up. A supervisor that only reacts to exits misses a hung
 * renderer, a frozen master or a broken transform; this catches them.
 *
 * Video, while the peer connection is `connected` (ms since the last video frame):
 * | after | action |
 * |---|---|
 * | 1.5 s | ask the master for a key frame |
 * | 3.5 s | new peer connection (the page makes a new offer) |
 * | 10 s | reload the page |
 * | 15 s | relaunch Chromium |
 * Then it starts over after a 30 s cool-down (a master that is connected but sends nothing for hours must not
 * make the agent spin). Audio missing for 5 s while video flows is reported; at 15 s one new peer connection
 * is tried per episode. No heartbeat for 4 s: the page is hung (reload, then relaunch, decided by the agent).
 * When the peer is not connected (the master is gone) nothing escalates: the page keeps offering by itself.
 */
export type WatchdogAction =
  | 'request-keyframe'
  | 'new-peer-connection'
  | 'reload-page'
  | 'relaunch-browser'
  | 'page-hung'
  | 'audio-stalled';

export interface WatchdogInput {
  nowMs: number;
  /** The page said hello and has not been replaced since. */
  pageUp: boolean;
  lastHeartbeatMs: number | null;
  peerConnected: boolean;
  lastFrameMs: Record<TrackKind, number | null>;
}

export interface WatchdogThresholds {
  keyFrameMs: number;
  newPeerMs: number;
  reloadMs: number;
  relaunchMs: number;
  coolDownMs: number;
  audioReportMs: number;
  audioNewPeerMs: number;
  heartbeatMs: number;
  /** Steps past the key-frame request wait until the connection has been up this long (media takes a moment). */
  settleMs: number;
}

export const DEFAULT_WATCHDOG: WatchdogThresholds = {
  keyFrameMs: 1_500,
  newPeerMs: 3_500,
  reloadMs: 10_000,
  relaunchMs: 15_000,
  coolDownMs: 30_000,
  audioReportMs: 5_000,
  audioNewPeerMs: 15_000,
  heartbeatMs: 4_000,
  settleMs: 3_000,
};

const LADDER: Array<[keyof WatchdogThresholds, WatchdogAction]> = [
  ['keyFrameMs', 'request-keyframe'],
  ['newPeerMs', 'new-peer-connection'],
  ['reloadMs', 'reload-page'],
  ['relaunchMs', 'relaunch-browser'],
];

export class MediaWatchdog {
  readonly #t: WatchdogThresholds;
  /** Start of the current video stall episode, and how far up the ladder it went. */
  #videoStallSince: number | null = null;
  #videoStep = 0;
  #coolDownUntil = 0;
  #audioStep = 0;
  #heartbeatReported = false;
  /** When the peer was last seen connected: an episode ends if the master is gone for a while. */
  #lastConnectedMs: number | null = null;
  /** Start of the current continuous `connected` period. */
  #connectedSince: number | null = null;

  constructor(thresholds: Partial<WatchdogThresholds> = {}) {
    this.#t = { ...DEFAULT_WATCHDOG, ...thresholds };
  }

  /** The video stall episode in progress, in ms, or 0. */
  videoStalledMs(nowMs: number): number {
    return this.#videoStallSince === null ? 0 : nowMs - this.#videoStallSince;
  }

  /** Call periodically (every ~250 ms); returns the actions due now, in order. */
  tick(input: WatchdogInput): WatchdogAction[] {
    const actions: WatchdogAction[] = [];
    const now = input.nowMs;
    if (!input.pageUp) {
      this.#reset();
      this.#heartbeatReported = false;
      return actions;
    }
    if (input.lastHeartbeatMs !== null && now - input.lastHeartbeatMs > this.#t.heartbeatMs) {
      if (!this.#heartbeatReported) actions.push('page-hung');
      this.#heartbeatReported = true;
      return actions;
    }
    this.#heartbeatReported = false;

    if (input.peerConnected) {
      this.#lastConnectedMs = now;
      this.#connectedSince ??= now;
    } else {
      this.#connectedSince = null;
      if (this.#lastConnectedMs === null || now - this.#lastConnectedMs > this.#t.relaunchMs) {
        // Master gone (or never there): the page's own offers handle it; start afresh once it is back.
        this.#reset();
        return actions;
      }
    }

    const lastVideo = input.lastFrameMs.video;
    const videoAge = lastVideo === null ? null : now - lastVideo;
    if (videoAge !== null && videoAge < this.#t.keyFrameMs) {
      this.#videoStallSince = null;
      this.#videoStep = 0;
    } else if (input.peerConnected) {
      // The episode starts at the last frame, or when the connection came up without any.
      this.#videoStallSince ??= lastVideo ?? now;
      const stalled = now - this.#videoStallSince;
      if (now >= this.#coolDownUntil) {
        const settled = now - (this.#connectedSince ?? now) >= this.#t.settleMs;
        while (
          this.#videoStep < LADDER.length &&
          stalled >= this.#t[LADDER[this.#videoStep]![0]] &&
          (this.#videoStep === 0 || settled)
        ) {
          actions.push(LADDER[this.#videoStep]![1]);
          this.#videoStep++;
        }
        if (this.#videoStep >= LADDER.length) {
          this.#coolDownUntil = now + this.#t.coolDownMs;
          this.#videoStallSince = null;
          this.#videoStep = 0;
        }
      }
    }

    const lastAudio = input.lastFrameMs.audio;
    const videoFlowing = videoAge !== null && videoAge < this.#t.keyFrameMs;
    if (lastAudio !== null && videoFlowing && input.peerConnected) {
      const audioAge = now - lastAudio;
      if (audioAge < this.#t.audioReportMs) this.#audioStep = 0;
      else if (this.#audioStep === 0) {
        actions.push('audio-stalled');
        this.#audioStep = 1;
      } else if (this.#audioStep === 1 && audioAge >= this.#t.audioNewPeerMs) {
        actions.push('new-peer-connection');
        this.#audioStep = 2;
      }
    }
    return actions;
  }

  #reset(): void {
    this.#videoStallSince = null;
    this.#videoStep = 0;
    this.#audioStep = 0;
  }
}
