import type { TrackKind } from '../bridge/wire.js';
import { AgentError } from '../errors.js';
import type { Logger } from '../log.js';
import { MatroskaStreamMuxer } from '../media/muxer.js';
import type { TimedFrame } from '../media/timeline.js';
import type { DropCause } from '../ops/metrics.js';
import { GstProcess } from '../sink/gstProcess.js';
import { AUDIO_CHAIN_TAIL_MS, buildPipelineArgs, pipelineInputs } from '../sink/pipeline.js';
import { frameSize, type RunInfo, type RunPlan } from '../sink/sink.js';
import { TypedEmitter } from '../typedEmitter.js';
import { RecordingStats, type RecordingSummary } from './recordingStats.js';

/**
 * Frames held while GStreamer starts or the previous kvssink session finishes. Bounded in count and bytes;
 * beyond either, frames are dropped (counted) until the next key frame. 60 s of a 720p call fits.
 */
const MAX_PENDING_FRAMES = 6_000;
const MAX_PENDING_BYTES = 48 * 1024 * 1024;

export interface PipelineEvents extends Record<string, unknown[]> {
  /** The run cannot go on (gst died, the pipe stalled); the owner decides what comes next. */
  failed: [Error];
  /** Frames were dropped: a key frame would let recording resume sooner. */
  'keyframe-needed': [];
  /** gst is up and frames flow. */
  recording: [];
}

export interface RecordingPipelineOptions {
  plan: RunPlan;
  gstLaunchPath: string;
  logger: Logger;
  /** gst starts only after this settles (the previous kvssink session must end first). */
  startAfter?: Promise<unknown>;
  stallTimeoutMs?: number;
  /** The graceful part of close() (EOS, last fragment acknowledged) before gst is killed. */
  closeTimeoutMs: number;
  /** Every frame this run or its muxer does not write, by cause (drop metrics). */
  onDrop?: (cause: DropCause, kind: TrackKind, count: number) => void;
}

/**
 * One recording run: TimedFrames → muxer → GStreamer, one file or one kvssink session. The first frame pushed
 * must be a video key frame (the Recorder guarantees it). Both tracks are always declared: audio that never
 * comes, or comes late, is covered by silence, so every file and fragment has both tracks. It never restarts
 * itself: a failure ends the run with `failed`, and the Recorder decides what comes next.
 */
export class RecordingPipeline extends TypedEmitter<PipelineEvents> {
  readonly #options: RecordingPipelineOptions;
  readonly #log: Logger;
  readonly stats = new RecordingStats();
  #state: 'waiting' | 'starting' | 'running' | 'closing' | 'closed' = 'waiting';
  #pending: TimedFrame[] = [];
  #pendingBytes = 0;
  #droppingPending = false;
  #run: RunInfo | undefined;
  #gst: GstProcess | undefined;
  #muxer: MatroskaStreamMuxer | undefined;
  #closing: Promise<RecordingSummary> | undefined;
  #starting: Promise<void> | undefined;
  #passDeadline!: () => void;
  /** Resolves when hurry()'s deadline passed. */
  readonly #deadlinePassed = new Promise<void>((resolve) => (this.#passDeadline = resolve));
  #failed = false;
  /** Frames this run could not keep (pending overflow, before its first key frame, before its start). */
  droppedFrames = 0;

  constructor(options: RecordingPipelineOptions) {
    super();
    this.#options = options;
    this.#log = options.logger;
  }

  get state(): string {
    return this.#state;
  }

  get gstPid(): number | undefined {
    return this.#gst?.pid;
  }

  queueDepth(): { frames: number; bytes: number } {
    // Read every watchdog tick: the muxer's cheap counters, not stats() (which sorts latency samples).
    const m = this.#muxer?.queueDepth();
    return {
      frames: this.#pending.length + (m?.frames ?? 0),
      bytes: this.#pendingBytes + (m?.bytes ?? 0),
    };
  }

  get run(): RunInfo | undefined {
    return this.#run;
  }

