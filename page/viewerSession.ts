import type { PageToAgent, SignalingState, ViewerConfig } from '../agent/bridge/controlProtocol.js';
import type { TrackKind } from '../agent/bridge/wire.js';
import {
  answerHasH264Video,
  audioCodecPreferences,
  CodecUnavailableError,
  videoCodecPreferences,
} from './codecPreferences.js';
import { kvs, type SignalingClient } from './kvsSdk.js';
import { observeSignaling, type RawSignalingMessage } from './signalingTap.js';
import type { ForwarderCounters, ForwarderOptions, WorkerToMain } from './workerProtocol.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface SessionState {
  signaling: SignalingState;
  peer: RTCPeerConnectionState;
  ice: RTCIceConnectionState;
}

export interface ViewerSessionHooks {
  presign(endpoint: string, queryParams: Record<string, string>, date?: Date): Promise<string>;
  state(state: SessionState): void;
  signalingEvent(event: Extract<PageToAgent, { type: 'signaling-event' }>['event'], detail?: string): void;
  log(level: LogLevel, msg: string, data?: Record<string, unknown>): void;
  counters(counters: ForwarderCounters): void;
}

export interface SessionEnd {
  reason: string;
  /** The peer reached `connected` at least once (the retry backoff starts over). */
  connected: boolean;
}

/** How long `disconnected` may last before the peer connection counts as lost (it often recovers). */
const DISCONNECTED_GRACE_MS = 5_000;
/** Signaling reconnects (GO_AWAY, 1-hour limit) tried while media keeps flowing. */
const MAX_SIGNALING_RECONNECTS = 5;

/**
 * One viewer connection: a signaling client, one peer connection, two transform workers. It never restarts
 * itself beyond replacing the signaling socket under a live call; when it ends, `ended` resolves and the
 * owner decides whether and when to start a new one.
 */
export class ViewerSession {
  readonly ended: Promise<SessionEnd>;
  readonly #config: ViewerConfig;
  readonly #hooks: ViewerSessionHooks;
  readonly #pc: RTCPeerConnection;
  readonly #workers: Worker[] = [];
  #signaling: SignalingClient | undefined;
  #signalingState: SignalingState = 'connecting';
  #signalingReconnects = 0;
  #offerSent = false;
  #remoteSet = false;
  readonly #remoteCandidates: RTCIceCandidateInit[] = [];
  readonly #localCandidates: RTCIceCandidateInit[] = [];
  #disconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #connected = false;
  #closed = false;
  #resolveEnded!: (end: SessionEnd) => void;

  constructor(config: ViewerConfig, hooks: ViewerSessionHooks) {
    this.#config = config;
    this.#hooks = hooks;
    this.ended = new Promise((resolve) => (this.#resolveEnded = resolve));
    this.#pc = new RTCPeerConnection({ iceServers: config.iceServers });
  }

  get peerConnection(): RTCPeerConnection {
    return this.#pc;
  }

  start(): void {
    try {
      this.#setUpMedia();
    } catch (err) {
      // No H.264 receiver means nothing could ever be recorded: say so loudly.
      const what = err instanceof CodecUnavailableError ? 'no usable codec' : 'setup failed';
      this.#hooks.log('error', `viewer ${what}: ${String(err)}`);
      this.close(`setup failed: ${String(err)}`);
      return;
    }
    this.#pc.addEventListener('connectionstatechange', () => this.#onPeerState());
    this.#pc.addEventListener('iceconnectionstatechange', () => this.#report());
    this.#pc.addEventListener('icecandidate', (event) => {
      if (!event.candidate) return;
      const candidate = event.candidate.toJSON();
      if (this.#signalingState === 'open' && this.#signaling) this.#sendCandidate(candidate);
      else this.#localCandidates.push(candidate);
    });
    this.#connectSignaling();
  }

  /** Idempotent. */
  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#disconnectTimer);
    observeSignaling(undefined);
    const signaling = this.#signaling;
    this.#signaling = undefined;
    signaling?.removeAllListeners();
    signaling?.close();
    this.#pc.close();
    for (const w of this.#workers) w.terminate();
    this.#signalingState = 'closed';
    this.#report();
    this.#hooks.log('info', 'viewer session ended', { reason });
    this.#resolveEnded({ reason, connected: this.#connected });
  }

  #setUpMedia(): void {
    const video = this.#pc.addTransceiver('video', { direction: 'recvonly' });
    const audio = this.#pc.addTransceiver('audio', { direction: 'recvonly' });
    video.setCodecPreferences(videoCodecPreferences(RTCRtpReceiver.getCapabilities('video')?.codecs ?? []));
    audio.setCodecPreferences(audioCodecPreferences(RTCRtpReceiver.getCapabilities('audio')?.codecs ?? []));
    // Attached before any media flows so the very first frame goes through the transform.
    this.#attachTransform(video.receiver, 'video');
    this.#attachTransform(audio.receiver, 'audio');
  }

