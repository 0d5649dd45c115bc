import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { createLogger } from '../../../agent/log.js';
import type { FragmentRecord } from '../../../emulator/media/fragmentStore.js';
import type { PutMediaFault } from '../../../emulator/media/putMediaFaults.js';
import { DEFAULT_STREAM_NAME } from '../../../emulator/server.js';
import { startDemoStack, type DemoStack } from '../../../scripts/lib/demoStack.js';
import { kvssinkAvailable } from '../../../scripts/lib/kvssinkCheck.js';
import {
  metricValue,
  report,
  startRecoveryAgent,
  waitFor,
  type RecoveryAgent,
} from '../../support/recoveryHarness.js';

/**
 * The kvssink rows of the recovery table (issue 6): KVS refusing or stalling PutMedia for a while, and the
 * credentials endpoint failing. Real kvssink against the emulator's PutMedia; skipped, saying why, without it.
 */
test.describe.configure({ mode: 'serial' });

const logger = createLogger({ level: 'warn' });
/** Bound of the recovery table for "KVS back"; the machine is loaded, so asserts add a margin. */
const KVS_BACK_BOUND_MS = 10_000;
const MARGIN_MS = 10_000;
const FAULT_MS = 15_000;

let kvssink = { available: false, reason: 'not checked' };
let stack: DemoStack | undefined;
let current: RecoveryAgent | undefined;

test.beforeAll(async () => {
  kvssink = await kvssinkAvailable();
});

test.afterEach(async () => {
  await current?.dispose(test.info());
  current = undefined;
  await stack?.close();
  stack = undefined;
});

async function fragmentIndex(s: DemoStack): Promise<FragmentRecord[]> {
  try {
    const text = await readFile(join(s.emulator.dataDir, DEFAULT_STREAM_NAME, 'index.json'), 'utf8');
    return JSON.parse(text) as FragmentRecord[];
  } catch {
    return [];
  }
}

/** Counters that mean a PutMedia error the agent caused (ERROR acks, signature or credential problems). */
function problems(stats: Record<string, number>): string[] {
  return Object.keys(stats).filter(
    (k) =>
      k.startsWith('putMedia.error') || k.includes('sigv4') || k.startsWith('container-credentials.rejected'),
  );
}

for (const fault of [
  { mode: 'refuse', status: 503 },
  { mode: 'refuse', status: 500 },
  { mode: 'stall' },
] satisfies PutMediaFault[]) {
  const name = fault.mode === 'refuse' ? `refuses (HTTP ${fault.status})` : 'stalls';
  test(`PutMedia ${name} for 15 s, then recovers → fragments again ≤ 10 s after KVS returns, all persisted`, async () => {
    test.skip(!kvssink.available, kvssink.reason);
    test.setTimeout(240_000);
    stack = await startDemoStack({ logger, maintainResolution: true });
    const s = stack;
    current = await startRecoveryAgent(s, { sink: 'kvssink' });
    const r = current;
    await r.agent.waitForLog((l) => l.msg === 'recording' && l.sink === 'kvssink', 90_000);
    await waitFor('fragments persisted', async () => (await fragmentIndex(s)).length >= 4, 60_000, 500);
    const ops = await r.opsUrl();
    const droppedBefore = await metricValue(ops, 'kvs_agent_frames_dropped_total');

    const faultAt = Date.now();
    s.emulator.admin.putMediaFault(fault);
    // The fault is the point of this window: KVS is away for FAULT_MS.
    await new Promise((res) => setTimeout(res, FAULT_MS));
    s.emulator.admin.putMediaFault({ mode: 'none' });
    const backAt = Date.now();
    const firstAfter = await waitFor(
      'a fragment received after KVS came back',
      async () => (await fragmentIndex(s)).find((f) => f.serverTimestampMs >= backAt),
      60_000,
      250,
    );
    const recoveryMs = firstAfter.serverTimestampMs - backAt;
    // A few more fragments, so the recording is seen to go on.
    await waitFor(
      'recording going on',
      async () => (await fragmentIndex(s)).filter((f) => f.serverTimestampMs >= backAt).length >= 4,
      60_000,
      500,
    );
    const dropped = (await metricValue(ops, 'kvs_agent_frames_dropped_total')) - droppedBefore;
    const exit = await r.stop();
    const stats = s.emulator.admin.stats();
    const index = await fragmentIndex(s);
    // Producer-time hole in the stream around the fault: what KVS does not have.
    let hole = { ms: 0, at: 0 };
    for (let i = 1; i < index.length; i++) {
      const prev = index[i - 1]!;
      const ms = index[i]!.producerTimestampMs - (prev.producerTimestampMs + prev.durationMs);
      if (ms > hole.ms) hole = { ms, at: index[i]!.producerTimestampMs };
    }
    const restarts = r.agent.lines.filter((l) => l.msg === 'restarting the recording').length;
    report(test.info(), 'KVS back → next fragment ms', recoveryMs);
    report(test.info(), 'largest producer-time hole ms', Math.round(hole.ms));
    report(test.info(), 'pipeline restarts', restarts);
    report(test.info(), 'emulator', {
      received: stats['putMedia.fragmentsReceived'],
      persisted: stats['putMedia.fragmentsPersisted'],
      refusedOrCut: Object.entries(stats).filter(([k]) => k.includes('rejected') || k.includes('aborted')),
    });
    expect(exit.code, r.agent.stderr.slice(-20).join('\n')).toBe(0);
    expect(recoveryMs).toBeLessThanOrEqual(KVS_BACK_BOUND_MS + MARGIN_MS);
    expect(problems(stats)).toEqual([]);
    // Every fragment KVS received was persisted (nothing acknowledged and then lost).
    expect(stats['putMedia.fragmentsPersisted']).toBe(stats['putMedia.fragmentsReceived']);
    for (const f of index) {
      expect(f.startsWithKeyFrame).toBe(true);
      expect(f.tracksPresent).toEqual([1, 2]);
    }
    // Frames that could not be kept are counted, not hidden: a hole in the stream comes with drops in the
    // agent's metrics (no hole: kvssink held everything).
    report(test.info(), 'frames dropped during the fault (metrics)', dropped);
    report(test.info(), 'fault started', new Date(faultAt).toISOString());
    if (hole.ms > 2_000) expect(dropped).toBeGreaterThan(0);
  });
}

