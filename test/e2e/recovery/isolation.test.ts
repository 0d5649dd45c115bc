import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { CreateSignalingChannelCommand, KinesisVideoClient } from '@aws-sdk/client-kinesis-video';
import { expect, test } from '@playwright/test';
import { chromium as playwrightChromium } from 'playwright-core';
import { createLogger } from '../../../agent/log.js';
import { DEFAULT_EMULATOR_CREDENTIALS, startEmulator, type Emulator } from '../../../emulator/server.js';
import { decodeErrors, segmentsIn } from '../../../scripts/lib/mediaProbe.js';
import { matchFrames, recordedVideoFrames, type FrameMatch } from '../../../scripts/lib/syncProbe.js';
import { clipSpec, loadClip, type Clip } from '../../../WebRTC/synthetic/clip.js';
import { SyntheticMaster, type SentFrame } from '../../../WebRTC/synthetic/syntheticMaster.js';
import { chromiumWithDebugPort, workerSession } from '../../support/chromiumDebugPort.js';
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
 * accounted for), a fault hits channel A's GStreamer or A's bridge gets garbage, and channel B must lose
 * nothing and keep its run; a Chromium crash takes both pages, and each resumes. Real agent, real Chromium
 * and gst, faults by signal or from inside A's page.
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
async function twoChannels(extraArgs: string[] = []): Promise<NonNullable<typeof run>> {
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
    {
      args: ['--channel', `${A.channel}=${A.stream}`, '--channel', `${B.channel}=${B.stream}`, ...extraArgs],
    },
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

/**
 * What A's page sends its own bridge, as a broken or hostile page would. Runs in the page, so it names
 * what it needs of the DOM itself (this file is compiled without the DOM library).
 */
async function sendGarbage(): Promise<{
  refused: number;
  sent: number;
  closeCode: number;
  closedAfterMs: number;
}> {
  const { sessionStorage, location } = globalThis as unknown as {
    sessionStorage: { getItem(key: string): string | null };
    location: { host: string };
  };
  const params = new URLSearchParams(sessionStorage.getItem('webrtc-kvs-agent-viewer-params') ?? '');
  const token = params.get('token') ?? '';
  const base = `ws://${location.host}`;
  const opened = (url: string) =>
    new Promise<WebSocket | undefined>((resolve) => {
      const ws = new WebSocket(url);
      ws.binaryType = 'arraybuffer';
      ws.onopen = () => resolve(ws);
      ws.onerror = () => resolve(undefined);
    });
  // Refused at the handshake: a wrong token, an unknown track kind, an unknown path.
  let refused = 0;
  for (const url of [
    `${base}/frames?token=wrong&kind=video`,
    `${base}/frames?token=${token}&kind=subtitles`,
    `${base}/elsewhere?token=${token}`,
  ]) {
    const ws = await opened(url);
    if (ws) ws.close();
    else refused++;
  }
  const frame = (fields: { version?: number; kind?: number; codec?: number; length?: number }, body = 8) => {
    const bytes = new Uint8Array(40 + body);
    const view = new DataView(bytes.buffer);
    view.setUint8(0, fields.version ?? 2);
    view.setUint8(1, fields.kind ?? 1);
    view.setUint8(3, fields.codec ?? 1);
    view.setFloat64(8, Date.now(), true);
    view.setUint32(28, fields.length ?? body, true);
    return bytes;
  };
  // A video frame socket of its own (it takes the worker's place until the worker reconnects).
  const ws = await opened(`${base}/frames?token=${token}&kind=video`);
  if (!ws) throw new Error('the bridge refused the page its own token');
  const openedAt = performance.now();
  const closed = new Promise<number>((resolve) => (ws.onclose = (e) => resolve(e.code)));
  const messages: (string | Uint8Array)[] = [
    'not a frame',
    new Uint8Array(10),
    frame({ version: 9 }),
    frame({ kind: 7 }),
    frame({ codec: 99 }),
    frame({ length: 4 }),
    frame({}, 0),
    frame({ kind: 2, codec: 2 }),
  ];
  // Then far more than the rate limit allows, until the bridge closes the socket.
  for (let i = 0; i < 3000; i++) messages.push(new Uint8Array(12));
  for (const m of messages) ws.send(m);
  const closeCode = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 10_000))]);
  if (closeCode === -1) ws.close();
  return {
    refused,
    sent: messages.length,
    closeCode,
    closedAfterMs: Math.round(performance.now() - openedAt),
  };
}

type Timers = {
  setTimeout: (...args: unknown[]) => unknown;
  heldTimers?: { original: Timers['setTimeout']; held: unknown[][] };
};

/**
 * Runs in A's video worker. The garbage socket takes the worker's place, and the worker takes it back
 * 100 ms later (a reloaded page's socket replaces the old one); on a loaded machine that came before the
 * bridge had read the whole flood. So the worker's timers wait until the garbage is sent; its reconnect
 * then runs as it would have.
 */
