/**
 * The small part of EBML (RFC 8794) and Matroska (RFC 9559) that PutMedia needs: variable-size integers,
 * the element IDs KVS producers send, and writers for the elements the emulator re-emits.
 */

/** Element IDs, with their length-marker bits kept (as they appear on the wire). */
export const Id = {
  EBML: 0x1a45dfa3,
  DocType: 0x4282,
  Segment: 0x18538067,
  SeekHead: 0x114d9b74,
  Info: 0x1549a966,
  TimecodeScale: 0x2ad7b1,
  Tracks: 0x1654ae6b,
  TrackEntry: 0xae,
  TrackNumber: 0xd7,
  TrackType: 0x83,
  CodecID: 0x86,
  CodecPrivate: 0x63a2,
  Video: 0xe0,
  PixelWidth: 0xb0,
  PixelHeight: 0xba,
  Cluster: 0x1f43b675,
  Timecode: 0xe7,
  SimpleBlock: 0xa3,
  BlockGroup: 0xa0,
  Block: 0xa1,
  Cues: 0x1c53bb6b,
  Chapters: 0x1043a770,
  Attachments: 0x1941a469,
  Tags: 0x1254c367,
  Tag: 0x7373,
  Targets: 0x63c0,
  SimpleTag: 0x67c8,
  TagName: 0x45a3,
  TagString: 0x4487,
  Void: 0xec,
  CRC32: 0xbf,
} as const;

/** Children of a Segment: any of these ends an unknown-size Cluster. The EBML header starts a new stream. */
export const LEVEL1_IDS: ReadonlySet<number> = new Set([
  Id.SeekHead,
  Id.Info,
  Id.Tracks,
  Id.Cluster,
  Id.Cues,
  Id.Chapters,
  Id.Attachments,
  Id.Tags,
  Id.EBML,
  Id.Segment,
]);

/** Marks an element whose size field has all value bits set (live streams: Segment and Cluster). */
export const UNKNOWN_SIZE = -1;

export interface Vint {
  /** Decoded value; for sizes, `UNKNOWN_SIZE` when all value bits are 1. */
  value: number;
  length: number;
}

/**
 * Reads an element ID (marker bits kept, 1–4 bytes). Returns undefined if more bytes are needed, null if
 * the first byte cannot start an ID.
 */
export function readId(buf: Buffer, offset: number): Vint | undefined | null {
  if (offset >= buf.length) return undefined;
  const first = buf[offset] ?? 0;
  const length = first >= 0x80 ? 1 : first >= 0x40 ? 2 : first >= 0x20 ? 3 : first >= 0x10 ? 4 : 0;
  if (length === 0) return null;
  if (offset + length > buf.length) return undefined;
  return { value: buf.readUIntBE(offset, length), length };
}

/**
 * Reads an element data size (1–8 bytes). Returns undefined if more bytes are needed, null on an invalid
 * leading byte. Sizes above 2^53 cannot occur in PutMedia (fragments are at most 50 MB) and are invalid here.
 */
export function readSize(buf: Buffer, offset: number): Vint | undefined | null {
  if (offset >= buf.length) return undefined;
  const first = buf[offset] ?? 0;
  if (first === 0) return null;
  const length = Math.clz32(first) - 23;
  if (offset + length > buf.length) return undefined;
  let value = first & (0xff >> length);
  let allOnes = value === 0xff >> length;
  for (let i = 1; i < length; i++) {
    const b = buf[offset + i] ?? 0;
    if (b !== 0xff) allOnes = false;
    value = value * 256 + b;
  }
  if (allOnes) return { value: UNKNOWN_SIZE, length };
  if (!Number.isSafeInteger(value)) return null;
  return { value, length };
}

/** Unsigned big-endian integer element payload (0–8 bytes). */
export function readUint(data: Buffer): number {
  let value = 0;
  for (const b of data) value = value * 256 + b;
  return value;
}

function idBytes(id: number): Buffer {
  const length = id > 0xffffff ? 4 : id > 0xffff ? 3 : id > 0xff ? 2 : 1;
  const out = Buffer.alloc(length);
  out.writeUIntBE(id, 0, length);
  return out;
}

/** An 8-byte size field: fixed width lets a writer patch or pre-compute sizes without shifting bytes. */
export function sizeBytes(size: number): Buffer {
  const out = Buffer.alloc(8);
  out[0] = 0x01;
  out.writeUIntBE(size, 2, 6);
  return out;
}

export const UNKNOWN_SIZE_BYTES = Buffer.from([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

/** An element with a known size. */
export function element(id: number, ...payload: Buffer[]): Buffer {
  const body = Buffer.concat(payload);
  return Buffer.concat([idBytes(id), sizeBytes(body.length), body]);
}

/** The header of an element whose payload follows (size known or unknown). */
export function elementHeader(id: number, size: number): Buffer {
  return Buffer.concat([idBytes(id), size === UNKNOWN_SIZE ? UNKNOWN_SIZE_BYTES : sizeBytes(size)]);
}

export function uintElement(id: number, value: number): Buffer {
  const payload = Buffer.alloc(8);
  payload.writeBigUInt64BE(BigInt(value));
  let start = 0;
  while (start < 7 && payload[start] === 0) start++;
  return element(id, payload.subarray(start));
}

export function stringElement(id: number, value: string): Buffer {
  return element(id, Buffer.from(value, 'utf8'));
}

/** A `Tags` element with one `Tag` of simple name/value pairs (how KVS labels GetMedia chunks). */
export function simpleTags(tags: ReadonlyArray<readonly [string, string]>): Buffer {
  return element(
    Id.Tags,
    element(
      Id.Tag,
      element(Id.Targets),
      ...tags.map(([name, value]) =>
        element(Id.SimpleTag, stringElement(Id.TagName, name), stringElement(Id.TagString, value)),
      ),
    ),
  );
}

/** Iterates over the children of a fully buffered master element's payload. Throws on malformed data. */
export function* children(payload: Buffer): Generator<{ id: number; data: Buffer }> {
  let offset = 0;
  while (offset < payload.length) {
    const id = readId(payload, offset);
    if (!id) throw new Error(`bad element ID at offset ${offset}`);
    const size = readSize(payload, offset + id.length);
    if (!size || size.value === UNKNOWN_SIZE) throw new Error(`bad element size at offset ${offset}`);
    const start = offset + id.length + size.length;
    const end = start + size.value;
    if (end > payload.length) throw new Error(`element 0x${id.value.toString(16)} overruns its parent`);
    yield { id: id.value, data: payload.subarray(start, end) };
    offset = end;
  }
}
