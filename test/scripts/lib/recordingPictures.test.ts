import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from '@playwright/test';
import { frameAt, placeFiles, pngSize, sampleFrames } from '../../../scripts/lib/contactSheet.js';
import { probe } from '../../../scripts/lib/mediaProbe.js';
import { writeRecordingPictures } from '../../../scripts/lib/recordingPictures.js';
import { recordingTimeline } from '../../../scripts/lib/recordingTimeline.js';

/**
 * The demo's pictures from real segments: two MPEG-TS files on one timeline, as the file sink writes them
 * (640x360 for 6 s, then 1280x720 for 5 s after a 0.8 s hole), the second with a 1 s hole in its audio.
 */
const run = promisify(execFile);
let dir: string;
let files: string[];

test.beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pictures-'));
  files = [join(dir, 'a.ts'), join(dir, 'b.ts')];
  const x264 = ['-c:v', 'libx264', '-g', '30', '-bf', '0', '-c:a', 'aac', '-f', 'mpegts'];
  await run('ffmpeg', [
    ...['-nostdin', '-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30:duration=6'],
    ...['-f', 'lavfi', '-i', 'sine=duration=6', ...x264, files[0]!],
  ]);
  // Audio with the samples of 2–3 s left out, their timestamps kept: a 1 s hole.
  await run('ffmpeg', [
    ...['-nostdin', '-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30:duration=5'],
    ...['-f', 'lavfi', '-i', 'sine=duration=5'],
    '-filter_complex',
    "[1:a]aselect='not(between(t,2,3))'[a]",
    ...['-map', '0:v', '-map', '[a]', '-output_ts_offset', '6.8', ...x264, files[1]!],
  ]);
});

test.afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('segments are placed on their own timeline, and frames are sampled every 2 s at their own size', async () => {
  const placed = await placeFiles(files);
  expect(placed.map((p) => Math.round(p.atS * 10) / 10)).toEqual([0, 6.8]);
  const { frames, everySeconds } = await sampleFrames(files);
  expect(everySeconds).toBe(2);
  // 0, 2, 4 in the first file; 6 falls in the hole; 8, 10 in the second.
  expect(frames.map((f) => [f.atS, `${f.width}x${f.height}`])).toEqual([
    [0, '640x360'],
    [2, '640x360'],
    [4, '640x360'],
    [8, '1280x720'],
    [10, '1280x720'],
  ]);
});

test('a frame is found in the last GOP of a file too (an input seek there alone finds none)', async () => {
  // a.ts: 6 s with a key frame every second; 5.2 and 5.9 s lie after the last one.
  for (const atS of [0, 4.5, 5.2, 5.9]) {
    expect(pngSize(await frameAt(files[0]!, atS)), `frame at ${atS} s`).toEqual({ width: 640, height: 360 });
  }
});

test('the timeline finds the holes per track, key frames and the resolution change', async () => {
  const t = await recordingTimeline(files);
  const [video, audio] = t.tracks;
  expect(t.unitKind).toBe('segment');
  expect(t.units).toHaveLength(2);
  expect(video!.keyFrames.length).toBe(11); // every 30 frames
  expect(video!.resolutions.map((r) => r.size)).toEqual(['640x360', '1280x720']);
  // Between the files (0.8 s less the muxers' start delays) and, in audio, the 1 s hole of the second file.
  const lengths = (gaps: { fromS: number; toS: number }[]) => gaps.map((g) => g.toS - g.fromS);
  expect(lengths(video!.gaps)).toHaveLength(1);
  expect(lengths(video!.gaps)[0]).toBeCloseTo(0.78, 1);
  expect(lengths(audio!.gaps)).toHaveLength(2);
  expect(lengths(audio!.gaps)[0]).toBeCloseTo(0.78, 1);
  expect(lengths(audio!.gaps)[1]).toBeCloseTo(1.0, 1);
  expect(audio!.gaps[1]!.fromS).toBeCloseTo(6.8 + 2, 0);
});

test('contact-sheet.png and timeline.png are written as PNG pictures', async () => {
  const pictures = await writeRecordingPictures(files, dir, { title: 'test' });
  expect(pictures.sheetFrames).toBe(5);
  expect(pictures.resolutions).toEqual(['640x360', '1280x720']);
  expect(pictures.gaps).toMatch(/^video 1 \(longest 7\d\d ms\), audio 2 \(longest (99\d|10\d\d) ms\)$/);
  for (const png of [pictures.sheet, pictures.timeline]) {
    const info = await probe(png);
    expect(info.streams[0]?.codec_name).toBe('png');
    expect(info.streams[0]?.width).toBeGreaterThan(1000);
  }
});
