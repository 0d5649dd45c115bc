import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { expect, test } from '@playwright/test';
import { pino } from 'pino';
import type { WireFrame } from '../../../agent/bridge/wire.js';
import { MediaTimeline, type TimedFrame } from '../../../agent/media/timeline.js';
import { BackoffPolicy } from '../../../agent/policy/backoff.js';
import { Recorder } from '../../../agent/recording/recorder.js';
import { FileSink } from '../../../agent/sink/fileSink.js';
import { frameSize, type RunInfo, type RunPlan } from '../../../agent/sink/sink.js';
import {
  countPackets,
  decodeErrors,
  probe,
  probeFrames,
  resolutions,
} from '../../../scripts/lib/mediaProbe.js';
import { FIXTURE_RAMP, readPackets, toWireFrames } from '../../support/media.js';

const log = pino({ level: 'silent' });

/** The fixture as the bridge would deliver it, through a unit's timeline, replayed at `speed`× real time. */
async function replay(
  recorder: Recorder,
  frames: WireFrame[],
  speed: number,
  during?: (frame: TimedFrame) => void,
): Promise<void> {
  const timeline = new MediaTimeline();
  const t0 = performance.now();
  const first = frames[0]!.header.receiveTimeMs;
  for (const f of frames) {
    const due = t0 + (f.header.receiveTimeMs - first) / speed - performance.now();
    if (due > 1) await new Promise((r) => setTimeout(r, due));
    const timed = timeline.push(f);
    if (!timed) continue;
    recorder.push(timed);
    during?.(timed);
  }
}

/** File segments named in order, optionally renewed at each new resolution like the kvssink sink. */
class TestSink extends FileSink {
  #n = 0;
  override readonly sequentialRuns: boolean;
  constructor(
    private readonly dir: string,
    private readonly opts: { segmentMs?: number; byResolution?: boolean; sequential?: boolean },
  ) {
    super({ outputDir: dir, stream: 'rec', segmentMs: opts.segmentMs ?? 3_600_000, closeTimeoutMs: 10_000 });
    this.sequentialRuns = opts.sequential ?? false;
  }
  override nextRun(): RunPlan {
    const plan = super.nextRun();
    return {
      ...plan,
      spec: { kind: 'file', path: join(this.dir, `rec_${String(this.#n++).padStart(3, '0')}.ts`) },
    };
  }
  override renewalReason(run: RunInfo, keyFrame: TimedFrame): string | null {
    if (this.opts.byResolution) return frameSize(keyFrame) !== run.size ? 'resolution' : null;
    return super.renewalReason(run, keyFrame);
  }
}

function recorderFor(sink: TestSink): Recorder {
  return new Recorder({
    sink,
    gstLaunchPath: 'gst-launch-1.0',
    restartPolicy: new BackoffPolicy({ baseMs: 100, maxMs: 500 }),
    logger: log,
  });
}

const keyFrameSizes = (frames: WireFrame[]) =>
  frames
    .filter((f) => f.header.kind === 'video' && f.header.key)
    .map((f) => `${f.header.width}x${f.header.height}`);

