/**
 * The KVS WebRTC JS SDK for the browser bundles. Its CommonJS build needs Node's `events` module, which
 * Vite does not polyfill; the SDK's own browser build carries it and defines `window.KVSWebRTC`, so we load
 * that (bundled by Vite, nothing from a CDN) and type the small surface we use.
 */
import 'amazon-kinesis-video-streams-webrtc/dist/kvs-webrtc.js';

export type KvsRole = 'MASTER' | 'VIEWER';

export interface RequestSigner {
  getSignedURL(endpoint: string, queryParams: Record<string, string>, date?: Date): Promise<string>;
}

export interface KvsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface SignalingClientConfig {
  channelARN: string;
  channelEndpoint: string;
  region: string;
  role: KvsRole;
  clientId?: string;
  credentials?: KvsCredentials;
  requestSigner?: RequestSigner;
}

/** The SDK's payloads: what it decoded from `messagePayload`. */
export interface SignalingClient {
  open(): void;
  close(): void;
  sendSdpOffer(offer: RTCSessionDescriptionInit, recipientClientId?: string): void;
  sendSdpAnswer(answer: RTCSessionDescriptionInit, recipientClientId?: string): void;
  sendIceCandidate(candidate: RTCIceCandidateInit, recipientClientId?: string): void;
  on(event: 'open' | 'close', listener: () => void): this;
  on(event: 'error', listener: (error: unknown) => void): this;
  on(event: 'sdpOffer', listener: (offer: RTCSessionDescriptionInit, senderClientId?: string) => void): this;
  on(event: 'sdpAnswer', listener: (answer: RTCSessionDescriptionInit) => void): this;
  on(
    event: 'iceCandidate',
    listener: (candidate: RTCIceCandidateInit, senderClientId?: string) => void,
  ): this;
  on(event: 'statusResponse', listener: (status: unknown) => void): this;
  removeAllListeners(): this;
}

interface KvsWebRtcGlobal {
  SignalingClient: new (config: SignalingClientConfig) => SignalingClient;
  SigV4RequestSigner: new (region: string, credentials: KvsCredentials) => RequestSigner;
  Role: Record<KvsRole, KvsRole>;
}

function load(): KvsWebRtcGlobal {
  const sdk = (globalThis as unknown as { KVSWebRTC?: KvsWebRtcGlobal }).KVSWebRTC;
  if (!sdk) throw new Error('the KVS WebRTC SDK did not load');
  return sdk;
}

export const kvs: KvsWebRtcGlobal = load();
