import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { agentChromiumPath } from '../../../agent/config.js';
import { createLogger } from '../../../agent/log.js';
import { startDemoStack, type DemoStack } from '../../../scripts/lib/demoStack.js';
import {
  agentChildren,
  checkRecording,
  gapAround,
  groupMembers,
  killGroup,
  logTime,
  metricValue,
  report,
  startRecoveryAgent,
  waitFor,
  waitForLogAfter,
  waitForVideoFrames,
  type RecoveryAgent,
} from '../../support/recoveryHarness.js';

/**
 * Recovery rows for the agent's children (issue 6, section 1): Chromium killed or hung, a relaunch that keeps
 * failing, GStreamer killed or stalled. Real agent, real Chromium and gst, faults by signal from outside;
 * recovery time and media gap measured on the files the agent wrote.
 */
test.describe.configure({ mode: 'serial' });

const logger = createLogger({ level: 'warn' });
/** The agent's Chromium. */
const CHROMIUM = agentChromiumPath();
/**
 * Bounds of the recovery table. The machine is shared with other Chromium tests: a Chromium launch alone has
 * taken 13 s under that load, so asserts add a generous margin and every test prints what it measured.
 */
const CHROMIUM_BOUND_MS = 15_000;
const GST_BOUND_MS = 5_000;
const MARGIN_MS = { chromium: 25_000, gst: 5_000 };

let stack: DemoStack;
let current: RecoveryAgent | undefined;

test.beforeAll(async () => {
  test.setTimeout(120_000);
  stack = await startDemoStack({ logger, maintainResolution: true });
});

test.afterAll(async () => {
  await stack?.close();
});

test.afterEach(async () => {
  await current?.dispose(test.info());
  current = undefined;
});

/** Agent up and writing video (a few seconds of it, so the fault cuts into a running recording). */
async function recordingAgent(args: string[] = []): Promise<RecoveryAgent> {
  current = await startRecoveryAgent(stack, { args });
  await current.agent.waitForLog((l) => l.msg === 'recording', 90_000);
  await waitForVideoFrames(await current.opsUrl(), 0, 90, 30_000);
  return current;
}

/** Waits until the agent has taken `frames` more video frames from now (the new run records for a while). */
async function recordMore(r: RecoveryAgent, frames: number): Promise<void> {
  const ops = await r.opsUrl();
  const now = await metricValue(ops, 'kvs_agent_frames_total', { kind: 'video' });
  await waitForVideoFrames(ops, now, frames, 30_000);
}

/** Stops the agent cleanly and checks what it wrote: decodes, key frames first, both tracks after `faultAt`. */
async function checkAfterFault(
  r: RecoveryAgent,
  faultAt: number,
  boundMs: number,
  marginMs: number,
): Promise<void> {
  const children = await agentChildren(r.agent.child.pid!);
  const groups = [...new Set([...children.allChromium, ...children.gst].map((p) => p.pgid))];
  const exit = await r.stop();
  // Nothing the agent ran outlives it (Chromium and gst run in process groups of their own).
  for (const pgid of groups) expect(await groupMembers(pgid), `group ${pgid} after exit`).toEqual([]);
  expect(exit.code, r.agent.stderr.slice(-20).join('\n')).toBe(0);
  expect(r.agent.lines.some((l) => l.msg === 'recording finished')).toBe(true);
  const rec = await checkRecording(r.dir, r.agent.lines);
  const video = gapAround(rec.times.video, faultAt);
  const audio = gapAround(rec.times.audio, faultAt);
  report(
    test.info(),
    'video gap',
    video && { gapMs: Math.round(video.gapMs), recoveryMs: Math.round(video.recoveryMs) },
  );
  report(
    test.info(),
    'audio gap',
    audio && { gapMs: Math.round(audio.gapMs), recoveryMs: Math.round(audio.recoveryMs) },
  );
  report(test.info(), 'files', rec.files.length);
  expect(rec.decodeErrors).toEqual([]);
  expect(rec.notStartingAtKeyFrame).toEqual([]);
  expect(rec.deltaAfterGap).toEqual([]);
  expect(video, 'video continues after the fault').not.toBeNull();
  expect(video!.recoveryMs).toBeLessThanOrEqual(boundMs + marginMs);
  // Both tracks go on: a few seconds of each after the video came back.
  const after = (times: number[]) => times.filter((t) => t > video!.resumedAtMs).length;
  expect(after(rec.times.video)).toBeGreaterThan(60);
  expect(after(rec.times.audio)).toBeGreaterThan(60);
}

