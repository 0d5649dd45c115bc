/**
 * The agent's error taxonomy: every error has a stable `code` for logs and alerts, a `name` equal to its
 * class, and an optional `cause`.
 */
export type AgentErrorCode =
  | 'CONFIG_INVALID'
  | 'TIMEOUT'
  | 'INVALID_STATE'
  | 'CHILD_FAILED'
  | 'DISCOVERY_FAILED'
  | 'CHANNEL_STORAGE_ENABLED'
  | 'MEDIA_REJECTED'
  | 'PIPE_STALLED'
  | 'CODEC_UNSUPPORTED'
  | 'PRESIGN_REFUSED';

export class AgentError extends Error {
  readonly code: AgentErrorCode;

  constructor(code: AgentErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A configuration value failed validation; `field` names it the way the user wrote it. */
export class ConfigError extends AgentError {
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super('CONFIG_INVALID', message);
  }
}

export class TimeoutError extends AgentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TIMEOUT', message, options);
  }
}

export class InvalidStateError extends AgentError {
  constructor(message: string) {
    super('INVALID_STATE', message);
  }
}

/** A supervised child (Chromium, gst-launch) failed to start or died. Carries what it last said. */
export class ChildProcessError extends AgentError {
  constructor(
    message: string,
    readonly details: {
      child: string;
      pid?: number | undefined;
      exitCode?: number | null | undefined;
      signal?: string | null | undefined;
      recentOutput?: string[] | undefined;
    },
    options?: { cause?: unknown },
  ) {
    super('CHILD_FAILED', message, options);
  }
}

export class DiscoveryError extends AgentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DISCOVERY_FAILED', message, options);
  }
}

/** The page asked the presigner for something other than the agent's own viewer URL (hostile or broken page). */
export class PresignRefusedError extends AgentError {
  constructor(message: string) {
    super('PRESIGN_REFUSED', message);
  }
}

/** Rejected media input (malformed frame, unsupported codec): counted, never fatal on its own. */
export class MediaError extends AgentError {}

/** Races `promise` against a timer; the timer never outlives the race. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new TimeoutError(`${what} did not finish within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
