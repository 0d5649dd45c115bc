import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { pino, type Logger } from 'pino';
import { createAdmin, createAdminRouter, type EmulatorAdmin } from './admin.js';
import { AwsError, accessDenied, invalidArgument, sendAwsError } from './awsErrors.js';
import { toAwsError } from './awsHttp.js';
import {
  CONTAINER_CREDENTIALS_PATH,
  ContainerCredentialsIssuer,
  type ContainerCredentialsOptions,
} from './containerCredentials.js';
import { createControlPlaneRouter } from './controlPlane.js';
import { createIceConfigRouter, type IceServerEntry } from './iceConfig.js';
import { FragmentStore } from './media/fragmentStore.js';
import { createMediaRouter, type MediaRouterOptions } from './media/mediaRouter.js';
import { PutMediaFaults } from './media/putMediaFaults.js';
import { SigV4Verifier, type EmulatorCredential } from './sigv4.js';
import { SignalingHub } from './signaling.js';
import { EmulatorState } from './state.js';
import { Stats } from './stats.js';

export type { EmulatorAdmin } from './admin.js';
export type { ContainerCredentialsOptions } from './containerCredentials.js';

export const DEFAULT_EMULATOR_CREDENTIALS = {
  accessKeyId: 'AKIAKVSEMULATOR00001',
  secretAccessKey: 'kvs-emulator-secret-key-not-for-aws',
} as const;
export const DEFAULT_REGION = 'ap-northeast-1';
export const DEFAULT_ACCOUNT_ID = '123456789012';
export const DEFAULT_CHANNEL_NAME = 'webrtc-kvs-agent-channel';
export const DEFAULT_STREAM_NAME = 'webrtc-kvs-agent-stream';

export interface EmulatorOptions {
  /** Listen address, default '127.0.0.1'. */
  host?: string;
  /** Default 0 (ephemeral). */
  port?: number;
  /** Default DEFAULT_REGION; requests signed for another region → 403. */
  region?: string;
  /** Accepted credentials, default [DEFAULT_EMULATOR_CREDENTIALS]. */
  credentials?: EmulatorCredential[];
  /** Create channel 'webrtc-kvs-agent-channel' and stream 'webrtc-kvs-agent-stream' (default true). */
  seedDefaults?: boolean;
  /** Signaling connection idle timeout, default 600_000 (KVS: 10 minutes). */
  idleTimeoutMs?: number;
  /** Signaling connection maximum age, default 3_600_000 (KVS: 1 hour). */
  maxConnectionAgeMs?: number;
  /** Maximum age of viewer signaling connections only; default `maxConnectionAgeMs` (tests of renewal). */
  viewerMaxConnectionAgeMs?: number;
  /** Viewers per channel, default 10 (the KVS soft limit). */
  maxViewers?: number;
  /** GetIceServerConfig answer, default []. */
  iceServers?: IceServerEntry[];
  /**
   * Serve an ECS-style container credentials endpoint (`containerCredentialsUrl`) minting temporary
   * credentials valid for `ttlMs`, accepted alongside `credentials` until they expire. Default: off.
   */
  containerCredentials?: ContainerCredentialsOptions;
  /** Where PutMedia fragments are stored; default a fresh temporary directory removed by stop(). */
  dataDir?: string;
  /** PutMedia/GetMedia timers and quotas, for tests (see emulator/media/mediaRouter.ts). */
  media?: Pick<MediaRouterOptions, 'limits' | 'clip' | 'getMediaIdleMs' | 'hls'>;
  logger?: Logger;
}

export interface Emulator {
  /** 'http://127.0.0.1:<port>' — the control-plane endpoint for AWS SDK `endpoint`. */
  readonly url: string;
  readonly port: number;
  readonly region: string;
  readonly admin: EmulatorAdmin;
  /** The fragment store behind PutMedia, ListFragments, GetMedia and GetClip. */
  readonly dataDir: string;
  /**
   * With `containerCredentials`: the URL for AWS_CONTAINER_CREDENTIALS_FULL_URI (always 127.0.0.1 or [::1], the
   * only hosts the SDK accepts over plain http). Counters in `admin.stats()`: `container-credentials.issued`,
   * `container-credentials.rejected-expired[.<accessKeyId>]`.
   */
  readonly containerCredentialsUrl?: string;
  /** With `containerCredentials`: makes every set issued so far expire now; returns how many changed. */
  readonly expireContainerCredentials?: () => number;
  /** With `containerCredentials`: the endpoint answers with this HTTP status until called with undefined. */
  readonly failContainerCredentials?: (status: number | undefined) => void;
  /** Closes all sockets; idempotent. */
  stop(): Promise<void>;
}

