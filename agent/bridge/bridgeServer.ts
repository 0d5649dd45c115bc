import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import express from 'express';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { errorFields, type Logger } from '../log.js';
import type { BridgeRejectReason, ChannelMetrics } from '../ops/metrics.js';
import { TypedEmitter } from '../typedEmitter.js';
import type { AgentToPage, PageToAgent } from './controlProtocol.js';
import { pageToAgentSchema } from './controlSchema.js';
import {
  decodeFrame,
  FRAME_HEADER_BYTES,
  MAX_FRAME_PAYLOAD_BYTES,
  type TrackKind,
  type WireFrame,
} from './wire.js';

export interface BridgeEvents extends Record<string, unknown[]> {
  /** A validated frame from a transform worker. */
  frame: [WireFrame];
  /** A validated control message from the page. */
  control: [PageToAgent];
  /** A frame WebSocket for a track opened or closed (the page restarted its peer connection, say). */
  'track-open': [TrackKind];
  'track-closed': [TrackKind];
}

export interface BridgeStats {
  framesAccepted: number;
  /** Payload bytes of the accepted frames. */
  bytesAccepted: number;
  /** Malformed frames, frames of the wrong kind for their socket, over the rate limit, after stop, too big. */
  framesRejected: number;
  controlAccepted: number;
  /** Not JSON, failed validation, binary, over 64 KiB, over the rate limit. */
  controlRejected: number;
  connectionsRefused: number;
  /** Sockets the bridge closed itself: flooding far beyond the rate limit, or a message beyond maxPayload. */
  socketsClosed: number;
  /** By detailed reason (a bounded set of strings, e.g. `frame: length-mismatch`, `control: not JSON`). */
  rejectReasons: Record<string, number>;
  /** By metric reason (`kvs_agent_bridge_rejected_total{reason}`). */
  rejectsByReason: Partial<Record<BridgeRejectReason, number>>;
}

/** Per-socket limits; the defaults leave a real call (≈30 video + 50 audio frames/s) far below them. */
export interface BridgeLimits {
  /** Sustained frames per second per track socket; beyond it frames are dropped and counted. */
  framesPerSecond: number;
  /** Frames a track socket may send at once above the sustained rate (a key-frame burst). */
  frameBurst: number;
  /** Sustained control messages per second; beyond it they are dropped and counted. */
  controlPerSecond: number;
  controlBurst: number;
  /**
   * A socket whose over-limit messages, decaying at the sustained rate, pile up beyond this many times its
   * rate is closed (1008): it is flooding, not bursting.
   */
  floodFactor: number;
  /** Control messages longer than this are dropped and counted (the socket stays open). */
  maxControlBytes: number;
}

export const DEFAULT_BRIDGE_LIMITS: BridgeLimits = {
  framesPerSecond: 400,
  frameBurst: 400,
  controlPerSecond: 50,
  controlBurst: 100,
  floodFactor: 5,
  maxControlBytes: 64 * 1024,
};

/**
 * What the bridge records in the agent's metrics (a `ChannelMetrics` fits): every refusal by reason, the
 * frames it drops (`bridge_rejected`, `rate_limited`, `after_stop`) and the frames it accepts
 * (`frameAccepted`) — so whoever passes this must not count accepted frames again.
 */
export type BridgeMetrics = Pick<ChannelMetrics, 'bridgeRejected' | 'dropped' | 'frameAccepted'>;

export interface BridgeServerOptions {
  webRoot: string;
  logger: Logger;
  metrics?: BridgeMetrics;
  limits?: Partial<BridgeLimits>;
  /** Monotonic milliseconds for the rate limiter (tests); default `performance.now()`. */
  now?: () => number;
}

/** Beyond this a control message closes the socket (ws' maxPayload); up to it, it is dropped and counted. */
const CONTROL_MAX_PAYLOAD = 1024 * 1024;

