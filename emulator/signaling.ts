import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { SIGNALING_PATHS } from './controlPlane.js';
import type { SigV4Verifier } from './sigv4.js';
import type { Stats } from './stats.js';
import type { ChannelRecord, EmulatorState } from './state.js';

export type Role = 'MASTER' | 'VIEWER';
export type ServiceMessageType = 'GO_AWAY' | 'RECONNECT_ICE_SERVER';

export interface SignalingOptions {
  state: EmulatorState;
  verifier: SigV4Verifier;
  stats: Stats;
  logger: Logger;
  idleTimeoutMs: number;
  maxConnectionAgeMs: number;
  /** Maximum age of viewer connections only, when given (tests that renew a viewer while the master stays). */
  viewerMaxConnectionAgeMs?: number;
  maxViewers: number;
}

/** `messagePayload` limit from the KVS service quotas (characters of base64). */
export const MAX_PAYLOAD_CHARS = 10 * 1024;
/** Master-bound messages waiting for a master, per channel; beyond this the oldest are dropped. */
const MAX_QUEUED = 1000;
const CLIENT_ID = /^[a-zA-Z0-9_.-]{1,256}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const ACTIONS = new Set(['SDP_OFFER', 'SDP_ANSWER', 'ICE_CANDIDATE']);

interface Connection {
  ws: WebSocket;
  role: Role;
  /** Viewer ClientId; 'MASTER' for the master. */
  id: string;
  idleTimer?: NodeJS.Timeout;
  ageTimer?: NodeJS.Timeout;
}

interface QueuedMessage {
  senderClientId: string;
  messageType: string;
  messagePayload: string;
  expiresAt: number;
}

interface ChannelConnections {
  master?: Connection;
  viewers: Map<string, Connection>;
  queue: QueuedMessage[];
}

class HandshakeError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The signaling WebSocket service: authenticates presigned connects, keeps one master and up to
 * `maxViewers` viewers per channel, and routes messages exactly as KVS does (viewer → master with
 * `senderClientId`; master → viewer by `recipientClientId`), queuing master-bound messages for the channel's
 * MessageTtlSeconds until a master connects.
 */
