import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from '@playwright/test';
import { createLogger } from '../../agent/log.js';
import { spawnAgent, type AgentLogLine, type AgentProcess } from '../../scripts/lib/agentProcess.js';
import { startDemoStack, type DemoStack } from '../../scripts/lib/demoStack.js';

/**
 * The headed debug run (`--headed`, `npm run demo -- --headed`) on a real X server: Xvfb with an
 * authorization cookie, as xvfb-run and desktop sessions have it, so the agent must hand DISPLAY *and*
 * XAUTHORITY to its Chromium. A screenshot of the display is attached to the test.
 */
const run = promisify(execFile);
const logger = createLogger({ level: 'warn' });
const WIDTH = 1280;
const HEIGHT = 800;

interface Xvfb {
  display: string;
  /** XAUTHORITY for clients; undefined when xauth is missing and the server runs without a cookie. */
  authFile: string | undefined;
  child: ChildProcess;
}

async function found(binary: string): Promise<boolean> {
  return run('sh', ['-c', `command -v ${binary}`]).then(
    () => true,
    () => false,
  );
}

/** Starts Xvfb on the first free display from :90, with a fresh cookie when xauth is there. */
async function startXvfb(dir: string): Promise<Xvfb> {
  const withAuth = await found('xauth');
  for (let n = 90; n < 140; n++) {
    if (existsSync(`/tmp/.X11-unix/X${n}`) || existsSync(`/tmp/.X${n}-lock`)) continue;
    const display = `:${n}`;
    const authFile = withAuth ? join(dir, 'Xauthority') : undefined;
    if (authFile) await run('xauth', ['-f', authFile, 'add', display, '.', randomBytes(16).toString('hex')]);
    const child = spawn(
      'Xvfb',
      [
        display,
        '-screen',
        '0',
        `${WIDTH}x${HEIGHT}x24`,
        '-nolisten',
        'tcp',
        ...(authFile ? ['-auth', authFile] : []),
      ],
      { stdio: 'ignore' },
    );
    let exited = false;
    child.once('exit', () => (exited = true));
    // Ready once its socket exists; if it exited instead (display taken meanwhile), try the next one.
    await expect
      .poll(() => exited || existsSync(`/tmp/.X11-unix/X${n}`), { timeout: 15_000, intervals: [50] })
      .toBe(true);
    if (!exited) return { display, authFile, child };
  }
  throw new Error('no free X display between :90 and :139');
}

/** One frame of the display as PNG (ffmpeg x11grab), and its pixels as 8-bit gray. */
async function screenshot(xvfb: Xvfb, file: string): Promise<Buffer> {
  const env = {
    ...process.env,
    DISPLAY: xvfb.display,
    ...(xvfb.authFile ? { XAUTHORITY: xvfb.authFile } : {}),
  };
  const grab = ['-f', 'x11grab', '-video_size', `${WIDTH}x${HEIGHT}`, '-i', xvfb.display, '-frames:v', '1'];
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-y', ...grab, file], { env });
  const { stdout } = await run(
    'ffmpeg',
    ['-nostdin', '-v', 'error', '-i', file, '-f', 'rawvideo', '-pix_fmt', 'gray', '-'],
    { encoding: 'buffer', maxBuffer: 16 * 1024 * 1024 },
  );
  return stdout;
}

function pixelStats(gray: Buffer): { mean: number; stddev: number; notBackground: number } {
  let sum = 0;
  let squares = 0;
  const histogram = new Array<number>(256).fill(0);
  for (const v of gray) {
    sum += v;
    squares += v * v;
    histogram[v]!++;
  }
  const mean = sum / gray.length;
  const background = Math.max(...histogram);
  return {
    mean,
    stddev: Math.sqrt(squares / gray.length - mean * mean),
    notBackground: (gray.length - background) / gray.length,
  };
}

interface StatsLine extends AgentLogLine {
  video?: { framesForwarded?: number };
}

let dir: string;
let xvfb: Xvfb | undefined;
let stack: DemoStack | undefined;
let agent: AgentProcess | undefined;

test.afterAll(async () => {
  if (agent && agent.child.exitCode === null && agent.child.signalCode === null) {
    process.kill(-agent.child.pid!, 'SIGKILL');
    await agent.exited;
  }
  await stack?.close();
  if (xvfb && xvfb.child.exitCode === null) {
    const gone = new Promise((r) => xvfb!.child.once('exit', r));
    xvfb.child.kill('SIGTERM');
    await gone;
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('--headed under Xvfb: the viewer window shows the connected call and the frames it forwards', async () => {
  const testInfo = test.info();
  test.setTimeout(180_000);
  test.skip(
    !(await found('Xvfb')),
    'Xvfb is not installed (Debian package xvfb, see scripts/system-packages.txt)',
  );
  dir = await mkdtemp(join(tmpdir(), 'kvs-agent-headed-'));
  xvfb = await startXvfb(dir);
  stack = await startDemoStack({ logger, maintainResolution: true });
  // As `npm run demo -- --headed` under xvfb-run starts it: the display comes from the environment.
  agent = spawnAgent({
    args: [
      '--endpoint',
      stack.emulator.url,
      '--sink',
      'file',
      '--output-dir',
      dir,
      '--headed',
      '--duration',
      '20',
      '--log-level',
      'debug',
    ],
    env: {
      ...stack.agentEnv,
      DISPLAY: xvfb.display,
      ...(xvfb.authFile ? { XAUTHORITY: xvfb.authFile } : {}),
    },
  });

  // From the agent's own log: a headed Chromium, the page's connected state, frames forwarded.
  const ready = await agent.waitForLog((l) => l.msg === 'viewer browser ready', 60_000);
  expect(ready.headed).toBe(true);
  const connected = await agent.waitForLog(
    (l) => l.msg === 'viewer state' && l.signaling === 'open' && l.peer === 'connected',
    60_000,
  );
  expect(connected.ice).toMatch(/connected|completed/);
  const forwarded = (l: AgentLogLine) => (l as StatsLine).video?.framesForwarded ?? 0;
  const first = await agent.waitForLog((l) => l.msg === 'viewer stats' && forwarded(l) > 0, 30_000);
  // The panel is redrawn with every stats report: after a second one it shows a running count.
  const second = await agent.waitForLog(
    (l) => l.msg === 'viewer stats' && forwarded(l) > forwarded(first),
    15_000,
  );
  testInfo.annotations.push({
    type: 'measured',
    description: `page reported ${forwarded(second)} video frames forwarded; display ${xvfb.display}${xvfb.authFile ? ' with a cookie' : ''}`,
  });

  const shot = join(dir, 'viewer-headed.png');
  const gray = await screenshot(xvfb, shot);
  await testInfo.attach('viewer window on Xvfb', { path: shot, contentType: 'image/png' });
  expect(gray.length).toBe(WIDTH * HEIGHT);
  // An empty X screen is one flat colour; the page (text, table, log) is not.
  const stats = pixelStats(gray);
  testInfo.annotations.push({
    type: 'measured',
    description: `screenshot gray mean ${stats.mean.toFixed(1)}, stddev ${stats.stddev.toFixed(1)}, ${(stats.notBackground * 100).toFixed(1)} % not background`,
  });
  expect(stats.stddev).toBeGreaterThan(10);
  expect(stats.notBackground).toBeGreaterThan(0.005);

  const exit = await agent.exited;
  expect(exit.code, agent.stderr.join('\n')).toBe(0);
  expect(agent.lines.some((l) => l.msg === 'recording finished')).toBe(true);
});
