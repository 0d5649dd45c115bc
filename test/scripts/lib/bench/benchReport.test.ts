import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from '@playwright/test';
import { writeReport } from '../../../../scripts/lib/bench/benchReport.js';
import type { BenchResults, ScenarioResult } from '../../../../scripts/lib/bench/benchResults.js';

const run = promisify(execFile);

function scenario(
  name: string,
  cpu: number,
  pss: number,
  extra: Partial<ScenarioResult> = {},
): ScenarioResult {
  const g = (c: number, p: number) => ({
    cpuPerSecond: c,
    pssSteadyMiB: p,
    pssPeakMiB: p + 1,
    rssPeakMiB: 2 * p,
    processes: 1,
  });
  return {
    name,
    kind: 'agent',
    resolution: '720p30',
    channels: 1,
    measuredSeconds: 30,
    groups: { chromium: g(cpu / 2, pss / 2), node: g(cpu / 4, pss / 4), gst: g(cpu / 4, pss / 4) },
    totalCpuPerSecond: cpu,
    totalPssSteadyMiB: pss,
    totalPssPeakMiB: pss + 3,
    ...extra,
  };
}

test('report: JSON, Markdown with every scenario and target, and a PNG chart rendered by Chromium', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bench-report-'));
  try {
    const results: BenchResults = {
      startedAt: '2026-12-02T00:00:00.000Z',
      machine: { cpus: 2, model: 'test', memoryGiB: 24, node: process.version, chromium: 'Chromium' },
      options: { seconds: 30, warmupSeconds: 5, maxChannels: 2, sink: 'file' },
      scenarios: [
        scenario('floor 720p30', 0.1, 300, { kind: 'floor' }),
        scenario('agent 720p30 ×1', 0.15, 500),
        scenario('agent 720p30 ×2', 0, 0, { channels: 2, error: 'timed out' }),
      ],
      transcode: {
        '720p30': {
          pipeline: 'x',
          mediaSeconds: 36,
          cpuSeconds: 18,
          wallSeconds: 10,
          cpuPerMediaSecond: 0.5,
        },
      },
      ratios: { agentOverFloor720p: 1.5, transcodeOverAgent720p: 4 },
      densestPassingChannels: 1,
      memory: { firstChannelMiB: 500, perAddedChannelMiB: null },
      cost: null,
      targets: [{ name: 'agent CPU vs receive floor', target: '≤ 1.6×', measured: '1.50×', met: true }],
    };
    await writeReport(dir, results, process.env.CHROMIUM_PATH ?? '/usr/lib/chromium/chromium');
    expect(JSON.parse(await readFile(join(dir, 'bench.json'), 'utf8'))).toEqual(results);
    const md = await readFile(join(dir, 'report.md'), 'utf8');
    for (const text of [
      '| floor 720p30 | 1 |',
      '| agent 720p30 ×1 | 1 |',
      'timed out',
      '| agent CPU vs receive floor | ≤ 1.6× | 1.50× | yes |',
      '| 720p30 | 36.0 | 18.00 | 0.500 |',
    ])
      expect(md).toContain(text);
    const { stdout } = await run('ffprobe', [
      '-v',
      'error',
      '-show_entries',
      'stream=codec_name,width,height',
      '-of',
      'csv=p=0',
      join(dir, 'chart.png'),
    ]);
    const [codec, width, height] = stdout.trim().split(',');
    expect(codec).toBe('png');
    expect(Number(width)).toBeGreaterThan(1000);
    // Two measured scenarios and the transcode row: three bars per panel plus the legend.
    expect(Number(height)).toBeGreaterThan(100);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
