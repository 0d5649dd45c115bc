import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import express from 'express';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { Logger } from '../log.js';
import { TypedEmitter } from '../typedEmitter.js';
import type { AgentToPage, PageToAgent } from './controlProtocol.js';
import { pageToAgentSchema } from './controlSchema.js';
import { decodeFrame, type TrackKind, type WireFrame } from './wire.js';

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
  /** Malformed frames, frames of the wrong kind for their socket, frames after stop. */
  framesRejected: number;
  controlRejected: number;
  connectionsRefused: number;
  rejectReasons: Record<string, number>;
}

/**
 * The agent's loopback HTTP server: serves the built viewer page and accepts the page's control WebSocket
 * and the workers' frame WebSockets. Every WebSocket must present the per-launch random token (it is in the
 * page URL's fragment, which never leaves the browser) and come from this server's own origin.
 */
export class BridgeServer extends TypedEmitter<BridgeEvents> {
  readonly token = randomBytes(24).toString('hex');
  readonly #server: Server;
  readonly #wss = new WebSocketServer({
    noServer: true,
    maxPayload: 8 * 1024 * 1024,
    perMessageDeflate: false,
  });
  readonly #log: Logger;
  #control: WebSocket | undefined;
  readonly #frameSockets = new Map<TrackKind, WebSocket>();
  #acceptingFrames = true;
  #port = 0;
  readonly #stats: BridgeStats = {
    framesAccepted: 0,
    framesRejected: 0,
    controlRejected: 0,
    connectionsRefused: 0,
    rejectReasons: {},
  };

  constructor(options: { webRoot: string; logger: Logger }) {
    super();
    this.#log = options.logger;
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
    return { ...this.#stats, rejectReasons: { ...this.#stats.rejectReasons } };
  }

  async close(): Promise<void> {
    this.#acceptingFrames = false;
    for (const ws of this.#wss.clients) ws.terminate();
    this.#wss.close();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #reject(reason: string, counter: 'framesRejected' | 'controlRejected' | 'connectionsRefused'): void {
    this.#stats[counter]++;
    this.#stats.rejectReasons[reason] = (this.#stats.rejectReasons[reason] ?? 0) + 1;
    // Log the first few of each reason, then every 100th, so a flood cannot flood the log too.
    const n = this.#stats.rejectReasons[reason];
    if (n <= 5 || n % 100 === 0) this.#log.warn({ reason, count: n }, `bridge rejected input: ${reason}`);
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
      this.#reject(reason, 'connectionsRefused');
      socket.end(
        `HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : 'Forbidden'}\r\nConnection: close\r\n\r\n`,
      );
    };
    if (!this.#tokenMatches(url.searchParams.get('token'))) return refuse(401, 'bad token');
    // Browsers always send Origin on WebSocket handshakes; pages from anywhere else are refused.
    if (req.headers.origin !== undefined && req.headers.origin !== this.origin)
      return refuse(403, 'foreign origin');
    if (url.pathname === '/control') {
      this.#wss.handleUpgrade(req, socket, head, (ws) => this.#onControl(ws));
    } else if (url.pathname === '/frames') {
      const kind = url.searchParams.get('kind');
      if (kind !== 'video' && kind !== 'audio') return refuse(403, 'bad track kind');
      this.#wss.handleUpgrade(req, socket, head, (ws) => this.#onFrames(ws, kind));
    } else {
      refuse(403, 'unknown path');
    }
  }

  #onControl(ws: WebSocket): void {
    // One page at a time: a reloaded page replaces the previous control connection.
    this.#control?.close(1000, 'replaced');
    this.#control = ws;
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (isBinary) return this.#reject('binary control message', 'controlRejected');
      let json: unknown;
      try {
        json = JSON.parse(rawToString(data));
      } catch {
        return this.#reject('control message is not JSON', 'controlRejected');
      }
      const parsed = pageToAgentSchema.safeParse(json);
      if (!parsed.success) return this.#reject('control message failed validation', 'controlRejected');
      this.safeEmit('control', parsed.data);
    });
    ws.on('close', () => {
      if (this.#control === ws) this.#control = undefined;
    });
    ws.on('error', (err) => this.#log.warn({ err }, 'control socket error'));
  }

  #onFrames(ws: WebSocket, kind: TrackKind): void {
    this.#frameSockets.get(kind)?.close(1000, 'replaced');
    this.#frameSockets.set(kind, ws);
    this.safeEmit('track-open', kind);
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (!isBinary) return this.#reject('text message on a frame socket', 'framesRejected');
      if (!this.#acceptingFrames) return this.#reject('frame after stop', 'framesRejected');
      const result = decodeFrame(rawToBytes(data));
      if (!result.ok) return this.#reject(result.reason, 'framesRejected');
      if (result.frame.header.kind !== kind)
        return this.#reject('frame kind differs from its socket', 'framesRejected');
      this.#stats.framesAccepted++;
      this.safeEmit('frame', result.frame);
    });
    ws.on('close', () => {
      if (this.#frameSockets.get(kind) === ws) {
        this.#frameSockets.delete(kind);
        this.safeEmit('track-closed', kind);
      }
    });
    ws.on('error', (err) => this.#log.warn({ err, kind }, 'frame socket error'));
  }
}

function rawToBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}

function rawToString(data: RawData): string {
  return Buffer.from(rawToBytes(data)).toString('utf8');
}
