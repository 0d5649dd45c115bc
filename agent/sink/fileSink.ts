import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { TimedFrame } from '../media/timeline.js';
import { TypedEmitter } from '../typedEmitter.js';
import type { RunInfo, RunPlan, Sink, SinkEvents, SinkHealth } from './sink.js';

/**
 * MPEG-TS segments on disk: a new run (gst child, file) at the first key frame after `segmentMs`. Each file
 * starts at timestamp 0 and is named by its wall-clock start, so files sort and never collide.
 */
export class FileSink extends TypedEmitter<SinkEvents> implements Sink {
  readonly kind = 'file' as const;
  readonly sequentialRuns: boolean = false;
  readonly closeTimeoutMs: number;
  readonly #outputDir: string;
  readonly #stream: string;
  readonly #segmentMs: number;

  constructor(options: { outputDir: string; stream: string; segmentMs: number; closeTimeoutMs: number }) {
    super();
    this.#outputDir = options.outputDir;
    this.#stream = options.stream;
    this.#segmentMs = options.segmentMs;
    this.closeTimeoutMs = options.closeTimeoutMs;
  }

  async prepare(): Promise<void> {
    await mkdir(this.#outputDir, { recursive: true });
  }

  nextRun(): RunPlan {
    return {
      spec: {
        kind: 'file',
        path: join(this.#outputDir, `${this.#stream}_${new Date().toISOString().replace(/[-:]/g, '')}.ts`),
      },
      readyTimeoutMs: 10_000,
      timestampUs: (frame, run) => frame.timestampUs - run.first.timestampUs,
    };
  }

  renewalReason(run: RunInfo, keyFrame: TimedFrame): string | null {
    return keyFrame.timestampUs - run.first.timestampUs >= this.#segmentMs * 1000 ? 'segment full' : null;
  }

  health(): SinkHealth {
    return { ready: true, reasons: [] };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