test('Chromium killed (process group SIGKILL) → relaunched, recording resumes ≤ 15 s', async () => {
  test.setTimeout(240_000);
  const r = await recordingAgent();
  const pid = r.agent.child.pid!;
  const before = await agentChildren(pid);
  expect(before.chromium, 'the agent runs its own Chromium').toBeDefined();
  const ops = await r.opsUrl();
  const framesAtFault = await metricValue(ops, 'kvs_agent_frames_total', { kind: 'video' });
  const faultAt = Date.now();
  killGroup(before.chromium!.pgid, 'SIGKILL');

  const relaunch = await waitForLogAfter(r.agent, faultAt, (l) => l.msg === 'relaunching Chromium', 20_000);
  report(test.info(), 'death noticed after ms', logTime(relaunch) - faultAt);
  await waitForVideoFrames(ops, framesAtFault, 90, 60_000);
  const after = await agentChildren(pid);
  expect(after.chromium?.pid).not.toBe(before.chromium!.pid);
  expect(await groupMembers(before.chromium!.pgid), 'nothing of the old Chromium left').toEqual([]);
  await checkAfterFault(r, faultAt, CHROMIUM_BOUND_MS, MARGIN_MS.chromium);
});

test('Chromium hung (process group SIGSTOP) → heartbeat watchdog, killed and relaunched, resumes ≤ 15 s', async () => {
  test.setTimeout(240_000);
  const r = await recordingAgent();
  const pid = r.agent.child.pid!;
  const before = await agentChildren(pid);
  expect(before.chromium).toBeDefined();
  const ops = await r.opsUrl();
  const framesAtFault = await metricValue(ops, 'kvs_agent_frames_total', { kind: 'video' });
  const faultAt = Date.now();
  killGroup(before.chromium!.pgid, 'SIGSTOP');

  const noticed = await waitForLogAfter(
    r.agent,
    faultAt,
    (l) => l.msg === 'viewer page stopped its heartbeat' || l.msg === 'no media while connected: escalating',
    30_000,
  );
  report(test.info(), 'hang noticed after ms', { ms: logTime(noticed) - faultAt, by: noticed.msg });
  const relaunch = await waitForLogAfter(r.agent, faultAt, (l) => l.msg === 'relaunching Chromium', 40_000);
  report(test.info(), 'relaunch after ms', logTime(relaunch) - faultAt);
  await waitForVideoFrames(ops, framesAtFault, 90, 60_000);
  // The stopped group was killed, not left behind stopped.
  await waitFor(
    'the stopped Chromium group to be gone',
    async () => (await groupMembers(before.chromium!.pgid)).length === 0,
    15_000,
  );
  const after = await agentChildren(pid);
  expect(after.allChromium.filter((p) => p.state === 'T')).toEqual([]);
  await checkAfterFault(r, faultAt, CHROMIUM_BOUND_MS, MARGIN_MS.chromium);
});

