import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { TypedEmitter } from '../../agent/typedEmitter.js';
import { Id, elementHeader } from './ebml.js';
import type { StreamHeader, TrackInfo } from './mkvStreamParser.js';

/** One stored fragment, as listed in the stream's `index.json`. */
export interface FragmentRecord {
  /** Decimal string, increasing per stream (compare as BigInt, or as strings of equal length). */
  fragmentNumber: string;
  /** Cluster timecode converted to absolute epoch milliseconds. */
  producerTimestampMs: number;
  /** Arrival of the fragment's first byte at the emulator, epoch milliseconds. */
  serverTimestampMs: number;
  /** Last frame's time minus the first frame's time, plus one frame interval when known. */
  durationMs: number;
  /** Size of the stored Cluster element. */
  sizeBytes: number;
  /** The cluster timecode exactly as received (the ACK's FragmentTimecode). */
  fragmentTimecode: number;
  /** Track numbers with at least one frame in this fragment. */
  tracksPresent: number[];
  /** The stream's track declarations when the fragment arrived (without CodecPrivate bytes). */
  tracks: Array<Omit<TrackInfo, 'codecPrivate'> & { codecPrivateHex?: string }>;
  startsWithKeyFrame: boolean;
  frameCount: number;
  /** File name inside the stream's `fragments/` directory. */
  file: string;
  /** Byte offset of the Segment payload (Info) in the file. */
  segmentPayloadOffset: number;
  /** Byte offset of the Cluster in the file. */
  clusterOffset: number;
}

export type NewFragment = Pick<
  FragmentRecord,
  | 'producerTimestampMs'
  | 'serverTimestampMs'
  | 'durationMs'
  | 'fragmentTimecode'
  | 'tracksPresent'
  | 'startsWithKeyFrame'
  | 'frameCount'
> & { header: StreamHeader; cluster: Buffer };

type StoreEvents = { fragment: [stream: string, record: FragmentRecord] };

/** Real KVS fragment numbers are ~47-digit decimals; equal length keeps string order = numeric order. */
const FRAGMENT_NUMBER_BASE = 91343852333181432392682062600000000000000000000n;

/**
 * Fragments on disk, per stream: `<dataDir>/<stream>/fragments/<FragmentNumber>.mkv` (a self-contained
 * Matroska file: EBML header + Segment + Info + Tracks + the Cluster) and `<dataDir>/<stream>/index.json`
 * (the list of `FragmentRecord`s, replaced atomically after each fragment). Writes of a stream are
 * serialised so fragment numbers follow arrival order.
 */
export class FragmentStore extends TypedEmitter<StoreEvents> {
  readonly #indexes = new Map<string, Promise<FragmentRecord[]>>();
  readonly #queues = new Map<string, Promise<unknown>>();
  readonly #next = new Map<string, bigint>();

  constructor(readonly options: { dataDir: string; logger: Logger }) {
    super();
  }

  streamDir(stream: string): string {
    return join(this.options.dataDir, encodeURIComponent(stream));
  }

  /** Loads the stream's index; `reserve` needs it loaded. */
  async open(stream: string): Promise<void> {
    const index = await this.#index(stream);
    if (!this.#next.has(stream)) {
      const last = index.at(-1);
      this.#next.set(
        stream,
        last ? BigInt(last.fragmentNumber) + 1n : FRAGMENT_NUMBER_BASE + BigInt(Date.now()),
      );
    }
  }

  /**
   * Hands out the next fragment number synchronously (BUFFERING acks carry it before the fragment is
   * complete). Numbers of fragments that are never stored leave gaps, as in KVS.
   */
  reserve(stream: string): string {
    const next = this.#next.get(stream);
    if (next === undefined) throw new Error(`stream ${stream} not opened`);
    this.#next.set(stream, next + 1n);
    return next.toString();
  }

  /** Writes a fragment and its index entry; resolves once both are on disk. */
  append(stream: string, fragmentNumber: string, fragment: NewFragment): Promise<FragmentRecord> {
    const previous = this.#queues.get(stream) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.#write(stream, fragmentNumber, fragment));
    this.#queues.set(stream, next);
    return next;
  }

  /** All fragments of a stream in fragment-number order (empty for a stream never written). */
  async list(stream: string): Promise<FragmentRecord[]> {
    return [...(await this.#index(stream))];
  }

  /** The fragment's stored Matroska file. */
  async read(stream: string, record: FragmentRecord): Promise<Buffer> {
    return readFile(join(this.streamDir(stream), 'fragments', record.file));
  }

  /** Waits for pending writes of every stream (tests, shutdown). */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.#queues.values()]);
  }

  #index(stream: string): Promise<FragmentRecord[]> {
    let index = this.#indexes.get(stream);
    if (!index) {
      index = readFile(join(this.streamDir(stream), 'index.json'), 'utf8').then(
        (text) => JSON.parse(text) as FragmentRecord[],
        (err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return [];
          throw err;
        },
      );
      this.#indexes.set(stream, index);
    }
    return index;
  }

  async #write(stream: string, fragmentNumber: string, fragment: NewFragment): Promise<FragmentRecord> {
    const index = await this.#index(stream);
    const { header, cluster } = fragment;
    const segmentPayload = Buffer.concat([header.info, header.tracksElement, cluster]);
    const segmentHeader = elementHeader(Id.Segment, segmentPayload.length);
    const file = `${fragmentNumber}.mkv`;
    const dir = this.streamDir(stream);
    await mkdir(join(dir, 'fragments'), { recursive: true });
    await writeFile(
      join(dir, 'fragments', file),
      Buffer.concat([header.ebmlHeader, segmentHeader, segmentPayload]),
    );
    const segmentPayloadOffset = header.ebmlHeader.length + segmentHeader.length;
    const record: FragmentRecord = {
      fragmentNumber,
      producerTimestampMs: fragment.producerTimestampMs,
      serverTimestampMs: fragment.serverTimestampMs,
      durationMs: fragment.durationMs,
      sizeBytes: cluster.length,
      fragmentTimecode: fragment.fragmentTimecode,
      tracksPresent: fragment.tracksPresent,
      tracks: header.tracks.map(({ codecPrivate, ...rest }) =>
        codecPrivate ? { ...rest, codecPrivateHex: codecPrivate.toString('hex') } : rest,
      ),
      startsWithKeyFrame: fragment.startsWithKeyFrame,
      frameCount: fragment.frameCount,
      file,
      segmentPayloadOffset,
      clusterOffset: segmentPayloadOffset + header.info.length + header.tracksElement.length,
    };
    index.push(record);
    const indexPath = join(dir, 'index.json');
    try {
      await writeFile(`${indexPath}.tmp`, JSON.stringify(index, null, 1));
      await rename(`${indexPath}.tmp`, indexPath);
    } catch (err) {
      index.pop();
      throw err;
    }
    this.options.logger.debug({ stream, fragmentNumber, bytes: cluster.length }, 'fragment persisted');
    this.safeEmit('fragment', stream, record);
    return record;
  }
}
