/**
 * `npm run drift [-- --minutes 30 --resolution 640x360]`: records one synthetic master (ground truth: every
 * flash and beep captured at the same instant) for that long with the file sink, then prints the A/V offset
 * per event over the whole recording: median, spread, drift per minute (least squares), the first and the
 * last five minutes' medians, and frames lost. Figures only: nothing here passes or fails.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../agent/log.js';
import { DEFAULT_EMULATOR_CREDENTIALS, startEmulator } from '../emulator/server.js';
import { clipSpec, loadClip } from '../WebRTC/synthetic/clip.js';
import { spawnAgent } from './lib/agentProcess.js';
import { startMasterProcess } from './lib/bench/masterProcess.js';
import { decodeErrors, segmentsIn } from './lib/mediaProbe.js';
import {
  beepOnsets,
  decodedAudio,
  matchFrames,
  recordedVideoFrames,
  summarizeSync,
  syncEvents,
} from './lib/syncProbe.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    resolution: { type: 'string', default: '640x360' },
  },
});
const minutes = Number(values.minutes);
const size = /^(\d+)x(\d+)$/.exec(values.resolution);
if (!(minutes > 0) || !size) throw new Error('--minutes must be > 0 and --resolution WIDTHxHEIGHT');
const CHANNEL = 'webrtc-kvs-agent-channel';
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? null;

async function main(): Promise<void> {
  const spec = clipSpec(Number(size![1]), Number(size![2]));
  await loadClip(spec);
  const logger = createLogger({ level: 'warn' });
  const emulator = await startEmulator({ port: 0, logger: logger.child({ component: 'emulator' }) });
  const dir = await mkdtemp(join(tmpdir(), 'kvs-agent-drift-'));
  const env = {
    AWS_ACCESS_KEY_ID: DEFAULT_EMULATOR_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: DEFAULT_EMULATOR_CREDENTIALS.secretAccessKey,
  };
  try {
    const masters = await startMasterProcess({
      endpoint: emulator.url,
      region: emulator.region,
      channels: [CHANNEL],
      resolution: values.resolution,
      sentLog: join(dir, 'sent.jsonl'),
      env,
    });
    const agent = spawnAgent({
      args: ['--endpoint', emulator.url, '--sink', 'file', '--output-dir', dir],
      env: { ...env, AWS_REGION: emulator.region },
    });
    try {
      await agent.waitForLog((l) => l.msg === 'recording', 90_000);
      process.stderr.write(`drift: recording for ${minutes} min\n`);
      await new Promise((r) => setTimeout(r, minutes * 60_000));
    } finally {
      process.kill(agent.child.pid!, 'SIGINT');
      await agent.exited;
    }
    const sent = (await masters.stop()).get(CHANNEL) ?? [];
    const files = await segmentsIn(dir);
    const recorded = [];
    const onsets = [];
    let errors = 0;
    for (const file of files) {
      const e = await decodeErrors(file);
      errors += e ? e.split('\n').length : 0;
      recorded.push(await recordedVideoFrames(file));
      const audio = await decodedAudio(file);
      onsets.push(audio ? beepOnsets(audio) : []);
    }
    const match = matchFrames(sent, recorded, spec.frames);
    const lastSeq = match.matched.at(-1)?.sent.seq ?? -1;
    const events = syncEvents(match, onsets);
    const summary = summarizeSync(events);
    const t0 = events[0]?.captureMs ?? 0;
    const window = (from: number, to: number) =>
      median(events.filter((e) => e.captureMs - t0 >= from && e.captureMs - t0 < to).map((e) => e.offsetMs));
    const lengthMs = (events.at(-1)?.captureMs ?? t0) - t0;
    const report = {
      minutes,
      resolution: values.resolution,
      files: files.length,
      decodeErrors: errors,
      videoFramesRecorded: match.matched.length,
      framesLost: match.lost.filter((q) => q < lastSeq).length,
      framesUnknown: match.unknown,
      events: summary?.events ?? 0,
      medianMs: summary?.medianMs ?? null,
      spreadMs: summary?.spreadMs ?? null,
      driftMsPerMin: summary?.driftMsPerMin ?? null,
      firstFiveMinutesMedianMs: window(0, 300_000),
      lastFiveMinutesMedianMs: window(lengthMs - 300_000, Infinity),
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } finally {
    await emulator.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`drift failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
