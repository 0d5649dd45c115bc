import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { expect, test } from '@playwright/test';
import { MediaTimeline, type TimedFrame } from '../../../agent/media/timeline.js';
import type { WireFrame } from '../../../agent/bridge/wire.js';
import {
  AUDIO_CHAIN_DELAY_MS,
  AUDIO_CHAIN_TAIL_MS,
  buildPipelineArgs,
  pipelineInputs,
} from '../../../agent/sink/pipeline.js';
import { decodeErrors, probe, probeFrames, type ProbeStream } from '../../../scripts/lib/mediaProbe.js';
import {
  FIXTURE_RAMP,
  RAMP_RESOLUTIONS,
  readPackets,
  toWireFrames,
  gstWithMuxer,
} from '../../support/media.js';
import { beepOnsets, decodedAudio, recordedVideoFrames } from '../../../scripts/lib/syncProbe.js';
import { clipSpec, FPS, loadClip } from '../../../WebRTC/synthetic/clip.js';
import { sliceHash } from '../../../WebRTC/synthetic/syntheticMaster.js';

test('file sink args: one MPEG-TS file, audio branch (from fd 3) only when asked', () => {
  const args = buildPipelineArgs({ kind: 'file', path: '/rec/cam 1%.ts' }, { hasAudio: true });
  expect(args.slice(0, 5)).toEqual(['fdsrc', 'fd=0', '!', 'matroskademux', 'name=vdemux']);
  expect(args.join(' ')).toContain('fdsrc fd=3 ! matroskademux name=ademux ademux.audio_0 !');
  expect(pipelineInputs({ hasAudio: true })).toBe(2);
  expect(pipelineInputs({ hasAudio: false })).toBe(1);
  expect(args.slice(-5)).toEqual(['mpegtsmux', 'name=mux', '!', 'filesink', 'location=/rec/cam 1%.ts']);
  expect(args).toContain('voaacenc');
  expect(args).not.toContain('splitmuxsink');
  const videoOnly = buildPipelineArgs({ kind: 'file', path: '/rec/x.ts' }, { hasAudio: false });
  expect(videoOnly).not.toContain('ademux.audio_0');
  expect(videoOnly).not.toContain('fd=3');
  expect(() => buildPipelineArgs({ kind: 'file', path: '/rec/x.mp4' }, { hasAudio: false })).toThrow(/\.ts/);
});

/**
 * The kvssink pipeline as gst-launch-1.0 runs it, with kvssink (not packaged by Debian) swapped for a muxer
 * that has request pads too: `matroskamux name=sink ! filesink`, so that every `… ! sink.` link of the
 * pipeline stays exactly as built. Only kvssink's own `name=value` properties go with it.
 */
function withKvssinkReplaced(
  args: string[],
  file: string,
): { args: string[]; properties: Map<string, string> } {
  const at = args.indexOf('kvssink');
  expect(at, 'the pipeline has a kvssink element').toBeGreaterThan(0);
  let end = at + 1;
  const properties = new Map<string, string>();
  while (end < args.length && /^[a-z][a-z0-9-]*=/.test(args[end]!)) {
    const [name, ...value] = args[end]!.split('=');
    properties.set(name!, value.join('='));
    end++;
  }
  expect(properties.get('name')).toBe('sink');
  return {
    args: [
      ...args.slice(0, at),
      'matroskamux',
      'name=sink',
      '!',
      'filesink',
      `location=${file}`,
      ...args.slice(end),
    ],
    properties,
  };
}

