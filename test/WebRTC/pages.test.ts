import { resolve } from 'node:path';
import { expect, test } from '@playwright/test';
import { chromium, type Browser } from 'playwright-core';
import { serveStatic } from '../../scripts/lib/staticServer.js';

/** The two built bundles (`npx vite build`) load offline in Debian's Chromium and run without page errors. */
const WEB_ROOT = resolve(import.meta.dirname, '../../dist/web');
let browser: Browser;
let server: Awaited<ReturnType<typeof serveStatic>>;

test.beforeAll(async () => {
  server = await serveStatic(WEB_ROOT);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/lib/chromium/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking'],
  });
});

test.afterAll(async () => {
  await browser?.close();
  await server?.close();
});

test('the viewer page starts, finds no agent and keeps retrying without page errors', async () => {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  const offline: string[] = [];
  page.on('request', (req) => {
    if (!req.url().startsWith(server.url) && !req.url().startsWith('ws://')) offline.push(req.url());
  });
  await page.goto(`${server.url}/page/index.html#token=abc`);
  await expect(page.locator('#log')).toContainText('agent control channel unavailable');
  await expect(page.locator('dd[data-field="signaling"]')).toHaveText('closed');
  expect(errors).toEqual([]);
  expect(offline, 'everything is bundled, nothing from a CDN').toEqual([]);
  await page.close();
});

test('the viewer page without a token says so', async () => {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(`${server.url}/page/index.html`);
  await expect(page.locator('#log')).toContainText('no #token=');
  expect(errors).toEqual([]);
  await page.close();
});

test('the master page loads idle, and refuses to start without credentials', async () => {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(`${server.url}/WebRTC/index.html?region=ap-northeast-1&autostart=1`);
  await expect(page.locator('#log')).toContainText('access key id and secret access key are required');
  expect(
    await page.evaluate(
      () => (globalThis as unknown as { masterState: { signaling: string } }).masterState.signaling,
    ),
  ).toBe('idle');
  expect(errors).toEqual([]);
  await page.close();
});
