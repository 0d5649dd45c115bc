import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ALL_FORMATS, EncodedPacketSink, FilePathSource, Input } from 'mediabunny';
import type { WireFrame } from '../../agent/bridge/wire.js';

const run = promisify(execFile);
const BIG = { maxBuffer: 256 * 1024 * 1024 };

export const FIXTURE_RAMP = '/work/shared/fixtures/chromium-call-ramp.mkv';

export interface ProbeStream {
  index: number;
  /** 'video', 'audio', … */
  codec_type: string;
  codec_name: string;
  start_time?: string;
  duration?: string;
  width?: number;
  height?: number;
  channels?: number;
  sample_rate?: string;
}
export interface ProbeResult {
  format: { duration?: string; format_name: string; start_time?: string };
  streams: ProbeStream[];
}

/** `ffprobe -show_format -show_streams` as JSON. */
export async function probe(file: string): Promise<ProbeResult> {
  const { stdout } = await run(
    'ffprobe',
    ['-v', 'error', '-show_format', '-show_streams', '-of', 'json', file],
    BIG,
  );
  return JSON.parse(stdout) as ProbeResult;
}

export interface ProbedFrame {
  ptsTime: number;
  keyFrame: boolean;
  width?: number;
  height?: number;
}

/** Decoded frames of one stream type (`v` or `a`), in output order, with their sizes for video. */
export async function probeFrames(file: string, stream: 'v' | 'a'): Promise<ProbedFrame[]> {
  const { stdout } = await run(
    'ffprobe',
    [
      '-v',
      'error',
      '-select_streams',
      stream,
      '-show_entries',
      'frame=pts_time,key_frame,width,height',
      '-of',
      'json',
      file,
    ],
    BIG,
  );
  const parsed = JSON.parse(stdout) as {
    frames: { pts_time?: string; key_frame: number; width?: number; height?: number }[];
  };
  return parsed.frames.map((f) => ({
    ptsTime: Number(f.pts_time),
    keyFrame: f.key_frame === 1,
    ...(f.width !== undefined ? { width: f.width, height: f.height } : {}),
  }));
}

/** What `ffmpeg -v error` prints while decoding the whole file; '' means it decoded cleanly. */
export async function decodeErrors(file: string): Promise<string> {
  const { stdout, stderr } = await run(
    'ffmpeg',
    ['-nostdin', '-v', 'error', '-i', file, '-f', 'null', '-'],
    BIG,
  );
  return (stdout + stderr).trim();
}

/** Presentation times (s) of the video key-frame packets. */
export async function keyframeTimes(file: string): Promise<number[]> {
  const { stdout } = await run(
    'ffprobe',
    ['-v', 'error', '-select_streams', 'v', '-show_entries', 'packet=pts_time,flags', '-of', 'json', file],
    BIG,
  );
  const parsed = JSON.parse(stdout) as { packets: { pts_time?: string; flags: string }[] };
  return parsed.packets.filter((p) => p.flags.includes('K')).map((p) => Number(p.pts_time));
}

/** Distinct `WxH` of the decoded video frames, in order of first appearance. */
export async function resolutions(file: string): Promise<string[]> {
  const frames = await probeFrames(file, 'v');
  return [...new Set(frames.map((f) => `${f.width}x${f.height}`))];
}

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
  const input = new Input({ source: new FilePathSource(file), formats: ALL_FORMATS });
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
