import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { pino } from 'pino';
import { ChildProcessError } from '../../../agent/errors.js';
import { MediaTimeline } from '../../../agent/media/timeline.js';
import { GstProcess } from '../../../agent/sink/gstProcess.js';
import { buildPipelineArgs } from '../../../agent/sink/pipeline.js';
import { probe } from '../../../scripts/lib/mediaProbe.js';
import { FIXTURE_RAMP, gstWithMuxer, readPackets, toWireFrames } from '../../support/media.js';

const log = pino({ level: 'silent' });

test('a pipeline with a bad element rejects start() with gst output lines', async () => {
  const gst = new GstProcess({ args: ['fdsrc', 'fd=0', '!', 'nosuchelement', '!', 'fakesink'], logger: log });
  const err = await gst.start().then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ChildProcessError);
  const details = (err as ChildProcessError).details;
  expect(details.recentOutput?.join('\n')).toContain('nosuchelement');
  expect((err as Error).message).toMatch(/failed to start|exited before/);
});

test('a missing binary rejects start()', async () => {
  const gst = new GstProcess({
    args: ['fakesrc', '!', 'fakesink'],
    gstLaunchPath: '/nonexistent/gst-launch',
    logger: log,
  });
  await expect(gst.start()).rejects.toThrow(/could not run|exited before/);
});

test('a child that never reports readiness is killed and rejects after readyTimeoutMs', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fake-gst-'));
  try {
    // A stand-in binary that ignores its pipeline and says nothing, through the gstLaunchPath seam.
    const fake = join(dir, 'silent-gst');
    await writeFile(fake, '#!/bin/sh\necho "Setting pipeline to PAUSED ..."\nexec sleep 60\n', {
      mode: 0o755,
    });
    const gst = new GstProcess({ args: ['fakesrc'], gstLaunchPath: fake, readyTimeoutMs: 700, logger: log });
    const err = await gst.start().then(
      () => null,
      (e: unknown) => e,
    );
    expect((err as Error).message).toMatch(/did not become ready within 700 ms/);
    expect((err as ChildProcessError).details.recentOutput).toEqual(['Setting pipeline to PAUSED ...']);
    expect((await gst.close()).signal).toBe('SIGKILL');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the child sees only the env it is given plus PATH/HOME/GST_*, never the agent environment', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fake-gst-'));
  process.env.AGENT_ONLY_SECRET = 'do-not-leak';
  process.env.GST_DEBUG_NO_COLOR = '1';
  try {
    const fake = join(dir, 'env-gst');
    await writeFile(fake, '#!/bin/sh\nenv | sort\necho "Pipeline is PREROLLING ..."\nexec sleep 60\n', {
      mode: 0o755,
    });
    const gst = new GstProcess({
      args: [],
      gstLaunchPath: fake,
      env: { CONTROL_PLANE_URI: 'http://127.0.0.1:1' },
      logger: log,
    });
    await gst.start();
    await expect.poll(() => gst.recentOutput().some((l) => l.startsWith('Pipeline is'))).toBe(true);
    const names = gst
      .recentOutput()
      .filter((l) => l.includes('='))
      .map((l) => l.slice(0, l.indexOf('=')));
    expect(names).toContain('CONTROL_PLANE_URI');
    expect(names).toContain('PATH');
    expect(names).toContain('GST_DEBUG_NO_COLOR');
    expect(names).not.toContain('AGENT_ONLY_SECRET');
    // The shell's own variables aside (PWD, SHLVL, _), nothing else came through.
    expect(
      names
        .filter((n) => !['PWD', 'SHLVL', '_', 'OLDPWD'].includes(n))
        .every((n) => /^(PATH|HOME|LANG|LD_LIBRARY_PATH|GST_.*|CONTROL_PLANE_URI)$/.test(n)),
    ).toBe(true);
    // It ignores stdin EOF: close() escalates, and SIGINT is the step that ends it.
    expect(await gst.close({ timeoutMs: 100 })).toEqual({ exitCode: null, signal: 'SIGINT' });
  } finally {
    delete process.env.AGENT_ONLY_SECRET;
    delete process.env.GST_DEBUG_NO_COLOR;
    await rm(dir, { recursive: true, force: true });
  }
});

