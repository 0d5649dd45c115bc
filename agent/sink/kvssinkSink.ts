import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { ensureStream } from '../aws/streamProvisioner.js';
import { KvssinkCredentialFile } from '../credentials/kvssinkCredentialFile.js';
import { AgentError } from '../errors.js';
import type { Logger } from '../log.js';
import type { TimedFrame } from '../media/timeline.js';
import { TypedEmitter } from '../typedEmitter.js';
import { USER_AGENT } from '../version.js';
import { parseKvssinkLine, type KvssinkEvent } from './kvssinkEvents.js';
import type { SinkSpec } from './pipeline.js';
import {
  frameSize,
  type RunInfo,
  type RunPlan,
  type Sink,
  type SinkEvents,
  type SinkHealth,
} from './sink.js';

/**
 * kvssink's properties, chosen rather than left to defaults:
 * - `key-frame-fragmentation=true`: a fragment per key frame; the page asks for a key frame every
 *   `--keyframe-interval-ms` (2 s), so fragments stay ≈ 2 s (KVS refuses > 10 s: 4002).
 * - `allow-create-stream=false`: the agent provisions the stream itself (retention, media type) and says
 *   clearly when it cannot; kvssink would silently create one with its own 2 h default.
 * - `restart-on-error=true`, `streaming-type=0` (realtime), `connection-staleness=60`: kvssink reconnects
 *   and replays unacknowledged fragments on its own.
 * - `storage-size=128` MB and `buffer-duration=120` s: room for two minutes of a 720p call while KVS is
 *   unreachable; `framerate=30` sizes its buffers for what WebRTC delivers.
 * - `stop-stream-timeout`: at EOS kvssink waits for the last fragment's PERSISTED ack at most this long; set
 *   from the stop budget so the whole drain fits Fargate's default 30 s between SIGTERM and SIGKILL.
 * - `use-original-pts=true`: producer timestamps are the frames' own wall-clock times (the agent stamps each
 *   frame with its place on the media timeline, in epoch time), not the moment a session started, so a new
 *   session (resolution change, restart) never moves the stream in time. With `disable-buffer-clipping=true`:
 *   otherwise kvssink's collectpads clip to running time, and matroskademux starts each segment at the first
 *   block, so every session would begin at 0 (1970) — measured against the emulator with kvssink v3.5.0.
 * - `credential-path`: the only way credentials reach kvssink (see KvssinkCredentialFile).
 * - `log-config`: its log4cplus output goes to stdout at INFO, line by line into the agent's log.
 * - `user-agent`: names this project in KVS's request logs.
 */
export function kvssinkSpec(options: {
  streamName: string;
  region: string;
  credentialPath: string;
  logConfigPath: string;
  stopStreamTimeoutSeconds?: number;
}): SinkSpec {
  return {
    kind: 'kvssink',
    streamName: options.streamName,
    awsRegion: options.region,
    properties: {
      'credential-path': options.credentialPath,
      'log-config': options.logConfigPath,
      'key-frame-fragmentation': true,
      'allow-create-stream': false,
      'restart-on-error': true,
      'streaming-type': 0,
      'connection-staleness': 60,
      'storage-size': 128,
      'buffer-duration': 120,
      framerate: 30,
      'stop-stream-timeout': options.stopStreamTimeoutSeconds ?? 20,
      'use-original-pts': true,
      'disable-buffer-clipping': true,
      'user-agent': USER_AGENT,
    },
  };
}

/**
 * The child's environment: the region (kvssink reads AWS_DEFAULT_REGION) and, for the emulator, the
 * control-plane endpoint. Deliberately no AWS_ACCESS_KEY_ID: kvssink would prefer static keys over the
 * credential file and never refresh them.
 */
export function kvssinkEnv(options: {
  region: string;
  endpoint?: string | undefined;
}): Record<string, string> {
  return {
    AWS_DEFAULT_REGION: options.region,
    ...(options.endpoint ? { CONTROL_PLANE_URI: options.endpoint } : {}),
  };
}

