import { expect, test } from '@playwright/test';
import { createLogger } from '../../../agent/log.js';
import type { AgentLogLine } from '../../../scripts/lib/agentProcess.js';
import {
  agentCpuSeconds,
  largestGap,
  readyz,
  sampleReadyz,
  startMasterRun,
  VIEWER_ID,
  type MasterRun,
  type MasterRunOptions,
} from '../../support/masterRun.js';
import {
  checkRecording,
  gapAround,
  logTime,
  metricValue,
  report,
  waitFor,
  waitForLogAfter,
  type RecordingCheck,
} from '../../support/recoveryHarness.js';

/**
 * The signaling, peer and master rows of the recovery table (issue 6, section 1), through the whole agent
 * process: a fresh emulator, reference master and agent (file sink) per fault, the fault caused from outside
 * (emulator admin hooks, the master page reloaded, closed, frozen), and the recording judged afterwards by
 * what a decoder sees, its frames placed on the wall clock. Bounds are the issue's with a margin for the
 * shared 2-core machine; every test prints what it measured.
 */

const logger = createLogger({ level: 'warn' });
const MARGIN = 1.5;
let run: MasterRun | undefined;

test.afterEach(async () => {
  await run?.close(test.info());
  run = undefined;
});

async function begin(options: Omit<MasterRunOptions, 'logger'> = {}): Promise<MasterRun> {
  run = await startMasterRun({ logger, ...options });
  return run;
}

/** A fixed observation window: the point of the test is what happens during it. */
const observe = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Stops the agent (exit 0), checks the files decode, start at key frames, no delta frame after a gap. */
async function finish(r: MasterRun): Promise<RecordingCheck> {
  const exit = await r.rec.stop();
  expect(exit.code, r.rec.agent.stderr.slice(-20).join('\n')).toBe(0);
  const check = await checkRecording(r.rec.dir, r.rec.agent.lines);
  expect(check.files.length).toBeGreaterThanOrEqual(1);
  expect(check.decodeErrors).toEqual([]);
  expect(check.notStartingAtKeyFrame).toEqual([]);
  // After a hole (frames lost) the first frame must be a key frame. Pauses up to 1 s without loss happen
  // when the loaded master's encoder skips frames; those deltas decode (no decode errors above).
  expect(check.deltaAfterGap.filter((d) => d.gapSeconds > 1)).toEqual([]);
  return check;
}

function gaps(check: RecordingCheck): { video: number; audio: number; text: string } {
  const video = largestGap(check.times.video).gapMs;
  const audio = largestGap(check.times.audio).gapMs;
  return {
    video,
    audio,
    text:
      `largest gap video ${video.toFixed(0)} ms, audio ${audio.toFixed(0)} ms (${check.times.video.length} ` +
      `video / ${check.times.audio.length} audio frames, ${check.files.length} file(s))`,
  };
}

const since = (r: MasterRun, t: number, p: (l: AgentLogLine) => boolean) =>
  r.rec.agent.lines.filter((l) => logTime(l) >= t && p(l));

test('steady state: /healthz and /readyz 200, /metrics frame counters grow with the channel label', async () => {
  test.setTimeout(150_000);
  const r = await begin();
  const ops = await r.rec.opsUrl();
  expect((await fetch(`${ops}/healthz`)).status).toBe(200);
  const ready = await waitFor(
    'readyz 200',
    async () => {
      const body = await readyz(ops);
      return body.status === 200 ? body : undefined;
    },
    20_000,
  );
  expect(ready).toMatchObject({ ready: true, reasons: [] });
  const labels = { channel: r.channel };
  const v0 = await metricValue(ops, 'kvs_agent_frames_total', { ...labels, kind: 'video' });
  const a0 = await metricValue(ops, 'kvs_agent_frames_total', { ...labels, kind: 'audio' });
  await observe(3_000);
  const dv = (await metricValue(ops, 'kvs_agent_frames_total', { ...labels, kind: 'video' })) - v0;
  const da = (await metricValue(ops, 'kvs_agent_frames_total', { ...labels, kind: 'audio' })) - a0;
  expect(await metricValue(ops, 'kvs_agent_ready', labels)).toBe(1);
  const g = gaps(await finish(r));
  report(test.info(), 'steady state', `+${dv} video, +${da} audio frames in 3 s; readyz 200; ${g.text}`);
  expect(dv).toBeGreaterThan(30);
  expect(da).toBeGreaterThan(50);
  expect(g.video).toBeLessThan(1_000);
});