test('close() ends with EOS (exit 0), is idempotent, and does not report died', async () => {
  const gst = new GstProcess({ args: ['fdsrc', 'fd=0', '!', 'fakesink'], logger: log });
  let died = 0;
  gst.on('died', () => died++);
  await gst.start();
  expect(gst.pid).toBeGreaterThan(0);
  const a = gst.close();
  const b = gst.close();
  expect(a).toBe(b);
  expect(await a).toEqual({ exitCode: 0, signal: null });
  expect(died).toBe(0);
});

test('a second input is fd 3 of the child: both are read, and close() ends both (EOS from each fdsrc)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'inputs-'));
  try {
    const out = (n: number) => join(dir, `in${n}.bin`);
    const gst = new GstProcess({
      args: [
        'fdsrc',
        'fd=0',
        '!',
        'filesink',
        `location=${out(0)}`,
        'fdsrc',
        'fd=3',
        '!',
        'filesink',
        `location=${out(1)}`,
      ],
      inputs: 2,
      logger: log,
    });
    await gst.start();
    expect(gst.input(0)).toBe(gst.stdin);
    expect(() => gst.input(2)).toThrow(/no input 2/);
    gst.input(0).write('video bytes');
    gst.input(1).write('audio bytes');
    expect(await gst.close()).toEqual({ exitCode: 0, signal: null });
    expect(await readFile(out(0), 'utf8')).toBe('video bytes');
    expect(await readFile(out(1), 'utf8')).toBe('audio bytes');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an unexpected death after readiness emits died with the exit details', async () => {
  const gst = new GstProcess({ args: ['fdsrc', 'fd=0', '!', 'fakesink'], logger: log });
  await gst.start();
  const died = new Promise<ChildProcessError>((resolve) => gst.once('died', resolve));
  process.kill(gst.pid!, 'SIGKILL');
  const err = await died;
  expect(err.details.signal).toBe('SIGKILL');
  expect(await gst.close()).toEqual({ exitCode: null, signal: 'SIGKILL' });
});

test('SIGKILL of gst mid-recording leaves a segment ffprobe reads with both streams; the muxer fails softly', async () => {
  test.setTimeout(120_000);
  const dir = await mkdtemp(join(tmpdir(), 'kill-'));
  try {
    const frames = toWireFrames(await readPackets(FIXTURE_RAMP));
    const { gst, muxer } = await gstWithMuxer(
      { args: buildPipelineArgs({ kind: 'file', path: join(dir, 'rec.ts') }, { hasAudio: true }) },
      { hasAudio: true, maxQueuedFrames: 100_000 },
    );
    const failed = new Promise<Error>((resolve) => muxer.once('failed', resolve));
    await muxer.start();
    const timeline = new MediaTimeline();
    const died = new Promise<ChildProcessError>((resolve) => gst.once('died', resolve));
    // Feed the first half of the fixture, let gst write it, then kill it hard.
    for (const f of frames.slice(0, Math.floor(frames.length / 2))) {
      const t = timeline.push(f);
      if (t) muxer.write(t);
    }
    await expect.poll(() => muxer.stats().queueDepth, { timeout: 20_000 }).toBe(0);
    // Kill it once the file on disk already holds both streams and several seconds of media (not after a
    // guessed sleep): what SIGKILL must not destroy is then known to be there.
    const file = join(dir, 'rec.ts');
    const written = async () => {
      const info = await probe(file).catch(() => undefined);
      const codecs = info?.streams.map((s) => s.codec_name).sort() ?? [];
      return codecs.join(',') === 'aac,h264' && Number(info?.format.duration ?? 0) > 5;
    };
    await expect.poll(written, { timeout: 20_000 }).toBe(true);
    process.kill(gst.pid!, 'SIGKILL');
    await died;
    // The agent keeps writing after the death: EPIPE must surface as an event, not a crash.
    for (const f of frames.slice(Math.floor(frames.length / 2))) {
      const t = timeline.push(f);
      if (t) muxer.write(t);
    }
    expect((await failed).message).toMatch(/EPIPE|closed|write after end|destroyed/i);
    await expect(muxer.finish()).rejects.toThrow();

    const files = (await readdir(dir)).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBe(1);
    const info = await probe(join(dir, files[0]!));
    expect(info.streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
    expect(Number(info.format.duration)).toBeGreaterThan(5);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
