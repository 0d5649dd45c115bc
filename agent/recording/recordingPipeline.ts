import type { WireFrame } from '../bridge/wire.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { MatroskaStreamMuxer } from '../media/muxer.js';
import { MediaTimeline, type TimedFrame } from '../media/timeline.js';
import { GstProcess } from '../sink/gstProcess.js';
import { buildPipelineArgs, type SinkSpec } from '../sink/pipeline.js';
import { TypedEmitter } from '../typedEmitter.js';
import { RecordingStats, type RecordingSummary } from './recordingStats.js';

/** How long to wait for a first audio frame after the first key frame before recording video only. */
const AUDIO_GRACE_MS = 1000;
/** Frames held while GStreamer starts (≈ 12 s at 30 fps + 50 audio packets/s). */
const MAX_PENDING_FRAMES = 1000;

export interface PipelineEvents extends Record<string, unknown[]> {
  /** The run cannot go on (gst died, the pipe stalled); the owner decides what comes next. */
  failed: [Error];
  /** A key frame would help (frames were dropped). */
  'keyframe-needed': [];
  /** gst is up and frames flow. */
  recording: [];
}

export interface RecordingPipelineOptions {
  sink: SinkSpec;
  gstLaunchPath: string;
  logger: Logger;
  /** Extra environment for gst (kvssink: region, endpoint). */
  gstEnv?: Record<string, string>;
  /** kvssink connects to KVS before prerolling: it needs longer than a file. */
  readyTimeoutMs?: number;
  /** Every gst output line (kvssink error parsing). */
  onGstLine?: (line: string) => void;
  /** gst starts only after this settles (the previous kvssink session must end first). */
  startAfter?: Promise<unknown>;
  /**
   * Hold the first frame until it is at least this old (ms since it was received). kvssink stamps a session's
   * frames from the wall clock at its first frame, so a session that starts with less delay than the one
   * before would overlap it in time; matching the previous session's delay keeps KVS timestamps increasing.
   */
  minStartLagMs?: number;
  stallTimeoutMs?: number;
}

/**
 * One recording run: timeline → muxer → GStreamer, one file or one kvssink session. Waits for the first
 * video key frame, decides whether there is audio, starts gst, then streams. It never restarts itself: a
 * failure ends the run with `failed`, and the Recorder decides what comes next.
 */
export class RecordingPipeline extends TypedEmitter<PipelineEvents> {
  readonly #options: RecordingPipelineOptions;
  readonly #log: Logger;
  readonly #timeline = new MediaTimeline();
  readonly stats = new RecordingStats();
  #state: 'waiting' | 'starting' | 'running' | 'closing' | 'closed' = 'waiting';
  #pending: TimedFrame[] = [];
  #sawAudio = false;
  #firstKeyAtMs: number | null = null;
  #gst: GstProcess | undefined;
  #muxer: MatroskaStreamMuxer | undefined;
  #closing: Promise<RecordingSummary> | undefined;
  /** How old the first frame was when it went to gst (ms); set when the run starts recording. */
  startLagMs: number | undefined;

  constructor(options: RecordingPipelineOptions) {
    super();
    this.#options = options;
    this.#log = options.logger;
  }

  get state(): string {
    return this.#state;
  }

