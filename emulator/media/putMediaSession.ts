import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { formatAck, type Ack } from './ackStream.js';
import type { FragmentStore } from './fragmentStore.js';
import { MkvStreamParser, type FrameInfo, type StreamHeader } from './mkvStreamParser.js';
import { ErrorId, PutMediaError } from './putMediaError.js';

/** PutMedia limits; defaults are the KVS service quotas. */
export interface PutMediaLimits {
  /** ErrorId 4001 above this (KVS: 50 MB). */
  maxFragmentBytes: number;
  /** ErrorId 4002 above this (KVS: 10 s). */
  maxFragmentDurationMs: number;
  /** ErrorId 4012 above this (KVS: 3). */
  maxTracks: number;
  /** An IDLE ack after this long without data (KVS: ~3 s). */
  idleAckIntervalMs: number;
  /** The request is closed after this long without data (KVS: 30 s). */
  idleTimeoutMs: number;
  /** ErrorId 4003 after this long (KVS: 45 min). */
  maxConnectionMs: number;
  /** After an ERROR or a supersede, how long a client that keeps sending is drained before the socket is cut. */
  drainGraceMs: number;
}

export const DEFAULT_PUT_MEDIA_LIMITS: PutMediaLimits = {
  maxFragmentBytes: 50 * 1024 * 1024,
  maxFragmentDurationMs: 10_000,
  maxTracks: 3,
  idleAckIntervalMs: 3_000,
  idleTimeoutMs: 30_000,
  maxConnectionMs: 45 * 60_000,
  drainGraceMs: 5_000,
};

export interface PutMediaStream {
  name: string;
  /** 0 means nothing is stored and no PERSISTED ack is sent (as KVS). */
  retentionHours: number;
}

export interface PutMediaSessionOptions {
  req: IncomingMessage;
  res: ServerResponse;
  stream: PutMediaStream;
  timecodeType: 'ABSOLUTE' | 'RELATIVE';
  /** `x-amzn-producer-start-timestamp` in epoch ms (RELATIVE timecodes are added to it). */
  producerStartMs: number | undefined;
  store: FragmentStore;
  limits: PutMediaLimits;
  logger: Logger;
  count: (name: string) => void;
  /** Called once, when the first fragment starts arriving (the router supersedes older connections then). */
  onFirstFragment?: () => void;
}

interface OpenFragment {
  number: string;
  serverTimestampMs: number;
  timecode: number | undefined;
  minTc: number;
  maxTc: number;
  firstFrame: FrameInfo | undefined;
  frames: number;
  videoFrames: number;
  perTrack: Map<number, number>;
}

export type SessionEnd = 'completed' | 'error' | 'superseded' | 'idle' | 'aborted';

/**
 * One PutMedia request: parses the Matroska body as it arrives, enforces the fragment rules, stores each
 * complete Cluster as a fragment and writes the ACK stream.
 *
 * Every ERROR ends the request (the response ends after the ERROR ack; the rest of the body is drained and
 * dropped): the producer SDK treats an ERROR ack as a stream failure and reconnects, replaying fragments
 * not yet PERSISTED, so continuing on the same request would only produce more errors.
 */
export class PutMediaSession {
  #sawFragment = false;
  readonly #o: PutMediaSessionOptions & { count: (name: string) => void };
  readonly #parser: MkvStreamParser;
  #header: StreamHeader | undefined;
  #fragment: OpenFragment | undefined;
  #lastTimecode: number | undefined;
  #persisting: Promise<void> = Promise.resolve();
  #lastDataAt = Date.now();
  #lastAckAt = Date.now();
  #finished = false;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #done: Promise<SessionEnd>;
  #resolveDone!: (end: SessionEnd) => void;
  readonly fragmentsStored: string[] = [];

