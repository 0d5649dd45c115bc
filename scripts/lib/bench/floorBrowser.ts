import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { CHROMIUM_FLAGS } from '../../../agent/browser/viewerBrowser.js';
import { agentChromiumPath } from '../../../agent/config.js';
import type { FloorChannelState } from '../../../WebRTC/floorState.js';
import { serveStatic } from '../staticServer.js';

const ROOT = resolve(import.meta.dirname, '../../..');

export interface FloorBrowser {
  readonly pid: number;
  state(): Promise<Record<string, FloorChannelState>>;
  close(): Promise<void>;
}

/**
 * The receive floor (`WebRTC/floor.html`): the same Chromium, launched the way the agent launches it (the
 * headless shell, its flags, a pipe, no Network domain), receiving and decoding `channels` with no transform.
 * Resolves once every channel has decoded `minFrames` video frames.
 */
export async function launchFloor(options: {
  endpoint: string;
  region: string;
  channels: string[];
  credentials: { accessKeyId: string; secretAccessKey: string };
  executablePath?: string;
  minFrames?: number;
}): Promise<FloorBrowser> {
  const server = await serveStatic(resolve(ROOT, 'dist/web'));
  const userDataDir = await mkdtemp(join(tmpdir(), 'kvs-agent-floor-'));
  let browser: Browser | undefined;
  const close = async () => {
    await browser?.close().catch(() => undefined);
    await server.close();
    await rm(userDataDir, { recursive: true, force: true });
  };
  try {
    browser = await puppeteer.launch({
      executablePath: options.executablePath ?? agentChromiumPath(),
      headless: true,
      userDataDir,
      args: [...CHROMIUM_FLAGS],
      pipe: true,
      networkEnabled: false,
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
    });
    const page: Page = await browser.newPage();
    const query = new URLSearchParams({
      endpoint: options.endpoint,
      region: options.region,
      channels: options.channels.join(','),
      accessKeyId: options.credentials.accessKeyId,
      secretAccessKey: options.credentials.secretAccessKey,
    });
    await page.goto(`${server.url}/WebRTC/floor.html?${query.toString()}`);
    const state = () =>
      page.evaluate(
        () => (globalThis as unknown as { floorState: Record<string, FloorChannelState> }).floorState,
      );
    const deadline = Date.now() + 60_000 + 10_000 * options.channels.length;
    for (;;) {
      const s = await state();
      const waiting = options.channels.filter((c) => (s[c]?.framesDecoded ?? 0) < (options.minFrames ?? 30));
      if (waiting.length === 0) break;
      const failed = options.channels.find((c) => s[c]?.error);
      if (failed) throw new Error(`floor viewer for ${failed}: ${s[failed]!.error}`);
      if (Date.now() > deadline) throw new Error(`floor viewer: no frames decoded on ${waiting.join(', ')}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const pid = browser.process()?.pid;
    if (!pid) throw new Error('floor Chromium has no pid');
    return { pid, state, close };
  } catch (err) {
    await close();
    throw err;
  }
}
