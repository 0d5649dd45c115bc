import type { IncomingMessage, ServerResponse } from 'node:http';
import { AwsError } from '../awsErrors.js';

/**
 * Test hook: PutMedia as it looks when KVS has trouble. `refuse` answers new PutMedia requests with an
 * HTTP error (500 InternalFailure or 503 ServiceUnavailable) and cuts the connections under way, as an outage
 * would; `stall` stops reading every PutMedia body (no more ACKs) and holds new requests unanswered, as a
 * congested or black-holed network would; `none` (the default: the emulator's real behaviour) lets held and
 * paused requests go on where they were.
 */
export type PutMediaFaultMode = 'none' | 'refuse' | 'stall';

export interface PutMediaFault {
  mode: PutMediaFaultMode;
  /** HTTP status of a refusal (default 503). */
  status?: 500 | 503;
}

interface Live {
  req: IncomingMessage;
  res: ServerResponse;
}

export class PutMediaFaults {
  #fault: PutMediaFault = { mode: 'none' };
  readonly #live = new Set<Live>();
  readonly #held = new Set<() => void>();
  #refused = 0;

  get fault(): PutMediaFault {
    return { ...this.#fault };
  }

  /** Requests refused (new and cut) since the emulator started. */
  get refused(): number {
    return this.#refused;
  }

  set(fault: PutMediaFault): void {
    if (!['none', 'refuse', 'stall'].includes(fault.mode)) throw new RangeError(`unknown mode ${fault.mode}`);
    if (fault.status !== undefined && fault.status !== 500 && fault.status !== 503)
      throw new RangeError(`status must be 500 or 503, got ${String(fault.status)}`);
    this.#fault = { mode: fault.mode, ...(fault.status !== undefined ? { status: fault.status } : {}) };
    for (const live of this.#live) {
      if (fault.mode === 'refuse') {
        this.#refused++;
        live.res.destroy();
      } else if (fault.mode === 'stall') live.req.pause();
      else live.req.resume();
    }
    if (fault.mode !== 'stall') {
      for (const release of this.#held) release();
      this.#held.clear();
    }
  }

  /**
   * At the start of a PutMedia request: throws the refusal while refusing, waits while stalled. Returns a
   * function to call when the request ends.
   */
  async admit(req: IncomingMessage, res: ServerResponse): Promise<() => void> {
    while (this.#fault.mode === 'stall') {
      await new Promise<void>((resolve) => {
        this.#held.add(resolve);
        res.once('close', resolve);
      });
      if (res.destroyed) break;
    }
    if (this.#fault.mode === 'refuse') {
      this.#refused++;
      const status = this.#fault.status ?? 503;
      throw new AwsError(
        status,
        status === 503 ? 'ServiceUnavailableException' : 'InternalFailure',
        'PutMedia refused (emulator fault injection)',
      );
    }
    const live = { req, res };
    this.#live.add(live);
    return () => this.#live.delete(live);
  }
}
