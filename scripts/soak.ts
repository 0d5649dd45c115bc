/**
 * `npm run soak -- --minutes N [--seed S] [--min-interval 60] [--max-interval 90]`: one demo stack (emulator +
 * reference master) and one agent with the file sink, then a random fault from the recovery tables every
 * ~60-90 s — Chromium killed or hung, gst killed or hung, the viewer's signaling socket dropped, GO_AWAY,
 * RECONNECT_ICE_SERVER, the master page reloaded. Afterwards: recovery time and media gap per fault (measured
 * on the files the agent wrote), the recording checked (decodes, key frames first), memory growth (RSS of the
 * agent's node, its Chromium, gst) and CPU at start and end, as Markdown. Bounded in time, loopback only, and
 * everything it started is stopped and removed. Not in CI: it takes as long as you ask.
 */
import { parseArgs } from 'node:util';
import { createLogger } from '../agent/log.js';
import {
  agentChildren,
  checkRecording,
  descendants,
  gapAround,
  killGroup,
  listProcesses,
  startRecoveryAgent,
  type RecoveryAgent,
} from '../test/support/recoveryHarness.js';
import { startDemoStack, type DemoStack } from './lib/demoStack.js';

const CHANNEL = 'webrtc-kvs-agent-channel';
const CLK_TCK = 100;

type FaultName =
  | 'chromium-kill'
  | 'chromium-stop'
  | 'gst-kill'
  | 'gst-stop'
  | 'signaling-drop'
  | 'go-away'
  | 'reconnect-ice-server'
  | 'master-reload';

interface FaultRecord {
  name: FaultName;
  at: number;
  /** What the fault did, or why it could not be injected. */
  note: string;
  injected: boolean;
  recoveryMs?: number;
  gapMs?: number;
}

/** Below this, the longest pause in the window is ordinary frame timing: no gap, nothing to recover. */
const NO_GAP_MS = 500;

const FAULTS: Record<FaultName, (ctx: { stack: DemoStack; agent: RecoveryAgent }) => Promise<string>> = {
  'chromium-kill': async ({ agent }) => {
    const { chromium } = await agentChildren(agent.agent.child.pid!);
    if (!chromium) throw new Error('no Chromium below the agent');
    killGroup(chromium.pgid, 'SIGKILL');
    return `SIGKILL group ${chromium.pgid}`;
  },
  'chromium-stop': async ({ agent }) => {
    const { chromium } = await agentChildren(agent.agent.child.pid!);
    if (!chromium) throw new Error('no Chromium below the agent');
    killGroup(chromium.pgid, 'SIGSTOP');
    return `SIGSTOP group ${chromium.pgid}`;
  },
  'gst-kill': async ({ agent }) => {
    const [gst] = (await agentChildren(agent.agent.child.pid!)).gst;
    if (!gst) throw new Error('no gst below the agent');
    killGroup(gst.pgid, 'SIGKILL');
    return `SIGKILL gst ${gst.pid}`;
  },
  'gst-stop': async ({ agent }) => {
    const [gst] = (await agentChildren(agent.agent.child.pid!)).gst;
    if (!gst) throw new Error('no gst below the agent');
    killGroup(gst.pgid, 'SIGSTOP');
    return `SIGSTOP gst ${gst.pid}`;
  },
  'signaling-drop': ({ stack }) =>
    Promise.resolve(eachViewer(stack, (v) => stack.emulator.admin.drop(CHANNEL, v))),
  'go-away': ({ stack }) =>
    Promise.resolve(eachViewer(stack, (v) => stack.emulator.admin.send(CHANNEL, v, 'GO_AWAY'))),
  'reconnect-ice-server': ({ stack }) =>
    Promise.resolve(eachViewer(stack, (v) => stack.emulator.admin.send(CHANNEL, v, 'RECONNECT_ICE_SERVER'))),
  'master-reload': async ({ stack }) => {
    await stack.master.reload();
    return 'master page reloaded';
  },
};

function eachViewer(stack: DemoStack, act: (viewer: string) => boolean): string {
  const { viewers } = stack.emulator.admin.connections(CHANNEL);
  if (viewers.length === 0) throw new Error('no viewer connected to signaling');
  return viewers.map((v) => `${v}: ${act(v) ? 'done' : 'not connected'}`).join(', ');
}

