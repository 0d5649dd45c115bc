import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { ChannelDiscovery, type ChannelEndpoints } from '../aws/discovery.js';
import { SignalingPresigner } from '../aws/presigner.js';
import { BridgeServer } from '../bridge/bridgeServer.js';
import { pageLogEntry } from '../bridge/pageLog.js';
import type { ChannelMetrics } from '../ops/metrics.js';
import type { AgentToPage, PageToAgent } from '../bridge/controlProtocol.js';
import type { TrackKind, WireFrame } from '../bridge/wire.js';
import type { ViewerPage } from '../browser/viewerBrowser.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { MediaTimeline, type TimelineStats } from '../media/timeline.js';
import { RetryStreak, retryPolicy, type RetryPolicy } from '../policy/backoff.js';
import { Recorder } from '../recording/recorder.js';
import type { RecordingSummary } from '../recording/recordingStats.js';
import { AUDIO_CHAIN_DELAY_MS } from '../sink/pipeline.js';
import type { Sink } from '../sink/sink.js';
import { TypedEmitter } from '../typedEmitter.js';
import { MediaWatchdog, type WatchdogAction, type WatchdogThresholds } from './mediaWatchdog.js';
import { RecordingStatusReporter } from './recordingStatus.js';

/** Readiness needs media written within this window. */
const MEDIA_FRESH_MS = 10_000;
/** Signaling not open for this long while the page is up: the channel may be gone — describe it again. */
const REDISCOVER_AFTER_MS = 8_000;
const WATCHDOG_TICK_MS = 250;
const PAGE_OPEN_TIMEOUT_MS = 20_000;
const PAGE_RELOAD_TIMEOUT_MS = 4_000;

export interface RecordingUnitOptions {
  channel: string;
  clientId: string;
  region: string;
  endpoint?: string | undefined;
  credentials: AwsCredentialIdentityProvider;
  sink: Sink;
  webRoot: string;
  gstLaunchPath: string;
  keyframeIntervalMs: number;
  signalingRenewMs: number;
  logger: Logger;
  /** This channel's metrics. */
  metrics?: ChannelMetrics;
  pipelineRestartPolicy?: RetryPolicy;
  watchdog?: Partial<WatchdogThresholds>;
  /** Chromium shows its window: the page then also plays the call and draws its panel for a person. */
  headed?: boolean;
  /** The stream kvssink writes to (its runs' name on the page); default the channel's name. */
  streamName?: string;
}

export interface UnitEvents extends Record<string, unknown[]> {
  /** The unit wants its page reloaded or the browser relaunched (watchdog, page hung). */
  escalate: [{ action: 'reload-page' | 'relaunch-browser'; reason: string }];
  /** The recording cannot go on (the pipeline failed beyond its restart policy). */
  fatal: [Error];
}

export interface UnitHealth {
  channel: string;
  ready: boolean;
  /** Each readiness check, with why it fails (served by /readyz: no secrets). */
  checks: Record<
    'channel' | 'page' | 'signaling' | 'peer' | 'media' | 'sink',
    { ok: boolean; reason?: string }
  >;
}

export interface UnitSummary {
  channel: string;
  runs: RecordingSummary[];
  timeline: TimelineStats;
  droppedWithoutRun: number;
  restarts: number;
}

interface PageState {
  signaling: string;
  peer: string;
  ice: string;
  master?: string | undefined;
}

/**
 * One channel's recording: discovery and presigning for its viewer page, the bridge that receives its frames,
 * one timeline for the whole run (so timestamps stay continuous across pipeline runs), the recorder and its
 * sink, and the media watchdog. The agent owns the browser and gives the unit a page; the unit asks the agent
 * (`escalate`) when the page must be reloaded or the browser relaunched. N channels are N units.
 */
export class RecordingUnit extends TypedEmitter<UnitEvents> {
  readonly #o: RecordingUnitOptions;
  readonly #log: Logger;
  readonly #discovery: ChannelDiscovery;
  readonly #bridge: BridgeServer;
  readonly #timeline: MediaTimeline;
  readonly #watchdog: MediaWatchdog;
  readonly #rediscovery: RetryStreak;
  readonly #recording: RecordingStatusReporter;
  #recorder: Recorder | undefined;
  #channel: ChannelEndpoints | undefined;
  #presigner: SignalingPresigner | undefined;
  #page: ViewerPage | undefined;
  #hello: { promise: Promise<void>; resolve: () => void } | undefined;
  #pageUp = false;
  #lastHeartbeatMs: number | null = null;
  /** From the page's heartbeat: how long the current offer has waited for the master's answer. */
  #masterWaitingMs = 0;
  #state: PageState = { signaling: 'closed', peer: 'new', ice: 'new' };
  #lastStateKey = '';
  #signalingDownSince: number | null = Date.now();
  #rediscovering = false;
  #rediscoverTimer: NodeJS.Timeout | undefined;
  #channelProblem: string | undefined;
  readonly #lastFrameMs: Record<TrackKind, number | null> = { video: null, audio: null };
  #watchdogTimer: NodeJS.Timeout | undefined;
  #lastKeyFrameWallMs: number | null = null;
  /** Timeline drop counters already reported to metrics. */
  #reportedDrops = { video: { before: 0, dup: 0 }, audio: { before: 0, dup: 0 } };
  #stopping = false;
  /** The page asked for its config (hello, ice-servers) and has not got one yet. */
  #configPending = false;
  #summaries: RecordingSummary[] | undefined;

