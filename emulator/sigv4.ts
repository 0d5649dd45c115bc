import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** One set of credentials the emulator accepts. A `sessionToken` must then be presented with the request. */
export interface EmulatorCredential {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiresAt?: Date;
}

/** Why a signature was refused; also the counter name suffix in `admin.stats()`. */
export type SigV4Rejection =
  | 'missing-auth'
  | 'malformed'
  | 'unknown-key'
  | 'wrong-region'
  | 'wrong-service'
  | 'missing-token'
  | 'wrong-token'
  | 'credentials-expired'
  | 'clock-skew'
  | 'presign-expired'
  | 'body-hash-mismatch'
  | 'bad-content-sha256'
  | 'bad-signature';

export type SigV4Result =
  | {
      ok: true;
      accessKeyId: string;
      /** The request path as received (not normalised: that is what was signed). */
      path: string;
      /**
       * The query exactly as the verifier decoded it for the signature. Use these values, never a second
       * parse (`URLSearchParams` reads `+` as a space and tolerates bad escapes): what was verified is used.
       */
      query: ReadonlyArray<readonly [string, string]>;
    }
  | {
      ok: false;
      reason: SigV4Rejection;
      message: string;
      /** The expired key the request named (set for `credentials-expired`). */
      accessKeyId?: string;
    };

/** A refused request as reported to `SigV4VerifierOptions.onRejected`. */
export type SigV4Refusal = Extract<SigV4Result, { ok: false }>;

/** The request as received: nothing normalised before verification, because the signer signed the raw form. */
export interface ReceivedRequest {
  method: string;
  /** Request target as received: path plus optional `?query`. */
  url: string;
  /** Node's `rawHeaders` (name, value, name, value, …). */
  rawHeaders: readonly string[];
  /** The body; absent means the empty string (WebSocket handshakes). */
  body?: Buffer;
}

export interface SigV4VerifierOptions {
  region: string;
  service: string;
  credentials: readonly EmulatorCredential[];
  /** Allowed distance between the signing time and now (AWS: 5 minutes). */
  maxClockSkewMs?: number;
  now?: () => number;
  /** Told about every refused request (all transports share one verifier), e.g. to count expired keys. */
  onRejected?: (refusal: SigV4Refusal) => void;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';
/**
 * The named `x-amz-content-sha256` values AWS defines besides a hex digest (signed, unsigned and chunked
 * payloads; see the CRT's `AwsSignedBodyValue`). Any other non-hex value is refused.
 */
export const NAMED_PAYLOAD_HASHES: ReadonlySet<string> = new Set([
  'UNSIGNED-PAYLOAD',
  'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
  'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
  'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER',
  'STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD',
  'STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER',
  'STREAMING-AWS4-HMAC-SHA256-EVENTS',
]);
const EMPTY_SHA256 = createHash('sha256').update('').digest('hex');
const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

class Rejected extends Error {
  constructor(
    readonly reason: SigV4Rejection,
    message: string,
    readonly accessKeyId?: string,
  ) {
    super(message);
  }
}

/**
 * Recomputes AWS Signature Version 4 for header-signed requests and presigned URLs, from the request exactly
 * as received (Host as sent, headers listed in SignedHeaders, RFC 3986 query encoding, security token inside
 * the canonical query), and compares in constant time.
 */
export class SigV4Verifier {
  readonly #options: Required<Omit<SigV4VerifierOptions, 'onRejected'>>;
  readonly #onRejected: ((refusal: SigV4Refusal) => void) | undefined;
  /** By access key id; credentials can be added and removed while serving (rotating temporary credentials). */
  readonly #credentials = new Map<string, EmulatorCredential>();

