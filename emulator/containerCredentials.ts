import { randomBytes, timingSafeEqual } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { isLoopback } from './admin.js';
import type { EmulatorCredential, SigV4Refusal, SigV4Verifier } from './sigv4.js';
import type { Stats } from './stats.js';

/** Where the emulator serves the ECS-style endpoint; the FULL_URI is `http://127.0.0.1:<port>` + this. */
export const CONTAINER_CREDENTIALS_PATH = '/_ecs/credentials';

export interface ContainerCredentialsOptions {
  /** Lifetime of every minted set, 1000 ms .. 12 h. `Expiration` is written in whole seconds, as ECS does. */
  ttlMs: number;
  /** When set, the request's `Authorization` header must equal it (`AWS_CONTAINER_AUTHORIZATION_TOKEN`). */
  authorizationToken?: string;
}

/** The JSON body the ECS agent answers with; `fromHttp` and `fromContainerMetadata` both read it. */
export interface ContainerCredentialsBody {
  AccessKeyId: string;
  SecretAccessKey: string;
  Token: string;
  /** RFC 3339 UTC, whole seconds: `2026-01-02T03:04:05Z`. */
  Expiration: string;
  RoleArn: string;
}

/** One minted set; registered with the SigV4 verifier until it is pruned. */
export interface IssuedCredential extends EmulatorCredential {
  sessionToken: string;
  expiresAt: Date;
  issuedAt: Date;
}

export interface ContainerCredentialsStats {
  issued: number;
  /** Requests refused because they were signed with an issued key after its expiry, by access key id. */
  rejectedExpired: Record<string, number>;
}

export interface ContainerCredentialsIssuerOptions extends ContainerCredentialsOptions {
  verifier: SigV4Verifier;
  stats: Stats;
  logger: Logger;
  roleArn: string;
  now?: () => number;
}

/** Expired keys stay known this long so that late requests are refused as expired, not as unknown. */
const RETAIN_EXPIRED_MS = 10 * 60_000;
/** Hard bound on remembered keys (a client hammering the endpoint must not grow memory without end). */
const MAX_REMEMBERED = 1000;
const MAX_TTL_MS = 12 * 3600_000;
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/**
 * Stands in for the ECS task-role credentials endpoint: every GET mints new temporary credentials (ASIA… key,
 * random secret, session token) valid for `ttlMs`, which the shared SigV4 verifier accepts until they expire
 * and refuses (403, reason `credentials-expired`) afterwards on every transport — HTTP, presigned WebSocket,
 * media. Only loopback peers are answered, like the link-local endpoint is only reachable from the task.
 */
export class ContainerCredentialsIssuer {
  readonly #options: ContainerCredentialsIssuerOptions;
  readonly #now: () => number;
  readonly #log: Logger;
  /** Insertion order = issue order, so the oldest is first when the bound is hit. */
  readonly #issued = new Map<string, IssuedCredential>();
  readonly #rejectedExpired = new Map<string, number>();
  #issuedCount = 0;
  /** Test hook: while set, every request is answered with this HTTP status instead of credentials. */
  #failStatus: number | undefined;

  constructor(options: ContainerCredentialsIssuerOptions) {
    if (!Number.isFinite(options.ttlMs) || options.ttlMs < 1000 || options.ttlMs > MAX_TTL_MS) {
      throw new RangeError(`containerCredentials.ttlMs must be 1000..${MAX_TTL_MS}, got ${options.ttlMs}`);
    }
    if (
      options.authorizationToken !== undefined &&
      !/^[\x21-\x7e][\x20-\x7e]*$/.test(options.authorizationToken)
    ) {
      throw new RangeError('containerCredentials.authorizationToken must be printable ASCII, not empty');
    }
    this.#options = options;
    this.#now = options.now ?? (() => Date.now());
    this.#log = options.logger.child({ module: 'container-credentials' });
  }

