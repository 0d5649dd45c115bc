/**
 * Turns kvssink / gst-launch output lines into typed events with the KVS error and a human explanation.
 * Status values are the producer SDK's (PIC `STATUS_CLIENT_BASE` 0x52000000, `STATUS_MKVGEN_BASE`
 * 0x32000000); ack errors map 1:1 to the PutMedia ErrorIds (4000…5001).
 */

export interface KvsStatusInfo {
  /** PutMedia ErrorId, when the status is an ack error. */
  errorId?: number;
  name: string;
  explanation: string;
  /** Credential problems are reported separately: they need a different fix than media problems. */
  credentials?: boolean;
}

const ACK_STATUSES: Array<[number, number, string, string]> = [
  [
    0x5200005c,
    4000,
    'STREAM_READ_ERROR',
    'KVS could not read the PutMedia body (connection broke mid-fragment).',
  ],
  [0x5200005d, 4001, 'FRAGMENT_SIZE_REACHED', 'A fragment was larger than 50 MB.'],
  [
    0x5200005e,
    4002,
    'FRAGMENT_DURATION_REACHED',
    'A fragment was longer than 10 s: key frames came too far apart. The master must answer key-frame requests; lower --keyframe-interval-ms.',
  ],
  [
    0x5200005f,
    4003,
    'CONNECTION_DURATION_REACHED',
    'The PutMedia connection reached its maximum age; kvssink reconnects.',
  ],
  [
    0x52000060,
    4004,
    'FRAGMENT_TIMECODE_NOT_MONOTONIC',
    'Fragment timecodes went backwards (e.g. the producer clock jumped or two producers write the same stream).',
  ],
  [0x52000061, 4005, 'MULTI_TRACK_MKV', 'The Matroska stream had a track layout KVS does not accept.'],
  [0x52000062, 4006, 'INVALID_MKV_DATA', 'KVS could not parse the Matroska data.'],
  [
    0x52000063,
    4007,
    'INVALID_PRODUCER_TIMESTAMP',
    'A producer timestamp was out of range (check the system clock).',
  ],
  [0x52000064, 4008, 'STREAM_NOT_ACTIVE', 'The stream is not ACTIVE (being created or deleted).'],
  [0x52000075, 4009, 'FRAGMENT_METADATA_LIMIT_REACHED', 'Too much fragment metadata.'],
  [
    0x5200007c,
    4010,
    'TRACK_NUMBER_MISMATCH',
    'A frame used a track number that the stream header did not declare.',
  ],
  [
    0x5200007d,
    4011,
    'FRAMES_MISSING_FOR_TRACK',
    'A fragment had no frame of one declared track — e.g. the master stopped sending audio while the stream declares two tracks.',
  ],
  [0x5200007e, 4012, 'MORE_THAN_ALLOWED_TRACKS_FOUND', 'More than 3 tracks.'],
  [0x52000065, 4500, 'KMS_KEY_ACCESS_DENIED', 'No access to the stream’s KMS key.'],
  [0x52000066, 4501, 'KMS_KEY_DISABLED', 'The stream’s KMS key is disabled.'],
  [0x52000067, 4502, 'KMS_KEY_VALIDATION_ERROR', 'The stream’s KMS key failed validation.'],
  [0x52000068, 4503, 'KMS_KEY_UNAVAILABLE', 'The stream’s KMS key is unavailable.'],
  [0x52000069, 4504, 'KMS_KEY_INVALID_USAGE', 'The stream’s KMS key has the wrong usage.'],
  [0x5200006a, 4505, 'KMS_KEY_INVALID_STATE', 'The stream’s KMS key is in an invalid state.'],
  [0x5200006b, 4506, 'KMS_KEY_NOT_FOUND', 'The stream’s KMS key was not found.'],
  [0x5200006c, 4507, 'STREAM_DELETED', 'The stream was deleted while recording.'],
  [0x5200006d, 5000, 'ACK_INTERNAL_ERROR', 'KVS internal error; kvssink retries.'],
  [0x5200006e, 5001, 'FRAGMENT_ARCHIVAL_ERROR', 'KVS could not persist a fragment; kvssink retries.'],
];

