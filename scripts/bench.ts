/**
 * `npm run bench [-- --seconds 30 --warmup 5 --max-channels 16 --sink file --out DIR]`
 *
 * Measures the agent against two references in one run, so the results are ratios that hold on a noisy
 * machine: (a) the receive floor, the same Chromium receiving and decoding the call without our transform
 * (WebRTC/floor.html); (b) the user's first prototype, decode + x264 re-encode in GStreamer, on the same
 * input. Scenarios: 1 channel at 720p30 and at 1080p30, then N = 2, 4, 8 … channels at 720p30 until frames
 * are lost. Synthetic masters (ground truth: every frame sent is logged) run in a process of their own.
 * Per process group (Chromium, Node, GStreamer): CPU-s per media-second, steady and peak PSS; per channel:
 * frames lost, key-frame interval, answer → first recorded key frame (and → gst up), latency receive → muxer and → gst input (its pipe for the track).
 * The agent runs as the image runs it, compiled (`npm run build`, which `npm run bench` does first): under tsx
 * its Node would carry the TypeScript loader (≈ 60 MiB more PSS, and an esbuild child) that no user runs.
 * Writes bench.json, report.md and chart.png to --out (default bench-results/<time>) and prints the report.
 * Figures only: nothing here passes or fails.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CreateSignalingChannelCommand, KinesisVideoClient } from '@aws-sdk/client-kinesis-video';
import { agentChromiumPath } from '../agent/config.js';
import { createLogger } from '../agent/log.js';
import type { UnitSummary } from '../agent/unit/recordingUnit.js';
import { DEFAULT_EMULATOR_CREDENTIALS, startEmulator, type Emulator } from '../emulator/server.js';
import { clipFiles, clipSpec, FPS, loadClip } from '../WebRTC/synthetic/clip.js';
import { COMPILED_AGENT, spawnAgent, type AgentLogLine } from './lib/agentProcess.js';
import type {
  BenchResults,
  ChannelFigures,
  GroupFigures,
  ScenarioResult,
  Target,
} from './lib/bench/benchResults.js';
import { markdownReport, writeReport } from './lib/bench/benchReport.js';
import { launchFloor } from './lib/bench/floorBrowser.js';
import { startMasterProcess } from './lib/bench/masterProcess.js';
import { measureTranscode, type TranscodeCost } from './lib/bench/transcodeReference.js';
import { channelHourCost } from './lib/fargateCost.js';
import { decodeErrors, segmentsIn } from './lib/mediaProbe.js';
import { usageByGroup, type GroupUsage } from './lib/processCpu.js';
import { matchFrames, recordedVideoFrames } from './lib/syncProbe.js';

const ROOT = resolve(import.meta.dirname, '..');
/** The agent's Chromium (its default, or CHROMIUM_PATH, which the agent reads too). */
const CHROMIUM = agentChromiumPath();
const MIB = 1024 * 1024;
const RESOLUTIONS: Record<'720p30' | '1080p30', [number, number]> = {
  '720p30': [1280, 720],
  '1080p30': [1920, 1080],
};
type Resolution = '720p30' | '1080p30';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '5' },
    'max-channels': { type: 'string', default: '16' },
    sink: { type: 'string', default: 'file' },
    out: { type: 'string' },
  },
});
const seconds = Number(values.seconds);
const warmupSeconds = Number(values.warmup);
const maxChannels = Number(values['max-channels']);
if (!(seconds > 0) || !(warmupSeconds >= 0) || !(maxChannels >= 1))
  throw new Error('--seconds, --warmup and --max-channels must be positive numbers');