let dir: string;
test.beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'recorder-'));
});
test.afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('segments: a new file at the first key frame after segmentMs; each starts on a key frame and decodes alone', async () => {
  test.setTimeout(120_000);
  const frames = toWireFrames(await readPackets(FIXTURE_RAMP));
  const inputVideo = frames.filter((f) => f.header.kind === 'video').length;
  const keyFrames = keyFrameSizes(frames).length;
  const recorder = recorderFor(new TestSink(dir, { segmentMs: 1500 }));
  await replay(recorder, frames, 8);
  const files = (await recorder.stop()).flatMap((s) => s.files);
  // Key frames come ≥ 1.5 s apart in the fixture: one file per GOP.
  expect(files.map((f) => basename(f))).toEqual(
    Array.from({ length: keyFrames }, (_, i) => `rec_${String(i).padStart(3, '0')}.ts`),
  );
  let total = 0;
  for (const file of files) {
    const out = await probeFrames(file, 'v');
    expect(out[0]?.keyFrame).toBe(true);
    total += out.length;
    expect((await probe(file)).streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
    expect(await decodeErrors(file)).toBe('');
  }
  expect(total).toBe(inputVideo);
});

test('renewal at each new resolution with sequential runs (kvssink-style): one run per size, nothing lost', async () => {
  test.setTimeout(120_000);
  const frames = toWireFrames(await readPackets(FIXTURE_RAMP));
  const inputVideo = frames.filter((f) => f.header.kind === 'video').length;
  const expectedSizes = [...new Set(keyFrameSizes(frames))];
  expect(expectedSizes.length).toBeGreaterThanOrEqual(3);
  const recorder = recorderFor(new TestSink(dir, { byResolution: true, sequential: true }));
  const timed: TimedFrame[] = [];
  await replay(recorder, frames, 8, (f) => timed.push(f));
  const summaries = await recorder.stop();
  const files = summaries.flatMap((s) => s.files);
  const sizes = [];
  let total = 0;
  for (const [i, file] of files.entries()) {
    const r = await resolutions(file);
    expect(r).toHaveLength(1);
    sizes.push(r[0]);
    const frames = (await probeFrames(file, 'v')).length;
    // What the run handed to gst is what the file holds.
    expect(frames, `${file}: ${JSON.stringify(summaries[i]!.muxer)}`).toBe(summaries[i]!.video.frames);
    total += frames;
    expect(await decodeErrors(file)).toBe('');
  }
  expect(sizes).toEqual(expectedSizes);
  expect(total).toBe(inputVideo);
  expect(summaries.reduce((n, s) => n + (s.droppedFrames ?? 0), 0)).toBe(0);
  // Audio captured just before a renewal's key frame, arriving after it, still goes to the run it belongs to.
  const firstKeyUs = timed.find((f) => f.kind === 'video' && f.key)!.timestampUs;
  const audioIn = timed.filter((f) => f.kind === 'audio' && f.timestampUs >= firstKeyUs).length;
  expect(summaries.reduce((n, s) => n + s.audio.frames, 0)).toBe(audioIn);
});

test('audio that starts late (a mic unmuted after 4 s) is recorded from then on, silence before it', async () => {
  test.setTimeout(120_000);
  const packets = await readPackets(FIXTURE_RAMP);
  const late = packets.filter((p) => p.kind === 'video' || p.timestampUs >= 4_000_000);
  const lateAudio = late.filter((p) => p.kind === 'audio').length;
  const recorder = recorderFor(new TestSink(dir, {}));
  await replay(recorder, toWireFrames(late), 8);
  const [summary] = await recorder.stop();
  const file = summary!.files[0]!;
  const info = await probe(file);
  expect(info.streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
  expect(summary!.audio.frames).toBe(lateAudio);
  expect(summary!.muxer!.silencePacketsInserted).toBeGreaterThan(100);
  // AAC frames (1024 samples, 21.3 ms) cover the whole recording: silence first, then the real audio.
  const video = await probeFrames(file, 'v');
  const videoSeconds = video.at(-1)!.ptsTime - video[0]!.ptsTime;
  const aacFrames = await countPackets(file, 'a');
  expect(aacFrames * 0.02133).toBeGreaterThan(videoSeconds * 0.95);
  expect(await decodeErrors(file)).toBe('');
});

test('gst killed mid-run: the next run starts at the next key frame after the restart delay and decodes', async () => {
  test.setTimeout(120_000);
  const frames = toWireFrames(await readPackets(FIXTURE_RAMP));
  const recorder = recorderFor(new TestSink(dir, {}));
  const restarts: number[] = [];
  recorder.on('restart', ({ attempt }) => restarts.push(attempt));
  let killed = false;
  await replay(recorder, frames, 4, (frame) => {
    // Kill gst's whole group 3 s into the recording, as a crash would.
    if (!killed && frame.timestampUs > 3_000_000 && recorder.status().state === 'running') {
      killed = true;
      const pids = recorder.gstPids();
      for (const pid of pids) process.kill(-pid, 'SIGKILL');
    }
  });
  const summaries = await recorder.stop();
  expect(killed).toBe(true);
  expect(restarts).toEqual([1]);
  expect(recorder.status().restarts).toBe(1);
  const files = summaries.flatMap((s) => s.files);
  expect(files).toHaveLength(2);
  const second = await probeFrames(files[1]!, 'v');
  expect(second[0]?.keyFrame).toBe(true);
  expect(await decodeErrors(files[1]!)).toBe('');
  expect((await probe(files[1]!)).streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
});
