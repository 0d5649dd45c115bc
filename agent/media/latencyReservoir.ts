/**
 * Latency samples in a fixed-size reservoir (uniform over everything seen), so percentiles stay honest and
 * memory bounded on multi-day runs; the maximum is exact.
 */
export class LatencyReservoir {
  readonly #samples: number[] = [];
  #seen = 0;
  #max = -Infinity;

  constructor(readonly capacity = 10_000) {}

  add(ms: number): void {
    this.#seen++;
    if (ms > this.#max) this.#max = ms;
    if (this.#samples.length < this.capacity) this.#samples.push(ms);
    else {
      const slot = Math.floor(Math.random() * this.#seen);
      if (slot < this.capacity) this.#samples[slot] = ms;
    }
  }

  get seen(): number {
    return this.#seen;
  }

  /** p50, p99 and max in ms (rounded to µs); null while nothing was seen. */
  summary(): { p50: number | null; p99: number | null; max: number | null; samples: number } {
    const sorted = [...this.#samples].sort((a, b) => a - b);
    const round = (v: number) => Math.round(v * 1000) / 1000;
    const pct = (p: number) =>
      sorted.length ? round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!) : null;
    return {
      p50: pct(0.5),
      p99: pct(0.99),
      max: sorted.length ? round(this.#max) : null,
      samples: this.#seen,
    };
  }
}
