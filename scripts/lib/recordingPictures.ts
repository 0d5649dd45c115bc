import { join } from 'node:path';
import { writeContactSheet } from './contactSheet.js';
import { recordingTimeline, writeTimelinePng, type Unit } from './recordingTimeline.js';

export interface RecordingPictures {
  sheet: string;
  sheetFrames: number;
  resolutions: string[];
  timeline: string;
  /** Per track, e.g. "video 0, audio 1 (120 ms)". */
  gaps: string;
}

/**
 * The two pictures written next to a recording: `contact-sheet.png` (a frame every few seconds with its time
 * and resolution) and `timeline.png` (key frames, fragments or segments, and gaps per track).
 */
export async function writeRecordingPictures(
  files: readonly string[],
  dir: string,
  options: { title: string; fragments?: readonly Unit[]; originMs?: number },
): Promise<RecordingPictures> {
  const sheet = join(dir, 'contact-sheet.png');
  const summary = await writeContactSheet(files, sheet, {
    title: options.title,
    ...(options.originMs !== undefined ? { originMs: options.originMs } : {}),
  });
  const timeline = join(dir, 'timeline.png');
  const t = await recordingTimeline(files, options.fragments ? { fragments: options.fragments } : {});
  await writeTimelinePng(t, timeline, { title: options.title });
  const gaps = t.tracks
    .map((track) => {
      const longest = Math.max(0, ...track.gaps.map((g) => g.toS - g.fromS));
      return `${track.kind} ${track.gaps.length}${track.gaps.length ? ` (longest ${(longest * 1000).toFixed(0)} ms)` : ''}`;
    })
    .join(', ');
  return { sheet, sheetFrames: summary.frames, resolutions: summary.resolutions, timeline, gaps };
}
