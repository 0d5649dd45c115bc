import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { createLogger } from '../../agent/log.js';
import { spawnAgent, type AgentProcess } from '../../scripts/lib/agentProcess.js';
import { startDemoStack, type DemoStack } from '../../scripts/lib/demoStack.js';
import { countPackets, decodeErrors, probe, probeFrames } from '../../scripts/lib/mediaProbe.js';

/**
 * The production path end to end with real components only: reference master page (Chromium, fake media)
 * ↔ KVS emulator ↔ agent (its own Chromium, bridge, timeline, muxer, gst-launch) → MPEG-TS on disk.
 */
test.describe.configure({ mode: 'serial' });

const logger = createLogger({ level: 'warn' });
let stack: DemoStack;
const dirs: string[] = [];

test.beforeAll(async () => {
  test.setTimeout(90_000);
  // Keep the start-of-call resolution ramp: it is part of what must come through intact.
  stack = await startDemoStack({ logger, maintainResolution: false });
});

test.afterAll(async () => {
  await stack?.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function outputDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kvs-agent-e2e-'));
  dirs.push(dir);
  return dir;
}

function startAgent(dir: string, extra: string[] = []): AgentProcess {
  return spawnAgent({
    args: [
      '--endpoint',
      stack.emulator.url,
      '--sink',
      'file',
      '--output-dir',
      dir,
      '--log-level',
      'debug',
      ...extra,
    ],
    env: stack.agentEnv,
  });
}

async function segments(dir: string): Promise<string[]> {
  return (await readdir(dir))
    .filter((f) => f.endsWith('.ts'))
    .sort()
    .map((f) => join(dir, f));
}

test('records ~20 s of H.264 + AAC through the real path, resolution ramp included', async () => {
  test.setTimeout(180_000);
  const dir = await outputDir();
  const agent = startAgent(dir);
  try {
    const recording = await agent.waitForLog((l) => l.msg === 'recording', 90_000);
    const startedAt = Date.parse(String(recording.time));
    const viewerId = await stack.master.waitForViewerConnected(30_000);
    const encodedAtStart = await stack.master.framesEncoded(viewerId);

    // Credentials never reach the browser: the agent's Chromium has no AWS variable in its environment.
    const chromiumPid = await chromiumChildOf(agent.child.pid!);
    expect(chromiumPid, 'the agent runs its own Chromium').toBeDefined();
    const environ = await readFile(`/proc/${chromiumPid}/environ`, 'utf8');
    expect(environ).not.toContain('AWS_SECRET_ACCESS_KEY');
    expect(environ).not.toContain('AWS_ACCESS_KEY_ID');

    await new Promise((r) => setTimeout(r, 20_000));
    const encodedAtEnd = await stack.master.framesEncoded(viewerId);
    const stoppedAt = Date.now();
    process.kill(agent.child.pid!, 'SIGINT');
    const exit = await agent.exited;
    expect(exit.code, agent.stderr.join('\n')).toBe(0);
    expect(agent.lines.some((l) => l.msg === 'recording finished')).toBe(true);

    const files = await segments(dir);
    expect(files).toHaveLength(1);
    const file = files[0]!;
    const info = await probe(file);
    const video = info.streams.filter((s) => s.codec_type === 'video');
    const audio = info.streams.filter((s) => s.codec_type === 'audio');
    expect(video.map((s) => s.codec_name)).toEqual(['h264']);
    expect(audio.map((s) => s.codec_name)).toEqual(['aac']);

    const recordedSeconds = (stoppedAt - startedAt) / 1000;
    const duration = Number(info.format.duration);
    expect(duration).toBeGreaterThan(recordedSeconds * 0.9);
    expect(duration).toBeLessThan(recordedSeconds * 1.1);

    const frames = await probeFrames(file, 'v');
    expect(frames.length).toBeGreaterThanOrEqual(0.9 * (encodedAtEnd - encodedAtStart));
    expect(await countPackets(file, 'a')).toBeGreaterThan(recordedSeconds * 40);

    expect(await decodeErrors(file)).toBe('');

    const keyTimes = frames.filter((f) => f.keyFrame).map((f) => f.ptsTime);
    const gaps = keyTimes.slice(1).map((t, i) => t - keyTimes[i]!);
    expect(gaps.length).toBeGreaterThan(5);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(2.5);

    // The start-of-call bandwidth ramp: more than one resolution, ending at the camera's 1280x720.
    const sizes = [...new Set(frames.map((f) => `${f.width}x${f.height}`))];
    expect(sizes.length).toBeGreaterThan(1);
    expect(sizes).toContain('1280x720');

    const vStart = Number(video[0]!.start_time);
    const aStart = Number(audio[0]!.start_time);
    expect(Math.abs(vStart - aStart)).toBeLessThanOrEqual(0.1);
  } finally {
    if (agent.child.exitCode === null) process.kill(-agent.child.pid!, 'SIGKILL');
    // On failure the agent's own account (drops, re-anchors, muxer rejections) is the first thing to read.
    await writeFile(
      test.info().outputPath('agent.log'),
      agent.lines.map((l) => JSON.stringify(l)).join('\n'),
    );
    await writeFile(test.info().outputPath('agent.stderr'), agent.stderr.join('\n'));
  }
});

test('a SIGKILLed agent still leaves a file that ffprobe reads', async () => {
  test.setTimeout(120_000);
  const dir = await outputDir();
  const agent = startAgent(dir);
  await agent.waitForLog((l) => l.msg === 'recording', 90_000);
  // Until the segment on disk holds a few seconds of both tracks.
  await expect
    .poll(
      async () => {
        const [file] = await segments(dir);
        return file ? (await probeFrames(file, 'v').catch(() => [])).length : 0;
      },
      { timeout: 60_000, intervals: [1000] },
    )
    .toBeGreaterThan(150);
  // Everything at once — the agent, its Chromium and gst-launch (each in its own process group) — so that
  // nothing gets to finish the file.
  const gst = await childrenNamed(agent.child.pid!, 'gst-launch');
  const chromium = await chromiumChildOf(agent.child.pid!);
  for (const pid of [...gst, ...(chromium ? [chromium] : [])]) process.kill(-pid, 'SIGKILL');
  process.kill(-agent.child.pid!, 'SIGKILL');
  await agent.exited;
  const files = await segments(dir);
  expect(files.length).toBeGreaterThanOrEqual(1);
  const info = await probe(files[0]!);
  expect(info.streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
  expect((await probeFrames(files[0]!, 'v')).length).toBeGreaterThan(100);
});

/** Direct children of `pid` whose command name starts with `prefix`. */
async function childrenNamed(pid: number, prefix: string): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      if (ppid === pid && comm.startsWith(prefix.slice(0, 15))) out.push(Number(name));
    } catch {
      // The process went away while we looked.
    }
  }
  return out;
}

/** The Chromium browser process the agent launched (direct child named chromium). */
async function chromiumChildOf(pid: number): Promise<number | undefined> {
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      if (ppid === pid && comm.startsWith('chrom')) return Number(name);
    } catch {
      // The process went away while we looked.
    }
  }
  return undefined;
}
