import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestInfo } from '@playwright/test';
import { spawnAgent, type AgentLogLine, type AgentProcess } from '../../scripts/lib/agentProcess.js';
import type { DemoStack } from '../../scripts/lib/demoStack.js';
import { decodeErrors, probeFrames, segmentsIn } from '../../scripts/lib/mediaProbe.js';

/**
 * Shared by the recovery tests (test/e2e/recovery/) and the soak: the real agent against the demo stack,
 * faults injected from outside (signals by pid, emulator admin hooks), and what came out measured from
 * outside too — the agent's log lines, /proc, /metrics and the files on disk. Keep it small and additive:
 * several test files use it.
 */

export interface RecoveryAgent {
  agent: AgentProcess;
  /** Output directory of the file sink (a temp dir, removed by `dispose`). */
  dir: string;
  /** `http://host:port` of /healthz, /readyz and /metrics, once the agent logged it. */
  opsUrl(): Promise<string>;
  /** SIGTERM, wait for the exit (SIGKILL of the group after `timeoutMs`). */
  stop(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Kills what is left, saves the agent's log into the test's output, removes the temp dir. */
  dispose(info?: TestInfo): Promise<void>;
}

/** Spawns the agent with the file sink into a fresh temp dir (or the caller's args for other sinks). */
export async function startRecoveryAgent(
  stack: Pick<DemoStack, 'emulator' | 'agentEnv'>,
  options: { args?: string[]; sink?: 'file' | 'kvssink'; env?: Record<string, string> } = {},
): Promise<RecoveryAgent> {
  const dir = await mkdtemp(join(tmpdir(), 'kvs-agent-recovery-'));
  const sinkArgs =
    (options.sink ?? 'file') === 'file' ? ['--sink', 'file', '--output-dir', dir] : ['--sink', 'kvssink'];
  const agent = spawnAgent({
    args: ['--endpoint', stack.emulator.url, ...sinkArgs, '--log-level', 'debug', ...(options.args ?? [])],
    env: { ...stack.agentEnv, ...options.env },
  });
  let ops: Promise<string> | undefined;
  return {
    agent,
    dir,
    opsUrl() {
      ops ??= agent
        .waitForLog((l) => l.msg === 'health and metrics endpoints listening', 60_000)
        .then((l) => `http://${String(l.host)}:${String(l.port)}`);
      return ops;
    },
    async stop(timeoutMs = 40_000) {
      if (agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGTERM');
      const timer = setTimeout(() => killGroup(agent.child.pid, 'SIGKILL'), timeoutMs);
      const exit = await agent.exited;
      clearTimeout(timer);
      return exit;
    },
    async dispose(info) {
      const pid = agent.child.pid;
      if (agent.child.exitCode === null && agent.child.signalCode === null) killGroup(pid, 'SIGKILL');
      // Chromium and gst run in process groups of their own: whatever survived the agent goes too.
      for (const p of await listProcesses())
        if (p.state === 'T' && (p.comm.startsWith('chrom') || p.comm.startsWith('gst-launch')))
          if (stoppedByUs.has(p.pgid)) killGroup(p.pgid, 'SIGKILL');
      if (info) {
        await writeFile(info.outputPath('agent.log'), agent.lines.map((l) => JSON.stringify(l)).join('\n'));
        await writeFile(info.outputPath('agent.stderr'), agent.stderr.join('\n'));
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Process groups this process SIGSTOPped: dispose() kills them if they are still stopped. */
const stoppedByUs = new Set<number>();

export function killGroup(pgid: number | undefined, signal: NodeJS.Signals): boolean {
  if (!pgid) return false;
  try {
    process.kill(-pgid, signal);
    if (signal === 'SIGSTOP') stoppedByUs.add(pgid);
    if (signal === 'SIGCONT' || signal === 'SIGKILL') stoppedByUs.delete(pgid);
    return true;
  } catch {
    return false;
  }
}

export function killPid(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

export interface ProcInfo {
  pid: number;
  ppid: number;
  pgid: number;
  /** R, S, D, T (stopped), Z … */
  state: string;
  comm: string;
  /** Resident set size, bytes. */
  rssBytes: number;
  /** User + system CPU time, clock ticks. */
  cpuTicks: number;
}

/** Every process on the machine from /proc/<pid>/stat (the ones that vanish while we read are skipped). */
export async function listProcesses(): Promise<ProcInfo[]> {
  const out: ProcInfo[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const f = stat.slice(close + 2).split(' ');
      out.push({
        pid: Number(name),
        comm: stat.slice(stat.indexOf('(') + 1, close),
        state: f[0]!,
        ppid: Number(f[1]),
        pgid: Number(f[2]),
        cpuTicks: Number(f[11]) + Number(f[12]),
        rssBytes: Number(f[21]) * 4096,
      });
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

/** `root` and everything below it (by parent pid). */
export function descendants(all: ProcInfo[], root: number): ProcInfo[] {
  const byParent = new Map<number, ProcInfo[]>();
  for (const p of all) byParent.set(p.ppid, [...(byParent.get(p.ppid) ?? []), p]);
  const out: ProcInfo[] = [];
  const queue = [root];
  while (queue.length) {
    for (const child of byParent.get(queue.shift()!) ?? []) {
      out.push(child);
      queue.push(child.pid);
    }
  }
  return out;
}

export interface AgentChildren {
  /** The Chromium browser process (group leader) the agent launched, if one is up. */
  chromium: ProcInfo | undefined;
  /** Every process of that Chromium's group (browser, zygotes, renderers, GPU …). */
  chromiumGroup: ProcInfo[];
  /** Every Chromium process below the agent, of any group (left-overs show up here). */
  allChromium: ProcInfo[];
  gst: ProcInfo[];
  agent: ProcInfo | undefined;
}

/** The agent's children as /proc sees them: Chromium's by comm below the agent, gst-launch-1.0 by comm. */
export async function agentChildren(agentPid: number): Promise<AgentChildren> {
  const all = await listProcesses();
  const below = descendants(all, agentPid);
  const allChromium = below.filter((p) => p.comm.startsWith('chrom'));
  const chromium = allChromium.find((p) => p.ppid === agentPid && p.pgid === p.pid);
  return {
    chromium,
    chromiumGroup: chromium ? all.filter((p) => p.pgid === chromium.pgid) : [],
    allChromium,
    gst: below.filter((p) => p.comm.startsWith('gst-launch')),
    agent: all.find((p) => p.pid === agentPid),
  };
}

/** Processes still in a group (after its leader was killed: renderers must not outlive it). */
export async function groupMembers(pgid: number): Promise<ProcInfo[]> {
  return (await listProcesses()).filter((p) => p.pgid === pgid && p.state !== 'Z');
}

/** Polls `check` every `intervalMs` until it returns a value (not undefined/false) or `timeoutMs` passes. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs: number,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The first log line matching `predicate` logged at or after `sinceMs` (the log's own `time`). */
export function waitForLogAfter(
  agent: AgentProcess,
  sinceMs: number,
  predicate: (l: AgentLogLine) => boolean,
  timeoutMs: number,
): Promise<AgentLogLine> {
  return agent.waitForLog((l) => logTime(l) >= sinceMs && predicate(l), timeoutMs);
}

export function logTime(line: AgentLogLine): number {
  const t = line.time;
  return typeof t === 'number' ? t : Date.parse(String(t));
}

/** One value of a Prometheus text exposition (summed over series whose labels include `labels`). */
export async function metricValue(
  opsUrl: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const text = await (await fetch(`${opsUrl}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^(\w+)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const l = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}

/** Waits until `count` more video frames were accepted from the bridge than at `from` (a live condition). */
export async function waitForVideoFrames(opsUrl: string, from: number, count: number, timeoutMs: number) {
  return waitFor(
    `${count} new video frames`,
    async () => {
      const n = await metricValue(opsUrl, 'kvs_agent_frames_total', { kind: 'video' });
      return n >= from + count ? n : undefined;
    },
    timeoutMs,
    250,
  );
}

export interface TrackTimes {
  /** Wall-clock ms of each frame, ascending, over all segments. */
  video: number[];
  audio: number[];
}

export interface RecordingCheck {
  files: string[];
  /** Decode errors per file (empty strings are left out). */
  decodeErrors: string[];
  /** Files whose first video frame is not a key frame. */
  notStartingAtKeyFrame: string[];
  /**
   * Inside a file: a video frame after a pause > 2 s that is not a key frame. Shorter pauses happen without
   * any loss when the loaded master's encoder falls behind (decode errors catch a lost frame there).
   */
  deltaAfterGap: { file: string; ptsTime: number; gapSeconds: number }[];
  times: TrackTimes;
}

/**
 * Reads every MPEG-TS segment in `dir` and places its frames on the wall clock: each file starts at 0 and
 * its first frame is the run's first key frame, whose wall-clock time the agent logs with `recording`
 * (`firstFrameWallClockMs`, `path`); files without such a line fall back to the start time in their name.
 */
export async function checkRecording(dir: string, lines: AgentLogLine[]): Promise<RecordingCheck> {
  const files = await segmentsIn(dir);
  const startByPath = new Map<string, number>();
  for (const l of lines)
    if (l.msg === 'recording' && typeof l.path === 'string' && typeof l.firstFrameWallClockMs === 'number')
      startByPath.set(l.path, l.firstFrameWallClockMs);
  const out: RecordingCheck = {
    files,
    decodeErrors: [],
    notStartingAtKeyFrame: [],
    deltaAfterGap: [],
    times: { video: [], audio: [] },
  };
  for (const file of files) {
    const video = await probeFrames(file, 'v');
    if (video.length === 0) continue;
    const audio = await probeFrames(file, 'a');
    const errors = await decodeErrors(file);
    if (errors) out.decodeErrors.push(`${file}: ${errors}`);
    if (!video[0]!.keyFrame) out.notStartingAtKeyFrame.push(file);
    for (let i = 1; i < video.length; i++) {
      const gap = video[i]!.ptsTime - video[i - 1]!.ptsTime;
      if (gap > 2 && !video[i]!.keyFrame)
        out.deltaAfterGap.push({ file, ptsTime: video[i]!.ptsTime, gapSeconds: gap });
    }
    const start = startByPath.get(file) ?? startFromName(file);
    const zero = video[0]!.ptsTime;
    out.times.video.push(...video.map((f) => start + (f.ptsTime - zero) * 1000));
    out.times.audio.push(...audio.map((f) => start + (f.ptsTime - zero) * 1000));
  }
  out.times.video.sort((a, b) => a - b);
  out.times.audio.sort((a, b) => a - b);
  return out;
}

function startFromName(file: string): number {
  const m = /_(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})Z\.ts$/.exec(file);
  if (!m) return 0;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!, +m[7]!);
}

export interface GapAround {
  /** Longest pause between consecutive frames in the window, ms. */
  gapMs: number;
  /** Wall clock of the frame that ended it. */
  resumedAtMs: number;
  /** resumedAtMs − fault time. */
  recoveryMs: number;
}

/**
 * The media gap a fault at `faultMs` caused in one track: the longest pause between consecutive frames
 * from shortly before the fault until `untilMs`, and when the track resumed. Null if the track has no
 * frame after the fault (it never came back).
 */
export function gapAround(
  times: number[],
  faultMs: number,
  untilMs = Number.POSITIVE_INFINITY,
): GapAround | null {
  let best: GapAround | null = null;
  for (let i = 1; i < times.length; i++) {
    const prev = times[i - 1]!;
    const t = times[i]!;
    if (t < faultMs - 1_000 || prev > untilMs) continue;
    const gap = t - prev;
    if (!best || gap > best.gapMs) best = { gapMs: gap, resumedAtMs: t, recoveryMs: t - faultMs };
  }
  if (!times.some((t) => t > faultMs)) return null;
  return best;
}

/** Prints a measurement the house way: stdout and a test annotation. */
export function report(info: TestInfo, what: string, value: unknown): void {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  process.stdout.write(`measured [${info.title}] ${what}: ${text}\n`);
  info.annotations.push({ type: what, description: text });
}
