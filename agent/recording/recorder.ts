import type { TrackKind } from '../bridge/wire.js';
import { AgentError } from '../errors.js';
import type { Logger } from '../log.js';
import type { TimedFrame } from '../media/timeline.js';
import type { DropCause } from '../ops/metrics.js';
import { RetryStreak, type RetryPolicy } from '../policy/backoff.js';
import type { Sink } from '../sink/sink.js';
import { TypedEmitter } from '../typedEmitter.js';
import { RecordingPipeline } from './recordingPipeline.js';
import type { RecordingSummary } from './recordingStats.js';

/** How long a failed run may take to finish before its gst is killed. */
const FAILED_RUN_CLOSE_MS = 2_000;
/**
 * After a renewal the old run keeps taking audio captured before the new run's first key frame (it arrives a
 * little after that frame) until audio reaches the new run, or this long at most.
 */
const RETIRE_GRACE_MS = 500;

/** A pause in a track longer than this is a gap (reported, never hidden). */
const GAP_THRESHOLD_MS: Record<TrackKind, number> = { video: 1_000, audio: 1_000 };

export interface RecorderOptions {
  sink: Sink;
  gstLaunchPath: string;
  restartPolicy: RetryPolicy;
  logger: Logger;
  stallTimeoutMs?: number;
}

export interface RecorderEvents extends Record<string, unknown[]> {
  /** Ask the page for a key frame: a run is waiting to start, or frames were dropped. */
  'keyframe-needed': [];
  /** Runs keep failing beyond the restart policy. */
  fatal: [Error];
  /** A run failed and another will be started (child restart, for metrics). */
  restart: [{ attempt: number; delayMs: number; error: Error }];
  /** A track paused longer than the gap threshold; reported when it resumes. */
  gap: [{ kind: TrackKind; seconds: number }];
  /** Frames not written, by cause (drop metrics). */
  dropped: [{ cause: DropCause; kind: TrackKind; count: number }];
  /** A run's GStreamer is up and takes frames (numbered from 1; `path` for files). */
  'run-started': [{ number: number; path?: string; size: string; startedAtMs: number }];
  /** A run finished closing (file written, kvssink session over), cleanly or not. */
  'run-ended': [{ number: number; path?: string; summary: RecordingSummary | undefined }];
}

export interface RecorderStatus {
  /** Wall clock of the last frame handed to a running run, or null. */
  lastWrittenAtMs: number | null;
  state: 'waiting-for-key-frame' | 'starting' | 'running' | 'restarting' | 'stopped';
  runs: number;
  restarts: number;
  /** Frames dropped because no run could take them (between a failure and the next run). */
  droppedWithoutRun: number;
}

/**
 * Keeps a recording going as a sequence of runs (RecordingPipeline). The sink decides where runs end (segments,
 * renewals) and how they are sequenced; the restart policy decides when a failed run is followed by another.
 * Every run starts at a video key frame.
 */
