import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { ChannelDiscovery, type ChannelEndpoints } from './aws/discovery.js';
import { SignalingPresigner } from './aws/presigner.js';
import { ensureStream } from './aws/streamProvisioner.js';
import { BridgeServer } from './bridge/bridgeServer.js';
import type { PageToAgent } from './bridge/controlProtocol.js';
import { ViewerBrowser } from './browser/viewerBrowser.js';
import type { AgentConfig } from './config.js';
import { KvssinkCredentialFile } from './credentials/kvssinkCredentialFile.js';
import { errorMessage } from './errors.js';
import type { Logger } from './log.js';
import { Recorder } from './recording/recorder.js';
import type { RecordingSummary } from './recording/recordingStats.js';
import { BackoffPolicy, type RestartPolicy } from './recording/restartPolicy.js';
import { parseKvssinkLine } from './sink/kvssinkEvents.js';
import { kvssinkEnv, kvssinkSpec, writeKvssinkLogConfig } from './sink/kvssinkSink.js';
import type { RecorderOptions } from './recording/recorder.js';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

/** The part of the Recorder's options that depends on the sink. */
type SinkRecorderOptions = Omit<RecorderOptions, 'gstLaunchPath' | 'restartPolicy' | 'logger'>;

export interface AgentDependencies {
  config: AgentConfig;
  logger: Logger;
  credentials: AwsCredentialIdentityProvider;
  browserRestartPolicy?: RestartPolicy;
  pipelineRestartPolicy?: RestartPolicy;
}

/**
 * Owns one recording session: discovery → bridge server → viewer Chromium → recording pipeline. Children are
 * restarted here, by policy; process signals and exit codes belong to main.ts.
 */
export class Agent {
  readonly #config: AgentConfig;
  readonly #log: Logger;
  readonly #credentials: AwsCredentialIdentityProvider;
  readonly #browserPolicy: RestartPolicy;
  readonly #pipelinePolicy: RestartPolicy;
  #discovery: ChannelDiscovery | undefined;
  #channel: ChannelEndpoints | undefined;
  #presigner: SignalingPresigner | undefined;
  #bridge: BridgeServer | undefined;
  #browser: ViewerBrowser | undefined;
  #recorder: Recorder | undefined;
  #credentialFile: KvssinkCredentialFile | undefined;
  #summaries: RecordingSummary[] = [];
  #stopping = false;
  #browserFailures = { attempt: 0, since: 0 };
  #lastState = '';
  #fatal: ((err: Error) => void) | undefined;

  constructor(deps: AgentDependencies) {
    this.#config = deps.config;
    this.#log = deps.logger;
    this.#credentials = deps.credentials;
    this.#browserPolicy = deps.browserRestartPolicy ?? new BackoffPolicy();
    this.#pipelinePolicy = deps.pipelineRestartPolicy ?? new BackoffPolicy();
  }

  /** Called when the agent cannot go on (a child failed beyond its restart policy). */
  onFatal(handler: (err: Error) => void): void {
    this.#fatal = handler;
  }

