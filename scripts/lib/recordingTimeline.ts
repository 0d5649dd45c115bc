import { execFile } from 'node:child_process';
import { basename } from 'node:path';
import { promisify } from 'node:util';
import { placeFiles } from './contactSheet.js';
import { escapeHtml, renderHtmlToPng } from './renderPng.js';

const run = promisify(execFile);
const BIG = { maxBuffer: 256 * 1024 * 1024 };

/** A hole in a track longer than this is a gap (video frames come up to ~200 ms apart at the bottom of a ramp). */
export const GAP_SECONDS = { video: 0.5, audio: 0.1 } as const;

export interface Span {
  fromS: number;
  toS: number;
}

export interface TrackTimeline {
  kind: 'video' | 'audio';
  packets: number;
  /** Where the track has media; the holes between spans are the gaps. */
  spans: Span[];
  gaps: Span[];
  /** Video only: key frames, and the resolution at each key frame where it changes. */
  keyFrames: number[];
  resolutions: { atS: number; size: string }[];
}

export interface Unit extends Span {
  label: string;
}

export interface RecordingTimeline {
  durationS: number;
  tracks: TrackTimeline[];
  /** KVS fragments (kvssink) or the file sink's segments. */
  units: Unit[];
  unitKind: 'fragment' | 'segment';
}

async function packetTimes(
  path: string,
  stream: 'v' | 'a',
): Promise<{ t: number; key: boolean; dur: number }[]> {
  const { stdout } = await run(
    'ffprobe',
    [
      '-v',
      'error',
      '-select_streams',
      stream,
      '-show_entries',
      'packet=pts_time,duration_time,flags',
      '-of',
      'json',
      path,
    ],
    BIG,
  );
  const parsed = JSON.parse(stdout) as {
    packets?: { pts_time?: string; duration_time?: string; flags?: string }[];
  };
  return (parsed.packets ?? [])
    .filter((p) => p.pts_time !== undefined)
    .map((p) => ({
      t: Number(p.pts_time),
      key: (p.flags ?? '').includes('K'),
      dur: Number(p.duration_time ?? 0),
    }));
}

/** Width x height at each key frame, decoding key frames only. */
async function keyFrameSizes(path: string): Promise<{ t: number; size: string }[]> {
  const { stdout } = await run(
    'ffprobe',
    [
      '-v',
      'error',
      '-skip_frame',
      'nokey',
      '-select_streams',
      'v',
      '-show_entries',
      'frame=pts_time,width,height',
      '-of',
      'json',
      path,
    ],
    BIG,
  );
  const parsed = JSON.parse(stdout) as { frames?: { pts_time?: string; width?: number; height?: number }[] };
  return (parsed.frames ?? []).map((f) => ({ t: Number(f.pts_time), size: `${f.width}x${f.height}` }));
}

/** Spans of a sorted series of times with their durations; a hole over `gapS` splits a span. */
export function spansOf(
  times: readonly { t: number; dur: number }[],
  gapS: number,
): { spans: Span[]; gaps: Span[] } {
  const spans: Span[] = [];
  for (const { t, dur } of times) {
    const last = spans.at(-1);
    if (last && t - last.toS <= gapS) last.toS = Math.max(last.toS, t + dur);
    else spans.push({ fromS: t, toS: t + dur });
  }
  const gaps = spans.slice(1).map((s, i) => ({ fromS: spans[i]!.toS, toS: s.fromS }));
  return { spans, gaps };
}

/**
 * The recording's tracks on one timeline (seconds from its first video frame): media spans, gaps, key
 * frames and resolution changes per track, and the fragments (or segments) they were stored in.
 */
export async function recordingTimeline(
  files: readonly string[],
  options: { fragments?: readonly Unit[] } = {},
): Promise<RecordingTimeline> {
  const placed = await placeFiles(files);
  const collect = {
    video: [] as { t: number; dur: number; key: boolean }[],
    audio: [] as { t: number; dur: number; key: boolean }[],
  };
  const sizes: { t: number; size: string }[] = [];
  for (const f of placed) {
    const shift = f.atS - f.ownStartS;
    for (const p of await packetTimes(f.path, 'v')) collect.video.push({ ...p, t: p.t + shift });
    for (const p of await packetTimes(f.path, 'a')) collect.audio.push({ ...p, t: p.t + shift });
    for (const s of await keyFrameSizes(f.path)) sizes.push({ t: s.t + shift, size: s.size });
  }
  const tracks: TrackTimeline[] = (['video', 'audio'] as const).map((kind) => {
    const times = collect[kind].sort((a, b) => a.t - b.t);
    const { spans, gaps } = spansOf(times, GAP_SECONDS[kind]);
    const resolutions: { atS: number; size: string }[] = [];
    if (kind === 'video') {
      for (const s of sizes.sort((a, b) => a.t - b.t)) {
        if (resolutions.at(-1)?.size !== s.size) resolutions.push({ atS: s.t, size: s.size });
      }
    }
    return {
      kind,
      packets: times.length,
      spans,
      gaps,
      keyFrames: kind === 'video' ? times.filter((p) => p.key).map((p) => p.t) : [],
      resolutions,
    };
  });
  const durationS = Math.max(0, ...tracks.flatMap((t) => t.spans.map((s) => s.toS)));
  const units: Unit[] = options.fragments
    ? [...options.fragments]
    : placed.map((f) => ({ fromS: f.atS, toS: f.atS + f.durationS, label: basename(f.path) }));
  return { durationS, tracks, units, unitKind: options.fragments ? 'fragment' : 'segment' };
}

