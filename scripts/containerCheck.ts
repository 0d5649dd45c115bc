/**
 * The run half of `scripts/container-check.sh`: the built image against the KVS emulator on this machine.
 * The emulator and the reference master (its own headless Chromium, fake camera + microphone, pages taken
 * from the image itself so that the host needs no Vite build) run here; the agent runs in the container on
 * the host network with the file sink writing to a host directory. Each check prints one line,
 * `PASS …` / `FAIL …` / `SKIP …`, which the shell script counts. Exit status 1 if any check failed.
 *
 *   node --import tsx scripts/containerCheck.ts --image localhost/webrtc-kvs-agent:check [--seconds 20]
 *
 * podman must be set up (CONTAINERS_CONF etc.) by the caller; the container is removed at the end.
 */
import { execFile, spawn } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { createLogger, lineSplitter } from '../agent/log.js';
import { NODE_FLAGS } from '../agent/nodeFlags.js';
import { DEFAULT_EMULATOR_CREDENTIALS, startEmulator, type Emulator } from '../emulator/server.js';
import { metricValue, waitFor } from '../test/support/recoveryHarness.js';
import { launchMaster, type MasterHandle } from './lib/masterBrowser.js';
import { describeRecording, segmentsIn } from './lib/mediaProbe.js';

const run = promisify(execFile);

const { values } = parseArgs({
  options: {
    image: { type: 'string' },
    seconds: { type: 'string', default: '20' },
    'keep-output': { type: 'boolean', default: false },
  },
});
if (!values.image) throw new Error('--image is required');
const image = values.image;
const recordSeconds = Number(values.seconds);
/** The agent's default --stop-budget; `podman stop` must end within it (plus podman's own overhead). */
const STOP_BUDGET_S = 25;
const name = `webrtc-kvs-agent-check-${process.pid}`;

let failures = 0;
function pass(what: string): void {
  console.log(`PASS ${what}`);
}
function fail(what: string): void {
  failures++;
  console.log(`FAIL ${what}`);
}
function check(ok: boolean, what: string, detail = ''): boolean {
  if (ok) pass(what);
  else fail(detail ? `${what}: ${detail}` : what);
  return ok;
}

async function podman(...args: string[]): Promise<string> {
  const { stdout } = await run('podman', args, { maxBuffer: 64 * 1024 * 1024 });
  return stdout.trim();
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      s.close(() => resolve(port));
    });
  });
}

interface ProcEntry {
  pid: number;
  ppid: number;
  argv: string[];
  /** The process's environment; null when it could not be read. */
  env: Record<string, string> | null;
}

/**
 * Every process in the container with argv and environment, read from /proc by a node run with
 * `podman exec` (the image has no ps). Runs as the image's user, as the agent does, so it can read them.
 */
const PROC_DUMP = `
const fs = require('node:fs');
const out = [];
for (const d of fs.readdirSync('/proc')) {
  if (!/^\\d+$/.test(d) || Number(d) === process.pid) continue;
  try {
    const argv = fs.readFileSync('/proc/' + d + '/cmdline', 'utf8').split('\\0').filter(Boolean);
    const ppid = Number(/PPid:\\s+(\\d+)/.exec(fs.readFileSync('/proc/' + d + '/status', 'utf8'))[1]);
    let env = null;
    try {
      env = Object.fromEntries(fs.readFileSync('/proc/' + d + '/environ', 'utf8').split('\\0').filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    } catch {}
    out.push({ pid: Number(d), ppid, argv, env });
  } catch {}
}
process.stdout.write(JSON.stringify(out));
`;

/** Processes started by `podman exec` (health checks, this dump) get the container's configured env too. */
function isExecProcess(p: ProcEntry): boolean {
  return p.argv[0] === 'node' && p.argv[1] === '-e';
}

