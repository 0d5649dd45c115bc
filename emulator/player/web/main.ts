/**
 * The player page: lists the streams the local player server can see, plays one live or on demand through
 * the HLS session URL the server got from GetHLSStreamingSessionURL (hls.js over Media Source Extensions;
 * Chromium's own HLS support where MSE is missing), and draws the fragment timeline with its gaps. It holds
 * no credentials: every KVS call is the server's, and HLS requests carry only the session token.
 */
import Hls, { type ErrorData } from 'hls.js';
import type { FragmentTimeline } from '../fragmentTimeline.js';
import type { PlaybackMode, PlayerState } from '../playerState.js';
import { drawTimeline } from './timelineView.js';

interface StreamSummary {
  name: string;
  status: string;
  mediaType?: string;
  retentionHours: number;
}
interface PlaybackSession {
  url: string;
  mode: Mode;
  expiresAtMs: number;
}
type Mode = PlaybackMode;
type Source = PlayerState['source'];

declare global {
  interface Window {
    playerState: PlayerState;
  }
  interface HTMLVideoElement {
    /** Chromium's decoded-audio counter: > 0 once the audio track plays. */
    webkitAudioDecodedByteCount?: number;
  }
}

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const video = $<HTMLVideoElement>('video');
const state: PlayerState = {
  stream: undefined,
  source: 'kvs',
  mode: undefined,
  state: 'idle',
  width: 0,
  height: 0,
  resolutionsSeen: [],
  currentTime: 0,
  playingDateMs: undefined,
  behindLiveMs: undefined,
  audioDecodedBytes: 0,
  fragments: 0,
  gaps: 0,
  errors: [],
};
window.playerState = state;
let hls: Hls | undefined;
let timeline: FragmentTimeline | undefined;
let renewTimer: ReturnType<typeof setTimeout> | undefined;
const params = new URLSearchParams(location.search);

async function api<T>(path: string, init?: RequestInit): Promise<T> {
  const res = await fetch(path, init);
  const body = (await res.json().catch(() => ({}))) as T & { error?: string; message?: string };
  if (!res.ok) throw new Error(`${body.error ?? res.status}: ${body.message ?? res.statusText}`);
  return body;
}

function fail(message: string): void {
  state.errors = [...state.errors, message].slice(-10);
  const li = document.createElement('li');
  li.textContent = `${new Date().toISOString().slice(11, 19)} ${message}`;
  $('errors').append(li);
  render();
}

function sourceButton(name: string, source: Source, title: string): HTMLButtonElement {
  const b = document.createElement('button');
  b.type = 'button';
  b.dataset.stream = name;
  b.dataset.source = source;
  b.textContent = name;
  b.title = title;
  b.addEventListener(
    'click',
    () => void select(name, source === 'local' ? 'ON_DEMAND' : (state.mode ?? 'ON_DEMAND'), source),
  );
  return b;
}

async function listStreams(): Promise<void> {
  const [{ streams }, { recordings }] = await Promise.all([
    api<{ streams: StreamSummary[] }>('/api/streams'),
    api<{ recordings: { name: string; segments: number }[] }>('/api/local'),
  ]);
  const box = $('streams');
  box.replaceChildren(
    ...streams.map((s) =>
      sourceButton(
        s.name,
        'kvs',
        `${s.status}, ${s.mediaType ?? 'no media type'}, retention ${s.retentionHours} h`,
      ),
    ),
  );
  if (streams.length === 0) box.textContent = 'No streams.';
  $('local').replaceChildren(
    ...recordings.map((r) => sourceButton(r.name, 'local', `${r.segments} MPEG-TS segments (file sink)`)),
  );
  $('local-section').hidden = recordings.length === 0;
  const local = params.get('local');
  if (local) return select(local, 'ON_DEMAND', 'local');
  const wanted = params.get('stream') ?? streams[0]?.name;
  if (wanted) await select(wanted, params.get('mode') === 'LIVE' ? 'LIVE' : 'ON_DEMAND');
}

