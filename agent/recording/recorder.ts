import type { WireFrame } from '../bridge/wire.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { SinkSpec } from '../sink/pipeline.js';
import { TypedEmitter } from '../typedEmitter.js';
import { RecordingPipeline } from './recordingPipeline.js';
import type { RecordingSummary } from './recordingStats.js';
import type { RestartPolicy } from './restartPolicy.js';

export interface RecorderOptions {
  /** The sink of the next run: a new file path per segment, or the same kvssink stream. */
  sinkForRun: () => SinkSpec;
  /** Start a new run at the first key frame after this long (file segments). */
  segmentMs?: number;
  /**
   * Start a new run at a key frame whose resolution differs from the run's first one. kvssink takes a
   * track's codec private data only once per session, so a new session is the way to give KVS (HLS,
   * GetClip) the right SPS for each resolution.
   */
  renewOnResolutionChange?: boolean;
  /** A new run starts gst only after the previous one finished (one PutMedia session per stream). */
  sequentialRuns?: boolean;
  gstLaunchPath: string;
  gstEnv?: Record<string, string>;
  readyTimeoutMs?: number;
  onGstLine?: (line: string) => void;
  restartPolicy: RestartPolicy;
  logger: Logger;
}

export interface RecorderEvents extends Record<string, unknown[]> {
  /** Ask the page for a key frame: a run is waiting to start. */
  'keyframe-needed': [];
  /** Runs keep failing beyond the restart policy. */
  fatal: [Error];
}

/**
 * Keeps a recording going as a sequence of runs (RecordingPipeline): starts the next run at a key frame
 * when a segment is full or the resolution changed, and after a failure by the restart policy.
 */
export class Recorder extends TypedEmitter<RecorderEvents> {
  readonly #options: RecorderOptions;
  readonly #log: Logger;
  #current: RecordingPipeline | undefined;
  /** The current run's first key frame: receive time and size. */
  #runStart: { receiveTimeMs: number; size: string } | undefined;
  #previousClose: Promise<unknown> | undefined;
  /** The last started run's start lag (see RecordingPipelineOptions.minStartLagMs). */
  #lastStartLagMs: number | undefined;
  readonly #closing: Promise<RecordingSummary>[] = [];
  #failures = { attempt: 0, since: 0 };
  #restartTimer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: RecorderOptions) {
    super();
    this.#options = options;
    this.#log = options.logger;
    this.#startRun();
  }

  push(frame: WireFrame): void {
    if (this.#stopped || !this.#current) return;
    const h = frame.header;
    if (h.kind === 'video' && h.key && h.codec === 'h264') {
      const size = `${h.width}x${h.height}`;
      if (!this.#runStart) {
        this.#runStart = { receiveTimeMs: h.receiveTimeMs, size };
      } else if (this.#shouldRenew(h.receiveTimeMs, size)) {
        this.#log.info({ previous: this.#runStart.size, size }, 'starting the next run at this key frame');
        this.#endRun(this.#current);
        // This key frame starts the new run: asking for another now would make its first fragment a few
        // frames long, possibly without audio (KVS refuses that fragment: 4011).
        this.#startRun(false);
        this.#runStart = { receiveTimeMs: h.receiveTimeMs, size };
      }
    }
    this.#current?.push(frame);
  }

  #shouldRenew(receiveTimeMs: number, size: string): boolean {
    const start = this.#runStart!;
    const { segmentMs, renewOnResolutionChange } = this.#options;
    if (segmentMs !== undefined && receiveTimeMs - start.receiveTimeMs >= segmentMs) return true;
    // Delta frames report 0x0; only a key frame with a known, different size counts.
    return !!renewOnResolutionChange && size !== '0x0' && start.size !== '0x0' && size !== start.size;
  }

  #startRun(needsKeyFrame = true): void {
    const run = new RecordingPipeline({
      sink: this.#options.sinkForRun(),
      gstLaunchPath: this.#options.gstLaunchPath,
      logger: this.#log,
      ...(this.#options.gstEnv ? { gstEnv: this.#options.gstEnv } : {}),
      ...(this.#options.readyTimeoutMs ? { readyTimeoutMs: this.#options.readyTimeoutMs } : {}),
      ...(this.#options.onGstLine ? { onGstLine: this.#options.onGstLine } : {}),
      ...(this.#options.sequentialRuns && this.#previousClose ? { startAfter: this.#previousClose } : {}),
      // +10 ms covers jitter inside gst; consecutive frames are ≥ 20 ms apart anyway.
      ...(this.#options.sequentialRuns && this.#lastStartLagMs !== undefined
        ? { minStartLagMs: this.#lastStartLagMs + 10 }
        : {}),
    });
    this.#current = run;
    this.#runStart = undefined;
    run.on('keyframe-needed', () => this.safeEmit('keyframe-needed'));
    run.on('failed', (err) => this.#onFailed(run, err));
    // A run that got going ends the failure streak.
    run.on('recording', () => {
      this.#failures = { attempt: 0, since: 0 };
      this.#lastStartLagMs = run.startLagMs;
    });
    if (needsKeyFrame) this.safeEmit('keyframe-needed');
  }

  #endRun(run: RecordingPipeline): void {
    const closing = run.close();
    this.#closing.push(closing);
    this.#previousClose = closing;
    void closing.then(
      (s) => this.#log.info({ files: s.files, videoFrames: s.video.frames }, 'run finished'),
      (err: unknown) => this.#log.warn({ err: errorMessage(err) }, 'run did not close cleanly'),
    );
  }

  #onFailed(run: RecordingPipeline, err: Error): void {
    if (this.#current !== run || this.#stopped) return;
    this.#current = undefined;
    this.#endRun(run);
    const now = Date.now();
    if (this.#failures.attempt === 0) this.#failures.since = now;
    this.#failures.attempt++;
    const delay = this.#options.restartPolicy.nextRetryDelayMs({
      attempt: this.#failures.attempt,
      elapsedMs: now - this.#failures.since,
      error: err,
    });
    if (delay === null) {
      this.safeEmit('fatal', err);
      return;
    }
    this.#log.warn({ delayMs: delay, attempt: this.#failures.attempt }, 'restarting the recording');
    this.#restartTimer = setTimeout(() => {
      if (!this.#stopped) this.#startRun(true);
    }, delay);
  }

  /** Ends the current run gracefully and waits for every run still closing. */
  async stop(): Promise<RecordingSummary[]> {
    this.#stopped = true;
    clearTimeout(this.#restartTimer);
    if (this.#current) this.#endRun(this.#current);
    this.#current = undefined;
    const results = await Promise.allSettled(this.#closing);
    return results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  }
}
