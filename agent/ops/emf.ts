import type { Registry } from 'prom-client';
import type { Logger } from '../log.js';
import type { AgentMetrics } from './metrics.js';

/**
 * CloudWatch Embedded Metric Format: once per interval the agent writes one JSON log line per channel that
 * CloudWatch Logs turns into metrics — no PutMetricData permission, no agent sidecar. The CloudWatch alarms of
 * `infra/` are built on exactly these names, namespace and dimension (they import them from here).
 *
 * Deliberately a short, curated list rather than every Prometheus series: each CloudWatch metric is billed
 * per month, and one EMF directive holds at most 100 metrics. Counters are emitted as the increase since the
 * previous document (CloudWatch sums datapoints; cumulative totals would count the same frame again every
 * minute); gauges as the value at that moment.
 */

/** CloudWatch namespace of every agent metric. */
export const EMF_NAMESPACE = 'webrtc-kvs-agent';
/** The one dimension; its value is the signaling channel's name. */
export const EMF_DIMENSION = 'channel';

export type EmfUnit = 'Count' | 'Seconds' | 'None';

export interface EmfMetricSpec {
  /** The Prometheus metric (agent/ops/metrics.ts) it is read from. */
  source: string;
  /** Only series with these label values count; all matching series are summed. */
  where?: Readonly<Record<string, string>>;
  /** `counter`: the increase since the last document; `gauge`: the current value. */
  type: 'counter' | 'gauge';
  unit: EmfUnit;
  description: string;
}

/** Name in CloudWatch → where it comes from. Names are part of the alarms' contract: rename with care. */
export const EMF_METRICS = {
  VideoFrames: {
    source: 'kvs_agent_frames_total',
    where: { kind: 'video' },
    type: 'counter',
    unit: 'Count',
    description: 'video frames accepted into the pipeline',
  },
  AudioFrames: {
    source: 'kvs_agent_frames_total',
    where: { kind: 'audio' },
    type: 'counter',
    unit: 'Count',
    description: 'audio frames accepted into the pipeline',
  },
  DroppedFrames: {
    source: 'kvs_agent_frames_dropped_total',
    type: 'counter',
    unit: 'Count',
    description: 'frames not written, every cause and track',
  },
  Gaps: {
    source: 'kvs_agent_gaps_total',
    type: 'counter',
    unit: 'Count',
    description: 'media gaps, both tracks',
  },
  GapSeconds: {
    source: 'kvs_agent_gap_seconds_total',
    type: 'counter',
    unit: 'Seconds',
    description: 'summed length of those gaps',
  },
  Reconnects: {
    source: 'kvs_agent_reconnects_total',
    type: 'counter',
    unit: 'Count',
    description: 'signaling/peer reconnects, every cause',
  },
  ChildRestarts: {
    source: 'kvs_agent_child_restarts_total',
    type: 'counter',
    unit: 'Count',
    description: 'restarts of Chromium, the page and GStreamer',
  },
  KvssinkErrors: {
    source: 'kvs_agent_fragments_total',
    where: { state: 'failed' },
    type: 'counter',
    unit: 'Count',
    description: 'kvssink stream errors',
  },
  CredentialRefreshFailures: {
    source: 'kvs_agent_credential_refresh_failures_total',
    type: 'counter',
    unit: 'Count',
    description: "failed refreshes of kvssink's credential file",
  },
  Ready: {
    source: 'kvs_agent_ready',
    type: 'gauge',
    unit: 'None',
    description: '1 while /readyz would answer 200, else 0',
  },
} as const satisfies Record<string, EmfMetricSpec>;

export type EmfMetricName = keyof typeof EMF_METRICS;
const EMF_NAMES = Object.keys(EMF_METRICS) as EmfMetricName[];

/** One EMF document: `_aws` metadata, the dimension and one root member per declared metric. */
export interface EmfDocument {
  _aws: {
    /** Epoch milliseconds. */
    Timestamp: number;
    CloudWatchMetrics: Array<{
      Namespace: string;
      Dimensions: string[][];
      Metrics: Array<{ Name: EmfMetricName; Unit: EmfUnit }>;
    }>;
  };
  channel: string;
  [metric: string]: unknown;
}

type MetricJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>[number];

/**
 * Each EMF metric's current reading for one channel: counters as cumulative totals (an absent series is 0:
 * prom-client counters start at 0 with the process), gauges as their value (absent ones are left out).
 */