test('signaling socket dropped three times: a new socket each time, no media gap', async () => {
  test.setTimeout(150_000);
  const r = await begin();
  const admin = r.stack.emulator.admin;
  await observe(3_000);
  const back: number[] = [];
  for (let i = 0; i < 3; i++) {
    const at = Date.now();
    expect(admin.drop(r.channel, VIEWER_ID)).toBe(true);
    await waitFor(
      'viewer back on signaling',
      () => admin.connections(r.channel).viewers.includes(VIEWER_ID),
      20_000,
      50,
    );
    back.push(Date.now() - at);
    await observe(4_000);
  }
  const stats = admin.stats();
  const g = gaps(await finish(r));
  report(
    test.info(),
    'signaling dropped 3x',
    `viewer back on signaling after ${back.join(', ')} ms (${stats['connected.viewer']} viewer connections); ${g.text}`,
  );
  expect(stats['connected.viewer']).toBeGreaterThanOrEqual(4);
  expect(g.video).toBeLessThan(1_000);
  expect(g.audio).toBeLessThan(1_000);
});

test('signaling renewed before the maximum connection age: several renewals, no media gap', async () => {
  test.setTimeout(150_000);
  // 12 s stands in for KVS's hour; the agent renews after 8 s.
  const r = await begin({
    emulator: { viewerMaxConnectionAgeMs: 12_000 },
    args: ['--signaling-renew-seconds', '8'],
  });
  const from = Date.now();
  await observe(30_000);
  const renewals = since(r, from, (l) => l.msg.startsWith('page: renewing signaling')).length;
  const stats = r.stack.emulator.admin.stats();
  const g = gaps(await finish(r));
  report(
    test.info(),
    'signaling renewal',
    `every 8 s (max age 12 s) over 30 s: ${renewals} renewals, ${stats['connected.viewer']} viewer connections, ` +
      `${stats['closed.max-age'] ?? 0} closed at the max age; ${g.text}`,
  );
  expect(renewals).toBeGreaterThanOrEqual(3);
  expect(g.video).toBeLessThan(1_000);
  expect(g.audio).toBeLessThan(1_000);
});

test('signaling socket idle-closed by the service: reconnected, no media gap', async () => {
  test.setTimeout(260_000);
  // Long enough for the call to be set up on a loaded machine (the reference master does not reconnect its
  // signaling); after that the quiet sockets are closed every 30 s.
  const r = await begin({ emulator: { idleTimeoutMs: 30_000 } });
  const from = Date.now();
  await waitFor(
    'two signaling reconnects',
    () => since(r, from, (l) => /reconnecting signaling/.test(l.msg)).length >= 2,
    110_000,
  );
  await observe(3_000);
  const stats = r.stack.emulator.admin.stats();
  const g = gaps(await finish(r));
  report(
    test.info(),
    'signaling idle-closed',
    `${stats['closed.idle'] ?? 0} idle closes in ${Math.round((Date.now() - from) / 1000)} s, ` +
      `${stats['connected.viewer']} viewer connections; ${g.text}`,
  );
  expect(g.video).toBeLessThan(1_000);
  expect(g.audio).toBeLessThan(1_000);
});

test('GO_AWAY: the new socket opens before the old one closes, no media gap', async () => {
  test.setTimeout(150_000);
  const r = await begin();
  const admin = r.stack.emulator.admin;
  await observe(3_000);
  for (let i = 0; i < 2; i++) {
    expect(admin.send(r.channel, VIEWER_ID, 'GO_AWAY')).toBe(true);
    await observe(5_000);
  }
  const ops = await r.rec.opsUrl();
  const events = since(r, 0, (l) => l.msg === 'signaling event' && l.event === 'go-away').length;
  const reconnects = await metricValue(ops, 'kvs_agent_reconnects_total', { cause: 'go_away' });
  const stats = admin.stats();
  const g = gaps(await finish(r));
  report(
    test.info(),
    'GO_AWAY 2x',
    `${events} logged, reconnects{go_away}=${reconnects}, ${stats['connected.viewer']} viewer connections; ${g.text}`,
  );
  expect(events).toBe(2);
  expect(reconnects).toBe(2);
  expect(stats['connected.viewer']).toBeGreaterThanOrEqual(3);
  expect(g.video).toBeLessThan(1_000);
  expect(g.audio).toBeLessThan(1_000);
});