  #attachTransform(receiver: RTCRtpReceiver, kind: TrackKind): void {
    const worker = new Worker(new URL('./frameForwarder.worker.ts', import.meta.url), {
      type: 'module',
      name: `frames-${kind}`,
    });
    worker.addEventListener('message', (event: MessageEvent<WorkerToMain>) => {
      const msg = event.data;
      if (msg.type === 'counters') this.#hooks.counters(msg.counters);
      else this.#hooks.log(msg.level, `[${kind} worker] ${msg.msg}`, msg.data);
    });
    worker.addEventListener('error', (event: ErrorEvent) =>
      this.#hooks.log('error', `${kind} worker error: ${event.message}`),
    );
    this.#workers.push(worker);
    const options: ForwarderOptions = {
      kind,
      frameUrl: this.#config.frameUrl,
      keyframeIntervalMs: this.#config.keyframeIntervalMs,
    };
    receiver.transform = new RTCRtpScriptTransform(worker, options);
  }

  #connectSignaling(): void {
    const client = new kvs.SignalingClient({
      channelARN: this.#config.channelARN,
      channelEndpoint: this.#config.channelEndpoint,
      region: this.#config.region,
      role: kvs.Role.VIEWER,
      clientId: this.#config.clientId,
      requestSigner: { getSignedURL: (endpoint, query, date) => this.#hooks.presign(endpoint, query, date) },
    });
    const previous = this.#signaling;
    this.#signaling = client;
    const isCurrent = () => this.#signaling === client && !this.#closed;
    observeSignaling((msg) => {
      if (isCurrent()) this.#onRawSignaling(msg);
    });
    this.#signalingState = 'connecting';
    this.#report();

    client.on('open', () => {
      if (!isCurrent()) return;
      // The replaced connection goes only once the new one is up, so the master can always reach us.
      if (previous) {
        previous.removeAllListeners();
        previous.close();
      }
      this.#signalingState = 'open';
      this.#signalingReconnects = 0;
      this.#report();
      this.#hooks.log('info', 'signaling open');
      for (const c of this.#localCandidates.splice(0)) this.#sendCandidate(c);
      if (!this.#offerSent) void this.#sendOffer();
    });
    client.on('sdpAnswer', (answer) => {
      if (isCurrent()) void this.#onAnswer(answer);
    });
    client.on('iceCandidate', (candidate) => {
      if (!isCurrent()) return;
      if (this.#remoteSet) this.#addRemoteCandidate(candidate);
      else this.#remoteCandidates.push(candidate);
    });
    client.on('error', (err) => {
      if (isCurrent()) this.#hooks.log('warn', `signaling error: ${describe(err)}`);
    });
    client.on('close', () => {
      if (!isCurrent()) return;
      this.#signalingState = 'closed';
      this.#report();
      this.#onSignalingLost('signaling closed');
    });
    client.open();
  }

  /** Media is peer to peer: a live call survives its signaling socket, so only reconnect that. */
  #onSignalingLost(reason: string): void {
    if (this.#pc.connectionState === 'connected' && this.#signalingReconnects < MAX_SIGNALING_RECONNECTS) {
      this.#signalingReconnects++;
      this.#hooks.log('warn', `${reason}; reconnecting signaling, the call continues`, {
        attempt: this.#signalingReconnects,
      });
      setTimeout(() => {
        if (!this.#closed) this.#connectSignaling();
      }, 500 * this.#signalingReconnects);
      return;
    }
    this.close(reason);
  }

  #onRawSignaling(msg: RawSignalingMessage): void {
    switch (msg.messageType) {
      case 'GO_AWAY':
        this.#hooks.signalingEvent('go-away');
        this.#hooks.log('warn', 'GO_AWAY: reconnecting signaling');
        this.#connectSignaling();
        return;
      case 'RECONNECT_ICE_SERVER':
        this.#hooks.signalingEvent('reconnect-ice-server');
        // TURN relays are going away: start over with fresh ICE servers from the agent.
        this.close('RECONNECT_ICE_SERVER');
        return;
      case 'STATUS_RESPONSE':
        this.#hooks.signalingEvent(
          'status-response',
          JSON.stringify(msg.statusResponse ?? {}).slice(0, 2000),
        );
        return;
      default:
        return;
    }
  }

  async #sendOffer(): Promise<void> {
    this.#offerSent = true;
    try {
      const offer = await this.#pc.createOffer();
      await this.#pc.setLocalDescription(offer);
      const local = this.#pc.localDescription;
      if (!local || !this.#signaling) throw new Error('no local description or signaling');
      this.#signaling.sendSdpOffer(local.toJSON());
      this.#hooks.log('info', 'SDP offer sent');
    } catch (err) {
      this.#hooks.log('error', `could not send the offer: ${describe(err)}`);
      this.close('offer failed');
    }
  }

  async #onAnswer(answer: RTCSessionDescriptionInit): Promise<void> {
    if (this.#remoteSet) return;
    try {
      await this.#pc.setRemoteDescription(answer);
      this.#remoteSet = true;
      for (const c of this.#remoteCandidates.splice(0)) this.#addRemoteCandidate(c);
      this.#hooks.log('info', 'SDP answer applied');
      if (!answerHasH264Video(answer.sdp ?? '')) {
        this.#hooks.log('error', 'the master did not accept H.264 video: nothing can be recorded', {
          answer: (answer.sdp ?? '').slice(0, 3000),
        });
        this.close('master cannot send H.264');
      }
    } catch (err) {
      this.#hooks.log('error', `could not apply the answer: ${describe(err)}`);
      this.close('answer failed');
    }
  }

  #addRemoteCandidate(candidate: RTCIceCandidateInit): void {
    this.#pc.addIceCandidate(candidate).catch((err: unknown) => {
      this.#hooks.log('warn', `remote ICE candidate refused: ${describe(err)}`);
    });
  }

  #sendCandidate(candidate: RTCIceCandidateInit): void {
    try {
      this.#signaling?.sendIceCandidate(candidate);
    } catch (err) {
      this.#localCandidates.push(candidate);
      this.#hooks.log('warn', `could not send an ICE candidate: ${describe(err)}`);
    }
  }

  #onPeerState(): void {
    const state = this.#pc.connectionState;
    this.#report();
    if (state === 'connected') {
      this.#connected = true;
      clearTimeout(this.#disconnectTimer);
      this.#disconnectTimer = undefined;
    } else if (state === 'failed') {
      this.close('peer connection failed');
    } else if (state === 'disconnected' && !this.#disconnectTimer) {
      this.#disconnectTimer = setTimeout(() => {
        this.#disconnectTimer = undefined;
        if (this.#pc.connectionState === 'disconnected') this.close('peer connection disconnected for 5 s');
      }, DISCONNECTED_GRACE_MS);
    }
  }

  #report(): void {
    this.#hooks.state({
      signaling: this.#signalingState,
      peer: this.#pc.connectionState,
      ice: this.#pc.iceConnectionState,
    });
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err instanceof Event) return `${err.type} event`;
  return String(err);
}
