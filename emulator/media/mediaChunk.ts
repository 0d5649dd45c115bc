import { Id, UNKNOWN_SIZE, elementHeader, simpleTags } from './ebml.js';
import type { FragmentRecord } from './fragmentStore.js';

/** Content type of GetMedia / GetMediaForFragmentList responses (what KVS returns). */
export const MEDIA_CONTENT_TYPE = 'video/webm';

const seconds = (ms: number): string => (ms / 1000).toFixed(3);

/**
 * One GetMedia chunk, as KVS sends them: a complete Matroska document per fragment (EBML header, Segment of
 * unknown size, Info, Tracks, the Cluster) followed by a Tags element naming the fragment. A reader of the
 * concatenated chunks sees a new EBML header at each fragment, which is how the KVS parser library splits it.
 */
export function mediaChunk(
  file: Buffer,
  record: FragmentRecord,
  options: { continuationToken?: string; nowMs: number },
): Buffer {
  const ebmlHeader = file.subarray(0, record.segmentPayloadOffset - 12);
  const segmentPayload = file.subarray(record.segmentPayloadOffset);
  const tags: Array<[string, string]> = [
    ['AWS_KINESISVIDEO_FRAGMENT_NUMBER', record.fragmentNumber],
    ['AWS_KINESISVIDEO_SERVER_TIMESTAMP', seconds(record.serverTimestampMs)],
    ['AWS_KINESISVIDEO_PRODUCER_TIMESTAMP', seconds(record.producerTimestampMs)],
  ];
  if (options.continuationToken !== undefined) {
    tags.push(['AWS_KINESISVIDEO_CONTINUATION_TOKEN', options.continuationToken]);
    tags.push([
      'AWS_KINESISVIDEO_MILLIS_BEHIND_NOW',
      String(Math.max(0, options.nowMs - record.serverTimestampMs)),
    ]);
  }
  return Buffer.concat([
    ebmlHeader,
    elementHeader(Id.Segment, UNKNOWN_SIZE),
    segmentPayload,
    simpleTags(tags),
  ]);
}
