import type { PageLog } from './controlProtocol.js';

/** Bounds on what the page may put into one log line (the page is untrusted and may be compromised). */
export const PAGE_LOG_LIMITS = {
  msgChars: 1000,
  stringChars: 500,
  depth: 4,
  keysPerObject: 32,
  itemsPerArray: 32,
  /** Keys and array items over the whole `data` tree. */
  totalEntries: 200,
  keyChars: 64,
} as const;

export type PageLogLevel = PageLog['level'];

/** One page log message, ready for `logger[level](fields, msg)`. */
export interface PageLogEntry {
  level: PageLogLevel;
  msg: string;
  /** Only ever `{ page: … }` (or nothing): page data cannot add or overwrite top-level log keys. */
  fields: { page?: Record<string, unknown> };
}

const LEVELS: ReadonlySet<string> = new Set<PageLogLevel>(['debug', 'info', 'warn', 'error']);

/**
 * Turns a page `log` message into safe log fields. The page's `data` is nested under `page`, so it can
 * neither forge `level`, `channel`, `session`, `msg`, `time` nor add keys of its own at the top level; it
 * is cut to `PAGE_LOG_LIMITS` (depth, keys, items, string length) and holds only JSON values. Secrets are
 * the logger's business (`createLogger` redacts every line).
 */
export function pageLogEntry(message: PageLog): PageLogEntry {
  const level: PageLogLevel = LEVELS.has(message.level) ? message.level : 'info';
  const msg = `page: ${truncate(typeof message.msg === 'string' ? message.msg : String(message.msg), PAGE_LOG_LIMITS.msgChars)}`;
  if (message.data === undefined || message.data === null) return { level, msg, fields: {} };
  const budget = { left: PAGE_LOG_LIMITS.totalEntries };
  const data = sanitize(message.data, 0, budget);
  if (typeof data === 'object' && data !== null && !Array.isArray(data)) {
    return Object.keys(data).length === 0
      ? { level, msg, fields: {} }
      : { level, msg, fields: { page: data as Record<string, unknown> } };
  }
  return { level, msg, fields: { page: { value: data } } };
}

function sanitize(value: unknown, depth: number, budget: { left: number }): unknown {
  switch (typeof value) {
    case 'string':
      return truncate(value, PAGE_LOG_LIMITS.stringChars);
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'boolean':
      return value;
    case 'object':
      break;
    default:
      // undefined, functions, symbols, bigints cannot arrive over JSON; say what it was rather than drop it.
      return `[${typeof value}]`;
  }
  if (value === null) return null;
  if (depth >= PAGE_LOG_LIMITS.depth) return '[too deep]';
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (const item of value.slice(0, PAGE_LOG_LIMITS.itemsPerArray)) {
      if (budget.left-- <= 0) {
        out.push('[truncated]');
        break;
      }
      out.push(sanitize(item, depth + 1, budget));
    }
    if (value.length > PAGE_LOG_LIMITS.itemsPerArray) out.push(`[+${value.length - out.length} items]`);
    return out;
  }
  const out: Record<string, unknown> = {};
  const entries = Object.entries(value as Record<string, unknown>);
  let kept = 0;
  for (const [rawKey, v] of entries) {
    if (kept >= PAGE_LOG_LIMITS.keysPerObject || budget.left <= 0) {
      Object.defineProperty(out, '_truncatedKeys', {
        value: entries.length - kept,
        enumerable: true,
        writable: true,
        configurable: true,
      });
      break;
    }
    budget.left--;
    kept++;
    // defineProperty keeps `__proto__` an ordinary own key instead of replacing the prototype.
    Object.defineProperty(out, truncate(rawKey, PAGE_LOG_LIMITS.keyChars), {
      value: sanitize(v, depth + 1, budget),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max)}…[+${s.length - max} chars]`;
}
