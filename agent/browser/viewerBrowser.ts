import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser, type ConsoleMessage, type Page } from 'puppeteer-core';
import { ChildProcessError, errorMessage, withTimeout } from '../errors.js';
import type { Logger } from '../log.js';
import { lineSplitter, RingBuffer } from '../log.js';
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
  // Chromium 156 preloads two WebUI omnibox popups, each in a renderer of its own, even headless, and keeps a
  // spare renderer warm for the next navigation: ≈ 30–70 MiB of PSS that serves no recorder (measured with
  // SystemInfo.getProcessInfo; puppeteer merges this list with its own --disable-features).
  '--disable-features=WebUIOmniboxPopup,WebUIOmniboxAimPopup,SpareRendererForSitePerProcess',
];

/**
 * Headed only: the page plays the call out (its meter reads inbound-rtp `audioLevel`, which Chromium
 * computes after the element's volume, so a muted element reads silence — measured, Chromium 156) into a
 * fake audio output: nothing is heard, and no sound device is needed (Xvfb, containers).
 */
export const HEADED_CHROMIUM_FLAGS: readonly string[] = ['--disable-audio-output'];

export interface ViewerBrowserOptions {
  executablePath: string;
  headed: boolean;
  logger: Logger;
  launchTimeoutMs?: number;
}

export interface ViewerBrowserEvents extends Record<string, unknown[]> {
  /** Chromium went away without close() being called. */
  died: [ChildProcessError];
}

export interface ViewerPageEvents extends Record<string, unknown[]> {
  /** The page's renderer crashed or the page closed without close() being called. */
  crashed: [ChildProcessError];
}

/** One viewer page (one channel) in the shared Chromium. */
export class ViewerPage extends TypedEmitter<ViewerPageEvents> {
  readonly #page: Page;
  readonly #log: Logger;
  #closing: Promise<void> | undefined;

