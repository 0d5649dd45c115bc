import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Structured JSON logs on stdout, one line per event. Secrets are redacted by path as a second line of
 * defence: nothing should put them there in the first place.
 */
export function createLogger(options: { level: string; base?: Record<string, unknown> }): Logger {
  return pino({
    level: options.level,
    base: options.base ?? {},
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        '*.secretAccessKey',
        '*.sessionToken',
        '*.SecretAccessKey',
        '*.SessionToken',
        '*.token',
        '*.credential',
        '*.password',
      ],
      censor: '[redacted]',
    },
    formatters: { level: (label) => ({ level: label }) },
  });
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
