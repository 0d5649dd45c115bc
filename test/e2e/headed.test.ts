import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from '@playwright/test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createLogger } from '../../agent/log.js';
import { DEFAULT_EMULATOR_CREDENTIALS } from '../../emulator/server.js';
import { spawnAgent, type AgentLogLine, type AgentProcess } from '../../scripts/lib/agentProcess.js';
import { startDemoStack, type DemoStack } from '../../scripts/lib/demoStack.js';
import { chromiumWithDebugPort } from '../support/chromiumDebugPort.js';

/**
 * The headed debug run (`--headed`, `npm run demo -- --headed`) on a real X server: Xvfb with an
 * authorization cookie, as xvfb-run and desktop sessions have it, so the agent must hand DISPLAY *and*
 * XAUTHORITY to its Chromium. A screenshot of the display is attached to the test.
 */
const run = promisify(execFile);
const logger = createLogger({ level: 'warn' });
const WIDTH = 1280;
const HEIGHT = 800;
/** Handed out by the emulator's GetIceServerConfig: it must never reach the screen. */
const TURN_PASSWORD = 'turn-password-must-not-show-4f1c';

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

/** What the test reads off the viewer page, in one evaluate. */
interface PanelReading {
  innerWidth: number;
  innerHeight: number;
  scrollWidth: number;
  clientWidth: number;
  scrollHeight: number;
  video: { width: number; height: number; time: number; paused: boolean; mean: number; stddev: number };
  /** A 160×90 gray thumbnail of the current video frame, to tell a moving picture from a frozen one. */
  thumb: number[];
  audioLevel: number;
  sparkPoints: Record<string, number>;
  resolutionText: string;
  trackSize: string;
  recording: { state: string; run: string; recorder: string };
  text: string;
  html: string;
  /** The bridge token, as the page keeps it (out of the URL). */
  token: string;
  href: string;
}

/**
 * Runs in the page (as source text: this file is compiled without the DOM library). The video frame is
 * drawn into a tiny canvas: a remote WebRTC stream does not taint it.
 */
const READ_PANEL = `(() => {
  const doc = document;
  const v = doc.querySelector('video');
  const canvas = doc.createElement('canvas');
  canvas.width = 160;
  canvas.height = 90;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(v, 0, 0, 160, 90);
  const px = ctx.getImageData(0, 0, 160, 90).data;
  const thumb = [];
  for (let i = 0; i < px.length; i += 4) thumb.push((px[i] + px[i + 1] + px[i + 2]) / 3);
  const mean = thumb.reduce((a, b) => a + b, 0) / thumb.length;
  const stddev = Math.sqrt(thumb.reduce((a, b) => a + (b - mean) ** 2, 0) / thumb.length);
  const sparkPoints = {};
  for (const f of doc.querySelectorAll('[data-spark]')) sparkPoints[f.dataset.spark] = Number(f.dataset.points);
  const video = window.viewerStatus.tracks.video;
  const field = (sel) => doc.querySelector(sel)?.textContent ?? '';
  const scrolling = doc.scrollingElement;
  return {
    innerWidth,
    innerHeight,
    scrollWidth: scrolling.scrollWidth,
    clientWidth: scrolling.clientWidth,
    scrollHeight: scrolling.scrollHeight,
    video: { width: v.videoWidth, height: v.videoHeight, time: v.currentTime, paused: v.paused, mean, stddev },
    thumb,
    audioLevel: Number(doc.querySelector('[data-field="audioLevel"]')?.dataset.level),
    sparkPoints,
    resolutionText: field('[data-field="resolution"]'),
    trackSize: video ? video.width + 'x' + video.height : '',
    recording: {
      state: doc.querySelector('#recording')?.dataset.state ?? '',
      run: field('#recording [data-field="run"]'),
      recorder: field('#recording [data-field="recorder"]'),
    },
    text: doc.body.innerText,
    html: doc.documentElement.outerHTML,
    token: new URLSearchParams(sessionStorage.getItem('webrtc-kvs-agent-viewer-params') ?? '').get('token') ?? '',
    href: location.href,
  };
})()`;

function readPanel(page: Page): Promise<PanelReading> {
  return page.evaluate<PanelReading>(READ_PANEL);
}

let dir: string;
let xvfb: Xvfb | undefined;
let stack: DemoStack | undefined;
let agent: AgentProcess | undefined;
let cdp: Browser | undefined;