  push(frame: TimedFrame): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    if (!this.#run) {
      if (!(frame.kind === 'video' && frame.key)) {
        this.#drop('before_keyframe', frame.kind);
        return;
      }
      this.#run = { first: frame, size: frameSize(frame) };
    }
    if (this.#state === 'running') {
      this.#write(frame, Date.now());
      return;
    }
    this.#hold(frame);
    if (this.#state === 'waiting') {
      this.#state = 'starting';
      this.#starting = this.#start().catch((err: unknown) => this.#fail(err));
    }
  }

  #hold(frame: TimedFrame): void {
    const full =
      this.#pending.length >= MAX_PENDING_FRAMES ||
      this.#pendingBytes + frame.data.byteLength > MAX_PENDING_BYTES;
    if (this.#droppingPending || full) {
      const resumes = frame.kind === 'video' && frame.key && !full;
      if (!resumes) {
        if (!this.#droppingPending) {
          this.#log.warn(
            { pending: this.#pending.length, bytes: this.#pendingBytes },
            'GStreamer is not taking frames yet and the hold buffer is full: dropping until a key frame',
          );
          this.safeEmit('keyframe-needed');
        }
        this.#droppingPending = true;
        this.#drop('queue_overflow', frame.kind);
        return;
      }
      this.#droppingPending = false;
    }
    this.#pending.push(frame);
    this.#pendingBytes += frame.data.byteLength;
  }

  async #start(): Promise<void> {
    if (this.#options.startAfter) await this.#options.startAfter.catch(() => undefined);
    // A run closed before it started still records what it holds: close() waits for this.
    if (this.#failed) return;
    const { plan } = this.#options;
    const pipelineOptions = { hasAudio: true };
    const args = buildPipelineArgs(plan.spec, pipelineOptions);
    this.#log.info({ sink: plan.spec.kind, args: args.join(' ') }, 'starting GStreamer');
    const gst = new GstProcess({
      args,
      inputs: pipelineInputs(pipelineOptions),
      gstLaunchPath: this.#options.gstLaunchPath,
      logger: this.#log.child({ child: 'gst' }),
      readyTimeoutMs: plan.readyTimeoutMs,
      ...(plan.gstEnv ? { env: plan.gstEnv } : {}),
      ...(plan.onGstLine ? { onLine: plan.onGstLine } : {}),
    });
    this.#gst = gst;
    gst.on('died', (err) => this.#fail(err));
    await gst.start();
    if (this.#failed) return;
    const muxer = new MatroskaStreamMuxer({
      outputs: { video: gst.input(0), audio: gst.input(1) },
      audioTailUs: AUDIO_CHAIN_TAIL_MS * 1000,
      logger: this.#log.child({ component: 'muxer' }),
      ...(this.#options.stallTimeoutMs ? { stallTimeoutMs: this.#options.stallTimeoutMs } : {}),
      ...(plan.dropTrailingKeyFrame ? { dropTrailingKeyFrame: true } : {}),
      // The hold buffer goes into the muxer at once when gst is up: its queue must take all of it.
      maxQueuedFrames: MAX_PENDING_FRAMES + 600,
      maxQueuedBytes: MAX_PENDING_BYTES + 32 * 1024 * 1024,
    });
    this.#muxer = muxer;
    muxer.on('failed', (err) => this.#fail(err));
    muxer.on('dropped', ({ cause, kind, count }) => this.#options.onDrop?.(cause, kind, count));
    muxer.on('stalled', (info) =>
      this.#fail(
        new AgentError('PIPE_STALLED', `GStreamer stopped reading its input: ${JSON.stringify(info)}`),
      ),
    );
    muxer.on('overflow', ({ dropped }) => {
      this.#log.warn({ dropped }, 'muxer queue overflowed: frames dropped until the next key frame');
      this.safeEmit('keyframe-needed');
    });
    await muxer.start();
    if (this.#failed) return;
    this.stats.startedAt = new Date();
    if (this.#state === 'starting') this.#state = 'running';
    const now = Date.now();
    for (const frame of this.#pending) this.#write(frame, now);
    this.#pending = [];
    this.#pendingBytes = 0;
    this.safeEmit('recording');
    const spec = plan.spec;
    const first = this.#run?.first;
    this.#log.info(
      {
        sink: spec.kind,
        ...(spec.kind === 'file' ? { path: spec.path } : {}),
        firstFrameWallClockMs: first?.wallClockMs,
        firstFrameReceivedMs: first ? Math.round(first.receiveTimeMs) : undefined,
        size: this.#run?.size,
      },
      'recording',
    );
  }

  #drop(cause: DropCause, kind: TrackKind): void {
    this.droppedFrames++;
    this.#options.onDrop?.(cause, kind, 1);
  }

  #write(frame: TimedFrame, now: number): void {
    const muxer = this.#muxer;
    const run = this.#run;
    if (!muxer || !run) return;
    // Audio captured just before the run's first key frame has nowhere to go in this run.
    if (frame.timestampUs < run.first.timestampUs) {
      this.#drop('before_keyframe', frame.kind);
      return;
    }
    const timestampUs = this.#options.plan.timestampUs(frame, run);
    this.stats.record(frame, now);
    muxer.write(timestampUs === frame.timestampUs ? frame : { ...frame, timestampUs });
  }

  #fail(err: unknown): void {
    if (this.#failed || this.#state === 'closed') return;
    this.#failed = true;
    if (this.#state === 'closing') {
      this.#log.warn({ err: err }, 'recording run failed while closing');
      return;
    }
    const error = err instanceof Error ? err : new Error(String(err));
    this.#log.error({ err: error }, 'recording run failed');
    this.safeEmit('failed', error);
  }

  /**
   * Graceful end within `closeTimeoutMs`: flush the muxer and EOS through gst so the file or session is
   * finished, wait for gst to exit. A gst that does not take its input (hung) is killed when the time is up,
   * so close() always settles. Idempotent.
   */
  /** The agent is stopping: a close in progress must be done by `deadlineAtMs` after all. */
  hurry(deadlineAtMs: number): void {
    const timer = setTimeout(() => this.#passDeadline(), Math.max(0, deadlineAtMs - Date.now()));
    timer.unref();
  }

  close(deadlineAtMs?: number): Promise<RecordingSummary> {
    this.#closing ??= this.#doClose(deadlineAtMs);
    return this.#closing;
  }

  /**
   * Without a deadline (a renewal: the next run takes over) the close time counts from when this run is up:
   * a run queued behind the previous kvssink session still gets to record what it holds. With one (stop, a
   * failed run) everything must be done by then.
   */
  async #doClose(deadlineAtMs: number | undefined): Promise<RecordingSummary> {
    this.#state = 'closing';
    if (this.#starting) {
      // Not started yet (gst coming up, or the previous kvssink session still finishing): start it, write
      // what it holds, then finish.
      const started = await Promise.race([
        this.#starting.then(() => true),
        this.#deadlinePassed.then(() => false),
        ...(deadlineAtMs === undefined
          ? []
          : [delay(Math.max(0, deadlineAtMs - Date.now())).then(() => false)]),
      ]);
      if (!started) this.#fail(new Error('the run did not start within its close time'));
    }
    const deadline = deadlineAtMs ?? Date.now() + this.#options.closeTimeoutMs;
    for (const frame of this.#pending) this.#drop('no_run', frame.kind);
    this.#pending = [];
    if (this.#muxer) {
      const finished = this.#muxer.finish().then(
        () => true,
        (err: unknown) => {
          this.#log.warn({ err: err }, 'muxer did not finish cleanly');
          return true;
        },
      );
      const inTime = await Promise.race([
        finished,
        this.#deadlinePassed.then(() => false),
        delay(Math.max(0, deadline - Date.now())).then(() => false),
      ]);
      if (!inTime) {
        this.#log.error(
          { pid: this.#gst?.pid, closeTimeoutMs: this.#options.closeTimeoutMs },
          'GStreamer did not take the rest of its input in time (hung?): killing it',
        );
        this.#gst?.kill();
      }
    }
    if (this.#gst) {
      // kvssink waits for the last fragment's PERSISTED ack (stop-stream-timeout) before it exits.
      const exit = await this.#gst.close({
        timeoutMs: Math.max(0, deadline - Date.now()),
        escalationStepMs: 500,
      });
      this.#log.info({ ...exit }, 'GStreamer finished');
    }
    this.#state = 'closed';
    const spec = this.#options.plan.spec;
    const summary = this.stats.summary(spec.kind === 'file' && this.#muxer ? [spec.path] : []);
    return {
      ...summary,
      droppedFrames: this.droppedFrames,
      ...(this.#muxer ? { muxer: this.#muxer.stats() } : {}),
    };
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
