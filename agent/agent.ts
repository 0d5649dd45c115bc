import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { ViewerBrowser } from './browser/viewerBrowser.js';
import type { AgentConfig, ChannelEntry } from './config.js';
import { AgentError, errorMessage } from './errors.js';
import type { Logger } from './log.js';
import { RetryStreak, retryPolicy, type RetryPolicy } from './policy/backoff.js';
import { FileSink } from './sink/fileSink.js';
import { KvssinkSink } from './sink/kvssinkSink.js';
import type { Sink } from './sink/sink.js';
import type { WatchdogThresholds } from './unit/mediaWatchdog.js';
import { RecordingUnit, type UnitHealth, type UnitSummary } from './unit/recordingUnit.js';
import type { AgentMetrics } from './ops/metrics.js';
import { TypedEmitter } from './typedEmitter.js';

/** A relaunched browser that stayed up this long ends the failure streak. */
const BROWSER_STABLE_MS = 60_000;

export interface AgentDependencies {
  config: AgentConfig;
  logger: Logger;
  credentials: AwsCredentialIdentityProvider;
  /** Metrics of every channel (each unit gets its channel's). */
  metrics?: AgentMetrics;
  browserRestartPolicy?: RetryPolicy;
  pipelineRestartPolicy?: RetryPolicy;
  watchdog?: Partial<WatchdogThresholds>;
}

export interface AgentEvents extends Record<string, unknown[]> {
  /** The agent cannot go on (a child failed beyond its restart policy): main stops it and exits non-zero. */
  fatal: [Error];
  /** A child was restarted (metrics). */
  restart: [{ child: 'chromium' | 'page'; reason: string }];
}

export interface AgentHealth {
  /** Alive and supervising: false only once it gave up or is stopping. */
  alive: boolean;
  ready: boolean;
  browser: 'starting' | 'up' | 'relaunching' | 'stopped';
  units: UnitHealth[];
}

/** Thrown inside start() when stop() came first: nothing more is started. */
class StoppedDuringStart extends AgentError {
  constructor() {
    super('INVALID_STATE', 'stopped while starting');
  }
}

/**
 * The supervisor: one Chromium (relaunched by policy when it dies or hangs) and one recording unit per
 * channel, each with a page in that browser. Process signals, exit codes and the stop budget belong to
 * main.ts. Teardown order in stop(); see docs/lifecycle.md.
 */
export class Agent extends TypedEmitter<AgentEvents> {
  readonly #config: AgentConfig;
  readonly #log: Logger;
  readonly #deps: AgentDependencies;
  readonly #units: RecordingUnit[] = [];
  /** The channel entry each unit records (a changed stream for a channel is a new unit). */
  readonly #entries = new Map<RecordingUnit, ChannelEntry>();
  #reconfiguring: Promise<unknown> = Promise.resolve();
  readonly #browserFailures: RetryStreak;
  #browser: ViewerBrowser | undefined;
  #browserState: AgentHealth['browser'] = 'starting';
  #browserUpSince = 0;
  #relaunchTimer: NodeJS.Timeout | undefined;
  #relaunching: Promise<void> | undefined;
  #starting: Promise<void> | undefined;
  #stopping = false;
  #gaveUp = false;

  constructor(deps: AgentDependencies) {
    super();
    this.#deps = deps;
    this.#config = deps.config;
    this.#log = deps.logger;
    this.#browserFailures = new RetryStreak(deps.browserRestartPolicy ?? retryPolicy('browserRestart'));
  }

  start(): Promise<void> {
    this.#starting ??= this.#doStart();
    return this.#starting;
  }

  async #doStart(): Promise<void> {
    // One unit per channel, each with its own sink; they share the browser (a page each) and nothing else.
    for (const entry of this.#config.channels) this.#units.push(this.#makeUnit(entry));
    for (const unit of this.#units) {
      await unit.start();
      this.#checkStopping();
    }
    try {
      await this.#launchBrowser();
    } catch (err) {
      if (err instanceof StoppedDuringStart) throw err;
      // Like any later failure: retried on the browserRestart policy; the agent is up but not ready meanwhile.
      this.#log.error({ err }, 'the viewer browser did not start');
      this.#relaunch(`start failed: ${errorMessage(err)}`);
    }
  }

