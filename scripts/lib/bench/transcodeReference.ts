import { spawn } from 'node:child_process';
import { once } from 'node:events';

export interface TranscodeCost {
  pipeline: string;
  mediaSeconds: number;
  cpuSeconds: number;
  wallSeconds: number;
  cpuPerMediaSecond: number;
}

/**
 * The user's first prototype, as a reference: decode the H.264 and encode it again with x264 at its default
 * preset (medium, 2048 kbit/s) in GStreamer, on the same input the agent records. Runs as fast as it can;
 * CPU time (user + system of gst and its threads, from the shell's `times`) divided by the media duration
 * is CPU-s per media-second, independent of pacing. `repeat` passes of the file keep x264's start-up small.
 */
export async function measureTranscode(options: {
  videoFile: string;
  frames: number;
  fps: number;
  repeat?: number;
}): Promise<TranscodeCost> {
  const repeat = options.repeat ?? 3;
  const pipeline = 'filesrc ! matroskademux ! h264parse ! avdec_h264 ! videoconvert ! x264enc ! fakesink';
  // `times` prints the shell's, then its children's, user and system time.
  const script = [
    `for i in $(seq ${repeat}); do`,
    '  gst-launch-1.0 -q filesrc location="$1" ! matroskademux ! h264parse ! avdec_h264 ! videoconvert ! x264enc ! fakesink >/dev/null || exit 1',
    'done',
    'times',
  ].join('\n');
  const started = Date.now();
  const child = spawn('sh', ['-c', script, 'sh', options.videoFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`transcode reference failed (exit ${code}): ${err.trim().slice(-400)}`);
  const children = out.trim().split('\n').at(-1) ?? '';
  const cpuSeconds = children
    .trim()
    .split(/\s+/)
    .map(parseShellTime)
    .reduce((a, b) => a + b, 0);
  if (!(cpuSeconds > 0)) throw new Error(`could not read the transcode's CPU time from: ${out.trim()}`);
  const mediaSeconds = (options.frames / options.fps) * repeat;
  return {
    pipeline,
    mediaSeconds,
    cpuSeconds,
    wallSeconds: (Date.now() - started) / 1000,
    cpuPerMediaSecond: cpuSeconds / mediaSeconds,
  };
}

/** `1m2.345s` (sh's `times`) → seconds. */
export function parseShellTime(text: string): number {
  const m = /^(?:(\d+)m)?([\d.]+)s$/.exec(text);
  if (!m) throw new Error(`not a shell time: ${text}`);
  return Number(m[1] ?? 0) * 60 + Number(m[2]);
}