async function main(): Promise<void> {
  const logger = createLogger({ level: 'warn' });
  const work = await mkdtemp(join(tmpdir(), 'container-check-'));
  const outputDir = join(work, 'recordings');
  const webRoot = join(work, 'web');
  let emulator: Emulator | undefined;
  let master: MasterHandle | undefined;
  let logs: ReturnType<typeof spawn> | undefined;
  try {
    // The image itself: non-root, health check, stop signal, init, no dev dependencies or tests.
    const config = JSON.parse(
      await podman(
        'image',
        'inspect',
        '--format',
        '{"User":{{json .Config.User}},"Entrypoint":{{json .Config.Entrypoint}},"StopSignal":{{json .Config.StopSignal}},"Healthcheck":{{json .HealthCheck}}}',
        image,
      ),
    ) as {
      User?: string;
      Entrypoint?: string[];
      StopSignal?: string;
      Healthcheck?: { Test?: string[] };
      Env?: string[];
    };
    const entrypoint = config.Entrypoint ?? [];
    check(
      config.User === 'agent' &&
        entrypoint[0] === '/usr/bin/tini' &&
        NODE_FLAGS.every((f) => entrypoint.includes(f)),
      `image runs as user agent under tini, node with ${NODE_FLAGS.join(' ')} (agent/nodeFlags.ts)`,
      `User=${config.User} Entrypoint=${JSON.stringify(config.Entrypoint)}`,
    );
    check(
      config.StopSignal === 'SIGTERM' && (config.Healthcheck?.Test ?? []).join(' ').includes('/healthz'),
      'image declares HEALTHCHECK on /healthz and STOPSIGNAL SIGTERM',
      `StopSignal=${config.StopSignal} Healthcheck=${JSON.stringify(config.Healthcheck)}`,
    );
    const contents = await podman(
      'run',
      '--rm',
      '--network',
      'none',
      '--entrypoint',
      'sh',
      image,
      '-c',
      'node --version; id -u; ls /app/node_modules | wc -l; ' +
        'for p in typescript vite tsx eslint @playwright playwright-core prettier; do [ -e /app/node_modules/$p ] && echo dev:$p; done; ' +
        'ls /app/dist/node; [ -d /app/dist/web/page ] && echo web:page; ' +
        'for b in ffmpeg ffprobe x264enc; do command -v $b; done; gst-inspect-1.0 x264enc >/dev/null 2>&1 && echo ugly; true',
    );
    const lines = contents.split('\n');
    check(lines[0]?.startsWith('v24.') ?? false, `image runs Node 24 (${lines[0]})`);
    check(lines[1] !== '0', `container user is not root (uid ${lines[1]})`);
    const extras = lines.filter((l) => l.startsWith('dev:') || l.startsWith('/') || l === 'ugly');
    const tree = lines
      .slice(3)
      .filter((l) => !l.startsWith('dev:') && !l.startsWith('web:') && !l.startsWith('/') && l !== 'ugly');
    check(
      extras.length === 0 && tree.join(',') === 'agent' && lines.includes('web:page'),
      `image holds the built agent and pages only (${lines[2]} production packages; dist/node: ${tree.join(',')})`,
      `unexpected: ${extras.join(' ')}`,
    );

    // Pages for the master from the image (the same Vite build the agent serves).
    const tmp = await podman('create', image);
    await podman('cp', `${tmp}:/app/dist/web`, webRoot);
    await podman('rm', tmp);

    emulator = await startEmulator({ port: 0, logger: logger.child({ component: 'emulator' }) });
    master = await launchMaster({
      endpoint: emulator.url,
      region: emulator.region,
      channel: 'webrtc-kvs-agent-channel',
      credentials: { ...DEFAULT_EMULATOR_CREDENTIALS },
      webRoot,
      logger: logger.child({ component: 'master' }),
    });
    pass(
      `emulator at ${emulator.url} and the reference master (headless Chromium on the host) on its channel`,
    );

    await import('node:fs/promises').then((fs) => fs.mkdir(outputDir));
    await chmod(outputDir, 0o777); // the container's user writes here
    const metricsPort = await freePort();
    const opsUrl = `http://127.0.0.1:${metricsPort}`;
    // The secret reaches podman through its environment (`-e NAME` without a value): not in any argv.
    const secret = DEFAULT_EMULATOR_CREDENTIALS.secretAccessKey;
    const env = {
      ...process.env,
      AWS_ACCESS_KEY_ID: DEFAULT_EMULATOR_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: secret,
    };
    await run(
      'podman',
      [
        'run',
        '--detach',
        '--name',
        name,
        '--network',
        'host',
        '--env',
        'AWS_ACCESS_KEY_ID',
        '--env',
        'AWS_SECRET_ACCESS_KEY',
        '--env',
        `AWS_REGION=${emulator.region}`,
        '--env',
        `KVS_ENDPOINT=${emulator.url}`,
        '--env',
        'SINK=file',
        '--env',
        `METRICS_ADDRESS=127.0.0.1:${metricsPort}`,
        '--volume',
        `${outputDir}:/recordings`,
        image,
      ],
      { env },
    );
    const startedAt = Date.now();
    const agentLines: Array<{ msg?: string; level?: unknown }> = [];
    logs = spawn('podman', ['logs', '--follow', name], { stdio: ['ignore', 'pipe', 'pipe'] });
    const onLine = lineSplitter((text) => {
      try {
        agentLines.push(JSON.parse(text) as { msg?: string });
      } catch {
        agentLines.push({ msg: text, level: 'raw' });
      }
    });
    logs.stdout?.on('data', onLine);
    logs.stderr?.on('data', onLine);

    // podman without systemd has no timer for health checks: run them as its timer would.
    let healthy = false;
    let lastHealth = '';
    const healthDeadline = Date.now() + 90_000;
    while (Date.now() < healthDeadline) {
      const r = await run('podman', ['healthcheck', 'run', name]).then(
        (o) => ({ ok: true, out: o.stdout.trim() }),
        (e: { stdout?: string; stderr?: string }) => ({
          ok: false,
          out: `${e.stdout ?? ''}${e.stderr ?? ''}`.trim(),
        }),
      );
      lastHealth = r.out;
      if (r.ok) {
        healthy = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
    const status = await podman('inspect', '--format', '{{.State.Health.Status}}', name).catch(() => '?');
    check(
      healthy && status === 'healthy',
      `health check healthy ${((Date.now() - startedAt) / 1000).toFixed(1)} s after start (podman inspect: ${status})`,
      `last: ${lastHealth}`,
    );

    await waitFor(
      'the agent recording',
      () => agentLines.some((l) => l.msg === 'recording'),
      90_000,
      250,
    ).then(
      () => pass(`agent recording ${((Date.now() - startedAt) / 1000).toFixed(1)} s after start`),
      (err: Error) => fail(`agent recording: ${err.message}`),
    );
    const framesAtStart = await metricValue(opsUrl, 'kvs_agent_frames_total', { kind: 'video' }).catch(
      () => 0,
    );
    await new Promise((r) => setTimeout(r, (recordSeconds * 1000) / 2));

    // Mid-recording: who holds the secret, and that Chromium and gst are there to be looked at.
    const procs = JSON.parse(await podman('exec', name, 'node', '-e', PROC_DUMP)) as ProcEntry[];
    const inArgv = procs.filter((p) => p.argv.some((a) => a.includes(secret)));
    const agentNode = procs.find(
      (p) => p.pid !== 1 && p.argv[0] === 'node' && p.argv.includes('dist/node/agent/main.js'),
    );
    const withSecret = procs.filter((p) => p.env && Object.values(p.env).some((v) => v.includes(secret)));
    const unexpected = withSecret.filter((p) => p.pid !== 1 && p !== agentNode && !isExecProcess(p));
    const children = procs.filter((p) => p !== agentNode && p.pid !== 1 && !isExecProcess(p));
    const chromium = children.filter((p) => (p.argv[0] ?? '').includes('chromium'));
    const gst = children.filter((p) => (p.argv[0] ?? '').includes('gst-launch'));
    const awsInChildren = children.filter(
      (p) => p.env && Object.keys(p.env).some((k) => k.startsWith('AWS_')),
    );
    const unreadable = children.filter((p) => p.env === null);
    check(
      agentNode !== undefined && chromium.length > 0 && gst.length > 0,
      `processes: PID 1 ${procs.find((p) => p.pid === 1)?.argv[0]}, agent node (${agentNode?.pid}), ${chromium.length} Chromium, ${gst.length} gst-launch`,
      procs.map((p) => `${p.pid}:${p.argv[0]}`).join(' '),
    );
    check(inArgv.length === 0, 'the AWS secret is in no process argv', inArgv.map((p) => p.pid).join(','));
    check(
      unexpected.length === 0 && awsInChildren.length === 0 && unreadable.length === 0,
      `the AWS secret is only in the agent's environment (and tini's, PID 1, which holds the container's); ` +
        `none of the ${children.length} Chromium/gst processes has any AWS_* variable`,
      `secret in ${unexpected.map((p) => `${p.pid}:${p.argv[0]}`).join(' ')}; AWS_* in ${awsInChildren.map((p) => `${p.pid}:${p.argv[0]}`).join(' ')}; unreadable ${unreadable.length}`,
    );

    await new Promise((r) => setTimeout(r, (recordSeconds * 1000) / 2));
    const frames =
      (await metricValue(opsUrl, 'kvs_agent_frames_total', { kind: 'video' }).catch(() => 0)) - framesAtStart;
    check(
      frames > recordSeconds * 10,
      `${frames} video frames in ${recordSeconds} s (/metrics from the host)`,
    );

    // SIGTERM through tini → drain → exit 0.
    const stopAt = Date.now();
    await podman('stop', '--time', String(STOP_BUDGET_S + 15), name);
    const stopSeconds = (Date.now() - stopAt) / 1000;
    const exitCode = await podman('inspect', '--format', '{{.State.ExitCode}}', name);
    check(
      exitCode === '0' && stopSeconds <= STOP_BUDGET_S,
      `podman stop (SIGTERM): exit ${exitCode} after ${stopSeconds.toFixed(1)} s (drain budget ${STOP_BUDGET_S} s)`,
    );
    // `podman logs --follow` ends by itself once it has printed the container's last line; killing it
    // at once lost that line (the 'recording finished' summary) in one CI run.
    const follower = logs;
    if (follower.exitCode === null) {
      await Promise.race([
        new Promise((r) => follower.once('close', r)),
        new Promise((r) => setTimeout(r, 10_000)),
      ]);
    }
    follower.kill();
    const finished = agentLines.some((l) => l.msg === 'recording finished');
    const errors = agentLines.filter(
      (l) => l.level === 'error' || l.level === 'fatal' || l.level === 50 || l.level === 60,
    );
    check(
      finished,
      "agent logged 'recording finished'",
      `last lines: ${agentLines
        .slice(-3)
        .map((l) => l.msg)
        .join(' | ')}`,
    );
    check(
      errors.length === 0,
      'no error lines in the agent log',
      errors
        .slice(0, 3)
        .map((l) => l.msg)
        .join(' | '),
    );

    const files = await segmentsIn(outputDir);
    if (check(files.length > 0, `recording written to the host directory (${files.length} file(s))`)) {
      const d = await describeRecording(files);
      check(
        d.streams.includes('video:h264') && d.streams.includes('audio:aac'),
        `ffprobe: ${d.streams.join(', ')}; ${d.durationSeconds?.toFixed(1)} s, ${d.videoFrames} video frames, ${d.audioFrames} AAC frames, ${d.resolutions.join(' → ')}`,
      );
      check(
        d.decodeErrors.length === 0 && d.videoFrames > 0 && d.audioFrames > 0,
        'ffmpeg -v error decodes it without errors',
        d.decodeErrors.slice(0, 3).join(' | '),
      );
    }
  } catch (err) {
    fail(`container run: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    logs?.kill();
    await run('podman', ['rm', '--force', '--ignore', name]).catch(() => undefined);
    await master?.close().catch(() => undefined);
    await emulator?.stop().catch(() => undefined);
    if (values['keep-output']) console.error(`output kept in ${work}`);
    else await rm(work, { recursive: true, force: true });
  }
}

await main();
process.exitCode = failures === 0 ? 0 : 1;
