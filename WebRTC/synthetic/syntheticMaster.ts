import { createHash, randomInt } from 'node:crypto';
import kvsWebrtc from 'amazon-kinesis-video-streams-webrtc';
import {
  RTCPeerConnection,
  RTCRtpHeaderExtensionParameters,
  RtpHeader,
  RtpPacket,
  useAbsSendTime,
  useH264,
  useNACK,
  useOPUS,
  usePLI,
  useSdesMid,
  type RTCRtpSender,
} from 'werift';
import { WebSocket as NodeWebSocket } from 'ws';
import type { Logger } from '../../agent/log.js';
import { discoverMasterChannel, type IceServer, type KvsCredentials } from '../channelDiscovery.js';
import { allowWsScheme } from '../wsSchemeSigner.js';
import {
  AUDIO_PACKET_SAMPLES,
  AUDIO_RATE,
  FPS,
  GRID_FRAMES,
  GRID_PACKETS,
  VIDEO_CLOCK,
  type Clip,
} from './clip.js';
import { packetizeH264 } from './h264Packetizer.js';

/** One frame or packet as it left the master: what a recording is matched against. */
export interface SentFrame {
  kind: 'video' | 'audio';
  viewer: string;
  /** Position on the master's clock (frame or packet number since start), the same for every viewer. */
  seq: number;
  /** Index in the clip's content (what the picture shows, or which Opus packet). */
  content: number;
  rtpTimestamp: number;
  /** Capture instant on the master's clock, epoch ms: exactly what its RTP timestamp and SRs say. */
  captureMs: number;
  /** When it was handed to the transport, epoch ms. */
  sentMs: number;
  key: boolean;
  /** A flash frame, or the first packet of a beep. */
  event: boolean;
  width: number;
  height: number;
  /** sha256 of the frame's slice NAL units (video): byte-exact matching against what was recorded. */
  hash: string;
}

export interface SyntheticMasterOptions {
  region: string;
  channelName: string;
  credentials: KvsCredentials;
  /** Control-plane endpoint (`http://127.0.0.1:PORT` for the emulator); empty for real AWS. */
  endpoint: string;
  /** The same content at one or more resolutions (same length and key-frame grid); starts with the first. */
  clips: Clip[];
  logger: Logger;
  onSent?: (frame: SentFrame) => void;
  /** The answer to `viewer` went out (epoch ms): where the bench starts its time-to-first-key-frame. */
  onAnswered?: (viewer: string, atMs: number) => void;
}

interface Peer {
  id: string;
  pc: RTCPeerConnection;
  video: RTCRtpSender;
  audio: RTCRtpSender;
  /** The abs-capture-time extension ids the answer agreed on, per track (undefined: not negotiated). */
  absCaptureTimeId: { video: number | undefined; audio: number | undefined };
  connected: boolean;
  /** Deltas are useless to a decoder that has not had a key frame: a peer starts at one. */
  hadKey: boolean;
  videoSeq: number;
  audioSeq: number;
}

const SR_NTP_EPOCH_OFFSET_S = 2_208_988_800;
export const ABS_CAPTURE_TIME_URI = 'http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time';

type SignalingClientT = InstanceType<typeof kvsWebrtc.SignalingClient>;

/**
 * A WebRTC master without a browser: werift (pure TypeScript WebRTC) for the peer connections, the KVS JS SDK
 * for signaling, pre-encoded H.264 (constrained baseline) + Opus from `clip.ts`, paced on a wall-clock grid.
 *
 * Ground truth: every frame's RTP timestamp is its capture instant on the master's clock, and the RTCP sender
 * reports say the same (werift's own NTP stamp is a send time with a malformed fraction: it is replaced, see
 * `#stampSenderReport`). On a PLI the master jumps both tracks to the next IDR on the 100 ms grid, so flashes
 * and beeps stay aligned. It can change resolution, pause a track, and stop sending.
 */