/** Writes kvssink's log4cplus configuration (stdout, INFO; TRACE for kvssink's fragment acks) into `dir`; returns its path. */
export async function writeKvssinkLogConfig(dir: string): Promise<string> {
  const path = join(dir, 'kvs_log_configuration');
  await writeFile(
    path,
    [
      'log4cplus.rootLogger=INFO, KvsConsole',
      // kvssink's own logger: its only TRACE line is each fragment ack, its DEBUG lines are dropped frames.
      'log4cplus.logger.com.amazonaws.kinesis.video.gstkvs=TRACE',
      'log4cplus.appender.KvsConsole=log4cplus::ConsoleAppender',
      // stdout is a pipe: without this, lines (acks, stream errors) reach the agent in 4 KiB bursts, late.
      'log4cplus.appender.KvsConsole.ImmediateFlush=true',
      'log4cplus.appender.KvsConsole.layout=log4cplus::PatternLayout',
      'log4cplus.appender.KvsConsole.layout.ConversionPattern=%-5p %m%n',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return path;
}

/** Stream errors after which this kvssink session cannot succeed: the run is restarted (and the stream re-provisioned). */
function endsTheRun(event: KvssinkEvent): boolean {
  if (event.type === 'auth-failed') return false; // kvssink retries; the credential file is refreshed meanwhile
  if (event.type !== 'stream-error') return false;
  if (event.name === 'SERVICE_CALL_RESOURCE_NOT_FOUND_ERROR') return true;
  return event.errorId !== undefined && event.errorId >= 4500 && event.errorId <= 4507;
}

export interface KvssinkSinkOptions {
  streamName: string;
  region: string;
  endpoint?: string | undefined;
  credentials: AwsCredentialIdentityProvider;
  retentionHours: number;
  createStream: boolean;
  /** Graceful close of one session, from the stop budget. */
  closeTimeoutMs: number;
  logger: Logger;
  /** Every parsed kvssink event (metrics). */
  onEvent?: (event: KvssinkEvent) => void;
  /** Every failed attempt to refresh the credential file (metrics; the file retries on its backoff). */
  onCredentialRefreshFailed?: (err: Error) => void;
}

/**
 * The Kinesis video stream through kvssink, with its rules: the stream is provisioned before the first run and
 * again after a failed one; credentials reach kvssink only through the refreshed credential file; a new session
 * starts at a key frame with a new resolution (kvssink takes codec private data once per session) and only
 * after the previous one finished (one PutMedia connection per stream); stream errors it cannot recover from
 * end the run.
 */
export class KvssinkSink extends TypedEmitter<SinkEvents> implements Sink {
  readonly kind = 'kvssink' as const;
  readonly sequentialRuns = true;
  readonly closeTimeoutMs: number;
  readonly #o: KvssinkSinkOptions;
  readonly #log: Logger;
  #credentialFile: KvssinkCredentialFile | undefined;
  #logConfigPath: string | undefined;
  #streamMissing: string | undefined;

  constructor(options: KvssinkSinkOptions) {
    super();
    this.#o = options;
    this.#log = options.logger;
    this.closeTimeoutMs = options.closeTimeoutMs;
  }

  async prepare(): Promise<void> {
    const o = this.#o;
    try {
      const stream = await ensureStream({
        streamName: o.streamName,
        region: o.region,
        endpoint: o.endpoint,
        credentials: o.credentials,
        retentionHours: o.retentionHours,
        create: o.createStream,
        logger: this.#log.child({ component: 'stream' }),
      });
      this.#streamMissing = undefined;
      this.#log.info(
        { streamARN: stream.streamARN, retentionHours: stream.retentionHours, created: stream.created },
        'stream ready',
      );
    } catch (err) {
      this.#streamMissing = err instanceof Error ? err.message : String(err);
      throw err;
    }
    if (!this.#credentialFile) {
      const file = new KvssinkCredentialFile({
        provider: o.credentials,
        logger: this.#log.child({ component: 'kvssink-credentials' }),
      });
      // Before start(): a failure of the very first refresh counts too.
      file.on('refresh-failed', (err) => this.#o.onCredentialRefreshFailed?.(err));
      await file.start();
      this.#credentialFile = file;
      this.#logConfigPath = await writeKvssinkLogConfig(file.dir);
    }
  }

  nextRun(): RunPlan {
    const file = this.#credentialFile;
    if (!file || !this.#logConfigPath) throw new AgentError('INVALID_STATE', 'kvssink sink not prepared');
    const kvsLog = this.#log.child({ component: 'kvssink' });
    let failed = false;
    return {
      spec: kvssinkSpec({
        streamName: this.#o.streamName,
        region: this.#o.region,
        credentialPath: file.path,
        logConfigPath: this.#logConfigPath,
        // kvssink's own wait for the last ack, inside our close time (which also covers the muxer flush).
        stopStreamTimeoutSeconds: Math.max(1, Math.floor((this.closeTimeoutMs - 2_000) / 1000)),
      }),
      gstEnv: kvssinkEnv({ region: this.#o.region, endpoint: this.#o.endpoint }),
      // kvssink describes the stream and gets its endpoint before it prerolls.
      readyTimeoutMs: 60_000,
      dropTrailingKeyFrame: true,
      onGstLine: (line) => {
        const event = parseKvssinkLine(line);
        if (!event) return;
        this.#o.onEvent?.(event);
        if (event.type === 'fragment-ack') {
          this.safeEmit('fragment-ack', { ack: event.ack, timecode: event.timecode });
          return;
        }
        if (event.type === 'dropped-frame') {
          kvsLog.debug({ event }, 'kvssink dropped a frame');
          return;
        }
        kvsLog.error(
          { event },
          event.type === 'stream-error'
            ? `kvssink stream error ${event.statusHex} (${event.name}): ${event.explanation}`
            : `kvssink: ${event.type}`,
        );
        if (!failed && endsTheRun(event)) {
          failed = true;
          if (event.type === 'stream-error') this.#streamMissing = `${event.name}: ${event.explanation}`;
          this.safeEmit(
            'run-failed',
            new AgentError(
              'CHILD_FAILED',
              `kvssink cannot go on: ${event.type === 'stream-error' ? event.name : event.type}`,
            ),
          );
        }
      },
      timestampUs: (frame) => frame.wallClockMs * 1000,
    };
  }

  renewalReason(run: RunInfo, keyFrame: TimedFrame): string | null {
    const size = frameSize(keyFrame);
    // Delta frames report 0x0; only a key frame with a known, different size counts.
    if (size === '0x0' || run.size === '0x0' || size === run.size) return null;
    return `resolution ${run.size} → ${size}`;
  }

  health(): SinkHealth {
    const reasons: string[] = [];
    const file = this.#credentialFile;
    const stale = file ? file.staleReason() : 'no credential file';
    if (stale) reasons.push(stale);
    if (this.#streamMissing) reasons.push(`stream: ${this.#streamMissing}`);
    const expiry = this.#credentialFile?.expiration;
    return {
      ready: reasons.length === 0,
      reasons,
      ...(expiry ? { credentialExpiry: Math.floor(expiry.getTime() / 1000) } : {}),
    };
  }

  async close(): Promise<void> {
    await this.#credentialFile?.close();
  }
}