export function readEmfValues(
  metrics: readonly MetricJson[],
  channel: string,
): Partial<Record<EmfMetricName, number>> {
  const bySource = new Map(metrics.map((m) => [m.name, m]));
  const out: Partial<Record<EmfMetricName, number>> = {};
  for (const name of EMF_NAMES) {
    const spec: EmfMetricSpec = EMF_METRICS[name];
    const values = (bySource.get(spec.source)?.values ?? []).filter(
      ({ labels }) =>
        labels.channel === channel &&
        Object.entries(spec.where ?? {}).every(([k, v]) => String(labels[k]) === v),
    );
    if (spec.type === 'gauge' && values.length === 0) continue;
    out[name] = values.reduce((sum, { value }) => sum + value, 0);
  }
  return out;
}

/** The document for one channel from metric values already turned into what CloudWatch should store. */
export function emfDocument(
  values: Partial<Record<EmfMetricName, number>>,
  channel: string,
  timestampMs: number,
  namespace = EMF_NAMESPACE,
): EmfDocument {
  const names = EMF_NAMES.filter((n) => values[n] !== undefined);
  const doc: EmfDocument = {
    _aws: {
      Timestamp: timestampMs,
      CloudWatchMetrics: [
        {
          Namespace: namespace,
          Dimensions: [[EMF_DIMENSION]],
          Metrics: names.map((n) => ({ Name: n, Unit: EMF_METRICS[n].unit })),
        },
      ],
    },
    channel,
  };
  for (const n of names) doc[n] = values[n];
  return doc;
}

export interface EmfPublisherOptions {
  metrics: AgentMetrics;
  /** The channels to report (one document each). */
  channels: () => readonly string[];
  logger: Logger;
  intervalMs: number;
  namespace?: string;
  now?: () => number;
}

/**
 * Writes one EMF document per channel every `intervalMs` and a last one at `stop()`, as pino log lines
 * (`msg: "metrics"`). The lines are written at info even when the log level is warn or error — the alarms
 * depend on them — and not at all with level `silent`.
 */
export class EmfPublisher {
  readonly #o: EmfPublisherOptions;
  readonly #log: Logger;
  /** Counter totals at the last document, per channel: the next one reports the increase. */
  readonly #last = new Map<string, Partial<Record<EmfMetricName, number>>>();
  #timer: NodeJS.Timeout | undefined;
  #chain: Promise<void> = Promise.resolve();
  #stopped: Promise<void> | undefined;

  constructor(options: EmfPublisherOptions) {
    if (!(options.intervalMs > 0)) throw new RangeError('EMF interval must be positive');
    this.#o = options;
    this.#log = options.logger.child(
      { component: 'emf' },
      { level: options.logger.level === 'silent' ? 'silent' : 'info' },
    );
  }

  start(): void {
    if (this.#timer || this.#stopped) return;
    this.#timer = setInterval(() => void this.publish(), this.#o.intervalMs);
    this.#timer.unref();
  }

  /** Writes the documents now (also what the timer calls); publications never overlap. */
  publish(): Promise<void> {
    this.#chain = this.#chain.then(
      () => this.#publishNow(),
      () => this.#publishNow(),
    );
    return this.#chain;
  }

  /** Stops the timer and writes the last documents, covering the time since the previous ones. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= (() => {
      clearInterval(this.#timer);
      this.#timer = undefined;
      return this.publish();
    })();
    return this.#stopped;
  }

  async #publishNow(): Promise<void> {
    try {
      const json = await this.#o.metrics.registry.getMetricsAsJSON();
      const timestampMs = (this.#o.now ?? Date.now)();
      const bound = this.#log.bindings() as { channel?: unknown };
      for (const channel of this.#o.channels()) {
        const totals = readEmfValues(json, channel);
        const last = this.#last.get(channel) ?? {};
        const values: Partial<Record<EmfMetricName, number>> = {};
        for (const name of EMF_NAMES) {
          const now = totals[name];
          if (now === undefined) continue;
          const before = last[name] ?? 0;
          // A total below the last one can only be a reset registry: report what it holds now.
          values[name] = EMF_METRICS[name].type === 'counter' ? (now >= before ? now - before : now) : now;
        }
        this.#last.set(channel, totals);
        const doc: Partial<EmfDocument> = emfDocument(values, channel, timestampMs, this.#o.namespace);
        // The logger may already carry `channel` (main binds it): a second key would be a duplicate in the line.
        if (bound.channel === channel) delete doc.channel;
        else if (bound.channel !== undefined) {
          this.#log.warn({ emfChannel: channel }, 'EMF skipped: the logger is bound to another channel');
          continue;
        }
        this.#log.info(doc, 'metrics');
      }
    } catch (err) {
      this.#log.warn({ err }, 'could not write EMF metrics');
    }
  }
}
