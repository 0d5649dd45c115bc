import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { TrackKind } from '../bridge/wire.js';

/**
 * The agent's Prometheus metrics, on a private `Registry` (never prom-client's global one: tests and many
 * channels per process each get their own). `AgentMetrics` owns the registry; `metrics.channel(name)` hands
 * out a `ChannelMetrics` whose typed methods are the only way to record, so no caller writes label strings.
 * Every agent metric carries the `channel` label; the default Node process metrics (`process_*`,
 * `nodejs_*`) are per process and carry none.
 *
 * | metric | type | labels | meaning |
 * |---|---|---|---|
 * | `kvs_agent_up` | gauge | channel | 1 while the agent supervises this channel's recording unit |
 * | `kvs_agent_ready` | gauge | channel | 1 while `/readyz` would say ready |
 * | `kvs_agent_ready_check` | gauge | channel, check | 1 per readiness check that passes (signaling, peer, media, credentials, …) |
 * | `kvs_agent_frames_total` | counter | channel, kind | frames accepted from the bridge into the pipeline |
 * | `kvs_agent_frame_bytes_total` | counter | channel, kind | payload bytes of those frames |
 * | `kvs_agent_frames_dropped_total` | counter | channel, kind, cause | frames not written, by `DropCause` |
 * | `kvs_agent_gaps_total` | counter | channel, kind | media gaps (lost frames, restarts, a track going quiet) |
 * | `kvs_agent_gap_seconds_total` | counter | channel, kind | summed length of those gaps |
 * | `kvs_agent_keyframe_interval_seconds` | histogram | channel | time between consecutive video key frames |
 * | `kvs_agent_keyframe_interval_last_seconds` | gauge | channel | the latest such interval |
 * | `kvs_agent_keyframe_interval_max_seconds` | gauge | channel | the longest since start (kvssink fragments follow key frames) |
 * | `kvs_agent_fragments_total` | counter | channel, state | kvssink fragments by `state`: `acked`, `persisted`, `failed` |
 * | `kvs_agent_reconnects_total` | counter | channel, cause | signaling/peer reconnects, by `ReconnectCause` |
 * | `kvs_agent_child_restarts_total` | counter | channel, child | restarts of `chromium`, `page`, `gst` |
 * | `kvs_agent_bridge_rejected_total` | counter | channel, reason | bridge input refused, by `BridgeRejectReason` |
 * | `kvs_agent_bridge_latency_ms` | histogram | channel | bridge receive → muxer / gst stdin, milliseconds |
 * | `kvs_agent_queue_frames` | gauge | channel | frames waiting in the pipeline's queue |
 * | `kvs_agent_queue_bytes` | gauge | channel | bytes waiting in the pipeline's queue |
 * | `kvs_agent_credential_expiry_timestamp_seconds` | gauge | channel | when the current AWS credentials expire (Unix seconds; 0 = long-term keys) |
 * | `kvs_agent_credential_refresh_failures_total` | counter | channel | failed refreshes of kvssink's credential file (each retry counts) |
 *
 * A curated subset also goes into the log as CloudWatch Embedded Metric Format: see `emf.ts`.
 *
 * Drop causes (`kvs_agent_frames_dropped_total{cause}`): `bridge_rejected` (malformed, wrong socket, too
 * big), `rate_limited` (socket over its frame rate), `seq_gap` (delta frames after lost frames, until a key
 * frame), `before_keyframe` (before the first key frame of a run), `duplicate` (re-delivered RTP
 * timestamp), `queue_overflow` (pipeline queue full), `muxer_rejected`, `late_audio` (audio older than the
 * written timeline), `after_stop` (arrived during shutdown), `no_run` (no pipeline run to take it, e.g.
 * between a failed run and its restart, or queued in a run whose gst failed), `trailing_key_frame` (kvssink:
 * a session would have ended on a key frame, a last fragment KVS refuses), `unsupported_codec`. Adding one is one line in
 * `DropCause`.
 */

export type DropCause =
  | 'bridge_rejected'
  | 'rate_limited'
  | 'seq_gap'
  | 'before_keyframe'
  | 'duplicate'
  | 'queue_overflow'
  | 'muxer_rejected'
  | 'late_audio'
  | 'after_stop'
  | 'no_run'
  | 'trailing_key_frame'
  | 'unsupported_codec';

