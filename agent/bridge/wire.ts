/**
 * The binary format of one encoded frame on the bridge WebSocket (page worker → agent).
 *
 * Shared by the page's transform worker (which encodes) and the agent (which decodes), so it must stay
 * free of DOM and Node APIs. A fixed little-endian header keeps the per-frame cost to a few DataView calls;
 * the payload is the frame's bytes exactly as the RTCEncodedVideoFrame/AudioFrame held them.
 *
 * | offset | type | field |
 * |---|---|---|
 * | 0  | u8  | version (2) |
 * | 1  | u8  | kind: 1 video, 2 audio |
 * | 2  | u8  | flags: bit 0 key frame |
 * | 3  | u8  | codec: 1 H.264, 2 Opus, 0 anything else (rejected by the agent, counted) |
 * | 4  | u32 | RTP timestamp |
 * | 8  | f64 | receive time, Unix epoch milliseconds (converted in the worker) |
 * | 16 | u32 | SSRC |
 * | 20 | u16 | width (0 when unknown, e.g. on delta frames) |
 * | 22 | u16 | height |
 * | 24 | u32 | sequence number (see below) |
 * | 28 | u32 | payload length (must equal the bytes that follow) |
 * | 32 | f64 | capture time, Unix epoch ms as the worker's clock sees it (abs-capture-time); 0 when unknown |
 * | 40 | …   | payload |
 *
 * `seq`: one count per transform worker, i.e. per track of one viewer session. It is 0 on the first frame
 * sent after the worker's frame socket first opened, and from then on +1 for every frame the transform saw,
 * whether it was sent or skipped (socket backed up, closed or reconnecting). It does not restart when the
 * frame socket reconnects, so consecutive frames on the wire are exactly consecutive frames of the track
 * and a jump of n means n - 1 frames lost before the agent, across reconnects too. A new viewer session
 * (new workers, usually a new SSRC) starts again at 0. After skipping, the worker asks the master for a key
 * frame as soon as it sends again.
 */
export const WIRE_VERSION = 2;
export const FRAME_HEADER_BYTES = 40;
/** Frames bigger than this are refused: no sane 1080p H.264 frame comes near it. */
export const MAX_FRAME_PAYLOAD_BYTES = 4 * 1024 * 1024;

export type TrackKind = 'video' | 'audio';
export type FrameCodec = 'h264' | 'opus' | 'other';

export interface FrameHeader {
  kind: TrackKind;
  key: boolean;
  codec: FrameCodec;
  rtpTimestamp: number;
  receiveTimeMs: number;
  ssrc: number;
  width: number;
  height: number;
  seq: number;
  /**
   * When the master captured the frame, from the abs-capture-time RTP header extension (Chromium masters send
   * it once the viewer negotiates it), mapped to the worker's clock: audio and video on the sender's one clock.
   * Absent when the master does not send it.
   */
  captureTimeMs?: number;
}

export interface WireFrame {
  header: FrameHeader;
  payload: Uint8Array;
}

const KIND_CODES: Record<TrackKind, number> = { video: 1, audio: 2 };
const CODEC_CODES: Record<FrameCodec, number> = { other: 0, h264: 1, opus: 2 };

/** Maps a WebRTC mimeType (`video/H264`, `audio/opus`) to the codec field. */
export function codecFromMimeType(mimeType: string | undefined): FrameCodec {
  const m = (mimeType ?? '').toLowerCase();
  if (m === 'video/h264') return 'h264';
  if (m === 'audio/opus') return 'opus';
  return 'other';
}

export function encodeFrame(header: FrameHeader, payload: ArrayBuffer | Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(FRAME_HEADER_BYTES + payload.byteLength);
  encodeFrameInto(out, header, payload);
  return out;
}

/**
 * encodeFrame into the start of `out` (at least FRAME_HEADER_BYTES + the payload's length): the message is the
 * returned view. The page's worker reuses one buffer per track, since WebSocket.send copies what it is given:
 * one frame-sized allocation less per frame for the renderer to collect.
 */
