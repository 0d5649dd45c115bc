import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  CreateSignalingChannelCommand,
  DeleteSignalingChannelCommand,
  DescribeSignalingChannelCommand,
} from '@aws-sdk/client-kinesis-video';
import { expect, test } from '@playwright/test';
import { createLogger } from '../../../agent/log.js';
import {
  kvsClient,
  largestGap,
  readyz,
  sampleReadyz,
  startMasterRun,
  type MasterRun,
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
 * The channel rows of the recovery table (issue 6, section 1) through the whole agent process: the signaling
 * channel deleted and re-created under a new ARN through the real AWS SDK v3 client, and frames lost between
 * the page and the agent (the video frame socket reset from outside). Recovery time, gap and counters printed.
 */

const run$ = promisify(execFile);
const logger = createLogger({ level: 'warn' });
const MARGIN = 1.5;
let run: MasterRun | undefined;

test.afterEach(async () => {
  await run?.close(test.info());
  run = undefined;
});

const observe = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function finish(r: MasterRun): Promise<RecordingCheck> {
  const exit = await r.rec.stop();
  expect(exit.code, r.rec.agent.stderr.slice(-20).join('\n')).toBe(0);
  const check = await checkRecording(r.rec.dir, r.rec.agent.lines);
  expect(check.decodeErrors).toEqual([]);
  expect(check.notStartingAtKeyFrame).toEqual([]);
  return check;
}

test('channel deleted and re-created (new ARN): readiness false with the reason, error logged, recording resumes', async () => {
  test.setTimeout(240_000);
  const r = (run = await startMasterRun({ logger }));
  const ops = await r.rec.opsUrl();
  await waitFor('readyz 200', async () => (await readyz(ops)).status === 200, 20_000);
  const kvs = kvsClient(r.stack);
  try {
    const oldArn = (await kvs.send(new DescribeSignalingChannelCommand({ ChannelName: r.channel })))
      .ChannelInfo!.ChannelARN!;
    const deletedAt = Date.now();
    await kvs.send(new DeleteSignalingChannelCommand({ ChannelARN: oldArn }));
    await r.closeMaster();
    const readiness = sampleReadyz(ops);
    const error = await waitForLogAfter(
      r.rec.agent,
      deletedAt,
      (l) => l.msg === 'signaling channel not available',
      60_000,
    );
    await waitFor(
      'readyz naming the channel',
      async () => (await readyz(ops)).reasons.some((x) => x.startsWith('channel')),
      20_000,
    );
    // The channel stays away a while, as in an operator's delete-and-recreate.
    await observe(5_000);
    const createdAt = Date.now();
    const newArn = (await kvs.send(new CreateSignalingChannelCommand({ ChannelName: r.channel })))
      .ChannelARN!;
    expect(newArn).not.toBe(oldArn);
    await r.relaunchMaster();
    const masterBackAt = Date.now();
    const changed = await waitForLogAfter(
      r.rec.agent,
      createdAt,
      (l) => l.msg === 'the channel changed: reconnecting',
      60_000,
    );
    await waitFor('readyz 200 again', async () => (await readyz(ops)).status === 200, 60_000);
    const samples = await readiness.stop();
    await observe(3_000);
    const check = await finish(r);
    const resumed = check.times.video.find((t) => t > createdAt);
    expect(resumed, 'video after the channel came back').toBeDefined();
    const meanwhile = samples.filter((s) => s.at > deletedAt + 2_000 && s.at < createdAt);
    const reasons = [...new Set(meanwhile.flatMap((s) => s.reasons.map((x) => x.replace(/\d+/g, 'N'))))];
    report(
      test.info(),
      'channel re-created',
      `error '${error.msg}' (${error.level}) +${logTime(error) - deletedAt} ms after the delete; channel back ` +
        `${Math.round((createdAt - deletedAt) / 1000)} s later; re-discovered +${logTime(changed) - createdAt} ms, ` +
        `recording resumed ${Math.round(resumed! - createdAt)} ms after the channel was back (the new master was on ` +
        `signaling +${masterBackAt - createdAt} ms, media ${Math.round(resumed! - masterBackAt)} ms after that); readyz meanwhile ` +
        `${meanwhile.filter((s) => s.status === 503).length}/${meanwhile.length} 503, reasons [${reasons.join(' | ')}]; ` +
        `largest video gap ${Math.round(largestGap(check.times.video).gapMs)} ms`,
    );
    expect(['warn', 'error']).toContain(error.level);
    expect(JSON.stringify(error)).toMatch(/ResourceNotFound|not found|does not exist/i);
    expect(meanwhile.length).toBeGreaterThan(5);
    expect(meanwhile.every((s) => s.status === 503)).toBe(true);
    expect(reasons.some((x) => x.startsWith('channel'))).toBe(true);
    expect(resumed! - createdAt).toBeLessThanOrEqual(35_000 * MARGIN);
    expect(check.deltaAfterGap.filter((d) => d.gapSeconds > 1)).toEqual([]);
  } finally {
    kvs.destroy();
  }
});

/** The agent's TCP listeners (bridge, ops) and the established connections to one of them, from `ss`. */
async function listeningPorts(pid: number): Promise<number[]> {
  const { stdout } = await run$('ss', ['-ltnpH']);
  return stdout
    .split('\n')
    .filter((l) => l.includes(`pid=${pid},`))
    .map((l) => Number(l.trim().split(/\s+/)[3]!.split(':').at(-1)));
}

async function connectionsTo(port: number): Promise<Array<{ peerPort: number; bytesReceived: number }>> {
  const { stdout } = await run$('ss', ['-tinH', 'state', 'established', `( sport = :${port} )`]);
  const out: Array<{ peerPort: number; bytesReceived: number }> = [];
  for (const line of stdout.split('\n')) {
    if (/^\S/.test(line)) {
      const fields = line.trim().split(/\s+/);
      out.push({ peerPort: Number(fields.at(-1)!.split(':').at(-1)), bytesReceived: 0 });
    } else if (out.length) {
      const m = /bytes_received:(\d+)/.exec(line);
      if (m) out.at(-1)!.bytesReceived = Number(m[1]);
    }
  }
  return out;
}

test('frames lost upstream (video frame socket reset): counted as seq_gap, nothing written until a key frame, which comes within 1 s', async () => {
  test.setTimeout(150_000);
  const r = (run = await startMasterRun({ logger }));
  const ops = await r.rec.opsUrl();
  await observe(4_000);
  const pid = r.rec.agent.child.pid!;
  const opsPort = Number(new URL(ops).port);
  const bridgePorts = (await listeningPorts(pid)).filter((p) => p !== opsPort);
  expect(bridgePorts.length, 'the bridge listens').toBeGreaterThanOrEqual(1);
  const sockets = (
    await Promise.all(
      bridgePorts.map(async (port) => (await connectionsTo(port)).map((c) => ({ port, ...c }))),
    )
  )
    .flat()
    .sort((a, b) => b.bytesReceived - a.bytesReceived);
  // The video frame socket carries by far the most bytes into the agent.
  const video = sockets[0]!;
  const lostBefore = await metricValue(ops, 'kvs_agent_frames_dropped_total', {
    kind: 'video',
    cause: 'seq_gap',
  });
  const resetAt = Date.now();
  // A real socket fault: the kernel aborts the connection (RST), as a dying proxy or network stack would.
  await run$('ss', [
    '-K',
    'state',
    'established',
    `( sport = :${video.port} and dport = :${video.peerPort} )`,
  ]);
  const gapLine = await waitForLogAfter(
    r.rec.agent,
    resetAt,
    (l) => l.msg === 'frames lost before the agent: holding video until a key frame' && l.kind === 'video',
    15_000,
  );
  await observe(6_000);
  const lost =
    (await metricValue(ops, 'kvs_agent_frames_dropped_total', { kind: 'video', cause: 'seq_gap' })) -
    lostBefore;
  const check = await finish(r);
  const summary = r.rec.agent.lines.find((l) => l.msg === 'recording finished');
  const timeline = (summary?.units as Array<{ timeline: { video: Record<string, number> } }> | undefined)?.[0]
    ?.timeline.video;
  const around = gapAround(check.times.video, resetAt, resetAt + 5_000);
  expect(around, 'video after the reset').not.toBeNull();
  const heldFrames = timeline?.droppedAfterGap ?? Number.NaN;
  report(
    test.info(),
    'frame socket reset',
    `video socket (${Math.round(video.bytesReceived / 1024)} KiB in) reset; gap detected +${logTime(gapLine) - resetAt} ms ` +
      `(${String(gapLine.lost)} frames lost), seq_gap metric +${lost}; held until the key frame: ${heldFrames} frames ` +
      `(~${Math.round(heldFrames * 33)} ms); recording gap ${Math.round(around!.gapMs)} ms, resumed ` +
      `+${Math.round(around!.resumedAtMs - resetAt)} ms; timeline ${JSON.stringify(timeline)}`,
  );
  expect(gapLine.level).toBe('warn');
  expect(lost).toBeGreaterThan(0);
  expect(timeline?.seqGaps).toBeGreaterThanOrEqual(1);
  // Deltas after the hole are held back, never written (0 held: the first frame after it was the key frame
  // the worker asked for when its socket opened again); the file decodes.
  expect(check.deltaAfterGap.filter((d) => d.gapSeconds > 1)).toEqual([]);
  // Socket down and back plus the key frame: the recording's hole stays within a second or two.
  expect(around!.gapMs).toBeLessThanOrEqual(1_000 + 1_000 * MARGIN);
  // ≤ 1 s of held frames at ~30 fps, with a margin.
  expect(heldFrames).toBeLessThanOrEqual(30 * MARGIN);
});
