import { execFile } from 'node:child_process';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { PlayerState } from '../../emulator/player/playerState.js';

/** The recordings player page in Debian's Chromium, for the player tests (emulator-level and end to end). */
export interface OpenPlayer {
  page: Page;
  /** Uncaught errors of the page. */
  pageErrors: string[];
}

export function launchPlayerBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/lib/chromium/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--autoplay-policy=no-user-gesture-required'],
  });
}

/** Opens the player at `query` (e.g. `stream=name&mode=LIVE`). */
export async function openPlayerPage(
  browser: Browser,
  playerUrl: string,
  query: string,
): Promise<OpenPlayer> {
  const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await page.goto(`${playerUrl}?${query}`);
  return { page, pageErrors };
}

export const playerState = (page: Page): Promise<PlayerState> =>
  page.evaluate(() => (globalThis as unknown as { playerState: PlayerState }).playerState);

/** Mean colour of a screenshot of the video element, and its pixels (RGB24) to compare two pictures. */
export async function videoPicture(page: Page): Promise<{ r: number; g: number; b: number; pixels: Buffer }> {
  const png = await page.locator('#video').screenshot();
  const pixels = await new Promise<Buffer>((resolve, reject) => {
    const child = execFile(
      'ffmpeg',
      [
        '-nostdin',
        '-v',
        'error',
        '-f',
        'png_pipe',
        '-i',
        'pipe:0',
        '-vf',
        'scale=160:90',
        '-f',
        'rawvideo',
        '-pix_fmt',
        'rgb24',
        'pipe:1',
      ],
      { encoding: 'buffer', maxBuffer: 16 * 1024 * 1024 },
      (err, out) => (err ? reject(new Error(err.message)) : resolve(out)),
    );
    child.stdin?.end(png);
  });
  let r = 0;
  let g = 0;
  let b = 0;
  for (let i = 0; i + 2 < pixels.length; i += 3) {
    r += pixels[i]!;
    g += pixels[i + 1]!;
    b += pixels[i + 2]!;
  }
  const n = pixels.length / 3;
  return { r: r / n, g: g / n, b: b / n, pixels };
}

export function meanDifference(a: Buffer, b: Buffer): number {
  let sum = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / Math.min(a.length, b.length);
}
