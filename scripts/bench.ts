/**
 * `npm run bench [-- --seconds 30]`: measures the agent at 720p30 H.264 + Opus against the local emulator and
 * prints figures — CPU-seconds per media-second for the viewer browser, Node and GStreamer, resident memory,
 * and latency from the worker's receive time to the muxer. The master's resolution ramp is switched off so
 * the whole window is 1280x720. Numbers only: nothing here passes or fails.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../agent/log.js';
import type { RecordingSummary } from '../agent/recording/recordingStats.js';
import { spawnAgent } from './lib/agentProcess.js';
import { startDemoStack } from './lib/demoStack.js';
import { describeRecording, segmentsIn } from './lib/mediaProbe.js';
import { usageByGroup, type GroupUsage } from './lib/processCpu.js';

const classify = (comm: string) =>
  comm.startsWith('chrom') ? 'chromium' : comm.startsWith('gst') ? 'gst' : comm;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { seconds: { type: 'string', default: '30' }, sink: { type: 'string', default: 'file' } },
  });
  if (values.sink !== 'file' && values.sink !== 'kvssink') throw new Error('--sink must be file or kvssink');
  const seconds = Number(values.seconds);
  const logger = createLogger({ level: 'warn' });
  const dir = await mkdtemp(join(tmpdir(), 'kvs-agent-bench-'));
  const stack = await startDemoStack({ logger, maintainResolution: true });
  try {
    const agent = spawnAgent({
      args: ['--endpoint', stack.emulator.url, '--sink', values.sink, '--output-dir', dir],
      env: stack.agentEnv,
    });
    await agent.waitForLog((l) => l.msg === 'recording', 90_000);
    // Let the call settle (bandwidth estimation, first key frames) before measuring.
    await new Promise((r) => setTimeout(r, 5_000));
    const pid = agent.child.pid!;
    const before = await usageByGroup(pid, classify);
    const t0 = Date.now();
    let peak: Record<string, GroupUsage> = before;
    const sampler = setInterval(() => {
      void usageByGroup(pid, classify).then((u) => {
        for (const [k, v] of Object.entries(u)) {
          if ((peak[k]?.rssBytes ?? 0) < v.rssBytes) peak = { ...peak, [k]: { ...v } };
        }
      });
    }, 1000);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    clearInterval(sampler);
    const after = await usageByGroup(pid, classify);
    const wall = (Date.now() - t0) / 1000;
    process.kill(pid, 'SIGINT');
    await agent.exited;
    const finished = agent.lines.find((l) => l.msg === 'recording finished');
    const units = (finished?.units ?? []) as Array<{ runs?: RecordingSummary[] }>;
    const summary = units[0]?.runs?.[0];

    console.log(
      `Benchmark (${values.sink} sink): ${wall.toFixed(1)} s measured at 720p30 H.264 + Opus (after a 5 s warm-up)`,
    );
    console.log('CPU-seconds per media-second, peak resident memory (RSS summed over processes):');
    for (const group of ['chromium', 'node', 'gst']) {
      const cpu = ((after[group]?.cpuSeconds ?? 0) - (before[group]?.cpuSeconds ?? 0)) / wall;
      const rss = (peak[group]?.rssBytes ?? 0) / 1024 / 1024;
      const label = group === 'chromium' ? 'viewer browser' : group === 'node' ? 'agent (Node)' : 'GStreamer';
      console.log(`  ${label.padEnd(16)} ${cpu.toFixed(3)} CPU-s/s   ${rss.toFixed(0)} MiB`);
    }
    if (summary) {
      console.log(
        `Latency receive → muxer: p50 ${summary.latencyMs.p50} ms, p99 ${summary.latencyMs.p99} ms`,
      );
      const add = summary.muxer?.addLatencyMs;
      if (add)
        console.log(
          `Latency muxer → gst stdin (mediabunny add + write): p50 ${add.p50} ms, p99 ${add.p99} ms`,
        );
      console.log(
        `Frames: video ${summary.video.frames}, audio ${summary.audio.frames}; resolutions ${summary.video.resolutions.join(', ')}`,
      );
    }
    if (values.sink === 'file') {
      const report = await describeRecording(await segmentsIn(dir));
      console.log(
        `Output: ${report.videoFrames} video frames, ${report.durationSeconds?.toFixed(1)} s, decode errors ${report.decodeErrors.length}`,
      );
    } else {
      const stats = stack.emulator.admin.stats();
      console.log(
        `KVS: ${stats['putMedia.fragmentsPersisted'] ?? 0} fragments persisted, ${stats['putMedia.connections'] ?? 0} PutMedia connections`,
      );
    }
  } finally {
    await stack.close();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