/** Sustained rate with a burst allowance, plus a decaying count of the excess to tell bursts from floods. */
class RateLimiter {
  #tokens: number;
  #excess = 0;
  #last: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly floodLimit: number,
    private readonly now: () => number,
  ) {
    this.#tokens = burst;
    this.#last = now();
  }

  /** 'ok', 'drop' (over the rate) or 'flood' (far over it: close the socket). */
  take(): 'ok' | 'drop' | 'flood' {
    const t = this.now();
    const elapsedS = Math.max(0, t - this.#last) / 1000;
    this.#last = t;
    this.#tokens = Math.min(this.burst, this.#tokens + elapsedS * this.rate);
    this.#excess = Math.max(0, this.#excess - elapsedS * this.rate);
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 'ok';
    }
    this.#excess += 1;
    return this.#excess > this.floodLimit ? 'flood' : 'drop';
  }
}

/**
 * The agent's loopback HTTP server: serves the built viewer page and accepts the page's control WebSocket
 * and the workers' frame WebSockets. Every WebSocket must present the per-launch random token (it is in the
 * page URL's fragment, which never leaves the browser) and come from this server's own origin.
 */
export class BridgeServer extends TypedEmitter<BridgeEvents> {
  readonly token = randomBytes(24).toString('hex');
  readonly #server: Server;
  /** Frames: one message is one frame, so ws itself refuses anything longer than the largest frame. */
  readonly #frameWss = new WebSocketServer({
    noServer: true,
    maxPayload: FRAME_HEADER_BYTES + MAX_FRAME_PAYLOAD_BYTES,
    perMessageDeflate: false,
  });
  readonly #controlWss = new WebSocketServer({
    noServer: true,
    maxPayload: CONTROL_MAX_PAYLOAD,
    perMessageDeflate: false,
  });
  readonly #log: Logger;
  readonly #metrics: BridgeMetrics | undefined;
  readonly #limits: BridgeLimits;
  readonly #now: () => number;
  #control: WebSocket | undefined;
  readonly #frameSockets = new Map<TrackKind, WebSocket>();
  #acceptingFrames = true;
  #port = 0;
  readonly #stats: BridgeStats = {
    framesAccepted: 0,
    bytesAccepted: 0,
    framesRejected: 0,
    controlAccepted: 0,
    controlRejected: 0,
    connectionsRefused: 0,
    socketsClosed: 0,
    rejectReasons: {},
    rejectsByReason: {},
  };

  constructor(options: BridgeServerOptions) {
    super();
    this.#log = options.logger;
    this.#metrics = options.metrics;
    this.#limits = { ...DEFAULT_BRIDGE_LIMITS, ...options.limits };
    this.#now = options.now ?? (() => performance.now());
    const app = express();
    app.disable('x-powered-by');
    app.use((_req, res, next) => {
      res.setHeader('Cache-Control', 'no-store');
      next();
    });
    app.get('/', (_req, res) => res.redirect('/page/index.html'));
    app.use(express.static(options.webRoot, { index: false, fallthrough: true }));
    this.#server = createServer(app);
    this.#server.on('upgrade', (req, socket, head) => this.#onUpgrade(req, socket, head));
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(0, '127.0.0.1', () => resolve());
    });
    this.#port = (this.#server.address() as AddressInfo).port;
    // Which page is whose: the port is the page's origin (the token is not logged).
    this.#log.info({ port: this.#port }, 'bridge listening');
  }

  get origin(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** The URL Chromium opens; the token rides in the fragment so it is never sent over HTTP. */
  get pageUrl(): string {
    return `${this.origin}/page/index.html#token=${this.token}`;
  }

  /** Base URL of the frame WebSockets handed to the workers (they append `&kind=`). */
  get frameUrl(): string {
    return `ws://127.0.0.1:${this.#port}/frames?token=${this.token}`;
  }

  sendControl(message: AgentToPage): boolean {
    if (this.#control?.readyState !== WebSocket.OPEN) return false;
    this.#control.send(JSON.stringify(message));
    return true;
  }

  /** Asks the video worker to request a key frame from the master (e.g. a new recording segment). */
  requestKeyFrame(): boolean {
    const ws = this.#frameSockets.get('video');
    if (ws?.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify({ type: 'request-keyframe' }));
    return true;
  }

  /** First step of shutdown: frames arriving after this are refused and counted. */
  stopAcceptingFrames(): void {
    this.#acceptingFrames = false;
  }

  stats(): BridgeStats {
    return {
      ...this.#stats,
      rejectReasons: { ...this.#stats.rejectReasons },
      rejectsByReason: { ...this.#stats.rejectsByReason },
    };
  }

  async close(): Promise<void> {
    this.#acceptingFrames = false;
    for (const wss of [this.#frameWss, this.#controlWss]) {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    }
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /**
   * Counts one refused input. `detail` must come from a bounded set (no numbers from the input), so that
   * `rejectReasons` cannot grow with what a hostile page sends.
   */
  #reject(
    reason: BridgeRejectReason,
    detail: string,
    counter: 'framesRejected' | 'controlRejected' | 'connectionsRefused',
    kind?: TrackKind,
  ): void {
    this.#stats[counter]++;
    this.#stats.rejectReasons[detail] = (this.#stats.rejectReasons[detail] ?? 0) + 1;
    this.#stats.rejectsByReason[reason] = (this.#stats.rejectsByReason[reason] ?? 0) + 1;
    this.#metrics?.bridgeRejected(reason);
    if (kind !== undefined) {
      const cause =
        reason === 'frame_rate_limited'
          ? 'rate_limited'
          : reason === 'after_stop'
            ? 'after_stop'
            : 'bridge_rejected';
      this.#metrics?.dropped(cause, kind);
    }
    // Log the first few of each reason, then every 100th, so a flood cannot flood the log too.
    const n = this.#stats.rejectReasons[detail];
    if (n <= 5 || n % 100 === 0)
      this.#log.warn({ reason, detail, count: n }, `bridge rejected input: ${detail}`);
  }

  /** Closes a socket the bridge gave up on (1008 policy violation), counted. */
  #closeFlooding(ws: WebSocket, what: string): void {
    if (ws.readyState !== WebSocket.OPEN) return;
    this.#stats.socketsClosed++;
    this.#stats.rejectsByReason.socket_flooding = (this.#stats.rejectsByReason.socket_flooding ?? 0) + 1;
    this.#metrics?.bridgeRejected('socket_flooding');
    this.#log.warn({ socket: what }, `closing the ${what} socket: it floods far beyond its rate limit`);
    ws.close(1008, 'rate limit exceeded');
  }

  /** ws closes a socket whose message exceeds maxPayload (1009); count it as the rejected message it was. */
  #onSocketError(err: Error, what: string, kind?: TrackKind): void {
    const code = (err as { code?: unknown }).code;
    if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
      this.#stats.socketsClosed++;
      if (kind !== undefined)
        this.#reject('frame_too_large', 'frame: beyond maxPayload', 'framesRejected', kind);
      else this.#reject('control_oversized', 'control: beyond maxPayload', 'controlRejected');
      return;
    }
    this.#log.warn({ err: errorFields(err), socket: what }, `${what} socket error`);
  }

  #tokenMatches(candidate: string | null): boolean {
    if (!candidate) return false;
    const a = Buffer.from(candidate);
    const b = Buffer.from(this.token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', this.origin);
    const refuse = (status: number, reason: string) => {
      this.#reject('connection_refused', reason, 'connectionsRefused');
      socket.end(
        `HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : 'Forbidden'}\r\nConnection: close\r\n\r\n`,
      );
    };
    if (!this.#tokenMatches(url.searchParams.get('token'))) return refuse(401, 'bad token');
    // Browsers always send Origin on WebSocket handshakes; pages from anywhere else are refused.
    if (req.headers.origin !== undefined && req.headers.origin !== this.origin)
      return refuse(403, 'foreign origin');
    if (url.pathname === '/control') {
      this.#controlWss.handleUpgrade(req, socket, head, (ws) => this.#onControl(ws));
    } else if (url.pathname === '/frames') {
      const kind = url.searchParams.get('kind');
      if (kind !== 'video' && kind !== 'audio') return refuse(403, 'bad track kind');
      this.#frameWss.handleUpgrade(req, socket, head, (ws) => this.#onFrames(ws, kind));
    } else {
      refuse(403, 'unknown path');
    }
  }

  #onControl(ws: WebSocket): void {
    // One page at a time: a reloaded page replaces the previous control connection.
    this.#control?.close(1000, 'replaced');
    this.#control = ws;
    const { controlPerSecond, controlBurst, floodFactor, maxControlBytes } = this.#limits;
    const limiter = new RateLimiter(
      controlPerSecond,
      controlBurst,
      controlPerSecond * floodFactor,
      this.#now,
    );
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const verdict = limiter.take();
      if (verdict === 'flood') this.#closeFlooding(ws, 'control');
      if (verdict !== 'ok')
        return this.#reject('control_rate_limited', 'control: over the rate limit', 'controlRejected');
      if (isBinary) return this.#reject('control_malformed', 'control: binary message', 'controlRejected');
      const bytes = rawToBytes(data);
      if (bytes.byteLength > maxControlBytes) {
        return this.#reject('control_oversized', 'control: message too large', 'controlRejected');
      }
      let json: unknown;
      try {
        json = JSON.parse(Buffer.from(bytes).toString('utf8'));
      } catch {
        return this.#reject('control_malformed', 'control: not JSON', 'controlRejected');
      }
      const parsed = pageToAgentSchema.safeParse(json);
      if (!parsed.success)
        return this.#reject('control_malformed', 'control: failed validation', 'controlRejected');
      this.#stats.controlAccepted++;
      this.safeEmit('control', parsed.data);
    });
    ws.on('close', () => {
      if (this.#control === ws) this.#control = undefined;
    });
    ws.on('error', (err) => this.#onSocketError(err, 'control'));
  }

  #onFrames(ws: WebSocket, kind: TrackKind): void {
    this.#frameSockets.get(kind)?.close(1000, 'replaced');
    this.#frameSockets.set(kind, ws);
    this.safeEmit('track-open', kind);
    const { framesPerSecond, frameBurst, floodFactor } = this.#limits;
    const limiter = new RateLimiter(framesPerSecond, frameBurst, framesPerSecond * floodFactor, this.#now);
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const verdict = limiter.take();
      if (verdict === 'flood') this.#closeFlooding(ws, `${kind} frame`);
      if (verdict !== 'ok') {
        return this.#reject('frame_rate_limited', 'frame: over the rate limit', 'framesRejected', kind);
      }
      if (!isBinary) return this.#reject('malformed_frame', 'frame: text message', 'framesRejected', kind);
      if (!this.#acceptingFrames)
        return this.#reject('after_stop', 'frame: after stop', 'framesRejected', kind);
      const result = decodeFrame(rawToBytes(data));
      if (!result.ok) {
        const reason = result.code === 'too-large' ? 'frame_too_large' : 'malformed_frame';
        return this.#reject(reason, `frame: ${result.code}`, 'framesRejected', kind);
      }
      if (result.frame.header.kind !== kind) {
        return this.#reject('wrong_socket', 'frame: kind differs from its socket', 'framesRejected', kind);
      }
      this.#stats.framesAccepted++;
      this.#stats.bytesAccepted += result.frame.payload.byteLength;
      this.#metrics?.frameAccepted(kind, result.frame.payload.byteLength);
      this.safeEmit('frame', result.frame);
    });
    ws.on('close', () => {
      if (this.#frameSockets.get(kind) === ws) {
        this.#frameSockets.delete(kind);
        this.safeEmit('track-closed', kind);
      }
    });
    ws.on('error', (err) => this.#onSocketError(err, `${kind} frame`, kind));
  }
}

function rawToBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}
