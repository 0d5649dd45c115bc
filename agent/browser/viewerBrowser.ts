import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser, type ConsoleMessage } from 'puppeteer-core';
import { ChildProcessError, errorMessage, withTimeout } from '../errors.js';
import type { Logger } from '../log.js';
import { RingBuffer } from '../log.js';
import { TypedEmitter } from '../typedEmitter.js';

/** Flags measured to work in a closed network and in a container (see docs/chromium-encoded-frames.md). */
export const CHROMIUM_FLAGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
  '--autoplay-policy=no-user-gesture-required',
  // A hidden page must not be throttled: the transform has to keep up with the call.
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

export interface ViewerBrowserOptions {
  executablePath: string;
  url: string;
  headed: boolean;
  logger: Logger;
  launchTimeoutMs?: number;
}

export interface ViewerBrowserEvents extends Record<string, unknown[]> {
  /** Chromium or the page went away without close() being called. */
  died: [ChildProcessError];
}

/**
 * Supervises the viewer Chromium: one browser, one page. `start()` resolves once the page has loaded;
 * `close()` is idempotent and escalates from a polite close to SIGKILL. It never restarts itself: the
 * owner's policy decides.
 */
export class ViewerBrowser extends TypedEmitter<ViewerBrowserEvents> {
  readonly #options: ViewerBrowserOptions;
  readonly #output = new RingBuffer(50);
  #browser: Browser | undefined;
  #userDataDir: string | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: ViewerBrowserOptions) {
    super();
    this.#options = options;
  }

  get pid(): number | undefined {
    return this.#browser?.process()?.pid;
  }

  async start(): Promise<void> {
    const { logger } = this.#options;
    this.#userDataDir = await mkdtemp(join(tmpdir(), 'webrtc-kvs-agent-chromium-'));
    try {
      this.#browser = await puppeteer.launch({
        executablePath: this.#options.executablePath,
        headless: !this.#options.headed,
        userDataDir: this.#userDataDir,
        args: [...CHROMIUM_FLAGS],
        // A pipe instead of a debugging port: nothing else can attach, and Chromium exits with the agent
        // even if the agent is SIGKILLed.
        pipe: true,
        // Only main.ts owns process signals.
        handleSIGINT: false,
        handleSIGTERM: false,
        handleSIGHUP: false,
        // Without this the CDP Network domain mirrors every frame WebSocket message to Node (measured +0.03 CPU-s/s).
        networkEnabled: false,
        protocolTimeout: 60_000,
        // The page's environment needs nothing of the agent's: above all no AWS credentials.
        env: chromiumEnvironment(process.env),
        dumpio: false,
      });
      const proc = this.#browser.process();
      proc?.stderr?.on('data', (chunk: Buffer) => {
        for (const line of chunk.toString().split('\n')) {
          if (line.trim()) {
            this.#output.push(line);
            logger.debug({ child: 'chromium' }, line);
          }
        }
      });
      this.#browser.on('disconnected', () => this.#onGone('Chromium disconnected'));
      const page = await this.#browser.newPage();
      page.on('console', (msg: ConsoleMessage) => this.#onConsole(msg));
      page.on('pageerror', (err: unknown) =>
        logger.error({ child: 'page', err: errorMessage(err) }, 'page error'),
      );
      page.on('error', (err: Error) => this.#onGone(`page crashed: ${err.message}`));
      await withTimeout(
        page.goto(this.#options.url, { waitUntil: 'load' }),
        this.#options.launchTimeoutMs ?? 30_000,
        'loading the viewer page',
      );
      logger.info({ pid: this.pid, headed: this.#options.headed }, 'viewer browser ready');
    } catch (err) {
      const error = new ChildProcessError(
        `Chromium failed to start: ${errorMessage(err)}`,
        { child: 'chromium', pid: this.pid, recentOutput: this.#output.lines() },
        { cause: err },
      );
      await this.close();
      throw error;
    }
  }

  /** Idempotent: the second call returns the first call's promise. */
  close(): Promise<void> {
    this.#closing ??= this.#doClose();
    return this.#closing;
  }

  async #doClose(): Promise<void> {
    const browser = this.#browser;
    const proc = browser?.process();
    if (browser) {
      try {
        await withTimeout(browser.close(), 5_000, 'closing Chromium');
      } catch (err) {
        this.#options.logger.warn({ err: errorMessage(err) }, 'Chromium did not close, killing it');
        proc?.kill('SIGKILL');
      }
    }
    if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    if (this.#userDataDir)
      await rm(this.#userDataDir, { recursive: true, force: true }).catch(() => undefined);
  }

  #onGone(reason: string): void {
    if (this.#closing) return;
    const proc = this.#browser?.process();
    this.safeEmit(
      'died',
      new ChildProcessError(reason, {
        child: 'chromium',
        pid: proc?.pid,
        exitCode: proc?.exitCode,
        signal: proc?.signalCode,
        recentOutput: this.#output.lines(),
      }),
    );
  }

  #onConsole(msg: ConsoleMessage): void {
    const type = msg.type();
    const level = type === 'error' ? 'error' : type === 'warn' ? 'warn' : type === 'debug' ? 'debug' : 'info';
    this.#options.logger[level]({ child: 'page' }, msg.text());
  }
}

/** Chromium needs a display, locale and home, nothing else — and never the agent's AWS credentials. */
export function chromiumEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const keep = [
    'PATH',
    'HOME',
    'DISPLAY',
    'WAYLAND_DISPLAY',
    'XDG_RUNTIME_DIR',
    'LANG',
    'LC_ALL',
    'TZ',
    'FONTCONFIG_PATH',
  ];
  const out: Record<string, string> = {};
  for (const key of keep) {
    const value = env[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}