export type ReconnectCause =
  | 'signaling_closed'
  | 'signaling_renewal'
  | 'go_away'
  | 'reconnect_ice_server'
  | 'ice_disconnected'
  | 'ice_failed'
  | 'peer_closed'
  | 'answer_timeout'
  | 'media_watchdog'
  | 'channel_changed'
  | 'page_reload'
  | 'browser_relaunch';

export type ChildName = 'chromium' | 'page' | 'gst';

/**
 * kvssink fragment outcomes: `acked` (KVS acknowledged it: RECEIVED), `persisted` (PERSISTED ack), `failed`
 * (an ERROR ack, or kvssink reporting the fragment lost).
 */
export type FragmentState = 'acked' | 'persisted' | 'failed';

/** Why the bridge refused input; a closed set (the bridge maps every refusal onto one). */
export type BridgeRejectReason =
  | 'connection_refused'
  | 'malformed_frame'
  | 'wrong_socket'
  | 'text_on_frame_socket'
  | 'frame_too_large'
  | 'frame_rate_limited'
  | 'after_stop'
  | 'control_malformed'
  | 'control_oversized'
  | 'control_rate_limited'
  | 'socket_flooding';

export const BRIDGE_LATENCY_BUCKETS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500] as const;
export const KEYFRAME_INTERVAL_BUCKETS_S = [0.5, 1, 2, 3, 4, 6, 9, 15, 30, 60] as const;

export interface AgentMetricsOptions {
  /** Default: a fresh `Registry`. */
  registry?: Registry;
  /** Node process metrics (`collectDefaultMetrics`) on the same registry; default true. */
  defaultMetrics?: boolean;
}

function createMetricObjects(registry: Registry) {
  const registers = [registry];
  const c = <T extends string>(name: string, help: string, labelNames: readonly T[]) =>
    new Counter<T | 'channel'>({ name, help, labelNames: ['channel', ...labelNames], registers });
  const g = <T extends string>(name: string, help: string, labelNames: readonly T[]) =>
    new Gauge<T | 'channel'>({ name, help, labelNames: ['channel', ...labelNames], registers });
  const h = (name: string, help: string, buckets: readonly number[]) =>
    new Histogram<'channel'>({ name, help, labelNames: ['channel'], buckets: [...buckets], registers });
  return {
    up: g('kvs_agent_up', 'Agent alive and supervising this channel (1/0)', []),
    ready: g('kvs_agent_ready', 'Channel ready: signaling open, peer connected, media flowing (1/0)', []),
    readyCheck: g('kvs_agent_ready_check', 'One readiness check passing (1/0)', ['check']),
    frames: c('kvs_agent_frames_total', 'Frames accepted from the bridge', ['kind']),
    bytes: c('kvs_agent_frame_bytes_total', 'Payload bytes of accepted frames', ['kind']),
    dropped: c('kvs_agent_frames_dropped_total', 'Frames not written, by cause', ['kind', 'cause']),
    gaps: c('kvs_agent_gaps_total', 'Media gaps', ['kind']),
    gapSeconds: c('kvs_agent_gap_seconds_total', 'Summed length of media gaps, seconds', ['kind']),
    keyInterval: h(
      'kvs_agent_keyframe_interval_seconds',
      'Time between consecutive video key frames, seconds',
      KEYFRAME_INTERVAL_BUCKETS_S,
    ),
    keyIntervalLast: g('kvs_agent_keyframe_interval_last_seconds', 'Latest key-frame interval, s', []),
    keyIntervalMax: g('kvs_agent_keyframe_interval_max_seconds', 'Longest key-frame interval, s', []),
    fragments: c('kvs_agent_fragments_total', 'kvssink fragments by state', ['state']),
    reconnects: c('kvs_agent_reconnects_total', 'Signaling/peer reconnects by cause', ['cause']),
    restarts: c('kvs_agent_child_restarts_total', 'Child restarts by child', ['child']),
    bridgeRejected: c('kvs_agent_bridge_rejected_total', 'Bridge input refused, by reason', ['reason']),
    bridgeLatency: h(
      'kvs_agent_bridge_latency_ms',
      'Bridge receive to muxer / gst stdin, milliseconds',
      BRIDGE_LATENCY_BUCKETS_MS,
    ),
    queueFrames: g('kvs_agent_queue_frames', 'Frames waiting in the pipeline queue', []),
    queueBytes: g('kvs_agent_queue_bytes', 'Bytes waiting in the pipeline queue', []),
    credentialExpiry: g(
      'kvs_agent_credential_expiry_timestamp_seconds',
      'Expiry of the current AWS credentials, Unix seconds (0: long-term keys)',
      [],
    ),
    credentialRefreshFailures: c(
      'kvs_agent_credential_refresh_failures_total',
      'Failed refreshes of the kvssink credential file (each retry counts)',
      [],
    ),
  };
}

