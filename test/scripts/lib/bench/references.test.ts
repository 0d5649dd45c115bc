import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { createLogger } from '../../../../agent/log.js';
import { DEFAULT_EMULATOR_CREDENTIALS, startEmulator } from '../../../../emulator/server.js';
import { launchFloor } from '../../../../scripts/lib/bench/floorBrowser.js';
import { startMasterProcess } from '../../../../scripts/lib/bench/masterProcess.js';
import { measureTranscode, parseShellTime } from '../../../../scripts/lib/bench/transcodeReference.js';
import { clipFiles, clipSpec, loadClip } from '../../../../WebRTC/synthetic/clip.js';

const CHANNEL = 'webrtc-kvs-agent-channel';

test('the receive floor decodes what synthetic masters in their own process send; answers and sent frames are read back', async () => {
  test.setTimeout(120_000);
  const emulator = await startEmulator({ port: 0, logger: createLogger({ level: 'warn' }) });
  const dir = await mkdtemp(join(tmpdir(), 'bench-ref-'));
  try {
    await loadClip(clipSpec(320, 180));
    const masters = await startMasterProcess({
      endpoint: emulator.url,
      region: emulator.region,
      channels: [CHANNEL],
      resolution: '320x180',
      sentLog: join(dir, 'sent.jsonl'),
      env: {
        AWS_ACCESS_KEY_ID: DEFAULT_EMULATOR_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: DEFAULT_EMULATOR_CREDENTIALS.secretAccessKey,
      },
    });
    let sent;
    try {
      const floor = await launchFloor({
        endpoint: emulator.url,
        region: emulator.region,
        channels: [CHANNEL],
        credentials: DEFAULT_EMULATOR_CREDENTIALS,
        minFrames: 30,
      });
      try {
        const state = (await floor.state())[CHANNEL]!;
        expect(state.framesDecoded).toBeGreaterThanOrEqual(30);
        expect(state.audioSamples).toBeGreaterThan(0);
        expect([state.width, state.height]).toEqual([320, 180]);
        expect(floor.pid).toBeGreaterThan(0);
      } finally {
        await floor.close();
      }
      expect(masters.answers.get(CHANNEL)?.length).toBeGreaterThanOrEqual(1);
    } finally {
      sent = await masters.stop();
    }
    const video = (sent.get(CHANNEL) ?? []).filter((f) => f.kind === 'video');
    expect(video.length).toBeGreaterThanOrEqual(30);
    expect(video[0]!.hash).toMatch(/^[0-9a-f]+$/);
  } finally {
    await emulator.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('the transcode reference: decode + x264 over the clip, CPU time from the shell, per media-second', async () => {
  test.setTimeout(120_000);
  const spec = clipSpec(320, 180);
  await loadClip(spec);
  const t = await measureTranscode({
    videoFile: clipFiles(spec).videoFile,
    frames: spec.frames,
    fps: 30,
    repeat: 1,
  });
  expect(t.mediaSeconds).toBe(12);
  expect(t.cpuSeconds).toBeGreaterThan(0);
  expect(t.cpuPerMediaSecond).toBeCloseTo(t.cpuSeconds / 12, 10);
  await expect(
    measureTranscode({ videoFile: '/nonexistent.mkv', frames: 1, fps: 30, repeat: 1 }),
  ).rejects.toThrow(/transcode reference failed/);
  expect(parseShellTime('1m2.5s')).toBe(62.5);
  expect(parseShellTime('0m0.010000s')).toBe(0.01);
  expect(() => parseShellTime('soon')).toThrow(/not a shell time/);
});
