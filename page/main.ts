/**
 * The agent's viewer page. It learns everything from the agent over the control channel (never an AWS
 * credential), joins the signaling channel as a VIEWER and keeps a viewer session alive: a new session after
 * any failure, on the project's one retry policy (agent/policy/backoff.ts). It says it is alive with a
 * heartbeat every second.
 */
import type {
  IceServer,
  MasterAnswerState,
  PageCounters,
  RecordingStatus,
  TrackStats,
} from '../agent/bridge/controlProtocol.js';
import type { TrackKind } from '../agent/bridge/wire.js';
import { RetryStreak, retryPolicy } from '../agent/policy/backoff.js';
import { readAudioLevel } from './audioMeter.js';
import { ControlChannel } from './controlChannel.js';
import { takePageParams } from './pageParams.js';
import { parseRecordingStatus } from './recordingStatus.js';
import { installSignalingTap } from './signalingTap.js';
import { StatusPanel } from './statusPanel.js';
import { TrackStatsCollector, type PanelTrackStats } from './trackStats.js';
import { VideoView } from './videoView.js';
import {
  ViewerSession,
  type LogLevel,
  type SessionEnd,
  type SessionState,
  type ViewerSessionHooks,
} from './viewerSession.js';

const STATS_INTERVAL_MS = 2_000;
/** Headed: a person watches the sparklines, and the meter must follow speech. */
const HEADED_STATS_INTERVAL_MS = 1_000;
const AUDIO_LEVEL_INTERVAL_MS = 200;
const HEARTBEAT_INTERVAL_MS = 1_000;
/** An offer unanswered this long is worth a warning ("master not answering"), repeated at this interval. */
const MASTER_WAIT_WARN_AFTER_MS = 10_000;
const MASTER_WAIT_WARN_EVERY_MS = 60_000;

/** Read by tests and handy in DevTools. */
interface ViewerStatus {
  state: SessionState;
  tracks: Partial<Record<TrackKind, PanelTrackStats>>;
  sessions: number;
  stopped: boolean;
  counters: PageCounters;
  heartbeats: number;
  headed: boolean;
  /** The agent's latest `recording` message, once one came. */
  recording?: RecordingStatus;
  /** Headed only: the last inbound-rtp audioLevel read for the meter. */
  audioLevel?: number;
  /** `recording` messages that failed validation. */
  recordingInvalid: number;
}

declare global {
  interface Window {
    viewerStatus: ViewerStatus;
  }
}

installSignalingTap();

const pageParams = takePageParams();
/** Set by the agent when Chromium shows its window (`--headed`): only then is the call rendered. */
const headed = pageParams.get('headed') === '1';
const video = headed ? new VideoView() : undefined;
const panel = new StatusPanel(document.querySelector<HTMLElement>('#app') ?? document.body, {
  ...(video ? { video } : {}),
});
const status: ViewerStatus = {
  state: { signaling: 'closed', peer: 'new', ice: 'new', master: 'none' },
  tracks: {},
  sessions: 0,
  stopped: false,
  counters: {
    offersSent: 0,
    answersIgnored: 0,
    iceRestarts: 0,
    signalingRenewals: 0,
    signalingReconnects: 0,
    signalingInvalid: 0,
    frameSocketInvalid: 0,
  },
  heartbeats: 0,
  headed,
  recordingInvalid: 0,
};
window.viewerStatus = status;
const collector = new TrackStatsCollector();
let control: ControlChannel | undefined;
let session: ViewerSession | undefined;
/** When the master stopped answering (survives session renewals), and when we last said so. */
let masterWaitingSince: number | undefined;
let masterWaitWarnedAt: number | undefined;
const rejectLogCounts = new Map<string, number>();

function log(level: LogLevel, msg: string, data?: Record<string, unknown>): void {
  panel.appendLog(level, msg);
  control?.send({ type: 'log', level, msg: msg.slice(0, 4000), ...(data ? { data } : {}) });
}

window.addEventListener('error', (event) => log('error', `page error: ${event.message}`));
window.addEventListener('unhandledrejection', (event: PromiseRejectionEvent) =>
  log('error', `unhandled rejection: ${String(event.reason)}`),
);

/** A sleep that `wake()` cuts short (the agent asked for a new session now). */
let wakeSleeper: (() => void) | undefined;
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      wakeSleeper = undefined;
      resolve();
    }
    wakeSleeper = done;
  });
}

function toAgentStats(s: PanelTrackStats | undefined): TrackStats | undefined {
  if (!s) return undefined;
  const { framesSkipped: _skipped, keyFrameIntervalMs: _interval, ...rest } = s;
  return rest;
}

function onMasterState(master: MasterAnswerState): void {
  if (master === 'waiting') masterWaitingSince ??= performance.now();
  else if (master === 'answered') {
    if (masterWaitWarnedAt !== undefined) log('info', 'the master answered');
    masterWaitingSince = undefined;
    masterWaitWarnedAt = undefined;
  }
}

function masterWaitingMs(now: number): number {
  return status.state.master === 'waiting' && masterWaitingSince !== undefined
    ? Math.round(now - masterWaitingSince)
    : 0;
}

