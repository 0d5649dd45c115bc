import {
  Id,
  LEVEL1_IDS,
  UNKNOWN_SIZE,
  children,
  readId,
  readSize,
  readUint,
  elementHeader,
  type Vint,
} from './ebml.js';
import { ErrorId, PutMediaError } from './putMediaError.js';

export interface TrackInfo {
  number: number;
  /** Matroska TrackType: 1 video, 2 audio. */
  type: number;
  codecId: string;
  codecPrivate?: Buffer;
  pixelWidth?: number;
  pixelHeight?: number;
}

/** What precedes the first Cluster of a Matroska stream, parsed and kept raw for re-emission. */
export interface StreamHeader {
  /** Nanoseconds per timecode unit (Info/TimecodeScale, default 1 000 000). */
  timecodeScale: number;
  tracks: TrackInfo[];
  /** The EBML header element as received. */
  ebmlHeader: Buffer;
  /** The Info element as received. */
  info: Buffer;
  /** The Tracks element as received. */
  tracksElement: Buffer;
}

export interface FrameInfo {
  track: number;
  /** Relative to the cluster timecode, in timecode units. */
  relativeTimecode: number;
  keyFrame: boolean;
  /** Whole block element payload size in bytes. */
  size: number;
}

/** Callbacks of the parser; a handler may throw a `PutMediaError` to stop parsing. */
export interface MkvStreamHandler {
  header(header: StreamHeader): void;
  /** First byte of a Cluster. */
  clusterStart(): void;
  clusterTimecode(timecode: number): void;
  frame(frame: FrameInfo): void;
  /** `bytes` is the whole Cluster element, re-written with a known size. */
  clusterEnd(cluster: { timecode: number; bytes: Buffer }): void;
  /** A level-1 Tags element (e.g. kvssink's fragment metadata) as received. */
  tags(raw: Buffer): void;
}

export interface MkvStreamParserOptions {
  /** A Cluster larger than this is refused with ErrorId 4001 (KVS: 50 MB). */
  maxClusterBytes: number;
}

type State = 'ebml' | 'segment' | 'level1' | 'cluster';

/** Elements buffered whole before being handled (everything else streams through). */
const MAX_HEADER_ELEMENT_BYTES = 1024 * 1024;
const SIMPLE_BLOCK_HEADER_BYTES = 12;

const invalid = (message: string): PutMediaError => new PutMediaError(ErrorId.invalidMkvData, message);

/**
 * Incremental Matroska parser for a PutMedia body: bytes arrive in arbitrary chunks, only the current
 * Cluster is held in memory (bounded by `maxClusterBytes`), and a live stream's unknown-size Segment and
 * Clusters are handled (an unknown-size Cluster ends at the next level-1 element or at the end of the body).
 * A new EBML header inside the body starts a new stream header, as a restarting producer would send.
 */
export class MkvStreamParser {
  #pending: Buffer = Buffer.alloc(0);
  #pos = 0;
  #state: State = 'ebml';
  #failed = false;
  /** Bytes of the current element's payload still to pass through (not parsed). */
  #skip = 0;
  /** Whether skipped bytes belong to the cluster being collected. */
  #skipIntoCluster = false;

  #ebmlHeader: Buffer | undefined;
  #info: Buffer | undefined;
  #tracksElement: Buffer | undefined;
  #timecodeScale = 1_000_000;
  #tracks: TrackInfo[] | undefined;
  #headerEmitted = false;

  #clusterChunks: Buffer[] = [];
  #clusterBytes = 0;
  /** Payload bytes left in a known-size cluster; UNKNOWN_SIZE for live clusters. */
  #clusterRemaining = 0;
  #clusterTimecode: number | undefined;

  constructor(
    readonly handler: MkvStreamHandler,
    readonly options: MkvStreamParserOptions,
  ) {}

