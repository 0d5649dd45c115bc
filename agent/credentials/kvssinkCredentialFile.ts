import { chmod, mkdtemp, open, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import type { Logger } from '../log.js';
import { RetryStreak, retryPolicy } from '../policy/backoff.js';
import { TypedEmitter } from '../typedEmitter.js';

/** Refresh at least this often, whatever the expiry says. */
const MAX_REFRESH_INTERVAL_MS = 15 * 60_000;
/**
 * kvssink re-reads the file only ~38 s before the expiry written in it (capped at now + 40 min), so the file
 * must hold fresh credentials well before then.
 */
const REFRESH_BEFORE_EXPIRY_MS = 90_000;
const MIN_REFRESH_INTERVAL_MS = 5_000;

/**
 * The one line kvssink's file credential provider reads. Expiry: exactly `YYYY-MM-DDTHH:mm:SSZ` (20 chars,
 * UTC, no milliseconds). Long-term keys (no session token, no expiry) use the 3-token form.
 */
export function formatCredentialLine(c: AwsCredentialIdentity): string {
  for (const value of [c.accessKeyId, c.secretAccessKey, c.sessionToken ?? '']) {
    if (/\s/.test(value)) throw new Error('credentials contain whitespace and cannot be written for kvssink');
  }
  if (!c.sessionToken && !c.expiration) return `CREDENTIALS ${c.accessKeyId} ${c.secretAccessKey}\n`;
  // Temporary credentials without an expiry (e.g. static env session credentials): kvssink needs one; the
  // file is rewritten long before this passes.
  const expiry = c.expiration ?? new Date(Date.now() + 60 * 60_000);
  const stamp = expiry.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return `CREDENTIALS ${c.accessKeyId} ${stamp} ${c.secretAccessKey} ${c.sessionToken ?? ''}\n`;
}

export interface CredentialFileEvents extends Record<string, unknown[]> {
  refreshed: [{ expiration: Date | undefined }];
  'refresh-failed': [Error];
}

/**
 * Keeps kvssink's credential file current: kvssink cannot use the ECS task role itself (producer-sdk-cpp
 * #558, #975), so the agent resolves credentials with the AWS SDK chain and hands them over only through
 * this file — private directory (0700), file 0600, replaced atomically (write + rename).
 */
export class KvssinkCredentialFile extends TypedEmitter<CredentialFileEvents> {
  #dir: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #lastExpiration: Date | undefined;
  #written = false;
  /** Consecutive refresh failures, retried on the `credentialRefresh` backoff. */
  readonly #failures = new RetryStreak(retryPolicy('credentialRefresh'));
  #lastError: Error | undefined;

  constructor(
    private readonly options: {
      provider: AwsCredentialIdentityProvider;
      logger: Logger;
      /** Parent of the private directory; default the OS temp dir. */
      parentDir?: string;
      now?: () => number;
    },
  ) {
    super();
  }

  /** The private (0700) directory holding the file; kvssink's other private files may go here too. */
  get dir(): string {
    if (!this.#dir) throw new Error('credential file not started');
    return this.#dir;
  }

  /** Path of the file, valid after start(). */
  get path(): string {
    if (!this.#dir) throw new Error('credential file not started');
    return join(this.#dir, 'credential');
  }

  /** Expiry of the credentials in the file (undefined for long-term keys). */
  get expiration(): Date | undefined {
    return this.#lastExpiration;
  }

  /**
   * Why the file is not good for kvssink, or null: the last refresh failed and the credentials in it expire
   * within the refresh margin (kvssink's next re-read would find them expired).
   */
  staleReason(nowMs = (this.options.now ?? Date.now)()): string | null {
    if (!this.#written) return 'no credentials written yet';
    if (!this.#lastError || !this.#lastExpiration) return null;
    const left = this.#lastExpiration.getTime() - nowMs;
    if (left > REFRESH_BEFORE_EXPIRY_MS) return null;
    return `credential refresh failing (${this.#lastError.message}); credentials ${left > 0 ? `expire in ${Math.round(left / 1000)} s` : 'expired'}`;
  }

  /** Writes the first file; rejects if no credentials can be resolved. */
  async start(): Promise<void> {
    this.#dir = await mkdtemp(join(this.options.parentDir ?? tmpdir(), 'webrtc-kvs-agent-kvssink-'));
    await chmod(this.#dir, 0o700);
    try {
      await this.refresh();
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  /** Resolves credentials now and rewrites the file; schedules the next refresh. */
  async refresh(): Promise<void> {
    clearTimeout(this.#timer);
    const now = this.options.now ?? Date.now;
    let retryInMs: number | undefined;
    try {
      const credentials = await this.options.provider({ forceRefresh: false });
      const fresh =
        credentials.expiration && credentials.expiration.getTime() - now() < REFRESH_BEFORE_EXPIRY_MS
          ? await this.options.provider({ forceRefresh: true })
          : credentials;
      await this.#write(formatCredentialLine(fresh));
      this.#lastExpiration = fresh.expiration;
      this.#written = true;
      this.options.logger.info(
        { expiration: fresh.expiration?.toISOString() ?? 'none', temporary: !!fresh.sessionToken },
        'kvssink credentials written',
      );
      this.#failures.succeeded();
      this.#lastError = undefined;
      this.safeEmit('refreshed', { expiration: fresh.expiration });
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      this.#lastError = error;
      retryInMs = this.#failures.failed(error) ?? MIN_REFRESH_INTERVAL_MS;
      this.options.logger.error(
        {
          err: error,
          attempt: this.#failures.attempts,
          retryInMs,
          expiration: this.#lastExpiration?.toISOString(),
        },
        'could not refresh kvssink credentials',
      );
      this.safeEmit('refresh-failed', error);
      // Before the first write there is nothing for kvssink to fall back on: fail loudly.
      if (!this.#written) throw error;
    } finally {
      this.#schedule(now(), retryInMs);
    }
  }

  #schedule(nowMs: number, retryInMs?: number): void {
    if (this.#closed) return;
    if (retryInMs !== undefined) {
      this.#timer = setTimeout(() => void this.refresh(), retryInMs);
      this.#timer.unref();
      return;
    }
    let delay = MAX_REFRESH_INTERVAL_MS;
    if (this.#lastExpiration) {
      const untilRefresh = this.#lastExpiration.getTime() - REFRESH_BEFORE_EXPIRY_MS - nowMs;
      delay = Math.min(delay, Math.max(MIN_REFRESH_INTERVAL_MS, untilRefresh / 2));
    }
    this.#timer = setTimeout(() => void this.refresh(), delay);
    this.#timer.unref();
  }

  async #write(line: string): Promise<void> {
    const target = this.path;
    const temp = `${target}.${process.pid}.${Date.now()}.tmp`;
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(line);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, target);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    if (this.#dir) await rm(this.#dir, { recursive: true, force: true });
  }
}
