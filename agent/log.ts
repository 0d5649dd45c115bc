import { pino, type Logger } from 'pino';
import { ChildProcessError } from './errors.js';

export type { Logger } from 'pino';

const CENSOR = '[redacted]';

/**
 * Keys whose values are secrets (or, for `accessKeyId`, identify one), compared case-insensitively with
 * `-` and `_` ignored, so `sessionToken`, `SessionToken`, `x-amz-security-token` and `session_token` all match.
 */
const SECRET_KEYS = new Set(
  [
    'accessKeyId',
    'secretAccessKey',
    'secretKey',
    'secret',
    'sessionToken',
    'securityToken',
    'xAmzSecurityToken',
    'xAmzSignature',
    'xAmzCredential',
    'token',
    'credential',
    'credentials',
    'authorization',
    'password',
    'cookie',
  ].map(normalizeKey),
);

function normalizeKey(key: string): string {
  return key.replace(/[-_]/g, '').toLowerCase();
}

/**
 * Secrets inside strings: presigned URL parameters, the bridge token in the page URL (`#token=`,
 * `?token=`), and SigV4 `Authorization` header parts.
 */
const SECRET_IN_STRING =
  /([?&#;](?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|token)=)[^&#\s"'<>]*/gi;
const AUTH_PARTS = /\b((?:Credential|Signature)=)[^,\s&"'<>]+/g;

/** Removes credential-like substrings from one string (URLs, header values, child output lines). */
export function redactString(value: string): string {
  return value.replace(SECRET_IN_STRING, `$1${CENSOR}`).replace(AUTH_PARTS, `$1${CENSOR}`);
}

const MAX_REDACT_DEPTH = 12;

/**
 * A copy of `value` with credential-like keys censored at any depth (objects and arrays) and secrets
 * removed from strings. Errors become `errorFields()`; cycles and very deep nesting are cut, so a log call
 * can never throw or recurse without bound.
 */
export function redact(value: unknown): unknown {
  return redactValue(value, 0, new WeakSet());
}

function redactValue(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (typeof value === 'string') return redactString(value);
  if (typeof value !== 'object' || value === null) return value;
  if (value instanceof Error) return errorFields(value);
  if (seen.has(value)) return '[circular]';
  if (depth >= MAX_REDACT_DEPTH) return '[too deep]';
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return `[${value.byteLength} bytes]`;
  if (value instanceof Date) return value;
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1, seen));
    if (value instanceof Map) {
      return redactValue(Object.fromEntries(value), depth, seen);
    }
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      // defineProperty: a `__proto__` key stays a plain own property instead of changing the prototype.
      Object.defineProperty(out, key, {
        value:
          SECRET_KEYS.has(normalizeKey(key)) && isSecretShaped(v) ? CENSOR : redactValue(v, depth + 1, seen),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

/** Booleans and numbers under a secret-sounding key are flags (`{ credentials: false }`), not secrets. */
function isSecretShaped(value: unknown): boolean {
  return typeof value === 'string' || (typeof value === 'object' && value !== null);
}

/** How many causes `errorFields` follows (AWS SDK errors nest a few; a cycle must not loop). */
const MAX_CAUSE_DEPTH = 5;
const MAX_OUTPUT_LINES = 20;

/** What the log says about an error. */
export interface ErrorFields {
  type: string;
  message: string;
  code?: string;
  stack?: string;
  /** ChildProcessError: which child, its pid, how it ended, what it last printed. */
  child?: string;
  pid?: number;
  exitCode?: number | null;
  signal?: string | null;
  recentOutput?: string[];
  /** AWS SDK errors: the HTTP status and request id. */
  httpStatusCode?: number;
  requestId?: string;
  /** ConfigError: the field as the user wrote it. */
  field?: string;
  cause?: ErrorFields | { message: string };
}

/**
 * One error as structured log fields: `code`, the cause chain, and for `ChildProcessError` pid, exit code,
 * signal and the last output lines. Everything passes through `redact`. Use as `log.error({ err }, …)`
 * (the logger's `err` serializer calls this) or spread where a different key is wanted.
 */
export function errorFields(err: unknown, depth = 0): ErrorFields {
  if (!(err instanceof Error)) {
    return { type: typeof err, message: redactString(safeString(err)) };
  }
  const out: ErrorFields = { type: err.name || err.constructor.name, message: redactString(err.message) };
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' || typeof code === 'number') out.code = String(code);
  if (err.stack !== undefined) out.stack = redactString(err.stack);
  if (err instanceof ChildProcessError) {
    const d = err.details;
    out.child = d.child;
    if (d.pid !== undefined) out.pid = d.pid;
    if (d.exitCode !== undefined) out.exitCode = d.exitCode;
    if (d.signal !== undefined) out.signal = d.signal;
    if (d.recentOutput) out.recentOutput = d.recentOutput.slice(-MAX_OUTPUT_LINES).map(redactString);
  }
  const field = (err as { field?: unknown }).field;
  if (typeof field === 'string') out.field = field;
  const metadata = (err as { $metadata?: { httpStatusCode?: unknown; requestId?: unknown } }).$metadata;
  if (typeof metadata?.httpStatusCode === 'number') out.httpStatusCode = metadata.httpStatusCode;
  if (typeof metadata?.requestId === 'string') out.requestId = metadata.requestId;
  if (err.cause !== undefined) {
    out.cause =
      depth + 1 >= MAX_CAUSE_DEPTH
        ? { message: '[cause chain truncated]' }
        : errorFields(err.cause, depth + 1);
  }
  return out;
}

function safeString(value: unknown): string {
  try {
    return typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  } catch {
    return String(value);
  }
}

/**
 * Structured JSON logs on stdout, one line per event. Every logged object (and every child's bindings) is
 * redacted at any depth and errors are serialized with `errorFields` — a second line of defence: nothing
 * should put secrets there in the first place. The message string is cleaned of URL secrets too.
 */
export function createLogger(options: {
  level: string;
  base?: Record<string, unknown>;
  /** Where lines go (tests); default stdout. */
  destination?: pino.DestinationStream;
}): Logger {
  const logOptions: pino.LoggerOptions = {
    level: options.level,
    base: options.base ?? {},
    timestamp: pino.stdTimeFunctions.isoTime,
    serializers: {
      err: (value: unknown) => (value instanceof Error ? errorFields(value) : value),
    },
    formatters: {
      level: (label) => ({ level: label }),
      log: (obj) => redact(obj) as Record<string, unknown>,
      bindings: (bindings) => redact(bindings) as Record<string, unknown>,
    },
    hooks: {
      logMethod(args, method) {
        // The message is whichever string argument pino formats; clean them all (format args included).
        const cleaned = args.map((a: unknown) => (typeof a === 'string' ? redactString(a) : a));
        method.apply(this, cleaned as Parameters<typeof method>);
      },
    },
  };
  const logger = options.destination ? pino(logOptions, options.destination) : pino(logOptions);
  // pino applies `formatters.bindings` to the root only; children inherit this method and redact here.
  const pinoChild = Object.getPrototypeOf(logger) as { child: (b: unknown, o?: unknown) => Logger };
  const redactingChild = function (this: Logger, bindings: pino.Bindings, childOptions?: unknown): Logger {
    return pinoChild.child.call(this, redact(bindings), childOptions);
  };
  logger.child = redactingChild as unknown as Logger['child'];
  return logger;
}

/** Splits a child's byte stream into lines and hands each to `onLine` (partial last line kept). */
export function lineSplitter(onLine: (line: string) => void): (chunk: Buffer | string) => void {
  let rest = '';
  return (chunk) => {
    rest += chunk.toString();
    let idx: number;
    while ((idx = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, idx).replace(/\r$/, '');
      rest = rest.slice(idx + 1);
      if (line.length > 0) onLine(line);
    }
    if (rest.length > 64 * 1024) {
      onLine(rest);
      rest = '';
    }
  };
}

/** Keeps the last `size` lines of a child's output for error reports. */
export class RingBuffer {
  readonly #lines: string[] = [];
  constructor(readonly size = 50) {}
  push(line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > this.size) this.#lines.shift();
  }
  lines(): string[] {
    return [...this.#lines];
  }
}