  /** Feeds the next chunk of the body. Throws a `PutMediaError` on invalid data (the parser is then dead). */
  push(chunk: Buffer): void {
    if (this.#failed) throw invalid('parser already failed');
    this.#pending =
      this.#pos < this.#pending.length ? Buffer.concat([this.#pending.subarray(this.#pos), chunk]) : chunk;
    this.#pos = 0;
    try {
      this.#run();
    } catch (err) {
      this.#failed = true;
      throw err;
    }
  }

  /** The body ended: completes an open unknown-size cluster, or throws if an element was cut short. */
  end(): void {
    if (this.#failed) return;
    this.#failed = true;
    if (this.#skip > 0 || this.#pos < this.#pending.length) {
      throw invalid(
        `body ended inside an element (${this.#skip + this.#pending.length - this.#pos} bytes missing or left)`,
      );
    }
    if (this.#state === 'cluster') {
      if (this.#clusterRemaining !== UNKNOWN_SIZE && this.#clusterRemaining > 0) {
        throw invalid('body ended inside a cluster of known size');
      }
      this.#endCluster();
    }
  }

  get inCluster(): boolean {
    return this.#state === 'cluster';
  }

  #run(): void {
    for (;;) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, this.#pending.length - this.#pos);
        if (n === 0) return;
        if (this.#skipIntoCluster) this.#collect(this.#pending.subarray(this.#pos, this.#pos + n));
        this.#pos += n;
        this.#skip -= n;
        if (this.#skip > 0) return;
      }
      if (this.#state === 'cluster' && this.#clusterRemaining === 0) {
        this.#endCluster();
        continue;
      }
      const header = this.#readHeader();
      if (!header) return;
      const progressed = this.#element(header.id, header.size, header.headerLength);
      if (!progressed) return;
    }
  }

  /** Reads the ID and size at the cursor without consuming; undefined when more bytes are needed. */
  #readHeader(): { id: number; size: number; headerLength: number } | undefined {
    const id: Vint | undefined | null = readId(this.#pending, this.#pos);
    if (id === null)
      throw invalid(`invalid element ID byte 0x${(this.#pending[this.#pos] ?? 0).toString(16)}`);
    if (!id) return undefined;
    const size = readSize(this.#pending, this.#pos + id.length);
    if (size === null) throw invalid(`invalid size of element 0x${id.value.toString(16)}`);
    if (!size) return undefined;
    return { id: id.value, size: size.value, headerLength: id.length + size.length };
  }

  /** Handles the element at the cursor; returns false if it needs more bytes (nothing consumed). */
  #element(id: number, size: number, headerLength: number): boolean {
    switch (this.#state) {
      case 'ebml': {
        if (id !== Id.EBML) throw invalid(`expected an EBML header, got element 0x${id.toString(16)}`);
        const whole = this.#take(size, headerLength);
        if (!whole) return false;
        this.#startStream(whole);
        this.#state = 'segment';
        return true;
      }
      case 'segment': {
        if (id !== Id.Segment) throw invalid(`expected a Segment, got element 0x${id.toString(16)}`);
        this.#pos += headerLength;
        this.#state = 'level1';
        return true;
      }
      case 'cluster':
        return this.#clusterChild(id, size, headerLength);
      case 'level1':
        return this.#level1(id, size, headerLength);
    }
  }

  #level1(id: number, size: number, headerLength: number): boolean {
    if (id === Id.EBML) {
      this.#state = 'ebml';
      return true;
    }
    if (id === Id.Cluster) {
      this.#emitHeaderOnce();
      this.#pos += headerLength;
      this.#state = 'cluster';
      this.#clusterChunks = [];
      this.#clusterBytes = 0;
      this.#clusterRemaining = size;
      this.#clusterTimecode = undefined;
      this.handler.clusterStart();
      return true;
    }
    if (size === UNKNOWN_SIZE) throw invalid(`level-1 element 0x${id.toString(16)} has an unknown size`);
    if (id === Id.Info || id === Id.Tracks || id === Id.Tags) {
      const whole = this.#take(size, headerLength);
      if (!whole) return false;
      const payload = whole.subarray(headerLength);
      if (id === Id.Info) this.#parseInfo(whole, payload);
      else if (id === Id.Tracks) this.#parseTracks(whole, payload);
      else this.handler.tags(whole);
      return true;
    }
    // SeekHead, Cues, Void, Chapters, Attachments and unknown elements: not needed, skipped.
    this.#pos += headerLength;
    this.#skip = size;
    this.#skipIntoCluster = false;
    return true;
  }

