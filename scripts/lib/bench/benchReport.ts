import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderHtmlToPng } from '../renderPng.js';
import type { BenchResults, ScenarioResult } from './benchResults.js';

const GROUPS = ['chromium', 'node', 'gst'] as const;
const COLORS: Record<string, string> = { chromium: '#4e79a7', node: '#59a14f', gst: '#f28e2b' };

const f = (v: number | null | undefined, digits = 3) =>
  v === null || v === undefined ? '–' : v.toFixed(digits);

export function markdownReport(r: BenchResults): string {
  const lines: string[] = [];
  lines.push(`# Benchmark ${r.startedAt}`, '');
  lines.push(
    `${r.machine.cpus} × ${r.machine.model}, ${r.machine.memoryGiB} GiB; Node ${r.machine.node}; ${r.machine.chromium}. ` +
      `${r.options.seconds} s measured per scenario after a ${r.options.warmupSeconds} s warm-up; ${r.options.sink} sink. ` +
      'Synthetic masters (werift) in a process of their own, not counted.',
    '',
  );
  lines.push('## Targets', '', '| target | goal | measured | met |', '|---|---|---|---|');
  for (const t of r.targets)
    lines.push(
      `| ${t.name} | ${t.target} | ${t.measured} | ${t.met === null ? '–' : t.met ? 'yes' : 'no'} |`,
    );
  lines.push('', '## CPU and memory per scenario', '');
  lines.push(
    '| scenario | channels | CPU-s/s chromium | node | gst | total | per channel | PSS steady MiB (chromium / node / gst) | PSS total steady / peak MiB | RSS summed peak MiB |',
    '|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const s of r.scenarios) {
    if (s.error) {
      lines.push(`| ${s.name} | ${s.channels} | ${s.error} | | | | | | | |`);
      continue;
    }
    const g = (k: string) => s.groups[k];
    const rss = Object.values(s.groups).reduce((a, v) => a + v.rssPeakMiB, 0);
    lines.push(
      `| ${s.name} | ${s.channels} | ${f(g('chromium')?.cpuPerSecond)} | ${f(g('node')?.cpuPerSecond)} | ${f(g('gst')?.cpuPerSecond)} | ${f(s.totalCpuPerSecond)} | ${f(s.totalCpuPerSecond / s.channels)} | ${GROUPS.map((k) => f(g(k)?.pssSteadyMiB, 0)).join(' / ')} | ${f(s.totalPssSteadyMiB, 0)} / ${f(s.totalPssPeakMiB, 0)} | ${f(rss, 0)} |`,
    );
  }
  lines.push('', '## Transcode reference (decode + x264 default preset, GStreamer)', '');
  lines.push('| input | media s | CPU s | CPU-s per media-s |', '|---|---|---|---|');
  for (const [res, t] of Object.entries(r.transcode))
    lines.push(`| ${res} | ${f(t.mediaSeconds, 1)} | ${f(t.cpuSeconds, 2)} | ${f(t.cpuPerMediaSecond)} |`);
  lines.push('', '## Per channel (agent scenarios)', '');
  lines.push(
    '| scenario | channel | frames recorded | lost | unknown | dropped by agent (all causes, before the first key frame too) | decode errors | key-frame interval max ms | answer → first recorded key frame ms (→ gst up) | receive → muxer p50 / p99 / max ms | receive → gst input p50 / p99 / max ms |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const s of r.scenarios) {
    for (const c of s.perChannel ?? []) {
      const lat = (l: { p50: number | null; p99: number | null; max: number | null }) =>
        `${f(l.p50, 1)} / ${f(l.p99, 1)} / ${f(l.max, 1)}`;
      lines.push(
        `| ${s.name} | ${c.channel} | ${c.videoFramesRecorded} | ${c.framesLost} | ${c.framesUnknown} | ${c.droppedByAgent} | ${c.decodeErrors} | ${c.keyFrameIntervalMaxMs ?? '–'} | ${c.answerToFirstKeyFrameMs ?? '–'}${c.answerToRecordingMs != null ? ` (${c.answerToRecordingMs})` : ''} | ${lat(c.receiveToMuxerMs)} | ${lat(c.receiveToStdinMs)} |`,
      );
    }
  }
  if (r.cost) {
    const c = r.cost;
    lines.push(
      '',
      `## Fargate cost per channel-hour (${c.architecture}, ${c.region}, ${c.channels} channels per task)`,
      '',
    );
    lines.push(
      `- billed exactly the measured CPU and PSS: $${c.proportionalUsd.toFixed(5)} per channel-hour`,
      c.task
        ? `- smallest task holding it with headroom (CPU ≤ 70 %, memory ≤ 80 %): ${c.task.cpuUnits / 1024} vCPU / ${c.task.memoryMiB / 1024} GB at $${c.task.usdPerHour.toFixed(4)}/h → $${c.packedUsd!.toFixed(5)} per channel-hour`
        : '- no single Fargate size holds this load with headroom',
      '- measured on this machine (x86_64), priced as Graviton: an estimate, not a Graviton measurement',
    );
  }
  lines.push('', '![CPU and memory per scenario](chart.png)', '');
  return lines.join('\n');
}

