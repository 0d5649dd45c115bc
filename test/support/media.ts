import { resolve } from 'node:path';
import { EncodedPacketSink, FilePathSource, Input, MATROSKA, WEBM } from 'mediabunny';
import { pino } from 'pino';
import type { WireFrame } from '../../agent/bridge/wire.js';
import { MatroskaStreamMuxer, type MatroskaStreamMuxerOptions } from '../../agent/media/muxer.js';
import { GstProcess, type GstProcessOptions } from '../../agent/sink/gstProcess.js';
import { pipelineInputs } from '../../agent/sink/pipeline.js';
import { probeFrames } from '../../scripts/lib/mediaProbe.js';

/**
 * A real call as the viewer page's transform workers forwarded it (H.264 Annex B + Opus, ~30 s, the whole
 * start-of-call resolution ramp 320x180 → … → 1280x720), recorded with the project's own stack by
 * `npm run record-fixture` and committed in the repository (test/fixtures/README.md).
 */
export const FIXTURE_RAMP = resolve(import.meta.dirname, '../fixtures/chromium-call-ramp.mkv');

/** The ramp's steps, in order: every one of them is in FIXTURE_RAMP. */
export const RAMP_RESOLUTIONS = ['320x180', '480x270', '640x360', '960x540', '1280x720'] as const;

export interface MediaPacket {
  kind: 'video' | 'audio';
  key: boolean;
  timestampUs: number;
  data: Uint8Array;
  width: number;
  height: number;
}

/** Every packet of a Matroska/WebM file (video and audio), merged in timestamp order; video sizes from ffprobe. */
export async function readPackets(file: string): Promise<MediaPacket[]> {
  const input = new Input({ source: new FilePathSource(file), formats: [MATROSKA, WEBM] });
  try {
    const out: MediaPacket[] = [];
    const sizes = await probeFrames(file, 'v');
    const video = await input.getPrimaryVideoTrack();
    if (video) {
      let i = 0;
      for await (const p of new EncodedPacketSink(video).packets()) {
        const size = sizes[i++];
        const key = p.type === 'key';
        out.push({
          kind: 'video',
          key,
          timestampUs: Math.round(p.timestamp * 1e6),
          data: p.data,
          // Like the browser: width/height only on key frames.
          width: key ? (size?.width ?? 0) : 0,
          height: key ? (size?.height ?? 0) : 0,
        });
      }
    }
    const audio = await input.getPrimaryAudioTrack();
    if (audio) {
      for await (const p of new EncodedPacketSink(audio).packets()) {
        out.push({
          kind: 'audio',
          key: true,
          timestampUs: Math.round(p.timestamp * 1e6),
          data: p.data,
          width: 0,
          height: 0,
        });
      }
    }
    return out.sort((a, b) => a.timestampUs - b.timestampUs);
  } finally {
    input.dispose();
  }
}

/**
 * Turns packets into what the bridge would deliver: RTP timestamps with the given 32-bit offsets (video near 2^32
 * so it wraps), receive times = `receiveStartMs` + media time + `jitterMs(i)`, SSRCs and sequence numbers.
 */
export function toWireFrames(
  packets: MediaPacket[],
  options: {
    videoRtpStart?: number;
    audioRtpStart?: number;
    receiveStartMs?: number;
    jitterMs?: (i: number) => number;
  } = {},
): WireFrame[] {
  const videoStart = options.videoRtpStart ?? 2 ** 32 - 90_000 * 5;
  const audioStart = options.audioRtpStart ?? 123_456_789;
  const t0 = options.receiveStartMs ?? Date.now();
  const seq = { video: 0, audio: 0 };
  return packets.map((p, i) => {
    const rate = p.kind === 'video' ? 90 : 48;
    const start = p.kind === 'video' ? videoStart : audioStart;
    return {
      header: {
        kind: p.kind,
        key: p.key,
        codec: p.kind === 'video' ? 'h264' : 'opus',
        rtpTimestamp: (start + Math.round((p.timestampUs / 1000) * rate)) % 2 ** 32,
        receiveTimeMs: t0 + p.timestampUs / 1000 + (options.jitterMs?.(i) ?? 0),
        ssrc: p.kind === 'video' ? 0x1234 : 0x5678,
        width: p.width,
        height: p.height,
        seq: seq[p.kind]++,
      },
      payload: p.data,
    };
  });
}

/**
 * What every pipeline test starts with: a running gst-launch reading the muxer's streams (video on stdin, audio
 * on fd 3 when `hasAudio`) and a muxer (not yet started) writing into it, both logging nowhere.
 */
export async function gstWithMuxer(
  gstOptions: Omit<GstProcessOptions, 'logger' | 'inputs'>,
  muxerOptions: Omit<MatroskaStreamMuxerOptions, 'outputs' | 'logger'> & { hasAudio: boolean },
): Promise<{ gst: GstProcess; muxer: MatroskaStreamMuxer }> {
  const logger = pino({ level: 'silent' });
  const { hasAudio, ...options } = muxerOptions;
  const gst = new GstProcess({ ...gstOptions, inputs: pipelineInputs({ hasAudio }), logger });
  await gst.start();
  const outputs = { video: gst.input(0), audio: hasAudio ? gst.input(1) : undefined };
  return { gst, muxer: new MatroskaStreamMuxer({ ...options, outputs, logger }) };
}

/** gst args that keep the muxer's streams as they come: `<base>.video.mkv` and `<base>.audio.mkv`. */
export function captureArgs(base: string, hasAudio = true): string[] {
  const capture = (fd: number, track: string) => [
    'fdsrc',
    `fd=${fd}`,
    '!',
    'filesink',
    `location=${base}.${track}.mkv`,
  ];
  return [...capture(0, 'video'), ...(hasAudio ? capture(3, 'audio') : [])];
}
