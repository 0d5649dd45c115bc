import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';
import { CHROMIUM_FLAGS } from '../../agent/browser/viewerBrowser.js';

/** Debian's Chromium binary (not the /usr/bin wrapper script), or CHROMIUM_PATH. */
export function chromiumPath(): string {
  return process.env.CHROMIUM_PATH ?? '/usr/lib/chromium/chromium';
}

/**
 * Renders an HTML document's `selector` element to a PNG with headless Chromium — the bench chart, the
 * contact sheet and the recording timeline are HTML/SVG, so no other image library is needed.
 */
export async function renderHtmlToPng(
  html: string,
  file: string,
  options: { executablePath?: string; selector?: string } = {},
): Promise<void> {
  const userDataDir = await mkdtemp(join(tmpdir(), 'kvs-agent-render-'));
  const browser = await puppeteer.launch({
    executablePath: options.executablePath ?? chromiumPath(),
    headless: true,
    userDataDir,
    args: [...CHROMIUM_FLAGS],
    pipe: true,
  });
  try {
    const page = await browser.newPage();
    await page.setContent(html, { waitUntil: 'load' });
    const selector = options.selector ?? '#chart';
    const element = await page.$(selector);
    if (!element) throw new Error(`${selector} did not render`);
    await element.screenshot({ path: file });
  } finally {
    await browser.close();
    await rm(userDataDir, { recursive: true, force: true });
  }
}

/** Text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}
