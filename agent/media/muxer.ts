import type { Writable } from 'node:stream';
import {
  EncodedAudioPacketSource,
  EncodedPacket,
  EncodedVideoPacketSource,
  MkvOutputFormat,
  Output,
  StreamTarget,
  type StreamTargetChunk,
} from 'mediabunny';
import type { TrackKind } from '../bridge/wire.js';
import { AgentError, InvalidStateError } from '../errors.js';
import type { Logger } from '../log.js';
import type { DropCause } from '../ops/metrics.js';
import { TypedEmitter } from '../typedEmitter.js';
import { avcCodecString } from './h264.js';
import {
  OPUS_SILENCE_20MS,
  OPUS_SILENCE_DURATION_US,
  opusHead,
  opusPacketChannels,
  opusPacketDurationUs,
} from './opus.js';
import { LatencyReservoir } from './latencyReservoir.js';
import type { TimedFrame } from './timeline.js';

export interface PipeStallInfo {
  /** Bytes written to the output that it has not taken yet. */
  pendingBytes: number;
  /** How long nothing moved. */
  stalledForMs: number;
  queuedFrames: number;
}

export interface MuxerStats {
  framesWritten: Record<TrackKind, number>;
  /** 20 ms silent Opus packets put where audio was missing for more than a second. */
  silencePacketsInserted: number;
  bytesOut: number;
  queueDepth: number;
  queueDepthMax: number;
  /** Payload bytes waiting in the queue now. */
  queueBytes: number;
  /** Frames dropped because the queue was full (until the next video key frame) or after a write error. */
  dropped: number;
  overflows: number;
  stalls: number;
  /** Frames mediabunny refused (e.g. a timestamp going back across a GOP): logged and skipped. */
  rejected: number;
  /** Key frames that were the last video frame of the run, dropped (`dropTrailingKeyFrame`). */
  droppedTrailingKeyFrames: number;
  /** Time of one mediabunny `add()` (queueing + Matroska framing + our write), ms. */
  addLatencyMs: LatencySummary;
  /**
   * Worker receive → written to gst's stdin, ms. mediabunny writes a packet only once every track has one at
   * least as late (it interleaves by timestamp), so a frame waits for the other track to catch up; this is
   * measured when the write that carries it happens. Steady state: frames held while the run started (gst
   * coming up) are left out; the start shows in the time to the first recorded key frame.
   */
  stdinLatencyMs: LatencySummary;
}

export type LatencySummary = ReturnType<LatencyReservoir['summary']>;

export interface MuxerEvents extends Record<string, unknown[]> {
  /** Output bytes are pending and nothing moved for stallTimeoutMs; once per episode. */
  stalled: [PipeStallInfo];
  /** The queue was full: frames are being dropped until the next video key frame. */
  overflow: [{ dropped: number }];
  /** Writing to the output failed (EPIPE when gst died): nothing more will be written. */
  failed: [Error];
  /** Frames not written, by cause (for the drop metrics). */
  dropped: [{ cause: DropCause; kind: TrackKind; count: number }];
}

export interface MatroskaStreamMuxerOptions {
  hasAudio: boolean;
  /** gst's stdin. */
  output: Writable;
  /** Frames held while the output is slow before dropping starts. Default 600 (≈ 8 s of 30 fps + audio). */
  maxQueuedFrames?: number;
  /** The same bound in payload bytes (a 1080p call has far bigger frames). Default 32 MiB. */
  maxQueuedBytes?: number;
  /** Default 2000. */
  stallTimeoutMs?: number;
  /**
   * kvssink: a run must not end on a key frame. kvssink ends its stream at the first pad's EOS, so audio after
   * the last video frame never reaches KVS, and a last fragment made of one key frame would carry no audio:
   * KVS refuses it (4011) and the session then waits for an ack that never comes. With this set each key frame
   * waits in the queue for the next video frame, and one still waiting at finish() is dropped and counted.
   */
  dropTrailingKeyFrame?: boolean;
  logger: Logger;
}

