import { Id, children, readUint } from './ebml.js';
import { ffmpegPipe } from './ffmpegPipe.js';
import type { FragmentRecord } from './fragmentStore.js';

/** What one HLS segment request needs: fMP4 of one track (init + media) or MPEG-TS of all tracks. */
export type SegmentKind =
  { container: 'FRAGMENTED_MP4'; track: 'video' | 'audio' } | { container: 'MPEG_TS' };

export interface Segment {
  /** fMP4 only: `ftyp` + `moov` (the codec private data of this fragment). */
  init: Buffer | undefined;
  /** fMP4: `moof` + `mdat`; MPEG-TS: the whole transport stream. */
  media: Buffer;
}

export class SegmentError extends Error {
  readonly code = 'HLS_SEGMENT_FAILED';
}

/**
 * Where the fragment's first cluster timecode lands on ffmpeg's input clock, in ms: the stored cluster keeps
 * the producer's timecode (absolute or relative) in the stream's TimecodeScale.
 */
export function fragmentFileStartMs(file: Buffer, record: FragmentRecord): number {
  let scale = 1_000_000;
  const info = file.subarray(record.segmentPayloadOffset, record.clusterOffset);
  for (const child of children(info)) {
    if (child.id !== Id.Info) continue;
    for (const field of children(child.data)) if (field.id === Id.TimecodeScale) scale = readUint(field.data);
  }
  return (record.fragmentTimecode * scale) / 1_000_000;
}

/**
 * Repackages one stored fragment (a self-contained Matroska file) without re-encoding, its timestamps moved by
 * `offsetMs` so that consecutive fragments continue each other's decode timeline (tfdt / PTS), as a player
 * that appends them to one buffer needs.
 */
export function buildSegment(
  file: Buffer,
  kind: SegmentKind,
  options: { offsetMs: number; ffmpegPath: string; timeoutMs: number },
): Promise<Segment> {
  const output =
    kind.container === 'MPEG_TS'
      ? ['-map', '0', '-f', 'mpegts', '-mpegts_copyts', '1', '-muxdelay', '0', '-muxpreload', '0']
      : [
          '-map',
          kind.track === 'video' ? '0:v:0' : '0:a:0',
          '-f',
          'mp4',
          // One moof per KVS fragment (a fragment is at most 10 s): frag_duration (µs) far above that.
          // frag_discont + no negative-ts shifting: tfdt is the packet's own decode time, not rebased to 0.
          '-movflags',
          'empty_moov+default_base_moof+frag_discont',
          '-frag_duration',
          '2000000000',
          '-use_editlist',
          '0',
        ];
  const args = [
    '-hide_banner',
    '-nostdin',
    '-v',
    'error',
    '-copyts',
    '-f',
    'matroska',
    '-i',
    'pipe:0',
    '-c',
    'copy',
    '-output_ts_offset',
    (options.offsetMs / 1000).toFixed(3),
    '-avoid_negative_ts',
    'disabled',
    ...output,
    'pipe:1',
  ];
  return ffmpegPipe(args, file, options).then(
    (bytes) => {
      if (kind.container === 'MPEG_TS') return { init: undefined, media: bytes };
      const moof = firstBoxOffset(bytes, 'moof');
      if (moof === undefined) {
        throw new SegmentError('ffmpeg wrote no moof (the fragment has no frames of this track)');
      }
      return { init: bytes.subarray(0, moof), media: bytes.subarray(moof) };
    },
    (err: unknown) => {
      throw new SegmentError(err instanceof Error ? err.message : String(err), { cause: err });
    },
  );
}

/** Offset of the first top-level ISO-BMFF box of the given type. */
function firstBoxOffset(bytes: Buffer, type: string): number | undefined {
  for (let offset = 0; offset + 8 <= bytes.length;) {
    const size = bytes.readUInt32BE(offset);
    if (bytes.toString('latin1', offset + 4, offset + 8) === type) return offset;
    if (size < 8) return undefined;
    offset += size;
  }
  return undefined;
}
