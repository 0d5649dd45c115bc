import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import type { MatroskaStreamMuxer, PipeStallInfo } from '../../../agent/media/muxer.js';
import { MediaTimeline, type TimedFrame } from '../../../agent/media/timeline.js';
import { buildPipelineArgs } from '../../../agent/sink/pipeline.js';
import { decodeErrors, probe, probeFrames } from '../../../scripts/lib/mediaProbe.js';
import { captureArgs, FIXTURE_RAMP, readPackets, toWireFrames, gstWithMuxer } from '../../support/media.js';

async function fixtureFrames(): Promise<TimedFrame[]> {
  const timeline = new MediaTimeline();
  const out: TimedFrame[] = [];
  for (const f of toWireFrames(await readPackets(FIXTURE_RAMP))) {
    const t = timeline.push(f);
    if (t) out.push(t);
  }
  return out;
}

test('the live Matroska streams are valid: H.264 and mono Opus (OpusHead), every frame, both from the first key frame, clean decode', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mux-'));
  try {
    const base = join(dir, 'copy');
    // appendOnly Matroska through two pipes, captured as it arrives; ffmpeg then checks it.
    const { gst, muxer } = await gstWithMuxer(
      { args: captureArgs(base) },
      { hasAudio: true, maxQueuedFrames: 100_000 },
    );
    const drops: string[] = [];
    muxer.on('dropped', ({ cause, kind, count }) => drops.push(`${cause} ${kind} ${count}`));
    await muxer.start();
    // A run that starts 1 s into the recording clock, at a key frame; two audio packets captured just before
    // it arrive after it (as they do at a renewal): they have no place in this run.
    const run = (await fixtureFrames()).map((f) => ({ ...f, timestampUs: f.timestampUs + 1_000_000 }));
    const key = run[0]!;
    expect(key).toMatchObject({ kind: 'video', key: true });
    const anAudio = run.find((f) => f.kind === 'audio')!;
    const early = [10_000, 25_000].map((us) => ({ ...anAudio, timestampUs: key.timestampUs - us }));
    for (const f of [key, ...early, ...run.slice(1)]) muxer.write(f);
    await muxer.finish();
    expect((await gst.close()).exitCode).toBe(0);
    const videoOut = `${base}.video.mkv`;
    const audioOut = `${base}.audio.mkv`;
    expect((await probe(videoOut)).streams.map((s) => s.codec_name)).toEqual(['h264']);
    const audioInfo = await probe(audioOut);
    expect(audioInfo.streams.map((s) => s.codec_name)).toEqual(['opus']);
    expect(audioInfo.streams[0]!.channels).toBe(1);
    const videoIn = run.filter((f) => f.kind === 'video');
    const videoFrames = await probeFrames(videoOut, 'v');
    expect(videoFrames.length).toBe(videoIn.length);
    // The last frame comes out at the time it went in (the muxer keeps the timeline's timestamps).
    const lastIn = videoIn.at(-1)!.timestampUs / 1e6;
    expect(Math.abs(videoFrames.at(-1)!.ptsTime - lastIn)).toBeLessThan(0.002);
    // Both streams begin at the first key frame: matroskademux starts each segment at its first timestamp.
    const audioFrames = await probeFrames(audioOut, 'a');
    expect(audioFrames[0]!.ptsTime).toBeCloseTo(videoFrames[0]!.ptsTime, 3);
    expect(videoFrames[0]!.ptsTime).toBeCloseTo(key.timestampUs / 1e6, 3);
    // Silence up to the first real packet (0.27 s in), which keeps its own time.
    const firstReal = audioFrames.findIndex((f) => Math.abs(f.ptsTime - anAudio.timestampUs / 1e6) < 0.001);
    expect(firstReal).toBeGreaterThan(10);
    expect(maxStep(audioFrames.slice(0, firstReal + 1).map((f) => f.ptsTime))).toBeLessThan(0.021);
    expect(await decodeErrors(videoOut)).toBe('');
    expect(await decodeErrors(audioOut)).toBe('');
    const audioIn = run.filter((f) => f.kind === 'audio').length;
    expect(muxer.stats().framesWritten).toEqual({ video: videoIn.length, audio: audioIn });
    expect(audioFrames.length).toBe(audioIn + muxer.stats().silencePacketsInserted);
    expect(drops).toEqual(['before_keyframe audio 1', 'before_keyframe audio 1']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a reader that stops (SIGSTOP) makes the queue overflow until a key frame and the watchdog report a stall', async () => {
  test.setTimeout(60_000);
  const { gst, muxer } = await gstWithMuxer(
    { args: ['fdsrc', 'fd=0', '!', 'fakesink'] },
    { hasAudio: false, maxQueuedFrames: 50, stallTimeoutMs: 1000 },
  );
  const stalls: PipeStallInfo[] = [];
  const overflows: number[] = [];
  muxer.on('stalled', (info) => stalls.push(info));
  muxer.on('overflow', ({ dropped }) => overflows.push(dropped));
  await muxer.start();
  process.kill(gst.pid!, 'SIGSTOP');
  try {
    // 4 MB of fake video (a key frame then deltas): far more than the pipe and the queue hold.
    const payload = new Uint8Array(20_000).fill(7);
    payload.set([0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f], 0);
    for (let i = 0; i < 200; i++) {
      muxer.write({
        kind: 'video',
        key: i === 0,
        timestampUs: i * 33_000,
        data: payload,
        width: 640,
        height: 360,
        receiveTimeMs: 0,
        wallClockMs: 0,
      });
    }
    await expect.poll(() => stalls.length, { timeout: 10_000 }).toBe(1);
    expect(stalls[0]!.pendingBytes).toBeGreaterThan(0);
    expect(overflows).toHaveLength(1);
    const s = muxer.stats();
    expect(s.dropped).toBeGreaterThan(100);
    expect(s.queueDepthMax).toBe(50);
    // Deltas keep being dropped until a key frame comes and there is room.
    muxer.write({
      kind: 'video',
      key: false,
      timestampUs: 200 * 33_000,
      data: payload,
      width: 0,
      height: 0,
      receiveTimeMs: 0,
      wallClockMs: 0,
    });
    expect(muxer.stats().dropped).toBe(s.dropped + 1);
    // Still one stall per episode. An observation window (a negative check needs time), not a wait for
    // something to happen: 1.5 stall timeouts in which the watchdog keeps seeing the pipe stuck.
    await new Promise((r) => setTimeout(r, 1500));
    expect(stalls).toHaveLength(1);
  } finally {
    process.kill(gst.pid!, 'SIGCONT');
  }
  // Once gst reads again everything queued flows and the file ends cleanly.
  await muxer.finish();
  expect((await gst.close()).exitCode).toBe(0);
  expect(muxer.stats().queueDepth).toBe(0);
});

/** Muxes frames into Matroska through real pipes and gst (`fdsrc ! filesink`), as the agent does. */
async function muxToFiles(
  dir: string,
  frames: TimedFrame[],
): Promise<{ video: string; audio: string; stats: ReturnType<MatroskaStreamMuxer['stats']> }> {
  const base = join(dir, 'out');
  const { gst, muxer } = await gstWithMuxer(
    { args: captureArgs(base) },
    { hasAudio: true, maxQueuedFrames: 100_000 },
  );
  await muxer.start();
  for (const f of frames) muxer.write(f);
  await muxer.finish();
  expect((await gst.close()).exitCode).toBe(0);
  return { video: `${base}.video.mkv`, audio: `${base}.audio.mkv`, stats: muxer.stats() };
}

/** Largest step between consecutive decoded audio frames, s. */
function maxStep(times: number[]): number {
  return times.slice(1).reduce((max, t, i) => Math.max(max, t - times[i]!), 0);
}

test('a long audio gap is filled with silence so video keeps flowing', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mux-gap-'));
  try {
    // Audio stops after 2 s (muted sender, lost track) while video goes on to the end of the fixture.
    const frames = (await fixtureFrames()).filter((f) => f.kind === 'video' || f.timestampUs < 2_000_000);
    const video = frames.filter((f) => f.kind === 'video');
    const realAudio = frames.filter((f) => f.kind === 'audio');
    const files = await muxToFiles(dir, frames);
    const stats = files.stats;
    expect(stats.framesWritten).toEqual({ video: video.length, audio: realAudio.length });

    expect((await probe(files.video)).streams.map((x) => x.codec_name)).toEqual(['h264']);
    expect((await probe(files.audio)).streams.map((x) => x.codec_name)).toEqual(['opus']);
    // Every video frame is in the file, to the end, and everything decodes.
    const outVideo = await probeFrames(files.video, 'v');
    expect(outVideo.length).toBe(video.length);
    expect(await decodeErrors(files.video)).toBe('');
    expect(await decodeErrors(files.audio)).toBe('');
    // The audio track is the real audio, then 20 ms silent packets without a hole, up to within the muxer's
    // one-second fill threshold of the last video frame.
    const audio = (await probeFrames(files.audio, 'a')).map((f) => f.ptsTime);
    expect(audio.length).toBe(realAudio.length + stats.silencePacketsInserted);
    const lastVideo = video.at(-1)!.timestampUs / 1e6;
    const realEnd = realAudio.at(-1)!.timestampUs / 1e6 + 0.02;
    expect(audio.at(-1)!).toBeGreaterThan(lastVideo - 1.05);
    // At the end of the run audio is padded up to 100 ms past the last key frame (muxer END_PAD_US).
    expect(audio.at(-1)!).toBeLessThanOrEqual(lastVideo + 0.1);
    expect(maxStep(audio.filter((t) => t >= realEnd - 0.03))).toBeLessThan(0.021);
    expect(stats.silencePacketsInserted).toBeGreaterThan(Math.floor((lastVideo - realEnd - 1.05) / 0.02));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('live-paced: 10 s of the fixture in real time into the file pipeline, no stall, add() latency measured', async () => {
  test.setTimeout(60_000);
  const dir = await mkdtemp(join(tmpdir(), 'live-'));
  try {
    const { gst, muxer } = await gstWithMuxer(
      {
        args: buildPipelineArgs({ kind: 'file', path: join(dir, 'live.ts') }, { hasAudio: true }),
      },
      { hasAudio: true, stallTimeoutMs: 2000 },
    );
    let stalls = 0;
    muxer.on('stalled', () => stalls++);
    await muxer.start();
    const frames = (await fixtureFrames()).filter((f) => f.timestampUs < 10_000_000);
    const t0 = performance.now();
    for (const f of frames) {
      const due = t0 + f.timestampUs / 1000 - performance.now();
      if (due > 1) await new Promise((r) => setTimeout(r, due));
      muxer.write(f);
    }
    await muxer.finish();
    expect((await gst.close()).exitCode).toBe(0);
    const s = muxer.stats();
    test.info().annotations.push({
      type: 'measured',
      description: `live add() p50 ${s.addLatencyMs.p50} ms p99 ${s.addLatencyMs.p99} ms over ${s.addLatencyMs.samples} frames; queue max ${s.queueDepthMax}`,
    });
    expect(stalls).toBe(0);
    expect(s.dropped).toBe(0);
    expect(s.queueDepthMax).toBeLessThan(20);
    const info = await probe(join(dir, 'live.ts'));
    expect(info.streams.map((x) => x.codec_name).sort()).toEqual(['aac', 'h264']);
    expect(Math.abs(Number(info.format.duration) - 10)).toBeLessThan(1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('audio announced but never arriving: silence from the start keeps video flowing', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mux-noaudio-'));
  try {
    const video = (await fixtureFrames()).filter((f) => f.kind === 'video');
    const files = await muxToFiles(dir, video);
    const stats = files.stats;
    expect(stats.framesWritten).toEqual({ video: video.length, audio: 0 });
    const info = await probe(files.audio);
    expect(info.streams.map((x) => x.codec_name)).toEqual(['opus']);
    expect(info.streams[0]!.channels).toBe(1);
    expect((await probeFrames(files.video, 'v')).length).toBe(video.length);
    expect(await decodeErrors(files.video)).toBe('');
    expect(await decodeErrors(files.audio)).toBe('');
    // The audio track is silence only: from the first video frame, without a hole, to within a second of the
    // last video frame.
    const audio = (await probeFrames(files.audio, 'a')).map((f) => f.ptsTime);
    expect(audio.length).toBe(stats.silencePacketsInserted);
    expect(audio[0]).toBeCloseTo(video[0]!.timestampUs / 1e6, 3);
    expect(maxStep(audio)).toBeLessThan(0.021);
    const lastVideo = video.at(-1)!.timestampUs / 1e6;
    expect(audio.at(-1)!).toBeGreaterThan(lastVideo - 1.05);
    // At the end of the run audio is padded up to 100 ms past the last key frame (muxer END_PAD_US).
    expect(audio.at(-1)!).toBeLessThanOrEqual(lastVideo + 0.1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('dropTrailingKeyFrame: a run ending on a key frame drops that one frame; key frames mid-run are all kept', async () => {
  const all = await fixtureFrames();
  const keys = all.filter((f) => f.kind === 'video' && f.key);
  expect(keys.length).toBeGreaterThanOrEqual(3);
  // The run ends on the third key frame, with 60 ms of audio after it (as when the next run starts right there).
  const lastKey = keys[2]!;
  const frames = all.filter(
    (f) =>
      f.timestampUs < lastKey.timestampUs ||
      f === lastKey ||
      (f.kind === 'audio' && f.timestampUs < lastKey.timestampUs + 60_000),
  );
  const videoIn = frames.filter((f) => f.kind === 'video');
  const dir = await mkdtemp(join(tmpdir(), 'mux-'));
  try {
    for (const drop of [true, false]) {
      const base = join(dir, `drop-${drop}`);
      const out = `${base}.video.mkv`;
      const { gst, muxer } = await gstWithMuxer(
        { args: captureArgs(base) },
        { hasAudio: true, maxQueuedFrames: 100_000, dropTrailingKeyFrame: drop },
      );
      await muxer.start();
      for (const f of frames) muxer.write(f);
      await muxer.finish();
      expect((await gst.close()).exitCode).toBe(0);
      const video = await probeFrames(out, 'v');
      const keysOut = video.filter((f) => f.keyFrame).length;
      expect(muxer.stats().droppedTrailingKeyFrames).toBe(drop ? 1 : 0);
      expect(video.length).toBe(videoIn.length - (drop ? 1 : 0));
      expect(keysOut).toBe(drop ? 2 : 3);
      const lastOut = video.at(-1)!.ptsTime;
      const expected = (drop ? videoIn.at(-2)! : lastKey).timestampUs / 1e6;
      expect(Math.abs(lastOut - expected)).toBeLessThan(0.002);
      expect(await decodeErrors(out)).toBe('');
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('receive → gst input latency: each track goes to gst as it comes, without waiting for the other', async () => {
  const { gst, muxer } = await gstWithMuxer(
    { args: ['fdsrc', 'fd=0', '!', 'fakesink', 'fdsrc', 'fd=3', '!', 'fakesink'] },
    { hasAudio: true, maxQueuedFrames: 100_000 },
  );
  await muxer.start();
  const frames = (await fixtureFrames()).filter((f) => f.timestampUs < 2_500_000);
  const first = frames[0]!.timestampUs;
  // Paced in real time, audio arriving 600 ms after the video of the same instant (under the 1 s silence fill).
  // One interleaved stream would hold every video frame until that audio came: ≥ 600 ms.
  const AUDIO_LATE_MS = 600;
  const due = (f: TimedFrame) => (f.timestampUs - first) / 1000 + (f.kind === 'audio' ? AUDIO_LATE_MS : 0);
  const t0 = performance.now();
  for (const f of [...frames].sort((a, b) => due(a) - due(b))) {
    const wait = t0 + due(f) - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    muxer.write({ ...f, receiveTimeMs: Date.now() });
  }
  await muxer.finish();
  await gst.close();
  const s = muxer.stats();
  const l = s.stdinLatencyMs;
  test.info().annotations.push({ type: 'measured', description: `input latency ${JSON.stringify(l)}` });
  expect(s.framesWritten.video + s.framesWritten.audio).toBe(frames.length);
  expect(s.silencePacketsInserted).toBeGreaterThan(0);
  // Every frame is measured when it is written, the last ones too.
  expect(l.samples).toBe(frames.length);
  expect(l.max!).toBeLessThan(AUDIO_LATE_MS / 2);
});
