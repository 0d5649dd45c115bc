/** Named counters the tests read through `admin.stats()`: rejections by reason, routed messages, … */
export class Stats {
  readonly #counts = new Map<string, number>();

  inc(name: string, by = 1): void {
    this.#counts.set(name, (this.#counts.get(name) ?? 0) + by);
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.#counts.entries()].sort(([a], [b]) => a.localeCompare(b)));
  }
}