const WIDTH = 1200;
const LEFT = 120;

export function timelineHtml(t: RecordingTimeline, title: string): string {
  const span = Math.max(t.durationS, ...t.units.map((u) => u.toS), 1);
  const x = (s: number): number => LEFT + ((WIDTH - LEFT - 10) * s) / span;
  const lane = (y: number, label: string): string =>
    `<text x="4" y="${y + 15}" class="label">${escapeHtml(label)}</text><rect x="${LEFT}" y="${y}" width="${WIDTH - LEFT - 10}" height="22" class="lane"/>`;
  const parts: string[] = [];
  let y = 34;
  parts.push(lane(y, `${t.unitKind}s (${t.units.length})`));
  t.units.forEach((u, i) => {
    parts.push(
      `<rect x="${x(u.fromS)}" y="${y + 3}" width="${Math.max(1, x(u.toS) - x(u.fromS) - 1)}" height="16" class="unit${i % 2}"><title>${escapeHtml(u.label)}</title></rect>`,
    );
  });
  for (const track of t.tracks) {
    y += 40;
    parts.push(lane(y, `${track.kind} (${track.gaps.length} gaps)`));
    for (const s of track.spans) {
      parts.push(
        `<rect x="${x(s.fromS)}" y="${y + 3}" width="${Math.max(1, x(s.toS) - x(s.fromS))}" height="16" class="${track.kind}"/>`,
      );
    }
    for (const g of track.gaps) {
      parts.push(
        `<rect x="${x(g.fromS)}" y="${y - 2}" width="${Math.max(2, x(g.toS) - x(g.fromS))}" height="26" class="gap"/>` +
          `<text x="${x(g.fromS)}" y="${y + 36}" class="gaplabel">${((g.toS - g.fromS) * 1000).toFixed(0)} ms</text>`,
      );
    }
    for (const k of track.keyFrames)
      parts.push(`<line x1="${x(k)}" x2="${x(k)}" y1="${y}" y2="${y + 22}" class="key"/>`);
    for (const r of track.resolutions) {
      parts.push(`<text x="${x(r.atS) + 2}" y="${y - 3}" class="res">${escapeHtml(r.size)}</text>`);
    }
  }
  y += 50;
  for (let s = 0; s <= span; s += Math.max(1, Math.ceil(span / 12))) {
    parts.push(
      `<line x1="${x(s)}" x2="${x(s)}" y1="28" y2="${y - 14}" class="grid"/><text x="${x(s)}" y="${y}" class="tick">${s} s</text>`,
    );
  }
  return `<!doctype html><html><head><meta charset="utf-8"><style>
    body { margin: 0; background: #fff; font-family: system-ui, sans-serif; }
    #chart { display: inline-block; padding: 8px; }
    .label { font-size: 12px; fill: #333; } .tick { font-size: 11px; fill: #666; text-anchor: middle; }
    .lane { fill: #f2f2f2; } .unit0 { fill: #9ab; } .unit1 { fill: #789; }
    .video { fill: #4e79a7; } .audio { fill: #59a14f; } .gap { fill: #e15759; }
    .gaplabel { font-size: 10px; fill: #e15759; } .key { stroke: #fff; stroke-width: 1.5; }
    .res { font-size: 10px; fill: #06c; } .grid { stroke: #ddd; stroke-dasharray: 2 3; }
    h1 { font-size: 14px; margin: 0 0 4px; }
  </style></head><body><div id="chart"><h1>${escapeHtml(title)} — key frames (white ticks), gaps (red)</h1>
  <svg width="${WIDTH}" height="${y + 8}" xmlns="http://www.w3.org/2000/svg">${parts.join('')}</svg></div></body></html>`;
}

export async function writeTimelinePng(
  timeline: RecordingTimeline,
  out: string,
  options: { title: string; executablePath?: string },
): Promise<void> {
  await renderHtmlToPng(timelineHtml(timeline, options.title), out, {
    ...(options.executablePath ? { executablePath: options.executablePath } : {}),
  });
}