type MetricObjects = ReturnType<typeof createMetricObjects>;

/** Owns the registry and the metric objects; one per agent process (or per test). */
export class AgentMetrics {
  readonly registry: Registry;
  readonly #objects: MetricObjects;
  readonly #channels = new Map<string, ChannelMetrics>();

  constructor(options: AgentMetricsOptions = {}) {
    this.registry = options.registry ?? new Registry();
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.#objects = createMetricObjects(this.registry);
  }

  /** The recorder for one channel; the same object for the same name. */
  channel(name: string): ChannelMetrics {
    let ch = this.#channels.get(name);
    if (!ch) {
      ch = new ChannelMetrics(this.#objects, name);
      this.#channels.set(name, ch);
    }
    return ch;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Prometheus text exposition of everything on the registry. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}

/** Typed recording methods for one channel. Negative or non-finite inputs are ignored, never thrown. */
export class ChannelMetrics {
  readonly #m: MetricObjects;
  #keyIntervalMax = 0;

  /** Made by `AgentMetrics.channel()`. */
  constructor(
    objects: MetricObjects,
    readonly name: string,
  ) {
    this.#m = objects;
  }

  setUp(up: boolean): void {
    this.#m.up.set({ channel: this.name }, up ? 1 : 0);
  }

  /** Mirrors a readiness verdict (what `/readyz` answered or would answer). */
  setReadiness(ready: boolean, checks: Readonly<Record<string, boolean>> = {}): void {
    this.#m.ready.set({ channel: this.name }, ready ? 1 : 0);
    for (const [check, ok] of Object.entries(checks)) {
      this.#m.readyCheck.set({ channel: this.name, check }, ok ? 1 : 0);
    }
  }

  frameAccepted(kind: TrackKind, bytes: number): void {
    this.#m.frames.inc({ channel: this.name, kind });
    if (valid(bytes)) this.#m.bytes.inc({ channel: this.name, kind }, bytes);
  }

  dropped(cause: DropCause, kind: TrackKind, n = 1): void {
    if (valid(n) && n > 0) this.#m.dropped.inc({ channel: this.name, kind, cause }, n);
  }

  gap(kind: TrackKind, seconds: number): void {
    this.#m.gaps.inc({ channel: this.name, kind });
    if (valid(seconds)) this.#m.gapSeconds.inc({ channel: this.name, kind }, seconds);
  }

  keyFrameInterval(seconds: number): void {
    if (!valid(seconds)) return;
    this.#m.keyInterval.observe({ channel: this.name }, seconds);
    this.#m.keyIntervalLast.set({ channel: this.name }, seconds);
    if (seconds > this.#keyIntervalMax) {
      this.#keyIntervalMax = seconds;
      this.#m.keyIntervalMax.set({ channel: this.name }, seconds);
    }
  }

  fragment(state: FragmentState): void {
    this.#m.fragments.inc({ channel: this.name, state });
  }

  reconnect(cause: ReconnectCause): void {
    this.#m.reconnects.inc({ channel: this.name, cause });
  }

  childRestart(child: ChildName): void {
    this.#m.restarts.inc({ channel: this.name, child });
  }

  bridgeRejected(reason: BridgeRejectReason, n = 1): void {
    if (valid(n) && n > 0) this.#m.bridgeRejected.inc({ channel: this.name, reason }, n);
  }

  bridgeLatency(ms: number): void {
    if (valid(ms)) this.#m.bridgeLatency.observe({ channel: this.name }, ms);
  }

  queueDepth(frames: number, bytes: number): void {
    if (valid(frames)) this.#m.queueFrames.set({ channel: this.name }, frames);
    if (valid(bytes)) this.#m.queueBytes.set({ channel: this.name }, bytes);
  }

  /** `undefined` for long-term keys that never expire (recorded as 0). */
  credentialExpiry(expiresAt: Date | undefined): void {
    const t = expiresAt === undefined ? 0 : expiresAt.getTime() / 1000;
    if (valid(t)) this.#m.credentialExpiry.set({ channel: this.name }, t);
  }

  /** One failed attempt to refresh the credentials kvssink reads (the agent retries on a backoff). */
  credentialRefreshFailed(): void {
    this.#m.credentialRefreshFailures.inc({ channel: this.name });
  }
}

function valid(n: number): boolean {
  return Number.isFinite(n) && n >= 0;
}
