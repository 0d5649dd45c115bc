import type { Writable } from 'node:stream';
import {
  type EncodedAudioPacketSource,
  EncodedVideoPacketSource,
  MkvOutputFormat,
  Output,
  StreamTarget,
  type StreamTargetChunk,
} from 'mediabunny';
import type { TrackKind } from '../bridge/wire.js';
import { AgentError } from '../errors.js';

export interface TrackStreamOptions {
  /** The track's packet source; the stream has this one track. */
  source: EncodedVideoPacketSource | EncodedAudioPacketSource;
  /** The gst input this track's stream goes to. */
  pipe: Writable;
  /** The pipe failed: an error, or it closed while `finished()` was still false. Called once at most. */
  onFail: (err: Error) => void;
  /** Whether the stream was ended on purpose (a close after that is no failure). */
  finished: () => boolean;
}

/**
 * One track as a live Matroska stream of its own (mediabunny, append-only) into one pipe.
 *
 * One stream per track rather than one interleaved file: a muxer writes a packet only once every track has one
 * at least as late, so each video frame would wait for the audio captured up to ~48 ms after it (a 20 ms packet,
 * stamped 27.8 ms early for the codec delay). gst interleaves the tracks itself (mpegtsmux, kvssink) and each
 * frame reaches it as soon as it is received.
 */
export class TrackStream {
  readonly kind: TrackKind;
  readonly #output: Output;
  readonly #pipe: Writable;
  readonly #onFail: (err: Error) => void;
  #failed = false;
  #bytesOut = 0;
  #waitingDrain = false;
  #lastFlushed = 0;
  #lastProgressAt = Date.now();

  constructor(options: TrackStreamOptions) {
    this.kind = options.source instanceof EncodedVideoPacketSource ? 'video' : 'audio';
    this.#pipe = options.pipe;
    this.#onFail = (err) => {
      if (this.#failed) return;
      this.#failed = true;
      options.onFail(err);
    };
    this.#output = new Output({
      format: new MkvOutputFormat({ appendOnly: true }),
      target: new StreamTarget(
        new WritableStream<StreamTargetChunk>({ write: (chunk) => this.#writeChunk(chunk) }),
      ),
    });
    if (options.source instanceof EncodedVideoPacketSource) this.#output.addVideoTrack(options.source);
    else this.#output.addAudioTrack(options.source);
    this.#pipe.on('error', (err: Error) => this.#onFail(err));
    // A destroyed pipe (gst gone) may close without an 'error' event: writes would then wait for 'drain' forever.
    this.#pipe.on('close', () => {
      if (!options.finished())
        this.#onFail(new AgentError('PIPE_STALLED', `the ${this.kind} input closed (GStreamer gone?)`));
    });
  }

  get bytesOut(): number {
    return this.#bytesOut;
  }

  start(): Promise<void> {
    return this.#output.start();
  }

  /** Ends the Matroska stream (or drops it if nothing was written: gst then sees an empty input). */
  async finalize(wroteAny: boolean): Promise<void> {
    if (wroteAny) await this.#output.finalize();
    else await this.#output.cancel();
  }

  /** Closes the pipe once everything written has been taken. */
  end(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.#pipe.writableFinished) return resolve();
      this.#pipe.once('error', reject);
      this.#pipe.end(() => resolve());
    });
  }

  /** Bytes written that the pipe has not taken, and for how long nothing moved while some were waiting. */
  progress(now: number): { pendingBytes: number; stalledForMs: number } {
    const pendingBytes = this.#pipe.writableLength;
    const flushed = this.#bytesOut - pendingBytes;
    if (flushed !== this.#lastFlushed || (pendingBytes === 0 && !this.#waitingDrain)) {
      this.#lastFlushed = flushed;
      this.#lastProgressAt = now;
    }
    return { pendingBytes, stalledForMs: now - this.#lastProgressAt };
  }

  /** mediabunny's sink: append to the pipe, waiting for 'drain' when it asks us to. */
  async #writeChunk(chunk: StreamTargetChunk): Promise<void> {
    if (this.#failed) throw new AgentError('PIPE_STALLED', `the ${this.kind} input failed`);
    if (this.#pipe.destroyed || this.#pipe.writableEnded) {
      const err = new AgentError('PIPE_STALLED', `the ${this.kind} input is closed (GStreamer gone?)`);
      this.#onFail(err);
      throw err;
    }
    if (chunk.position !== this.#bytesOut) {
      throw new AgentError(
        'INVALID_STATE',
        `muxer tried to seek to ${chunk.position} in a pipe at ${this.#bytesOut}`,
      );
    }
    // Copy: the bytes stay queued in the stream after this returns, and mediabunny may reuse its buffer.
    const data = Buffer.from(chunk.data);
    this.#bytesOut += data.byteLength;
    if (this.#pipe.write(data, (err) => err && this.#onFail(err))) return;
    this.#waitingDrain = true;
    try {
      await new Promise<void>((resolve, reject) => {
        const done = (err?: Error) => {
          this.#pipe.off('drain', onDrain);
          this.#pipe.off('error', done);
          this.#pipe.off('close', onClose);
          if (err) reject(err);
          else resolve();
        };
        const onDrain = () => done();
        const onClose = () => done(new AgentError('PIPE_STALLED', 'output closed while waiting for drain'));
        this.#pipe.on('drain', onDrain);
        this.#pipe.on('error', done);
        this.#pipe.on('close', onClose);
      });
    } finally {
      this.#waitingDrain = false;
    }
  }
}