  #clusterChild(id: number, size: number, headerLength: number): boolean {
    if (this.#clusterRemaining === UNKNOWN_SIZE && LEVEL1_IDS.has(id)) {
      this.#endCluster();
      return true;
    }
    if (size === UNKNOWN_SIZE) throw invalid(`cluster child 0x${id.toString(16)} has an unknown size`);
    const total = headerLength + size;
    if (this.#clusterRemaining !== UNKNOWN_SIZE) {
      if (total > this.#clusterRemaining)
        throw invalid(`cluster child 0x${id.toString(16)} overruns its cluster`);
      this.#clusterRemaining -= total;
    }
    if (this.#clusterBytes + total > this.options.maxClusterBytes) {
      throw new PutMediaError(
        ErrorId.fragmentSizeLimit,
        `fragment exceeds ${this.options.maxClusterBytes} bytes (${this.#clusterBytes + total} so far)`,
      );
    }
    if (id === Id.Timecode) {
      const whole = this.#take(size, headerLength, true);
      if (!whole) return this.#undo(total);
      if (this.#clusterTimecode !== undefined) throw invalid('cluster has two Timecode elements');
      this.#clusterTimecode = readUint(whole.subarray(headerLength));
      this.#collect(whole);
      this.handler.clusterTimecode(this.#clusterTimecode);
      return true;
    }
    if (id === Id.SimpleBlock) {
      const need = Math.min(size, SIMPLE_BLOCK_HEADER_BYTES);
      if (this.#pending.length - this.#pos < headerLength + need) return this.#undo(total);
      const frame = this.#parseBlock(
        this.#pending.subarray(this.#pos + headerLength, this.#pos + headerLength + need),
        size,
      );
      this.#collect(this.#pending.subarray(this.#pos, this.#pos + headerLength));
      this.#pos += headerLength;
      this.#skip = size;
      this.#skipIntoCluster = true;
      this.handler.frame(frame);
      return true;
    }
    if (id === Id.BlockGroup) {
      const whole = this.#take(size, headerLength, true);
      if (!whole) return this.#undo(total);
      for (const child of children(whole.subarray(headerLength))) {
        if (child.id === Id.Block) {
          const frame = this.#parseBlock(child.data, child.data.length);
          // A Block has no key-frame flag; a BlockGroup without ReferenceBlock is a key frame.
          const hasReference = [...children(whole.subarray(headerLength))].some((c) => c.id === 0xfb);
          this.#collect(whole);
          this.handler.frame({ ...frame, keyFrame: !hasReference });
          return true;
        }
      }
      throw invalid('BlockGroup without a Block');
    }
    // Position, PrevSize, Void, CRC-32 and others pass through into the stored cluster.
    this.#collect(this.#pending.subarray(this.#pos, this.#pos + headerLength));
    this.#pos += headerLength;
    this.#skip = size;
    this.#skipIntoCluster = true;
    return true;
  }

  /** Reverts the known-size cluster accounting of a child that is not complete yet. */
  #undo(total: number): false {
    if (this.#clusterRemaining !== UNKNOWN_SIZE) this.#clusterRemaining += total;
    return false;
  }

  #parseBlock(head: Buffer, size: number): FrameInfo {
    const track = readSize(head, 0);
    if (!track || track.value === UNKNOWN_SIZE || head.length < track.length + 3) {
      throw invalid('malformed block header');
    }
    if (this.#clusterTimecode === undefined) throw invalid('block before the cluster Timecode');
    return {
      track: track.value,
      relativeTimecode: head.readInt16BE(track.length),
      keyFrame: ((head[track.length + 2] ?? 0) & 0x80) !== 0,
      size,
    };
  }

  /** Consumes a whole element if buffered (bounded), else returns undefined and consumes nothing. */
  #take(size: number, headerLength: number, inCluster = false): Buffer | undefined {
    const limit = inCluster ? this.options.maxClusterBytes : MAX_HEADER_ELEMENT_BYTES;
    if (size > limit) throw invalid(`element of ${size} bytes is larger than allowed here (${limit})`);
    if (this.#pending.length - this.#pos < headerLength + size) return undefined;
    const whole = this.#pending.subarray(this.#pos, this.#pos + headerLength + size);
    this.#pos += headerLength + size;
    // Copy: the pending buffer is reused for later chunks.
    return Buffer.from(whole);
  }

  #collect(bytes: Buffer): void {
    this.#clusterChunks.push(Buffer.from(bytes));
    this.#clusterBytes += bytes.length;
  }

  #startStream(ebmlHeader: Buffer): void {
    let docType = 'matroska';
    const idLen = readId(ebmlHeader, 0)?.length ?? 4;
    const sizeLen = readSize(ebmlHeader, idLen)?.length ?? 1;
    try {
      for (const child of children(ebmlHeader.subarray(idLen + sizeLen))) {
        if (child.id === Id.DocType) docType = child.data.toString('latin1').replace(/\0+$/, '');
      }
    } catch (err) {
      throw new PutMediaError(ErrorId.invalidMkvData, 'malformed EBML header', { cause: err });
    }
    if (docType !== 'matroska' && docType !== 'webm') throw invalid(`DocType "${docType}" is not Matroska`);
    this.#ebmlHeader = ebmlHeader;
    this.#info = undefined;
    this.#tracksElement = undefined;
    this.#tracks = undefined;
    this.#timecodeScale = 1_000_000;
    this.#headerEmitted = false;
  }