  push(frame: WireFrame): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    const timed = this.#timeline.push(frame);
    if (!timed) return;
    const now = Date.now();
    if (this.#state === 'running') {
      this.#write(timed, now);
      return;
    }
    if (this.#pending.length >= MAX_PENDING_FRAMES) {
      this.#fail(new Error(`GStreamer did not start while ${MAX_PENDING_FRAMES} frames were waiting`));
      return;
    }
    this.#pending.push(timed);
    if (timed.kind === 'audio') this.#sawAudio = true;
    this.#firstKeyAtMs ??= now;
    if (this.#state === 'waiting' && (this.#sawAudio || now - this.#firstKeyAtMs >= AUDIO_GRACE_MS)) {
      this.#state = 'starting';
      this.#start(this.#sawAudio).catch((err: unknown) => this.#fail(err));
    }
  }

  async #start(hasAudio: boolean): Promise<void> {
    if (this.#options.startAfter) await this.#options.startAfter.catch(() => undefined);
    if (this.#state !== 'starting') return;
    const sink = this.#options.sink;
    const args = buildPipelineArgs(sink, { hasAudio });
    this.#log.info({ hasAudio, sink: sink.kind, args: args.join(' ') }, 'starting GStreamer');
    const gst = new GstProcess({
      args,
      gstLaunchPath: this.#options.gstLaunchPath,
      logger: this.#log.child({ child: 'gst' }),
      ...(this.#options.gstEnv ? { env: this.#options.gstEnv } : {}),
      ...(this.#options.readyTimeoutMs ? { readyTimeoutMs: this.#options.readyTimeoutMs } : {}),
      ...(this.#options.onGstLine ? { onLine: this.#options.onGstLine } : {}),
    });
    this.#gst = gst;
    gst.on('died', (err) => this.#fail(err));
    await gst.start();
    if (this.#state !== 'starting') return;
    const muxer = new MatroskaStreamMuxer({
      hasAudio,
      output: gst.stdin,
      logger: this.#log.child({ component: 'muxer' }),
      ...(this.#options.stallTimeoutMs ? { stallTimeoutMs: this.#options.stallTimeoutMs } : {}),
    });
    this.#muxer = muxer;
    muxer.on('failed', (err) => this.#fail(err));
    muxer.on('stalled', (info) =>
      this.#fail(new Error(`GStreamer stopped reading its input: ${JSON.stringify(info)}`)),
    );
    muxer.on('overflow', ({ dropped }) => {
      this.#log.warn({ dropped }, 'muxer queue overflowed: frames dropped until the next key frame');
      this.safeEmit('keyframe-needed');
    });
    await muxer.start();
    const firstReceived = this.#pending[0]?.receiveTimeMs ?? Date.now();
    if (this.#options.minStartLagMs !== undefined) {
      const wait = this.#options.minStartLagMs - (Date.now() - firstReceived);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (this.#state !== 'starting') return;
    }
    this.stats.startedAt = new Date();
    this.#state = 'running';
    const now = Date.now();
    this.startLagMs = now - firstReceived;
    for (const frame of this.#pending) {
      if (frame.kind === 'audio' && !hasAudio) continue;
      this.#write(frame, now);
    }
    this.#pending = [];
    this.safeEmit('recording');
    this.#log.info(
      { hasAudio, sink: sink.kind, ...(sink.kind === 'file' ? { path: sink.path } : {}) },
      'recording',
    );
  }

  #write(frame: TimedFrame, now: number): void {
    if (!this.#muxer) return;
    this.stats.record(frame, now);
    this.#muxer.write(frame);
  }

  #fail(err: unknown): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    const error = err instanceof Error ? err : new Error(String(err));
    this.#log.error({ err: errorMessage(error) }, 'recording run failed');
    this.safeEmit('failed', error);
  }

  /** Graceful end: flush the muxer, EOS through gst so the file or session is finished, wait for gst to exit. */
  close(): Promise<RecordingSummary> {
    this.#closing ??= this.#doClose();
    return this.#closing;
  }

  async #doClose(): Promise<RecordingSummary> {
    this.#state = 'closing';
    try {
      if (this.#muxer) await this.#muxer.finish();
    } catch (err) {
      this.#log.warn({ err: errorMessage(err) }, 'muxer did not finish cleanly');
    }
    if (this.#gst) {
      // kvssink waits for the last fragment's PERSISTED ack (stop-stream-timeout) before it exits.
      const exit = await this.#gst.close({
        timeoutMs: this.#options.sink.kind === 'kvssink' ? 25_000 : 10_000,
      });
      this.#log.info({ ...exit }, 'GStreamer finished');
    }
    this.#state = 'closed';
    const sink = this.#options.sink;
    return {
      ...this.stats.summary(sink.kind === 'file' && this.#muxer ? [sink.path] : []),
      timeline: this.#timeline.stats(),
      ...(this.#muxer ? { muxer: this.#muxer.stats() } : {}),
    };
  }
}