function holdTimers(): void {
  const g = globalThis as unknown as Timers;
  const held: unknown[][] = [];
  g.heldTimers = { original: g.setTimeout, held };
  g.setTimeout = (...args: unknown[]) => held.push(args);
}

/** Lets the held timers run, once the worker's reconnect is among them (its socket's close can lag). */
async function releaseTimers(): Promise<number> {
  const g = globalThis as unknown as Timers;
  const { original, held } = g.heldTimers!;
  for (let waited = 0; held.length === 0 && waited < 5_000; waited += 50)
    await new Promise((resolve) => original(resolve, 50));
  g.setTimeout = original;
  for (const args of held) original(...args);
  return held.length;
}

test("garbage into channel A's bridge is refused and counted there; A records on, B does not notice", async () => {
  test.setTimeout(240_000);
  const dir = await mkdtemp(join(tmpdir(), 'kvs-agent-isolation-'));
  const wrapper = await chromiumWithDebugPort(dir);
  const r = await twoChannels(['--chromium-path', wrapper.path]);
  const browser = await playwrightChromium.connectOverCDP(`http://127.0.0.1:${await wrapper.port()}`);
  try {
    const port = (c: string) =>
      r.agent.agent.lines.find((l) => l.msg === 'bridge listening' && l.channel === c)?.port;
    const portA = port(A.channel);
    expect(portA, "channel A's bridge port in the log").toBeDefined();
    expect(port(B.channel)).not.toBe(portA);
    const pageA = browser
      .contexts()
      .flatMap((c) => c.pages())
      .find((p) => new URL(p.url()).port === String(portA));
    expect(pageA, "channel A's viewer page").toBeDefined();

    const ops = await r.agent.opsUrl();
    const rejected = (channel: string, reason?: string) =>
      metricValue(ops, 'kvs_agent_bridge_rejected_total', { channel, ...(reason ? { reason } : {}) });
    const before = { a: await rejected(A.channel), b: await rejected(B.channel) };
    const videoWorker = await workerSession(await wrapper.port(), Number(portA), 'frames-video');
    let held = 0;
    const faultAt = Date.now();
    await videoWorker.evaluate(holdTimers);
    const garbage = await pageA!.evaluate(sendGarbage).finally(async () => {
      held = await videoWorker.evaluate(releaseTimers);
      videoWorker.close();
    });
    report(test.info(), 'garbage sent to A', { ...garbage, workerTimersHeld: held });
    // The worker lost its socket to the garbage one: its reconnect was among the timers held.
    expect(held).toBeGreaterThanOrEqual(1);
    expect(garbage.refused).toBe(3);
    expect(garbage.closeCode, 'the bridge closes a flooding socket (policy violation)').toBe(1008);

    // Every refusal counted, on A's labels only.
    await waitFor(
      'the refusals counted',
      async () => (await rejected(A.channel)) - before.a >= 1000,
      10_000,
      200,
    );
    const reasons: Record<string, number> = {};
    for (const reason of [
      'connection_refused',
      'malformed_frame',
      'wrong_socket',
      'frame_rate_limited',
      'socket_flooding',
    ])
      reasons[reason] = await rejected(A.channel, reason);
    report(test.info(), 'refused on A by reason', reasons);
    expect(reasons.connection_refused).toBeGreaterThanOrEqual(3);
    expect(reasons.malformed_frame).toBeGreaterThanOrEqual(7);
    expect(reasons.wrong_socket).toBeGreaterThanOrEqual(1);
    expect(reasons.frame_rate_limited).toBeGreaterThan(0);
    expect(reasons.socket_flooding).toBe(1);
    expect(await rejected(B.channel)).toBe(before.b);

    // A's worker takes its socket back and A goes on recording; B never noticed.
    await waitForBoth(r.agent, 150);
    const bRuns = runsAfter(r, B.channel, faultAt);
    const match = await recorded(r);
    const lostB = lost(match[B.stream]!);
    report(test.info(), 'frames', {
      a: { matched: match[A.stream]!.matched.length, unknown: match[A.stream]!.unknown },
      b: { matched: match[B.stream]!.matched.length, lost: lostB.length, newRuns: bRuns },
    });
    expect(bRuns).toBe(0);
    expect(lostB).toEqual([]);
    expect(match[B.stream]!.unknown).toBe(0);
    // Nothing of the garbage reached A's recording: every frame in it is one the master sent.
    expect(match[A.stream]!.unknown).toBe(0);
    expect(match[A.stream]!.matched.filter((m) => m.sent.captureMs > faultAt + 1000).length).toBeGreaterThan(
      100,
    );
  } finally {
    await browser.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
});
