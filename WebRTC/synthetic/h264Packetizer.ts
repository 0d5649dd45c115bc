/**
 * RFC 6184 packetization mode 1 (what Chromium negotiates): a NAL unit that fits goes alone in a packet,
 * a larger one is split into FU-A fragments. The marker bit is set on the last packet of the access unit.
 */
export interface RtpPayloadChunk {
  payload: Buffer;
  marker: boolean;
}

/** Payload bytes per RTP packet: a 1200-byte budget like libwebrtc's, leaving room for headers and SRTP. */
export const MAX_PAYLOAD = 1_100;

export function packetizeH264(nalus: readonly Buffer[], maxPayload = MAX_PAYLOAD): RtpPayloadChunk[] {
  const out: RtpPayloadChunk[] = [];
  for (const nalu of nalus) {
    if (nalu.length === 0) continue;
    if (nalu.length <= maxPayload) {
      out.push({ payload: nalu, marker: false });
      continue;
    }
    const header = nalu[0]!;
    const indicator = (header & 0xe0) | 28; // F + NRI of the NAL unit, type FU-A
    const type = header & 0x1f;
    const body = nalu.subarray(1);
    const step = maxPayload - 2;
    for (let at = 0; at < body.length; at += step) {
      const start = at === 0;
      const end = at + step >= body.length;
      const fuHeader = (start ? 0x80 : 0) | (end ? 0x40 : 0) | type;
      out.push({
        payload: Buffer.concat([Buffer.from([indicator, fuHeader]), body.subarray(at, at + step)]),
        marker: false,
      });
    }
  }
  if (out.length > 0) out[out.length - 1]!.marker = true;
  return out;
}