  /** The page's lines: `channel` only where main.ts did not bind it already (a second key would duplicate it). */
  #pageLogger(unit: RecordingUnit): Logger {
    return this.#log.child({
      component: 'page',
      ...(this.#config.channelPerUnit ? { channel: unit.channel } : {}),
    });
  }

  #makeUnit(entry: ChannelEntry): RecordingUnit {
    const config = this.#config;
    const metrics = this.#deps.metrics?.channel(entry.channel);
    // Several channels: each unit's lines say which channel they are about.
    const logger = config.channelPerUnit ? this.#log.child({ channel: entry.channel }) : this.#log;
    const unit = new RecordingUnit({
      channel: entry.channel,
      clientId: config.clientId,
      region: config.region,
      endpoint: config.endpoint,
      credentials: this.#deps.credentials,
      sink: this.#makeSink(entry, logger),
      webRoot: config.webRoot,
      gstLaunchPath: config.gstLaunchPath,
      keyframeIntervalMs: config.keyframeIntervalMs,
      signalingRenewMs: config.signalingRenewSeconds * 1000,
      headed: config.headed,
      streamName: entry.stream,
      logger,
      ...(metrics ? { metrics } : {}),
      ...(this.#deps.pipelineRestartPolicy
        ? { pipelineRestartPolicy: this.#deps.pipelineRestartPolicy }
        : {}),
      ...(this.#deps.watchdog ? { watchdog: this.#deps.watchdog } : {}),
    });
    unit.on('fatal', (err) => this.#giveUp(err));
    metrics?.setUp(true);
    unit.on('escalate', ({ action, reason }) => void this.#escalate(unit, action, reason));
    this.#entries.set(unit, entry);
    return unit;
  }

  /** The channels being recorded now. */
  channels(): string[] {
    return this.#units.map((u) => u.channel);
  }

  /**
   * Applies a new channel list (SIGHUP): units for channels no longer listed (or with another stream) finish
   * their recording and close their page; new channels get a unit and a page. The others are not touched.
   * Calls are applied one after the other.
   */
  reconfigure(channels: readonly ChannelEntry[]): Promise<{ added: string[]; removed: string[] }> {
    const next = this.#reconfiguring.then(() => this.#reconfigure(channels));
    this.#reconfiguring = next.catch(() => undefined);
    return next;
  }

  async #reconfigure(channels: readonly ChannelEntry[]): Promise<{ added: string[]; removed: string[] }> {
    await this.#starting?.catch(() => undefined);
    if (this.#stopping) return { added: [], removed: [] };
    const wanted = new Map(channels.map((e) => [e.channel, e]));
    const leaving = this.#units.filter((u) => {
      const entry = this.#entries.get(u)!;
      return wanted.get(entry.channel)?.stream !== entry.stream;
    });
    for (const unit of leaving) {
      this.#units.splice(this.#units.indexOf(unit), 1);
      this.#entries.delete(unit);
      const summary = await unit.stopRecording();
      await unit.closePage();
      await unit.close();
      this.#deps.metrics?.channel(unit.channel).setUp(false);
      this.#log.info({ channel: unit.channel, runs: summary }, 'channel removed: its recording is finished');
    }
    const have = new Set(this.#units.map((u) => u.channel));
    const arriving = channels.filter((e) => !have.has(e.channel));
    for (const entry of arriving) {
      const unit = this.#makeUnit(entry);
      this.#units.push(unit);
      await unit.start();
      const browser = this.#browser;
      // A browser being relaunched opens the page of every unit, this one included.
      if (browser && this.#browserState === 'up') {
        const page = await browser.newPage(this.#pageLogger(unit));
        await unit.attachPage(page);
      }
      this.#log.info({ channel: entry.channel, stream: entry.stream }, 'channel added');
    }
    return { added: arriving.map((e) => e.channel), removed: leaving.map((u) => u.channel) };
  }

  #makeSink(entry: ChannelEntry, logger: Logger): Sink {
    const config = this.#config;
    // The recording's share of the stop budget: what is left goes to Chromium and the bridge.
    const closeTimeoutMs = Math.max(3_000, config.stopBudgetSeconds * 1000 - 6_000);
    if (config.sink === 'file') {
      return new FileSink({
        outputDir: config.outputDir,
        stream: entry.stream,
        segmentMs: config.segmentSeconds * 1000,
        closeTimeoutMs,
      });
    }
    const metrics = this.#deps.metrics?.channel(entry.channel);
    return new KvssinkSink({
      streamName: entry.stream,
      region: config.region,
      endpoint: config.endpoint,
      credentials: this.#deps.credentials,
      retentionHours: config.retentionHours,
      createStream: config.createStream,
      closeTimeoutMs,
      logger: logger.child({ component: 'kvssink' }),
      onEvent: (event) => {
        if (event.type === 'stream-error') metrics?.fragment('failed');
        else if (event.type === 'fragment-ack' && event.ack === 'received') metrics?.fragment('acked');
        else if (event.type === 'fragment-ack' && event.ack === 'persisted') metrics?.fragment('persisted');
      },
      onCredentialRefreshFailed: () => metrics?.credentialRefreshFailed(),
    });
  }

  #checkStopping(): void {
    if (this.#stopping) throw new StoppedDuringStart();
  }

  /** Launches Chromium and opens every unit's page; on failure the caller's policy decides. */
  async #launchBrowser(): Promise<void> {
    const browser = new ViewerBrowser({
      executablePath: this.#config.chromiumPath,
      headed: this.#config.headed,
      logger: this.#log.child({ component: 'chromium' }),
    });
    this.#browser = browser;
    browser.on('died', (err) => {
      if (this.#browser !== browser || this.#stopping) return;
      this.#log.error({ err: err, ...err.details }, 'viewer browser died');
      this.#relaunch('Chromium died');
    });
    try {
      await browser.start();
      this.#checkStopping();
      for (const unit of this.#units) {
        const page = await browser.newPage(this.#pageLogger(unit));
        this.#checkStopping();
        await unit.attachPage(page);
        this.#checkStopping();
      }
      this.#browserState = 'up';
      this.#browserUpSince = Date.now();
    } catch (err) {
      await browser.close();
      throw err;
    }
  }

  async #escalate(
    unit: RecordingUnit,
    action: 'reload-page' | 'relaunch-browser',
    reason: string,
  ): Promise<void> {
    if (this.#stopping || this.#relaunching) return;
    // A browser that does not answer at all (hung, stopped) cannot reload a page: relaunch it at once.
    if (action === 'reload-page' && !(await this.#browser?.responsive(1_500))) {
      this.#log.error({ channel: unit.channel, reason }, 'Chromium does not answer: relaunching it');
      action = 'relaunch-browser';
    }
    if (this.#stopping || this.#relaunching) return;
    if (action === 'reload-page') {
      this.#log.warn({ channel: unit.channel, reason }, 'reloading the viewer page');
      this.safeEmit('restart', { child: 'page', reason });
      this.#deps.metrics?.channel(unit.channel).childRestart('page');
      try {
        await unit.reloadPage();
        return;
      } catch (err) {
        this.#log.error(
          { channel: unit.channel, err: err },
          'the page did not come back: relaunching Chromium',
        );
      }
    }
    this.#relaunch(reason);
  }

  /** Kills the browser (it may be hung) and launches a new one on the `browserRestart` policy. */
  #relaunch(reason: string): void {
    if (this.#stopping || this.#relaunchTimer || this.#relaunching) return;
    const browser = this.#browser;
    this.#browser = undefined;
    for (const unit of this.#units) unit.detachPage();
    if (browser) {
      browser.kill();
      void browser.close();
    }
    if (this.#browserUpSince && Date.now() - this.#browserUpSince > BROWSER_STABLE_MS)
      this.#browserFailures.succeeded();
    this.#browserUpSince = 0;
    const delay = this.#browserFailures.failed(new Error(reason));
    if (delay === null) {
      this.#giveUp(
        new AgentError(
          'CHILD_FAILED',
          `Chromium keeps failing (${reason}); giving up after ${this.#browserFailures.attempts - 1} relaunches`,
        ),
      );
      return;
    }
    this.#browserState = 'relaunching';
    this.#log.warn(
      { reason, delayMs: delay, attempt: this.#browserFailures.attempts },
      'relaunching Chromium',
    );
    this.safeEmit('restart', { child: 'chromium', reason });
    for (const unit of this.#units) this.#deps.metrics?.channel(unit.channel).childRestart('chromium');
    this.#relaunchTimer = setTimeout(() => {
      this.#relaunchTimer = undefined;
      if (this.#stopping) return;
      this.#relaunching = this.#launchBrowser()
        .catch((err: unknown) => {
          if (err instanceof StoppedDuringStart) return;
          this.#log.error({ err: err }, 'Chromium relaunch failed');
          this.#relaunching = undefined;
          this.#relaunch(`relaunch failed: ${errorMessage(err)}`);
        })
        .finally(() => {
          this.#relaunching = undefined;
        });
    }, delay);
  }

  #giveUp(err: Error): void {
    if (this.#gaveUp || this.#stopping) return;
    this.#gaveUp = true;
    this.safeEmit('fatal', err);
  }

  health(): AgentHealth {
    const units = this.#units.map((u) => u.health());
    const alive = !this.#gaveUp && !this.#stopping;
    return {
      alive,
      ready: alive && this.#browserState === 'up' && units.length > 0 && units.every((u) => u.ready),
      browser: this.#browserState,
      units,
    };
  }

  /**
   * Teardown, idempotent: every unit refuses new frames and finishes its recording (EOS, last fragment
   * acknowledged, each run bounded by its share of the stop budget) → Chromium closed (its process group
   * killed if it does not go) → bridges closed. A start() still in flight is cut short.
   */
  async stop(): Promise<UnitSummary[]> {
    if (!this.#stopping) {
      this.#stopping = true;
      this.#browserState = 'stopped';
      clearTimeout(this.#relaunchTimer);
      // Let an in-flight start notice (it checks between steps) before closing what it made.
      await Promise.race([this.#starting?.catch(() => undefined), delay(5_000)]);
      // A channel being added or removed finishes first (bounded the same way), so no unit is missed.
      await Promise.race([this.#reconfiguring, delay(5_000)]);
      await Promise.all(this.#units.map((u) => u.stopRecording()));
      await this.#relaunching?.catch(() => undefined);
      await this.#browser?.close();
      await Promise.all(this.#units.map((u) => u.close()));
    }
    return this.#units.map((u) => u.summary());
  }

  summaries(): UnitSummary[] {
    return this.#units.map((u) => u.summary());
  }

  bridgeStats(): Array<ReturnType<RecordingUnit['bridgeStats']>> {
    return this.#units.map((u) => u.bridgeStats());
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
