const SVG = 'http://www.w3.org/2000/svg';
/** viewBox units; the SVG is stretched to its box (preserveAspectRatio none, strokes do not scale). */
const VIEW_W = 120;
const VIEW_H = 24;

export interface SparklineOptions {
  /** data-spark attribute, e.g. `video-bitrate`. */
  name: string;
  label: string;
  unit: string;
  /** How much history is drawn, ms. */
  windowMs?: number;
  digits?: number;
}

/**
 * A small line of the last minute of one number (bitrate, fps, key-frame interval), with its current value
 * and the window's maximum. Inline SVG: no canvas sizing, crisp at any zoom. `data-points` says how many
 * samples it draws (tests).
 */
export class Sparkline {
  readonly element: HTMLElement;
  readonly #o: Required<SparklineOptions>;
  readonly #line: SVGPolylineElement;
  readonly #value: HTMLElement;
  #samples: { at: number; v: number }[] = [];

  constructor(options: SparklineOptions) {
    this.#o = { windowMs: 60_000, digits: 0, ...options };
    const fig = document.createElement('figure');
    fig.className = 'spark';
    fig.dataset.spark = options.name;
    fig.dataset.points = '0';
    const caption = document.createElement('figcaption');
    const label = document.createElement('span');
    label.textContent = options.label;
    this.#value = document.createElement('span');
    this.#value.className = 'value';
    this.#value.dataset.field = 'value';
    this.#value.textContent = '—';
    caption.append(label, this.#value);
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', `0 0 ${VIEW_W} ${VIEW_H}`);
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('aria-hidden', 'true');
    this.#line = document.createElementNS(SVG, 'polyline');
    this.#line.setAttribute('vector-effect', 'non-scaling-stroke');
    svg.append(this.#line);
    fig.append(caption, svg);
    this.element = fig;
  }

  push(value: number, at = performance.now()): void {
    if (!Number.isFinite(value)) return;
    this.#samples.push({ at, v: value });
    const from = at - this.#o.windowMs;
    while (this.#samples.length > 0 && this.#samples[0]!.at < from) this.#samples.shift();
    this.#draw(at);
  }

  /** A new session: the old numbers are of another call. */
  clear(): void {
    this.#samples = [];
    this.#draw(performance.now());
  }

  #draw(now: number): void {
    const { windowMs, digits, unit } = this.#o;
    const max = Math.max(...this.#samples.map((s) => s.v), 0);
    // Scaled to the window's maximum, with headroom, so a flat line sits mid-height rather than on the edge.
    const top = max > 0 ? max * 1.25 : 1;
    const points = this.#samples.map((s) => {
      const x = ((s.at - (now - windowMs)) / windowMs) * VIEW_W;
      const y = VIEW_H - (s.v / top) * VIEW_H;
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    });
    this.#line.setAttribute('points', points.join(' '));
    this.element.dataset.points = String(points.length);
    const last = this.#samples.at(-1);
    this.#value.textContent = last ? `${last.v.toFixed(digits)} ${unit} (max ${max.toFixed(digits)})` : '—';
  }
}
