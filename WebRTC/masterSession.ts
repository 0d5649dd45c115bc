import { kvs, type KvsCredentials, type SignalingClient } from '../page/kvsSdk.js';
import { discoverMasterChannel } from './channelDiscovery.js';
import { requestSignerFor } from './emulatorSigner.js';
import type { MasterState, ViewerPeerState } from './masterState.js';

export interface MasterOptions {
  region: string;
  channelName: string;
  credentials: KvsCredentials;
  /** Control-plane endpoint override; empty = real AWS. */
  endpoint: string;
  /** `degradationPreference: 'maintain-resolution'` on the video sender (no start-of-call ramp). */
  maintainResolution: boolean;
}

type Log = (level: 'info' | 'warn' | 'error', msg: string) => void;

interface ViewerPeer {
  pc: RTCPeerConnection;
  remoteSet: boolean;
  pendingCandidates: RTCIceCandidateInit[];
  state: ViewerPeerState;
}

const STATS_INTERVAL_MS = 1_000;

/**
 * The reference master: camera + microphone, one RTCPeerConnection per viewer (keyed by the viewer's client
 * id; a new offer from the same viewer replaces its old connection), answers and trickles ICE.
 */
export class MasterSession {
  readonly state: MasterState = { signaling: 'idle', viewers: {} };
  readonly #options: MasterOptions;
  readonly #log: Log;
  readonly #peers = new Map<string, ViewerPeer>();
  #stream: MediaStream | undefined;
  #signaling: SignalingClient | undefined;
  #iceServers: RTCIceServer[] = [];
  #statsTimer: ReturnType<typeof setInterval> | undefined;
  #stopped = false;

  constructor(options: MasterOptions, log: Log) {
    this.#options = options;
    this.#log = log;
  }

  get localStream(): MediaStream | undefined {
    return this.#stream;
  }

  async start(): Promise<void> {
    const o = this.#options;
    this.state.signaling = 'connecting';
    this.#stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } },
      audio: true,
    });
    const channel = await discoverMasterChannel({
      region: o.region,
      channelName: o.channelName,
      credentials: o.credentials,
      endpoint: o.endpoint,
    });
    if (this.#stopped) return;
    this.#iceServers = channel.iceServers;
    this.#log('info', `channel ${channel.channelARN}, signaling ${channel.wssEndpoint}`);
    const client = new kvs.SignalingClient({
      channelARN: channel.channelARN,
      channelEndpoint: channel.wssEndpoint,
      region: o.region,
      role: kvs.Role.MASTER,
      requestSigner: requestSignerFor(o.region, o.credentials),
    });
    this.#signaling = client;
    client.on('open', () => {
      this.state.signaling = 'open';
      this.#log('info', 'signaling open as MASTER');
    });
    client.on('close', () => {
      this.state.signaling = 'closed';
      if (!this.#stopped) this.#log('warn', 'signaling closed');
    });
    client.on('error', (err) => this.#log('error', `signaling error: ${describe(err)}`));
    client.on('sdpOffer', (offer, viewerId) => {
      if (!viewerId) return this.#log('warn', 'offer without a sender client id');
      void this.#answer(offer, viewerId);
    });
    client.on('iceCandidate', (candidate, viewerId) => {
      const peer = viewerId ? this.#peers.get(viewerId) : undefined;
      if (!peer) return;
      if (peer.remoteSet) this.#addCandidate(peer, candidate);
      else peer.pendingCandidates.push(candidate);
    });
    client.open();
    this.#statsTimer = setInterval(() => void this.#refreshStats(), STATS_INTERVAL_MS);
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#statsTimer);
    this.#signaling?.removeAllListeners();
    // Closing a socket still connecting makes the SDK emit 'error', which throws without a listener.
    this.#signaling?.on('error', () => undefined);
    this.#signaling?.close();
    this.#signaling = undefined;
    for (const [id, peer] of this.#peers) {
      peer.pc.close();
      this.#peers.delete(id);
    }
    for (const track of this.#stream?.getTracks() ?? []) track.stop();
    this.#stream = undefined;
    this.state.signaling = 'closed';
    this.state.viewers = {};
  }

  async #answer(offer: RTCSessionDescriptionInit, viewerId: string): Promise<void> {
    const old = this.#peers.get(viewerId);
    if (old) {
      this.#log('info', `new offer from ${viewerId}: replacing its connection`);
      old.pc.close();
    }
    const pc = new RTCPeerConnection({ iceServers: this.#iceServers });
    const peer: ViewerPeer = {
      pc,
      remoteSet: false,
      pendingCandidates: [],
      state: { connectionState: 'new', framesEncoded: 0, codec: '', width: 0, height: 0 },
    };
    this.#peers.set(viewerId, peer);
    this.state.viewers[viewerId] = peer.state;
    pc.addEventListener('connectionstatechange', () => {
      peer.state.connectionState = pc.connectionState;
      this.#log('info', `viewer ${viewerId}: ${pc.connectionState}`);
    });
    pc.addEventListener('icecandidate', (event) => {
      if (!event.candidate) return;
      try {
        this.#signaling?.sendIceCandidate(event.candidate.toJSON(), viewerId);
      } catch (err) {
        this.#log('warn', `could not send an ICE candidate to ${viewerId}: ${describe(err)}`);
      }
    });
    try {
      for (const track of this.#stream?.getTracks() ?? []) {
        const sender = pc.addTrack(track, this.#stream!);
        if (track.kind === 'video' && this.#options.maintainResolution) {
          const params = sender.getParameters() as RTCRtpSendParameters & { degradationPreference?: string };
          params.degradationPreference = 'maintain-resolution';
          await sender.setParameters(params);
        }
      }
      await pc.setRemoteDescription(offer);
      peer.remoteSet = true;
      for (const c of peer.pendingCandidates.splice(0)) this.#addCandidate(peer, c);
      await pc.setLocalDescription(await pc.createAnswer());
      if (this.#peers.get(viewerId) !== peer) return;
      this.#signaling?.sendSdpAnswer(pc.localDescription!.toJSON(), viewerId);
      this.#log('info', `answered ${viewerId}`);
    } catch (err) {
      this.#log('error', `could not answer ${viewerId}: ${describe(err)}`);
    }
  }

  #addCandidate(peer: ViewerPeer, candidate: RTCIceCandidateInit): void {
    peer.pc.addIceCandidate(candidate).catch((err: unknown) => {
      this.#log('warn', `ICE candidate refused: ${describe(err)}`);
    });
  }

  async #refreshStats(): Promise<void> {
    for (const [id, peer] of this.#peers) {
      if (peer.pc.connectionState === 'closed') continue;
      const report = await peer.pc.getStats();
      const codecs = new Map<string, string>();
      let video:
        { framesEncoded?: number; frameWidth?: number; frameHeight?: number; codecId?: string } | undefined;
      report.forEach((s: { type: string; id: string; kind?: string; mimeType?: string }) => {
        if (s.type === 'codec' && s.mimeType) codecs.set(s.id, s.mimeType);
        if (s.type === 'outbound-rtp' && s.kind === 'video') video = s as typeof video;
      });
      if (!video || this.#peers.get(id) !== peer) continue;
      peer.state.framesEncoded = video.framesEncoded ?? 0;
      peer.state.width = video.frameWidth ?? 0;
      peer.state.height = video.frameHeight ?? 0;
      peer.state.codec = (video.codecId && codecs.get(video.codecId)) ?? '';
    }
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err instanceof Event) return `${err.type} event`;
  return String(err);
}
