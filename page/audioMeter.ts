/** The meter's floor: quieter than this shows as an empty bar. */
const FLOOR_DB = -60;

/**
 * The received audio's level, from inbound-rtp `audioLevel` (0…1, linear; Chromium fills it while the track
 * is played out at full volume: a muted element reads 0), drawn on a dB scale as ears hear it. `data-level` holds the raw value.
 */
export class AudioMeter {
  readonly element: HTMLElement;
  readonly #bar: HTMLElement;
  readonly #label: HTMLElement;

  constructor() {
    const root = document.createElement('div');
    root.className = 'meter';
    root.dataset.field = 'audioLevel';
    root.dataset.level = '0';
    const track = document.createElement('div');
    track.className = 'meter-track';
    this.#bar = document.createElement('div');
    this.#bar.className = 'meter-bar';
    track.append(this.#bar);
    this.#label = document.createElement('span');
    this.#label.className = 'meter-label';
    const name = document.createElement('span');
    name.textContent = 'audio';
    root.append(name, track, this.#label);
    this.element = root;
    this.show(undefined);
  }

  /** undefined: no audio level known (no audio track, or headless). */
  show(level: number | undefined): void {
    const l = level !== undefined && Number.isFinite(level) ? Math.min(1, Math.max(0, level)) : 0;
    const db = l > 0 ? 20 * Math.log10(l) : -Infinity;
    const fill = Math.max(0, Math.min(1, (db - FLOOR_DB) / -FLOOR_DB));
    this.#bar.style.width = `${(fill * 100).toFixed(1)}%`;
    this.element.dataset.level = l.toFixed(4);
    this.#label.textContent =
      level === undefined ? '—' : db === -Infinity ? 'silent' : `${db.toFixed(0)} dBFS`;
  }
}

/** The audio receiver's current level, from its own stats only (cheaper than the whole peer's report). */
export async function readAudioLevel(pc: RTCPeerConnection | undefined): Promise<number | undefined> {
  if (!pc || pc.connectionState === 'closed') return undefined;
  const receiver = pc.getReceivers().find((r) => r.track.kind === 'audio');
  if (!receiver) return undefined;
  let level: number | undefined;
  (await receiver.getStats()).forEach((entry: { type: string; audioLevel?: number }) => {
    if (entry.type === 'inbound-rtp' && typeof entry.audioLevel === 'number') level = entry.audioLevel;
  });
  return level;
}
