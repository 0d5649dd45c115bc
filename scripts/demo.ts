/**
 * `npm run demo [-- --duration 20 --headed --keep]`: the whole production path, offline. Starts the KVS emulator,
 * the reference master in its own headless Chromium (fake camera + microphone), and the real agent against
 * the emulator; records for the given time and prints a short report. With kvssink installed the agent
 * streams into the emulator's Kinesis video stream (read back with ListFragments and GetClip); without it,
 * it writes MPEG-TS files. Next to the recording it writes contact-sheet.png and timeline.png, and it prints
 * the recordings player's URL; in a terminal (or with --keep) it serves the player until Ctrl-C.
 */
import { mkdir } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../agent/log.js';
import type { RecordingSummary } from '../agent/recording/recordingStats.js';
import { DEFAULT_WEB_ROOT, startPlayerServer, type PlayerServer } from '../emulator/player/playerServer.js';
import { DEFAULT_EMULATOR_CREDENTIALS, DEFAULT_STREAM_NAME } from '../emulator/server.js';
import { spawnAgent } from './lib/agentProcess.js';
import { startDemoStack, ROOT } from './lib/demoStack.js';
import { kvssinkAvailable } from './lib/kvssinkCheck.js';
import { KvsReadBack } from './lib/kvsReadBack.js';
import { describeRecording, segmentsIn } from './lib/mediaProbe.js';
import { writeRecordingPictures } from './lib/recordingPictures.js';
import type { Unit } from './lib/recordingTimeline.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '20' },
      headed: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
    },
  });
  const duration = Number(values.duration);
  if (!Number.isInteger(duration) || duration < 5 || duration > 3600) {
    throw new Error('--duration must be a whole number of seconds between 5 and 3600');
  }
  if (values.headed && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) {
    throw new Error(
      '--headed needs a display (DISPLAY or WAYLAND_DISPLAY); without a desktop run it under Xvfb: xvfb-run -a npm run demo -- --headed',
    );
  }
  const logger = createLogger({ level: values.verbose ? 'info' : 'warn' });
  const outputDir = resolve(
    ROOT,
    'recordings',
    `demo-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}`,
  );
  await mkdir(outputDir, { recursive: true });
  const kvssink = await kvssinkAvailable();
  const sink = kvssink.available ? 'kvssink' : 'file';
  console.log(
    kvssink.available
      ? 'kvssink found: the agent will stream into the emulator’s Kinesis video stream.'
      : `${kvssink.reason}. The agent will write MPEG-TS files instead.`,
  );

  console.log('Starting the KVS emulator and the reference master (fake camera + microphone)…');
  // --headed shows the viewer (the agent's browser); the master stays headless so that it never covers it.
  const stack = await startDemoStack({ logger });
  let player: PlayerServer | undefined;
  try {
    console.log(`Emulator at ${stack.emulator.url}; starting the agent (${sink} sink) for ${duration} s…`);
    const agent = spawnAgent({
      args: [
        '--endpoint',
        stack.emulator.url,
        '--sink',
        sink,
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
        } else if (['channel found', 'stream ready', 'recording'].includes(line.msg)) {
          console.log(`  agent: ${line.msg}`);
        }
      },
    });
    const exit = await agent.exited;
    const finished = agent.lines.find((l) => l.msg === 'recording finished');
    if (exit.code !== 0 || !finished) {
      throw new Error(`the agent exited with ${exit.code ?? exit.signal} and no recording summary`);
    }
    // One recording unit per channel, each a sequence of runs (files or kvssink sessions).
    const units = (finished.units ?? []) as { runs?: RecordingSummary[] }[];
    const summaries = units.flatMap((u) => u.runs ?? []);

    let files: string[];
    let fragmentsLine = '';
    let fragmentUnits: Unit[] | undefined;
    let originMs: number | undefined;
    if (sink === 'kvssink') {
      const readBack = new KvsReadBack({
        region: stack.emulator.region,
        credentials: DEFAULT_EMULATOR_CREDENTIALS,
        endpoint: stack.emulator.url,
        streamName: DEFAULT_STREAM_NAME,
      });
      const clip = join(outputDir, 'clip.mp4');
      const fragments = await readBack.wholeClip(clip);
      const first = fragments[0]!.ProducerTimestamp!;
      readBack.destroy();
      const lengths = fragments.map((f) => f.FragmentLengthInMilliseconds ?? 0);
      fragmentsLine = `${fragments.length} fragments in ${DEFAULT_STREAM_NAME}, ${Math.min(...lengths)}–${Math.max(...lengths)} ms each`;
      files = [clip];
      // The clip starts at the first fragment: fragments are placed on its timeline by producer time.
      originMs = first.getTime();
      fragmentUnits = fragments.map((f) => {
        const fromS = ((f.ProducerTimestamp?.getTime() ?? originMs!) - originMs!) / 1000;
        return {
          fromS,
          toS: fromS + (f.FragmentLengthInMilliseconds ?? 0) / 1000,
          label: f.FragmentNumber ?? '',
        };
      });
    } else {
      files = await segmentsIn(outputDir);
    }
    const report = await describeRecording(files);

    console.log('');
    console.log('Recording report');
    if (fragmentsLine) console.log(`  Kinesis video:      ${fragmentsLine} (GetClip saved below)`);
    console.log(`  output:             ${report.files.join(', ') || '(none)'}`);
    console.log(
      `  duration:           ${report.durationSeconds?.toFixed(2) ?? '?'} s (agent ran ${duration} s)`,
    );
    console.log(`  streams:            ${report.streams.join(', ')}`);
    console.log(
      `  video frames:       ${report.videoFrames} (agent recorded ${sum(summaries, (s) => s.video.frames)})`,
    );
    console.log(
      `  audio frames:       ${report.audioFrames} AAC (from ${sum(summaries, (s) => s.audio.frames)} Opus packets)`,
    );
    console.log(
      `  key-frame interval: max ${report.maxKeyFrameGapSeconds?.toFixed(2) ?? '?'} s, mean ${report.meanKeyFrameGapSeconds?.toFixed(2) ?? '?'} s (${report.keyFrames} key frames)`,
    );
    console.log(`  resolutions seen:   ${report.resolutions.join(' → ')}`);
    console.log(
      `  decode errors:      ${report.decodeErrors.length === 0 ? 'none' : report.decodeErrors.slice(0, 3).join(' | ')}`,
    );
    const pictures = await writeRecordingPictures(files, outputDir, {
      title: `demo ${sink} sink`,
      ...(fragmentUnits ? { fragments: fragmentUnits } : {}),
      ...(originMs !== undefined ? { originMs } : {}),
    });
    console.log(
      `  contact sheet:      ${pictures.sheet} (${pictures.sheetFrames} frames, ${pictures.resolutions.join(', ')})`,
    );
    console.log(`  timeline:           ${pictures.timeline} (gaps: ${pictures.gaps})`);
    const lat = summaries[0]?.latencyMs;
    const add = summaries[0]?.muxer?.addLatencyMs;
    if (lat && add) {
      console.log(
        `  latency:            receive → muxer p50 ${lat.p50} ms, p99 ${lat.p99} ms; muxer → gst p50 ${add.p50} ms, p99 ${add.p99} ms`,
      );
    }

    player = await startPlayerServer({
      region: stack.emulator.region,
      endpoint: stack.emulator.url,
      credentials: { ...DEFAULT_EMULATOR_CREDENTIALS },
      webRoot: DEFAULT_WEB_ROOT,
      recordingsDir: join(ROOT, 'recordings'),
      logger: logger.child({ component: 'player' }),
    });
    // With kvssink the recording is in the emulator's stream (played through its HLS session URL); the file
    // sink's segments are played from disk.
    const query =
      sink === 'kvssink'
        ? `stream=${DEFAULT_STREAM_NAME}`
        : `local=${encodeURIComponent(basename(outputDir))}`;
    console.log(`  player:             ${player.url}?${query}`);
    // In a terminal (or with --keep) the emulator and the player stay up so that the recording can be watched.
    if (values.keep || process.stdout.isTTY) {
      console.log('\nServing the player until Ctrl-C…');
      await new Promise<void>((done) => {
        process.once('SIGINT', done);
        process.once('SIGTERM', done);
      });
    }
  } finally {
    await player?.close();
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
