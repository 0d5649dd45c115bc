/**
 * `npm run demo [-- --duration 20 --headed]`: the whole production path, offline. Starts the KVS emulator,
 * the reference master in its own headless Chromium (fake camera + microphone), and the real agent against
 * the emulator with the file sink; records for the given time and prints a short report.
 */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../agent/log.js';
import type { RecordingSummary } from '../agent/recording/recordingStats.js';
import { spawnAgent } from './lib/agentProcess.js';
import { startDemoStack, ROOT } from './lib/demoStack.js';
import { describeRecording } from './lib/mediaProbe.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '20' },
      headed: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
    },
  });
  const duration = Number(values.duration);
  if (!Number.isInteger(duration) || duration < 3 || duration > 3600) {
    throw new Error('--duration must be a whole number of seconds between 3 and 3600');
  }
  const logger = createLogger({ level: values.verbose ? 'info' : 'warn' });
  const outputDir = resolve(
    ROOT,
    'recordings',
    `demo-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}`,
  );
  await mkdir(outputDir, { recursive: true });

  console.log('Starting the KVS emulator and the reference master (fake camera + microphone)…');
  const stack = await startDemoStack({ logger, headed: values.headed });
  try {
    console.log(`Emulator at ${stack.emulator.url}; starting the agent for ${duration} s…`);
    const agent = spawnAgent({
      args: [
        '--endpoint',
        stack.emulator.url,
        '--sink',
        'file',
        '--output-dir',
        outputDir,
        '--duration',
        String(duration),
        ...(values.headed ? ['--headed'] : []),
      ],
      env: stack.agentEnv,
      onLine: (line) => {
        if (values.verbose || line.level === 'error' || line.level === 'fatal' || line.level === 'stderr') {
          console.log(`  agent ${line.level}: ${line.msg}`);
        } else if (line.msg === 'recording' || line.msg === 'viewer state' || line.msg === 'channel found') {
          const detail = line.msg === 'viewer state' ? ` (peer ${String(line.peer)})` : '';
          console.log(`  agent: ${line.msg}${detail}`);
        }
      },
    });
    const exit = await agent.exited;
    const finished = agent.lines.find((l) => l.msg === 'recording finished');
    if (exit.code !== 0 || !finished) {
      throw new Error(`the agent exited with ${exit.code ?? exit.signal} and no recording summary`);
    }
    const summaries = (finished.summaries ?? []) as RecordingSummary[];
    const report = await describeRecording(outputDir);
    console.log('');
    console.log('Recording report');
    console.log(`  output:            ${report.files.join(', ') || '(none)'}`);
    console.log(
      `  duration:          ${report.durationSeconds?.toFixed(2) ?? '?'} s (asked for ${duration} s of running)`,
    );
    console.log(`  streams:           ${report.streams.join(', ')}`);
    console.log(
      `  video frames:      ${report.videoFrames}  (agent counted ${sum(summaries, (s) => s.video.frames)})`,
    );
    console.log(
      `  audio frames:      ${report.audioFrames}  (Opus packets in: ${sum(summaries, (s) => s.audio.frames)})`,
    );
    console.log(
      `  key-frame interval: max ${report.maxKeyFrameGapSeconds?.toFixed(2) ?? '?'} s, mean ${report.meanKeyFrameGapSeconds?.toFixed(2) ?? '?'} s (${report.keyFrames} key frames)`,
    );
    console.log(`  resolutions seen:  ${report.resolutions.join(' → ')}`);
    console.log(
      `  decode errors:     ${report.decodeErrors.length === 0 ? 'none' : report.decodeErrors.slice(0, 3).join(' | ')}`,
    );
    const lat = summaries[0]?.latencyMs;
    if (lat) console.log(`  latency receive → muxer: p50 ${lat.p50} ms, p99 ${lat.p99} ms`);
  } finally {
    await stack.close();
  }
}

function sum(summaries: RecordingSummary[], pick: (s: RecordingSummary) => number): number {
  return summaries.reduce((acc, s) => acc + pick(s), 0);
}

main().catch((err: unknown) => {
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
