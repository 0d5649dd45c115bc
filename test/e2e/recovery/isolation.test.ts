import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { CreateSignalingChannelCommand, KinesisVideoClient } from '@aws-sdk/client-kinesis-video';
import { expect, test } from '@playwright/test';
import { createLogger } from '../../../agent/log.js';
import { DEFAULT_EMULATOR_CREDENTIALS, startEmulator, type Emulator } from '../../../emulator/server.js';
import { decodeErrors, segmentsIn } from '../../../scripts/lib/mediaProbe.js';
import { matchFrames, recordedVideoFrames, type FrameMatch } from '../../../scripts/lib/syncProbe.js';
import { clipSpec, loadClip, type Clip } from '../../../WebRTC/synthetic/clip.js';
import { SyntheticMaster, type SentFrame } from '../../../WebRTC/synthetic/syntheticMaster.js';
import {
  agentChildren,
  killGroup,
  logTime,
  metricValue,
  report,
  startRecoveryAgent,
  waitFor,
  waitForLogAfter,
  type RecoveryAgent,
} from '../../support/recoveryHarness.js';

/**
 * Failures stay in their channel: one agent records two channels (two synthetic masters, so every frame is
 * accounted for), a fault hits channel A's GStreamer, and channel B must lose nothing and keep its run; a
 * Chromium crash takes both pages, and each resumes. Real agent, real Chromium and gst, faults by signal.
 */
test.describe.configure({ mode: 'serial' });

const logger = createLogger({ level: 'warn' });
const A = { channel: 'webrtc-kvs-agent-channel', stream: 'stream-a' };
const B = { channel: 'cam-b', stream: 'stream-b' };
let emulator: Emulator;
let clips: Clip[];
let run: { agent: RecoveryAgent; masters: SyntheticMaster[]; sent: Record<string, SentFrame[]> } | undefined;

test.beforeAll(async () => {
  test.setTimeout(120_000);
  emulator = await startEmulator({ port: 0, logger: logger.child({ component: 'emulator' }) });
  const kv = new KinesisVideoClient({
    region: emulator.region,
    endpoint: emulator.url,
    credentials: { ...DEFAULT_EMULATOR_CREDENTIALS },
  });
  await kv.send(new CreateSignalingChannelCommand({ ChannelName: B.channel }));
  kv.destroy();
  clips = [await loadClip(clipSpec(640, 360))];
});

test.afterAll(async () => {
  await emulator?.stop();
});

test.afterEach(async () => {
  await run?.agent.dispose(test.info());
  for (const m of run?.masters ?? []) await m.stop();
  run = undefined;
});

/** Both masters up, the agent recording both channels for a few seconds. */
async function twoChannels(): Promise<NonNullable<typeof run>> {
  const sent: Record<string, SentFrame[]> = { [A.stream]: [], [B.stream]: [] };
  const masters = [A, B].map(
    (c) =>
      new SyntheticMaster({
        region: emulator.region,
        channelName: c.channel,
        endpoint: emulator.url,
        credentials: { ...DEFAULT_EMULATOR_CREDENTIALS },
        clips,
        logger: logger.child({ component: 'synthetic-master', channel: c.channel }),
        onSent: (f) => sent[c.stream]!.push(f),
      }),
  );
  await Promise.all(masters.map((m) => m.start()));
  const agent = await startRecoveryAgent(
    {
      emulator,
      agentEnv: {
        AWS_ACCESS_KEY_ID: DEFAULT_EMULATOR_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: DEFAULT_EMULATOR_CREDENTIALS.secretAccessKey,
        AWS_REGION: emulator.region,
      },
    },
    { args: ['--channel', `${A.channel}=${A.stream}`, '--channel', `${B.channel}=${B.stream}`] },
  );
  run = { agent, masters, sent };
  await waitForBoth(agent, 90);
  return run;
}

const frames = async (agent: RecoveryAgent, channel: string): Promise<number> =>
  metricValue(await agent.opsUrl(), 'kvs_agent_frames_total', { kind: 'video', channel });

async function waitForBoth(agent: RecoveryAgent, more: number): Promise<void> {
  const [a, b] = await Promise.all([frames(agent, A.channel), frames(agent, B.channel)]);
  await waitFor(
    `${more} more video frames on both channels`,
    async () => (await frames(agent, A.channel)) >= a + more && (await frames(agent, B.channel)) >= b + more,
    90_000,
    250,
  );
}

/** The gst-launch-1.0 of a stream (its argv names the stream's segment files). */
async function gstOf(agent: RecoveryAgent, stream: string): Promise<{ pid: number; pgid: number }> {
  for (const p of (await agentChildren(agent.agent.child.pid!)).gst) {
    const argv = await readFile(`/proc/${p.pid}/cmdline`, 'utf8').catch(() => '');
    if (argv.includes(`${stream}_`)) return p;
  }
  throw new Error(`no gst-launch-1.0 writing ${stream}`);
}

