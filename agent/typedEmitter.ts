import { EventEmitter } from 'node:events';

/** Event name → listener arguments, e.g. `{ died: [Error]; ready: [] }`. */
export type EventMap = Record<string, unknown[]>;

/**
 * A typed EventEmitter whose `safeEmit` survives a throwing listener (after mediasoup's enhancedEvents):
 * one broken subscriber must not take down the supervisor that emits.
 */
export class TypedEmitter<E extends EventMap> {
  readonly #emitter = new EventEmitter();

  on<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    this.#emitter.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  once<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    this.#emitter.once(event, listener as (...args: unknown[]) => void);
    return this;
  }

  off<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    this.#emitter.off(event, listener as (...args: unknown[]) => void);
    return this;
  }

  protected safeEmit<K extends keyof E & string>(event: K, ...args: E[K]): void {
    for (const listener of this.#emitter.listeners(event)) {
      try {
        (listener as (...a: unknown[]) => void)(...args);
      } catch (err) {
        // A listener's bug is reported, not propagated into the emitter's state machine.
        process.emitWarning(
          `listener for "${event}" threw: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
    }
  }
}