  constructor(options: SigV4VerifierOptions) {
    const { onRejected, ...rest } = options;
    this.#options = { maxClockSkewMs: 5 * 60_000, now: () => Date.now(), ...rest };
    this.#onRejected = onRejected;
    // First wins on duplicate key ids, as the former array lookup did.
    for (const c of options.credentials) if (!this.#credentials.has(c.accessKeyId)) this.addCredential(c);
  }

  /** Accepts requests signed with `credential` from now on (replacing any with the same key id). */
  addCredential(credential: EmulatorCredential): void {
    this.#credentials.set(credential.accessKeyId, { ...credential });
  }

  /** Forgets a key: its requests are then refused as `unknown-key`. Returns false if it was not known. */
  removeCredential(accessKeyId: string): boolean {
    return this.#credentials.delete(accessKeyId);
  }

  /** Presigned when the query carries `X-Amz-Signature`, else header auth. */
  verify(request: ReceivedRequest): SigV4Result {
    try {
      const { path, query } = splitUrl(request.url);
      const isPresigned = query.some(([k]) => k === 'X-Amz-Signature');
      const accessKeyId = isPresigned ? this.#presigned(request) : this.#headerAuth(request);
      return { ok: true, accessKeyId, path, query };
    } catch (err) {
      const refusal: SigV4Refusal =
        err instanceof Rejected
          ? {
              ok: false,
              reason: err.reason,
              message: err.message,
              ...(err.accessKeyId !== undefined ? { accessKeyId: err.accessKeyId } : {}),
            }
          : { ok: false, reason: 'malformed', message: err instanceof Error ? err.message : String(err) };
      this.#onRejected?.(refusal);
      return refusal;
    }
  }

  #headerAuth(request: ReceivedRequest): string {
    const headers = collectHeaders(request.rawHeaders);
    const authorization = headers.get('authorization');
    if (!authorization) throw new Rejected('missing-auth', 'Missing Authentication Token');
    const match =
      /^AWS4-HMAC-SHA256\s+Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/.exec(
        authorization.trim(),
      );
    if (!match) throw new Rejected('malformed', 'Authorization header is not AWS4-HMAC-SHA256');
    const [, credential = '', signedHeaders = '', signature = ''] = match;
    const amzDate = headers.get('x-amz-date');
    if (!amzDate) throw new Rejected('malformed', 'X-Amz-Date header is missing');
    const signedAt = parseAmzDate(amzDate);
    const scope = this.#checkScope(credential, amzDate);
    this.#checkSkew(signedAt);
    const token = headers.get('x-amz-security-token');
    this.#checkToken(scope.credential, token);

    let payloadHash = headers.get('x-amz-content-sha256');
    const bodyHash = createHash('sha256')
      .update(request.body ?? Buffer.alloc(0))
      .digest('hex');
    if (payloadHash === undefined) payloadHash = bodyHash;
    else if (/^[0-9a-fA-F]{64}$/.test(payloadHash)) {
      if (payloadHash.toLowerCase() !== bodyHash) {
        throw new Rejected('body-hash-mismatch', 'x-amz-content-sha256 does not match the body');
      }
    } else if (!NAMED_PAYLOAD_HASHES.has(payloadHash)) {
      // Else a signer could claim any string as the "hash" and send any body under a valid signature.
      throw new Rejected(
        'bad-content-sha256',
        'x-amz-content-sha256 must be the hex SHA-256 of the body or one of the named payload values',
      );
    }
    const canonical = canonicalRequest(
      request.method,
      request.url,
      headers,
      signedHeaders,
      payloadHash,
      () => true,
    );
    this.#checkSignature(scope, amzDate, canonical, signature);
    return scope.credential.accessKeyId;
  }

  #presigned(request: ReceivedRequest): string {
    const { query } = splitUrl(request.url);
    const get = (name: string): string => {
      const values = query.filter(([k]) => k === name);
      if (values.length !== 1) throw new Rejected('malformed', `query parameter ${name} missing or repeated`);
      return values[0]![1];
    };
    if (get('X-Amz-Algorithm') !== ALGORITHM)
      throw new Rejected('malformed', `X-Amz-Algorithm must be ${ALGORITHM}`);
    const amzDate = get('X-Amz-Date');
    const signedAt = parseAmzDate(amzDate);
    const scope = this.#checkScope(get('X-Amz-Credential'), amzDate);
    const expires = Number(get('X-Amz-Expires'));
    if (!Number.isInteger(expires) || expires < 1 || expires > MAX_PRESIGN_SECONDS) {
      throw new Rejected('malformed', 'X-Amz-Expires must be 1..604800');
    }
    const now = this.#options.now();
    if (signedAt - now > this.#options.maxClockSkewMs) {
      throw new Rejected('clock-skew', 'X-Amz-Date is in the future');
    }
    if (now > signedAt + expires * 1000) throw new Rejected('presign-expired', 'Request has expired');
    const tokens = query.filter(([k]) => k === 'X-Amz-Security-Token');
    this.#checkToken(scope.credential, tokens[0]?.[1]);
    const signature = get('X-Amz-Signature');
    const headers = collectHeaders(request.rawHeaders);
    const canonical = canonicalRequest(
      request.method,
      request.url,
      headers,
      get('X-Amz-SignedHeaders'),
      EMPTY_SHA256,
      (k) => k !== 'X-Amz-Signature',
    );
    this.#checkSignature(scope, amzDate, canonical, signature);
    return scope.credential.accessKeyId;
  }