test.afterAll(async () => {
  // Only the test's own connection goes: the agent owns its Chromium.
  await cdp?.close().catch(() => undefined);
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
  stack = await startDemoStack({
    logger,
    maintainResolution: true,
    // A TURN server that is not there (nothing listens on port 9): only its password matters here.
    emulator: {
      iceServers: [
        {
          Uris: ['turn:127.0.0.1:9?transport=tcp'],
          Username: 'turn-user',
          Password: TURN_PASSWORD,
          Ttl: 300,
        },
      ],
    },
  });
  const wrapper = await chromiumWithDebugPort(dir, { headed: true });
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
      '--chromium-path',
      wrapper.path,
      '--duration',
      '40',
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

  const recording = await agent.waitForLog(
    (l) => l.msg === 'recording' && typeof l.path === 'string',
    30_000,
  );
  const segment = basename(recording.path as string);

  // The agent's own page, through the wrapper's debugging port.
  cdp = await chromium.connectOverCDP(`http://127.0.0.1:${await wrapper.port()}`);
  const page = cdp
    .contexts()
    .flatMap((c) => c.pages())
    .find((p) => p.url().includes('/page/index.html'));
  expect(page, 'the viewer page in the agent Chromium').toBeDefined();
  const viewer = page!;

  // Video plays: decoded frames of the master's size, time advancing, a picture that is neither black nor still.
  await expect
    .poll(async () => (await readPanel(viewer)).video.width, { timeout: 20_000 })
    .toBeGreaterThan(0);
  const before = await readPanel(viewer);
  // Sparklines draw a point per stats report (1 s headed): wait until every line has a few.
  await expect
    .poll(async () => Math.min(...Object.values((await readPanel(viewer)).sparkPoints)), { timeout: 20_000 })
    .toBeGreaterThanOrEqual(4);
  const levels = new Set<number>();
  for (let i = 0; i < 15; i++) {
    levels.add((await readPanel(viewer)).audioLevel);
    await new Promise((r) => setTimeout(r, 200));
  }
  const after = await readPanel(viewer);
  expect(after.video.paused).toBe(false);
  expect(after.video.time).toBeGreaterThan(before.video.time + 1);
  expect(after.video.stddev, 'the video frame is not flat (black)').toBeGreaterThan(5);
  // The fake camera's frame counter and turning pie: some pixels change clearly from one reading to the next.
  const moved = after.thumb.filter((v, i) => Math.abs(v - before.thumb[i]!) > 24).length;
  expect(moved, 'pixels that changed between two readings').toBeGreaterThan(10);

  // The audio meter follows the fake microphone's beeps.
  const heard = [...levels].filter((l) => l > 0);
  expect(heard.length, `audio levels seen: ${[...levels].join(', ')}`).toBeGreaterThan(0);
  expect(levels.size).toBeGreaterThan(1);

  expect(Object.keys(after.sparkPoints).sort()).toEqual([
    'audio-bitrate',
    'video-bitrate',
    'video-fps',
    'video-keyframe-interval',
  ]);

  // The resolution shown is the one the track stats report, and what the video element decodes.
  expect(after.trackSize).toMatch(/^\d+x\d+$/);
  expect(after.resolutionText.startsWith(`${after.trackSize} `)).toBe(true);
  expect(`${after.video.width}x${after.video.height}`).toBe(after.trackSize);

  // The recording state comes from the agent: running, this very file segment.
  expect(after.recording.state).toBe('running');
  expect(after.recording.recorder).toContain('file');
  expect(after.recording.run).toContain(segment);
  expect(after.recording.run).toContain('#1');

  // Fits the window Chromium opened, and the 800×600 of a default window elsewhere: no horizontal scrolling.
  expect(after.scrollWidth).toBeLessThanOrEqual(after.clientWidth);
  await viewer.setViewportSize({ width: 800, height: 600 });
  const small = await readPanel(viewer);
  expect(small.innerWidth).toBe(800);
  expect(small.scrollWidth).toBeLessThanOrEqual(small.clientWidth);

  // Nothing secret on the page: AWS keys, signatures, the TURN password, the bridge token.
  const secrets = [
    DEFAULT_EMULATOR_CREDENTIALS.secretAccessKey,
    DEFAULT_EMULATOR_CREDENTIALS.accessKeyId,
    'X-Amz-',
    'Signature',
    TURN_PASSWORD,
    after.token,
  ];
  expect(after.token.length).toBeGreaterThan(10);
  expect(after.href, 'the address bar shows no token').not.toContain(after.token);
  for (const secret of secrets) {
    expect(after.text, `page text shows ${secret}`).not.toContain(secret);
    expect(after.html, `page markup holds ${secret}`).not.toContain(secret);
  }
  testInfo.annotations.push({
    type: 'measured',
    description: `viewer ${after.innerWidth}x${after.innerHeight} (scroll ${after.scrollWidth}x${after.scrollHeight}; at 800x600 ${small.scrollWidth}x${small.scrollHeight}); video ${after.trackSize}, ${after.video.time.toFixed(1)} s played; ${moved} pixels of 14400 changed; audio levels ${[...levels].map((l) => l.toFixed(3)).join(' ')}; sparkline points ${JSON.stringify(after.sparkPoints)}; recording "${after.recording.run}"`,
  });
  await cdp.close();
  cdp = undefined;

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
