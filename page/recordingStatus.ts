import type { FragmentAck, RecordingStatus } from '../agent/bridge/controlProtocol.js';

/**
 * The agent's `recording` message, checked before the panel shows it: the agent is trusted, but a broken
 * message must neither throw nor put odd things on screen. Strict like the agent's own schemas: unknown
 * fields are refused.
 */
const STATES: readonly RecordingStatus['state'][] = [
  'waiting-for-key-frame',
  'starting',
  'running',
  'restarting',
  'stopped',
];
const ACKS: readonly FragmentAck[] = ['buffering', 'received', 'persisted', 'error', 'idle', 'undefined'];
const MAX_NAME_CHARS = 256;
/** Epoch ms and kvssink timecodes: any sane clock is far below this (year 2286). */
const MAX_TIME = 1e13;

type Fields = Record<string, unknown>;

function fields(value: unknown, allowed: readonly string[]): Fields | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const o = value as Fields;
  return Object.keys(o).every((k) => allowed.includes(k)) ? o : undefined;
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isTime = (v: unknown): v is number =>
  typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= MAX_TIME;
const isName = (v: unknown): v is string => typeof v === 'string' && v.length <= MAX_NAME_CHARS;
const isSize = (v: unknown): v is string => typeof v === 'string' && /^(\d{1,5}x\d{1,5})?$/.test(v);

function parseCurrent(v: unknown): RecordingStatus['current'] | null {
  const o = fields(v, ['number', 'name', 'size', 'startedAtMs']);
  if (!o || !isCount(o.number) || !isName(o.name) || !isSize(o.size) || !isTime(o.startedAtMs)) return null;
  return { number: o.number, name: o.name, size: o.size, startedAtMs: o.startedAtMs };
}

function parseLast(v: unknown): RecordingStatus['last'] | null {
  const o = fields(v, ['number', 'name', 'endedAtMs', 'videoFrames']);
  if (!o || !isCount(o.number) || !isName(o.name) || !isTime(o.endedAtMs) || !isCount(o.videoFrames))
    return null;
  return { number: o.number, name: o.name, endedAtMs: o.endedAtMs, videoFrames: o.videoFrames };
}

function parseFragments(v: unknown): RecordingStatus['fragments'] | null {
  const o = fields(v, ['received', 'persisted', 'errors', 'last']);
  if (!o || !isCount(o.received) || !isCount(o.persisted) || !isCount(o.errors)) return null;
  const out: NonNullable<RecordingStatus['fragments']> = {
    received: o.received,
    persisted: o.persisted,
    errors: o.errors,
  };
  if (o.last !== undefined) {
    const l = fields(o.last, ['ack', 'timecode', 'atMs']);
    if (!l || !ACKS.includes(l.ack as FragmentAck) || !isTime(l.timecode) || !isTime(l.atMs)) return null;
    out.last = { ack: l.ack as FragmentAck, timecode: l.timecode, atMs: l.atMs };
  }
  return out;
}

/** The status in a `{type: 'recording', …}` message, or undefined when it is not one. */
export function parseRecordingStatus(message: unknown): RecordingStatus | undefined {
  const o = fields(message, ['type', 'sink', 'state', 'runs', 'restarts', 'current', 'last', 'fragments']);
  if (!o || o.type !== 'recording') return undefined;
  if (o.sink !== 'file' && o.sink !== 'kvssink') return undefined;
  if (!STATES.includes(o.state as RecordingStatus['state'])) return undefined;
  if (!isCount(o.runs) || !isCount(o.restarts)) return undefined;
  const status: RecordingStatus = {
    sink: o.sink,
    state: o.state as RecordingStatus['state'],
    runs: o.runs,
    restarts: o.restarts,
  };
  for (const [key, parse] of [
    ['current', parseCurrent],
    ['last', parseLast],
    ['fragments', parseFragments],
  ] as const) {
    if (o[key] === undefined) continue;
    const parsed = parse(o[key]);
    if (!parsed) return undefined;
    Object.assign(status, { [key]: parsed });
  }
  return status;
}

/** One line of the panel's recording block: `field` is its data-field. */
export interface RecordingLine {
  field: 'recorder' | 'run' | 'last' | 'fragment';
  label: string;
  text: string;
}

function ago(nowMs: number, atMs: number): string {
  const s = Math.max(0, Math.round((nowMs - atMs) / 1000));
  return s < 120 ? `${s} s ago` : `${Math.round(s / 60)} min ago`;
}

function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 23);
}

/** What a person debugging a camera reads about the recording, as text (the panel only lays it out). */
export function describeRecording(status: RecordingStatus, nowMs: number): RecordingLine[] {
  const what = status.sink === 'file' ? 'file' : 'kvssink session';
  const lines: RecordingLine[] = [
    {
      field: 'recorder',
      label: 'recorder',
      text: `${status.state} · ${status.sink} · ${status.runs} run${status.runs === 1 ? '' : 's'}${
        status.restarts ? ` · ${status.restarts} restart${status.restarts === 1 ? '' : 's'}` : ''
      }`,
    },
  ];
  const c = status.current;
  lines.push({
    field: 'run',
    label: 'now',
    text: c
      ? `${what} #${c.number} ${c.name}${c.size ? ` · ${c.size}` : ''} · since ${ago(nowMs, c.startedAtMs).replace(' ago', '')}`
      : 'none yet',
  });
  const l = status.last;
  if (l) {
    lines.push({
      field: 'last',
      label: 'last',
      text: `${what} #${l.number} ${l.name} ${status.sink === 'file' ? 'written' : 'ended'} ${ago(nowMs, l.endedAtMs)} · ${l.videoFrames} video frames`,
    });
  }
  const f = status.fragments;
  if (f) {
    const last = f.last
      ? ` · last ${f.last.ack} ack for ${clock(f.last.timecode)} (${ago(nowMs, f.last.atMs)})`
      : ' · no ack yet';
    lines.push({
      field: 'fragment',
      label: 'fragments',
      text: `#${f.persisted} persisted, ${f.received} received, ${f.errors} errors${last}`,
    });
  }
  return lines;
}