export class SyntheticMaster {
  readonly #o: SyntheticMasterOptions;
  readonly #log: Logger;
  readonly #peers = new Map<string, Peer>();
  #signaling: SignalingClientT | undefined;
  #iceServers: IceServer[] = [];
  #timer: NodeJS.Timeout | undefined;
  #startMs = 0;
  #videoN = 0;
  #audioM = 0;
  readonly #videoBase = randomInt(2 ** 31);
  readonly #audioBase = randomInt(2 ** 31);
  /** Content offset in frames and clip per 100 ms grid cell, fixed when the cell's first item goes out. */
  #grid = { cell: -1, offsetFrames: 0, clip: 0 };
  #keyRequested = true;
  #pendingClip: number | undefined;
  readonly #paused: Record<'video' | 'audio', number> = { video: 0, audio: 0 };
  #sending = true;
  #stopped = false;
  readonly stats = {
    videoSent: 0,
    audioSent: 0,
    keyFramesSent: 0,
    plis: 0,
    jumps: 0,
    /** RTCP packets from viewers by type[/FMT] (201 RR, 205 transport feedback, 206/1 PLI, 206/15 REMB). */
    rtcp: {} as Record<string, number>,
  };

  constructor(options: SyntheticMasterOptions) {
    if (options.clips.length === 0) throw new Error('the synthetic master needs at least one clip');
    const first = options.clips[0]!.spec;
    for (const c of options.clips) {
      if (c.spec.frames !== first.frames || c.spec.keyIntervalFrames !== first.keyIntervalFrames)
        throw new Error('all clips must share length and key-frame interval');
    }
    this.#o = options;
    this.#log = options.logger;
  }

