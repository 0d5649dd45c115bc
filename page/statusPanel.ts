import type { RecordingStatus } from '../agent/bridge/controlProtocol.js';
import type { TrackKind } from '../agent/bridge/wire.js';
import { AudioMeter } from './audioMeter.js';
import { describeRecording } from './recordingStatus.js';
import { redact } from './redact.js';
import { Sparkline } from './sparkline.js';
import type { PanelTrackStats } from './trackStats.js';
import type { LogLevel, SessionState } from './viewerSession.js';
import type { VideoView } from './videoView.js';

const MAX_LOG_LINES = 200;
const MAX_WARNINGS = 5;
/** Counters under each track's sparklines, as `data-field`s. */
const COUNTERS = ['framesForwarded', 'keyFrames', 'keyFrameRequests', 'framesSkipped'] as const;
const COUNTER_LABELS: Record<(typeof COUNTERS)[number], string> = {
  framesForwarded: 'forwarded',
  keyFrames: 'key frames',
  keyFrameRequests: 'key-frame requests',
  framesSkipped: 'skipped',
};

interface TrackCard {
  root: HTMLElement;
  codec: HTMLElement;
  sparks: { spark: Sparkline; value: (s: PanelTrackStats) => number }[];
  counters: Map<(typeof COUNTERS)[number], HTMLElement>;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: { id?: string; className?: string; field?: string; text?: string } = {},
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (attrs.id) e.id = attrs.id;
  if (attrs.className) e.className = attrs.className;
  if (attrs.field) e.dataset.field = attrs.field;
  if (attrs.text !== undefined) e.textContent = attrs.text;
  return e;
}

/**
 * What a person debugging a camera sees with `--headed`: the call itself (video, audio level), a minute of
 * bitrate, frame rate and key-frame interval per track, the resolution, what the agent records, the last
 * warnings and the log — in two columns that fit Chromium's default 800×600 window. Every text goes through
 * redact() and textContent: nothing on it can carry a credential or markup. Tests read it through data-*
 * attributes.
 */
export class StatusPanel {
  readonly audioMeter = new AudioMeter();
  readonly #state: HTMLElement;
  readonly #resolution: HTMLElement;
  readonly #tracks: Record<TrackKind, TrackCard>;
  readonly #recording: HTMLElement;
  readonly #warnings: HTMLElement;
  readonly #log: HTMLElement;
  #recordingStatus: RecordingStatus | undefined;