test('RECONNECT_ICE_SERVER: fresh ICE servers and an ICE restart, media back within 10 s', async () => {
  test.setTimeout(150_000);
  const r = await begin();
  await observe(3_000);
  const at = Date.now();
  expect(r.stack.emulator.admin.send(r.channel, VIEWER_ID, 'RECONNECT_ICE_SERVER')).toBe(true);
  await waitForLogAfter(
    r.rec.agent,
    at,
    (l) => l.msg === 'signaling event' && l.event === 'reconnect-ice-server',
    10_000,
  );
  await observe(12_000);
  const g = gaps(await finish(r));
  report(test.info(), 'RECONNECT_ICE_SERVER', `${g.text} (target: no gap)`);
  expect(g.video).toBeLessThanOrEqual(10_000);
});

test('master page reloaded: recording resumes at a key frame soon after the master answers', async () => {
  test.setTimeout(150_000);
  const r = await begin();
  await observe(3_000);
  const reloadAt = Date.now();
  await r.master!.reload();
  const backAt = Date.now();
  const answer = await waitForLogAfter(
    r.rec.agent,
    reloadAt,
    (l) => l.msg === 'page: SDP answer applied',
    40_000,
  );
  const answeredAt = logTime(answer);
  await observe(8_000);
  const check = await finish(r);
  const around = gapAround(check.times.video, reloadAt);
  expect(around, 'video after the reload').not.toBeNull();
  const resumedAt = around!.resumedAtMs;
  report(
    test.info(),
    'master reload',
    `master back on signaling +${backAt - reloadAt} ms, answer applied +${answeredAt - reloadAt} ms, recording ` +
      `resumed +${Math.round(resumedAt - reloadAt)} ms (${Math.round(resumedAt - answeredAt)} ms after the answer), ` +
      `gap ${Math.round(around!.gapMs)} ms; ${gaps(check).text}`,
  );
  expect(resumedAt - answeredAt).toBeLessThanOrEqual(5_000 * MARGIN);
});

test('master gone longer than the message TTL, then back: readiness says so, no CPU spin, resumes within 10 s', async () => {
  test.setTimeout(180_000);
  const TTL_S = 5;
  const r = await begin({ channel: { name: 'recovery-ttl-channel', messageTtlSeconds: TTL_S } });
  const ops = await r.rec.opsUrl();
  await waitFor('readyz 200', async () => (await readyz(ops)).status === 200, 20_000);
  const goneAt = Date.now();
  await r.closeMaster();
  const readiness = sampleReadyz(ops);
  await waitFor('readyz 503', async () => (await readyz(ops)).status === 503, 30_000);
  // Settled into waiting; measured over four TTLs (any single offer has expired several times).
  const cpuFrom = await agentCpuSeconds(r.rec.agent.child.pid!);
  const cpuFromAt = Date.now();
  await observe(4 * TTL_S * 1000);
  const cpuTo = await agentCpuSeconds(r.rec.agent.child.pid!);
  const windowS = (Date.now() - cpuFromAt) / 1000;
  const backStartAt = Date.now();
  await r.relaunchMaster();
  const backAt = Date.now();
  await waitFor('readyz 200 again', async () => (await readyz(ops)).status === 200, 30_000);
  const samples = await readiness.stop();
  await observe(3_000);
  const check = await finish(r);
  const after = check.times.video.find((t) => t > backStartAt);
  expect(after, 'video after the master came back').toBeDefined();

  const absent = samples.filter((s) => s.at > cpuFromAt && s.at < backStartAt);
  // Figures inside the reasons change every second: one entry per kind of reason.
  const reasons = [...new Set(absent.flatMap((s) => s.reasons.map((x) => x.replace(/\d+/g, 'N'))))];
  const cpu = (k: 'node' | 'chromium' | 'gst') => (cpuTo[k] - cpuFrom[k]) / windowS;
  const notAnswering = since(r, goneAt, (l) => l.msg.includes('the master is not answering'));
  report(
    test.info(),
    'master gone',
    `${Math.round((backStartAt - goneAt) / 1000)} s (TTL ${TTL_S} s): recording resumed ` +
      `${Math.round(after! - backAt)} ms after the new master was on signaling; CPU while gone (cores): node ` +
      `${cpu('node').toFixed(3)}, chromium ${cpu('chromium').toFixed(3)}, gst ${cpu('gst').toFixed(3)}; ` +
      `readyz while gone: ${absent.filter((s) => s.status === 503).length}/${absent.length} 503, reasons ` +
      `[${reasons.join(' | ')}]; 'not answering' at ${notAnswering.map((l) => l.level).join(',')}; ${gaps(check).text}`,
  );
  expect(after! - backAt).toBeLessThanOrEqual(10_000 * MARGIN);
  expect(absent.length).toBeGreaterThan(5);
  expect(absent.every((s) => s.status === 503)).toBe(true);
  expect(reasons.some((x) => /master|peer/.test(x))).toBe(true);
  expect(notAnswering.some((l) => l.level === 'warn')).toBe(true);
  // A spin shows as a whole core; an agent waiting for its master uses a few percent.
  expect(cpu('node')).toBeLessThan(0.3);
  expect(cpu('chromium')).toBeLessThan(0.6);
});

