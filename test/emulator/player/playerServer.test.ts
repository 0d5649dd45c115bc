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
import { RAMP_RESOLUTIONS } from '../../support/media.js';
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
const credentials = { ...DEFAULT_EMULATOR_CREDENTIALS };
let emulator: Emulator;
let player: PlayerServer;
let browser: Browser;
let openPlayer: (query: string) => Promise<OpenPlayer>;
let upload: FixtureUpload;

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
  player = await startPlayerServer({
    region: emulator.region,
    endpoint: emulator.url,
    credentials,
    webRoot: DEFAULT_WEB_ROOT,
    logger: pino({ level: 'silent' }),
  });
  browser = await launchPlayerBrowser();
  openPlayer = (query) => openPlayerPage(browser, player.url, query);
});

test.afterAll(async () => {
  await browser?.close();
  await player?.close();
  await emulator?.stop();
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
