import type { Writable } from 'node:stream';
import { EncodedAudioPacketSource, EncodedPacket, EncodedVideoPacketSource } from 'mediabunny';
import type { TrackKind } from '../bridge/wire.js';
import { AgentError, InvalidStateError } from '../errors.js';
import type { Logger } from '../log.js';
import type { DropCause } from '../ops/metrics.js';
import { TypedEmitter } from '../typedEmitter.js';
import { avcCodecString } from './h264.js';
import {
  OPUS_SILENCE_DURATION_US,
  opusHead,
  opusPacketChannels,
  opusPacketDurationUs,
  opusSilence,
} from './opus.js';
import { LatencyReservoir } from './latencyReservoir.js';
import type { TimedFrame } from './timeline.js';
import { TrackStream } from './trackStream.js';

export interface PipeStallInfo {
  /** The input that stopped moving. */
  track: TrackKind;
  /** Bytes written to it that it has not taken yet. */
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
   * Worker receive → written to gst's input for its track, ms. Steady state: frames held while the run started
   * (gst coming up) are left out; the start shows in the time to the first recorded key frame.
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
  /** gst's inputs, one Matroska stream per track (see TrackStream): video, and audio unless absent. */
  outputs: { video: Writable; audio?: Writable | undefined };
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
  /**
   * How much audio the gst chain keeps back when its input ends (see AUDIO_CHAIN_TAIL_MS): the run's audio is
   * padded with this much silence more, so that all of it comes out. Default 0.
   */
  audioTailUs?: number;
  logger: Logger;
}

/**
 * A gap in audio longer than this is filled with silence: gst's muxers interleave by timestamp, so without
 * audio they would hold video (and stop reading it) until audio comes.
 */
const AUDIO_GAP_FILL_US = 1_000_000;
const WATCHDOG_TICK_MS = 250;
/**
 * A healthy gst reads its inputs continuously (kvssink buffers in memory, it never blocks its input; while its
 * muxer waits for one track, the other's queue takes it), and the clock only runs once a 64 KiB pipe is full:
 * 2 s of that is a hang, and keeps "GStreamer stalls" ≤ 5 s.
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
 * Streams TimedFrames into gst as live Matroska with mediabunny, one stream per track (see TrackStream).
 *
 * H.264 goes in as Annex B without a decoder description, so the Matroska track has no CodecPrivate and every
 * key frame keeps its SPS/PPS in-band: matroskademux then announces byte-stream H.264 and resolution changes
 * pass through untouched. Both streams begin at the run's first key frame (audio with silence up to its first
 * packet): matroskademux starts its segment at the first timestamp, and gst's muxers align the tracks by
 * running time. `write()` never blocks: frames wait in a bounded queue drained by one pump that honours the
 * pipes' backpressure; a watchdog reports a pipe that stopped moving.
 */
