/** Just enough H.264 Annex B parsing to describe a stream: find the SPS and name the codec (RFC 6381). */

/** Yields each NAL unit's bytes (without start code) in an Annex B buffer. */
export function* annexBNalUnits(data: Uint8Array): Generator<Uint8Array> {
  let start = -1;
  let i = 0;
  while (i + 2 < data.length) {
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
      if (start >= 0) {
        // A 4-byte start code leaves one zero byte at the end of the previous unit.
        let end = i;
        if (end > start && data[end - 1] === 0) end--;
        yield data.subarray(start, end);
      }
      i += 3;
      start = i;
    } else {
      i++;
    }
  }
  if (start >= 0 && start < data.length) yield data.subarray(start);
}

/** `avc1.PPCCLL` from the first SPS in an Annex B access unit, or null if it has none. */
export function avcCodecString(accessUnit: Uint8Array): string | null {
  for (const nal of annexBNalUnits(accessUnit)) {
    if (((nal[0] ?? 0) & 0x1f) === 7 && nal.length >= 4) {
      const hex = (b: number) => b.toString(16).padStart(2, '0').toUpperCase();
      return `avc1.${hex(nal[1]!)}${hex(nal[2]!)}${hex(nal[3]!)}`;
    }
  }
  return null;
}
