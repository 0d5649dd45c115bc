import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { expect, test } from '@playwright/test';
import { pino } from 'pino';
import type { WireFrame } from '../../../agent/bridge/wire.js';
import { Recorder } from '../../../agent/recording/recorder.js';
import { BackoffPolicy } from '../../../agent/recording/restartPolicy.js';
import { decodeErrors, probe, probeFrames, resolutions } from '../../../scripts/lib/mediaProbe.js';
import { FIXTURE_RAMP, readPackets, toWireFrames } from '../../support/media.js';

const log = pino({ level: 'silent' });

/** The fixture as the bridge would deliver it, replayed at `speed`× real time so gst can start runs. */
async function replay(recorder: Recorder, frames: WireFrame[], speed: number): Promise<void> {
  const t0 = performance.now();
  const first = frames[0]!.header.receiveTimeMs;
  for (const f of frames) {
    const due = t0 + (f.header.receiveTimeMs - first) / speed - performance.now();
    if (due > 1) await new Promise((r) => setTimeout(r, due));
    recorder.push(f);
  }
}

function fileRecorder(
  dir: string,
  options: { segmentMs?: number; renewOnResolutionChange?: boolean },
): Recorder {
  let n = 0;
  return new Recorder({
    sinkForRun: () => ({ kind: 'file', path: join(dir, `rec_${String(n++).padStart(3, '0')}.ts`) }),
    ...options,
    gstLaunchPath: 'gst-launch-1.0',
    restartPolicy: new BackoffPolicy(),
    logger: log,
  });
}

test('segments: a new file at the first key frame after segmentMs; each starts on a key frame and decodes alone', async () => {
  test.setTimeout(120_000);
  const dir = await mkdtemp(join(tmpdir(), 'seg-'));
  try {
    const frames = toWireFrames(await readPackets(FIXTURE_RAMP));
    const inputVideo = frames.filter((f) => f.header.kind === 'video').length;
    const recorder = fileRecorder(dir, { segmentMs: 2000 });
    await replay(recorder, frames, 8);
    const summaries = await recorder.stop();
    // Key frames only at the five ramp steps, each more than 2 s apart: one file per GOP.
    const files = summaries.flatMap((s) => s.files);
    expect(files.map((f) => basename(f))).toEqual([
      'rec_000.ts',
      'rec_001.ts',
      'rec_002.ts',
      'rec_003.ts',
      'rec_004.ts',
    ]);
    let total = 0;
    for (const file of files) {
      const out = await probeFrames(file, 'v');
      expect(out[0]?.keyFrame).toBe(true);
      total += out.length;
      expect((await probe(file)).streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
      expect(await decodeErrors(file)).toBe('');
    }
    expect(total).toBe(inputVideo);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('renewOnResolutionChange: one run per resolution of the ramp, nothing lost between runs', async () => {
  test.setTimeout(120_000);
  const dir = await mkdtemp(join(tmpdir(), 'res-'));
  try {
    const frames = toWireFrames(await readPackets(FIXTURE_RAMP));
    const inputVideo = frames.filter((f) => f.header.kind === 'video').length;
    const recorder = fileRecorder(dir, { renewOnResolutionChange: true });
    await replay(recorder, frames, 8);
    const files = (await recorder.stop()).flatMap((s) => s.files);
    const sizes = [];
    let total = 0;
    for (const file of files) {
      const r = await resolutions(file);
      expect(r).toHaveLength(1);
      sizes.push(r[0]);
      total += (await probeFrames(file, 'v')).length;
    }
    expect(sizes).toEqual(['320x180', '480x270', '640x360', '960x540', '1280x720']);
    expect(total).toBe(inputVideo);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
