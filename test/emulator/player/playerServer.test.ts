import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CreateStreamCommand, KinesisVideoClient } from '@aws-sdk/client-kinesis-video';
import { expect, test, type TestInfo } from '@playwright/test';
import type { Browser } from 'playwright-core';
import { pino } from 'pino';
import {
  DEFAULT_WEB_ROOT,
  startPlayerServer,
  type PlayerServer,
} from '../../../emulator/player/playerServer.js';
import {
  DEFAULT_EMULATOR_CREDENTIALS,
  DEFAULT_STREAM_NAME,
  startEmulator,
  type Emulator,
} from '../../../emulator/server.js';
import { putFixtureIntoStream, type FixtureUpload } from '../../support/fixtureUpload.js';
import { FIXTURE_RAMP, RAMP_RESOLUTIONS } from '../../support/media.js';
import {
  launchPlayerBrowser,
  meanDifference,
  openPlayerPage,
  playerState,
  videoPicture,
  type OpenPlayer,
} from '../../support/playerPage.js';

/**
 * The recordings player in Debian's Chromium against the emulator: the project's recorded call (with its
 * resolution ramp) put in through PutMedia, played through the HLS session URL the player server gets
 * with the AWS SDK — on demand and live.
 */
const run = promisify(execFile);
const credentials = { ...DEFAULT_EMULATOR_CREDENTIALS };
let emulator: Emulator;
let player: PlayerServer;
let browser: Browser;
let openPlayer: (query: string) => Promise<OpenPlayer>;
let upload: FixtureUpload;
let recordingsDir: string;

test.describe.configure({ mode: 'serial' });
test.setTimeout(180_000);

test.beforeAll(async () => {
  emulator = await startEmulator({ port: 0, logger: pino({ level: 'silent' }) });
  // Recorded a few minutes ago, so that on-demand playback sees a finished recording.
  upload = await putFixtureIntoStream({
    endpoint: emulator.url,
    region: emulator.region,
    credentials,
    streamName: DEFAULT_STREAM_NAME,
    startMs: Date.now() - 5 * 60_000,
  });
  recordingsDir = await mkdtemp(join(tmpdir(), 'player-recordings-'));
  player = await startPlayerServer({
    region: emulator.region,
    endpoint: emulator.url,
    credentials,
    webRoot: DEFAULT_WEB_ROOT,
    recordingsDir,
    logger: pino({ level: 'silent' }),
  });
  browser = await launchPlayerBrowser();
  openPlayer = (query) => openPlayerPage(browser, player.url, query);
});

test.afterAll(async () => {
  await browser?.close();
  await player?.close();
  await emulator?.stop();
  if (recordingsDir) await rm(recordingsDir, { recursive: true, force: true });
});

function report(info: TestInfo, what: string, value: unknown): void {
  info.annotations.push({ type: what, description: JSON.stringify(value) });
}

test('on demand: the whole recording plays through the resolution ramp, with audio and no player error', async ({
  browserName: _,
}, info) => {
  const { page, pageErrors } = await openPlayer(`stream=${DEFAULT_STREAM_NAME}`);
  await expect.poll(async () => (await playerState(page)).state, { timeout: 30_000 }).toBe('playing');
  // 4× speed keeps the test short; hls.js still fetches every fragment through the session URL.
  await page
    .locator('#video')
    .evaluate((video) => ((video as unknown as { playbackRate: number }).playbackRate = 4));
  await page.waitForTimeout(1500);
  const first = await videoPicture(page);
  await page.waitForTimeout(1500);
  const second = await videoPicture(page);
  await page.screenshot({ path: info.outputPath('player-on-demand.png') });
  await expect
    .poll(async () => (await playerState(page)).state, { timeout: 90_000, intervals: [500] })
    .toBe('ended');
  const state = await playerState(page);
  report(info, 'player state', state);
  report(info, 'pictures', {
    first: [first.r, first.g, first.b],
    diff: meanDifference(first.pixels, second.pixels),
  });
  expect(state.errors).toEqual([]);
  expect(pageErrors).toEqual([]);
  const durationS = (upload.lastMs - upload.firstMs) / 1000;
  expect(state.currentTime).toBeGreaterThan(durationS - 1);
  // Every step of the ramp, in order (hls.js switches init segments at each discontinuity).
  expect(state.resolutionsSeen).toEqual([...RAMP_RESOLUTIONS]);
  expect(state.audioDecodedBytes).toBeGreaterThan(0);
  expect(state.fragments).toBe(upload.fragments);
  expect(state.gaps).toBe(0);
  // The fake camera of the recorded call is a green picture with a moving pie: not black, green, moving.
  expect(first.g).toBeGreaterThan(60);
  expect(first.g).toBeGreaterThan(first.r + 30);
  expect(first.g).toBeGreaterThan(first.b + 30);
  expect(meanDifference(first.pixels, second.pixels)).toBeGreaterThan(0.5);
  await page.close();
});