  constructor(page: Page, logger: Logger) {
    super();
    this.#page = page;
    this.#log = logger;
    page.on('console', (msg: ConsoleMessage) => this.#onConsole(msg));
    page.on('pageerror', (err: unknown) => logger.error({ child: 'page', err: err }, 'page error'));
    page.on('error', (err: Error) => this.#gone(`page crashed: ${err.message}`));
    page.on('close', () => this.#gone('page closed'));
  }

  /**
   * Navigates and resolves once the page said hello over its control channel (`ready`), not merely on
   * `load`: only then can it be configured.
   */
  async open(url: string, ready: () => Promise<void>, timeoutMs: number): Promise<void> {
    const hello = ready();
    await withTimeout(
      Promise.all([this.#page.goto(url, { waitUntil: 'load' }), hello]),
      timeoutMs,
      'opening the viewer page',
    );
  }

  /** A reload that must finish (hello again) within timeoutMs; rejects otherwise (the renderer hung). */
  async reload(ready: () => Promise<void>, timeoutMs: number): Promise<void> {
    const hello = ready();
    await withTimeout(
      Promise.all([this.#page.reload({ waitUntil: 'load' }), hello]),
      timeoutMs,
      'reloading the viewer page',
    );
  }

  /** Idempotent. */
  close(): Promise<void> {
    this.#closing ??= withTimeout(this.#page.close(), 3_000, 'closing the viewer page').catch(
      () => undefined,
    );
    return this.#closing;
  }

  #gone(reason: string): void {
    if (this.#closing) return;
    this.#closing = Promise.resolve();
    this.safeEmit('crashed', new ChildProcessError(reason, { child: 'chromium-page' }));
  }

  #onConsole(msg: ConsoleMessage): void {
    const type = msg.type();
    const level = type === 'error' ? 'error' : type === 'warn' ? 'warn' : type === 'debug' ? 'debug' : 'info';
    this.#log[level]({ child: 'page' }, msg.text().slice(0, 4000));
  }
}

/**
 * Supervises the viewer Chromium. `start()` resolves once the browser answers over its pipe; pages are opened
 * with openPage(). `close()` is idempotent and escalates from a polite close to SIGKILL of Chromium's whole
 * process group (renderers, GPU and utility processes included). It never restarts itself: the owner's
 * policy decides.
 */
export class ViewerBrowser extends TypedEmitter<ViewerBrowserEvents> {
  readonly #options: ViewerBrowserOptions;
  readonly #output = new RingBuffer(50);
  #browser: Browser | undefined;
  /**
   * Headless only: the tab Chromium opens at start becomes the first page instead of idling in a renderer of
   * its own. A headed Chromium quits with its last window, so there that tab stays as the anchor.
   */
  #initialTab: Page | undefined;
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
      this.#browser = await withTimeout(
        puppeteer.launch({
          executablePath: this.#options.executablePath,
          headless: !this.#options.headed,
          userDataDir: this.#userDataDir,
          args: [...CHROMIUM_FLAGS, ...(this.#options.headed ? HEADED_CHROMIUM_FLAGS : [])],
          // Headed: the page is as large as its window (and follows it when resized), not puppeteer's fixed
          // 800×600 emulation.
          ...(this.#options.headed ? { defaultViewport: null } : {}),
          // A pipe instead of a debugging port: nothing else can attach, and Chromium exits with the agent
          // even if the agent is SIGKILLed.
          pipe: true,
          // Only main.ts owns process signals.
          handleSIGINT: false,
          handleSIGTERM: false,
          handleSIGHUP: false,
          // Without this the CDP Network domain mirrors every frame WebSocket message to Node (measured +0.03 CPU-s/s).
          networkEnabled: false,
          protocolTimeout: 30_000,
          // The page's environment needs nothing of the agent's: above all no AWS credentials.
          env: chromiumEnvironment(process.env),
          dumpio: false,
        }),
        this.#options.launchTimeoutMs ?? 30_000,
        'launching Chromium',
      );
      const proc = this.#browser.process();
      proc?.stderr?.on(
        'data',
        lineSplitter((line) => {
          if (!line.trim()) return;
          this.#output.push(line);
          logger.debug({ child: 'chromium' }, line);
        }),
      );
      if (!this.#options.headed)
        this.#initialTab = (await this.#browser.pages()).find((p) => p.url() === 'about:blank');
      this.#browser.on('disconnected', () => this.#onGone('Chromium disconnected'));
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

  /** Whether the browser answers over its pipe within `timeoutMs` (a SIGSTOPped or wedged browser does not). */
  async responsive(timeoutMs: number): Promise<boolean> {
    const browser = this.#browser;
    if (!browser || this.#closing) return false;
    try {
      await withTimeout(browser.version(), timeoutMs, 'asking Chromium for its version');
      return true;
    } catch {
      return false;
    }
  }

  /** A new page in this browser (one per channel). */
  async newPage(logger: Logger): Promise<ViewerPage> {
    if (!this.#browser || this.#closing)
      throw new ChildProcessError('Chromium is not running', { child: 'chromium' });
    const initial = this.#initialTab;
    this.#initialTab = undefined;
    const page =
      initial && !initial.isClosed()
        ? initial
        : await withTimeout(this.#browser.newPage(), 10_000, 'opening a Chromium tab');
    return new ViewerPage(page, logger);
  }

  /** Idempotent: the second call returns the first call's promise. */
  close(): Promise<void> {
    this.#closing ??= this.#doClose();
    return this.#closing;
  }

  /** SIGKILL to Chromium's process group at once (a hung browser, e.g. SIGSTOPped, cannot close politely). */
  kill(): void {
    killGroup(this.#browser?.process()?.pid);
  }

  async #doClose(): Promise<void> {
    const browser = this.#browser;
    const proc = browser?.process();
    if (browser) {
      try {
        await withTimeout(browser.close(), 3_000, 'closing Chromium');
      } catch (err) {
        this.#options.logger.warn({ err: err }, 'Chromium did not close, killing it');
      }
    }
    // Whatever is left of the group (renderers outlive a killed browser process otherwise).
    killGroup(proc?.pid);
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
}

/** puppeteer starts Chromium as a process-group leader (detached): its pid is the group id. */
function killGroup(pid: number | undefined): void {
  if (!pid) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/**
 * What Chromium may see of the agent's environment: a display, locale, fonts and home — never the agent's
 * AWS credentials or anything else. The display variables are what `--headed` needs on each kind of desktop:
 * X11 (`DISPLAY`, and `XAUTHORITY` for the cookie: xvfb-run, display managers and `ssh -X` put it outside
 * `~/.Xauthority`), Wayland (`WAYLAND_DISPLAY` and `XDG_RUNTIME_DIR`, where its socket lives;
 * `XDG_SESSION_TYPE` lets Chromium's Ozone layer pick Wayland, with XWayland through `DISPLAY` as fallback).
 */
export function chromiumEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const keep = [
    'PATH',
    'HOME',
    'DISPLAY',
    'XAUTHORITY',
    'WAYLAND_DISPLAY',
    'XDG_RUNTIME_DIR',
    'XDG_SESSION_TYPE',
    'LANG',
    'LC_ALL',
    'TZ',
    'FONTCONFIG_PATH',
  ];
  const out: Record<string, string> = {};
  for (const key of keep) {
    const value = env[key];
    if (value !== undefined && value !== '') out[key] = value;
  }
  return out;
}
