import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from '@playwright/test';
import { probe, probeFrames } from '../../../scripts/lib/mediaProbe.js';
import { beepOnsets, decodedAudio } from '../../../scripts/lib/syncProbe.js';
import { clipSpec, FPS, isFlashFrame, loadClip } from '../../../WebRTC/synthetic/clip.js';

/**
 * The synthetic master's media, encoded by real GStreamer and judged by ffmpeg: constrained-baseline H.264
 * with key frames exactly on the grid, flash frames where the spec puts them (decoded luma), Opus with beeps
 * starting at the flash instants (decoded audio, to a fraction of a millisecond).
 */
const run = promisify(execFile);
let dir: string;

test.beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'synthetic-clip-'));
});

test.afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('a clip: constrained baseline, key frames every 2 s only, SPS+PPS in-band on each, one slice per frame', async () => {
  test.setTimeout(120_000);
  const spec = clipSpec(640, 360, { frames: 180 });
  const clip = await loadClip(spec, dir);
  const [videoFile] = (await readdir(dir)).filter((f) => f.startsWith('video-')).map((f) => join(dir, f));
  const info = await probe(videoFile!);
  const v = info.streams.find((s) => s.codec_type === 'video')!;
  expect(v.codec_name).toBe('h264');
  expect((v as { profile?: string }).profile).toBe('Constrained Baseline');
  expect([v.width, v.height]).toEqual([640, 360]);
  const frames = await probeFrames(videoFile!, 'v');
  expect(frames).toHaveLength(180);
  expect(frames.flatMap((f, i) => (f.keyFrame ? [i] : []))).toEqual([0, 60, 120]);
  expect(clip.video).toHaveLength(180);
  for (const f of clip.video) {
    const types = f.nalus.map((n) => n[0]! & 0x1f).filter((t) => t !== 6);
    expect(types, `frame ${f.index}`).toEqual(f.key ? [7, 8, 5] : [1]);
  }
  expect(clip.audio).toHaveLength(300);
});

test('flash frames are white, and only they', async () => {
  test.setTimeout(120_000);
  const spec = clipSpec(640, 360, { frames: 180 });
  await loadClip(spec, dir);
  const [videoFile] = (await readdir(dir)).filter((f) => f.startsWith('video-')).map((f) => join(dir, f));
  const { stdout } = await run('ffprobe', [
    '-v',
    'error',
    '-f',
    'lavfi',
    '-i',
    `movie=${videoFile},signalstats`,
    '-show_entries',
    'frame_tags=lavfi.signalstats.YAVG',
    '-of',
    'csv=p=0',
  ]);
  const yavg = stdout.trim().split('\n').map(Number);
  expect(yavg).toHaveLength(180);
  const flashes = yavg.flatMap((y, i) => (y > 200 ? [i] : []));
  const expected = [...Array(180).keys()].filter((i) => isFlashFrame(spec, i));
  expect(expected).toEqual([15, 45, 75, 105, 135, 165]);
  expect(flashes).toEqual(expected);
  for (const [i, y] of yavg.entries()) if (!expected.includes(i)) expect(y, `frame ${i}`).toBeLessThan(130);
});

test('beeps start at the flash instants: onsets in the decoded Opus within 0.5 ms of them', async () => {
  test.setTimeout(120_000);
  const spec = clipSpec(640, 360, { frames: 180 });
  await loadClip(spec, dir);
  const [audioFile] = (await readdir(dir)).filter((f) => f.startsWith('audio-')).map((f) => join(dir, f));
  const info = await probe(audioFile!);
  const a = info.streams.find((s) => s.codec_type === 'audio')!;
  expect([a.codec_name, a.channels, a.sample_rate]).toEqual(['opus', 1, '48000']);
  const audio = await decodedAudio(audioFile!);
  expect(audio).not.toBeNull();
  const onsets = beepOnsets(audio!);
  const flashMs = [...Array(180).keys()].filter((i) => isFlashFrame(spec, i)).map((i) => (i * 1000) / FPS);
  expect(onsets).toHaveLength(flashMs.length);
  // ffmpeg honours Opus pre-skip: the decoded beep starts where it was put into the encoder.
  for (const [i, o] of onsets.entries())
    expect(Math.abs(o - flashMs[i]!), `beep ${i} at ${o}`).toBeLessThan(0.5);
});