  async start(): Promise<void> {
    const config = this.#config;
    const sinkOptions = await this.#prepareSink();
    this.#discovery = new ChannelDiscovery({
      region: config.region,
      endpoint: config.endpoint,
      credentials: this.#credentials,
    });
    this.#channel = await this.#discovery.describeChannel(config.channel);
    this.#log.info({ channelARN: this.#channel.channelARN, wss: this.#channel.wssEndpoint }, 'channel found');
    this.#presigner = new SignalingPresigner({
      region: config.region,
      credentials: this.#credentials,
      allowedEndpoint: this.#channel.wssEndpoint,
      channelARN: this.#channel.channelARN,
    });

    const bridge = new BridgeServer({
      webRoot: config.webRoot,
      logger: this.#log.child({ component: 'bridge' }),
    });
    this.#bridge = bridge;
    bridge.on('control', (msg) => this.#onControl(msg));
    bridge.on('frame', (frame) => this.#recorder?.push(frame));
    bridge.on('track-open', (kind) => this.#log.info({ kind }, 'track connected'));
    bridge.on('track-closed', (kind) => this.#log.info({ kind }, 'track disconnected'));
    await bridge.listen();

    this.#startRecorder(sinkOptions);
    await this.#startBrowser();
  }

  /**
   * Readies the sink before any media: for kvssink the stream (created if missing), the credential file and
   * kvssink's log configuration; for files the output directory. Fails fast with a clear message.
   */
  async #prepareSink(): Promise<SinkRecorderOptions> {
    const config = this.#config;
    if (config.sink === 'file') {
      await mkdir(config.outputDir, { recursive: true });
      return {
        // One MPEG-TS file per segment, named by its start time (sortable, unique to the millisecond).
        sinkForRun: () => ({
          kind: 'file',
          path: join(
            config.outputDir,
            `${config.stream}_${new Date().toISOString().replace(/[-:]/g, '')}.ts`,
          ),
        }),
        segmentMs: config.segmentSeconds * 1000,
      };
    }
    const stream = await ensureStream({
      streamName: config.stream,
      region: config.region,
      endpoint: config.endpoint,
      credentials: this.#credentials,
      retentionHours: config.retentionHours,
      create: config.createStream,
      logger: this.#log.child({ component: 'stream' }),
    });
    this.#log.info(
      { streamARN: stream.streamARN, retentionHours: stream.retentionHours, created: stream.created },
      'stream ready',
    );
    const credentialFile = new KvssinkCredentialFile({
      provider: this.#credentials,
      logger: this.#log.child({ component: 'kvssink-credentials' }),
    });
    this.#credentialFile = credentialFile;
    await credentialFile.start();
    const spec = kvssinkSpec({
      streamName: config.stream,
      region: config.region,
      credentialPath: credentialFile.path,
      logConfigPath: await writeKvssinkLogConfig(credentialFile.dir),
    });
    const kvsLog = this.#log.child({ component: 'kvssink' });
    return {
      sinkForRun: () => spec,
      renewOnResolutionChange: true,
      sequentialRuns: true,
      gstEnv: kvssinkEnv({ region: config.region, endpoint: config.endpoint }),
      // kvssink describes the stream and gets its endpoint before it prerolls.
      readyTimeoutMs: 60_000,
      onGstLine: (line) => {
        const event = parseKvssinkLine(line);
        if (!event) return;
        if (event.type === 'dropped-frame') kvsLog.debug({ event }, 'kvssink dropped a frame');
        else
          kvsLog.error(
            { event },
            event.type === 'stream-error'
              ? `kvssink stream error ${event.statusHex} (${event.name}): ${event.explanation}`
              : `kvssink: ${event.type}`,
          );
      },
    };
  }

  #startRecorder(sink: SinkRecorderOptions): void {
    const config = this.#config;
    const recorder = new Recorder({
      ...sink,
      gstLaunchPath: config.gstLaunchPath,
      restartPolicy: this.#pipelinePolicy,
      logger: this.#log.child({ component: 'recorder' }),
    });
    this.#recorder = recorder;
    recorder.on('keyframe-needed', () => this.#bridge?.requestKeyFrame());
    recorder.on('fatal', (err) => this.#fatal?.(err));
  }

  async #startBrowser(): Promise<void> {
    const bridge = this.#bridge;
    if (!bridge) return;
    const browser = new ViewerBrowser({
      executablePath: this.#config.chromiumPath,
      url: bridge.pageUrl,
      headed: this.#config.headed,
      logger: this.#log.child({ component: 'chromium' }),
    });
    this.#browser = browser;
    browser.on('died', (err) => void this.#onBrowserDied(browser, err));
    await browser.start();
  }

  async #onBrowserDied(browser: ViewerBrowser, err: Error): Promise<void> {
    if (this.#browser !== browser || this.#stopping) return;
    this.#log.error({ err: errorMessage(err) }, 'viewer browser died');
    await browser.close();
    const now = Date.now();
    if (this.#browserFailures.attempt === 0) this.#browserFailures.since = now;
    this.#browserFailures.attempt++;
    const delay = this.#browserPolicy.nextRetryDelayMs({
      attempt: this.#browserFailures.attempt,
      elapsedMs: now - this.#browserFailures.since,
      error: err,
    });
    if (delay === null) return this.#fatal?.(err);
    setTimeout(() => {
      if (this.#stopping) return;
      this.#startBrowser().catch((e: unknown) => void this.#onBrowserDied(browser, e as Error));
    }, delay);
  }

  #onControl(msg: PageToAgent): void {
    const page = this.#log.child({ component: 'page' });
    switch (msg.type) {
      case 'hello':
        void this.#sendConfig();
        return;
      case 'presign':
        void this.#presign(msg.id, msg.endpoint, msg.queryParams, msg.date);
        return;
      case 'state': {
        const key = `${msg.signaling}/${msg.peer}/${msg.ice}`;
        if (key !== this.#lastState) {
          this.#lastState = key;
          page.info({ signaling: msg.signaling, peer: msg.peer, ice: msg.ice }, 'viewer state');
          if (msg.peer === 'connected') {
            this.#browserFailures.attempt = 0;
          }
        }
        return;
      }
      case 'stats':
        page.debug({ video: msg.video, audio: msg.audio }, 'viewer stats');
        return;
      case 'signaling-event':
        page.warn({ event: msg.event, detail: msg.detail }, 'signaling event');
        return;
      case 'log':
        page[msg.level]({ ...msg.data }, msg.msg);
        return;
    }
  }

  async #sendConfig(): Promise<void> {
    const channel = this.#channel;
    const bridge = this.#bridge;
    if (!channel || !bridge || !this.#discovery) return;
    try {
      // Fetched per (re)connection: TURN credentials live about five minutes.
      const iceServers = await this.#discovery.iceServers(channel, this.#config.clientId);
      bridge.sendControl({
        type: 'config',
        session: this.#config.clientId,
        channelARN: channel.channelARN,
        channelEndpoint: channel.wssEndpoint,
        region: this.#config.region,
        clientId: this.#config.clientId,
        iceServers,
        keyframeIntervalMs: this.#config.keyframeIntervalMs,
        frameUrl: bridge.frameUrl,
      });
    } catch (err) {
      this.#log.error({ err: errorMessage(err) }, 'could not get ICE servers for the viewer');
    }
  }

  async #presign(id: number, endpoint: string, query: Record<string, string>, date?: number): Promise<void> {
    try {
      const url = await this.#presigner!.presign(
        endpoint,
        query,
        date === undefined ? undefined : new Date(date),
      );
      this.#bridge?.sendControl({ type: 'presigned', id, url });
    } catch (err) {
      this.#log.warn({ err: errorMessage(err) }, 'presign refused');
      this.#bridge?.sendControl({ type: 'presign-failed', id, message: errorMessage(err) });
    }
  }

  /**
   * Teardown order: refuse new frames → finish the recording (EOS through gst) → close Chromium → close the
   * server. Idempotent.
   */
  async stop(): Promise<RecordingSummary[]> {
    if (this.#stopping) return this.#summaries;
    this.#stopping = true;
    this.#bridge?.stopAcceptingFrames();
    this.#bridge?.sendControl({ type: 'stop' });
    if (this.#recorder) this.#summaries = await this.#recorder.stop();
    await this.#credentialFile?.close();
    await this.#browser?.close();
    await this.#bridge?.close();
    this.#discovery?.destroy();
    return this.#summaries;
  }

  bridgeStats(): ReturnType<BridgeServer['stats']> | undefined {
    return this.#bridge?.stats();
  }
}