  constructor(options: RecordingUnitOptions) {
    super();
    this.#o = options;
    this.#log = options.logger;
    this.#discovery = new ChannelDiscovery({
      region: options.region,
      endpoint: options.endpoint,
      credentials: options.credentials,
    });
    this.#bridge = new BridgeServer({
      webRoot: options.webRoot,
      logger: this.#log.child({ component: 'bridge' }),
      ...(options.metrics ? { metrics: options.metrics } : {}),
    });
    this.#timeline = new MediaTimeline({
      audioLeadMs: AUDIO_CHAIN_DELAY_MS,
      onGap: ({ kind, lost }) => {
        this.#log.warn({ kind, lost }, 'frames lost before the agent: holding video until a key frame');
        options.metrics?.dropped('seq_gap', kind, lost);
        if (kind === 'video') this.#bridge.requestKeyFrame();
      },
    });
    this.#watchdog = new MediaWatchdog(options.watchdog);
    this.#rediscovery = new RetryStreak(retryPolicy('discovery'));
    this.#recording = new RecordingStatusReporter({
      sink: options.sink.kind,
      streamName: options.streamName ?? options.channel,
      send: (status) => this.#sendControl({ type: 'recording', ...status }),
    });
  }

  get channel(): string {
    return this.#o.channel;
  }

  /** The bridge's page URL; `headed=1` in its fragment too when Chromium shows its window. */
  get pageUrl(): string {
    return this.#o.headed ? `${this.#bridge.pageUrl}&headed=1` : this.#bridge.pageUrl;
  }

  /** Finds the channel, readies the sink and the bridge. Rejects with a clear error (the agent exits). */
  async start(): Promise<void> {
    this.#channel = await this.#discovery.describeChannel(this.#o.channel);
    this.#log.info({ channelARN: this.#channel.channelARN, wss: this.#channel.wssEndpoint }, 'channel found');
    this.#presigner = this.#newPresigner(this.#channel);
    await this.#o.sink.prepare();

    const bridge = this.#bridge;
    bridge.on('control', (msg) => this.#onControl(msg));
    bridge.on('frame', (frame) => this.#onFrame(frame));
    bridge.on('track-open', (kind) => {
      this.#log.info({ kind }, 'track connected');
      this.#timeline.connectionReset(kind);
    });
    bridge.on('track-closed', (kind) => this.#log.info({ kind }, 'track disconnected'));
    await bridge.listen();

    const recorder = new Recorder({
      sink: this.#o.sink,
      gstLaunchPath: this.#o.gstLaunchPath,
      restartPolicy: this.#o.pipelineRestartPolicy ?? retryPolicy('pipelineRestart'),
      logger: this.#log.child({ component: 'recorder' }),
    });
    this.#recorder = recorder;
    recorder.on('keyframe-needed', () => this.#bridge.requestKeyFrame());
    recorder.on('fatal', (err) => this.safeEmit('fatal', err));
    recorder.on('restart', () => this.#o.metrics?.childRestart('gst'));
    recorder.on('gap', ({ kind, seconds }) => this.#o.metrics?.gap(kind, seconds));
    recorder.on('dropped', ({ cause, kind, count }) => this.#o.metrics?.dropped(cause, kind, count));
    recorder.on('run-started', (run) => this.#recording.runStarted(run));
    recorder.on('run-ended', ({ number, path, summary }) =>
      this.#recording.runEnded({ number, path, videoFrames: summary?.video.frames ?? 0 }),
    );
    this.#o.sink.on('fragment-ack', ({ ack, timecode }) => this.#recording.fragmentAck(ack, timecode));

    this.#watchdogTimer = setInterval(() => this.#tick(), WATCHDOG_TICK_MS);
    this.#watchdogTimer.unref();
  }

  /** Loads the viewer page into `page` (a new tab, after a browser relaunch too); resolves on its hello. */
  async attachPage(page: ViewerPage): Promise<void> {
    this.#detachPage();
    this.#page = page;
    page.on('crashed', (err) => {
      if (this.#page !== page || this.#stopping) return;
      this.#log.error({ err: err }, 'viewer page crashed');
      this.#detachPage();
      this.safeEmit('escalate', { action: 'relaunch-browser', reason: err.message });
    });
    await page.open(this.pageUrl, () => this.#waitHello(), PAGE_OPEN_TIMEOUT_MS);
  }

  /** Reloads the page; rejects when it does not say hello in time (its renderer hung). */
  async reloadPage(): Promise<void> {
    const page = this.#page;
    if (!page) throw new Error('no page to reload');
    this.#pageUp = false;
    await page.reload(() => this.#waitHello(), PAGE_RELOAD_TIMEOUT_MS);
  }

  /** The browser is gone: the page goes with it. */
  detachPage(): void {
    this.#detachPage();
  }

  /** Closes this unit's page in the browser (the channel is being removed); the browser goes on. */
  async closePage(): Promise<void> {
    const page = this.#page;
    this.#detachPage();
    await page?.close();
  }

  #detachPage(): void {
    this.#page = undefined;
    this.#pageUp = false;
    this.#lastHeartbeatMs = null;
    this.#state = { signaling: 'closed', peer: 'new', ice: 'new' };
  }

  #waitHello(): Promise<void> {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.#hello = { promise, resolve };
    return promise;
  }

  #onFrame(frame: WireFrame): void {
    const kind = frame.header.kind;
    this.#lastFrameMs[kind] = Date.now();
    const timed = this.#timeline.push(frame);
    if (!timed) return;
    this.#o.metrics?.bridgeLatency(Date.now() - frame.header.receiveTimeMs);
    if (kind === 'video' && timed.key) {
      if (this.#lastKeyFrameWallMs !== null)
        this.#o.metrics?.keyFrameInterval((timed.wallClockMs - this.#lastKeyFrameWallMs) / 1000);
      this.#lastKeyFrameWallMs = timed.wallClockMs;
    }
    this.#recorder?.push(timed);
  }

  #tick(): void {
    if (this.#stopping) return;
    const now = Date.now();
    const actions = this.#watchdog.tick({
      nowMs: now,
      pageUp: this.#pageUp,
      lastHeartbeatMs: this.#lastHeartbeatMs,
      peerConnected: this.#state.peer === 'connected',
      lastFrameMs: this.#lastFrameMs,
    });
    for (const action of actions) this.#act(action);
    if (this.#recorder) this.#recording.recorder(this.#recorder.status());
    if (this.#pageUp && this.#state.signaling !== 'open') {
      this.#signalingDownSince ??= now;
      if (now - this.#signalingDownSince > REDISCOVER_AFTER_MS) this.#rediscover('signaling does not open');
    } else {
      this.#signalingDownSince = null;
    }
    this.#reportMetrics();
  }

  /** Counters kept by the timeline and recorder, turned into metric increments once per tick. */
  #reportMetrics(): void {
    const metrics = this.#o.metrics;
    if (!metrics) return;
    const stats = this.#timeline.stats();
    for (const kind of ['video', 'audio'] as const) {
      const t = stats[kind];
      const r = this.#reportedDrops[kind];
      const before = t.droppedBeforeKeyframe + t.droppedBeforeOrigin;
      if (before > r.before) metrics.dropped('before_keyframe', kind, before - r.before);
      if (t.droppedDuplicate > r.dup) metrics.dropped('duplicate', kind, t.droppedDuplicate - r.dup);
      r.before = before;
      r.dup = t.droppedDuplicate;
    }
    const queue = this.#recorder?.queueDepth();
    if (queue) metrics.queueDepth(queue.frames, queue.bytes);
    const health = this.health();
    metrics.setReadiness(
      health.ready,
      Object.fromEntries(Object.entries(health.checks).map(([k, c]) => [k, c.ok])),
    );
    const expiry = this.#o.sink.health().credentialExpiry;
    metrics.credentialExpiry(expiry === undefined ? undefined : new Date(expiry * 1000));
  }

  #act(action: WatchdogAction): void {
    const stalledS = Math.round(this.#watchdog.videoStalledMs(Date.now()) / 100) / 10;
    switch (action) {
      case 'request-keyframe':
        this.#log.warn({ stalledS }, 'no video while connected: asking for a key frame');
        this.#bridge.requestKeyFrame();
        return;
      case 'new-peer-connection':
        this.#log.warn({ stalledS }, 'no media while connected: new peer connection');
        this.#o.metrics?.reconnect('media_watchdog');
        this.#sendControl({ type: 'reconnect', reason: 'no media arriving' });
        return;
      case 'audio-stalled':
        this.#log.warn('audio stopped while video flows (muted master?): the recording carries silence');
        return;
      case 'reload-page':
      case 'relaunch-browser':
        this.#log.error({ stalledS, action }, 'no media while connected: escalating');
        this.safeEmit('escalate', { action, reason: `no media for ${stalledS} s while connected` });
        return;
      case 'page-hung':
        this.#log.error(
          { sinceHeartbeatMs: Date.now() - (this.#lastHeartbeatMs ?? 0) },
          'viewer page stopped its heartbeat',
        );
        this.safeEmit('escalate', { action: 'reload-page', reason: 'page heartbeat stopped' });
        return;
    }
  }

  /** Describes the channel again (deleted and re-created: new ARN), on the discovery backoff, until it works. */
  #rediscover(reason: string): void {
    if (this.#rediscovering || this.#stopping) return;
    this.#rediscovering = true;
    this.#log.warn({ reason }, 'describing the signaling channel again');
    this.#discovery.describeChannel(this.#o.channel).then(
      (channel) => {
        this.#rediscovering = false;
        this.#rediscovery.succeeded();
        this.#channelProblem = undefined;
        this.#signalingDownSince = null;
        const changed =
          channel.channelARN !== this.#channel?.channelARN ||
          channel.wssEndpoint !== this.#channel?.wssEndpoint;
        if (changed) {
          this.#log.warn(
            { previous: this.#channel?.channelARN, channelARN: channel.channelARN },
            'the channel changed: reconnecting',
          );
          this.#channel = channel;
          this.#presigner = this.#newPresigner(channel);
          this.#o.metrics?.reconnect('channel_changed');
          this.#sendControl({ type: 'reconnect', reason: 'channel re-created' });
        }
        // A page that asked for its config while the channel was gone still waits for it (30 s otherwise).
        if (this.#configPending) void this.#sendConfig();
      },
      (err: unknown) => {
        this.#channelProblem = errorMessage(err);
        const delay = this.#rediscovery.failed(err) ?? 15_000;
        this.#log.error({ err: err, retryInMs: delay }, 'signaling channel not available');
        this.#rediscoverTimer = setTimeout(() => {
          this.#rediscovering = false;
          this.#rediscover('retry');
        }, delay);
        this.#rediscoverTimer.unref();
      },
    );
  }

  #newPresigner(channel: ChannelEndpoints): SignalingPresigner {
    return new SignalingPresigner({
      region: this.#o.region,
      credentials: this.#o.credentials,
      allowedEndpoint: channel.wssEndpoint,
      channelARN: channel.channelARN,
      clientId: this.#o.clientId,
    });
  }

  #sendControl(message: AgentToPage): void {
    this.#bridge.sendControl(message);
  }

  #onControl(msg: PageToAgent): void {
    const page = this.#log.child({ component: 'page' });
    switch (msg.type) {
      case 'hello':
        this.#pageUp = true;
        this.#lastHeartbeatMs = Date.now();
        this.#hello?.resolve();
        this.#configPending = true;
        void this.#sendConfig();
        this.#recording.resend();
        return;
      case 'heartbeat':
        this.#lastHeartbeatMs = Date.now();
        this.#masterWaitingMs = msg.master === 'waiting' ? msg.masterWaitingMs : 0;
        return;
      case 'presign':
        void this.#presign(msg.id, msg.endpoint, msg.queryParams);
        return;
      case 'state': {
        this.#state = { signaling: msg.signaling, peer: msg.peer, ice: msg.ice, master: msg.master };
        const key = `${msg.signaling}/${msg.peer}/${msg.ice}/${msg.master ?? ''}`;
        if (key !== this.#lastStateKey) {
          this.#lastStateKey = key;
          page.info(
            { signaling: msg.signaling, peer: msg.peer, ice: msg.ice, master: msg.master },
            'viewer state',
          );
        }
        return;
      }
      case 'stats':
        page.debug({ video: msg.video, audio: msg.audio }, 'viewer stats');
        return;
      case 'signaling-event':
        page.warn({ event: msg.event, detail: msg.detail }, 'signaling event');
        if (msg.event === 'go-away') this.#o.metrics?.reconnect('go_away');
        if (msg.event === 'reconnect-ice-server') this.#o.metrics?.reconnect('reconnect_ice_server');
        return;
      case 'ice-servers':
        // RECONNECT_ICE_SERVER on the page: a fresh config carries fresh TURN servers.
        this.#configPending = true;
        void this.#sendConfig();
        return;
      case 'log': {
        const { level, msg: text, fields } = pageLogEntry(msg);
        page[level](fields, text);
        return;
      }
    }
  }

  async #sendConfig(): Promise<void> {
    const channel = this.#channel;
    if (!channel) return;
    try {
      // Fetched per (re)connection: TURN credentials live about five minutes.
      const iceServers = await this.#discovery.iceServers(channel, this.#o.clientId);
      this.#sendControl({
        type: 'config',
        session: this.#o.clientId,
        channelARN: channel.channelARN,
        channelEndpoint: channel.wssEndpoint,
        region: this.#o.region,
        clientId: this.#o.clientId,
        iceServers,
        keyframeIntervalMs: this.#o.keyframeIntervalMs,
        signalingMaxAgeMs: this.#o.signalingRenewMs,
        frameUrl: this.#bridge.frameUrl,
      });
      this.#configPending = false;
    } catch (err) {
      this.#log.error({ err: err }, 'could not get ICE servers for the viewer');
      // A deleted channel shows up here first (ResourceNotFound): find it again.
      this.#rediscover('GetIceServerConfig failed');
    }
  }

  async #presign(id: number, endpoint: string, query: Record<string, string>): Promise<void> {
    try {
      // The page's proposed date is never used: the agent signs with its own clock.
      const url = await this.#presigner!.presign(endpoint, query);
      this.#sendControl({ type: 'presigned', id, url });
    } catch (err) {
      this.#log.warn({ err: err }, 'presign refused');
      this.#sendControl({ type: 'presign-failed', id, message: errorMessage(err) });
    }
  }

  health(nowMs = Date.now()): UnitHealth {
    const status = this.#recorder?.status();
    const sink = this.#o.sink.health();
    const written = status?.lastWrittenAtMs;
    const mediaFresh = written != null && nowMs - written < MEDIA_FRESH_MS;
    const peerReason =
      this.#state.master === 'waiting'
        ? `master not answering (offer waiting ${Math.round(this.#masterWaitingMs / 1000)} s)`
        : `peer connection ${this.#state.peer}`;
    const checks: UnitHealth['checks'] = {
      channel: this.#channelProblem
        ? { ok: false, reason: `channel: ${this.#channelProblem}` }
        : this.#channel
          ? { ok: true }
          : { ok: false, reason: 'channel not described yet' },
      page: this.#pageUp ? { ok: true } : { ok: false, reason: 'viewer page not up' },
      signaling:
        this.#state.signaling === 'open' ? { ok: true } : { ok: false, reason: 'signaling socket not open' },
      peer: this.#state.peer === 'connected' ? { ok: true } : { ok: false, reason: peerReason },
      media: mediaFresh
        ? { ok: true }
        : {
            ok: false,
            reason:
              written == null
                ? `no media written yet (${status?.state ?? 'not started'})`
                : `no media written for ${Math.round((nowMs - written) / 1000)} s (${status?.state ?? ''})`,
          },
      sink: sink.ready ? { ok: true } : { ok: false, reason: sink.reasons.join('; ') },
    };
    const ready = Object.values(checks).every((c) => c.ok);
    return { channel: this.#o.channel, ready, checks };
  }

  /** First step of the agent's teardown: refuse frames, tell the page, finish the recording. */
  async stopRecording(): Promise<RecordingSummary[]> {
    if (this.#summaries) return this.#summaries;
    this.#stopping = true;
    clearInterval(this.#watchdogTimer);
    clearTimeout(this.#rediscoverTimer);
    this.#bridge.stopAcceptingFrames();
    this.#sendControl({ type: 'stop' });
    this.#summaries = (await this.#recorder?.stop()) ?? [];
    if (this.#recorder) this.#recording.recorder(this.#recorder.status());
    await this.#o.sink.close().catch((err: unknown) => this.#log.warn({ err: err }, 'sink did not close'));
    return this.#summaries;
  }

  summary(): UnitSummary {
    const status = this.#recorder?.status();
    return {
      channel: this.#o.channel,
      runs: this.#summaries ?? [],
      timeline: this.#timeline.stats(),
      droppedWithoutRun: status?.droppedWithoutRun ?? 0,
      restarts: status?.restarts ?? 0,
    };
  }

  bridgeStats(): ReturnType<BridgeServer['stats']> {
    return this.#bridge.stats();
  }

  /** Last step: after the browser is closed. */
  async close(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#watchdogTimer);
    clearTimeout(this.#rediscoverTimer);
    this.#recording.close();
    await this.#bridge.close();
    this.#discovery.destroy();
  }
}
