import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { parse, setOptions, types as hlsTypes } from 'hls-parser';
import type { Browser } from 'playwright-core';
import { createLogger } from '../../agent/log.js';
import type { FragmentRecord } from '../../emulator/media/fragmentStore.js';
import { DEFAULT_WEB_ROOT, startPlayerServer } from '../../emulator/player/playerServer.js';
import { DEFAULT_EMULATOR_CREDENTIALS, DEFAULT_STREAM_NAME } from '../../emulator/server.js';
import { spawnAgent } from '../../scripts/lib/agentProcess.js';
import { startDemoStack } from '../../scripts/lib/demoStack.js';
import { kvssinkAvailable } from '../../scripts/lib/kvssinkCheck.js';
import { KvsReadBack } from '../../scripts/lib/kvsReadBack.js';
import { resolutions } from '../../scripts/lib/mediaProbe.js';
import { report } from '../support/recoveryHarness.js';
import { launchPlayerBrowser, openPlayerPage, playerState, videoPicture } from '../support/playerPage.js';

/**
 * What kvssink writes, played as HLS: the whole agent (reference master → emulator → agent → kvssink →
 * PutMedia) records the start-of-call resolution ramp; the player follows it live, then plays it on demand
 * through every resolution — where a wrong codec private data after a resolution change would show.
 * Needs kvssink; skipped, saying why, without it.
 */
const logger = createLogger({ level: 'warn' });
const cleanups: Array<() => Promise<void>> = [];
test.afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
});

test('kvssink → HLS: the player follows the agent live, then plays the recording through the ramp with audio', async () => {
  const kvssink = await kvssinkAvailable();
  test.skip(!kvssink.available, kvssink.reason);
  test.setTimeout(300_000);
  const stack = await startDemoStack({ logger });
  cleanups.push(() => stack.close());
  const agent = spawnAgent({
    args: ['--endpoint', stack.emulator.url, '--sink', 'kvssink', '--duration', '40'],
    env: stack.agentEnv,
  });
  cleanups.push(async () => {
    if (agent.child.exitCode === null && agent.child.signalCode === null) {
      process.kill(-agent.child.pid!, 'SIGKILL');
      await agent.exited;
    }
  });
  const player = await startPlayerServer({
    region: stack.emulator.region,
    endpoint: stack.emulator.url,
    credentials: { ...DEFAULT_EMULATOR_CREDENTIALS },
    webRoot: DEFAULT_WEB_ROOT,
    logger,
  });
  cleanups.push(() => player.close());
  const browser: Browser = await launchPlayerBrowser();
  cleanups.push(() => browser.close());
  await agent.waitForLog((l) => l.msg === 'recording' && l.sink === 'kvssink', 90_000);

  // Live, while the agent records.
  const live = await openPlayerPage(browser, player.url, `stream=${DEFAULT_STREAM_NAME}&mode=LIVE`);
  await expect
    .poll(async () => (await playerState(live.page)).state, { timeout: 60_000, intervals: [500] })
    .toBe('playing');
  const behind: number[] = [];
  for (let i = 0; i < 12; i++) {
    await live.page.waitForTimeout(1000);
    const s = await playerState(live.page);
    if (s.behindLiveMs !== undefined) behind.push(s.behindLiveMs);
  }
  const liveState = await playerState(live.page);
  report(test.info(), 'live: behind ms', behind);
  expect(liveState.errors).toEqual([]);
  expect(live.pageErrors).toEqual([]);
  expect(behind.length).toBeGreaterThan(5);
  // A fragment is listed once complete (about 2 s): "within a few fragments" of the camera.
  expect(Math.max(...behind.slice(2))).toBeLessThan(4 * 2_500);
  await live.page.close();

  const exit = await agent.exited;
  expect(exit.code).toBe(0);

  // The recording's own resolutions, from GetClip as a user would read it.
  const readBack = new KvsReadBack({
    region: stack.emulator.region,
    credentials: DEFAULT_EMULATOR_CREDENTIALS,
    endpoint: stack.emulator.url,
    streamName: DEFAULT_STREAM_NAME,
  });
  cleanups.push(() => Promise.resolve(readBack.destroy()));
  const clip = test.info().outputPath('clip.mp4');
  const fragments = await readBack.wholeClip(clip);
  const first = fragments[0]!.ProducerTimestamp!;
  const recorded = await resolutions(clip);
  expect(recorded.length).toBeGreaterThan(1);

  // The HLS media playlist: a discontinuity and a new init segment at each change of codec private data.
  const { page, pageErrors } = await openPlayerPage(browser, player.url, `stream=${DEFAULT_STREAM_NAME}`);
  await expect.poll(async () => (await playerState(page)).state, { timeout: 30_000 }).toBe('playing');
  const session = (await (
    await fetch(new URL(`/api/streams/${DEFAULT_STREAM_NAME}/playback`, player.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ mode: 'ON_DEMAND', startMs: first.getTime(), endMs: Date.now() }),
    })
  ).json()) as { url: string };
  setOptions({ strictMode: true });
  const master = parse(await (await fetch(session.url)).text());
  if (!(master instanceof hlsTypes.MasterPlaylist)) throw new Error('not a master playlist');
  const variant = master.variants[0]!;
  const media = parse(await (await fetch(new URL(variant.uri, session.url))).text());
  if (!(media instanceof hlsTypes.MediaPlaylist)) throw new Error('not a media playlist');
  await writeFile(
    test.info().outputPath('media.m3u8'),
    await (await fetch(new URL(variant.uri, session.url))).text(),
  );
  const maps = new Set(media.segments.map((s) => s.map?.uri));
  const discontinuities = media.segments.filter((s) => s.discontinuity).length;
  report(test.info(), 'hls', { segments: media.segments.length, maps: maps.size, discontinuities, recorded });
  // A segment per KVS fragment; kvssink may send a fragment again after a reconnect (same producer
  // timestamp), and HLS lists it once, as KVS does.
  const index = JSON.parse(
    await readFile(join(stack.emulator.dataDir, DEFAULT_STREAM_NAME, 'index.json'), 'utf8'),
  ) as FragmentRecord[];
  await writeFile(test.info().outputPath('index.json'), JSON.stringify(index, null, 1));
  expect(index.every((f) => f.startsWithKeyFrame)).toBe(true);
  expect(media.segments.length).toBe(new Set(index.map((f) => f.producerTimestampMs)).size);
  expect(maps.size).toBeGreaterThanOrEqual(recorded.length);
  expect(discontinuities).toBe(maps.size - 1);

  await page
    .locator('#video')
    .evaluate((video) => ((video as unknown as { playbackRate: number }).playbackRate = 4));
  await page.waitForTimeout(2000);
  const picture = await videoPicture(page);
  await page.screenshot({ path: test.info().outputPath('player.png') });
  await expect
    .poll(async () => (await playerState(page)).state, { timeout: 90_000, intervals: [500] })
    .toBe('ended');
  const state = await playerState(page);
  report(test.info(), 'on demand', state);
  expect(state.errors).toEqual([]);
  expect(pageErrors).toEqual([]);
  expect(state.resolutionsSeen).toEqual(recorded);
  expect(state.audioDecodedBytes).toBeGreaterThan(0);
  // The reference master's fake camera: a green picture, not black.
  expect(picture.g).toBeGreaterThan(60);
  expect(picture.g).toBeGreaterThan(picture.r + 30);
});
