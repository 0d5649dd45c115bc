import { Id, UNKNOWN_SIZE, children, element, elementHeader, readSize } from './ebml.js';
import type { FragmentRecord } from './fragmentStore.js';

export interface ClipPart {
  record: FragmentRecord;
  file: Buffer;
}

export interface ClipMatroska {
  /** One Matroska document: the first fragment's header, then every included Cluster. */
  bytes: Buffer;
  included: FragmentRecord[];
  /** Fragments left out because their track layout (numbers, codecs) differs from the first fragment's. */
  cutAt: FragmentRecord | undefined;
  /** Fragments whose H.264 parameter sets differed from the clip's and were put in-band. */
  parameterSetChanges: number;
}

const layout = (r: FragmentRecord): string =>
  r.tracks
    .map((t) => `${t.number}:${t.codecId}`)
    .sort()
    .join(',');

/**
 * Joins stored fragments into one Matroska stream for remuxing to MP4.
 *
 * Codec private data may change between fragments (a new PutMedia session after a resolution change). An MP4
 * has one sample description per track here, the first fragment's, so for H.264 the new SPS/PPS of a changed
 * fragment are prepended in-band to its first video frame: decoders then switch at that key frame. A change
 * in track layout (count, numbers or codecs) cannot be expressed in one clip: the clip ends before it.
 */
export function buildClipMatroska(parts: readonly ClipPart[]): ClipMatroska {
  const first = parts[0];
  if (!first) throw new Error('no fragments');
  const ebmlHeader = first.file.subarray(0, first.record.segmentPayloadOffset - 12);
  const header = first.file.subarray(first.record.segmentPayloadOffset, first.record.clusterOffset);
  const chunks: Buffer[] = [ebmlHeader, elementHeader(Id.Segment, UNKNOWN_SIZE), header];
  const included: FragmentRecord[] = [];
  let parameterSetChanges = 0;
  const clipLayout = layout(first.record);
  for (const part of parts) {
    if (layout(part.record) !== clipLayout) {
      return { bytes: Buffer.concat(chunks), included, cutAt: part.record, parameterSetChanges };
    }
    let cluster = part.file.subarray(part.record.clusterOffset);
    for (const track of part.record.tracks) {
      const clipTrack = first.record.tracks.find((t) => t.number === track.number);
      if (
        track.codecId === 'V_MPEG4/ISO/AVC' &&
        track.codecPrivateHex &&
        clipTrack?.codecPrivateHex &&
        track.codecPrivateHex !== clipTrack.codecPrivateHex
      ) {
        cluster = withInBandParameterSets(
          cluster,
          track.number,
          Buffer.from(track.codecPrivateHex, 'hex'),
          Buffer.from(clipTrack.codecPrivateHex, 'hex'),
        );
        parameterSetChanges++;
      }
    }
    chunks.push(cluster);
    included.push(part.record);
  }
  return { bytes: Buffer.concat(chunks), included, cutAt: undefined, parameterSetChanges };
}

/** SPS and PPS NAL units of an AVCDecoderConfigurationRecord, and its NAL length size. */
export function parseAvcC(avcC: Buffer): { lengthSize: number; nalUnits: Buffer[] } {
  if (avcC.length < 7 || avcC[0] !== 1) throw new Error('not an avcC record');
  const lengthSize = ((avcC[4] ?? 3) & 3) + 1;
  const nalUnits: Buffer[] = [];
  let offset = 5;
  for (const mask of [0x1f, 0xff]) {
    const count = (avcC[offset] ?? 0) & mask;
    offset++;
    for (let i = 0; i < count; i++) {
      const len = avcC.readUInt16BE(offset);
      nalUnits.push(avcC.subarray(offset + 2, offset + 2 + len));
      offset += 2 + len;
    }
  }
  return { lengthSize, nalUnits };
}

/** Rewrites a stored Cluster so the track's first block starts with the parameter sets of `avcC`. */
function withInBandParameterSets(cluster: Buffer, track: number, avcC: Buffer, clipAvcC: Buffer): Buffer {
  const { nalUnits } = parseAvcC(avcC);
  // The samples keep the clip's NAL length size, so the prepended units must use it too.
  const { lengthSize } = parseAvcC(clipAvcC);
  const prefix = Buffer.concat(
    nalUnits.map((nal) => {
      const len = Buffer.alloc(lengthSize);
      len.writeUIntBE(nal.length, 0, lengthSize);
      return Buffer.concat([len, nal]);
    }),
  );
  const payloadStart = 12; // Cluster ID (4) + 8-byte size, as the store writes it
  let done = false;
  const out: Buffer[] = [];
  for (const child of children(cluster.subarray(payloadStart))) {
    if (!done && child.id === Id.SimpleBlock) {
      const rewritten = prependToBlock(child.data, track, prefix);
      if (rewritten) {
        out.push(element(Id.SimpleBlock, rewritten));
        done = true;
        continue;
      }
    }
    out.push(element(child.id, child.data));
  }
  return element(Id.Cluster, ...out);
}

function prependToBlock(block: Buffer, track: number, prefix: Buffer): Buffer | undefined {
  const number = readSize(block, 0);
  if (!number || number.value !== track) return undefined;
  const headerLength = number.length + 3;
  const flags = block[number.length + 2] ?? 0;
  if ((flags & 0x06) !== 0) return undefined; // laced: frame boundaries would shift
  return Buffer.concat([block.subarray(0, headerLength), prefix, block.subarray(headerLength)]);
}
