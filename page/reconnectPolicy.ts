/** Capped exponential backoff between viewer sessions: 1 s, 2 s, 4 s … 30 s, starting over after a success. */
export function reconnectDelayMs(attempt: number, baseMs = 1_000, capMs = 30_000): number {
  return Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
}
