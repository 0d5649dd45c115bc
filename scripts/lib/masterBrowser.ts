import { resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CHROMIUM_FLAGS } from '../../agent/browser/viewerBrowser.js';
import { createLogger, type Logger } from '../../agent/log.js';
import type { MasterState } from '../../WebRTC/masterState.js';
import { serveStatic } from './staticServer.js';

export type { MasterState } from '../../WebRTC/masterState.js';

export interface MasterOptions {
  /** Control-plane endpoint (`http://127.0.0.1:PORT` for the emulator); empty for real AWS. */
  endpoint: string;
  region: string;
  channel: string;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  headed?: boolean;
  maintainResolution?: boolean;
  /** Built pages; default `dist/web` (run `vite build` first). */
  webRoot?: string;
  logger?: Logger;
}

export interface MasterHandle {
  state(): Promise<MasterState>;
  /** Resolves with the id of the first viewer whose peer connection is `connected`. */
  waitForViewerConnected(timeoutMs: number): Promise<string>;
  /** framesEncoded for one viewer, or summed over all of them. */
  framesEncoded(clientId?: string): Promise<number>;
  close(): Promise<void>;
}

/** What the page defines on `window` (this file is compiled without the DOM library). */
interface PageGlobals {
  masterState: MasterState;
}

const ROOT = resolve(import.meta.dirname, '../..');

/** The agent's measured flags plus a fake camera at 30 fps (the default is 20) and microphone. */
const MASTER_FLAGS = [
  ...CHROMIUM_FLAGS,
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream=fps=30',
];

/**
 * The reference master page (`WebRTC/`) in its own Chromium with a fake camera and microphone, started through
 * its query parameters. The page's log goes into a pino logger.
 */
export async function launchMaster(options: MasterOptions): Promise<MasterHandle> {
  const log = options.logger ?? createLogger({ level: 'warn' }).child({ component: 'master' });
  const server = await serveStatic(options.webRoot ?? resolve(ROOT, 'dist/web'));
  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/lib/chromium/chromium',
      headless: !options.headed,
      args: MASTER_FLAGS,
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
    });
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('console', (msg) => {
      const level = msg.type() === 'error' ? 'error' : msg.type() === 'warning' ? 'warn' : 'debug';
      log[level]({ source: 'console' }, msg.text());
    });
    page.on('pageerror', (err) => log.error({ err: err.message }, 'master page error'));
    await page.exposeFunction('masterLog', (level: unknown, msg: unknown) => {
      const l = level === 'error' ? 'error' : level === 'warn' ? 'warn' : 'info';
      log[l](String(msg));
    });
    const query = new URLSearchParams({
      endpoint: options.endpoint,
      region: options.region,
      channel: options.channel,
      accessKeyId: options.credentials.accessKeyId,
      secretAccessKey: options.credentials.secretAccessKey,
      ...(options.credentials.sessionToken ? { sessionToken: options.credentials.sessionToken } : {}),
      autostart: '1',
      maintainResolution: options.maintainResolution ? '1' : '0',
    });
    await page.goto(`${server.url}/WebRTC/index.html?${query.toString()}`);
    await page.waitForFunction(
      () => {
        const { signaling } = (globalThis as unknown as PageGlobals).masterState;
        return signaling === 'open' || signaling === 'error';
      },
      undefined,
      { timeout: 30_000 },
    );
    const state = await readState(page);
    if (state.signaling !== 'open')
      throw new Error(`the master page did not connect: ${state.error ?? state.signaling}`);
    log.info('master connected to signaling');
    return handle(browser, page, () => server.close());
  } catch (err) {
    await browser?.close().catch(() => undefined);
    await server.close();
    throw err;
  }
}

function readState(page: Page): Promise<MasterState> {
  return page.evaluate(
    () => JSON.parse(JSON.stringify((globalThis as unknown as PageGlobals).masterState)) as MasterState,
  );
}

function handle(browser: Browser, page: Page, closeServer: () => Promise<void>): MasterHandle {
  let closing: Promise<void> | undefined;
  return {
    state: () => readState(page),
    async waitForViewerConnected(timeoutMs) {
      const id = await page.waitForFunction(
        () =>
          Object.entries((globalThis as unknown as PageGlobals).masterState.viewers).find(
            ([, v]) => v.connectionState === 'connected',
          )?.[0],
        undefined,
        { timeout: timeoutMs, polling: 250 },
      );
      return (await id.jsonValue()) as string;
    },
    async framesEncoded(clientId) {
      const { viewers } = await readState(page);
      if (clientId !== undefined) return viewers[clientId]?.framesEncoded ?? 0;
      return Object.values(viewers).reduce((sum, v) => sum + v.framesEncoded, 0);
    },
    close() {
      closing ??= (async () => {
        await browser.close().catch(() => undefined);
        await closeServer();
      })();
      return closing;
    },
  };
}
