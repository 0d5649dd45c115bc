import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { H264RtpPayload } from 'werift';
import { clipSpec, loadClip } from '../../../WebRTC/synthetic/clip.js';
import { MAX_PAYLOAD, packetizeH264 } from '../../../WebRTC/synthetic/h264Packetizer.js';

/**
 * RFC 6184 packetization checked against an independent depacketizer (werift's receiver side) on real x264
 * frames: every access unit comes back byte for byte, no packet is over budget, the marker ends each frame.
 */
test('packetized frames depacketize to the same NAL units', async () => {
  test.setTimeout(120_000);
  const dir = await mkdtemp(join(tmpdir(), 'synthetic-rtp-'));
  try {
    const clip = await loadClip(clipSpec(1280, 720, { frames: 60 }), dir);
    let fragmented = 0;
    for (const frame of clip.video) {
      const chunks = packetizeH264(frame.nalus);
      expect(chunks.every((c) => c.payload.length <= MAX_PAYLOAD)).toBe(true);
      expect(chunks.map((c) => c.marker)).toEqual(chunks.map((_, i) => i === chunks.length - 1));
      const out: Buffer[] = [];
      let fragment: Buffer | undefined;
      for (const c of chunks) {
        const p = H264RtpPayload.deSerialize(c.payload, fragment);
        fragment = p.fragment;
        if (p.fragment) fragmented++;
        if (p.payload) out.push(p.payload);
      }
      const expected = Buffer.concat(frame.nalus.flatMap((n) => [Buffer.from([0, 0, 0, 1]), n]));
      expect(Buffer.concat(out).equals(expected), `frame ${frame.index}`).toBe(true);
    }
    expect(fragmented, 'a 720p key frame is larger than one packet').toBeGreaterThan(0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
