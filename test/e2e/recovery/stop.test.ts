import { expect, test } from '@playwright/test';
import { createLogger } from '../../../agent/log.js';
import { startDemoStack, type DemoStack } from '../../../scripts/lib/demoStack.js';
import {
  agentChildren,
  groupMembers,
  killGroup,
  report,
  startRecoveryAgent,
  waitFor,
  waitForVideoFrames,
  type RecoveryAgent,
} from '../../support/recoveryHarness.js';

/**
 * The SIGTERM row of the recovery table (issue 6): a stop always ends inside the stop budget with exit 0 and
 * the summary, also while a child is hung or while the agent is still starting, and leaves nothing running.
 */
test.describe.configure({ mode: 'serial' });

const logger = createLogger({ level: 'warn' });
const BUDGET_S = 12;

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

/** Every process group of Chromium or gst seen below the agent while `until` is pending (polled). */
async function watchGroups(agentPid: number, until: Promise<unknown>): Promise<Set<number>> {
  const groups = new Set<number>();
  let done = false;
  void until.finally(() => (done = true));
  while (!done) {
    const c = await agentChildren(agentPid);
    for (const p of [...c.allChromium, ...c.gst]) groups.add(p.pgid);
    await new Promise((r) => setTimeout(r, 100));
  }
  return groups;
}

async function expectNothingLeft(groups: Set<number>): Promise<void> {
  for (const pgid of groups) expect(await groupMembers(pgid), `process group ${pgid}`).toEqual([]);
}

test('SIGTERM while gst is hung (SIGSTOP) → exit 0 inside the stop budget, summary logged, nothing left', async () => {
  test.setTimeout(180_000);
  current = await startRecoveryAgent(stack, { args: ['--stop-budget', String(BUDGET_S)] });
  const r = current;
  const pid = r.agent.child.pid!;
  await r.agent.waitForLog((l) => l.msg === 'recording', 90_000);
  await waitForVideoFrames(await r.opsUrl(), 0, 90, 30_000);
  const children = await agentChildren(pid);
  expect(children.gst).toHaveLength(1);
  expect(children.chromium).toBeDefined();
  killGroup(children.gst[0]!.pgid, 'SIGSTOP');
  // Let the muxer's queue back up behind the hung gst, but stop before its stall watchdog (5 s) steps in.
  await waitFor(
    'gst stopped',
    async () => (await groupMembers(children.gst[0]!.pgid))[0]?.state === 'T',
    5_000,
  );
  await new Promise((res) => setTimeout(res, 1_000));
  const groups = watchGroups(pid, r.agent.exited);
  const sentAt = Date.now();
  r.agent.child.kill('SIGTERM');
  const exit = await r.stop((BUDGET_S + 20) * 1000);
  const tookMs = Date.now() - sentAt;
  report(test.info(), 'stop took ms', { tookMs, budgetMs: BUDGET_S * 1000, exit });
  expect(exit.code, r.agent.stderr.slice(-20).join('\n')).toBe(0);
  expect(tookMs).toBeLessThanOrEqual(BUDGET_S * 1000 + 1_000);
  expect(r.agent.lines.some((l) => l.msg === 'recording finished')).toBe(true);
  // The hung gst was killed when its share of the budget ran out (the pipe or the escalation to SIGKILL).
  expect(
    r.agent.lines.some(
      (l) => /killing it/.test(l.msg) || (l.msg === 'GStreamer exited' && l.signal === 'SIGKILL'),
    ),
  ).toBe(true);
  const seen = await groups;
  for (const p of [...children.allChromium, ...children.gst]) seen.add(p.pgid);
  await expectNothingLeft(seen);
});

for (const moment of ['endpoints listening', 'Chromium started'] as const) {
  test(`SIGTERM during start-up (${moment}) → exit 0 quickly, no Chromium left`, async () => {
    test.setTimeout(120_000);
    current = await startRecoveryAgent(stack, { args: ['--stop-budget', String(BUDGET_S)] });
    const r = current;
    const pid = r.agent.child.pid!;
    const groups = watchGroups(pid, r.agent.exited);
    if (moment === 'endpoints listening') await r.opsUrl();
    else
      await waitFor('Chromium below the agent', async () => (await agentChildren(pid)).chromium, 60_000, 50);
    expect(
      r.agent.lines.some((l) => l.msg === 'recording'),
      'still starting',
    ).toBe(false);
    const sentAt = Date.now();
    r.agent.child.kill('SIGTERM');
    const exit = await r.stop((BUDGET_S + 20) * 1000);
    const tookMs = Date.now() - sentAt;
    report(test.info(), 'stop took ms', { tookMs, exit });
    expect(exit.code, r.agent.stderr.slice(-20).join('\n')).toBe(0);
    expect(tookMs).toBeLessThanOrEqual(10_000);
    await expectNothingLeft(await groups);
    if (moment === 'Chromium started') expect((await groups).size).toBeGreaterThan(0);
  });
}