/** A gap in audio longer than this is filled with silence (mediabunny interleaves: it holds video until audio comes). */
const AUDIO_GAP_FILL_US = 1_000_000;
const WATCHDOG_TICK_MS = 250;
/**
 * A healthy gst reads its stdin continuously (kvssink buffers in memory, it never blocks its input), and the
 * clock only runs once the 64 KiB pipe is full: 2 s of that is a hang, and keeps "GStreamer stalls" ≤ 5 s.
 */
const DEFAULT_STALL_TIMEOUT_MS = 2_000;
/** The last fragment of a run has at least this much audio (padded with silence at the end). */
const END_PAD_US = 100_000;
/** A held key frame is let go when the queue has this much audio after it and still no video (video stopped). */
const KEY_HOLD_MAX_US = 500_000;

function opusConfig(channels: 1 | 2): {
  codec: 'opus';
  numberOfChannels: number;
  sampleRate: number;
  description: Uint8Array;
} {
  return { codec: 'opus', numberOfChannels: channels, sampleRate: 48_000, description: opusHead(channels) };
}

/** An audio packet that arrived after silence was already written for its time. */
class LateAudioError extends AgentError {
  constructor() {
    super('MEDIA_REJECTED', 'audio packet late behind inserted silence');
  }
}

/**
 * Streams TimedFrames as one live Matroska file into a Node Writable (gst's stdin) with mediabunny.
 *
 * H.264 goes in as Annex B without a decoder description, so the Matroska track has no CodecPrivate and every
 * key frame keeps its SPS/PPS in-band: matroskademux then announces byte-stream H.264 and resolution changes
 * pass through untouched. `write()` never blocks: frames wait in a bounded queue drained by one pump that
 * honours the output's backpressure; a watchdog reports a pipe that stopped moving.
 */