  constructor(options: PutMediaSessionOptions) {
    this.#o = options;
    this.#parser = new MkvStreamParser(
      {
        header: (h) => this.#onHeader(h),
        clusterStart: () => this.#onClusterStart(),
        clusterTimecode: (tc) => this.#onClusterTimecode(tc),
        frame: (f) => this.#onFrame(f),
        clusterEnd: (c) => this.#onClusterEnd(c.timecode, c.bytes),
        tags: () => undefined,
      },
      { maxClusterBytes: options.limits.maxFragmentBytes },
    );
    this.#done = new Promise((resolve) => (this.#resolveDone = resolve));
  }

  /** Resolves when the response has ended, with the reason. */
  get done(): Promise<SessionEnd> {
    return this.#done;
  }

  start(): void {
    const { req, res, limits } = this.#o;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.flushHeaders();
    req.on('data', (chunk: Buffer) => this.#onData(chunk));
    req.on('end', () => this.#onEnd());
    req.on('error', () => this.#abort());
    res.on('close', () => {
      if (!res.writableFinished) this.#abort();
    });
    this.#timers.push(
      setInterval(() => this.#onIdleTick(), Math.max(50, Math.min(limits.idleAckIntervalMs, 1000))),
      setTimeout(
        () => this.#fail(new PutMediaError(ErrorId.connectionDurationLimit, 'connection lasted too long')),
        limits.maxConnectionMs,
      ),
    );
  }

  /** A newer PutMedia connection for the same stream takes over: this one ends without more acks. */
  supersede(): void {
    if (this.#finished) return;
    this.#o.count('putMedia.superseded');
    this.#o.logger.info({ stream: this.#o.stream.name }, 'PutMedia connection superseded by a newer one');
    this.#finish('superseded');
  }

  #ack(ack: Ack): void {
    if (this.#finished) return;
    this.#lastAckAt = Date.now();
    this.#o.res.write(formatAck(ack));
  }

  #onData(chunk: Buffer): void {
    if (this.#finished || this.#failing) return;
    this.#lastDataAt = Date.now();
    try {
      this.#parser.push(chunk);
    } catch (err) {
      this.#fail(err);
    }
  }

  #onEnd(): void {
    if (this.#finished || this.#failing) return;
    try {
      this.#parser.end();
    } catch (err) {
      this.#fail(err);
      return;
    }
    // Acks of fragments still being written come before the end of the response.
    void this.#persisting.then(() => this.#finish('completed'));
  }

  #onIdleTick(): void {
    if (this.#failing) return;
    const now = Date.now();
    const { idleAckIntervalMs, idleTimeoutMs } = this.#o.limits;
    if (now - this.#lastDataAt >= idleTimeoutMs) {
      this.#o.count('putMedia.idleTimeout');
      this.#finish('idle');
    } else if (now - this.#lastDataAt >= idleAckIntervalMs && now - this.#lastAckAt >= idleAckIntervalMs) {
      this.#ack({ EventType: 'IDLE' });
    }
  }

  #onHeader(header: StreamHeader): void {
    if (header.tracks.length > this.#o.limits.maxTracks) {
      throw new PutMediaError(
        ErrorId.moreThanAllowedTracks,
        `${header.tracks.length} tracks declared, at most ${this.#o.limits.maxTracks} allowed`,
      );
    }
    this.#header = header;
  }

  #onClusterStart(): void {
    this.#fragment = {
      number: this.#o.store.reserve(this.#o.stream.name),
      serverTimestampMs: Date.now(),
      timecode: undefined,
      minTc: Infinity,
      maxTc: -Infinity,
      firstFrame: undefined,
      frames: 0,
      videoFrames: 0,
      perTrack: new Map(),
    };
  }

  #onClusterTimecode(timecode: number): void {
    const fragment = this.#current();
    fragment.timecode = timecode;
    if (this.#lastTimecode !== undefined && timecode <= this.#lastTimecode) {
      throw new PutMediaError(
        ErrorId.fragmentTimecodeLesserThanPrevious,
        `cluster timecode ${timecode} is not after the previous fragment's ${this.#lastTimecode}`,
      );
    }
    this.#ack({ EventType: 'BUFFERING', FragmentTimecode: timecode, FragmentNumber: fragment.number });
    if (!this.#sawFragment) {
      this.#sawFragment = true;
      this.#o.onFirstFragment?.();
    }
  }

  #onFrame(frame: FrameInfo): void {
    const fragment = this.#current();
    const header = this.#header;
    const track = header?.tracks.find((t) => t.number === frame.track);
    if (!header || !track) {
      throw new PutMediaError(
        ErrorId.trackNumberMismatch,
        `frame of track ${frame.track}, which Tracks does not declare`,
      );
    }
    fragment.firstFrame ??= frame;
    fragment.frames++;
    if (track.type === 1) fragment.videoFrames++;
    fragment.perTrack.set(frame.track, (fragment.perTrack.get(frame.track) ?? 0) + 1);
    fragment.minTc = Math.min(fragment.minTc, frame.relativeTimecode);
    fragment.maxTc = Math.max(fragment.maxTc, frame.relativeTimecode);
    const spanMs = this.#toMs(fragment.maxTc - fragment.minTc);
    if (spanMs > this.#o.limits.maxFragmentDurationMs) {
      throw new PutMediaError(
        ErrorId.fragmentDurationLimit,
        `fragment lasts ${spanMs} ms, more than ${this.#o.limits.maxFragmentDurationMs} ms`,
      );
    }
  }

  #onClusterEnd(timecode: number, bytes: Buffer): void {
    const fragment = this.#current();
    const header = this.#header;
    if (!header) throw new PutMediaError(ErrorId.invalidMkvData, 'cluster before Tracks');
    const missing = header.tracks.filter((t) => !fragment.perTrack.has(t.number)).map((t) => t.number);
    if (missing.length > 0) {
      // Thrown while this fragment is current, so the ERROR ack names its timecode (as KVS does).
      const counts = [...fragment.perTrack].map(([track, n]) => `track ${track}: ${n}`).join(', ');
      throw new PutMediaError(
        ErrorId.framesMissingForTrack,
        `fragment at timecode ${timecode} has no frame of track(s) ${missing.join(', ')} (${counts || 'no frames'}, span ${this.#toMs(fragment.maxTc - fragment.minTc)} ms)`,
      );
    }
    this.#fragment = undefined;
    this.#lastTimecode = timecode;
    this.#ack({ EventType: 'RECEIVED', FragmentTimecode: timecode, FragmentNumber: fragment.number });
    this.#o.count('putMedia.fragmentsReceived');
    if (this.#o.stream.retentionHours <= 0) return;

    const span = this.#toMs(fragment.maxTc - fragment.minTc);
    // Add one frame interval so back-to-back fragments' durations add up to the stream's length.
    const videoInterval = fragment.videoFrames > 1 ? span / (fragment.videoFrames - 1) : 0;
    const producerTimestampMs =
      this.#toMs(timecode) + (this.#o.timecodeType === 'RELATIVE' ? (this.#o.producerStartMs ?? 0) : 0);
    const write = this.#o.store.append(this.#o.stream.name, fragment.number, {
      header,
      cluster: bytes,
      producerTimestampMs,
      serverTimestampMs: fragment.serverTimestampMs,
      durationMs: Math.round(span + videoInterval),
      fragmentTimecode: timecode,
      tracksPresent: [...fragment.perTrack.keys()].sort((a, b) => a - b),
      startsWithKeyFrame: fragment.firstFrame?.keyFrame ?? false,
      frameCount: fragment.frames,
    });
    this.#persisting = this.#persisting.then(() =>
      write.then(
        (record) => {
          this.fragmentsStored.push(record.fragmentNumber);
          this.#o.count('putMedia.fragmentsPersisted');
          this.#ack({
            EventType: 'PERSISTED',
            FragmentTimecode: timecode,
            FragmentNumber: record.fragmentNumber,
          });
        },
        (err: unknown) =>
          this.#fail(
            new PutMediaError(ErrorId.archivalError, 'fragment could not be stored', { cause: err }),
          ),
      ),
    );
  }

  #current(): OpenFragment {
    if (!this.#fragment) throw new PutMediaError(ErrorId.invalidMkvData, 'cluster content outside a cluster');
    return this.#fragment;
  }

  #toMs(timecodeUnits: number): number {
    // Whole milliseconds, as KVS keeps them: (units × scale) / 10⁶ in doubles is not exact for epoch-ms
    // timecodes (1796278444242 came out as …241.9998, which fell outside a range ending on it).
    return Math.round(timecodeUnits * ((this.#header?.timecodeScale ?? 1_000_000) / 1_000_000));
  }

  /**
   * Stops reading, then writes the ERROR ack once the PERSISTED acks of fragments already RECEIVED are out
   * (keeps the ack stream in fragment order), and ends the request.
   */
  #fail(err: unknown): void {
    if (this.#finished || this.#failing) return;
    this.#failing = true;
    const error =
      err instanceof PutMediaError
        ? err
        : new PutMediaError(ErrorId.internalError, err instanceof Error ? err.message : String(err), {
            cause: err,
          });
    this.#o.count(`putMedia.error.${error.errorId}`);
    this.#o.logger.warn(
      { stream: this.#o.stream.name, errorId: error.errorId, reason: error.message },
      'PutMedia error',
    );
    const timecode = this.#fragment?.timecode ?? this.#lastTimecode;
    const ack: Ack = {
      EventType: 'ERROR',
      ...(timecode !== undefined ? { FragmentTimecode: timecode } : {}),
      ...(this.#fragment ? { FragmentNumber: this.#fragment.number } : {}),
      ErrorId: error.errorId,
    };
    void this.#persisting.then(() => {
      this.#ack(ack);
      this.#finish('error');
    });
  }

  #failing = false;

  #finish(reason: SessionEnd): void {
    if (this.#finished) return;
    this.#finished = true;
    for (const t of this.#timers) clearTimeout(t);
    const { req, res } = this.#o;
    if (!res.writableEnded) res.end();
    if (!req.complete && reason !== 'aborted') {
      // Drop the rest of the body; a client that keeps sending is cut off after a grace period.
      req.resume();
      const cut = setTimeout(() => req.socket.destroy(), this.#o.limits.drainGraceMs);
      cut.unref();
      req.once('end', () => clearTimeout(cut));
      req.once('close', () => clearTimeout(cut));
    }
    this.#resolveDone(reason);
  }

  #abort(): void {
    if (this.#finished) return;
    this.#o.count('putMedia.aborted');
    this.#finish('aborted');
  }
}
