import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface StreamInfo {
  index: number;
  /** 'video', 'audio', 'data', … */
  codec_type: string;
  codec_name: string;
  start_time?: string;
  duration?: string;
  width?: number;
  height?: number;
  sample_rate?: string;
  channels?: number;
}

export interface ProbeResult {
  streams: StreamInfo[];
  format: { duration?: string; format_name: string; start_time?: string };
}

/** `ffprobe -show_streams -show_format` as JSON. Rejects if ffprobe cannot read the file. */
export async function probe(file: string): Promise<ProbeResult> {
  const { stdout } = await run(
    'ffprobe',
    ['-v', 'error', '-print_format', 'json', '-show_streams', '-show_format', file],
    {
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  return JSON.parse(stdout) as ProbeResult;
}

export interface VideoFrameInfo {
  key: boolean;
  ptsTime: number;
  width: number;
  height: number;
}

/** Every decoded video frame (`ffprobe -show_frames`): key flag, time and size. */
export async function probeVideoFrames(file: string): Promise<VideoFrameInfo[]> {
  const { stdout } = await run(
    'ffprobe',
    [
      '-v',
      'error',
      '-select_streams',
      'v:0',
      '-show_entries',
      'frame=key_frame,pts_time,width,height',
      '-of',
      'json',
      '-show_frames',
      file,
    ],
    { maxBuffer: 256 * 1024 * 1024 },
  );
  const frames = (JSON.parse(stdout) as { frames?: Array<Record<string, string | number>> }).frames ?? [];
  return frames.map((f) => ({
    key: Number(f.key_frame) === 1,
    ptsTime: Number(f.pts_time),
    width: Number(f.width),
    height: Number(f.height),
  }));
}

/** Number of packets in the first stream of `kind`. */
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
    { maxBuffer: 1024 * 1024 },
  );
  return Number(stdout.trim().split('\n')[0] ?? 0);
}

/** What `ffmpeg -v error` prints while decoding the whole file: empty means a clean decode. */
export async function decodeErrors(file: string): Promise<string[]> {
  const { stderr } = await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', file, '-f', 'null', '-'], {
    maxBuffer: 64 * 1024 * 1024,
  });
  return stderr.split('\n').filter((l) => l.trim().length > 0);
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

/** Describes every segment the file sink wrote in `dir`, in order, the way the demo reports it. */
export async function describeRecording(dir: string): Promise<RecordingDescription> {
  const files = (await readdir(dir))
    .filter((f) => f.endsWith('.ts'))
    .sort()
    .map((f) => join(dir, f));
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
  let gaps: number[] = [];
  for (const file of files) {
    const info = await probe(file);
    out.durationSeconds = (out.durationSeconds ?? 0) + Number(info.format.duration ?? 0);
    for (const s of info.streams) {
      const name = `${s.codec_type}:${s.codec_name}`;
      if (!out.streams.includes(name)) out.streams.push(name);
    }
    const frames = await probeVideoFrames(file);
    out.videoFrames += frames.length;
    out.audioFrames += await countPackets(file, 'a').catch(() => 0);
    const keys = frames.filter((f) => f.key);
    out.keyFrames += keys.length;
    gaps = gaps.concat(keys.slice(1).map((k, i) => k.ptsTime - keys[i]!.ptsTime));
    for (const f of frames) {
      const r = `${f.width}x${f.height}`;
      if (out.resolutions.at(-1) !== r) out.resolutions.push(r);
    }
    out.decodeErrors.push(...(await decodeErrors(file)));
  }
  if (gaps.length) {
    out.maxKeyFrameGapSeconds = Math.max(...gaps);
    out.meanKeyFrameGapSeconds = gaps.reduce((a, b) => a + b, 0) / gaps.length;
  }
  return out;
}
