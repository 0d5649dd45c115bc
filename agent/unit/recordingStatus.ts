import { basename } from 'node:path';
import type { FragmentAck, RecordingStatus } from '../bridge/controlProtocol.js';
import type { RecorderStatus } from '../recording/recorder.js';

/** At most one message per this long: a kvssink fragment brings three acks within a second. */
export const RECORDING_STATUS_THROTTLE_MS = 500;

export interface RecordingStatusReporterOptions {
  sink: RecordingStatus['sink'];
  /** The stream (kvssink), shown as the run's name. */
  streamName: string;
  send: (status: RecordingStatus) => void;
  throttleMs?: number;
  now?: () => number;
}

/**
 * Keeps the unit's recording state as the page shows it, and sends it when it changed: at once when nothing
 * was sent for `throttleMs`, otherwise once at the end of that time with whatever is newest then.
 */
export class RecordingStatusReporter {
  readonly #o: RecordingStatusReporterOptions;
  readonly #now: () => number;
  readonly #throttleMs: number;
  #status: RecordingStatus;
  #sentKey = '';
  #lastSentAt = -Infinity;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: RecordingStatusReporterOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#throttleMs = options.throttleMs ?? RECORDING_STATUS_THROTTLE_MS;
    this.#status = {
      sink: options.sink,
      state: 'waiting-for-key-frame',
      runs: 0,
      restarts: 0,
      ...(options.sink === 'kvssink' ? { fragments: { received: 0, persisted: 0, errors: 0 } } : {}),
    };
  }

  get status(): RecordingStatus {
    return structuredClone(this.#status);
  }

  /** The recorder's own counters, polled by the unit's tick; only a difference is sent. */
  recorder(status: RecorderStatus): void {
    const { state, runs, restarts } = status;
    if (state === this.#status.state && runs === this.#status.runs && restarts === this.#status.restarts)
      return;
    this.#status = { ...this.#status, state, runs, restarts };
    this.#changed();
  }

  runStarted(run: { number: number; path?: string | undefined; size: string; startedAtMs: number }): void {
    this.#status = {
      ...this.#status,
      runs: Math.max(this.#status.runs, run.number),
      current: {
        number: run.number,
        name: this.#name(run.path),
        size: run.size,
        startedAtMs: run.startedAtMs,
      },
    };
    this.#changed();
  }

  runEnded(run: { number: number; path?: string | undefined; videoFrames: number }): void {
    const { current, ...rest } = this.#status;
    this.#status = {
      ...rest,
      // A renewal starts the next run before the previous one has finished closing.
      ...(current && current.number !== run.number ? { current } : {}),
      last: {
        number: run.number,
        name: this.#name(run.path),
        endedAtMs: this.#now(),
        videoFrames: run.videoFrames,
      },
    };
    this.#changed();
  }

  fragmentAck(ack: FragmentAck, timecode: number): void {
    const f = this.#status.fragments ?? { received: 0, persisted: 0, errors: 0 };
    this.#status = {
      ...this.#status,
      fragments: {
        received: f.received + (ack === 'received' ? 1 : 0),
        persisted: f.persisted + (ack === 'persisted' ? 1 : 0),
        errors: f.errors + (ack === 'error' ? 1 : 0),
        last: { ack, timecode, atMs: this.#now() },
      },
    };
    this.#changed();
  }

  /** Sends the current state now, changed or not (a page that just said hello knows nothing yet). */
  resend(): void {
    this.#sentKey = '';
    this.#flush();
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Only the base name of a file: the output directory is nobody's business on screen. */
  #name(path: string | undefined): string {
    return path ? basename(path) : this.#o.streamName;
  }

  #changed(): void {
    if (this.#timer) return;
    const wait = this.#lastSentAt + this.#throttleMs - this.#now();
    if (wait <= 0) {
      this.#flush();
      return;
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#flush();
    }, wait);
    this.#timer.unref();
  }

  #flush(): void {
    const key = JSON.stringify(this.#status);
    if (key === this.#sentKey) return;
    this.#sentKey = key;
    this.#lastSentAt = this.#now();
    this.#o.send(this.status);
  }
}
