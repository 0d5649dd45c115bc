import { expect, test } from '@playwright/test';
import { createLogger } from '../../../agent/log.js';
import { EmfPublisher, readEmfValues } from '../../../agent/ops/emf.js';
import { AgentMetrics } from '../../../agent/ops/metrics.js';

/** A real pino logger (the agent's createLogger) writing into memory. */
function capture(level = 'info', base: Record<string, unknown> = { channel: 'cam-a', session: 's-1' }) {
  const raw: string[] = [];
  const logger = createLogger({ level, base, destination: { write: (s: string) => void raw.push(s) } });
  const docs = () =>
    raw
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((l) => l.msg === 'metrics') as Array<Record<string, unknown> & { _aws: EmfAws }>;
  return { logger, raw, docs };
}

interface EmfAws {
  Timestamp: number;
  CloudWatchMetrics: Array<{
    Namespace: string;
    Dimensions: string[][];
    Metrics: Array<{ Name: string; Unit: string }>;
  }>;
}

/**
 * The names the CloudWatch alarms of infra/ are built on, written down independently of agent/ops/emf.ts:
 * renaming one there fails here (and the alarm test in test/infra pins the same literals).
 */
const EXPECTED_METRICS = [
  { Name: 'VideoFrames', Unit: 'Count' },
  { Name: 'AudioFrames', Unit: 'Count' },
  { Name: 'DroppedFrames', Unit: 'Count' },
  { Name: 'Gaps', Unit: 'Count' },
  { Name: 'GapSeconds', Unit: 'Seconds' },
  { Name: 'Reconnects', Unit: 'Count' },
  { Name: 'ChildRestarts', Unit: 'Count' },
  { Name: 'KvssinkErrors', Unit: 'Count' },
  { Name: 'CredentialRefreshFailures', Unit: 'Count' },
  { Name: 'Ready', Unit: 'None' },
];

test('one valid EMF line per channel: _aws at the top, namespace, channel dimension, every metric a number', async () => {
  const metrics = new AgentMetrics({ defaultMetrics: false });
  const ch = metrics.channel('cam-a');
  ch.frameAccepted('video', 1000);
  ch.frameAccepted('video', 1000);
  ch.frameAccepted('audio', 80);
  ch.dropped('seq_gap', 'video', 3);
  ch.dropped('queue_overflow', 'audio', 2);
  ch.gap('video', 1.5);
  ch.gap('audio', 0.25);
  ch.childRestart('gst');
  ch.childRestart('chromium');
  ch.credentialRefreshFailed();
  ch.fragment('failed');
  ch.fragment('persisted');
  ch.reconnect('go_away');
  ch.setReadiness(true);
  metrics.channel('other').frameAccepted('video', 5);
  const { logger, raw, docs } = capture();
  const emf = new EmfPublisher({
    metrics,
    channels: () => ['cam-a'],
    logger,
    intervalMs: 60_000,
    now: () => 1_700_000_000_123,
  });
  await emf.publish();

  expect(raw).toHaveLength(1);
  const line = raw[0]!;
  // The line is one JSON object on its own (what CloudWatch Logs requires), with the dimension key exactly once.
  expect(line.endsWith('\n')).toBe(true);
  expect(line.trim().split('\n')).toHaveLength(1);
  expect(line.match(/"channel":/g)).toHaveLength(1);
  const doc = docs()[0]!;
  expect(doc._aws).toEqual({
    Timestamp: 1_700_000_000_123,
    CloudWatchMetrics: [
      { Namespace: 'webrtc-kvs-agent', Dimensions: [['channel']], Metrics: EXPECTED_METRICS },
    ],
  });
  expect(doc.channel).toBe('cam-a');
  expect(doc).toMatchObject({
    VideoFrames: 2,
    AudioFrames: 1,
    DroppedFrames: 5, // summed over causes and tracks
    Gaps: 2,
    GapSeconds: 1.75,
    Reconnects: 1,
    ChildRestarts: 2,
    KvssinkErrors: 1, // only the failed state
    CredentialRefreshFailures: 1,
    Ready: 1,
  });
  for (const { Name } of doc._aws.CloudWatchMetrics[0]!.Metrics)
    expect(typeof doc[Name], Name).toBe('number');
  // The other channel's frame did not leak in.
  expect(readEmfValues(await metrics.registry.getMetricsAsJSON(), 'other').VideoFrames).toBe(1);
});