export class MatroskaStreamMuxer extends TypedEmitter<MuxerEvents> {
  readonly #opts: Required<Omit<MatroskaStreamMuxerOptions, 'logger' | 'output'>>;
  readonly #outputStream: Writable;
  readonly #log: Logger;
  readonly #output: Output;
  readonly #video = new EncodedVideoPacketSource('avc');
  readonly #audio: EncodedAudioPacketSource | undefined;
  #state: 'new' | 'running' | 'finishing' | 'finished' | 'failed' = 'new';
  #queue: TimedFrame[] = [];
  #queuedBytes = 0;
  #pumping: Promise<void> | undefined;
  /** Cleared synchronously when the pump returns, so a write() right after a hold starts it again. */
  #pumpActive = false;
  #finishing: Promise<void> | undefined;
  #dropping = false;
  #error: Error | undefined;
  #videoConfigured = false;
  #audioConfigured = false;
  /** End of the last audio packet written, µs on the recording clock. */
  #audioEndUs: number | null = null;
  #lastVideoUs = -1;
  #lastKeyUs = -1;
  #realAudioSeen = false;
  /** finish(): nothing is held back any more. */
  #holdReleased = false;
  #watchdog: NodeJS.Timeout | undefined;
  #lastFlushed = 0;
  #lastProgressAt = Date.now();
  #stalled = false;
  #waitingDrain = false;
  readonly #addLatency = new LatencyReservoir();
  readonly #stdinLatency = new LatencyReservoir();
  /** Frames added but not yet written (see stdinLatencyMs), per track, in timestamp order. */
  readonly #unwritten: Record<TrackKind, Array<{ timestampUs: number; receiveTimeMs: number }>> = {
    video: [],
    audio: [],
  };
  /** Frames received before this waited for the start (gst coming up): not steady-state latency. */
  #runningSinceMs = Infinity;
  /** Timestamp of the last packet given to mediabunny per track (silence included). */
  readonly #lastAddedUs: Record<TrackKind, number> = { video: -Infinity, audio: -Infinity };
  readonly #stats = {
    framesWritten: { video: 0, audio: 0 } as Record<TrackKind, number>,
    silencePacketsInserted: 0,
    bytesOut: 0,
    queueDepthMax: 0,
    dropped: 0,
    overflows: 0,
    stalls: 0,
    rejected: 0,
    droppedTrailingKeyFrames: 0,
  };

  constructor(options: MatroskaStreamMuxerOptions) {
    super();
    this.#opts = {
      hasAudio: options.hasAudio,
      maxQueuedFrames: options.maxQueuedFrames ?? 600,
      maxQueuedBytes: options.maxQueuedBytes ?? 32 * 1024 * 1024,
      stallTimeoutMs: options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
      dropTrailingKeyFrame: options.dropTrailingKeyFrame ?? false,
    };
    this.#outputStream = options.output;
    this.#log = options.logger;
    this.#output = new Output({
      format: new MkvOutputFormat({ appendOnly: true }),
      target: new StreamTarget(
        new WritableStream<StreamTargetChunk>({ write: (chunk) => this.#writeChunk(chunk) }),
      ),
    });
    this.#output.addVideoTrack(this.#video);
    if (options.hasAudio) {
      this.#audio = new EncodedAudioPacketSource('opus');
      this.#output.addAudioTrack(this.#audio);
    }
    this.#outputStream.on('error', (err: Error) => this.#fail(err));
    // A destroyed pipe (gst gone) may close without an 'error' event: writes would then wait for 'drain' forever.
    this.#outputStream.on('close', () => {
      if (this.#state !== 'finished')
        this.#fail(new AgentError('PIPE_STALLED', 'the output closed (GStreamer gone?)'));
    });
  }

  async start(): Promise<void> {
    if (this.#state !== 'new') throw new InvalidStateError(`muxer cannot start when ${this.#state}`);
    await this.#output.start();
    this.#state = 'running';
    this.#runningSinceMs = Date.now();
    this.#watchdog = setInterval(() => this.#checkProgress(), WATCHDOG_TICK_MS);
    this.#watchdog.unref();
  }

  /** Queues a frame; never blocks. Frames are dropped (and counted) when the queue is full or the output failed. */
  write(frame: TimedFrame): void {
    if (this.#state !== 'running') {
      if (this.#state === 'new') throw new InvalidStateError('muxer written before start()');
      this.#stats.dropped++;
      this.#dropped(this.#state === 'failed' ? 'no_run' : 'after_stop', frame.kind);
      return;
    }
    if (frame.kind === 'audio' && !this.#audio) return;
    const full = () =>
      this.#queue.length >= this.#opts.maxQueuedFrames ||
      this.#queuedBytes + frame.data.byteLength > this.#opts.maxQueuedBytes;
    if (this.#dropping || full()) {
      // A partial GOP would not decode: once we lose a frame we resume only at a key frame.
      const resumes = frame.kind === 'video' && frame.key && !full();
      if (!resumes) {
        this.#stats.dropped++;
        this.#dropped('queue_overflow', frame.kind);
        if (!this.#dropping) {
          this.#dropping = true;
          this.#stats.overflows++;
          this.#log.warn(
            { queued: this.#queue.length },
            'muxer queue full: dropping until the next key frame',
          );
          this.safeEmit('overflow', { dropped: this.#stats.dropped });
        }
        return;
      }
      this.#dropping = false;
    }
    this.#queue.push(frame);
    this.#queuedBytes += frame.data.byteLength;
    this.#stats.queueDepthMax = Math.max(this.#stats.queueDepthMax, this.#queue.length);
    if (!this.#pumpActive) {
      this.#pumpActive = true;
      this.#pumping = this.#pump();
    }
  }

  async #pump(): Promise<void> {
    let frame: TimedFrame | undefined;
    while (!this.#holding() && (frame = this.#queue.shift()) && this.#state !== 'failed') {
      this.#queuedBytes -= frame.data.byteLength;
      const started = performance.now();
      try {
        if (frame.kind === 'video') await this.#addVideo(frame);
        else await this.#addAudio(frame);
        this.#stats.framesWritten[frame.kind]++;
        this.#noteWritten(frame);
      } catch (err) {
        if (this.#error) break;
        this.#stats.rejected++;
        this.#dropped(err instanceof LateAudioError ? 'late_audio' : 'muxer_rejected', frame.kind);
        this.#log.warn(
          { err: err, kind: frame.kind, timestampUs: frame.timestampUs },
          'frame refused by the muxer',
        );
      }
      this.#sampleLatency(performance.now() - started);
    }
    // Synchronous with the loop's end (no await after it): a write() from here on starts a new pump.
    this.#pumpActive = false;
  }

  /** A key frame heads the queue with no video after it yet (see `dropTrailingKeyFrame`); write() resumes. */
  #holding(): boolean {
    const head = this.#queue[0];
    if (!this.#opts.dropTrailingKeyFrame || this.#holdReleased) return false;
    if (!head || head.kind !== 'video' || !head.key) return false;
    for (let i = 1; i < this.#queue.length; i++) {
      const f = this.#queue[i]!;
      if (f.kind === 'video' || f.timestampUs - head.timestampUs >= KEY_HOLD_MAX_US) return false;
    }
    return true;
  }

  async #addVideo(frame: TimedFrame): Promise<void> {
    if (frame.timestampUs <= this.#lastVideoUs)
      throw new AgentError('MEDIA_REJECTED', 'video timestamp did not increase');
    if (this.#audio) {
      // mediabunny writes a cluster only when every track has a packet queued: with audio gone (or never come),
      // video would pile up in memory and never reach gst. Silence keeps it flowing and the audio track continuous.
      // Silence starts at the first video frame, not at 0: timestamps may be epoch-based (kvssink).
      this.#audioEndUs ??= frame.timestampUs;
      await this.#fillSilence(frame.timestampUs - AUDIO_GAP_FILL_US);
    }
    const packet = new EncodedPacket(frame.data, frame.key ? 'key' : 'delta', frame.timestampUs / 1e6, 0);
    if (!this.#videoConfigured) {
      if (!frame.key) throw new AgentError('MEDIA_REJECTED', 'the first video frame must be a key frame');
      const codec = avcCodecString(frame.data) ?? 'avc1.42E01F';
      // Only the track header uses these; the in-band SPS is what decoders follow.
      const codedWidth = frame.width > 0 ? frame.width : 640;
      const codedHeight = frame.height > 0 ? frame.height : 360;
      await this.#video.add(packet, { decoderConfig: { codec, codedWidth, codedHeight } });
      this.#videoConfigured = true;
    } else {
      await this.#video.add(packet);
    }
    this.#lastVideoUs = frame.timestampUs;
    this.#lastAddedUs.video = frame.timestampUs;
    if (frame.key) this.#lastKeyUs = frame.timestampUs;
  }

  /** Silent Opus packets from the end of the audio written so far up to `untilUs`. */
  async #fillSilence(untilUs: number): Promise<void> {
    const audio = this.#audio;
    if (!audio || this.#audioEndUs === null) return;
    let endUs = this.#audioEndUs;
    while (endUs < untilUs) {
      const packet = new EncodedPacket(OPUS_SILENCE_20MS, 'key', endUs / 1e6, OPUS_SILENCE_DURATION_US / 1e6);
      if (this.#audioConfigured) await audio.add(packet);
      else {
        await audio.add(packet, { decoderConfig: opusConfig(1) });
        this.#audioConfigured = true;
      }
      this.#lastAddedUs.audio = endUs;
      endUs += OPUS_SILENCE_DURATION_US;
      this.#audioEndUs = endUs;
      this.#stats.silencePacketsInserted++;
    }
  }

  async #addAudio(frame: TimedFrame): Promise<void> {
    const audio = this.#audio;
    if (!audio) return;
    const durationUs = opusPacketDurationUs(frame.data);
    if (durationUs === null) throw new AgentError('MEDIA_REJECTED', 'not an Opus packet');
    if (this.#audioEndUs !== null && frame.timestampUs < this.#audioEndUs - durationUs) {
      throw new LateAudioError();
    }
    // The run starts at a video key frame; audio usually begins a few packets later. Silence up to the first
    // real packet makes both tracks start together (players align them by their first timestamps).
    if (!this.#realAudioSeen && this.#audioEndUs !== null) {
      await this.#fillSilence(frame.timestampUs - OPUS_SILENCE_DURATION_US);
    }
    this.#realAudioSeen = true;
    const packet = new EncodedPacket(frame.data, 'key', frame.timestampUs / 1e6, durationUs / 1e6);
    if (!this.#audioConfigured) {
      const channels = opusPacketChannels(frame.data);
      await audio.add(packet, { decoderConfig: opusConfig(channels) });
      this.#audioConfigured = true;
    } else {
      await audio.add(packet);
    }
    this.#audioEndUs = Math.max(this.#audioEndUs ?? 0, frame.timestampUs + durationUs);
    this.#lastAddedUs.audio = frame.timestampUs;
  }

  /** mediabunny's sink: append to the output, waiting for 'drain' when it asks us to. */
  async #writeChunk(chunk: StreamTargetChunk): Promise<void> {
    if (this.#error) throw this.#error;
    if (this.#outputStream.destroyed || this.#outputStream.writableEnded) {
      const err = new AgentError('PIPE_STALLED', 'the output is closed (GStreamer gone?)');
      this.#fail(err);
      throw err;
    }
    if (chunk.position !== this.#stats.bytesOut) {
      throw new AgentError(
        'INVALID_STATE',
        `muxer tried to seek to ${chunk.position} in a pipe at ${this.#stats.bytesOut}`,
      );
    }
    // Copy: the bytes stay queued in the stream after this returns, and mediabunny may reuse its buffer.
    const data = Buffer.from(chunk.data);
    this.#stats.bytesOut += data.byteLength;
    if (!this.#outputStream.write(data, (err) => err && this.#fail(err))) {
      this.#waitingDrain = true;
      try {
        await new Promise<void>((resolve, reject) => {
          const done = (err?: Error) => {
            this.#outputStream.off('drain', onDrain);
            this.#outputStream.off('error', done);
            this.#outputStream.off('close', onClose);
            if (err) reject(err);
            else resolve();
          };
          const onDrain = () => done();
          const onClose = () => done(new AgentError('PIPE_STALLED', 'output closed while waiting for drain'));
          this.#outputStream.on('drain', onDrain);
          this.#outputStream.on('error', done);
          this.#outputStream.on('close', onClose);
        });
      } finally {
        this.#waitingDrain = false;
      }
    }
  }

  #checkProgress(): void {
    const pending = this.#outputStream.writableLength;
    const flushed = this.#stats.bytesOut - pending;
    const now = Date.now();
    if (flushed !== this.#lastFlushed || (pending === 0 && !this.#waitingDrain)) {
      this.#lastFlushed = flushed;
      this.#lastProgressAt = now;
      this.#stalled = false;
      return;
    }
    const stalledForMs = now - this.#lastProgressAt;
    if (!this.#stalled && stalledForMs >= this.#opts.stallTimeoutMs) {
      this.#stalled = true;
      this.#stats.stalls++;
      const info = { pendingBytes: pending, stalledForMs, queuedFrames: this.#queue.length };
      this.#log.warn(info, 'output pipe stalled');
      this.safeEmit('stalled', info);
    }
  }

  #fail(err: Error): void {
    if (this.#error) return;
    this.#error = err;
    if (this.#state === 'finished') return;
    this.#state = 'failed';
    this.#stats.dropped += this.#queue.length;
    for (const kind of ['video', 'audio'] as const) {
      const count = this.#queue.filter((f) => f.kind === kind).length;
      if (count > 0) this.#dropped('no_run', kind, count);
    }
    this.#queue = [];
    this.#queuedBytes = 0;
    clearInterval(this.#watchdog);
    this.#log.error({ err: err.message }, 'muxer output failed');
    this.safeEmit('failed', err);
  }

  /** Flushes the queue, finalizes the Matroska stream and ends the output. Rejects if the output failed. Idempotent. */
  finish(): Promise<void> {
    if (this.#state === 'new') return Promise.reject(new InvalidStateError('muxer finished before start()'));
    this.#finishing ??= this.#doFinish();
    return this.#finishing;
  }

  async #doFinish(): Promise<void> {
    if (this.#state === 'running') this.#state = 'finishing';
    while (this.#pumpActive) await this.#pumping;
    clearInterval(this.#watchdog);
    this.#throwIfFailed();
    const head = this.#queue[0];
    if (head && this.#holding()) {
      // The run would end on this key frame (see dropTrailingKeyFrame); the next run starts at a key frame anyway.
      this.#queue.shift();
      this.#queuedBytes -= head.data.byteLength;
      this.#stats.droppedTrailingKeyFrames++;
      this.#dropped('trailing_key_frame', 'video');
      this.#log.warn(
        { timestampUs: head.timestampUs },
        'run ends on a key frame: dropped it (KVS refuses a last fragment without audio)',
      );
    }
    this.#holdReleased = true;
    if (this.#queue.length > 0) {
      this.#pumpActive = true;
      await (this.#pumping = this.#pump());
    }
    this.#throwIfFailed();
    // No more audio can come: cover the last video frames, so the last KVS fragment has both tracks (4011) —
    // kvssink drops the first AAC frame of a session (DISCONT), so a session cut short right after its first
    // key frame needs a few AAC frames more.
    if (this.#videoConfigured && this.#lastVideoUs >= 0) {
      // Past the last video frame by one packet; the last fragment (from the last key frame) at least
      // END_PAD_US long in audio. More would overlap the next session's first fragment.
      const until = Math.max(this.#lastVideoUs + OPUS_SILENCE_DURATION_US, this.#lastKeyUs + END_PAD_US);
      await this.#fillSilence(until).catch((err: unknown) =>
        this.#log.warn({ err }, 'could not pad audio at the end'),
      );
    }
    // Nothing may be added after this: mediabunny throws "Output has been finalized" on late packets.
    if (this.#videoConfigured) await this.#output.finalize();
    else await this.#output.cancel();
    this.#throwIfFailed();
    this.#state = 'finished';
    await new Promise<void>((resolve, reject) => {
      if (this.#outputStream.writableFinished) return resolve();
      this.#outputStream.once('error', reject);
      this.#outputStream.end(() => resolve());
    });
  }

  #dropped(cause: DropCause, kind: TrackKind, count = 1): void {
    this.safeEmit('dropped', { cause, kind, count });
  }

  #throwIfFailed(): void {
    if (this.#error) throw this.#error;
  }

  #sampleLatency(ms: number): void {
    this.#addLatency.add(ms);
  }

  /**
   * After an add: every packet of a track with a timestamp no later than what every other track has reached
   * was written (mediabunny's interleaving rule); its receive → stdin time is now.
   */
  #noteWritten(frame: TimedFrame): void {
    if (frame.receiveTimeMs >= this.#runningSinceMs)
      this.#unwritten[frame.kind].push({
        timestampUs: frame.timestampUs,
        receiveTimeMs: frame.receiveTimeMs,
      });
    const now = Date.now();
    const tracks: TrackKind[] = this.#audio ? ['video', 'audio'] : ['video'];
    for (const kind of tracks) {
      const reached = Math.min(...tracks.filter((k) => k !== kind).map((k) => this.#lastAddedUs[k]));
      const queue = this.#unwritten[kind];
      while (queue.length && queue[0]!.timestampUs <= reached) {
        this.#stdinLatency.add(now - queue.shift()!.receiveTimeMs);
      }
      // Bounded: a track that stops (audio gone) must not grow the other's list.
      if (queue.length > 1000) queue.splice(0, queue.length - 1000);
    }
  }

  /** Frames and payload bytes waiting now (cheap: for periodic gauges, unlike stats()). */
  queueDepth(): { frames: number; bytes: number } {
    return { frames: this.#queue.length, bytes: this.#queuedBytes };
  }

  stats(): MuxerStats {
    const s = this.#stats;
    return {
      framesWritten: { ...s.framesWritten },
      silencePacketsInserted: s.silencePacketsInserted,
      bytesOut: s.bytesOut,
      queueDepth: this.#queue.length,
      queueDepthMax: s.queueDepthMax,
      queueBytes: this.#queuedBytes,
      dropped: s.dropped,
      overflows: s.overflows,
      stalls: s.stalls,
      rejected: s.rejected,
      droppedTrailingKeyFrames: s.droppedTrailingKeyFrames,
      addLatencyMs: this.#addLatency.summary(),
      stdinLatencyMs: this.#stdinLatency.summary(),
    };
  }
}