  constructor(root: HTMLElement, options: { video?: VideoView } = {}) {
    const header = el('header');
    header.append(el('h1', { text: 'webrtc-kvs-agent viewer' }));
    this.#state = el('dl', { id: 'state' });
    header.append(this.#state);

    const media = el('section', { id: 'media' });
    if (options.video) media.append(options.video.element);
    else media.append(el('p', { className: 'no-video', text: 'video is shown with --headed' }));
    this.#resolution = el('div', { id: 'resolution', field: 'resolution', text: '—' });
    media.append(this.#resolution, this.audioMeter.element);

    this.#recording = el('section', { id: 'recording' });
    this.#recording.append(el('h2', { text: 'recording' }), el('dl'));
    this.showRecording(undefined);

    const tracks = el('section', { id: 'tracks' });
    this.#tracks = {
      video: this.#card('video', [
        { name: 'bitrate', label: 'bitrate', unit: 'kbit/s', value: (s) => s.bitrateKbps },
        { name: 'fps', label: 'frame rate', unit: 'fps', value: (s) => s.fps, digits: 1 },
        {
          name: 'keyframe-interval',
          label: 'key-frame interval',
          unit: 's',
          value: (s) => s.keyFrameIntervalMs / 1000,
          digits: 1,
        },
      ]),
      audio: this.#card('audio', [
        { name: 'bitrate', label: 'bitrate', unit: 'kbit/s', value: (s) => s.bitrateKbps },
      ]),
    };
    tracks.append(this.#tracks.video.root, this.#tracks.audio.root);

    const warnings = el('section', { id: 'warnings-box' });
    this.#warnings = el('ol', { id: 'warnings' });
    warnings.append(el('h2', { text: 'last warnings' }), this.#warnings);

    const left = el('div', { className: 'column' });
    left.append(media, this.#recording);
    const right = el('div', { className: 'column' });
    right.append(tracks, warnings);
    const grid = el('main', { id: 'grid' });
    grid.append(left, right);

    const logBox = el('section', { id: 'log-box' });
    this.#log = el('ol', { id: 'log' });
    logBox.append(el('h2', { text: 'log' }), this.#log);

    root.replaceChildren(header, grid, logBox);
    this.showState({ signaling: 'closed', peer: 'new', ice: 'new', master: 'none' });
    // "since 12 s", "3 s ago": the recording block ages even when no message comes.
    setInterval(() => this.#drawRecording(), 1_000);
  }

  showState(state: SessionState & { attempt?: number }): void {
    this.#state.replaceChildren(
      ...Object.entries(state).flatMap(([k, v]) => {
        const dt = el('dt', { text: k });
        const dd = el('dd', { field: k, text: redact(String(v)) });
        dd.dataset.value = String(v);
        return [dt, dd];
      }),
    );
  }

  showTracks(stats: Partial<Record<TrackKind, PanelTrackStats>>, at = performance.now()): void {
    for (const kind of ['video', 'audio'] as const) {
      const s = stats[kind];
      const card = this.#tracks[kind];
      card.root.hidden = !s;
      if (!s) continue;
      card.codec.textContent = redact(s.codec.replace(/^(video|audio)\//, ''));
      for (const { spark, value } of card.sparks) spark.push(value(s), at);
      for (const [field, e] of card.counters) e.textContent = String(s[field]);
    }
    const v = stats.video;
    const res = v && v.width > 0 && v.height > 0 ? `${v.width}x${v.height}` : '';
    this.#resolution.dataset.width = String(v?.width ?? 0);
    this.#resolution.dataset.height = String(v?.height ?? 0);
    this.#resolution.textContent = res
      ? `${res} · ${v!.fps.toFixed(0)} fps · ${redact(v!.codec.replace(/^video\//, ''))}`
      : 'no video yet';
  }

  /** A new viewer session: the lines start again (the numbers of the previous call would mislead). */
  clearTracks(): void {
    for (const card of Object.values(this.#tracks)) for (const { spark } of card.sparks) spark.clear();
  }

  showRecording(status: RecordingStatus | undefined): void {
    this.#recordingStatus = status;
    this.#drawRecording();
  }

  appendLog(level: LogLevel, msg: string): void {
    const text = `${new Date().toISOString().slice(11, 23)} ${level} ${redact(msg)}`;
    const li = el('li', { className: level, text });
    const log = this.#log;
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.append(li);
    while (log.childElementCount > MAX_LOG_LINES) log.firstElementChild?.remove();
    if (atBottom) log.scrollTop = log.scrollHeight;
    if (level === 'warn' || level === 'error') {
      const w = el('li', { className: level, text });
      w.title = text;
      this.#warnings.prepend(w);
      while (this.#warnings.childElementCount > MAX_WARNINGS) this.#warnings.lastElementChild?.remove();
    }
  }

  #card(
    kind: TrackKind,
    sparks: {
      name: string;
      label: string;
      unit: string;
      value: (s: PanelTrackStats) => number;
      digits?: number;
    }[],
  ): TrackCard {
    const root = el('article', { className: 'track' });
    root.dataset.kind = kind;
    root.hidden = true;
    const title = el('h2', { text: `${kind} ` });
    const codec = el('span', { field: 'codec' });
    title.append(codec);
    root.append(title);
    const made = sparks.map(({ value, ...o }) => ({
      spark: new Sparkline({ ...o, name: `${kind}-${o.name}` }),
      value,
    }));
    for (const { spark } of made) root.append(spark.element);
    const counters = new Map<(typeof COUNTERS)[number], HTMLElement>();
    const line = el('p', { className: 'counters' });
    for (const c of kind === 'video' ? COUNTERS : (['framesForwarded', 'framesSkipped'] as const)) {
      const value = el('span', { field: c, text: '0' });
      counters.set(c, value);
      line.append(value, ` ${COUNTER_LABELS[c]} `);
    }
    root.append(line);
    return { root, codec, sparks: made, counters };
  }

  #drawRecording(): void {
    const dl = this.#recording.querySelector('dl')!;
    const status = this.#recordingStatus;
    this.#recording.dataset.state = status?.state ?? 'unknown';
    this.#recording.dataset.runs = String(status?.runs ?? 0);
    if (!status) {
      dl.replaceChildren(
        el('dt', { text: 'recorder' }),
        el('dd', { field: 'recorder', text: 'no word yet' }),
      );
      return;
    }
    dl.replaceChildren(
      ...describeRecording(status, Date.now()).flatMap((line) => [
        el('dt', { text: line.label }),
        el('dd', { field: line.field, text: redact(line.text) }),
      ]),
    );
  }
}
