import { test } from '@playwright/test';

/** mulberry32: small, fast, good enough to drive a fuzzer, and replayable from one 32-bit seed. */
export class Prng {
  #state: number;
  constructor(readonly seed: number) {
    this.#state = seed >>> 0;
  }
  /** [0, 1) */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  bool(p = 0.5): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)]!;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(0, 255);
    return out;
  }
  string(maxLength: number): string {
    const alphabets = [
      'abcdefghijklmnopqrstuvwxyz',
      'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/=',
      '{}[]":,\\\\ \n\t',
      '\u0000\u0001\u007f\u00e9\u4e2d\ud83d\ude00',
      '-_.~%&?#',
    ];
    const alphabet = [...this.pick(alphabets)];
    let s = '';
    const n = this.int(0, maxLength);
    for (let i = 0; i < n; i++) s += this.pick(alphabet);
    return s;
  }
  /** A random JSON value (depth-limited). */
  json(depth = 0): unknown {
    const r = this.int(0, depth > 3 ? 4 : 7);
    switch (r) {
      case 0:
        return null;
      case 1:
        return this.bool();
      case 2:
        return this.pick([0, -1, 1.5, 2 ** 53, -(2 ** 31), 1e308, this.int(-1000, 1000)]);
      case 3:
      case 4:
        return this.string(40);
      case 5:
        return Array.from({ length: this.int(0, 5) }, () => this.json(depth + 1));
      default:
        return Object.fromEntries(
          Array.from({ length: this.int(0, 6) }, () => [
            this.pick(['type', 'action', '__proto__', 'constructor', 'msg', 'data', this.string(8)]),
            this.json(depth + 1),
          ]),
        );
    }
  }
}

/** The seed from `FUZZ_SEED` (replay) or a fresh one; printed and attached to the test either way. */
export function fuzzSeed(name: string): Prng {
  const fromEnv = process.env.FUZZ_SEED;
  const seed = fromEnv !== undefined ? Number(fromEnv) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
  report(`${name}: seed ${seed} (replay with FUZZ_SEED=${seed})`);
  return new Prng(seed);
}

/** Prints a result line and attaches it to the test, as the other measuring tests do. */
export function report(line: string, detail?: unknown): void {
  const description = detail === undefined ? line : `${line} ${JSON.stringify(detail)}`;
  test.info().annotations.push({ type: 'fuzz', description });
  process.stdout.write(`[fuzz] ${description}\n`);
}

/** Random edits of valid bytes: flips, truncation, extension, overwritten header fields. */
export function mutateBytes(rng: Prng, input: Uint8Array): Uint8Array {
  let out = new Uint8Array(input);
  const edits = rng.int(1, 4);
  for (let e = 0; e < edits; e++) {
    switch (rng.int(0, 5)) {
      case 0: // flip bits
        if (out.length > 0) out[rng.int(0, out.length - 1)]! ^= 1 << rng.int(0, 7);
        break;
      case 1: // truncate
        out = out.slice(0, rng.int(0, out.length));
        break;
      case 2: // extend
        out = new Uint8Array([...out, ...rng.bytes(rng.int(1, 64))]);
        break;
      case 3: // overwrite a header byte (first 32)
        if (out.length > 0) out[rng.int(0, Math.min(31, out.length - 1))] = rng.int(0, 255);
        break;
      case 4: // random header, original payload
        out = new Uint8Array([...rng.bytes(32), ...out.slice(32)]);
        break;
      default: // random run of bytes
        if (out.length > 0) {
          const at = rng.int(0, out.length - 1);
          out.set(rng.bytes(Math.min(8, out.length - at)), at);
        }
    }
  }
  return out;
}

/** Random edits of a valid JSON object: drop, retype, add, oversize a field. */
export function mutateObject(rng: Prng, input: Record<string, unknown>): unknown {
  const out: Record<string, unknown> = { ...input };
  const keys = Object.keys(out);
  const edits = rng.int(1, 3);
  for (let e = 0; e < edits; e++) {
    const key = rng.pick(keys.length > 0 ? keys : ['x']);
    switch (rng.int(0, 5)) {
      case 0:
        delete out[key];
        break;
      case 1:
        out[key] = rng.json(2);
        break;
      case 2:
        out[rng.string(10)] = rng.json(2);
        break;
      case 3:
        out[key] =
          typeof out[key] === 'string' ? `${String(out[key])}${'A'.repeat(rng.int(1, 20_000))}` : 'A';
        break;
      case 4:
        out[key] = typeof out[key] === 'string' ? String(out[key]).slice(0, rng.int(0, 5)) : null;
        break;
      default:
        return rng.pick([[out], `${JSON.stringify(out)}`, null, 42]);
    }
  }
  return out;
}
