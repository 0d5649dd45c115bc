import { join } from 'node:path';
import { CreateSignalingChannelCommand, KinesisVideoClient } from '@aws-sdk/client-kinesis-video';
import type { TestInfo } from '@playwright/test';
import type { Logger } from '../../agent/log.js';
import {
  DEFAULT_CHANNEL_NAME,
  DEFAULT_EMULATOR_CREDENTIALS,
  type EmulatorOptions,
} from '../../emulator/server.js';
import { ROOT, startDemoStack, type DemoStack } from '../../scripts/lib/demoStack.js';
import { launchMaster, type MasterHandle } from '../../scripts/lib/masterBrowser.js';
import {
  descendants,
  listProcesses,
  metricValue,
  startRecoveryAgent,
  waitFor,
  type RecoveryAgent,
} from './recoveryHarness.js';

/**
 * For the signaling, peer, master and channel rows (test/e2e/recovery/peer.test.ts, channel.test.ts): a fresh
 * demo stack and agent per fault, on a channel of the test's choosing (a short message TTL), with a master
 * that tests close and launch again. Builds on recoveryHarness.ts.
 */

export const VIEWER_ID = 'recovery-viewer';

export interface MasterRun {
  readonly stack: DemoStack;
  /** The current master (replaced by `relaunchMaster`, closed by `closeMaster`). */
  master: MasterHandle | undefined;
  readonly channel: string;
  readonly rec: RecoveryAgent;
  closeMaster(): Promise<void>;
  /** Closes the current master, if any, and launches a new one on the run's channel (signaling open). */
  relaunchMaster(): Promise<MasterHandle>;
  close(info: TestInfo): Promise<void>;
}

export interface MasterRunOptions {
  logger: Logger;
  emulator?: EmulatorOptions;
  /** A channel created through the control plane (MessageTtlSeconds 5–120) instead of the seeded one. */
  channel?: { name: string; messageTtlSeconds?: number };
  args?: string[];
}

export function kvsClient(stack: DemoStack): KinesisVideoClient {
  return new KinesisVideoClient({
    region: stack.emulator.region,
    endpoint: stack.emulator.url,
    credentials: { ...DEFAULT_EMULATOR_CREDENTIALS },
  });
}

/** Stack, master on the run's channel, agent (`--client-id VIEWER_ID`) recording video. */
export async function startMasterRun(options: MasterRunOptions): Promise<MasterRun> {
  const stack = await startDemoStack({
    logger: options.logger,
    maintainResolution: true,
    ...(options.emulator ? { emulator: options.emulator } : {}),
  });
  const channel = options.channel?.name ?? DEFAULT_CHANNEL_NAME;
  const launch = () =>
    launchMaster({
      endpoint: stack.emulator.url,
      region: stack.emulator.region,
      channel,
      credentials: { ...DEFAULT_EMULATOR_CREDENTIALS },
      maintainResolution: true,
      webRoot: join(ROOT, 'dist/web'),
      logger: options.logger.child({ component: 'master' }),
    });
  let master: MasterHandle | undefined = stack.master;
  let rec: RecoveryAgent | undefined;
  try {
    if (options.channel) {
      const kvs = kvsClient(stack);
      await kvs.send(
        new CreateSignalingChannelCommand({
          ChannelName: channel,
          ...(options.channel.messageTtlSeconds !== undefined
            ? { SingleMasterConfiguration: { MessageTtlSeconds: options.channel.messageTtlSeconds } }
            : {}),
        }),
      );
      kvs.destroy();
      // The stack's master joined the seeded channel.
      await stack.master.close();
      master = await launch();
    }
    rec = await startRecoveryAgent(stack, {
      args: ['--channel', channel, '--client-id', VIEWER_ID, ...(options.args ?? [])],
    });
    await rec.agent.waitForLog((l) => l.msg === 'recording', 90_000);
    await master.waitForViewerConnected(30_000);
  } catch (err) {
    await rec?.dispose();
    if (master !== stack.master) await master?.close();
    await stack.close();
    throw err;
  }
  const agent = rec;
  const run: MasterRun = {
    stack,
    master,
    channel,
    rec: agent,
    async closeMaster() {
      const m = run.master;
      run.master = undefined;
      await m?.close();
    },
    async relaunchMaster() {
      await run.closeMaster();
      run.master = await launch();
      return run.master;
    },
    async close(info) {
      await agent.dispose(info);
      await run.master?.close().catch(() => undefined);
      await stack.close();
    },
  };
  return run;
}

export interface Readyz {
  status: number;
  ready: boolean;
  checks: Record<string, boolean>;
  reasons: string[];
}

export async function readyz(opsUrl: string): Promise<Readyz> {
  const res = await fetch(`${opsUrl}/readyz`);
  return { status: res.status, ...((await res.json()) as Omit<Readyz, 'status'>) };
}

/** Samples /readyz every `everyMs` until stopped: what readiness said while a fault lasted. */
export function sampleReadyz(
  opsUrl: string,
  everyMs = 500,
): { stop(): Promise<Array<Readyz & { at: number }>> } {
  const samples: Array<Readyz & { at: number }> = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const at = Date.now();
      try {
        samples.push({ at, ...(await readyz(opsUrl)) });
      } catch {
        // A busy agent answers the next one.
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return samples;
    },
  };
}

/** Polls the accepted video frame counter until it moved `count` frames past its value at the call. */
export async function videoFramesAgain(opsUrl: string, count: number, timeoutMs: number): Promise<number> {
  const from = await metricValue(opsUrl, 'kvs_agent_frames_total', { kind: 'video' });
  await waitFor(
    'video frames again',
    async () => (await metricValue(opsUrl, 'kvs_agent_frames_total', { kind: 'video' })) >= from + count,
    timeoutMs,
    200,
  );
  return Date.now();
}

/** CPU seconds so far of the agent's node process, its Chromium processes and gst (from /proc). */
export async function agentCpuSeconds(
  agentPid: number,
): Promise<{ node: number; chromium: number; gst: number }> {
  const all = await listProcesses();
  const below = descendants(all, agentPid);
  const sum = (ps: typeof all) => ps.reduce((n, p) => n + p.cpuTicks, 0) / 100;
  return {
    node: sum(all.filter((p) => p.pid === agentPid)),
    chromium: sum(below.filter((p) => p.comm.startsWith('chrom'))),
    gst: sum(below.filter((p) => p.comm.startsWith('gst'))),
  };
}

/** Longest pause between consecutive wall-clock times (ms), and where it was. */
export function largestGap(times: number[]): { gapMs: number; beforeMs: number; afterMs: number } {
  let best = { gapMs: 0, beforeMs: times[0] ?? 0, afterMs: times[0] ?? 0 };
  for (let i = 1; i < times.length; i++)
    if (times[i]! - times[i - 1]! > best.gapMs)
      best = { gapMs: times[i]! - times[i - 1]!, beforeMs: times[i - 1]!, afterMs: times[i]! };
  return best;
}