test('counters are increases per interval (CloudWatch sums them), gauges the current value; stop writes the last one once', async () => {
  const metrics = new AgentMetrics({ defaultMetrics: false });
  const ch = metrics.channel('cam-a');
  const { logger, docs } = capture();
  let now = 1_000;
  const emf = new EmfPublisher({
    metrics,
    channels: () => ['cam-a'],
    logger,
    intervalMs: 60_000,
    now: () => now,
  });

  ch.frameAccepted('video', 10);
  ch.frameAccepted('video', 10);
  ch.childRestart('gst');
  ch.setReadiness(false);
  await emf.publish();
  for (let i = 0; i < 5; i++) ch.frameAccepted('video', 10);
  ch.setReadiness(true);
  now = 61_000;
  await emf.publish();
  now = 121_000;
  await emf.publish(); // nothing happened: zeros, not missing data
  ch.frameAccepted('video', 10);
  ch.credentialRefreshFailed();
  now = 125_000;
  await Promise.all([emf.stop(), emf.stop()]);
  await emf.stop();
  await emf.publish(); // a publish after stop still reports honestly (nothing new)

  const pick = (d: Record<string, unknown>) => ({
    t: (d._aws as EmfAws).Timestamp,
    video: d.VideoFrames,
    restarts: d.ChildRestarts,
    cred: d.CredentialRefreshFailures,
    ready: d.Ready,
  });
  expect(docs().map(pick)).toEqual([
    { t: 1_000, video: 2, restarts: 1, cred: 0, ready: 0 },
    { t: 61_000, video: 5, restarts: 0, cred: 0, ready: 1 },
    { t: 121_000, video: 0, restarts: 0, cred: 0, ready: 1 },
    { t: 125_000, video: 1, restarts: 0, cred: 1, ready: 1 },
    { t: 125_000, video: 0, restarts: 0, cred: 0, ready: 1 },
  ]);
});

test('a gauge never set is left out of the document rather than reported as 0', async () => {
  const metrics = new AgentMetrics({ defaultMetrics: false });
  const { logger, docs } = capture();
  await new EmfPublisher({ metrics, channels: () => ['cam-a'], logger, intervalMs: 1_000 }).publish();
  const doc = docs()[0]!;
  expect(doc.VideoFrames).toBe(0);
  expect(doc).not.toHaveProperty('Ready');
  expect(doc._aws.CloudWatchMetrics[0]!.Metrics.map((m) => m.Name)).not.toContain('Ready');
});

test('the timer writes without being asked; the lines survive log level warn; silent writes nothing', async () => {
  const metrics = new AgentMetrics({ defaultMetrics: false });
  metrics.channel('cam-a').frameAccepted('video', 1);
  const warn = capture('warn');
  const emf = new EmfPublisher({ metrics, channels: () => ['cam-a'], logger: warn.logger, intervalMs: 30 });
  emf.start();
  await expect.poll(() => warn.docs().length, { timeout: 5_000 }).toBeGreaterThanOrEqual(2);
  await emf.stop();
  const written = warn.docs().length;
  await new Promise((r) => setTimeout(r, 100));
  expect(warn.docs()).toHaveLength(written); // stopped means stopped
  expect(warn.docs().reduce((sum, d) => sum + Number(d.VideoFrames), 0)).toBe(1); // counted once in all
  expect(warn.docs()[0]!.level).toBe('info');

  const silent = capture('silent');
  await new EmfPublisher({
    metrics,
    channels: () => ['cam-a'],
    logger: silent.logger,
    intervalMs: 30,
  }).stop();
  expect(silent.raw).toEqual([]);
});

test('a logger without a channel binding gets the channel from the document, one document per channel', async () => {
  const metrics = new AgentMetrics({ defaultMetrics: false });
  metrics.channel('a').frameAccepted('video', 1);
  metrics.channel('b').frameAccepted('audio', 1);
  const { logger, raw, docs } = capture('info', {});
  await new EmfPublisher({ metrics, channels: () => ['a', 'b'], logger, intervalMs: 1_000 }).publish();
  for (const line of raw) expect(line.match(/"channel":/g)).toHaveLength(1);
  expect(docs().map((d) => [d.channel, d.VideoFrames, d.AudioFrames])).toEqual([
    ['a', 1, 0],
    ['b', 0, 1],
  ]);
});

test('an interval of 0 is refused (the config turns EMF off instead of constructing a publisher)', () => {
  const { logger } = capture();
  expect(
    () => new EmfPublisher({ metrics: new AgentMetrics(), channels: () => [], logger, intervalMs: 0 }),
  ).toThrow(RangeError);
});
