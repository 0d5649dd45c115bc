import { execFile } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { promisify } from 'node:util';
import { fragmentTimeline, type FragmentTimeline } from './fragmentTimeline.js';

const run = promisify(execFile);

/** One MPEG-TS segment the file sink wrote (`<stream>_<start, ISO basic>.ts`). */
export interface LocalSegment {
  file: string;
  /** Wall-clock start from the file name, epoch ms; undefined for a name of another shape. */
  startMs: number | undefined;
  durationS: number;
}

export interface LocalRecording {
  /** Directory relative to the recordings root, `/`-separated: also the id in URLs. */
  name: string;
  segments: number;
}

const NAME = /^[\w.-]+(?:\/[\w.-]+){0,2}$/;
const SEGMENT = /^[\w.-]+\.ts$/;

/** `…_20261202T182639.123Z.ts` → epoch ms. */
export function segmentStartMs(file: string): number | undefined {
  const m = /_(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\.\d+)?Z\.ts$/.exec(file);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${m[7] ?? ''}Z`);
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * The file sink's recordings under a directory, offered to the player as HLS: MPEG-TS segments are HLS
 * segments already, so a VOD playlist listing them (a discontinuity between files: each is a separate
 * gst run) plays them unchanged. Names are checked against a strict pattern, so no request leaves the root.
 */
export class LocalRecordings {
  readonly #durations = new Map<string, { mtimeMs: number; durationS: number }>();

  constructor(readonly root: string) {}

  async list(): Promise<LocalRecording[]> {
    const out: LocalRecording[] = [];
    const walk = async (dir: string, depth: number): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      const segments = entries.filter((e) => e.isFile() && SEGMENT.test(e.name)).length;
      const name = relative(this.root, dir).split(sep).join('/');
      if (segments > 0 && NAME.test(name)) out.push({ name, segments });
      if (depth < 3) {
        for (const e of entries) if (e.isDirectory()) await walk(join(dir, e.name), depth + 1);
      }
    };
    await walk(this.root, 0);
    return out.sort((a, b) => b.name.localeCompare(a.name));
  }

  /** The directory of a recording name, or undefined if the name is not one this class could have listed. */
  #dir(name: string): string | undefined {
    return NAME.test(name) && !name.split('/').includes('..')
      ? join(this.root, ...name.split('/'))
      : undefined;
  }

  /** A segment's path, or undefined for a name or file outside the recordings. */
  segmentPath(name: string, file: string): string | undefined {
    const dir = this.#dir(name);
    return dir && SEGMENT.test(file) ? join(dir, file) : undefined;
  }

  async segments(name: string): Promise<LocalSegment[] | undefined> {
    const dir = this.#dir(name);
    if (!dir) return undefined;
    const files = (await readdir(dir).catch(() => undefined))?.filter((f) => SEGMENT.test(f)).sort();
    if (!files) return undefined;
    const out: LocalSegment[] = [];
    for (const file of files) {
      const durationS = await this.#duration(join(dir, file));
      if (durationS > 0) out.push({ file, startMs: segmentStartMs(file), durationS });
    }
    return out;
  }

  async #duration(path: string): Promise<number> {
    const { mtimeMs } = await stat(path);
    const cached = this.#durations.get(path);
    if (cached?.mtimeMs === mtimeMs) return cached.durationS;
    const { stdout } = await run('ffprobe', [
      '-v',
      'error',
      '-show_entries',
      'format=duration',
      '-of',
      'csv=p=0',
      path,
    ]).catch(() => ({ stdout: '0' }));
    const durationS = Number(stdout.trim()) || 0;
    this.#durations.set(path, { mtimeMs, durationS });
    return durationS;
  }

  /** A VOD playlist of the segments, each at `uri(file)`. */
  static playlist(segments: readonly LocalSegment[], uri: (file: string) => string): string {
    const lines = [
      '#EXTM3U',
      '#EXT-X-VERSION:3',
      `#EXT-X-TARGETDURATION:${Math.max(1, ...segments.map((s) => Math.ceil(s.durationS)))}`,
      '#EXT-X-MEDIA-SEQUENCE:0',
      '#EXT-X-PLAYLIST-TYPE:VOD',
    ];
    segments.forEach((s, i) => {
      if (i > 0) lines.push('#EXT-X-DISCONTINUITY');
      if (s.startMs !== undefined)
        lines.push(`#EXT-X-PROGRAM-DATE-TIME:${new Date(s.startMs).toISOString()}`);
      lines.push(`#EXTINF:${s.durationS.toFixed(3)},`, uri(s.file));
    });
    lines.push('#EXT-X-ENDLIST');
    return `${lines.join('\n')}\n`;
  }

  /** The segments as the player's timeline (a segment per "fragment"; holes between runs are gaps). */
  static timeline(segments: readonly LocalSegment[]): FragmentTimeline {
    let cursor = segments[0]?.startMs ?? 0;
    return fragmentTimeline(
      segments.map((s) => {
        const producerMs = s.startMs ?? cursor;
        cursor = producerMs + s.durationS * 1000;
        return {
          number: s.file,
          producerMs,
          serverMs: producerMs,
          durationMs: Math.round(s.durationS * 1000),
          bytes: 0,
        };
      }),
    );
  }
}