export class SignalingHub {
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 256 * 1024 });
  readonly #channels = new Map<string, ChannelConnections>();
  readonly #options: SignalingOptions;
  readonly #log: Logger;

  constructor(options: SignalingOptions) {
    this.#options = options;
    this.#log = options.logger.child({ module: 'signaling' });
  }

  /** True for request paths this hub answers upgrades on. */
  static handles(path: string): boolean {
    return path === '/' || path === SIGNALING_PATHS.MASTER || path === SIGNALING_PATHS.VIEWER;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const { stats } = this.#options;
    stats.inc('ws.handshakes');
    let accepted: { channel: ChannelRecord; role: Role; id: string };
    try {
      accepted = this.#authorize(req);
    } catch (err) {
      const e =
        err instanceof HandshakeError
          ? err
          : new HandshakeError(400, 'InvalidArgumentException', 'malformed', String(err));
      stats.inc(`rejected.ws.${e.reason}`);
      this.#log.info({ reason: e.reason, status: e.status }, `signaling handshake refused: ${e.message}`);
      refuseUpgrade(socket, e.status, e.type, e.message);
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) =>
      this.#attach(ws, accepted.channel, accepted.role, accepted.id),
    );
  }

  #authorize(req: IncomingMessage): { channel: ChannelRecord; role: Role; id: string } {
    const url = req.url ?? '/';
    const verdict = this.#options.verifier.verify({ method: 'GET', url, rawHeaders: req.rawHeaders });
    if (!verdict.ok) {
      throw new HandshakeError(403, 'AccessDeniedException', `sigv4.${verdict.reason}`, verdict.message);
    }
    // The query as the verifier decoded it: what was signed is what is used (one decoding, one value).
    const param = (name: string): string | null => {
      const values = verdict.query.filter(([k]) => k === name);
      if (values.length > 1) {
        throw new HandshakeError(400, 'InvalidArgumentException', 'malformed', `${name} is repeated`);
      }
      return values[0]?.[1] ?? null;
    };
    const channelARN = param('X-Amz-ChannelARN');
    if (!channelARN) {
      throw new HandshakeError(
        400,
        'InvalidArgumentException',
        'missing-channel',
        'X-Amz-ChannelARN is required',
      );
    }
    const channel = this.#options.state.channelByArn(channelARN);
    if (!channel) {
      throw new HandshakeError(
        404,
        'ResourceNotFoundException',
        'unknown-channel',
        `channel ${channelARN} not found`,
      );
    }
    const clientId = param('X-Amz-ClientId');
    const role: Role =
      verdict.path === SIGNALING_PATHS.MASTER
        ? 'MASTER'
        : verdict.path === SIGNALING_PATHS.VIEWER
          ? 'VIEWER'
          : clientId !== null
            ? 'VIEWER'
            : 'MASTER';
    if (role === 'MASTER') return { channel, role, id: 'MASTER' };

    if (clientId === null || !CLIENT_ID.test(clientId) || clientId.startsWith('AWS_')) {
      throw new HandshakeError(
        400,
        'InvalidArgumentException',
        'bad-client-id',
        'X-Amz-ClientId must be 1-256 characters of [a-zA-Z0-9_.-], not starting with AWS_',
      );
    }
    if (channel.mediaStorage.status === 'ENABLED') {
      throw new HandshakeError(
        400,
        'InvalidArgumentException',
        'media-storage-enabled',
        'media storage is ENABLED on this channel: peer-to-peer viewers are not allowed',
      );
    }
    const viewers = this.#entry(channel).viewers;
    if (!viewers.has(clientId) && viewers.size >= this.#options.maxViewers) {
      throw new HandshakeError(
        400,
        'ClientLimitExceededException',
        'viewer-limit',
        `channel already has ${viewers.size} viewers`,
      );
    }
    return { channel, role, id: clientId };
  }

  #attach(ws: WebSocket, channel: ChannelRecord, role: Role, id: string): void {
    const { stats } = this.#options;
    const entry = this.#entry(channel);
    const conn: Connection = { ws, role, id };
    const previous = role === 'MASTER' ? entry.master : entry.viewers.get(id);
    if (role === 'MASTER') entry.master = conn;
    else entry.viewers.set(id, conn);
    if (previous) {
      // The newcomer wins, as on KVS: the old socket is closed, and its close must not unregister the new one.
      stats.inc(`replaced.${role.toLowerCase()}`);
      this.#stopTimers(previous);
      previous.ws.close(1000, 'replaced by a new connection');
    }
    stats.inc(`connected.${role.toLowerCase()}`);
    this.#log.info({ channel: channel.name, role, clientId: id }, 'signaling client connected');

    this.#touch(conn, channel);
    conn.ageTimer = setTimeout(
      () => {
        stats.inc('closed.max-age');
        ws.close(1000, 'maximum connection age reached');
      },
      (role === 'VIEWER' ? this.#options.viewerMaxConnectionAgeMs : undefined) ??
        this.#options.maxConnectionAgeMs,
    );

    ws.on('message', (data, isBinary) => {
      this.#touch(conn, channel);
      this.#onMessage(conn, channel, data, isBinary);
    });
    ws.on('ping', () => this.#touch(conn, channel));
    ws.on('pong', () => this.#touch(conn, channel));
    ws.on('error', (err) => {
      // ws closes the socket (1009) on a message beyond maxPayload: count it like every other rejected message.
      if ((err as { code?: unknown }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
        stats.inc('rejected.message.too-large-frame');
      }
      this.#log.debug({ err, clientId: id }, 'signaling socket error');
    });
    ws.on('close', () => {
      this.#stopTimers(conn);
      if (role === 'MASTER' && entry.master === conn) delete entry.master;
      if (role === 'VIEWER' && entry.viewers.get(id) === conn) entry.viewers.delete(id);
      this.#log.info({ channel: channel.name, role, clientId: id }, 'signaling client disconnected');
    });

    if (role === 'MASTER') this.#flushQueue(entry, conn);
  }

  #touch(conn: Connection, channel: ChannelRecord): void {
    if (conn.idleTimer) clearTimeout(conn.idleTimer);
    conn.idleTimer = setTimeout(() => {
      this.#options.stats.inc('closed.idle');
      this.#log.info({ channel: channel.name, clientId: conn.id }, 'closing idle signaling connection');
      conn.ws.close(1000, 'idle timeout');
    }, this.#options.idleTimeoutMs);
  }

  #stopTimers(conn: Connection): void {
    if (conn.idleTimer) clearTimeout(conn.idleTimer);
    if (conn.ageTimer) clearTimeout(conn.ageTimer);
  }

  #onMessage(conn: Connection, channel: ChannelRecord, data: RawData, isBinary: boolean): void {
    const { stats } = this.#options;
    stats.inc('messages.received');
    const text = isBinary ? null : rawToString(data);
    let parsed: unknown;
    try {
      if (text === null) throw new Error('binary');
      parsed = JSON.parse(text);
    } catch {
      this.#reject(conn, 'malformed-json', undefined, 'message is not a JSON object');
      return;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      this.#reject(conn, 'malformed-json', undefined, 'message is not a JSON object');
      return;
    }
    const msg = parsed as Record<string, unknown>;
    // The JS SDK sends camelCase, the C SDKs PascalCase; KVS accepts both.
    const field = (camel: string): unknown => msg[camel] ?? msg[camel[0]!.toUpperCase() + camel.slice(1)];
    const correlationRaw = field('correlationId');
    const correlationId =
      typeof correlationRaw === 'string' && CLIENT_ID.test(correlationRaw) ? correlationRaw : undefined;
    if (correlationRaw !== undefined && correlationId === undefined) {
      this.#reject(conn, 'bad-correlation-id', undefined, 'correlationId must be 1-256 of [a-zA-Z0-9_.-]');
      return;
    }
    const action = field('action');
    if (typeof action !== 'string' || !ACTIONS.has(action)) {
      this.#reject(conn, 'unknown-action', correlationId, `unknown action ${JSON.stringify(action)}`);
      return;
    }
    const payload = field('messagePayload');
    if (typeof payload !== 'string' || payload.length === 0) {
      this.#reject(conn, 'missing-payload', correlationId, 'messagePayload is required');
      return;
    }
    if (payload.length > MAX_PAYLOAD_CHARS) {
      this.#reject(
        conn,
        'oversize-payload',
        correlationId,
        `messagePayload exceeds ${MAX_PAYLOAD_CHARS} characters`,
      );
      return;
    }
    if (!BASE64.test(payload)) {
      this.#reject(conn, 'payload-not-base64', correlationId, 'messagePayload must be base64');
      return;
    }
    const entry = this.#entry(channel);

    if (conn.role === 'VIEWER') {
      // A viewer can only reach the master: any recipientClientId it sends is ignored.
      const out: QueuedMessage = {
        senderClientId: conn.id,
        messageType: action,
        messagePayload: payload,
        expiresAt: Date.now() + channel.messageTtlSeconds * 1000,
      };
      if (entry.master && deliver(entry.master, out)) {
        stats.inc(`routed.${action}`);
      } else {
        this.#enqueue(entry, out);
      }
      return;
    }

    const recipient = field('recipientClientId');
    if (typeof recipient !== 'string' || recipient.length === 0) {
      this.#reject(conn, 'missing-recipient', correlationId, 'recipientClientId is required for the master');
      return;
    }
    const viewer = entry.viewers.get(recipient);
    if (!viewer || !deliver(viewer, { messageType: action, messagePayload: payload })) {
      this.#reject(conn, 'recipient-not-connected', correlationId, `client ${recipient} is not connected`);
      return;
    }
    stats.inc(`routed.${action}`);
  }

  #enqueue(entry: ChannelConnections, message: QueuedMessage): void {
    const { stats } = this.#options;
    if (message.messageType === 'SDP_OFFER') {
      // A newer offer restarts the negotiation: the older offer and its candidates are stale.
      const before = entry.queue.length;
      entry.queue = entry.queue.filter((m) => m.senderClientId !== message.senderClientId);
      stats.inc('queue.superseded', before - entry.queue.length);
    }
    entry.queue.push(message);
    if (entry.queue.length > MAX_QUEUED) {
      entry.queue.shift();
      stats.inc('queue.overflow');
    }
    stats.inc('queue.enqueued');
  }

  #flushQueue(entry: ChannelConnections, master: Connection): void {
    const now = Date.now();
    const pending = entry.queue;
    entry.queue = [];
    for (const message of pending) {
      if (message.expiresAt <= now) {
        this.#options.stats.inc('queue.expired');
        continue;
      }
      if (deliver(master, message)) {
        this.#options.stats.inc(`routed.${message.messageType}`);
        this.#options.stats.inc('queue.delivered');
      }
    }
  }

  /** Counted always; answered with STATUS_RESPONSE only when the client gave a correlationId (KVS rule). */
  #reject(conn: Connection, reason: string, correlationId: string | undefined, description: string): void {
    this.#options.stats.inc(`rejected.message.${reason}`);
    this.#log.debug({ clientId: conn.id, reason }, `signaling message rejected: ${description}`);
    if (correlationId === undefined) return;
    sendJson(conn.ws, {
      messageType: 'STATUS_RESPONSE',
      statusResponse: {
        correlationId,
        errorType: 'InvalidArgumentException',
        statusCode: '400',
        description,
      },
    });
    this.#options.stats.inc('status-responses');
  }

  #entry(channel: ChannelRecord): ChannelConnections {
    let entry = this.#channels.get(channel.arn);
    if (!entry) {
      entry = { viewers: new Map(), queue: [] };
      this.#channels.set(channel.arn, entry);
    }
    return entry;
  }

  #find(channelName: string, client: string): Connection | undefined {
    const channel = this.#options.state.channelByName(channelName);
    const entry = channel ? this.#channels.get(channel.arn) : undefined;
    if (!entry) return undefined;
    return client === 'MASTER' ? entry.master : entry.viewers.get(client);
  }

  /** Sends a service message (GO_AWAY, RECONNECT_ICE_SERVER) to one client; false if it is not connected. */
  send(channelName: string, client: string, messageType: ServiceMessageType): boolean {
    const conn = this.#find(channelName, client);
    if (!conn) return false;
    const sent = deliver(conn, { messageType, messagePayload: '' });
    if (sent) this.#options.stats.inc(`sent.${messageType}`);
    return sent;
  }

  /** Sends raw text to one client, bypassing every rule (tests of a receiver's input handling). */
  inject(channelName: string, client: string, data: string): boolean {
    const conn = this.#find(channelName, client);
    if (!conn || conn.ws.readyState !== conn.ws.OPEN) return false;
    conn.ws.send(data);
    this.#options.stats.inc('injected');
    return true;
  }

  /** Terminates a client's socket without a close handshake. */
  drop(channelName: string, client: string): boolean {
    const conn = this.#find(channelName, client);
    if (!conn) return false;
    this.#options.stats.inc('dropped');
    conn.ws.terminate();
    return true;
  }

  connections(channelName: string): { master: boolean; viewers: string[] } {
    const channel = this.#options.state.channelByName(channelName);
    const entry = channel ? this.#channels.get(channel.arn) : undefined;
    return { master: entry?.master !== undefined, viewers: [...(entry?.viewers.keys() ?? [])].sort() };
  }

  /** A deleted channel's clients are disconnected and its queue discarded. */
  closeChannel(channel: ChannelRecord): void {
    const entry = this.#channels.get(channel.arn);
    if (!entry) return;
    this.#channels.delete(channel.arn);
    for (const conn of [entry.master, ...entry.viewers.values()]) {
      if (!conn) continue;
      this.#stopTimers(conn);
      conn.ws.close(1000, 'channel deleted');
    }
  }

  close(): void {
    for (const entry of this.#channels.values()) {
      for (const conn of [entry.master, ...entry.viewers.values()]) {
        if (!conn) continue;
        this.#stopTimers(conn);
        conn.ws.terminate();
      }
    }
    this.#channels.clear();
    for (const ws of this.#wss.clients) ws.terminate();
    this.#wss.close();
  }
}

function deliver(conn: Connection, message: Partial<QueuedMessage> & { messageType: string }): boolean {
  const out: Record<string, unknown> = {};
  if (message.senderClientId !== undefined) out.senderClientId = message.senderClientId;
  out.messageType = message.messageType;
  out.messagePayload = message.messagePayload ?? '';
  return sendJson(conn.ws, out);
}

function sendJson(ws: WebSocket, value: unknown): boolean {
  if (ws.readyState !== ws.OPEN) return false;
  ws.send(JSON.stringify(value));
  return true;
}

function rawToString(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

function refuseUpgrade(socket: Duplex, status: number, type: string, message: string): void {
  const body = JSON.stringify({ message });
  const reason = { 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found' }[status] ?? 'Error';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\n` +
      `x-amzn-ErrorType: ${type}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
  // end() flushes the answer before closing; a client that never reads must not keep the socket alive.
  setTimeout(() => socket.destroy(), 1000).unref();
}
