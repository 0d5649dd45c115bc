/**
 * The agent's viewer page. It learns everything from the agent over the control channel (never an AWS
 * credential), joins the signaling channel as a VIEWER and keeps a viewer session alive: a new session after
 * any failure, with a capped exponential backoff.
 */
import type { IceServer, TrackStats } from '../agent/bridge/controlProtocol.js';
import type { TrackKind } from '../agent/bridge/wire.js';
import { ControlChannel } from './controlChannel.js';
import { reconnectDelayMs } from './reconnectPolicy.js';
import { installSignalingTap } from './signalingTap.js';
import { StatusPanel } from './statusPanel.js';
import { TrackStatsCollector, type PanelTrackStats } from './trackStats.js';
import { ViewerSession, type LogLevel, type SessionState, type ViewerSessionHooks } from './viewerSession.js';

const STATS_INTERVAL_MS = 2_000;

/** Read by tests and handy in DevTools. */
interface ViewerStatus {
  state: SessionState;
  tracks: Partial<Record<TrackKind, PanelTrackStats>>;
  sessions: number;
  stopped: boolean;
}

declare global {
  interface Window {
    viewerStatus: ViewerStatus;
  }
}

installSignalingTap();

const panel = new StatusPanel(document.querySelector<HTMLElement>('#app') ?? document.body);
const status: ViewerStatus = {
  state: { signaling: 'closed', peer: 'new', ice: 'new' },
  tracks: {},
  sessions: 0,
  stopped: false,
};
window.viewerStatus = status;
const collector = new TrackStatsCollector();
let control: ControlChannel | undefined;
let session: ViewerSession | undefined;

function log(level: LogLevel, msg: string, data?: Record<string, unknown>): void {
  panel.appendLog(level, msg);
  control?.send({ type: 'log', level, msg: msg.slice(0, 4000), ...(data ? { data } : {}) });
}

window.addEventListener('error', (event) => log('error', `page error: ${event.message}`));
window.addEventListener('unhandledrejection', (event: PromiseRejectionEvent) =>
  log('error', `unhandled rejection: ${String(event.reason)}`),
);

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function toAgentStats(s: PanelTrackStats | undefined): TrackStats | undefined {
  if (!s) return undefined;
  const { framesSkipped: _skipped, ...rest } = s;
  return rest;
}

const hooks: ViewerSessionHooks = {
  presign: (endpoint, query, date) => {
    if (!control) return Promise.reject(new Error('no control channel'));
    return control.presign(endpoint, query, date);
  },
  state: (state) => {
    status.state = state;
    panel.showState(state);
    control?.send({ type: 'state', ...state });
  },
  signalingEvent: (event, detail) =>
    control?.send({ type: 'signaling-event', event, ...(detail ? { detail } : {}) }),
  log,
  counters: (c) => collector.updateCounters(c),
};

/** Runs viewer sessions for as long as this control channel lives. */
async function runSessions(channel: ControlChannel): Promise<void> {
  let attempt = 0;
  let iceOverride: IceServer[] | undefined;
  channel.onMessage((msg) => {
    if (msg.type === 'stop') {
      status.stopped = true;
      session?.close('the agent asked to stop');
    } else if (msg.type === 'reconnect') {
      iceOverride = msg.iceServers;
      session?.close(`the agent asked to reconnect: ${msg.reason}`);
    }
  });
  void channel.closed.then(() => session?.close('control channel closed'));
  while (channel.isOpen && !status.stopped) {
    let config;
    try {
      config = await channel.requestConfig();
    } catch (err) {
      log('error', `no viewer config: ${String(err)}`);
      await sleep(reconnectDelayMs(++attempt));
      continue;
    }
    if (iceOverride) config = { ...config, iceServers: iceOverride };
    iceOverride = undefined;
    collector.reset();
    session = new ViewerSession(config, hooks);
    status.sessions++;
    session.start();
    const end = await session.ended;
    session = undefined;
    if (!channel.isOpen || status.stopped) break;
    attempt = end.connected ? 1 : attempt + 1;
    const delay = reconnectDelayMs(attempt);
    log('warn', `viewer session ended (${end.reason}); reconnecting in ${delay} ms`, { attempt });
    await sleep(delay);
  }
}

async function main(): Promise<void> {
  const token = new URLSearchParams(location.hash.slice(1)).get('token');
  if (!token) {
    panel.appendLog('error', 'no #token=… in the page URL: this page is opened by the agent');
    return;
  }
  setInterval(() => {
    collector
      .collect(session?.peerConnection)
      .then((tracks) => {
        status.tracks = tracks;
        panel.showTracks(tracks);
        const video = toAgentStats(tracks.video);
        const audio = toAgentStats(tracks.audio);
        if (video || audio)
          control?.send({ type: 'stats', ...(video ? { video } : {}), ...(audio ? { audio } : {}) });
      })
      .catch((err: unknown) => log('warn', `getStats failed: ${String(err)}`));
  }, STATS_INTERVAL_MS);

  let attempt = 0;
  while (!status.stopped) {
    const channel = new ControlChannel(`ws://${location.host}/control?token=${encodeURIComponent(token)}`);
    try {
      await channel.opened;
    } catch {
      const delay = reconnectDelayMs(++attempt);
      panel.appendLog('warn', `agent control channel unavailable; retrying in ${delay} ms`);
      await sleep(delay);
      continue;
    }
    attempt = 0;
    control = channel;
    log('info', 'control channel open');
    await runSessions(channel);
    channel.close();
    await channel.closed;
    control = undefined;
  }
  panel.appendLog('info', 'stopped');
}

void main();