export class MatroskaStreamMuxer extends TypedEmitter<MuxerEvents> {
  readonly #opts: Required<Omit<MatroskaStreamMuxerOptions, 'logger' | 'outputs'>>;
  readonly #log: Logger;
  readonly #streams: TrackStream[] = [];
  readonly #video: EncodedVideoPacketSource;
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
  /** End of the last audio packet written, µs on the recording clock. */
  #audioEndUs: number | null = null;
  #lastVideoUs = -1;
  #lastKeyUs = -1;
  #realAudioSeen = false;
  /** finish(): nothing is held back any more. */
  #holdReleased = false;
  /** Whether the audio stream has its first packet (at the first video frame's time). */
  #audioStarted = false;
  #watchdog: NodeJS.Timeout | undefined;
  #stalled = false;
  readonly #addLatency = new LatencyReservoir();
  readonly #stdinLatency = new LatencyReservoir();
  /** Frames received before this waited for the start (gst coming up): not steady-state latency. */
  #runningSinceMs = Infinity;
  readonly #stats = {
    framesWritten: { video: 0, audio: 0 } as Record<TrackKind, number>,
    silencePacketsInserted: 0,
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
      maxQueuedFrames: options.maxQueuedFrames ?? 600,
      maxQueuedBytes: options.maxQueuedBytes ?? 32 * 1024 * 1024,
      stallTimeoutMs: options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
      dropTrailingKeyFrame: options.dropTrailingKeyFrame ?? false,
      audioTailUs: options.audioTailUs ?? 0,
    };
    this.#log = options.logger;
    const stream = (source: EncodedVideoPacketSource | EncodedAudioPacketSource, pipe: Writable) => {
      const s = new TrackStream({
        source,
        pipe,
        onFail: (err) => this.#fail(err),
        finished: () => this.#state === 'finished',
      });
      this.#streams.push(s);
    };
    this.#video = new EncodedVideoPacketSource('avc');
    stream(this.#video, options.outputs.video);
    if (options.outputs.audio) {
      this.#audio = new EncodedAudioPacketSource('opus');
      stream(this.#audio, options.outputs.audio);
    }
  }

  async start(): Promise<void> {
    if (this.#state !== 'new') throw new InvalidStateError(`muxer cannot start when ${this.#state}`);
    await Promise.all(this.#streams.map((s) => s.start()));
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
        const written = frame.kind === 'video' ? await this.#addVideo(frame) : await this.#addAudio(frame);
        if (written) {
          this.#stats.framesWritten[frame.kind]++;
          this.#noteWritten(frame);
        }
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

  async #addVideo(frame: TimedFrame): Promise<true> {
    if (frame.timestampUs <= this.#lastVideoUs)
      throw new AgentError('MEDIA_REJECTED', 'video timestamp did not increase');
    if (this.#audio) {
      // gst's muxers interleave by timestamp: with audio gone (or never come) they would hold video and stop
      // reading it. Silence keeps it flowing and the audio track continuous. The audio stream starts at the
      // first video frame, not at 0: timestamps may be epoch-based (kvssink).
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
    if (frame.key) this.#lastKeyUs = frame.timestampUs;
    return true;
  }

  /** One Opus packet into the audio stream; the first one declares the track (`channels`: of the real audio). */
  async #addAudioPacket(
    data: Uint8Array,
    timestampUs: number,
    durationUs: number,
    channels: 1 | 2,
  ): Promise<void> {
    const audio = this.#audio;
    if (!audio) return;
    const packet = new EncodedPacket(data, 'key', timestampUs / 1e6, durationUs / 1e6);
    // A stereo track may start with mono silence: Opus decoders up-mix mono packets.
    if (this.#audioStarted) await audio.add(packet);
    else await audio.add(packet, { decoderConfig: opusConfig(channels) });
    this.#audioStarted = true;
  }

  /** Silent 20 ms packets from the end of the audio written so far while before `untilUs` (gap filling). */
  async #fillSilence(untilUs: number): Promise<void> {
    if (this.#audioEndUs === null || this.#audioEndUs >= untilUs) return;
    const packets = Math.ceil((untilUs - this.#audioEndUs) / OPUS_SILENCE_DURATION_US);
    await this.#fillSilenceTo(this.#audioEndUs + packets * OPUS_SILENCE_DURATION_US);
  }

  /** Silence from the end of the audio written so far up to `untilUs`, to within 2.5 ms. */
  async #fillSilenceTo(untilUs: number, channels: 1 | 2 = 1): Promise<void> {
    if (!this.#audio || this.#audioEndUs === null) return;
    for (const s of opusSilence(untilUs - this.#audioEndUs)) {
      await this.#addAudioPacket(s.data, this.#audioEndUs, s.durationUs, channels);
      this.#audioEndUs += s.durationUs;
      this.#stats.silencePacketsInserted++;
    }
  }

  /** False when the packet had no place in the run (dropped and counted). */
  async #addAudio(frame: TimedFrame): Promise<boolean> {
    if (!this.#audio) return false;
    const durationUs = opusPacketDurationUs(frame.data);
    if (durationUs === null) throw new AgentError('MEDIA_REJECTED', 'not an Opus packet');
    const startUs = this.#audioEndUs;
    // Both streams start at the run's first key frame (see the class): audio from before it has no place here.
    if (startUs === null || (!this.#audioStarted && frame.timestampUs < startUs)) {
      this.#dropped('before_keyframe', 'audio');
      return false;
    }
    if (frame.timestampUs < startUs - durationUs) throw new LateAudioError();
    let timestampUs = frame.timestampUs;
    const channels = opusPacketChannels(frame.data);
    if (!this.#realAudioSeen) {
      // The run starts at a video key frame; audio usually begins a few packets later. Silence up to the first
      // real packet, to within 2.5 ms, makes both tracks start together and the real audio keep its place.
      await this.#fillSilenceTo(frame.timestampUs, channels);
      // Under 2.5 ms after the start: the stream's first packet must be at the start itself.
      if (!this.#audioStarted) timestampUs = startUs;
      this.#realAudioSeen = true;
    }
    await this.#addAudioPacket(frame.data, timestampUs, durationUs, channels);
    this.#audioEndUs = Math.max(this.#audioEndUs ?? 0, frame.timestampUs + durationUs);
    return true;
  }

  #checkProgress(): void {
    const now = Date.now();
    let worst: { track: TrackKind; pendingBytes: number; stalledForMs: number } | undefined;
    for (const stream of this.#streams) {
      const p = stream.progress(now);
      if (p.pendingBytes > 0 && (!worst || p.stalledForMs > worst.stalledForMs))
        worst = { track: stream.kind, ...p };
    }
    if (!worst || worst.stalledForMs < this.#opts.stallTimeoutMs) {
      this.#stalled = false;
      return;
    }
    if (!this.#stalled) {
      this.#stalled = true;
      this.#stats.stalls++;
      const info = { ...worst, queuedFrames: this.#queue.length };
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
    if (this.#videoConfigured && this.#lastVideoUs >= 0 && this.#audioEndUs !== null) {
      // Past the last video frame by one packet and the last fragment (from the last key frame) at least
      // END_PAD_US long in audio, all of the real audio included; then what the audio chain keeps at its end
      // (audioTailUs), so that this much comes out of it. More would overlap the next session's first fragment.
      const until =
        Math.max(
          this.#lastVideoUs + OPUS_SILENCE_DURATION_US,
          this.#lastKeyUs + END_PAD_US,
          this.#audioEndUs,
        ) + this.#opts.audioTailUs;
      await this.#fillSilenceTo(until).catch((err: unknown) =>
        this.#log.warn({ err }, 'could not pad audio at the end'),
      );
    }
    // Nothing may be added after this: mediabunny throws "Output has been finalized" on late packets.
    await Promise.all(
      this.#streams.map((s) => s.finalize(s.kind === 'video' ? this.#videoConfigured : this.#audioStarted)),
    );
    this.#throwIfFailed();
    this.#state = 'finished';
    await Promise.all(this.#streams.map((s) => s.end()));
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

  /** After an add: the frame is in its track's pipe now. */
  #noteWritten(frame: TimedFrame): void {
    if (frame.receiveTimeMs >= this.#runningSinceMs) this.#stdinLatency.add(Date.now() - frame.receiveTimeMs);
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
      bytesOut: this.#streams.reduce((sum, stream) => sum + stream.bytesOut, 0),
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