/** Stops the agent and matches each stream's recording against what its master sent. */
async function recorded(r: NonNullable<typeof run>): Promise<Record<string, FrameMatch>> {
  const exit = await r.agent.stop();
  expect(exit.code, r.agent.agent.stderr.slice(-20).join('\n')).toBe(0);
  const files = await segmentsIn(r.agent.dir);
  const out: Record<string, FrameMatch> = {};
  for (const stream of [A.stream, B.stream]) {
    const recordedFrames = [];
    for (const file of files.filter((f) => basename(f).startsWith(`${stream}_`))) {
      expect(await decodeErrors(file), file).toBe('');
      recordedFrames.push(await recordedVideoFrames(file));
    }
    out[stream] = matchFrames(r.sent[stream]!, recordedFrames, clips[0]!.spec.frames);
  }
  return out;
}

/** Sequence numbers of video frames sent before the last one recorded that the recording lacks. */
function lost(match: FrameMatch): number[] {
  const last = match.matched.at(-1)?.sent.seq ?? -1;
  return match.lost.filter((seq) => seq < last);
}

/** Runs of a channel logged after `since` (a new run on B would mean B was touched). */
function runsAfter(r: NonNullable<typeof run>, channel: string, since: number): number {
  return r.agent.agent.lines.filter(
    (l) => l.msg === 'recording' && l.channel === channel && logTime(l) > since,
  ).length;
}

for (const fault of [
  { name: 'killed (SIGKILL)', signal: 'SIGKILL' as const },
  { name: 'hung (SIGSTOP)', signal: 'SIGSTOP' as const },
]) {
  test(`channel A's gst ${fault.name}: A starts a new run, B records on without losing a frame`, async () => {
    test.setTimeout(240_000);
    const r = await twoChannels();
    const gst = await gstOf(r.agent, A.stream);
    const faultAt = Date.now();
    killGroup(gst.pgid, fault.signal);
    const next = await waitForLogAfter(
      r.agent.agent,
      faultAt,
      (l) => l.msg === 'recording' && l.channel === A.channel,
      30_000,
    );
    report(test.info(), 'channel A new run after ms', logTime(next) - faultAt);
    await waitForBoth(r.agent, 150);
    const bRuns = runsAfter(r, B.channel, faultAt);
    const match = await recorded(r);
    const lostA = lost(match[A.stream]!);
    const lostB = lost(match[B.stream]!);
    report(test.info(), 'frames', {
      a: { matched: match[A.stream]!.matched.length, lost: lostA.length },
      b: { matched: match[B.stream]!.matched.length, lost: lostB.length, newRuns: bRuns },
    });
    expect(bRuns).toBe(0);
    expect(lostB).toEqual([]);
    expect(match[B.stream]!.unknown).toBe(0);
    // A lost only what was sent around its fault (the run that died, up to the next key frame).
    expect(match[A.stream]!.matched.filter((m) => m.sent.captureMs > logTime(next)).length).toBeGreaterThan(
      100,
    );
    expect(logTime(next) - faultAt).toBeLessThan(10_000);
  });
}

test('Chromium killed with two channels: both pages come back in the relaunched browser and each resumes', async () => {
  test.setTimeout(240_000);
  const r = await twoChannels();
  const { chromium } = await agentChildren(r.agent.agent.child.pid!);
  expect(chromium, 'the agent’s Chromium').toBeDefined();
  const faultAt = Date.now();
  killGroup(chromium!.pgid, 'SIGKILL');
  await waitForLogAfter(r.agent.agent, faultAt, (l) => l.msg === 'viewer browser ready', 60_000);
  await waitForBoth(r.agent, 150);
  const now = await agentChildren(r.agent.agent.child.pid!);
  expect(now.chromium?.pid).not.toBe(chromium!.pid);
  const match = await recorded(r);
  const resumed: Record<string, number> = {};
  for (const c of [A, B]) {
    const m = match[c.stream]!;
    // The recording itself says when each channel came back: the first frame captured after the crash.
    const back = m.matched.find((f) => f.sent.captureMs > faultAt);
    expect(back, `${c.stream} has frames after the crash`).toBeDefined();
    resumed[c.stream] = back!.sent.captureMs - faultAt;
    report(test.info(), `${c.stream} frames`, {
      matched: m.matched.length,
      unknown: m.unknown,
      resumedAfterMs: resumed[c.stream],
      lostInOutage: lost(m).length,
    });
    expect(m.unknown).toBe(0);
    expect(m.matched.filter((f) => f.sent.captureMs > faultAt).length).toBeGreaterThan(100);
    expect(resumed[c.stream]!).toBeLessThan(40_000);
  }
});