test('frozen master (peer connected, no video): the watchdog escalates and recording resumes', async () => {
  test.setTimeout(150_000);
  const r = await begin();
  await observe(3_000);
  const frozenAt = Date.now();
  expect(await r.master!.setVideoSending(false)).toBeGreaterThanOrEqual(1);
  const frozenCallMs = Date.now() - frozenAt;
  const keyFrame = await waitForLogAfter(
    r.rec.agent,
    frozenAt,
    (l) => l.msg === 'no video while connected: asking for a key frame',
    15_000,
  );
  const newPeer = await waitForLogAfter(
    r.rec.agent,
    frozenAt,
    (l) => l.msg === 'no media while connected: new peer connection',
    20_000,
  );
  await observe(10_000);
  const check = await finish(r);
  const around = gapAround(check.times.video, frozenAt);
  expect(around, 'video after the freeze').not.toBeNull();
  // Times from the last frame written before the freeze (the DevTools call that freezes takes a while here).
  const lastFrame = around!.resumedAtMs - around!.gapMs;
  report(
    test.info(),
    'frozen master',
    `freeze call took ${frozenCallMs} ms; after the last frame: key frame request +${Math.round(logTime(keyFrame) - lastFrame)} ms ` +
      `(${keyFrame.level}), new peer connection +${Math.round(logTime(newPeer) - lastFrame)} ms (${newPeer.level}), ` +
      `recording resumed +${Math.round(around!.gapMs)} ms; ${gaps(check).text}`,
  );
  expect(keyFrame.level).toBe('warn');
  expect(newPeer.level).toBe('warn');
  expect(around!.gapMs).toBeLessThanOrEqual(15_000 * MARGIN);
});

test('master frozen for 20 s: escalation logged, no spin, no crash, recording resumes when video returns', async () => {
  test.setTimeout(180_000);
  const r = await begin();
  await observe(3_000);
  const pid = r.rec.agent.child.pid!;
  const frozenAt = Date.now();
  const cpuFrom = await agentCpuSeconds(pid);
  let frozenSenders = 0;
  // Every new peer connection the escalation brings is frozen as well, for 20 s.
  while (Date.now() - frozenAt < 20_000) {
    frozenSenders += await r.master!.setVideoSending(false);
    await observe(300);
  }
  const cpuTo = await agentCpuSeconds(pid);
  const windowS = (Date.now() - frozenAt) / 1000;
  const thawAt = Date.now();
  await r.master!.setVideoSending(true);
  await observe(15_000);
  expect(r.rec.agent.child.exitCode, 'the agent is still running').toBeNull();
  const escalation = since(r, frozenAt, (l) => /^no (video|media) while connected/.test(l.msg)).map(
    (l) => `${l.level} ${l.msg}${typeof l.action === 'string' ? ` (${l.action})` : ''}`,
  );
  const check = await finish(r);
  const resumed = check.times.video.find((t) => t > thawAt);
  expect(resumed, 'video after the master thawed').toBeDefined();
  const cpuNode = (cpuTo.node - cpuFrom.node) / windowS;
  report(
    test.info(),
    'master frozen 20 s',
    `${frozenSenders} senders frozen; escalation [${escalation.join('; ')}]; node CPU ${cpuNode.toFixed(3)} cores; ` +
      `recording resumed ${Math.round(resumed! - thawAt)} ms after the video returned; ${gaps(check).text}`,
  );
  expect(escalation.some((e) => e.startsWith('warn') && e.includes('asking for a key frame'))).toBe(true);
  expect(escalation.some((e) => e.startsWith('warn') && e.includes('new peer connection'))).toBe(true);
  expect(cpuNode).toBeLessThan(0.4);
  expect(resumed! - thawAt).toBeLessThanOrEqual(15_000 * MARGIN);
});