const OTHER_STATUSES: Record<number, KvsStatusInfo> = {
  0x52000010: {
    name: 'SERVICE_CALL_NOT_AUTHORIZED_ERROR',
    explanation:
      'KVS refused the credentials (expired, wrong, or missing IAM permissions such as kinesisvideo:PutMedia). Check the task role and the credential file refresh.',
    credentials: true,
  },
  0x52000017: {
    name: 'SERVICE_CALL_RESOURCE_NOT_FOUND_ERROR',
    explanation: 'The stream does not exist and kvssink was not allowed to create it.',
  },
  0x52000037: { name: 'SERVICE_CALL_TIMEOUT_ERROR', explanation: 'A KVS API call timed out (network?).' },
  0x52000011: {
    name: 'SERVICE_CALL_UNKNOWN_ERROR',
    explanation:
      'A KVS API call failed without an HTTP answer: the endpoint is unreachable (network, DNS, CONTROL_PLANE_URI?).',
  },
  0x3200000d: {
    name: 'MKV_INVALID_ANNEXB_NALU_IN_FRAME_DATA',
    explanation:
      'kvssink got H.264 in Annex B where it needs AVCC: the caps before kvssink must be video/x-h264,stream-format=avc,alignment=au.',
  },
};

export function describeKvsStatus(status: number): KvsStatusInfo {
  const ack = ACK_STATUSES.find(([s]) => s === status);
  if (ack) return { errorId: ack[1], name: ack[2], explanation: ack[3] };
  return (
    OTHER_STATUSES[status] ?? {
      name: `0x${status.toString(16)}`,
      explanation: 'Unknown producer SDK status.',
    }
  );
}

export type KvssinkEvent =
  | ({ type: 'stream-error'; status: number; statusHex: string; timecode: number } & KvsStatusInfo)
  | { type: 'bus-error'; element: string; message: string }
  | { type: 'dropped-frame'; detail: string }
  | { type: 'auth-failed'; detail: string }
  | { type: 'fragment-ack'; ack: FragmentAckType; timecode: number };

/** PIC's FRAGMENT_ACK_TYPE, in its order (0 = undefined). */
const ACK_TYPES = ['undefined', 'buffering', 'received', 'persisted', 'error', 'idle'] as const;
export type FragmentAckType = (typeof ACK_TYPES)[number];

const STREAM_ERROR = /Reported stream error\. Errored timecode: (\d+) Status: 0x([0-9a-fA-F]+)/;
const BUS_ERROR = /^ERROR: from element ([^:]+(?::[^:]+)*?): (.*)$/;
/** kvssink's TRACE line for every ack (its `gstkvs` logger is set to TRACE for exactly this line). */
const ACK = /\] Ack timestamp for (\d) is (\d+)/;
const DROPPED = /(Dropping frame with flag: \d+|Reported droppedF\w+ callback.*)/;
const AUTH =
  /(NOT_AUTHORIZED|AccessDenied|UnrecognizedClient|ExpiredToken|InvalidSignature|HTTP 40[13]\b|returned status code: 0x52000010)/i;

/** Parses one output line; undefined when the line carries no event. */
export function parseKvssinkLine(line: string): KvssinkEvent | undefined {
  const se = STREAM_ERROR.exec(line);
  if (se) {
    const status = parseInt(se[2]!, 16);
    return {
      type: 'stream-error',
      status,
      statusHex: `0x${status.toString(16)}`,
      timecode: Number(se[1]),
      ...describeKvsStatus(status),
    };
  }
  const ack = ACK.exec(line);
  if (ack) {
    return { type: 'fragment-ack', ack: ACK_TYPES[Number(ack[1])] ?? 'undefined', timecode: Number(ack[2]) };
  }
  const be = BUS_ERROR.exec(line.trim());
  if (be) return { type: 'bus-error', element: be[1]!, message: be[2]! };
  const dr = DROPPED.exec(line);
  if (dr) return { type: 'dropped-frame', detail: dr[1]! };
  if (AUTH.test(line)) return { type: 'auth-failed', detail: line.trim().slice(0, 300) };
  return undefined;
}