test('live: the player follows a stream being put in real time within a few fragments', async ({
  browserName: _,
}, info) => {
  const control = new KinesisVideoClient({ endpoint: emulator.url, region: emulator.region, credentials });
  await control.send(new CreateStreamCommand({ StreamName: 'live-stream', DataRetentionInHours: 2 }));
  control.destroy();
  const live = putFixtureIntoStream({
    endpoint: emulator.url,
    region: emulator.region,
    credentials,
    streamName: 'live-stream',
    realtime: true,
  });
  try {
    const { page, pageErrors } = await openPlayer('stream=live-stream&mode=LIVE');
    await expect
      .poll(
        async () => {
          const s = await playerState(page);
          return s.state === 'error' ? `error: ${s.errors.join(' | ')}` : s.state;
        },
        { timeout: 45_000, intervals: [500] },
      )
      .toBe('playing');
    // Sample how far behind the newest fragment the picture is, for the rest of the upload.
    const behind: number[] = [];
    const t0 = Date.now();
    while (Date.now() - t0 < 20_000) {
      await page.waitForTimeout(1000);
      const s = await playerState(page);
      if (s.behindLiveMs !== undefined) behind.push(s.behindLiveMs);
    }
    const state = await playerState(page);
    report(info, 'behind live ms', behind);
    report(info, 'player state', state);
    expect(state.errors).toEqual([]);
    expect(pageErrors).toEqual([]);
    expect(behind.length).toBeGreaterThan(10);
    // "A few fragments": the fixture's fragments are about 2 s long, and a fragment is listed only once it
    // is complete, so the picture is at least one fragment behind the camera.
    expect(Math.max(...behind.slice(3))).toBeLessThan(4 * 2_200);
    expect(Math.min(...behind)).toBeGreaterThan(0);
    expect(state.currentTime).toBeGreaterThan(10);
    await page.close();
  } finally {
    await live;
  }
});

test('an unknown stream is reported on the page with the service error', async () => {
  const { page, pageErrors } = await openPlayer('stream=no-such-stream');
  await expect
    .poll(async () => (await playerState(page)).errors.join(' '), { timeout: 15_000 })
    .toContain('ResourceNotFoundException');
  expect(pageErrors).toEqual([]);
  await page.close();
});

test('files on disk: the file sink’s MPEG-TS segments play from the recordings directory, ramp and audio', async ({
  browserName: _,
}, info) => {
  // Segments as the file sink writes them: MPEG-TS, H.264 untouched, AAC, named <stream>_<start>.ts, one
  // timeline across files.
  const dir = join(recordingsDir, 'demo-local');
  await mkdir(dir);
  await run('ffmpeg', [
    '-nostdin',
    '-v',
    'error',
    '-i',
    FIXTURE_RAMP,
    '-c:v',
    'copy',
    '-c:a',
    'aac',
    '-f',
    'segment',
    '-segment_format',
    'mpegts',
    '-segment_time',
    '12',
    '-reset_timestamps',
    '0',
    join(dir, 'part%d.ts'),
  ]);
  const parts = (await readdir(dir)).sort((a, b) => Number(a.slice(4, -3)) - Number(b.slice(4, -3)));
  const base = Date.parse('2026-12-02T10:00:00.000Z');
  for (const [i, part] of parts.entries()) {
    const stamp = new Date(base + i * 12_000).toISOString().replace(/[-:]/g, '');
    await rename(join(dir, part), join(dir, `webrtc-kvs-agent-stream_${stamp}.ts`));
  }
  const listed = (await (await fetch(new URL('/api/local', player.url))).json()) as {
    recordings: { name: string; segments: number }[];
  };
  expect(listed.recordings).toEqual([{ name: 'demo-local', segments: parts.length }]);
  // Nothing outside the recordings directory is served.
  for (const bad of [
    '/local/playlist.m3u8?name=..',
    '/local/segment.ts?name=demo-local&file=../../etc/passwd',
  ]) {
    expect((await fetch(new URL(bad, player.url))).status, bad).toBeGreaterThanOrEqual(400);
  }

  const { page, pageErrors } = await openPlayer('local=demo-local');
  await expect.poll(async () => (await playerState(page)).state, { timeout: 30_000 }).toBe('playing');
  await page
    .locator('#video')
    .evaluate((video) => ((video as unknown as { playbackRate: number }).playbackRate = 4));
  await expect
    .poll(async () => (await playerState(page)).state, { timeout: 90_000, intervals: [500] })
    .toBe('ended');
  const state = await playerState(page);
  report(info, 'player state', state);
  expect(state.source).toBe('local');
  expect(state.errors).toEqual([]);
  expect(pageErrors).toEqual([]);
  // Every ramp step in order. A segment here holds several sizes (as the file sink's can), and hls.js
  // declares a transmuxed segment's size from its last SPS, so a bigger size can flash first.
  let step = 0;
  for (const size of state.resolutionsSeen) if (size === RAMP_RESOLUTIONS[step]) step++;
  expect(step, state.resolutionsSeen.join(' → ')).toBe(RAMP_RESOLUTIONS.length);
  expect(state.resolutionsSeen.at(-1)).toBe('1280x720');
  expect(state.audioDecodedBytes).toBeGreaterThan(0);
  expect(state.fragments).toBe(parts.length);
  await page.close();
});