/** Request bodies above this are refused; KVS control-plane bodies are a few hundred bytes. */
const MAX_BODY = '1mb';

/**
 * A local Kinesis Video Streams (control plane, signaling HTTPS + WebSocket) that the unmodified AWS SDK v3
 * clients and the KVS WebRTC JS SDK accept: SigV4 is verified against the configured credentials, the wire
 * format follows the service. One HTTP server carries every service area, each a router of its own.
 */
export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const host = options.host ?? '127.0.0.1';
  const region = options.region ?? DEFAULT_REGION;
  const logger = (options.logger ?? pino({ level: 'silent' })).child({ module: 'kvs-emulator' });
  const stats = new Stats();
  const state = new EmulatorState(region, DEFAULT_ACCOUNT_ID);
  let issuer: ContainerCredentialsIssuer | undefined;
  const verifier = new SigV4Verifier({
    region,
    service: 'kinesisvideo',
    credentials: options.credentials ?? [{ ...DEFAULT_EMULATOR_CREDENTIALS }],
    onRejected: (refusal) => issuer?.noteRejection(refusal),
  });
  if (options.containerCredentials) {
    issuer = new ContainerCredentialsIssuer({
      ...options.containerCredentials,
      verifier,
      stats,
      logger,
      roleArn: `arn:aws:iam::${DEFAULT_ACCOUNT_ID}:role/webrtc-kvs-agent-task-role`,
    });
  }
  const hub = new SignalingHub({
    state,
    verifier,
    stats,
    logger,
    idleTimeoutMs: options.idleTimeoutMs ?? 600_000,
    maxConnectionAgeMs: options.maxConnectionAgeMs ?? 3_600_000,
    ...(options.viewerMaxConnectionAgeMs !== undefined
      ? { viewerMaxConnectionAgeMs: options.viewerMaxConnectionAgeMs }
      : {}),
    maxViewers: options.maxViewers ?? 10,
  });
  const putMediaFaults = new PutMediaFaults();
  const admin = createAdmin(hub, stats, putMediaFaults);
  let port = 0;
  const endpoints = () => ({ http: `http://${urlHost(host)}:${port}`, ws: `ws://${urlHost(host)}:${port}` });

  if (options.seedDefaults ?? true) {
    state.createChannel({ name: DEFAULT_CHANNEL_NAME });
    state.createStream({
      name: DEFAULT_STREAM_NAME,
      mediaType: 'video/h264,audio/aac',
      dataRetentionInHours: 24,
    });
  }

  const ownDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'kvs-emulator-data-')));
  const store = new FragmentStore({ dataDir, logger });

  const app = express();
  app.disable('x-powered-by');
  app.use(cors);
  app.use('/_emulator', express.json({ limit: '64kb' }), createAdminRouter(admin));
  // Before SigV4: the credentials endpoint is how a client gets something to sign with.
  if (issuer) app.use(issuer.router());
  // Before the body parser: PutMedia streams its body, and the JSON media APIs hash their raw bytes.
  app.use(
    createMediaRouter({
      store,
      lookupStream: (ref) => {
        try {
          const s = state.findStream({ name: ref.StreamName, arn: ref.StreamARN });
          return { name: s.name, arn: s.arn, retentionHours: s.dataRetentionInHours, status: s.status };
        } catch {
          return undefined;
        }
      },
      verify: (req, { emptyPayloadHash, body }) => {
        const verdict = verifier.verify({
          method: req.method ?? 'POST',
          url: (req as Request).originalUrl ?? req.url ?? '/',
          rawHeaders: req.rawHeaders,
          ...(emptyPayloadHash ? {} : { body: body ?? Buffer.alloc(0) }),
        });
        if (verdict.ok) return Promise.resolve(undefined);
        stats.inc(`rejected.http.sigv4.${verdict.reason}`);
        return Promise.resolve(verdict.message);
      },
      count: (name, by) => stats.inc(name, by),
      logger,
      faults: putMediaFaults,
      ...options.media,
    }),
  );
  app.use(express.raw({ type: () => true, limit: MAX_BODY }));
  app.use((req: Request, res: Response, next: NextFunction) => {
    const verdict = verifier.verify({
      method: req.method,
      url: req.originalUrl,
      rawHeaders: req.rawHeaders,
      body: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0),
    });
    if (verdict.ok) {
      next();
      return;
    }
    stats.inc(`rejected.http.sigv4.${verdict.reason}`);
    logger.info({ path: req.path, reason: verdict.reason }, `request refused: ${verdict.message}`);
    sendAwsError(res, accessDenied(verdict.message));
  });
  app.use(
    createControlPlaneRouter({
      state,
      endpoints,
      onChannelDeleted: (channel) => hub.closeChannel(channel),
      onRejected: (type) => stats.inc(`rejected.http.${type}`),
    }),
  );
  app.use(createIceConfigRouter({ state, iceServers: options.iceServers ?? [] }));
  app.use((req: Request, res: Response) => {
    stats.inc('rejected.http.unknown-operation');
    sendAwsError(
      res,
      new AwsError(404, 'UnknownOperationException', `no operation at ${req.method} ${req.path}`),
    );
  });
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    // body-parser errors (too large, aborted) carry an HTTP status; anything else is our bug → 500.
    const status = (err as { status?: unknown } | null)?.status;
    const aws =
      typeof status === 'number' && status >= 400 && status < 500
        ? invalidArgument(err instanceof Error ? err.message : 'invalid request')
        : toAwsError(err);
    stats.inc(`rejected.http.${aws.type}`);
    if (aws.status >= 500) logger.error({ err }, 'emulator request failed');
    sendAwsError(res, aws);
  });

  const server = createServer(app);
  server.on('upgrade', (req: IncomingMessage, socket, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (SignalingHub.handles(path)) {
      hub.handleUpgrade(req, socket, head);
      return;
    }
    stats.inc('rejected.ws.unknown-path');
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  server.on('clientError', (_err, socket) => {
    stats.inc('rejected.http.client-error');
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  logger.info({ url: endpoints().http, region }, 'KVS emulator listening');

  let stopping: Promise<void> | undefined;
  return {
    url: endpoints().http,
    port,
    region,
    admin,
    dataDir,
    ...(issuer
      ? {
          containerCredentialsUrl: `http://${loopbackHost(host)}:${port}${CONTAINER_CREDENTIALS_PATH}`,
          expireContainerCredentials: () => issuer.expireAll(),
          failContainerCredentials: (status: number | undefined) => issuer.setFailing(status),
        }
      : {}),
    stop() {
      stopping ??= new Promise<void>((resolve) => {
        hub.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }).then(async () => {
        if (ownDataDir) await rm(dataDir, { recursive: true, force: true });
      });
      return stopping;
    },
  };
}

/** CORS for browser clients on other origins (the reference master page); preflights answered here. */
function cors(req: Request, res: Response, next: NextFunction): void {
  res.set('Access-Control-Allow-Origin', req.get('origin') ?? '*');
  res.set('Vary', 'Origin');
  res.set('Access-Control-Expose-Headers', 'x-amzn-ErrorType, x-amzn-RequestId, Date');
  res.set('x-amzn-RequestId', randomUUID());
  if (req.method === 'OPTIONS') {
    res.set('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
    res.set('Access-Control-Allow-Headers', req.get('access-control-request-headers') ?? '*');
    res.set('Access-Control-Max-Age', '600');
    res.status(204).end();
    return;
  }
  next();
}

/** fromHttp/fromContainerMetadata take plain http only from loopback; a wildcard listener is reached there. */
function loopbackHost(host: string): string {
  return host === '::1' ? '[::1]' : '127.0.0.1';
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
