/** Small facts about Opus packets (RFC 6716 §3.1) and the Ogg/Matroska identification header (RFC 7845 §5.1). */

/** Duration of one Opus packet in µs from its TOC byte (and frame count byte for code 3), or null if malformed. */
export function opusPacketDurationUs(packet: Uint8Array): number | null {
  const toc = packet[0];
  if (toc === undefined) return null;
  const config = toc >> 3;
  let frameUs: number;
  if (config < 12) frameUs = [10_000, 20_000, 40_000, 60_000][config % 4]!;
  else if (config < 16) frameUs = config % 2 === 0 ? 10_000 : 20_000;
  else frameUs = [2_500, 5_000, 10_000, 20_000][config % 4]!;
  const code = toc & 3;
  let frames: number;
  if (code === 0) frames = 1;
  else if (code < 3) frames = 2;
  else {
    const countByte = packet[1];
    if (countByte === undefined) return null;
    frames = countByte & 0x3f;
  }
  const total = frameUs * frames;
  return total > 0 && total <= 120_000 ? total : null;
}

/** Channel count the packet was coded with (TOC stereo flag). */
export function opusPacketChannels(packet: Uint8Array): 1 | 2 {
  return ((packet[0] ?? 0) & 0x04) !== 0 ? 2 : 1;
}

/**
 * The OpusHead identification header Matroska keeps as CodecPrivate. Pre-skip 0: WebRTC packets carry no
 * encoder priming to hide, and a non-zero value would shift audio against video.
 */
export function opusHead(channels: 1 | 2, inputSampleRate = 48_000): Uint8Array {
  const head = new Uint8Array(19);
  head.set(new TextEncoder().encode('OpusHead'), 0);
  const view = new DataView(head.buffer);
  view.setUint8(8, 1); // version
  view.setUint8(9, channels);
  view.setUint16(10, 0, true); // pre-skip
  view.setUint32(12, inputSampleRate, true);
  view.setInt16(16, 0, true); // output gain
  view.setUint8(18, 0); // channel mapping family 0: mono/stereo
  return head;
}

/** One 20 ms CELT frame that decodes to silence (TOC 0xF8, mono): fills gaps where no audio arrived. */
export const OPUS_SILENCE_20MS = new Uint8Array([0xf8, 0xff, 0xfe]);
export const OPUS_SILENCE_DURATION_US = 20_000;

/** TOC bytes of CELT-only fullband mono packets (configs 31 … 28) by frame duration, longest first. */
const SILENCE_TOC: ReadonlyArray<readonly [durationUs: number, toc: number]> = [
  [20_000, 0xf8],
  [10_000, 0xf0],
  [5_000, 0xe8],
  [2_500, 0xe0],
];

/**
 * Silent packets that fill `durationUs` as closely as Opus frame sizes allow (2.5 ms steps, longest first):
 * what is left over is under 2.5 ms, for audiorate to fill. The CELT silence flag is the frame's first
 * symbol whatever its size, so the 20 ms frame's payload serves for every size.
 */
export function opusSilence(durationUs: number): Array<{ data: Uint8Array; durationUs: number }> {
  const packets: Array<{ data: Uint8Array; durationUs: number }> = [];
  let left = durationUs;
  for (const [frameUs, toc] of SILENCE_TOC) {
    while (left >= frameUs) {
      packets.push({ data: new Uint8Array([toc, 0xff, 0xfe]), durationUs: frameUs });
      left -= frameUs;
    }
  }
  return packets;
}
