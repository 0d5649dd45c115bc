import { execFile } from 'node:child_process';
import { basename } from 'node:path';
import { promisify } from 'node:util';
import { probe } from './mediaProbe.js';
import { escapeHtml, renderHtmlToPng } from './renderPng.js';

const run = promisify(execFile);

/** One recorded file on the recording's timeline (seconds from the first file's first video frame). */
export interface PlacedFile {
  path: string;
  /** The file's own first video timestamp (s). */
  ownStartS: number;
  /** Where its video starts after the file's start (`ffmpeg -ss` counts from the earliest stream). */
  videoOffsetS: number;
  atS: number;
  durationS: number;
}

export interface SheetFrame {
  /** Seconds from the start of the recording. */
  atS: number;
  file: string;
  width: number;
  height: number;
  png: Buffer;
}

export interface ContactSheetSummary {
  frames: number;
  everySeconds: number;
  resolutions: string[];
}

/**
 * Places segments on one timeline: their own timestamps when they follow each other (the file sink keeps one
 * timeline across runs), else back to back (e.g. clips that each start at 0).
 */
export async function placeFiles(files: readonly string[]): Promise<PlacedFile[]> {
  const probed: { path: string; start: number; duration: number; offset: number }[] = [];
  for (const path of files) {
    const info = await probe(path);
    const video = info.streams.find((s) => s.codec_type === 'video');
    if (!video) continue;
    const start = Number(video.start_time ?? info.format.start_time ?? 0);
    const duration = Number(video.duration ?? info.format.duration ?? 0);
    const offset = Math.max(0, start - Number(info.format.start_time ?? start));
    probed.push({ path, start, duration, offset });
  }
  const continuous = probed.every(
    (p, i) => i === 0 || p.start >= probed[i - 1]!.start + probed[i - 1]!.duration - 0.5,
  );
  const origin = probed[0]?.start ?? 0;
  let cursor = 0;
  return probed.map((p) => {
    const atS = continuous ? p.start - origin : cursor;
    cursor = atS + p.duration;
    return { path: p.path, ownStartS: p.start, videoOffsetS: p.offset, atS, durationS: p.duration };
  });
}

/** The picture size a PNG declares in its IHDR chunk. */
export function pngSize(png: Buffer): { width: number; height: number } {
  if (png.length < 24 || png.toString('latin1', 12, 16) !== 'IHDR') throw new Error('not a PNG');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

/**
 * The decoded frame at `offsetS` into a file. The input seek stops up to 5 s short and the rest is decoded:
 * an input seek into an MPEG-TS file's last GOP returns no frame at all (ffmpeg 5.1, measured on a 44.8 s
 * recording: -ss 42 gave a frame, -ss 42.9 after the last key frame at 42.83 none).
 */
export async function frameAt(path: string, offsetS: number): Promise<Buffer> {
  const decodedS = Math.min(offsetS, 5);
  const { stdout } = await run(
    'ffmpeg',
    [
      '-nostdin',
      '-v',
      'error',
      '-ss',
      (offsetS - decodedS).toFixed(3),
      '-i',
      path,
      '-ss',
      decodedS.toFixed(3),
      '-map',
      '0:v:0',
      '-frames:v',
      '1',
      '-f',
      'image2pipe',
      '-c:v',
      'png',
      'pipe:1',
    ],
    { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 },
  );
  if (stdout.length === 0) throw new Error(`no frame at ${offsetS.toFixed(3)} s in ${path}`);
  return stdout;
}

/** A frame every `everySeconds` across the files, at its own size (at most `maxFrames`: the interval grows). */
export async function sampleFrames(
  files: readonly string[],
  options: { everySeconds?: number; maxFrames?: number } = {},
): Promise<{ frames: SheetFrame[]; everySeconds: number }> {
  const placed = await placeFiles(files);
  const last = placed.at(-1);
  const total = last ? last.atS + last.durationS : 0;
  const maxFrames = options.maxFrames ?? 48;
  const everySeconds = Math.max(options.everySeconds ?? 2, Math.ceil(total / maxFrames));
  const frames: SheetFrame[] = [];
  for (let at = 0; at < total; at += everySeconds) {
    const file = placed.find((p) => at >= p.atS && at < p.atS + p.durationS);
    if (!file) continue; // between segments: the timeline shows that gap
    const png = await frameAt(file.path, at - file.atS + file.videoOffsetS);
    frames.push({ atS: at, file: file.path, ...pngSize(png), png });
  }
  return { frames, everySeconds };
}

function clock(seconds: number): string {
  const m = Math.floor(seconds / 60);
  const s = seconds - m * 60;
  return `${m}:${s.toFixed(1).padStart(4, '0')}`;
}

export function contactSheetHtml(
  frames: readonly SheetFrame[],
  options: { title: string; everySeconds: number; originMs?: number },
): string {
  const cells = frames
    .map((f) => {
      const wall =
        options.originMs !== undefined
          ? new Date(options.originMs + f.atS * 1000).toISOString().slice(11, 23)
          : '';
      return `<figure><img src="data:image/png;base64,${f.png.toString('base64')}" alt="">
        <figcaption><b>${clock(f.atS)}</b> ${wall ? `${wall} UTC ` : ''}<span>${f.width}x${f.height}</span>
        <small>${escapeHtml(basename(f.file))}</small></figcaption></figure>`;
    })
    .join('');
  return `<!doctype html><html><head><meta charset="utf-8"><style>
    body { margin: 0; font: 12px/1.3 system-ui, sans-serif; background: #fff; }
    #chart { display: inline-block; padding: 12px; width: 1240px; }
    h1 { font-size: 15px; margin: 0 0 8px; }
    .grid { display: grid; grid-template-columns: repeat(5, 240px); gap: 8px; }
    figure { margin: 0; }
    img { width: 240px; height: 135px; object-fit: contain; background: #000; display: block; }
    figcaption { display: flex; gap: 6px; flex-wrap: wrap; }
    figcaption span { color: #06c; }
    figcaption small { color: #888; width: 100%; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  </style></head><body><div id="chart"><h1>${escapeHtml(options.title)} — a frame every ${options.everySeconds} s</h1>
  <div class="grid">${cells}</div></div></body></html>`;
}

/** Writes `out` (PNG): a frame every few seconds of the recording with its time and resolution. */
export async function writeContactSheet(
  files: readonly string[],
  out: string,
  options: { title: string; everySeconds?: number; originMs?: number; executablePath?: string },
): Promise<ContactSheetSummary> {
  const { frames, everySeconds } = await sampleFrames(files, { everySeconds: options.everySeconds ?? 2 });
  if (frames.length === 0) throw new Error('the recording has no video frames to show');
  await renderHtmlToPng(
    contactSheetHtml(frames, {
      title: options.title,
      everySeconds,
      ...(options.originMs !== undefined ? { originMs: options.originMs } : {}),
    }),
    out,
    { ...(options.executablePath ? { executablePath: options.executablePath } : {}) },
  );
  return {
    frames: frames.length,
    everySeconds,
    resolutions: [...new Set(frames.map((f) => `${f.width}x${f.height}`))],
  };
}