if (values.sink !== 'file' && values.sink !== 'kvssink') throw new Error('--sink must be file or kvssink');
const sink = values.sink;
const logger = createLogger({ level: 'warn' }).child({ component: 'bench' });
const env = {
  AWS_ACCESS_KEY_ID: DEFAULT_EMULATOR_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: DEFAULT_EMULATOR_CREDENTIALS.secretAccessKey,
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (text: string) => process.stderr.write(`bench: ${text}\n`);

/** The agent's (or floor's) groups: the root and each direct child's tree, named by the child. */
const classify = (comm: string) =>
  comm.startsWith('chrom') ? 'chromium' : comm.startsWith('gst') ? 'gst' : comm;

/** Samples CPU and PSS of a process tree over the window: CPU from the two ends, PSS every second. */
async function measureTree(rootPid: number, rootGroup: string): Promise<Record<string, GroupFigures>> {
  const rename = (u: Record<string, GroupUsage>) =>
    Object.fromEntries(Object.entries(u).map(([k, v]) => [k === 'node' ? rootGroup : k, v]));
  const sample = async () => rename(await usageByGroup(rootPid, classify, { pss: true }));
  const before = await sample();
  const t0 = Date.now();
  const series: Array<Record<string, GroupUsage>> = [];
  while (Date.now() - t0 < seconds * 1000) {
    await sleep(1000);
    series.push(await sample());
  }
  const wall = (Date.now() - t0) / 1000;
  const after = series.at(-1)!;
  const out: Record<string, GroupFigures> = {};
  for (const group of Object.keys(after)) {
    const pss = series.map((s) => s[group]?.pssBytes ?? 0).sort((a, b) => a - b);
    const peakAt = series.reduce((best, s) =>
      (s[group]?.pssBytes ?? 0) > (best[group]?.pssBytes ?? 0) ? s : best,
    );
    out[group] = {
      cpuPerSecond: ((after[group]?.cpuSeconds ?? 0) - (before[group]?.cpuSeconds ?? 0)) / wall,
      pssSteadyMiB: pss[Math.floor(pss.length / 2)]! / MIB,
      pssPeakMiB: pss.at(-1)! / MIB,
      rssPeakMiB: (peakAt[group]?.rssBytes ?? 0) / MIB,
      processes: after[group]?.processes ?? 0,
    };
  }
  return out;
}

function totals(groups: Record<string, GroupFigures>) {
  const v = Object.values(groups);
  return {
    totalCpuPerSecond: v.reduce((a, g) => a + g.cpuPerSecond, 0),
    totalPssSteadyMiB: v.reduce((a, g) => a + g.pssSteadyMiB, 0),
    totalPssPeakMiB: v.reduce((a, g) => a + g.pssPeakMiB, 0),
  };
}

async function createChannels(emulator: Emulator, names: string[]): Promise<void> {
  const kv = new KinesisVideoClient({
    region: emulator.region,
    endpoint: emulator.url,
    credentials: { ...DEFAULT_EMULATOR_CREDENTIALS },
  });
  try {
    for (const name of names) {
      await kv.send(new CreateSignalingChannelCommand({ ChannelName: name })).catch((err: unknown) => {
        if (!(err instanceof Error && err.name === 'ResourceInUseException')) throw err;
      });
    }
  } finally {
    kv.destroy();
  }
}

function channelNames(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `bench-${i + 1}`);
}

/** Synthetic masters for `channels` in their own process, logging what they send into `dir`. */
function startMasters(emulator: Emulator, resolution: Resolution, channels: string[], dir: string) {
  return startMasterProcess({
    endpoint: emulator.url,
    region: emulator.region,
    channels,
    resolution: RESOLUTIONS[resolution].join('x'),
    sentLog: join(dir, 'sent.jsonl'),
    env,
  });
}