  /** Starts the master clock, then opens signaling as MASTER; resolves when the signaling socket is open. */
  async start(): Promise<void> {
    // The SDK opens `new (WebSocket || require('ws'))`: Node 20 has no global WebSocket.
    (globalThis as { WebSocket?: unknown }).WebSocket ??= NodeWebSocket;
    const o = this.#o;
    const channel = await discoverMasterChannel({
      region: o.region,
      channelName: o.channelName,
      credentials: o.credentials,
      endpoint: o.endpoint,
    });
    this.#iceServers = channel.iceServers;
    const signer = allowWsScheme(new kvsWebrtc.SigV4RequestSigner(o.region, o.credentials));
    const client = new kvsWebrtc.SignalingClient({
      channelARN: channel.channelARN,
      channelEndpoint: channel.wssEndpoint,
      region: o.region,
      role: kvsWebrtc.Role.MASTER,
      requestSigner: signer,
    });
    this.#signaling = client;
    client.on('sdpOffer', (offer: { type: 'offer'; sdp: string }, viewerId?: string) => {
      if (!viewerId) return this.#log.warn('offer without a sender client id');
      this.#answer(offer, viewerId).catch((err: unknown) =>
        this.#log.error({ err, viewer: viewerId }, 'could not answer'),
      );
    });
    client.on('iceCandidate', (candidate: { candidate: string; sdpMid?: string }, viewerId?: string) => {
      const peer = viewerId ? this.#peers.get(viewerId) : undefined;
      if (!peer) return;
      peer.pc
        .addIceCandidate({ candidate: candidate.candidate, sdpMid: candidate.sdpMid ?? '0' })
        .catch((err: unknown) => this.#log.warn({ err }, 'ICE candidate refused'));
    });
    client.on('error', (err: unknown) => this.#log.warn({ err }, 'signaling error'));
    const opened = new Promise<void>((resolve, reject) => {
      client.once('open', () => resolve());
      client.once('close', () => reject(new Error('signaling closed before it opened')));
    });
    client.on('close', () => {
      if (!this.#stopped) this.#log.warn('signaling closed');
    });
    this.#startMs = Date.now();
    this.#schedule();
    client.open();
    await opened;
    this.#log.info({ channel: channel.channelARN }, 'synthetic master: signaling open');
  }

  /** Switch to clip `index` at its next key frame (on the 100 ms grid). */
  setClip(index: number): void {
    if (!this.#o.clips[index]) throw new Error(`no clip ${index}`);
    this.#pendingClip = index;
  }

  /** Send nothing on `kind` for `ms` (the clock and content go on). */
  pause(kind: 'video' | 'audio', ms: number): void {
    this.#paused[kind] = Date.now() + ms;
  }

  /** Stop or resume sending everything; peers stay connected. */
  setSending(on: boolean): void {
    this.#sending = on;
    if (on) this.#keyRequested = true;
  }

  /** Closes every peer connection and the signaling socket. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#signaling?.removeAllListeners();
    // Closing a socket still connecting makes the SDK emit 'error'; with no listener
    // EventEmitter throws it into the test process (CI failed on it).
    this.#signaling?.on('error', () => undefined);
    this.#signaling?.close();
    for (const peer of this.#peers.values()) await peer.pc.close().catch(() => undefined);
    this.#peers.clear();
  }

  get connectedViewers(): number {
    return [...this.#peers.values()].filter((p) => p.connected).length;
  }

  async #answer(offer: { type: 'offer'; sdp: string }, viewerId: string): Promise<void> {
    const old = this.#peers.get(viewerId);
    if (old) {
      this.#log.info({ viewer: viewerId }, 'new offer: replacing the connection');
      this.#peers.delete(viewerId);
      await old.pc.close().catch(() => undefined);
    }
    const pc = new RTCPeerConnection({
      iceServers: this.#iceServers.map((s) => ({
        urls: Array.isArray(s.urls) ? s.urls[0]! : s.urls,
        ...(s.username ? { username: s.username } : {}),
        ...(s.credential ? { credential: s.credential } : {}),
      })),
      codecs: {
        video: [useH264({ rtcpFeedback: [useNACK(), usePLI()] })],
        audio: [useOPUS()],
      },
      // abs-capture-time as Chromium sends it when the viewer offers it: the capture instant on every packet.
      headerExtensions: {
        video: [
          useSdesMid(),
          useAbsSendTime(),
          new RTCRtpHeaderExtensionParameters({ uri: ABS_CAPTURE_TIME_URI }),
        ],
        audio: [
          useSdesMid(),
          useAbsSendTime(),
          new RTCRtpHeaderExtensionParameters({ uri: ABS_CAPTURE_TIME_URI }),
        ],
      },
    });
    pc.onIceCandidate.subscribe((candidate) => {
      if (!candidate || this.#peers.get(viewerId)?.pc !== pc) return;
      const json = candidate.toJSON();
      this.#signaling?.sendIceCandidate(
        { candidate: json.candidate, sdpMid: json.sdpMid, sdpMLineIndex: json.sdpMLineIndex },
        viewerId,
      );
    });
    await pc.setRemoteDescription(offer);
    const transceivers = pc.getTransceivers();
    const video = transceivers.find((t) => t.kind === 'video');
    const audio = transceivers.find((t) => t.kind === 'audio');
    if (!video || !audio) throw new Error('the offer must have a video and an audio section');
    video.setDirection('sendonly');
    audio.setDirection('sendonly');
    const peer: Peer = {
      id: viewerId,
      pc,
      video: video.sender,
      audio: audio.sender,
      absCaptureTimeId: { video: undefined, audio: undefined },
      connected: false,
      hadKey: false,
      videoSeq: randomInt(2 ** 16),
      audioSeq: randomInt(2 ** 16),
    };
    this.#peers.set(viewerId, peer);
    video.sender.onPictureLossIndication.subscribe(() => {
      this.stats.plis++;
      this.#keyRequested = true;
    });
    let heard = false;
    video.sender.onRtcp.subscribe((packet) => {
      const fmt = (packet as { feedback?: { count?: number } }).feedback?.count;
      const key = fmt === undefined ? String(packet.type) : `${packet.type}/${fmt}`;
      this.stats.rtcp[key] = (this.stats.rtcp[key] ?? 0) + 1;
      // The viewer's first report shows SRTP works both ways: a key frame sent before that (right at DTLS
      // completion) may have been dropped by a receiver that had no keys yet, so send another now.
      if (!heard) {
        heard = true;
        this.#keyRequested = true;
      }
    });
    pc.connectionStateChange.subscribe((state) => {
      this.#log.info({ viewer: viewerId, state }, 'viewer connection');
      if (state === 'connected') {
        peer.connected = true;
        this.#keyRequested = true;
      } else if (state === 'failed' || state === 'closed' || state === 'disconnected') {
        peer.connected = false;
        peer.hadKey = false;
      }
    });
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    if (this.#peers.get(viewerId) !== peer) return;
    peer.absCaptureTimeId = {
      video: extmapId(pc.localDescription!.sdp, 'video', ABS_CAPTURE_TIME_URI),
      audio: extmapId(pc.localDescription!.sdp, 'audio', ABS_CAPTURE_TIME_URI),
    };
    this.#signaling?.sendSdpAnswer({ type: 'answer', sdp: pc.localDescription!.sdp }, viewerId);
    this.#log.info({ viewer: viewerId }, 'answered');
    this.#o.onAnswered?.(viewerId, Date.now());
  }

  /** Due time of video frame n and audio packet m on the master's clock (epoch ms, fractional). */
  #videoDue(n: number): number {
    return this.#startMs + (n * 1000) / FPS;
  }

  #audioDue(m: number): number {
    return this.#startMs + (m * AUDIO_PACKET_SAMPLES * 1000) / AUDIO_RATE;
  }

  #schedule(): void {
    if (this.#stopped) return;
    const next = Math.min(this.#videoDue(this.#videoN), this.#audioDue(this.#audioM));
    this.#timer = setTimeout(() => this.#tick(), Math.max(0, next - Date.now()));
  }

  #tick(): void {
    const now = Date.now();
    // Everything due, in clock order (a late timer catches up without reordering the tracks).
    for (;;) {
      const v = this.#videoDue(this.#videoN);
      const a = this.#audioDue(this.#audioM);
      if (Math.min(v, a) > now) break;
      if (a <= v) this.#sendAudio(this.#audioM++);
      else this.#sendVideo(this.#videoN++);
    }
    this.#schedule();
  }

  /** The content position for a 100 ms grid cell: a pending PLI or clip switch jumps to the next IDR here. */
  #cell(cell: number): { offsetFrames: number; clip: number } {
    if (cell > this.#grid.cell) {
      const frames = this.#o.clips[0]!.spec.frames;
      const keyInterval = this.#o.clips[0]!.spec.keyIntervalFrames;
      const content = mod(cell * GRID_FRAMES + this.#grid.offsetFrames, frames);
      let { offsetFrames, clip } = this.#grid;
      if ((this.#keyRequested || this.#pendingClip !== undefined) && this.#sending) {
        const next =
          content % keyInterval === 0 ? content : (Math.floor(content / keyInterval) + 1) * keyInterval;
        offsetFrames += next - content;
        if (next !== content) this.stats.jumps++;
        if (this.#pendingClip !== undefined) clip = this.#pendingClip;
        this.#pendingClip = undefined;
        this.#keyRequested = false;
      }
      this.#grid = { cell, offsetFrames, clip };
    }
    return this.#grid;
  }

  #sendVideo(n: number): void {
    const { offsetFrames, clip: clipIndex } = this.#cell(Math.floor(n / GRID_FRAMES));
    if (!this.#sending || this.#paused.video > Date.now()) return;
    const clip = this.#o.clips[clipIndex]!;
    const content = mod(n + offsetFrames, clip.spec.frames);
    const frame = clip.video[content]!;
    const rtpTimestamp = (this.#videoBase + n * (VIDEO_CLOCK / FPS)) >>> 0;
    const captureMs = this.#videoDue(n);
    const chunks = packetizeH264(frame.nalus);
    let hash: string | undefined;
    for (const peer of this.#peers.values()) {
      if (!peer.connected || (!frame.key && !peer.hadKey)) continue;
      peer.hadKey ||= frame.key;
      for (const chunk of chunks) {
        peer.videoSeq = (peer.videoSeq + 1) & 0xffff;
        this.#write(peer.video, chunk.payload, peer.videoSeq, rtpTimestamp, chunk.marker, {
          id: peer.absCaptureTimeId.video,
          captureMs,
        });
      }
      this.#stampSenderReport(peer.video, rtpTimestamp, captureMs);
      hash ??= sliceHash(frame.nalus);
      this.stats.videoSent++;
      if (frame.key) this.stats.keyFramesSent++;
      this.#o.onSent?.({
        kind: 'video',
        viewer: peer.id,
        seq: n,
        content,
        rtpTimestamp,
        captureMs,
        sentMs: Date.now(),
        key: frame.key,
        event: frame.flash,
        width: clip.spec.width,
        height: clip.spec.height,
        hash,
      });
    }
  }

