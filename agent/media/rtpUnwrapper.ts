const RTP_MODULO = 2 ** 32;

/**
 * Turns 32-bit RTP timestamps into a monotonic-in-expectation extended timeline.
 *
 * Each value is placed at the signed 32-bit distance from the previous one, so a wrap-around (0xFFFFFF00 → 0x10)
 * moves forward and a slightly reordered frame moves a little backward instead of 2^32 ticks forward.
 */
export class RtpUnwrapper {
  #last: number | null = null;

  /** Returns the extended timestamp (may exceed 2^32 or go below 0 after wraps). */
  unwrap(rtpTimestamp: number): number {
    const ts = rtpTimestamp >>> 0;
    if (this.#last === null) {
      this.#last = ts;
      return ts;
    }
    const lastWrapped = ((this.#last % RTP_MODULO) + RTP_MODULO) % RTP_MODULO;
    // `| 0` reinterprets the 32-bit difference as signed: |delta| < 2^31 ticks (6.6 h at 90 kHz).
    const delta = (ts - lastWrapped) | 0;
    this.#last += delta;
    return this.#last;
  }

  reset(): void {
    this.#last = null;
  }
}
