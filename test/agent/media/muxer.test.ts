import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import type { PipeStallInfo } from '../../../agent/media/muxer.js';
import { MediaTimeline, type TimedFrame } from '../../../agent/media/timeline.js';
import { buildPipelineArgs } from '../../../agent/sink/pipeline.js';
import { decodeErrors, probe, probeFrames } from '../../../scripts/lib/mediaProbe.js';
import { FIXTURE_RAMP, readPackets, toWireFrames, gstWithMuxer } from '../../support/media.js';

async function fixtureFrames(): Promise<TimedFrame[]> {
  const timeline = new MediaTimeline();
  const out: TimedFrame[] = [];
  for (const f of toWireFrames(await readPackets(FIXTURE_RAMP))) {
    const t = timeline.push(f);
    if (t) out.push(t);
  }
  return out;
}

test('the live Matroska stream is valid: H.264 + mono Opus (OpusHead), every frame, clean decode', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mux-'));
  try {
    const out = join(dir, 'copy.mkv');
    // appendOnly Matroska through a pipe, captured as it arrives; ffmpeg then checks it.
    const { gst, muxer } = await gstWithMuxer(
      { args: ['fdsrc', 'fd=0', '!', 'filesink', `location=${out}`] },
      { hasAudio: true, maxQueuedFrames: 100_000 },
    );
    await muxer.start();
    const frames = await fixtureFrames();
    for (const f of frames) muxer.write(f);
    await muxer.finish();
    expect((await gst.close()).exitCode).toBe(0);
    const info = await probe(out);
    expect(info.streams.map((s) => s.codec_name)).toEqual(['h264', 'opus']);
    expect(info.streams[1]!.channels).toBe(1);
    const videoFrames = await probeFrames(out, 'v');
    expect(videoFrames.length).toBe(frames.filter((f) => f.kind === 'video').length);
    expect(videoFrames[videoFrames.length - 1]!.ptsTime).toBeGreaterThan(39);
    expect(await decodeErrors(out)).toBe('');
    expect(muxer.stats().framesWritten).toEqual({
      video: frames.filter((f) => f.kind === 'video').length,
      audio: frames.filter((f) => f.kind === 'audio').length,
    });
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
    });
    expect(muxer.stats().dropped).toBe(s.dropped + 1);
    // Still one stall per episode.
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

test('a long audio gap is filled with silence so video keeps flowing', async () => {
  const { gst, muxer } = await gstWithMuxer(
    { args: ['fdsrc', 'fd=0', '!', 'fakesink'] },
    { hasAudio: true, maxQueuedFrames: 100_000 },
  );
  await muxer.start();
  // Audio stops after 2 s (muted sender, lost track) while video goes on for 38 s more.
  const frames = (await fixtureFrames()).filter((f) => f.kind === 'video' || f.timestampUs < 2_000_000);
  for (const f of frames) muxer.write(f);
  await expect
    .poll(() => muxer.stats().framesWritten.video, { timeout: 10_000 })
    .toBe(frames.filter((f) => f.kind === 'video').length);
  expect(muxer.stats().silencePacketsInserted).toBeGreaterThan(1500);
  await muxer.finish();
  expect((await gst.close()).exitCode).toBe(0);
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
  const { gst, muxer } = await gstWithMuxer(
    { args: ['fdsrc', 'fd=0', '!', 'fakesink'] },
    { hasAudio: true, maxQueuedFrames: 100_000 },
  );
  await muxer.start();
  const video = (await fixtureFrames()).filter((f) => f.kind === 'video');
  for (const f of video) muxer.write(f);
  await muxer.finish();
  expect(muxer.stats().framesWritten.video).toBe(video.length);
  // 40 s of video, silence up to 1 s behind the last frame.
  expect(muxer.stats().silencePacketsInserted).toBeGreaterThan(1900);
  expect(muxer.stats().bytesOut).toBeGreaterThan(3_000_000);
  expect((await gst.close()).exitCode).toBe(0);
});