  #checkScope(credentialField: string, amzDate: string): Scope {
    const parts = credentialField.split('/');
    if (parts.length !== 5 || parts[4] !== 'aws4_request') {
      throw new Rejected('malformed', 'Credential must be <key>/<date>/<region>/<service>/aws4_request');
    }
    const [accessKeyId = '', date = '', region = '', service = ''] = parts;
    if (date !== amzDate.slice(0, 8))
      throw new Rejected('malformed', 'Credential date does not match X-Amz-Date');
    const credential = this.#credentials.get(accessKeyId);
    if (!credential)
      throw new Rejected('unknown-key', 'The security token included in the request is invalid');
    if (region !== this.#options.region) {
      throw new Rejected('wrong-region', `Credential should be scoped to a valid region, not '${region}'`);
    }
    if (service !== this.#options.service) {
      throw new Rejected(
        'wrong-service',
        `Credential should be scoped to correct service: '${this.#options.service}'`,
      );
    }
    if (credential.expiresAt && credential.expiresAt.getTime() <= this.#options.now()) {
      throw new Rejected(
        'credentials-expired',
        'The security token included in the request is expired',
        accessKeyId,
      );
    }
    return { credential, scope: `${date}/${region}/${service}/aws4_request`, date, region, service };
  }

  #checkSkew(signedAt: number): void {
    if (Math.abs(this.#options.now() - signedAt) > this.#options.maxClockSkewMs) {
      throw new Rejected('clock-skew', 'Signature not yet current or expired: request time too skewed');
    }
  }

  #checkToken(credential: EmulatorCredential, presented: string | undefined): void {
    if (credential.sessionToken === undefined) return;
    if (presented === undefined) throw new Rejected('missing-token', 'The security token is missing');
    if (!safeEqual(presented, credential.sessionToken)) {
      throw new Rejected('wrong-token', 'The security token included in the request is invalid');
    }
  }

  #checkSignature(scope: Scope, amzDate: string, canonical: string, presented: string): void {
    const stringToSign = [ALGORITHM, amzDate, scope.scope, sha256Hex(canonical)].join('\n');
    let key = hmac(`AWS4${scope.credential.secretAccessKey}`, scope.date);
    for (const part of [scope.region, scope.service, 'aws4_request']) key = hmac(key, part);
    const expected = hmac(key, stringToSign).toString('hex');
    if (!safeEqual(expected, presented.toLowerCase())) {
      throw new Rejected(
        'bad-signature',
        'The request signature we calculated does not match the signature you provided',
      );
    }
  }
}

interface Scope {
  credential: EmulatorCredential;
  scope: string;
  date: string;
  region: string;
  service: string;
}

function canonicalRequest(
  method: string,
  url: string,
  headers: Map<string, string>,
  signedHeaderList: string,
  payloadHash: string,
  includeQuery: (key: string) => boolean,
): string {
  const { path, query } = splitUrl(url);
  const signed = signedHeaderList.split(';');
  if (!signed.includes('host')) throw new Rejected('malformed', 'host must be a signed header');
  if (signed.some((h, i) => h !== h.toLowerCase() || (i > 0 && signed[i - 1]! >= h))) {
    throw new Rejected('malformed', 'SignedHeaders must be lowercase and sorted');
  }
  const canonicalHeaders = signed
    .map((name) => {
      const value = headers.get(name);
      if (value === undefined) throw new Rejected('malformed', `signed header ${name} is missing`);
      return `${name}:${value}\n`;
    })
    .join('');
  const canonicalQuery = query
    .filter(([k]) => includeQuery(k))
    .map(([k, v]) => [escapeUri(k), escapeUri(v)] as const)
    .sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  return [
    method.toUpperCase(),
    canonicalPath(path),
    canonicalQuery,
    canonicalHeaders,
    signedHeaderList,
    payloadHash,
  ].join('\n');
}

/** Non-S3 services sign the path URI-encoded once more, segment by segment (what the AWS SDKs do). */
function canonicalPath(path: string): string {
  if (path === '' || path === '/') return '/';
  return path
    .split('/')
    .map((segment) => escapeUri(segment))
    .join('/');
}

function splitUrl(url: string): { path: string; query: Array<[string, string]> } {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const raw = q < 0 ? '' : url.slice(q + 1);
  const query: Array<[string, string]> = [];
  for (const part of raw.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    try {
      query.push([decodeURIComponent(key), decodeURIComponent(value)]);
    } catch {
      throw new Rejected('malformed', 'query string is not valid percent-encoding');
    }
  }
  return { path, query };
}

/** Lower-cased names; repeated headers joined with ','; values trimmed with inner whitespace collapsed. */
function collectHeaders(rawHeaders: readonly string[]): Map<string, string> {
  const headers = new Map<string, string>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    const value = rawHeaders[i + 1]!.replace(/[\r\n]/g, ' ')
      .replace(/[ \t]+/g, ' ')
      .trim();
    const previous = headers.get(name);
    headers.set(name, previous === undefined ? value : `${previous},${value}`);
  }
  return headers;
}

/** `yyyymmddThhmmssZ` → epoch ms. */
function parseAmzDate(value: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) throw new Rejected('malformed', 'X-Amz-Date must be yyyymmddThhmmssZ');
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  return Date.UTC(y, mo - 1, d, h, mi, s);
}

/** RFC 3986 unreserved characters stay, everything else is percent-encoded (UTF-8, upper-case hex). */
export function escapeUri(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function sha256Hex(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

function hmac(key: string | Buffer, value: string): Buffer {
  return createHmac('sha256', key).update(value, 'utf8').digest();
}

function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  // timingSafeEqual needs equal lengths; comparing against itself keeps the time independent of where they differ.
  return ab.length === bb.length ? timingSafeEqual(ab, bb) : (timingSafeEqual(ab, ab), false);
}