async function refreshTimeline(): Promise<void> {
  if (!state.stream) return;
  timeline = await api<FragmentTimeline>(
    state.source === 'local'
      ? `/api/local/fragments?${new URLSearchParams({ name: state.stream }).toString()}`
      : `/api/streams/${encodeURIComponent(state.stream)}/fragments`,
  );
  state.fragments = timeline.fragments.length;
  state.gaps = timeline.gaps.length;
  render();
}

async function select(stream: string, mode: Mode, source: Source = 'kvs'): Promise<void> {
  state.stream = stream;
  state.source = source;
  state.mode = mode;
  state.state = 'loading';
  state.resolutionsSeen = [];
  for (const b of document.querySelectorAll<HTMLButtonElement>('nav button')) {
    b.setAttribute('aria-current', String(b.dataset.stream === stream && b.dataset.source === source));
  }
  $('title').textContent =
    `${stream} — ${mode === 'LIVE' ? 'live' : source === 'local' ? 'files on disk' : 'whole recording'}`;
  $<HTMLButtonElement>('live').disabled = source === 'local';
  try {
    await refreshTimeline();
    await play();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // LIVE needs a fragment from the last 30 s: a stream that has not started (or paused) is waited for.
    if (mode === 'LIVE' && message.startsWith('ResourceNotFoundException') && state.stream === stream) {
      state.state = 'waiting';
      render();
      setTimeout(() => {
        if (state.stream === stream && state.mode === 'LIVE' && state.state === 'waiting')
          void select(stream, 'LIVE');
      }, 2000);
      return;
    }
    state.state = 'error';
    fail(message);
  }
}

/** Gets a session URL and plays it; called again before the session expires, at the same position. */
async function play(resumeAt?: number): Promise<void> {
  if (!state.stream || !state.mode) return;
  if (state.source === 'local') {
    // The file sink's segments: a playlist served beside them, no session and nothing to renew.
    attach(`/local/playlist.m3u8?${new URLSearchParams({ name: state.stream }).toString()}`, resumeAt);
    await video.play().catch(() => undefined);
    return;
  }
  const container = $<HTMLSelectElement>('container').value;
  const body =
    state.mode === 'ON_DEMAND'
      ? { mode: 'ON_DEMAND', startMs: timeline?.startMs, endMs: timeline?.endMs, container }
      : { mode: 'LIVE', container };
  if (state.mode === 'ON_DEMAND' && timeline?.startMs === undefined)
    throw new Error('the stream has no fragments');
  const session = await api<PlaybackSession>(`/api/streams/${encodeURIComponent(state.stream)}/playback`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  clearTimeout(renewTimer);
  // Renew a minute before KVS would refuse the token, so that long playback never stops on a 403.
  renewTimer = setTimeout(
    () => void play(video.currentTime).catch((e: unknown) => fail(String(e))),
    Math.max(10_000, session.expiresAtMs - Date.now() - 60_000),
  );
  attach(session.url, resumeAt);
  await video.play().catch(() => undefined);
}

/** Plays an HLS URL with hls.js (MSE), or natively where MSE is missing. */
function attach(url: string, resumeAt: number | undefined): void {
  hls?.destroy();
  hls = undefined;
  if (Hls.isSupported()) {
    const h = new Hls({ liveSyncDurationCount: 2, enableWorker: true, debug: params.has('debug') });
    hls = h;
    let recovered = false;
    h.on(Hls.Events.ERROR, (_e, data: ErrorData) => {
      if (!data.fatal) return;
      // A refused token (expired session) gets a new session at the same position; a decode error one retry.
      if (data.response?.code === 403 && !recovered) {
        recovered = true;
        void play(video.currentTime).catch((e: unknown) => fail(String(e)));
        return;
      }
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR && !recovered) {
        recovered = true;
        h.recoverMediaError();
        return;
      }
      fail(`player: ${data.type} ${data.details}${data.response ? ` (HTTP ${data.response.code})` : ''}`);
      state.state = 'error';
    });
    h.loadSource(url);
    h.attachMedia(video);
  } else {
    video.src = url;
  }
  if (resumeAt !== undefined)
    video.addEventListener('loadedmetadata', () => (video.currentTime = resumeAt), { once: true });
}

