import type { FragmentTimeline } from '../fragmentTimeline.js';

/** Draws fragments (green) and gaps (red) across the recording's producer-time span, with the playhead. */
export function drawTimeline(
  box: HTMLElement,
  timeline: FragmentTimeline,
  playheadMs: number | undefined,
  startLabel: HTMLElement,
  endLabel: HTMLElement,
): void {
  const { startMs, endMs } = timeline;
  if (startMs === undefined || endMs === undefined || endMs <= startMs) {
    box.replaceChildren();
    return;
  }
  const span = endMs - startMs;
  const pct = (ms: number): string => `${((100 * (ms - startMs)) / span).toFixed(3)}%`;
  const width = (ms: number): string => `${((100 * ms) / span).toFixed(3)}%`;
  const nodes: HTMLElement[] = [];
  for (const f of timeline.fragments) {
    const el = document.createElement('div');
    el.className = 'fragment';
    el.style.left = pct(f.producerMs);
    el.style.width = width(f.durationMs);
    el.title = `fragment ${f.number}: ${new Date(f.producerMs).toISOString()}, ${f.durationMs} ms, ${f.bytes} B`;
    nodes.push(el);
  }
  for (const g of timeline.gaps) {
    const el = document.createElement('div');
    el.className = 'gap';
    el.style.left = pct(g.fromMs);
    el.style.width = width(g.toMs - g.fromMs);
    el.title = `gap of ${((g.toMs - g.fromMs) / 1000).toFixed(2)} s at ${new Date(g.fromMs).toISOString()}`;
    el.dataset.gapMs = String(g.toMs - g.fromMs);
    nodes.push(el);
  }
  if (playheadMs !== undefined && playheadMs >= startMs && playheadMs <= endMs) {
    const el = document.createElement('div');
    el.className = 'playhead';
    el.style.left = pct(playheadMs);
    nodes.push(el);
  }
  box.replaceChildren(...nodes);
  startLabel.textContent = new Date(startMs).toISOString().replace('T', ' ').slice(0, 19);
  endLabel.textContent = `${new Date(endMs).toISOString().replace('T', ' ').slice(0, 19)} UTC`;
}
