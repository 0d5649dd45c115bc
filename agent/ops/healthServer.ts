import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { withTimeout } from '../errors.js';
import { redactString } from '../log.js';

/** One readiness check as the agent judges it; `reason` says why it fails (no secrets: it is served). */
export interface ReadinessCheck {
  ok: boolean;
  reason?: string;
}

/** What the agent reports; the server answers 200 only when every check is ok. */
export interface ReadinessReport {
  checks: Record<string, ReadinessCheck>;
}

/** The `/readyz` body. */
export interface ReadinessBody {
  ready: boolean;
  checks: Record<string, boolean>;
  reasons: string[];
}

export interface HealthServerOptions {
  /** Default 127.0.0.1 (loopback: the task's sidecar or health check reaches it, nothing else). */
  host?: string;
  /** Default 9090; 0 picks a free port (tests). */
  port?: number;
  /** True while the agent is alive and supervising (`/healthz`). A throw counts as false. */
  alive: () => boolean;
  /** The agent's readiness verdict (`/readyz`). A throw, rejection or a hang past `providerTimeoutMs` is 503. */
  readiness: () => ReadinessReport | Promise<ReadinessReport>;
  /** Prometheus text for `/metrics` (e.g. `AgentMetrics`). */
  metrics: { render(): Promise<string>; readonly contentType: string };
  providerTimeoutMs?: number;
}

export const DEFAULT_HEALTH_HOST = '127.0.0.1';
export const DEFAULT_HEALTH_PORT = 9090;
const MAX_REASON_CHARS = 300;

/**
 * `GET /healthz`, `GET /readyz`, `GET /metrics` (and HEAD of each) on a configurable address; nothing else
 * is served. `start()` resolves once listening, so it doubles as the readiness signal of the endpoint itself.
 */
export class HealthServer {
  readonly #options: HealthServerOptions;
  readonly #server: Server;
  #started: Promise<{ host: string; port: number }> | undefined;
  #closed: Promise<void> | undefined;

  constructor(options: HealthServerOptions) {
    this.#options = options;
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch(() => {
        if (!res.headersSent) send(res, req, 500, 'text/plain; charset=utf-8', 'internal error\n');
        else res.destroy();
      });
    });
    // Probes are tiny: a slow or stuck client must not hold a socket for long.
    this.#server.requestTimeout = 10_000;
    this.#server.headersTimeout = 5_000;
    this.#server.keepAliveTimeout = 5_000;
  }

  /** Resolves with the bound address when listening; a second call returns the first call's promise. */
  start(): Promise<{ host: string; port: number }> {
    this.#started ??= new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.#server.once('error', onError);
      this.#server.listen(
        this.#options.port ?? DEFAULT_HEALTH_PORT,
        this.#options.host ?? DEFAULT_HEALTH_HOST,
        () => {
          this.#server.off('error', onError);
          const a = this.#server.address() as AddressInfo;
          resolve({ host: a.address, port: a.port });
        },
      );
    });
    return this.#started;
  }

  /** `http://host:port` once started. */
  get url(): string | undefined {
    const a = this.#server.address();
    if (a === null || typeof a === 'string') return undefined;
    return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  /** Idempotent; resolves once the socket is closed (also when never started). */
  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      if (!this.#server.listening) return resolve();
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
    return this.#closed;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return send(res, req, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    }
    switch (path) {
      case '/healthz': {
        const alive = safely(() => this.#options.alive(), false);
        return send(res, req, alive ? 200 : 503, 'text/plain; charset=utf-8', alive ? 'ok\n' : 'not alive\n');
      }
      case '/readyz': {
        const body = await this.#readiness();
        return send(res, req, body.ready ? 200 : 503, 'application/json', `${JSON.stringify(body)}\n`);
      }
      case '/metrics': {
        const text = await this.#options.metrics.render();
        return send(res, req, 200, this.#options.metrics.contentType, text);
      }
      default:
        return send(res, req, 404, 'text/plain; charset=utf-8', 'not found\n');
    }
  }

  async #readiness(): Promise<ReadinessBody> {
    let report: ReadinessReport;
    try {
      report = await withTimeout(
        Promise.resolve().then(() => this.#options.readiness()),
        this.#options.providerTimeoutMs ?? 2000,
        'the readiness provider',
      );
    } catch (err) {
      return {
        ready: false,
        checks: {},
        reasons: [
          `readiness could not be determined: ${clip(err instanceof Error ? err.message : String(err))}`,
        ],
      };
    }
    const checks: Record<string, boolean> = {};
    const reasons: string[] = [];
    for (const [name, check] of Object.entries(report.checks)) {
      const ok = check.ok === true;
      checks[name] = ok;
      if (!ok) reasons.push(`${name}: ${clip(check.reason ?? 'failing')}`);
    }
    const names = Object.keys(checks);
    if (names.length === 0) reasons.push('no readiness checks reported');
    return { ready: names.length > 0 && reasons.length === 0, checks, reasons };
  }
}

/**
 * A helper for the agent's readiness provider: the four standard checks from plain state. Media counts as
 * written when the last write is at most `mediaMaxAgeMs` old; credentials are stale from `staleMarginMs`
 * before they expire (the refresh should have happened by then).
 */
export function standardReadiness(input: {
  now: number;
  signalingOpen: boolean;
  peerState: string;
  lastMediaWrittenAtMs: number | undefined;
  mediaMaxAgeMs: number;
  /** `undefined`: long-term keys (never stale). `null`: no credentials resolved yet. */
  credentialsExpireAtMs: number | undefined | null;
  staleMarginMs?: number;
}): ReadinessReport {
  const { now } = input;
  const margin = input.staleMarginMs ?? 60_000;
  const mediaAge = input.lastMediaWrittenAtMs === undefined ? undefined : now - input.lastMediaWrittenAtMs;
  const creds = input.credentialsExpireAtMs;
  return {
    checks: {
      signaling: input.signalingOpen ? { ok: true } : { ok: false, reason: 'signaling socket not open' },
      peer:
        input.peerState === 'connected'
          ? { ok: true }
          : { ok: false, reason: `peer connection ${input.peerState}` },
      media:
        mediaAge !== undefined && mediaAge <= input.mediaMaxAgeMs
          ? { ok: true }
          : {
              ok: false,
              reason:
                mediaAge === undefined
                  ? 'no media written yet'
                  : `no media written for ${Math.round(mediaAge / 1000)} s`,
            },
      credentials:
        creds === null
          ? { ok: false, reason: 'no credentials resolved' }
          : creds === undefined || creds - margin > now
            ? { ok: true }
            : {
                ok: false,
                reason:
                  creds <= now
                    ? `credentials expired ${Math.round((now - creds) / 1000)} s ago`
                    : `credentials expire in ${Math.round((creds - now) / 1000)} s and were not refreshed`,
              },
    },
  };
}

function send(res: ServerResponse, req: IncomingMessage, status: number, type: string, body: string): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function safely<T>(fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch {
    return fallback;
  }
}

/** Reasons are served: cut to length and cleaned of anything that looks like a URL secret. */
function clip(reason: string): string {
  const s = redactString(String(reason));
  return s.length <= MAX_REASON_CHARS ? s : `${s.slice(0, MAX_REASON_CHARS)}…`;
}