test('kvssink pipeline, run by gst-launch: H.264 in AVC form with its parameter sets, AAC, into the one sink element', async () => {
  test.setTimeout(120_000);
  const dir = await mkdtemp(join(tmpdir(), 'kvs-pipe-'));
  try {
    const built = buildPipelineArgs(
      {
        kind: 'kvssink',
        streamName: 'my-stream',
        awsRegion: 'eu-west-1',
        properties: { 'fragment-duration': 2000 },
      },
      { hasAudio: true },
    );
    const file = join(dir, 'kvs.mkv');
    const { args, properties } = withKvssinkReplaced(built, file);
    // What kvssink is told, as element properties.
    expect(Object.fromEntries(properties)).toEqual({
      name: 'sink',
      'stream-name': 'my-stream',
      'aws-region': 'eu-west-1',
      'fragment-duration': '2000',
    });

    // One resolution of the fixture (matroskamux, unlike kvssink, refuses caps changes): from the first key
    // frame at the ramp's top to the end.
    const packets = await readPackets(FIXTURE_RAMP);
    const top = packets.find(
      (p) => p.kind === 'video' && p.key && `${p.width}x${p.height}` === RAMP_RESOLUTIONS.at(-1),
    )!;
    const part = packets.filter((p) => p.timestampUs >= top.timestampUs);
    const inputVideo = part.filter((p) => p.kind === 'video').length;
    const { gst, muxer } = await gstWithMuxer({ args }, { hasAudio: true, maxQueuedFrames: 100_000 });
    await muxer.start();
    const timeline = new MediaTimeline();
    for (const f of toWireFrames(part)) {
      const timed = timeline.push(f);
      if (timed) muxer.write(timed);
    }
    await muxer.finish();
    expect(await gst.close({ timeoutMs: 30_000 })).toEqual({ exitCode: 0, signal: null });

    const info = await probe(file);
    const video = info.streams.find((x) => x.codec_type === 'video') as ProbeStream & {
      is_avc?: string;
      extradata_size?: number;
    };
    const audio = info.streams.find((x) => x.codec_type === 'audio');
    // stream-format=avc: length-prefixed NAL units with an avcC record (what kvssink needs), not Annex B.
    expect(video).toMatchObject({ codec_name: 'h264', width: 1280, height: 720, is_avc: 'true' });
    expect(video.extradata_size).toBeGreaterThan(10);
    expect(audio).toMatchObject({ codec_name: 'aac', channels: 1 });
    expect((await probeFrames(file, 'v')).length).toBe(inputVideo);
    const audioFrames = await probeFrames(file, 'a');
    expect(audioFrames.length).toBeGreaterThan(0);
    expect(await decodeErrors(file)).toBe('');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('kvssink pipeline refuses a stream name or property that could change the pipeline', () => {
  expect(() => buildPipelineArgs({ kind: 'kvssink', streamName: 'bad name!' }, { hasAudio: false })).toThrow(
    /stream name/,
  );
  expect(() =>
    buildPipelineArgs(
      { kind: 'kvssink', streamName: 's', properties: { 'x y=1 ! fakesink': 1 } },
      { hasAudio: false },
    ),
  ).toThrow(/property/);
});

interface Recorded {
  files: string[];
  inputVideo: number;
  inputDurationS: number;
  /** When audio starts after the first video frame in the fixture, s. */
  inputAudioOffsetS: number;
  addP50: number | null;
  addP99: number | null;
  gstCpuS: number | null;
}

/** Pushes the whole fixture through timeline → muxer → gst-launch (file sink) as fast as gst takes it. */
async function recordFixture(dir: string): Promise<Recorded> {
  const packets = await readPackets(FIXTURE_RAMP);
  const inputVideo = packets.filter((p) => p.kind === 'video').length;
  const inputDurationS = (packets[packets.length - 1]!.timestampUs - packets[0]!.timestampUs) / 1e6;
  const firstOf = (kind: 'video' | 'audio') => packets.find((p) => p.kind === kind)!.timestampUs;
  const inputAudioOffsetS = (firstOf('audio') - firstOf('video')) / 1e6;
  // Jitter of up to ±8 ms on receive times, like the browser's 64 Hz delivery tick.
  const frames = toWireFrames(packets, { jitterMs: (i) => ((i * 7919) % 17) - 8 });
  // Through the gstLaunchPath seam: bash's `time` reports the CPU gst used once it has exited.
  const wrapper = join(dir, 'gst-timed');
  await writeFile(wrapper, '#!/bin/bash\nTIMEFORMAT="CPU %U %S"\ntime gst-launch-1.0 "$@"\n', {
    mode: 0o755,
  });
  const { gst, muxer } = await gstWithMuxer(
    {
      args: buildPipelineArgs({ kind: 'file', path: join(dir, 'rec.ts') }, { hasAudio: true }),
      gstLaunchPath: wrapper,
    },
    { hasAudio: true, maxQueuedFrames: 100_000 },
  );
  await muxer.start();
  const timeline = new MediaTimeline();
  let n = 0;
  for (const f of frames) {
    const timed = timeline.push(f);
    if (timed) muxer.write(timed);
    // Yield now and then so the pump and the pipe run alongside.
    if (++n % 200 === 0) await new Promise((r) => setImmediate(r));
  }
  await muxer.finish();
  expect(await gst.close({ timeoutMs: 30_000 })).toEqual({ exitCode: 0, signal: null });
  const stats = muxer.stats();
  expect(stats.dropped).toBe(0);
  expect(stats.framesWritten.video).toBe(inputVideo);
  expect(timeline.stats().video.droppedBeforeKeyframe).toBe(0);
  // "CPU 0.450 0.050": gst's user and system seconds.
  const cpuLine = gst.recentOutput().find((l) => l.startsWith('CPU '));
  const secs = (cpuLine ?? '')
    .split(' ')
    .slice(1)
    .reduce((sum, v) => sum + Number(v), 0);
  const files = (await readdir(dir)).filter((f) => f.endsWith('.ts')).sort();
  return {
    files: files.map((f) => join(dir, f)),
    inputVideo,
    inputDurationS,
    inputAudioOffsetS,
    addP50: stats.addLatencyMs.p50,
    addP99: stats.addLatencyMs.p99,
    gstCpuS: cpuLine ? secs : null,
  };
}

test('the fixture goes timeline → muxer → gst file sink and comes out whole', async () => {
  test.setTimeout(180_000);
  const dir = await mkdtemp(join(tmpdir(), 'sink-'));
  try {
    const rec = await recordFixture(dir);
    test.info().annotations.push({
      type: 'measured',
      description: `muxer add() p50 ${rec.addP50} ms p99 ${rec.addP99} ms; gst CPU ${rec.gstCpuS} s for ${rec.inputDurationS.toFixed(1)} s of media`,
    });
    expect(rec.files.map((f) => basename(f))).toEqual(['rec.ts']);
    const file = rec.files[0]!;
    const info = await probe(file);
    const video = info.streams.filter((s) => s.codec_type === 'video');
    const audio = info.streams.filter((s) => s.codec_type === 'audio');
    expect(video.map((s) => s.codec_name)).toEqual(['h264']);
    expect(audio.map((s) => s.codec_name)).toEqual(['aac']);
    expect(Math.abs(Number(info.format.duration) - rec.inputDurationS) / rec.inputDurationS).toBeLessThan(
      0.1,
    );
    // Both tracks start together: the call's audio began 0.27 s after its first key frame, and the muxer covers
    // that stretch with silence, so the real audio keeps its place after it (players align tracks by their
    // first timestamps).
    expect(rec.inputAudioOffsetS).toBeGreaterThan(0.1);
    expect(Math.abs(Number(audio[0]!.start_time) - Number(video[0]!.start_time))).toBeLessThan(0.05);

    const outFrames = await probeFrames(file, 'v');
    expect(outFrames.length).toBeGreaterThanOrEqual(Math.ceil(rec.inputVideo * 0.99));
    const sizes = new Set(outFrames.map((f) => `${f.width}x${f.height}`));
    for (const size of RAMP_RESOLUTIONS) expect(sizes).toContain(size);
    expect(await decodeErrors(file)).toBe('');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/**
 * A/V alignment through the timeline and each sink's gst chain (kvssink's swapped as above): the synthetic
 * clip's frames with exact capture times (a flash frame and a beep share one instant) but different receive
 * delays per track (video 12 ms, audio 27 ms), placed by MediaTimeline as the agent does (capture clock, audio
 * lead for the chain's codec delays), muxed, run through gst. Where each beep starts in the decoded AAC, minus
 * where its flash frame is, is what a player would show as A/V offset.
 */
for (const sink of ['file', 'kvssink'] as const) {
  test(`${sink} pipeline keeps A/V aligned: decoded beeps start within 1 ms of their flash frames`, async () => {
    test.setTimeout(120_000);
    const dir = await mkdtemp(join(tmpdir(), 'kvs-av-'));
    try {
      const clip = await loadClip(clipSpec(640, 360, { frames: 180 }));
      const file = join(dir, sink === 'file' ? 'rec.ts' : 'rec.mkv');
      const args =
        sink === 'file'
          ? buildPipelineArgs({ kind: 'file', path: file }, { hasAudio: true })
          : withKvssinkReplaced(
              buildPipelineArgs({ kind: 'kvssink', streamName: 's' }, { hasAudio: true }),
              file,
            ).args;
      const { gst, muxer } = await gstWithMuxer({ args }, { hasAudio: true, maxQueuedFrames: 100_000 });
      await muxer.start();
      const t0 = Date.now();
      const seq = { video: 0, audio: 0 };
      const frames: WireFrame[] = [
        ...clip.video.map((f) => ({ kind: 'video' as const, captureMs: t0 + (f.index * 1000) / FPS, f })),
        // Audio starts 60 ms late (a packet of filler silence then leaves a 12 ms hole before it, with the
        // chain delay's 27.8 ms lead) and one packet is lost on the way (a 20 ms hole): small holes that an
        // encoder taking back-to-back samples would close, moving the audio after them earlier.
        ...clip.audio.flatMap((data, i) =>
          i < 3 || i === 100 ? [] : [{ kind: 'audio' as const, captureMs: t0 + i * 20, data }],
        ),
      ]
        .map((x) => ({ ...x, receiveMs: x.captureMs + (x.kind === 'video' ? 12 : 27) }))
        .sort((a, b) => a.receiveMs - b.receiveMs)
        .map((x) => ({
          header: {
            kind: x.kind,
            key: x.kind === 'video' ? x.f.key : true,
            codec: x.kind === 'video' ? ('h264' as const) : ('opus' as const),
            rtpTimestamp: Math.round(((x.captureMs - t0) * (x.kind === 'video' ? 90_000 : 48_000)) / 1000),
            receiveTimeMs: x.receiveMs,
            captureTimeMs: x.captureMs,
            ssrc: x.kind === 'video' ? 1 : 2,
            width: x.kind === 'video' && x.f.key ? 640 : 0,
            height: x.kind === 'video' && x.f.key ? 360 : 0,
            seq: seq[x.kind]++,
          },
          payload:
            x.kind === 'video'
              ? Buffer.concat(x.f.nalus.flatMap((n) => [Buffer.from([0, 0, 0, 1]), n]))
              : x.data,
        }));
      const timeline = new MediaTimeline({ audioLeadMs: AUDIO_CHAIN_DELAY_MS });
      for (const f of frames) {
        const timed = timeline.push(f);
        if (timed) muxer.write(timed);
      }
      await muxer.finish();
      expect(await gst.close({ timeoutMs: 30_000 })).toEqual({ exitCode: 0, signal: null });

      const video = await recordedVideoFrames(file);
      const flashHashes = new Set(clip.video.filter((f) => f.flash).map((f) => sliceHash(f.nalus)));
      const flashes = video.filter((f) => flashHashes.has(f.hash)).map((f) => f.ptsMs);
      const onsets = beepOnsets((await decodedAudio(file))!);
      // Every beep pairs with its flash, before and after the lost packet (at 2 s).
      const offsets = flashes
        .map((t) => onsets.find((o) => Math.abs(o - t) < 150)! - t)
        .filter((o) => Number.isFinite(o));
      process.stdout.write(
        `measured [${sink}] beep − flash (ms): ${offsets.map((o) => o.toFixed(2)).join(' ')}\n`,
      );
      expect(offsets.length).toBeGreaterThanOrEqual(5);
      for (const o of offsets) expect(Math.abs(o)).toBeLessThanOrEqual(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}

/**
 * voaacenc does not drain at EOS: its delay and the last partial frame stay in it. A run's audio is padded by
 * AUDIO_CHAIN_TAIL_MS so that all of its real audio comes out (presented up to the real end plus the chain
 * delay) and the audio outlasts the last video frame (kvssink ends a session at its first pad's EOS). Run
 * with no tail as well, which shows what the tail is for.
 */
test('the audio chain keeps nothing back at the end of a run: all real audio comes out, past the last video frame', async () => {
  test.setTimeout(120_000);
  const dir = await mkdtemp(join(tmpdir(), 'tail-'));
  try {
    const timeline = new MediaTimeline({ audioLeadMs: AUDIO_CHAIN_DELAY_MS });
    const frames = toWireFrames(await readPackets(FIXTURE_RAMP))
      .map((f) => timeline.push(f))
      .filter((f): f is TimedFrame => f !== null && f.timestampUs < 5_000_000);
    const video = frames.filter((f) => f.kind === 'video');
    const audio = frames.filter((f) => f.kind === 'audio');
    const realEndMs = (audio.at(-1)!.timestampUs + 20_000) / 1000;
    const lastVideoMs = video.at(-1)!.timestampUs / 1000;
    const ends: Record<string, { presentedMs: number; pastVideoMs: number }> = {};
    for (const tailMs of [0, AUDIO_CHAIN_TAIL_MS]) {
      const file = join(dir, `tail-${tailMs}.ts`);
      const { gst, muxer } = await gstWithMuxer(
        { args: buildPipelineArgs({ kind: 'file', path: file }, { hasAudio: true }) },
        { hasAudio: true, maxQueuedFrames: 100_000, audioTailUs: tailMs * 1000 },
      );
      await muxer.start();
      for (const f of frames) muxer.write(f);
      await muxer.finish();
      expect(await gst.close({ timeoutMs: 30_000 })).toEqual({ exitCode: 0, signal: null });
      const v = await probeFrames(file, 'v');
      const a = await probeFrames(file, 'a');
      expect(v.length).toBe(video.length);
      // Both tracks start at the first key frame (0 on the recording clock), so times are relative to it.
      const t0 = v[0]!.ptsTime;
      const audioEndMs = (a.at(-1)!.ptsTime + 1024 / 48_000 - t0) * 1000;
      ends[tailMs] = {
        // Audio stamped t is heard at t + the chain delay: how much of the real audio a player hears.
        presentedMs: audioEndMs - AUDIO_CHAIN_DELAY_MS - realEndMs,
        pastVideoMs: audioEndMs - lastVideoMs,
      };
    }
    process.stdout.write(
      `measured audio end, ms (past the real audio heard; past the last video frame): ${JSON.stringify(ends)}\n`,
    );
    const padded = ends[AUDIO_CHAIN_TAIL_MS]!;
    expect(padded.presentedMs).toBeGreaterThanOrEqual(0);
    expect(padded.pastVideoMs).toBeGreaterThanOrEqual(20);
    // Without the tail the chain keeps the last 35–55 ms of real audio.
    expect(ends[0]!.presentedMs).toBeLessThan(-30);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
