/**
 * Decides when the video transform asks the master for a key frame. Chrome + OpenH264 sends one only every
 * 100 s by itself, and a recording (KVS: one fragment per key frame) needs them far more often.
 * At most one request is in flight, and requests are at least `minGapMs` apart.
 */
export class KeyFrameRequester {
  #lastKeyFrameAt: number;
  #lastRequestAt = Number.NEGATIVE_INFINITY;
  #inFlight = false;
  #deferred = false;
  requests = 0;
  failures = 0;

  constructor(
    private readonly send: () => Promise<void>,
    private readonly intervalMs: number,
    private readonly onFailure: (err: unknown) => void,
    private readonly minGapMs = 1_000,
    now = performance.now(),
  ) {
    this.#lastKeyFrameAt = now;
  }

  /** Call on every video frame. */
  onFrame(isKey: boolean, now = performance.now()): void {
    if (isKey) {
      this.#lastKeyFrameAt = now;
      this.#deferred = false;
      return;
    }
    if (this.#deferred || (this.intervalMs > 0 && now - this.#lastKeyFrameAt > this.intervalMs))
      this.request(now);
  }

  /**
   * Returns whether a request was actually sent. One refused for the minimum gap is not forgotten: it is
   * sent with a later frame once the gap has passed, unless a key frame came meanwhile.
   */
  request(now = performance.now()): boolean {
    if (this.#inFlight || now - this.#lastRequestAt < this.minGapMs) {
      this.#deferred = true;
      return false;
    }
    this.#deferred = false;
    this.#inFlight = true;
    this.#lastRequestAt = now;
    this.requests++;
    this.send()
      .catch((err: unknown) => {
        this.failures++;
        this.onFailure(err);
      })
      .finally(() => {
        this.#inFlight = false;
      });
    return true;
  }
}