test('credential refresh fails → /readyz false before the credentials expire, with the cause; ready again when it works', async () => {
  test.skip(!kvssink.available, kvssink.reason);
  test.setTimeout(300_000);
  // 100 s: the agent refreshes 90 s before expiry, so the endpoint is asked again every ~10 s.
  const ttlMs = 100_000;
  stack = await startDemoStack({
    logger,
    maintainResolution: true,
    emulator: { containerCredentials: { ttlMs } },
  });
  const s = stack;
  current = await startRecoveryAgent(s, {
    sink: 'kvssink',
    env: {
      AWS_ACCESS_KEY_ID: '',
      AWS_SECRET_ACCESS_KEY: '',
      AWS_CONTAINER_CREDENTIALS_FULL_URI: s.emulator.containerCredentialsUrl!,
    },
  });
  const r = current;
  await r.agent.waitForLog((l) => l.msg === 'recording' && l.sink === 'kvssink', 90_000);
  const ops = await r.opsUrl();
  const readyz = async () =>
    (await (await fetch(`${ops}/readyz`)).json()) as {
      ready: boolean;
      reasons: string[];
      checks: Record<string, boolean>;
    };
  // The sink's check (credentials, stream) is the one this row is about; the others are printed.
  let last: unknown;
  const before = await waitFor(
    'sink check passing',
    async () => {
      const body = await readyz();
      last = body;
      return body.checks.sink ? body : undefined;
    },
    60_000,
    500,
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; last /readyz: ${JSON.stringify(last)}`);
  });
  report(test.info(), 'readiness before the fault', { ready: before.ready, reasons: before.reasons });
  const written = r.agent.lines.filter((l) => l.msg === 'kvssink credentials written');
  const lastExpiry = Date.parse(String(written.at(-1)?.expiration));

  const failAt = Date.now();
  s.emulator.failContainerCredentials!(500);
  const notReady = await waitFor(
    'readiness false',
    async () => {
      const body = await readyz();
      return body.ready || body.checks.sink ? undefined : body;
    },
    ttlMs,
    500,
  );
  const notReadyAt = Date.now();
  const expiryNow = Math.max(
    lastExpiry,
    ...r.agent.lines
      .filter((l) => l.msg === 'kvssink credentials written')
      .map((l) => Date.parse(String(l.expiration))),
  );
  const error = r.agent.lines.find(
    (l) => l.msg === 'could not refresh kvssink credentials' && Date.parse(String(l.time)) >= failAt,
  );
  report(test.info(), 'readiness false after ms', {
    ms: notReadyAt - failAt,
    beforeExpiryMs: expiryNow - notReadyAt,
  });
  report(test.info(), 'reasons', notReady.reasons);
  expect(notReadyAt).toBeLessThan(expiryNow);
  expect(notReady.reasons.join(' ')).toMatch(/credential refresh failing/);
  expect(error, 'the error is logged').toBeDefined();
  // The AWS SDK's default chain reports its own summary (the container endpoint's 500 is behind it).
  expect(JSON.stringify(error)).toMatch(/Could not load credentials|CredentialsProviderError/);

  s.emulator.failContainerCredentials!(undefined);
  const fixedAt = Date.now();
  await waitFor('sink check passing again', async () => (await readyz()).checks.sink, 60_000, 500);
  report(test.info(), 'ready again after ms', Date.now() - fixedAt);
  const exit = await r.stop();
  expect(exit.code).toBe(0);
  const stats = s.emulator.admin.stats();
  expect(problems(stats)).toEqual([]);
  expect(stats['putMedia.fragmentsPersisted']).toBe(stats['putMedia.fragmentsReceived']);
});