export class Recorder extends TypedEmitter<RecorderEvents> {
  readonly #options: RecorderOptions;
  readonly #sink: Sink;
  readonly #log: Logger;
  readonly #failures: RetryStreak;
  #current: RecordingPipeline | undefined;
  #previousClose: Promise<unknown> | undefined;
  /** The run a renewal ended, still taking the audio from before the new run's start. */
  #retiring:
    | {
        run: RecordingPipeline;
        untilUs: number;
        timer: NodeJS.Timeout;
        closed: (p: Promise<unknown>) => void;
      }
    | undefined;
  readonly #closing: Promise<RecordingSummary>[] = [];
  /** Runs still closing (a renewal lets a run finish at its own pace until the agent stops). */
  readonly #closingRuns = new Set<RecordingPipeline>();
  #restartTimer: NodeJS.Timeout | undefined;
  /** After a failure: no run until the restart delay passed and the sink is prepared again. */
  #restarting = false;
  #stopped = false;
  readonly #lastFrameMs: Record<TrackKind, number | null> = { video: null, audio: null };
  /** Each run's number and file, for the run-started / run-ended events. */
  readonly #runIds = new WeakMap<RecordingPipeline, { number: number; path?: string }>();
  readonly #status: RecorderStatus = {
    lastWrittenAtMs: null,
    state: 'waiting-for-key-frame',
    runs: 0,
    restarts: 0,
    droppedWithoutRun: 0,
  };

  constructor(options: RecorderOptions) {
    super();
    this.#options = options;
    this.#sink = options.sink;
    this.#log = options.logger;
    this.#failures = new RetryStreak(options.restartPolicy);
    this.#sink.on('run-failed', (err) => {
      if (this.#current) this.#onFailed(this.#current, err);
    });
  }

  status(): RecorderStatus {
    return { ...this.#status, state: this.#stateNow() };
  }

  #stateNow(): RecorderStatus['state'] {
    if (this.#stopped) return 'stopped';
    if (this.#restarting) return 'restarting';
    const run = this.#current;
    if (!run || !run.run) return 'waiting-for-key-frame';
    return run.state === 'running' ? 'running' : 'starting';
  }

  /** Frames and payload bytes waiting for gst in the current run (hold buffer + muxer queue). */
  queueDepth(): { frames: number; bytes: number } {
    return this.#current?.queueDepth() ?? { frames: 0, bytes: 0 };
  }

  /** The current run's gst pid, if it has one (tests, diagnostics). */
  gstPids(): number[] {
    const pid = this.#current?.gstPid;
    return pid === undefined ? [] : [pid];
  }

  #dropWithoutRun(kind: TrackKind): void {
    this.#status.droppedWithoutRun++;
    this.safeEmit('dropped', { cause: 'no_run', kind, count: 1 });
  }

  push(frame: TimedFrame): void {
    if (this.#stopped) {
      this.safeEmit('dropped', { cause: 'after_stop', kind: frame.kind, count: 1 });
      return;
    }
    const retiring = this.#retiring;
    if (retiring && frame.kind === 'audio') {
      if (frame.timestampUs < retiring.untilUs) {
        retiring.run.push(frame);
        return;
      }
      this.#finishRetiring();
    }
    if (this.#restarting) {
      this.#dropWithoutRun(frame.kind);
      return;
    }
    if (frame.kind === 'video' && frame.key) {
      const run = this.#current?.run;
      const reason = run ? this.#sink.renewalReason(run, frame) : null;
      if (reason) {
        this.#log.info({ reason }, 'starting the next run at this key frame');
        this.#retire(this.#current!, frame.timestampUs);
        this.#current = undefined;
      }
      // This key frame starts the new run: asking for another now would make its first fragment a few
      // frames long, possibly without audio (KVS refuses that fragment: 4011).
      this.#current ??= this.#newRun();
    }
    const run = this.#current;
    if (!run) {
      this.#dropWithoutRun(frame.kind);
      return;
    }
    run.push(frame);
    this.#noteWritten(frame, run);
  }

  #noteWritten(frame: TimedFrame, run: RecordingPipeline): void {
    if (!run.run) return;
    const last = this.#lastFrameMs[frame.kind];
    if (last !== null && frame.wallClockMs - last > GAP_THRESHOLD_MS[frame.kind]) {
      const seconds = (frame.wallClockMs - last) / 1000;
      this.#log.warn({ kind: frame.kind, seconds }, 'gap in the recording');
      this.safeEmit('gap', { kind: frame.kind, seconds });
    }
    this.#lastFrameMs[frame.kind] = frame.wallClockMs;
    if (run.state === 'running') this.#status.lastWrittenAtMs = Date.now();
  }

  #newRun(): RecordingPipeline {
    const sink = this.#sink;
    const plan = sink.nextRun();
    const run = new RecordingPipeline({
      plan,
      gstLaunchPath: this.#options.gstLaunchPath,
      logger: this.#log,
      closeTimeoutMs: sink.closeTimeoutMs,
      onDrop: (cause, kind, count) => this.safeEmit('dropped', { cause, kind, count }),
      ...(this.#options.stallTimeoutMs ? { stallTimeoutMs: this.#options.stallTimeoutMs } : {}),
      ...(sink.sequentialRuns && this.#previousClose ? { startAfter: this.#previousClose } : {}),
    });
    const number = ++this.#status.runs;
    const path = plan.spec.kind === 'file' ? plan.spec.path : undefined;
    this.#runIds.set(run, { number, ...(path ? { path } : {}) });
    run.on('keyframe-needed', () => this.safeEmit('keyframe-needed'));
    run.on('failed', (err) => this.#onFailed(run, err));
    run.on('recording', () => {
      // A run that got going ends the failure streak.
      this.#failures.succeeded();
      const size = run.run?.size ?? '';
      this.safeEmit('run-started', { number, ...(path ? { path } : {}), size, startedAtMs: Date.now() });
    });
    return run;
  }

  /** Ends `run` once the audio from before `untilUs` (the next run's first frame) has come; see RETIRE_GRACE_MS. */
  #retire(run: RecordingPipeline, untilUs: number): void {
    this.#finishRetiring();
    let closed!: (p: Promise<unknown>) => void;
    // The next run starts after this one has closed (sequential sinks), not merely after it was told to.
    this.#previousClose = new Promise<unknown>((resolve) => (closed = resolve));
    const timer = setTimeout(() => this.#finishRetiring(), RETIRE_GRACE_MS);
    timer.unref();
    this.#retiring = { run, untilUs, timer, closed };
  }

  #finishRetiring(deadlineAtMs?: number): void {
    const retiring = this.#retiring;
    if (!retiring) return;
    this.#retiring = undefined;
    clearTimeout(retiring.timer);
    retiring.closed(this.#endRun(retiring.run, deadlineAtMs));
  }

  #endRun(run: RecordingPipeline, deadlineAtMs?: number): Promise<RecordingSummary> {
    const closing = run.close(deadlineAtMs);
    this.#closingRuns.add(run);
    const forget = () => void this.#closingRuns.delete(run);
    closing.then(forget, forget);
    const id = this.#runIds.get(run);
    if (id) {
      closing.then(
        (summary) => this.safeEmit('run-ended', { ...id, summary }),
        () => this.safeEmit('run-ended', { ...id, summary: undefined }),
      );
    }
    this.#closing.push(closing);
    void closing.then(
      (s) => this.#log.info({ files: s.files, videoFrames: s.video.frames }, 'run finished'),
      (err: unknown) => this.#log.warn({ err: err }, 'run did not close cleanly'),
    );
    return closing;
  }

  #onFailed(run: RecordingPipeline, err: Error): void {
    if (this.#retiring?.run === run) this.#finishRetiring(Date.now() + FAILED_RUN_CLOSE_MS);
    if (this.#current !== run || this.#stopped) return;
    this.#current = undefined;
    // A failed run gets a short close: its gst may be hung, and the next run should not wait behind it. One
    // that stopped reading cannot take an EOS through its full pipe at all: it is killed at once.
    const stalled = err instanceof AgentError && err.code === 'PIPE_STALLED';
    this.#previousClose = this.#endRun(run, Date.now() + (stalled ? 0 : FAILED_RUN_CLOSE_MS));
    this.#scheduleRestart(err);
  }

  #scheduleRestart(err: Error): void {
    const delay = this.#failures.failed(err);
    if (delay === null) {
      this.#log.error({ attempts: this.#failures.attempts, err: err }, 'recording keeps failing');
      this.safeEmit('fatal', err);
      return;
    }
    this.#restarting = true;
    this.#status.restarts++;
    this.#log.warn({ delayMs: delay, attempt: this.#failures.attempts }, 'restarting the recording');
    this.safeEmit('restart', { attempt: this.#failures.attempts, delayMs: delay, error: err });
    this.#restartTimer = setTimeout(() => {
      if (this.#stopped) return;
      // The sink may have lost what it needs (a deleted stream): prepare it again before the next run.
      this.#sink.prepare().then(
        () => {
          if (this.#stopped) return;
          this.#restarting = false;
          this.safeEmit('keyframe-needed');
        },
        (e: unknown) => {
          this.#log.warn({ err: e }, 'sink not ready for the next run');
          this.#scheduleRestart(e instanceof Error ? e : new Error(String(e)));
        },
      );
    }, delay);
  }

  /** Ends the current run gracefully and waits for every run still closing (each bounded by its close time). */
  async stop(): Promise<RecordingSummary[]> {
    this.#stopped = true;
    clearTimeout(this.#restartTimer);
    // One deadline for everything still closing, so sequential runs cannot add up beyond the stop budget.
    const deadline = Date.now() + this.#sink.closeTimeoutMs;
    this.#finishRetiring(deadline);
    for (const run of this.#closingRuns) run.hurry(deadline);
    if (this.#current) void this.#endRun(this.#current, deadline);
    this.#current = undefined;
    const results = await Promise.allSettled(this.#closing);
    return results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  }
}
