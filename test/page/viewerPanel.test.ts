import { resolve } from 'node:path';
import { expect, test } from '@playwright/test';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { AgentToPage, RecordingStatus } from '../../agent/bridge/controlProtocol.js';
import { BridgeServer } from '../../agent/bridge/bridgeServer.js';
import { CHROMIUM_FLAGS } from '../../agent/browser/viewerBrowser.js';
import { agentChromiumPath } from '../../agent/config.js';
import { createLogger } from '../../agent/log.js';

/**
 * The built viewer page (`npx vite build`) against the agent's real bridge, without a call: its panel at
 * Chromium's default window size, the token out of the address bar (and back after a reload), and the
 * agent's `recording` messages shown or refused.
 */
const WEB_ROOT = resolve(import.meta.dirname, '../../dist/web');
/** The agent's Chromium. */
const CHROMIUM = agentChromiumPath();
const logger = createLogger({ level: 'silent' });

let browser: Browser;
let bridge: BridgeServer;

test.beforeAll(async () => {
  bridge = new BridgeServer({ webRoot: WEB_ROOT, logger });
  await bridge.listen();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_FLAGS] });
});

test.afterAll(async () => {
  await browser?.close();
  await bridge?.close();
});

function hello(): Promise<void> {
  return new Promise((done) => {
    const on = (msg: { type: string }) => {
      if (msg.type !== 'hello') return;
      bridge.off('control', on);
      done();
    };
    bridge.on('control', on);
  });
}

async function open(fragmentExtra: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 800, height: 600 } });
  const said = hello();
  await page.goto(`${bridge.pageUrl}${fragmentExtra}`);
  await said;
  return page;
}

const overflow = (page: Page) =>
  page.evaluate<{ scrollWidth: number; clientWidth: number }>(
    `({ scrollWidth: document.scrollingElement.scrollWidth, clientWidth: document.scrollingElement.clientWidth })`,
  );

test('headed: the token leaves the address bar, survives a reload, and the panel fits 800x600', async () => {
  const page = await open('&headed=1');
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  expect(page.url()).not.toContain(bridge.token);
  expect(page.url()).not.toContain('#');
  await expect(page.locator('video[data-field="video"]')).toHaveCount(1);
  await expect(page.locator('[data-spark]')).toHaveCount(4);
  await expect(page.locator('[data-field="audioLevel"]')).toHaveAttribute('data-level', '0.0000');
  for (const size of [
    { width: 800, height: 600 },
    { width: 640, height: 480 },
    { width: 480, height: 640 },
  ]) {
    await page.setViewportSize(size);
    const o = await overflow(page);
    expect(o.scrollWidth, `${size.width}x${size.height}`).toBeLessThanOrEqual(o.clientWidth);
  }
  expect(await page.locator('body').innerText()).not.toContain(bridge.token);

  // The agent's recovery for a hung page is a reload: the page must still find its token.
  const again = hello();
  await page.reload();
  await again;
  await expect(page.locator('video[data-field="video"]')).toHaveCount(1);
  expect(errors).toEqual([]);
  await page.close();
});

test('headless: no video element, the same panel otherwise', async () => {
  const page = await open('');
  await expect(page.locator('video')).toHaveCount(0);
  await expect(page.locator('.no-video')).toHaveCount(1);
  await expect(page.locator('dd[data-field="signaling"]')).toHaveText('closed');
  await page.close();
});

test("the agent's recording state is shown; a malformed one is refused and counted", async () => {
  const page = await open('&headed=1');
  const now = Date.now();
  const status: RecordingStatus = {
    sink: 'kvssink',
    state: 'running',
    runs: 2,
    restarts: 1,
    current: { number: 2, name: 'camera-stream', size: '1280x720', startedAtMs: now - 5_000 },
    last: { number: 1, name: 'camera-stream', endedAtMs: now - 6_000, videoFrames: 300 },
    fragments: {
      received: 3,
      persisted: 3,
      errors: 0,
      last: { ack: 'persisted', timecode: now - 2_000, atMs: now },
    },
  };
  expect(bridge.sendControl({ type: 'recording', ...status })).toBe(true);
  const rec = page.locator('#recording');
  await expect(rec).toHaveAttribute('data-state', 'running');
  await expect(rec.locator('[data-field="recorder"]')).toHaveText('running · kvssink · 2 runs · 1 restart');
  await expect(rec.locator('[data-field="run"]')).toContainText(
    'kvssink session #2 camera-stream · 1280x720',
  );
  await expect(rec.locator('[data-field="last"]')).toContainText('#1 camera-stream ended');
  await expect(rec.locator('[data-field="fragment"]')).toContainText('#3 persisted, 3 received, 0 errors');

  bridge.sendControl({ type: 'recording', ...status, sink: 'ftp' } as unknown as AgentToPage);
  await expect.poll(() => page.evaluate<number>('window.viewerStatus.recordingInvalid')).toBe(1);
  await expect(page.locator('#warnings')).toContainText('invalid recording status from the agent');
  // The valid one stays on screen.
  await expect(rec.locator('[data-field="run"]')).toContainText('#2');
  const o = await overflow(page);
  expect(o.scrollWidth).toBeLessThanOrEqual(o.clientWidth);
  await page.close();
});