async function floorScenario(emulator: Emulator, resolution: Resolution): Promise<ScenarioResult> {
  const channels = channelNames(1);
  const name = `floor ${resolution}`;
  const dir = await mkdtemp(join(tmpdir(), 'kvs-agent-bench-floor-'));
  const masters = await startMasters(emulator, resolution, channels, dir);
  try {
    const floor = await launchFloor({
      endpoint: emulator.url,
      region: emulator.region,
      channels,
      credentials: DEFAULT_EMULATOR_CREDENTIALS,
      executablePath: CHROMIUM,
    });
    try {
      await sleep(warmupSeconds * 1000);
      const start = await floor.state();
      const t0 = Date.now();
      const groups = await measureTree(floor.pid, 'chromium');
      const end = await floor.state();
      const wall = (Date.now() - t0) / 1000;
      return {
        name,
        kind: 'floor',
        resolution,
        channels: 1,
        measuredSeconds: wall,
        groups,
        ...totals(groups),
        floorFps: channels.map((c) => ((end[c]?.framesDecoded ?? 0) - (start[c]?.framesDecoded ?? 0)) / wall),
      };
    } finally {
      await floor.close();
    }
  } finally {
    await masters.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function agentScenario(emulator: Emulator, resolution: Resolution, n: number): Promise<ScenarioResult> {
  const channels = channelNames(n);
  const name = `agent ${resolution} ×${n}`;
  const dir = await mkdtemp(join(tmpdir(), 'kvs-agent-bench-'));
  const masters = await startMasters(emulator, resolution, channels, dir);
  const base = { name, kind: 'agent' as const, resolution, channels: n };
  let agentLines: AgentLogLine[] = [];
  try {
    const agent = spawnAgent({
      args: [
        '--endpoint',
        emulator.url,
        '--sink',
        sink,
        '--output-dir',
        dir,
        ...channels.flatMap((c) => ['--channel', `${c}=${c}-stream`]),
      ],
      env: { ...env, AWS_REGION: emulator.region },
      compiled: true,
    });
    agentLines = agent.lines;
    let groups: Record<string, GroupFigures>;
    let wall: number;
    try {
      const recording = new Set<string>();
      await agent.waitForLog(
        (l) => {
          if (l.msg === 'recording' && typeof l.channel === 'string') recording.add(l.channel);
          return recording.size === n;
        },
        60_000 + 10_000 * n,
      );
      await sleep(warmupSeconds * 1000);
      const t0 = Date.now();
      groups = await measureTree(agent.child.pid!, 'node');
      wall = (Date.now() - t0) / 1000;
    } finally {
      process.kill(agent.child.pid!, 'SIGINT');
      await agent.exited;
    }
    const sent = await masters.stop();
    const finished = agentLines.find((l) => l.msg === 'recording finished');
    const units = (finished?.units ?? []) as UnitSummary[];
    const perChannel: ChannelFigures[] = [];
    const files = await segmentsIn(dir);
    const clip = clipSpec(...RESOLUTIONS[resolution]);
    for (const channel of channels) {
      const mine = files.filter((f) => basename(f).startsWith(`${channel}-stream`));
      const recorded = [];
      let errors = 0;
      for (const file of mine) {
        recorded.push(await recordedVideoFrames(file));
        const e = await decodeErrors(file);
        errors += e ? e.split('\n').length : 0;
      }
      const match = matchFrames(sent.get(channel) ?? [], recorded, clip.frames);
      const lastSeq = match.matched.at(-1)?.sent.seq ?? -1;
      const unit = units.find((u) => u.channel === channel);
      const runs = unit?.runs ?? [];
      const recordingLine = agentLines.find((l) => l.msg === 'recording' && l.channel === channel);
      const recordingAt = recordingLine ? Date.parse(String(recordingLine.time)) : NaN;
      const answer = (masters.answers.get(channel) ?? []).filter((a) => a <= recordingAt).at(-1);
      const worst = (
        pick: (
          r: (typeof runs)[number],
        ) => { p50: number | null; p99: number | null; max?: number | null } | undefined,
      ) => {
        const l = runs.map(pick).filter((x) => x !== undefined);
        const m = (k: 'p50' | 'p99' | 'max') => (l.length ? Math.max(...l.map((x) => x[k] ?? 0)) : null);
        return { p50: m('p50'), p99: m('p99'), max: m('max') };
      };
      perChannel.push({
        channel,
        videoFramesRecorded: match.matched.length,
        framesLost: match.lost.filter((q) => q < lastSeq).length,
        framesUnknown: match.unknown,
        droppedByAgent:
          (unit?.droppedWithoutRun ?? 0) +
          runs.reduce((a, r) => a + (r.droppedFrames ?? 0) + (r.muxer?.dropped ?? 0), 0),
        keyFrameIntervalMaxMs: runs.length
          ? Math.max(...runs.map((r) => r.video.maxKeyFrameIntervalMs ?? 0))
          : null,
        answerToFirstKeyFrameMs:
          answer !== undefined && typeof recordingLine?.firstFrameReceivedMs === 'number'
            ? recordingLine.firstFrameReceivedMs - answer
            : null,
        answerToRecordingMs:
          answer !== undefined && Number.isFinite(recordingAt) ? recordingAt - answer : null,
        receiveToMuxerMs: worst((r) => r.latencyMs),
        receiveToStdinMs: worst((r) => r.muxer?.stdinLatencyMs),
        decodeErrors: errors,
      });
    }
    return { ...base, measuredSeconds: wall, groups, ...totals(groups), perChannel };
  } catch (err) {
    await masters.stop().catch(() => undefined);
    const tail = agentLines.filter((l) => l.level === 'error' || l.level === 'warn').slice(-3);
    return {
      ...base,
      measuredSeconds: 0,
      groups: {},
      totalCpuPerSecond: 0,
      totalPssSteadyMiB: 0,
      totalPssPeakMiB: 0,
      error: `${err instanceof Error ? err.message : String(err)}${tail.length ? ` (${tail.map((l) => l.msg).join('; ')})` : ''}`,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const lostIn = (s: ScenarioResult) =>
  s.error ? Infinity : (s.perChannel ?? []).reduce((a, c) => a + c.framesLost + c.framesUnknown, 0);

function chromiumVersion(): string {
  try {
    return execFileSync(CHROMIUM, ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'Chromium (version unknown)';
  }
}

async function main(): Promise<void> {
  if (!existsSync(COMPILED_AGENT)) throw new Error(`${COMPILED_AGENT} is missing: run npm run build first`);
  const startedAt = new Date().toISOString();
  const outDir = resolve(values.out ?? join(ROOT, 'bench-results', startedAt.replace(/[:.]/g, '-')));
  await mkdir(outDir, { recursive: true });
  // Encode (or find cached) the clips before anything is timed.
  for (const [w, h] of Object.values(RESOLUTIONS)) await loadClip(clipSpec(w, h));
  const emulator = await startEmulator({ port: 0, logger: logger.child({ component: 'emulator' }) });
  const scenarios: ScenarioResult[] = [];
  const transcode: Record<string, TranscodeCost> = {};
  try {
    await createChannels(emulator, channelNames(maxChannels));
    for (const resolution of Object.keys(RESOLUTIONS) as Resolution[]) {
      say(`floor ${resolution}`);
      scenarios.push(await floorScenario(emulator, resolution));
      say(`agent ${resolution} ×1`);
      scenarios.push(await agentScenario(emulator, resolution, 1));
      say(`transcode reference ${resolution}`);
      const spec = clipSpec(...RESOLUTIONS[resolution]);
      transcode[resolution] = await measureTranscode({
        videoFile: clipFiles(spec).videoFile,
        frames: spec.frames,
        fps: FPS,
      });
    }
    let last = scenarios.find((s) => s.name === 'agent 720p30 ×1')!;
    for (let n = 2; n <= maxChannels && lostIn(last) === 0; n *= 2) {
      say(`agent 720p30 ×${n}`);
      last = await agentScenario(emulator, '720p30', n);
      scenarios.push(last);
    }
  } finally {
    await emulator.stop();
  }
  const results = summarize(startedAt, scenarios, transcode);
  await writeReport(outDir, results, CHROMIUM);
  process.stdout.write(`${markdownReport(results)}\nWritten: ${outDir}/{bench.json,report.md,chart.png}\n`);
}

function summarize(
  startedAt: string,
  scenarios: ScenarioResult[],
  transcode: Record<string, TranscodeCost>,
): BenchResults {
  const get = (name: string) => scenarios.find((s) => s.name === name && !s.error);
  const agent720 = get('agent 720p30 ×1');
  const floor720 = get('floor 720p30');
  const scaling = scenarios.filter((s) => s.kind === 'agent' && s.resolution === '720p30');
  const passing = scaling.filter((s) => lostIn(s) === 0);
  const densest = passing.reduce<ScenarioResult | undefined>(
    (a, s) => (!a || s.channels > a.channels ? s : a),
    undefined,
  );
  const agentOverFloor =
    agent720 && floor720 ? agent720.totalCpuPerSecond / floor720.totalCpuPerSecond : null;
  const prototype720 =
    floor720 && transcode['720p30']
      ? floor720.totalCpuPerSecond + transcode['720p30'].cpuPerMediaSecond
      : null;
  const transcodeOverAgent = agent720 && prototype720 ? prototype720 / agent720.totalCpuPerSecond : null;
  const firstMiB = agent720?.totalPssSteadyMiB ?? null;
  const perAdded =
    agent720 && densest && densest.channels > 1
      ? (densest.totalPssSteadyMiB - agent720.totalPssSteadyMiB) / (densest.channels - 1)
      : null;
  const allChannels = scenarios.flatMap((s) => s.perChannel ?? []);
  const firstKey = allChannels.map((c) => c.answerToFirstKeyFrameMs).filter((v) => v !== null);
  const gstUp = allChannels.map((c) => c.answerToRecordingMs).filter((v) => v !== null && v !== undefined);
  const p99 = allChannels.map((c) => c.receiveToStdinMs.p99).filter((v) => v !== null);
  const num = (v: number | null | undefined, d = 2) => (v === null || v === undefined ? '–' : v.toFixed(d));
  const targets: Target[] = [
    {
      name: 'agent CPU vs receive floor, 720p30, 1 channel',
      target: '≤ 1.6×',
      measured: `${num(agentOverFloor)}× (${num(agent720?.totalCpuPerSecond, 3)} vs ${num(floor720?.totalCpuPerSecond, 3)} CPU-s/s)`,
      met: agentOverFloor === null ? null : agentOverFloor <= 1.6,
    },
    {
      name: 'transcode prototype (floor + x264) vs agent, 720p30',
      target: '≥ 3×',
      measured: `${num(transcodeOverAgent)}× (${num(prototype720, 3)} vs ${num(agent720?.totalCpuPerSecond, 3)} CPU-s/s)`,
      met: transcodeOverAgent === null ? null : transcodeOverAgent >= 3,
    },
    {
      name: 'channels at 720p30 with 0 frames lost',
      target: '≥ 8',
      measured: `${densest?.channels ?? 0} (tried up to ${Math.max(...scaling.map((s) => s.channels))})`,
      met: (densest?.channels ?? 0) >= 8,
    },
    {
      name: 'memory (PSS) of the first channel',
      target: '≤ 350 MB',
      measured: `${num(firstMiB, 0)} MiB`,
      met: firstMiB === null ? null : firstMiB * MIB <= 350e6,
    },
    {
      name: 'memory per added channel',
      target: '≤ 60 MB',
      measured: `${num(perAdded, 0)} MiB`,
      met: perAdded === null ? null : perAdded * MIB <= 60e6,
    },
    {
      name: 'answer → first recorded key frame (worst channel)',
      target: '≤ 2 s',
      measured: firstKey.length
        ? `${Math.max(...firstKey)} ms (gst up and writing: ${gstUp.length ? Math.max(...gstUp) : '–'} ms)`
        : '–',
      met: firstKey.length ? Math.max(...firstKey) <= 2000 : null,
    },
    {
      name: 'receive → gst input p99 (worst channel)',
      target: '≤ 20 ms',
      measured: p99.length ? `${num(Math.max(...p99), 1)} ms` : '–',
      met: p99.length ? Math.max(...p99) <= 20 : null,
    },
  ];
  return {
    startedAt,
    machine: {
      cpus: cpus().length,
      model: cpus()[0]?.model ?? 'unknown',
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      chromium: chromiumVersion(),
    },
    options: { seconds, warmupSeconds, maxChannels, sink },
    scenarios,
    transcode,
    ratios: { agentOverFloor720p: agentOverFloor, transcodeOverAgent720p: transcodeOverAgent },
    densestPassingChannels: densest?.channels ?? 0,
    memory: { firstChannelMiB: firstMiB, perAddedChannelMiB: perAdded },
    cost: densest
      ? channelHourCost({
          channels: densest.channels,
          vcpu: densest.totalCpuPerSecond,
          memoryMiB: densest.totalPssPeakMiB,
        })
      : null,
    targets,
  };
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