function render(): void {
  const rows: [string, string][] = [
    ['stream', state.stream ? `${state.stream}${state.source === 'local' ? ' (files)' : ''}` : '—'],
    ['mode', state.mode ?? '—'],
    ['state', state.state],
    ['resolution', state.width ? `${state.width}x${state.height}` : '—'],
    ['resolutions seen', state.resolutionsSeen.join(' → ') || '—'],
    ['position', `${state.currentTime.toFixed(1)} s`],
    ['producer time', state.playingDateMs ? new Date(state.playingDateMs).toISOString() : '—'],
    ['behind live', state.behindLiveMs !== undefined ? `${(state.behindLiveMs / 1000).toFixed(1)} s` : '—'],
    ['audio', state.audioDecodedBytes > 0 ? 'decoding' : 'none yet'],
    ['fragments', `${state.fragments} (${state.gaps} gaps)`],
  ];
  $('status').replaceChildren(
    ...rows.flatMap(([k, v]) => {
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = v;
      dd.dataset.field = k.replace(/ /g, '-');
      return [dt, dd];
    }),
  );
  if (timeline) drawTimeline($('timeline'), timeline, state.playingDateMs, $('axis-start'), $('axis-end'));
}

function sample(): void {
  state.currentTime = video.currentTime;
  state.width = video.videoWidth;
  state.height = video.videoHeight;
  const size = `${video.videoWidth}x${video.videoHeight}`;
  if (video.videoWidth && state.resolutionsSeen.at(-1) !== size) state.resolutionsSeen.push(size);
  state.audioDecodedBytes = video.webkitAudioDecodedByteCount ?? 0;
  state.playingDateMs = hls?.playingDate?.getTime();
  // Producer time of the picture against this machine's clock: the glass-to-glass delay through KVS and HLS
  // (as exact as the two clocks agree, which NTP-synced cameras do to a few ms).
  state.behindLiveMs =
    state.mode === 'LIVE' && state.playingDateMs !== undefined
      ? Math.max(0, Date.now() - state.playingDateMs)
      : undefined;
  if (state.state !== 'error' && state.state !== 'waiting' && !(state.state === 'ended' && video.paused)) {
    state.state = video.ended
      ? 'ended'
      : video.paused
        ? state.state === 'loading'
          ? 'loading'
          : 'paused'
        : 'playing';
  }
  render();
}

/**
 * The end of an on-demand recording. hls.js marks the end of stream only once every track's buffer reaches its
 * playlist's end; when a track's media stops a little short of the fragment length the playlist declares
 * (an audio track ending a few ms before the video in the last fragment), it never does, and the element
 * waits at the last frames forever. Stuck there with nothing left to load is the end.
 */
let lastPosition = -1;
let stuckSince = 0;
setInterval(() => {
  if (state.mode !== 'ON_DEMAND' || state.state !== 'playing') return;
  const now = Date.now();
  if (video.currentTime !== lastPosition) {
    lastPosition = video.currentTime;
    stuckSince = now;
    return;
  }
  const ranges = video.buffered;
  const bufferedEnd = ranges.length ? ranges.end(ranges.length - 1) : 0;
  const atEnd = bufferedEnd - video.currentTime < 0.5 && video.duration - bufferedEnd < 1;
  if (atEnd && now - stuckSince > 1500) {
    video.pause();
    state.state = 'ended';
    render();
  }
}, 250);

for (const ev of ['timeupdate', 'resize', 'playing', 'pause', 'ended']) video.addEventListener(ev, sample);
video.addEventListener('error', () => fail(`video: ${video.error?.message ?? 'media error'}`));
$('live').addEventListener('click', () => state.stream && void select(state.stream, 'LIVE', state.source));
$('ondemand').addEventListener(
  'click',
  () => state.stream && void select(state.stream, 'ON_DEMAND', state.source),
);
setInterval(() => {
  if (state.mode === 'LIVE') void refreshTimeline().catch((e: unknown) => fail(String(e)));
}, 4000);
listStreams().catch((err: unknown) => fail(err instanceof Error ? err.message : String(err)));