export function encodeFrameInto(
  out: ArrayBuffer,
  header: FrameHeader,
  payload: ArrayBuffer | Uint8Array,
): Uint8Array {
  const body = payload instanceof Uint8Array ? payload : new Uint8Array(payload);
  const length = FRAME_HEADER_BYTES + body.byteLength;
  if (out.byteLength < length)
    throw new RangeError(`encodeFrameInto: ${length} bytes needed, ${out.byteLength} given`);
  const view = new DataView(out, 0, length);
  view.setUint8(0, WIRE_VERSION);
  view.setUint8(1, KIND_CODES[header.kind]);
  view.setUint8(2, header.key ? 1 : 0);
  view.setUint8(3, CODEC_CODES[header.codec]);
  view.setUint32(4, header.rtpTimestamp >>> 0, true);
  view.setFloat64(8, header.receiveTimeMs, true);
  view.setUint32(16, header.ssrc >>> 0, true);
  view.setUint16(20, Math.min(header.width, 0xffff), true);
  view.setUint16(22, Math.min(header.height, 0xffff), true);
  view.setUint32(24, header.seq >>> 0, true);
  view.setUint32(28, body.byteLength, true);
  view.setFloat64(32, header.captureTimeMs ?? 0, true);
  new Uint8Array(out, FRAME_HEADER_BYTES, body.byteLength).set(body);
  return new Uint8Array(out, 0, length);
}

/** Why a frame was refused: a closed set, so counters keyed by it stay bounded whatever a sender sends. */
export type FrameRejectCode =
  | 'short'
  | 'version'
  | 'kind'
  | 'codec'
  | 'receive-time'
  | 'capture-time'
  | 'length-mismatch'
  | 'empty'
  | 'too-large';

export type DecodeResult =
  { ok: true; frame: WireFrame } | { ok: false; code: FrameRejectCode; reason: string };

const reject = (code: FrameRejectCode, reason: string): DecodeResult => ({ ok: false, code, reason });

/** Decodes and validates one message; never throws, so a hostile or broken sender cannot crash the reader. */
export function decodeFrame(data: Uint8Array): DecodeResult {
  if (data.byteLength < FRAME_HEADER_BYTES) return reject('short', 'shorter than the frame header');
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const version = view.getUint8(0);
  if (version !== WIRE_VERSION) return reject('version', `unsupported wire version ${version}`);
  const kindCode = view.getUint8(1);
  const kind: TrackKind | undefined = kindCode === 1 ? 'video' : kindCode === 2 ? 'audio' : undefined;
  if (!kind) return reject('kind', `unknown track kind ${kindCode}`);
  const codecCode = view.getUint8(3);
  const codec: FrameCodec | undefined =
    codecCode === 1 ? 'h264' : codecCode === 2 ? 'opus' : codecCode === 0 ? 'other' : undefined;
  if (!codec) return reject('codec', `unknown codec ${codecCode}`);
  const receiveTimeMs = view.getFloat64(8, true);
  if (!Number.isFinite(receiveTimeMs) || receiveTimeMs <= 0) {
    return reject('receive-time', 'receive time is not a positive finite number');
  }
  const captureTimeMs = view.getFloat64(32, true);
  if (!Number.isFinite(captureTimeMs) || captureTimeMs < 0) {
    return reject('capture-time', 'capture time is not a finite number ≥ 0');
  }
  const length = view.getUint32(28, true);
  if (length !== data.byteLength - FRAME_HEADER_BYTES) {
    return reject(
      'length-mismatch',
      `payload length ${length} does not match ${data.byteLength - FRAME_HEADER_BYTES}`,
    );
  }
  if (length === 0) return reject('empty', 'empty payload');
  if (length > MAX_FRAME_PAYLOAD_BYTES) return reject('too-large', `payload of ${length} bytes is too large`);
  return {
    ok: true,
    frame: {
      header: {
        kind,
        key: (view.getUint8(2) & 1) === 1,
        codec,
        rtpTimestamp: view.getUint32(4, true),
        receiveTimeMs,
        ssrc: view.getUint32(16, true),
        width: view.getUint16(20, true),
        height: view.getUint16(22, true),
        seq: view.getUint32(24, true),
        ...(captureTimeMs > 0 ? { captureTimeMs } : {}),
      },
      payload: data.subarray(FRAME_HEADER_BYTES),
    },
  };
}