  #sendAudio(m: number): void {
    const { offsetFrames } = this.#cell(Math.floor(m / GRID_PACKETS));
    if (!this.#sending || this.#paused.audio > Date.now()) return;
    const clip = this.#o.clips[0]!;
    const packets = clip.audio.length;
    const content = mod(m + (offsetFrames / GRID_FRAMES) * GRID_PACKETS, packets);
    const payload = clip.audio[content]!;
    const rtpTimestamp = (this.#audioBase + m * AUDIO_PACKET_SAMPLES) >>> 0;
    const captureMs = this.#audioDue(m);
    for (const peer of this.#peers.values()) {
      if (!peer.connected) continue;
      peer.audioSeq = (peer.audioSeq + 1) & 0xffff;
      this.#write(peer.audio, payload, peer.audioSeq, rtpTimestamp, true, {
        id: peer.absCaptureTimeId.audio,
        captureMs,
      });
      this.#stampSenderReport(peer.audio, rtpTimestamp, captureMs);
      this.stats.audioSent++;
      this.#o.onSent?.({
        kind: 'audio',
        viewer: peer.id,
        seq: m,
        content,
        rtpTimestamp,
        captureMs,
        sentMs: Date.now(),
        key: true,
        event: clip.beepPackets.includes(content),
        width: 0,
        height: 0,
        hash: '',
      });
    }
  }

  #write(
    sender: RTCRtpSender,
    payload: Buffer,
    seq: number,
    timestamp: number,
    marker: boolean,
    capture: { id: number | undefined; captureMs: number },
  ): void {
    const header = new RtpHeader({ sequenceNumber: seq, timestamp, marker, payloadType: 0 });
    // werift keeps extensions it does not know (by id) next to the ones it writes itself.
    if (capture.id !== undefined) {
      const ntp = Buffer.alloc(8);
      ntp.writeBigUInt64BE(ntpFromEpochMs(capture.captureMs));
      header.extensions.push({ id: capture.id, payload: ntp });
    }
    sender.sendRtp(new RtpPacket(header, payload)).catch((err: unknown) => {
      this.#log.debug({ err }, 'RTP send failed');
    });
  }

  /**
   * werift's sender reports pair the last packet's RTP timestamp with the time it was sent, and write the NTP
   * fraction as the decimal digits of the milliseconds. Ours pair it with the capture instant, in proper NTP.
   * sendRtp() sets these fields synchronously, before its first await, so they are overwritten right after.
   */
  #stampSenderReport(sender: RTCRtpSender, rtpTimestamp: number, captureMs: number): void {
    const s = sender as unknown as { ntpTimestamp: bigint; rtpTimestamp: number };
    if (typeof s.ntpTimestamp !== 'bigint')
      throw new Error('werift changed: RTCRtpSender.ntpTimestamp is gone');
    s.ntpTimestamp = ntpFromEpochMs(captureMs);
    s.rtpTimestamp = rtpTimestamp;
  }
}

export function ntpFromEpochMs(ms: number): bigint {
  const seconds = Math.floor(ms / 1000);
  const fraction = Math.round(((ms - seconds * 1000) / 1000) * 2 ** 32);
  return (BigInt(seconds + SR_NTP_EPOCH_OFFSET_S) << 32n) + BigInt(Math.min(fraction, 2 ** 32 - 1));
}

/** The frame's identity regardless of parameter sets and start codes: its slice NAL units. */
export function sliceHash(nalus: readonly Uint8Array[]): string {
  const h = createHash('sha256');
  for (const n of nalus) {
    const type = n[0]! & 0x1f;
    if (type === 1 || type === 5) h.update(n);
  }
  return h.digest('hex').slice(0, 24);
}

/** The `a=extmap` id for `uri` in the first m-section of `kind`, if negotiated. */
function extmapId(sdp: string, kind: 'video' | 'audio', uri: string): number | undefined {
  const sections = sdp.split(/\r?\nm=/).slice(1);
  const section = sections.find((m) => m.startsWith(kind));
  const match = section?.match(new RegExp(`a=extmap:(\\d+)(?:/\\w+)? ${uri.replace(/[.]/g, '\\.')}`));
  return match ? Number(match[1]) : undefined;
}

function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}
