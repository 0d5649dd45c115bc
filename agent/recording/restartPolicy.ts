/** Decides whether and when a failed child is started again (after livekit's ReconnectPolicy). */
export interface RestartPolicy {
  /** Delay before attempt `attempt` (1-based) after `elapsedMs` of failing; null = give up. */
  nextRetryDelayMs(context: { attempt: number; elapsedMs: number; error: Error }): number | null;
}

/** Exponential backoff from `baseMs`, capped at `maxMs`, giving up after `maxAttempts` consecutive failures. */
export class BackoffPolicy implements RestartPolicy {
  constructor(
    private readonly options: { baseMs: number; maxMs: number; maxAttempts: number } = {
      baseMs: 500,
      maxMs: 30_000,
      maxAttempts: 20,
    },
  ) {}

  nextRetryDelayMs({ attempt }: { attempt: number }): number | null {
    if (attempt > this.options.maxAttempts) return null;
    return Math.min(this.options.maxMs, this.options.baseMs * 2 ** (attempt - 1));
  }
}