test('Chromium relaunch failing beyond the browserRestart policy ends the agent with exit 1', async () => {
  test.setTimeout(240_000);
  const wrapperDir = await mkdtemp(join(tmpdir(), 'kvs-agent-chromium-wrapper-'));
  try {
    // Starts the real Chromium once; every later launch fails, as a broken install or a full disk would.
    const wrapper = join(wrapperDir, 'chromium');
    await writeFile(
      wrapper,
      [
        '#!/bin/sh',
        `if [ -e '${wrapperDir}/launched' ]; then echo 'wrapper: refusing to start Chromium again' >&2; exit 1; fi`,
        `touch '${wrapperDir}/launched'`,
        `exec '${CHROMIUM}' "$@"`,
        '',
      ].join('\n'),
    );
    await chmod(wrapper, 0o755);
    const r = await recordingAgent(['--chromium-path', wrapper]);
    const before = await agentChildren(r.agent.child.pid!);
    const faultAt = Date.now();
    killGroup(before.chromium!.pgid, 'SIGKILL');
    const exit = await Promise.race([
      r.agent.exited,
      new Promise<null>((res) => setTimeout(() => res(null), 120_000)),
    ]);
    const exitedAfterMs = Date.now() - faultAt;
    const relaunches = r.agent.lines.filter((l) => l.msg === 'relaunching Chromium').length;
    report(test.info(), 'exit after ms', { exitedAfterMs, relaunches, exit });
    expect(exit, 'the agent gave up and exited').not.toBeNull();
    expect(exit!.code).toBe(1);
    // The policy's attempts were all made (browserRestart: 6), each launch failing.
    expect(relaunches).toBe(6);
    expect(r.agent.lines.filter((l) => l.msg === 'Chromium relaunch failed').length).toBe(6);
    expect(
      r.agent.lines.some((l) => typeof l.err === 'object' && /keeps failing/.test(JSON.stringify(l.err))),
    ).toBe(true);
    expect(await groupMembers(before.chromium!.pgid)).toEqual([]);
  } finally {
    await rm(wrapperDir, { recursive: true, force: true });
  }
});

test('gst killed (SIGKILL) → a new run at the next key frame ≤ 5 s', async () => {
  test.setTimeout(180_000);
  const r = await recordingAgent();
  const pid = r.agent.child.pid!;
  const [gst] = (await agentChildren(pid)).gst;
  expect(gst, 'gst-launch-1.0 runs below the agent').toBeDefined();
  const faultAt = Date.now();
  killGroup(gst!.pgid, 'SIGKILL');
  const next = await waitForLogAfter(r.agent, faultAt, (l) => l.msg === 'recording', 30_000);
  report(test.info(), 'next recording line after ms', logTime(next) - faultAt);
  expect(logTime(next) - faultAt).toBeLessThanOrEqual(GST_BOUND_MS + MARGIN_MS.gst);
  await recordMore(r, 120);
  const now = await agentChildren(pid);
  expect(now.gst.map((p) => p.pid)).not.toContain(gst!.pid);
  expect(now.gst).toHaveLength(1);
  await checkAfterFault(r, faultAt, GST_BOUND_MS, MARGIN_MS.gst);
});

test('gst hung (SIGSTOP) → the muxer stall watchdog fails the run and kills the hung gst, a new run ≤ 5 s after the fault', async () => {
  test.setTimeout(180_000);
  const r = await recordingAgent();
  const pid = r.agent.child.pid!;
  const [gst] = (await agentChildren(pid)).gst;
  expect(gst).toBeDefined();
  const faultAt = Date.now();
  killGroup(gst!.pgid, 'SIGSTOP');
  const failed = await waitForLogAfter(r.agent, faultAt, (l) => l.msg === 'recording run failed', 30_000);
  const detectedAt = logTime(failed);
  const next = await waitForLogAfter(r.agent, detectedAt, (l) => l.msg === 'recording', 30_000);
  report(test.info(), 'stall detected after ms', detectedAt - faultAt);
  report(test.info(), 'next recording line after the fault ms', logTime(next) - faultAt);
  expect(logTime(next) - faultAt).toBeLessThanOrEqual(GST_BOUND_MS + MARGIN_MS.gst);
  // A gst that stopped reading cannot take an EOS: it is killed at once, not left behind.
  await waitFor(
    'the hung gst to be killed',
    async () => !(await agentChildren(pid)).gst.some((p) => p.pid === gst!.pid),
    10_000,
    200,
  );
  report(test.info(), 'hung gst gone after ms', Date.now() - faultAt);
  expect((await agentChildren(pid)).gst).toHaveLength(1);
  // The new run may have started only just now (CI: 39 frames after it when stopped at once): let it record.
  await recordMore(r, 120);
  await checkAfterFault(r, faultAt, GST_BOUND_MS, MARGIN_MS.gst);
});