  /** Mints a new set, registers it with the verifier and forgets sets long expired. */
  issue(): IssuedCredential {
    const now = this.#now();
    this.#prune(now);
    // Whole seconds, as ECS writes Expiration; the verifier refuses from exactly the instant clients are told.
    const expiresAt = new Date(Math.floor((now + this.#options.ttlMs) / 1000) * 1000);
    const credential: IssuedCredential = {
      accessKeyId: `ASIA${base32(16)}`,
      secretAccessKey: randomBytes(30).toString('base64'),
      // Real STS tokens are long base64 with '+', '/' and '=': exactly what presigned URLs must escape.
      sessionToken: randomBytes(288).toString('base64'),
      expiresAt,
      issuedAt: new Date(now),
    };
    this.#issued.set(credential.accessKeyId, credential);
    this.#options.verifier.addCredential(credential);
    this.#issuedCount += 1;
    this.#options.stats.inc('container-credentials.issued');
    this.#log.info(
      { accessKeyId: credential.accessKeyId, expiresAt: expiresAt.toISOString() },
      'container credentials issued',
    );
    return credential;
  }

  /** The verifier's `onRejected` hook: counts requests signed with one of our keys after its expiry. */
  noteRejection(refusal: SigV4Refusal): void {
    if (refusal.reason !== 'credentials-expired' || refusal.accessKeyId === undefined) return;
    if (!this.#issued.has(refusal.accessKeyId)) return;
    this.#rejectedExpired.set(refusal.accessKeyId, (this.#rejectedExpired.get(refusal.accessKeyId) ?? 0) + 1);
    this.#options.stats.inc('container-credentials.rejected-expired');
    this.#options.stats.inc(`container-credentials.rejected-expired.${refusal.accessKeyId}`);
  }

  /** Makes every set issued so far expire now (what a rotation looks like to a client that cached them). */
  expireAll(): number {
    const now = new Date(this.#now());
    let changed = 0;
    for (const credential of this.#issued.values()) {
      if (credential.expiresAt.getTime() <= now.getTime()) continue;
      credential.expiresAt = now;
      this.#options.verifier.addCredential(credential);
      changed += 1;
    }
    return changed;
  }

  /**
   * Test hook: the endpoint fails (e.g. 500, as an ECS agent in trouble) until called with undefined. Sets
   * issued before keep working until they expire.
   */
  setFailing(status: number | undefined): void {
    if (status !== undefined && (!Number.isInteger(status) || status < 400 || status > 599))
      throw new RangeError(`failure status must be 400..599, got ${status}`);
    this.#failStatus = status;
  }

  stats(): ContainerCredentialsStats {
    return { issued: this.#issuedCount, rejectedExpired: Object.fromEntries(this.#rejectedExpired) };
  }

  /** `GET /_ecs/credentials` → 200 with a `ContainerCredentialsBody`. */
  router(): Router {
    const router = Router();
    router.get(CONTAINER_CREDENTIALS_PATH, (req, res) => this.#serve(req, res));
    router.all(CONTAINER_CREDENTIALS_PATH, (_req, res) => {
      this.#options.stats.inc('container-credentials.rejected.method');
      res.status(405).set('Allow', 'GET').json({ Code: 'MethodNotAllowed', Message: 'only GET is served' });
    });
    return router;
  }

  #serve(req: Request, res: Response): void {
    if (!isLoopback(req)) {
      this.#refuse(res, 'not-loopback', 'the credentials endpoint only answers loopback clients');
      return;
    }
    const expected = this.#options.authorizationToken;
    if (expected !== undefined && !sameString(req.get('authorization') ?? '', expected)) {
      this.#refuse(res, 'authorization', 'Authorization header is missing or does not match the token');
      return;
    }
    if (this.#failStatus !== undefined) {
      this.#options.stats.inc('container-credentials.failed-injected');
      res
        .status(this.#failStatus)
        .json({ Code: 'InternalError', Message: 'credentials endpoint failing (fault injection)' });
      return;
    }
    const credential = this.issue();
    const body: ContainerCredentialsBody = {
      AccessKeyId: credential.accessKeyId,
      SecretAccessKey: credential.secretAccessKey,
      Token: credential.sessionToken,
      Expiration: credential.expiresAt.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      RoleArn: this.#options.roleArn,
    };
    res.status(200).type('application/json').set('Cache-Control', 'no-store').send(JSON.stringify(body));
  }

  #refuse(res: Response, reason: string, message: string): void {
    this.#options.stats.inc(`container-credentials.rejected.${reason}`);
    this.#log.info({ reason }, `container credentials refused: ${message}`);
    // fromHttp copies `Code` and `Message` of a 4xx body onto its error.
    res.status(403).json({ Code: 'AccessDenied', Message: message });
  }

  #prune(now: number): void {
    // One TTL for all, so issue order is expiry order: stop at the first set still worth remembering.
    for (const [id, credential] of this.#issued) {
      const stale = credential.expiresAt.getTime() + RETAIN_EXPIRED_MS <= now;
      if (!stale && this.#issued.size < MAX_REMEMBERED) break;
      this.#issued.delete(id);
      this.#rejectedExpired.delete(id);
      this.#options.verifier.removeCredential(id);
    }
  }
}

function base32(length: number): string {
  return [...randomBytes(length)].map((b) => BASE32[b & 31]).join('');
}

function sameString(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}
