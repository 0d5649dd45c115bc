/**
 * Codec orders for the viewer's recvonly transceivers. The viewer is the offerer, so its preferences decide:
 * without them a Chromium master picks VP8. H.264 is recorded untouched, so it is the only video codec
 * offered; 42e01f (Constrained Baseline 3.1) first because every browser encoder produces it.
 */

const PREFERRED_H264_PROFILE = '42e01f';

function fmtp(codec: RTCRtpCodec): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (codec.sdpFmtpLine ?? '').split(';')) {
    const [k, v] = part.split('=');
    if (k && v !== undefined) out.set(k.trim().toLowerCase(), v.trim().toLowerCase());
  }
  return out;
}

export class CodecUnavailableError extends Error {
  readonly code = 'CODEC_UNAVAILABLE';
  override readonly name = 'CodecUnavailableError';
}

/**
 * H.264 with packetization-mode=1, 42e01f first, then the other profiles in the browser's order; plus RTX
 * (retransmission, not a media codec) so lost packets can be recovered instead of costing a key frame.
 */
export function videoCodecPreferences(available: readonly RTCRtpCodec[]): RTCRtpCodec[] {
  const h264 = available.filter(
    (c) => c.mimeType.toLowerCase() === 'video/h264' && fmtp(c).get('packetization-mode') === '1',
  );
  if (h264.length === 0) {
    throw new CodecUnavailableError('this browser cannot receive H.264 with packetization-mode=1');
  }
  const preferred = h264.filter((c) => fmtp(c).get('profile-level-id') === PREFERRED_H264_PROFILE);
  const others = h264.filter((c) => !preferred.includes(c));
  const rtx = available.filter((c) => c.mimeType.toLowerCase() === 'video/rtx');
  return [...preferred, ...others, ...rtx];
}

/** Opus first, then whatever else the browser offers (the agent rejects non-Opus audio visibly). */
export function audioCodecPreferences(available: readonly RTCRtpCodec[]): RTCRtpCodec[] {
  const opus = available.filter((c) => c.mimeType.toLowerCase() === 'audio/opus');
  return [...opus, ...available.filter((c) => !opus.includes(c))];
}

/** Whether an SDP answer accepted H.264 video (a rejected m-line has port 0). */
export function answerHasH264Video(sdp: string): boolean {
  const sections = sdp.split(/\r?\nm=/).slice(1);
  const video = sections.find((s) => s.startsWith('video '));
  if (!video) return false;
  if (/^video 0 /.test(video)) return false;
  return /a=rtpmap:\d+ H264\/90000/i.test(video);
}