const hooks: ViewerSessionHooks = {
  presign: (endpoint, query, date) => {
    if (!control) return Promise.reject(new Error('no control channel'));
    return control.presign(endpoint, query, date);
  },
  state: (state) => {
    status.state = state;
    onMasterState(state.master);
    panel.showState(state);
    control?.send({ type: 'state', ...state });
  },
  signalingEvent: (event, detail) =>
    control?.send({ type: 'signaling-event', event, ...(detail ? { detail } : {}) }),
  log,
  counters: (c) => collector.updateCounters(c),
  count: (counter, by = 1) => {
    status.counters[counter] += by;
  },
  rejected: (reason) => {
    status.counters.signalingInvalid++;
    // The first few of each reason, then every 100th: a flood must not flood the log too.
    const n = (rejectLogCounts.get(reason) ?? 0) + 1;
    rejectLogCounts.set(reason, n);
    if (n <= 5 || n % 100 === 0) log('warn', `signaling message dropped: ${reason}`, { reason, count: n });
  },
  requestIceServers: (reason) => {
    if (!control) return Promise.reject(new Error('no control channel'));
    return control.requestIceServers(reason);
  },
};

/** Runs viewer sessions for as long as this control channel lives. */
async function runSessions(channel: ControlChannel): Promise<void> {
  const streak = new RetryStreak(retryPolicy('viewerSession'));
  let iceOverride: IceServer[] | undefined;
  /** Set by the agent's `reconnect` (an object: it changes while the loop awaits). */
  const asked = { immediate: false };
  let lastEnd: SessionEnd | undefined;
  channel.onMessage((msg) => {
    if (msg.type === 'stop') {
      status.stopped = true;
      session?.close('the agent asked to stop');
      wakeSleeper?.();
    } else if (msg.type === 'recording') {
      const recording = parseRecordingStatus(msg);
      if (recording) {
        status.recording = recording;
        panel.showRecording(recording);
      } else {
        const n = ++status.recordingInvalid;
        if (n <= 5 || n % 100 === 0) log('warn', 'invalid recording status from the agent', { count: n });
      }
    } else if (msg.type === 'reconnect') {
      // Escalation from the agent (e.g. its media watchdog): a new session now, no backoff.
      iceOverride = msg.iceServers;
      asked.immediate = true;
      session?.close(`the agent asked to reconnect: ${msg.reason}`);
      wakeSleeper?.();
    }
  });
  void channel.closed.then(() => {
    session?.close('control channel closed');
    wakeSleeper?.();
  });
  while (channel.isOpen && !status.stopped) {
    let config;
    try {
      config = await channel.requestConfig();
    } catch (err) {
      log('error', `no viewer config: ${String(err)}`);
      await sleep(streak.failed() ?? retryPolicy('viewerSession').options.maxMs);
      continue;
    }
    if (!channel.isOpen || status.stopped) break;
    if (iceOverride) config = { ...config, iceServers: iceOverride };
    iceOverride = undefined;
    // A request that came while this session was being set up is answered by this session itself.
    asked.immediate = false;
    collector.reset();
    panel.clearTracks();
    session = new ViewerSession(config, hooks, { earlierOffersQueued: lastEnd?.unanswered ?? false });
    status.sessions++;
    session.start();
    video?.attach(session.peerConnection);
    const end = await session.ended;
    lastEnd = end;
    session = undefined;
    video?.detach();
    if (!channel.isOpen || status.stopped) break;
    if (asked.immediate || end.immediate) {
      streak.succeeded();
      log('info', `viewer session ended (${end.reason}); a new one now`);
      continue;
    }
    // After a call that worked, the next session starts right away (attempt 1 of a fresh streak).
    if (end.connected) streak.succeeded();
    const delay = streak.failed() ?? retryPolicy('viewerSession').options.maxMs;
    log('warn', `viewer session ended (${end.reason}); reconnecting in ${delay} ms`, {
      attempt: streak.attempts,
    });
    await sleep(delay);
  }
}

function heartbeat(): void {
  const now = performance.now();
  const waitingMs = masterWaitingMs(now);
  if (
    waitingMs >= MASTER_WAIT_WARN_AFTER_MS &&
    (masterWaitWarnedAt === undefined || now - masterWaitWarnedAt >= MASTER_WAIT_WARN_EVERY_MS)
  ) {
    masterWaitWarnedAt = now;
    log('warn', `the master is not answering: offer unanswered for ${Math.round(waitingMs / 1000)} s`, {
      waitingMs,
      offersSent: status.counters.offersSent,
    });
  }
  const sent = control?.send({
    type: 'heartbeat',
    sessions: status.sessions,
    uptimeMs: Math.round(now),
    master: status.state.master,
    masterWaitingMs: waitingMs,
    counters: { ...status.counters },
  });
  if (sent) status.heartbeats++;
}

async function main(): Promise<void> {
  const token = pageParams.get('token');
  if (!token) {
    panel.appendLog('error', 'no #token=… in the page URL: this page is opened by the agent');
    return;
  }
  // From the main thread on purpose: a hung main thread is what the agent must notice.
  setInterval(heartbeat, HEARTBEAT_INTERVAL_MS);
  setInterval(
    () => {
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
    },
    headed ? HEADED_STATS_INTERVAL_MS : STATS_INTERVAL_MS,
  );
  if (headed) {
    setInterval(() => {
      readAudioLevel(session?.peerConnection).then(
        (level) => {
          if (level === undefined) delete status.audioLevel;
          else status.audioLevel = level;
          panel.audioMeter.show(level);
        },
        () => panel.audioMeter.show(undefined),
      );
    }, AUDIO_LEVEL_INTERVAL_MS);
  }

  const streak = new RetryStreak(retryPolicy('controlSocket'));
  while (!status.stopped) {
    const channel = new ControlChannel(`ws://${location.host}/control?token=${encodeURIComponent(token)}`);
    try {
      await channel.opened;
    } catch {
      const delay = streak.failed() ?? retryPolicy('controlSocket').options.maxMs;
      panel.appendLog('warn', `agent control channel unavailable; retrying in ${delay} ms`);
      await sleep(delay);
      continue;
    }
    streak.succeeded();
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