/** A small seeded PRNG (mulberry32), so a soak can be replayed with --seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Usage {
  rssBytes: Record<string, number>;
  cpuTicks: Record<string, number>;
}

/** RSS and CPU ticks of the agent's node process, its Chromium (all processes) and gst. */
async function usage(agentPid: number): Promise<Usage> {
  const all = await listProcesses();
  const out: Usage = {
    rssBytes: { node: 0, chromium: 0, gst: 0 },
    cpuTicks: { node: 0, chromium: 0, gst: 0 },
  };
  const self = all.find((p) => p.pid === agentPid);
  const groups = [
    ...(self ? [{ key: 'node', p: self }] : []),
    ...descendants(all, agentPid).map((p) => ({
      key: p.comm.startsWith('chrom') ? 'chromium' : p.comm.startsWith('gst') ? 'gst' : 'node',
      p,
    })),
  ];
  for (const { key, p } of groups) {
    out.rssBytes[key] = (out.rssBytes[key] ?? 0) + p.rssBytes;
    out.cpuTicks[key] = (out.cpuTicks[key] ?? 0) + p.cpuTicks;
  }
  return out;
}

/** CPU use (% of one core) per group over `ms`, and RSS at the end of it. */
async function sample(
  agentPid: number,
  ms: number,
): Promise<{ cpuPct: Record<string, number>; rss: Record<string, number> }> {
  const a = await usage(agentPid);
  await sleep(ms);
  const b = await usage(agentPid);
  const cpuPct: Record<string, number> = {};
  for (const k of Object.keys(b.cpuTicks))
    cpuPct[k] = Math.max(0, ((b.cpuTicks[k]! - (a.cpuTicks[k] ?? 0)) / CLK_TCK / (ms / 1000)) * 100);
  return { cpuPct, rss: b.rssBytes };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function quantile(values: number[], q: number): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

const fmtS = (ms: number | undefined) => (ms === undefined ? '-' : (ms / 1000).toFixed(1));
const fmtMB = (b: number | undefined) => (b === undefined ? '-' : (b / 1024 / 1024).toFixed(0));

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '10' },
      seed: { type: 'string' },
      'min-interval': { type: 'string', default: '60' },
      'max-interval': { type: 'string', default: '90' },
    },
  });
  const minutes = Number(values.minutes);
  if (!(minutes > 0)) throw new Error('--minutes must be a positive number');
  const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
  const minInterval = Number(values['min-interval']) * 1000;
  const maxInterval = Number(values['max-interval']) * 1000;
  const random = prng(seed);
  const logger = createLogger({ level: 'warn' });
  const endAt = Date.now() + minutes * 60_000;
  console.log(
    `soak: ${minutes} min, seed ${seed}, a fault every ${minInterval / 1000}-${maxInterval / 1000} s`,
  );

  const stack = await startDemoStack({ logger, maintainResolution: true });
  let agent: RecoveryAgent | undefined;
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const faults: FaultRecord[] = [];
  try {
    agent = await startRecoveryAgent(stack);
    const a = agent;
    const pid = a.agent.child.pid!;
    await a.agent.waitForLog((l) => l.msg === 'recording', 120_000);
    await a.opsUrl();
    const start = await sample(pid, 10_000);
    const startedAt = Date.now();

    // Faults drawn from a shuffled deck, so every kind comes up before any repeats.
    let deck: FaultName[] = [];
    const draw = (): FaultName => {
      if (deck.length === 0) {
        deck = (Object.keys(FAULTS) as FaultName[])
          .map((f) => ({ f, k: random() }))
          .sort((x, y) => x.k - y.k)
          .map((x) => x.f);
      }
      return deck.shift()!;
    };
    let next = Date.now() + 20_000;
    // The last fault leaves room to recover and to measure before the end (and the closing sample).
    while (!interrupted && next < endAt - 45_000) {
      while (!interrupted && Date.now() < next) {
        if (a.agent.child.exitCode !== null) throw new Error(`the agent exited (${a.agent.child.exitCode})`);
        await sleep(500);
      }
      if (interrupted) break;
      const name = draw();
      const at = Date.now();
      try {
        const note = await FAULTS[name]({ stack, agent: a });
        faults.push({ name, at, note, injected: true });
        console.log(`${new Date(at).toISOString()} fault ${name}: ${note}`);
      } catch (err) {
        faults.push({ name, at, note: (err as Error).message, injected: false });
        console.log(`${new Date(at).toISOString()} fault ${name} not injected: ${(err as Error).message}`);
      }
      next = at + minInterval + random() * (maxInterval - minInterval);
    }
    while (!interrupted && Date.now() < endAt - 12_000) {
      if (a.agent.child.exitCode !== null) throw new Error(`the agent exited (${a.agent.child.exitCode})`);
      await sleep(500);
    }
    const end = await sample(pid, 10_000);
    const wallMinutes = (Date.now() - startedAt) / 60_000;
    const exit = await a.stop(60_000);
    const rec = await checkRecording(a.dir, a.agent.lines);

    // Recovery and gap per fault, in the window up to the next fault.
    for (let i = 0; i < faults.length; i++) {
      const f = faults[i]!;
      if (!f.injected) continue;
      const until = (faults[i + 1]?.at ?? Number.POSITIVE_INFINITY) - 1_000;
      const g = gapAround(rec.times.video, f.at, until);
      if (!g) continue;
      f.gapMs = g.gapMs < NO_GAP_MS ? 0 : g.gapMs;
      f.recoveryMs = g.gapMs < NO_GAP_MS ? 0 : Math.max(0, g.recoveryMs);
    }

    const lines: string[] = [];
    lines.push(
      `## Soak: ${minutes} min (seed ${seed}), ${faults.filter((f) => f.injected).length} faults`,
      '',
    );
    lines.push('| fault | count | recovery p50 (s) | recovery max (s) | gap p50 (s) | gap max (s) |');
    lines.push('|---|---|---|---|---|---|');
    for (const name of Object.keys(FAULTS) as FaultName[]) {
      const fs = faults.filter((f) => f.name === name && f.injected);
      if (fs.length === 0) continue;
      const rec = fs.flatMap((f) => (f.recoveryMs === undefined ? [] : [f.recoveryMs]));
      const gap = fs.flatMap((f) => (f.gapMs === undefined ? [] : [f.gapMs]));
      const never = fs.length - rec.length;
      lines.push(
        `| ${name} | ${fs.length}${never ? ` (${never} never recovered)` : ''} | ${fmtS(quantile(rec, 0.5))} | ${fmtS(quantile(rec, 1))} | ${fmtS(quantile(gap, 0.5))} | ${fmtS(quantile(gap, 1))} |`,
      );
    }
    lines.push(
      '',
      '| process | RSS start (MB) | RSS end (MB) | growth (MB) | CPU start (% core) | CPU end (% core) |',
    );
    lines.push('|---|---|---|---|---|---|');
    for (const k of ['node', 'chromium', 'gst']) {
      const s = start.rss[k];
      const e = end.rss[k];
      lines.push(
        `| ${k} | ${fmtMB(s)} | ${fmtMB(e)} | ${s !== undefined && e !== undefined ? ((e - s) / 1024 / 1024).toFixed(0) : '-'} | ${(start.cpuPct[k] ?? 0).toFixed(0)} | ${(end.cpuPct[k] ?? 0).toFixed(0)} |`,
      );
    }
    lines.push('');
    lines.push(
      `Over ${wallMinutes.toFixed(1)} min: agent exit ${exit.code ?? exit.signal}, ${rec.files.length} files, ` +
        `${rec.times.video.length} video / ${rec.times.audio.length} audio frames, ` +
        `decode errors: ${rec.decodeErrors.length}, files not starting at a key frame: ${rec.notStartingAtKeyFrame.length}, ` +
        `delta frames after a >2 s pause: ${rec.deltaAfterGap.length}.`,
    );
    lines.push('', '| # | time | fault | recovery (s) | gap (s) | note |', '|---|---|---|---|---|---|');
    faults.forEach((f, i) =>
      lines.push(
        `| ${i + 1} | ${new Date(f.at).toISOString().slice(11, 19)} | ${f.name} | ${f.injected ? fmtS(f.recoveryMs) : 'not injected'} | ${fmtS(f.gapMs)} | ${f.note} |`,
      ),
    );
    for (const e of rec.decodeErrors.slice(0, 5)) lines.push(`decode error: ${e.slice(0, 300)}`);
    console.log(lines.join('\n'));
    if (exit.code !== 0 || rec.decodeErrors.length || rec.notStartingAtKeyFrame.length) process.exitCode = 1;
  } finally {
    await agent?.dispose();
    await stack.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
