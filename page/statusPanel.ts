import type { TrackKind } from '../agent/bridge/wire.js';
import type { PanelTrackStats } from './trackStats.js';
import type { LogLevel, SessionState } from './viewerSession.js';

const MAX_LOG_LINES = 200;

/** What a person sees when the agent runs with `--headed`; also read by tests through the DOM. */
export class StatusPanel {
  readonly #state: HTMLElement;
  readonly #tracks: HTMLElement;
  readonly #log: HTMLElement;

  constructor(root: HTMLElement) {
    root.innerHTML = `
      <h1>webrtc-kvs-agent viewer</h1>
      <dl id="state"></dl>
      <table id="tracks"></table>
      <h2>Log</h2>
      <ol id="log"></ol>`;
    this.#state = root.querySelector('#state')!;
    this.#tracks = root.querySelector('#tracks')!;
    this.#log = root.querySelector('#log')!;
    this.showState({ signaling: 'closed', peer: 'new', ice: 'new', master: 'none' });
  }

  showState(state: SessionState & { attempt?: number }): void {
    this.#state.replaceChildren(
      ...Object.entries(state).flatMap(([k, v]) => {
        const dt = document.createElement('dt');
        dt.textContent = k;
        const dd = document.createElement('dd');
        dd.textContent = String(v);
        dd.dataset.field = k;
        return [dt, dd];
      }),
    );
  }

  showTracks(stats: Partial<Record<TrackKind, PanelTrackStats>>): void {
    const columns = [
      'codec',
      'width',
      'height',
      'fps',
      'bitrateKbps',
      'framesForwarded',
      'keyFrames',
      'keyFrameRequests',
      'framesSkipped',
    ] as const;
    const head = `<tr><th>track</th>${columns.map((c) => `<th>${c}</th>`).join('')}</tr>`;
    const rows = (['video', 'audio'] as const)
      .map((kind) => {
        const s = stats[kind];
        if (!s) return '';
        const cells = columns.map((c) => `<td data-field="${c}">${escapeHtml(String(s[c]))}</td>`).join('');
        return `<tr data-kind="${kind}"><th>${kind}</th>${cells}</tr>`;
      })
      .join('');
    this.#tracks.innerHTML = head + rows;
  }

  appendLog(level: LogLevel, msg: string): void {
    const li = document.createElement('li');
    li.className = level;
    li.textContent = `${new Date().toISOString().slice(11, 23)} ${level} ${msg}`;
    this.#log.append(li);
    while (this.#log.childElementCount > MAX_LOG_LINES) this.#log.firstElementChild?.remove();
  }
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}