/** Two bar charts (CPU-s/s and PSS MiB, stacked by process group) as an SVG page. */
export function chartHtml(scenarios: ScenarioResult[]): string {
  const rows = scenarios.filter((s) => !s.error);
  const barH = 22;
  const labelW = 210;
  const plotW = 420;
  const panel = (
    title: string,
    value: (s: ScenarioResult, g: string) => number,
    unit: string,
    x0: number,
  ) => {
    const max = Math.max(1e-9, ...rows.map((s) => GROUPS.reduce((a, g) => a + value(s, g), 0)));
    const parts: string[] = [`<text x="${x0}" y="18" font-weight="bold">${title}</text>`];
    rows.forEach((s, i) => {
      const y = 30 + i * (barH + 6);
      parts.push(`<text x="${x0}" y="${y + 15}">${escape(s.name)}</text>`);
      let x = x0 + labelW;
      for (const g of GROUPS) {
        const w = (value(s, g) / max) * plotW;
        if (w > 0) parts.push(`<rect x="${x}" y="${y}" width="${w}" height="${barH}" fill="${COLORS[g]}"/>`);
        x += w;
      }
      const total = GROUPS.reduce((a, g) => a + value(s, g), 0);
      parts.push(`<text x="${x + 4}" y="${y + 15}">${total.toFixed(unit === 'MiB' ? 0 : 3)} ${unit}</text>`);
    });
    return parts.join('');
  };
  const height = 60 + rows.length * (barH + 6);
  const width = 2 * (labelW + plotW + 110);
  const legend = GROUPS.map(
    (g, i) =>
      `<rect x="${10 + i * 110}" y="${height - 16}" width="12" height="12" fill="${COLORS[g]}"/><text x="${26 + i * 110}" y="${height - 6}">${g}</text>`,
  ).join('');
  return `<!doctype html><html><body style="margin:0;background:#fff"><svg id="chart" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">
${panel('CPU-s per second (all channels)', (s, g) => s.groups[g]?.cpuPerSecond ?? 0, 'CPU-s/s', 10)}
${panel('PSS steady (MiB)', (s, g) => s.groups[g]?.pssSteadyMiB ?? 0, 'MiB', labelW + plotW + 120)}
${legend}</svg></body></html>`;
}

function escape(text: string): string {
  return text.replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'));
}

export async function writeReport(dir: string, results: BenchResults, chromiumPath: string): Promise<void> {
  await writeFile(join(dir, 'bench.json'), `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(join(dir, 'report.md'), markdownReport(results));
  // The transcode reference as a row of its own (CPU only: it ran unpaced, so its memory is not comparable).
  const transcodeRows: ScenarioResult[] = Object.entries(results.transcode).map(([resolution, t]) => ({
    name: `x264 transcode ${resolution}`,
    kind: 'floor',
    resolution,
    channels: 1,
    measuredSeconds: t.wallSeconds,
    groups: {
      gst: { cpuPerSecond: t.cpuPerMediaSecond, pssSteadyMiB: 0, pssPeakMiB: 0, rssPeakMiB: 0, processes: 1 },
    },
    totalCpuPerSecond: t.cpuPerMediaSecond,
    totalPssSteadyMiB: 0,
    totalPssPeakMiB: 0,
  }));
  await renderHtmlToPng(chartHtml([...results.scenarios, ...transcodeRows]), join(dir, 'chart.png'), {
    executablePath: chromiumPath,
  });
}