  #parseInfo(whole: Buffer, payload: Buffer): void {
    try {
      for (const child of children(payload)) {
        if (child.id === Id.TimecodeScale) this.#timecodeScale = readUint(child.data);
      }
    } catch (err) {
      throw new PutMediaError(ErrorId.invalidMkvData, 'malformed Info', { cause: err });
    }
    if (this.#timecodeScale <= 0) throw invalid('TimecodeScale must be positive');
    this.#info = whole;
  }

  #parseTracks(whole: Buffer, payload: Buffer): void {
    const tracks: TrackInfo[] = [];
    try {
      for (const entry of children(payload)) {
        if (entry.id !== Id.TrackEntry) continue;
        const track: TrackInfo = { number: 0, type: 0, codecId: '' };
        for (const field of children(entry.data)) {
          if (field.id === Id.TrackNumber) track.number = readUint(field.data);
          else if (field.id === Id.TrackType) track.type = readUint(field.data);
          else if (field.id === Id.CodecID) track.codecId = field.data.toString('latin1').replace(/\0+$/, '');
          else if (field.id === Id.CodecPrivate) track.codecPrivate = Buffer.from(field.data);
          else if (field.id === Id.Video) {
            for (const v of children(field.data)) {
              if (v.id === Id.PixelWidth) track.pixelWidth = readUint(v.data);
              else if (v.id === Id.PixelHeight) track.pixelHeight = readUint(v.data);
            }
          }
        }
        if (track.number === 0) throw new Error('TrackEntry without TrackNumber');
        if (tracks.some((t) => t.number === track.number))
          throw new Error(`duplicate track number ${track.number}`);
        tracks.push(track);
      }
    } catch (err) {
      throw new PutMediaError(ErrorId.invalidMkvData, `malformed Tracks: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (tracks.length === 0) throw invalid('Tracks declares no track');
    this.#tracks = tracks;
    this.#tracksElement = whole;
  }

  #emitHeaderOnce(): void {
    if (this.#headerEmitted) return;
    if (!this.#ebmlHeader || !this.#tracks || !this.#tracksElement) throw invalid('Cluster before Tracks');
    // Info is mandatory in Matroska, but a missing one only means the default scale.
    this.#headerEmitted = true;
    this.handler.header({
      timecodeScale: this.#timecodeScale,
      tracks: this.#tracks,
      ebmlHeader: this.#ebmlHeader,
      info: this.#info ?? Buffer.alloc(0),
      tracksElement: this.#tracksElement,
    });
  }

  #endCluster(): void {
    this.#state = 'level1';
    if (this.#clusterTimecode === undefined) throw invalid('cluster without a Timecode');
    const body = Buffer.concat(this.#clusterChunks);
    this.#clusterChunks = [];
    this.#clusterBytes = 0;
    this.handler.clusterEnd({
      timecode: this.#clusterTimecode,
      bytes: Buffer.concat([elementHeader(Id.Cluster, body.length), body]),
    });
  }
}
