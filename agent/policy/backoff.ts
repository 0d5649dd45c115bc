/**
 * The one retry policy of the project, used by the agent (browser relaunch, pipeline restart, discovery,
 * credential refresh) and by the viewer page (viewer sessions, frame sockets). It must stay free of DOM and
 * Node APIs: the page bundles it too.
 *
 * Shape after livekit's ReconnectPolicy: the policy only answers "how long until attempt N, or give up";
 * the caller keeps a RetryStreak that counts consecutive failures and starts over after a success.
 */

export interface RetryContext {
  /** 1-based number of the attempt about to be made after consecutive failures. */
  attempt: number;
  /** How long the failures have been going on (ms since the first of the streak). */
  elapsedMs: number;
  error?: unknown;
}

export interface RetryPolicy {
  /** Delay before the next attempt, or null to give up. */
  nextRetryDelayMs(context: RetryContext): number | null;
}

export interface BackoffOptions {
  /** Delay before the first retry. */
  baseMs: number;
  /** Cap of the exponential growth. */
  maxMs: number;
  /** Give up after this many consecutive failures (default: never). */
  maxAttempts?: number;
  /** Give up once failures have lasted this long (default: never). */
  maxElapsedMs?: number;
  /** ± fraction of the delay drawn at random, so many clients do not retry in lockstep. Default 0.2. */
  jitter?: number;
  /** Seam for tests. */
  random?: () => number;
}

/** Exponential backoff with jitter: base, 2·base, 4·base … capped at maxMs; optional give-up limits. */
export class BackoffPolicy implements RetryPolicy {
  readonly #o: Required<Omit<BackoffOptions, 'random'>> & { random: () => number };

  constructor(options: BackoffOptions) {
    this.#o = {
      maxAttempts: Number.POSITIVE_INFINITY,
      maxElapsedMs: Number.POSITIVE_INFINITY,
      jitter: 0.2,
      random: Math.random,
      ...options,
    };
  }

  get options(): Readonly<BackoffOptions> {
    return this.#o;
  }

  nextRetryDelayMs({ attempt, elapsedMs }: RetryContext): number | null {
    const o = this.#o;
    if (attempt > o.maxAttempts || elapsedMs > o.maxElapsedMs) return null;
    const raw = Math.min(o.maxMs, o.baseMs * 2 ** Math.max(0, attempt - 1));
    const spread = raw * o.jitter * (2 * o.random() - 1);
    return Math.max(0, Math.round(Math.min(o.maxMs, raw + spread)));
  }
}

/**
 * Counts one streak of consecutive failures for a policy; `succeeded()` starts over. The one place that
 * does this bookkeeping, for every supervisor.
 */
export class RetryStreak {
  #attempt = 0;
  #since = 0;

  constructor(
    readonly policy: RetryPolicy,
    private readonly now: () => number = () => Date.now(),
  ) {}

  get attempts(): number {
    return this.#attempt;
  }

  /** Records a failure; returns the delay before the next attempt, or null when the policy gives up. */
  failed(error?: unknown): number | null {
    const now = this.now();
    if (this.#attempt === 0) this.#since = now;
    this.#attempt++;
    return this.policy.nextRetryDelayMs({ attempt: this.#attempt, elapsedMs: now - this.#since, error });
  }

  succeeded(): void {
    this.#attempt = 0;
    this.#since = 0;
  }
}

/**
 * Every retry schedule of the project, in one table: where to change a delay. Bounds come from the recovery
 * table in the README (e.g. "master gone: retry with a cap of ≤ 10 s").
 */
export const RETRY_POLICIES = {
  /** Viewer sessions (new peer connection, new offer): the master may be gone for hours, so never give up. */
  viewerSession: { baseMs: 250, maxMs: 8_000 },
  /**
   * Re-sending an unanswered offer, so one always waits in the channel's message queue (TTL 5–120 s, 60 s by
   * default) for a master that is away. Not sooner than 1 s: a present master takes up to ~1 s to answer on
   * a busy machine, and every extra offer makes it replace its peer. Cap ≤ 10 s: the master-back bound.
   */
  offerResend: { baseMs: 1_000, maxMs: 8_000 },
  /** Signaling socket under a live call (dropped, idle-closed, GO_AWAY). */
  signaling: { baseMs: 200, maxMs: 5_000 },
  /** The worker's frame socket to the agent (loopback). */
  frameSocket: { baseMs: 100, maxMs: 2_000 },
  /** The page's control socket to the agent (loopback). */
  controlSocket: { baseMs: 250, maxMs: 2_000 },
  /** Chromium relaunches: beyond 6 failed relaunches in a row the agent exits non-zero. */
  browserRestart: { baseMs: 500, maxMs: 10_000, maxAttempts: 6 },
  /** GStreamer pipeline restarts: kvssink may be unreachable for minutes, so keep trying for 30 min. */
  pipelineRestart: { baseMs: 250, maxMs: 5_000, maxElapsedMs: 30 * 60_000 },
  /** Re-discovery of a deleted or re-created channel/stream (DescribeSignalingChannel, DescribeStream). */
  discovery: { baseMs: 1_000, maxMs: 15_000 },
  /** Credential refresh for kvssink's credential file. */
  credentialRefresh: { baseMs: 1_000, maxMs: 30_000 },
} as const satisfies Record<string, BackoffOptions>;

export type RetryPolicyName = keyof typeof RETRY_POLICIES;

export function retryPolicy(name: RetryPolicyName, overrides: Partial<BackoffOptions> = {}): BackoffPolicy {
  return new BackoffPolicy({ ...RETRY_POLICIES[name], ...overrides });
}
