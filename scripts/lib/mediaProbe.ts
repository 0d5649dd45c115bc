import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * ffprobe/ffmpeg helpers shared by the demo report, the benchmark and the tests: recordings are judged by
 * what a decoder sees (codecs, frames, key frames, decode errors), never by file size.
 */
const run = promisify(execFile);
const BIG = { maxBuffer: 256 * 1024 * 1024 };

export interface ProbeStream {
  index: number;
  /** 'video', 'audio', 'data', … */
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

/** `ffprobe -show_format -show_streams` as JSON; rejects if ffprobe cannot read the file. */
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
    frames?: { pts_time?: string; key_frame: number; width?: number; height?: number }[];
  };
  return (parsed.frames ?? []).map((f) => ({
    ptsTime: Number(f.pts_time),
    keyFrame: f.key_frame === 1,
    ...(f.width !== undefined ? { width: f.width, height: f.height } : {}),
  }));
}

/** Number of packets in the first stream of `kind` (0 when there is none). */
export async function countPackets(file: string, kind: 'v' | 'a'): Promise<number> {
  const { stdout } = await run(
    'ffprobe',
    [
      '-v',
      'error',
      '-select_streams',
      `${kind}:0`,
      '-count_packets',
      '-show_entries',
      'stream=nb_read_packets',
      '-of',
      'csv=p=0',
      file,
    ],
    BIG,
  );
  return Number(stdout.trim().split('\n')[0] || 0);
}

/**
 * What `ffmpeg -v error` prints while decoding every frame of the file; '' means it decoded cleanly.
 * Frames keep their own timestamps (`-fps_mode passthrough -enc_time_base -1`): by default ffmpeg maps
 * them onto a 1/30 s grid for the null output, and WebRTC's variable frame timing (32–35 ms between frames
 * once stored in whole ms, as in KVS) then makes two frames share a grid slot, which ffmpeg reports as
 * "non monotonically increasing dts" although the file is fine. Truly repeated or backward timestamps are
 * still reported, as are all decoder errors.
 */
export async function decodeErrors(file: string): Promise<string> {
  const { stdout, stderr } = await run(
    'ffmpeg',
    [
      '-nostdin',
      '-v',
      'error',
      '-i',
      file,
      '-fps_mode',
      'passthrough',
      '-enc_time_base',
      '-1',
      '-f',
      'null',
      '-',
    ],
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
  const parsed = JSON.parse(stdout) as { packets?: { pts_time?: string; flags: string }[] };
  return (parsed.packets ?? []).filter((p) => p.flags.includes('K')).map((p) => Number(p.pts_time));
}

/** Distinct `WxH` of the decoded video frames, in order of first appearance. */
export async function resolutions(file: string): Promise<string[]> {
  const frames = await probeFrames(file, 'v');
  return [...new Set(frames.map((f) => `${f.width}x${f.height}`))];
}

export interface RecordingDescription {
  files: string[];
  streams: string[];
  durationSeconds: number | null;
  videoFrames: number;
  audioFrames: number;
  keyFrames: number;
  maxKeyFrameGapSeconds: number | null;
  meanKeyFrameGapSeconds: number | null;
  resolutions: string[];
  decodeErrors: string[];
}

/** The MPEG-TS segments the file sink wrote in `dir`, oldest first (names sort by start time). */
export async function segmentsIn(dir: string): Promise<string[]> {
  return (await readdir(dir))
    .filter((f) => f.endsWith('.ts'))
    .sort()
    .map((f) => join(dir, f));
}

/** Describes recorded files (segments in order, or a KVS clip) the way the demo reports them. */
export async function describeRecording(files: string[]): Promise<RecordingDescription> {
  const out: RecordingDescription = {
    files,
    streams: [],
    durationSeconds: null,
    videoFrames: 0,
    audioFrames: 0,
    keyFrames: 0,
    maxKeyFrameGapSeconds: null,
    meanKeyFrameGapSeconds: null,
    resolutions: [],
    decodeErrors: [],
  };
  const gaps: number[] = [];
  for (const file of files) {
    const info = await probe(file);
    out.durationSeconds = (out.durationSeconds ?? 0) + Number(info.format.duration ?? 0);
    for (const s of info.streams) {
      const name = `${s.codec_type}:${s.codec_name}`;
      if (!out.streams.includes(name)) out.streams.push(name);
    }
    out.videoFrames += (await probeFrames(file, 'v')).length;
    out.audioFrames += await countPackets(file, 'a');
    const keys = await keyframeTimes(file);
    out.keyFrames += keys.length;
    gaps.push(...keys.slice(1).map((k, i) => k - keys[i]!));
    for (const r of await resolutions(file)) if (!out.resolutions.includes(r)) out.resolutions.push(r);
    const errors = await decodeErrors(file);
    if (errors) out.decodeErrors.push(...errors.split('\n'));
  }
  if (gaps.length) {
    out.maxKeyFrameGapSeconds = Math.max(...gaps);
    out.meanKeyFrameGapSeconds = gaps.reduce((a, b) => a + b, 0) / gaps.length;
  }
  return out;
}
