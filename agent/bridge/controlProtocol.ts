/**
 * JSON messages on the control WebSocket between the viewer page (main thread) and the agent:
 * `ws://127.0.0.1:<port>/control?token=<token>`. Types only: the page imports them as types, and the agent
 * validates every inbound message with zod (`controlSchema.ts`) before trusting it.
 *
 * The frame WebSockets (`/frames?token=…&kind=video|audio`) carry binary frames (`wire.ts`) from the
 * transform workers; the agent may send `{"type":"request-keyframe"}` back on the video one.
 */

/** An ICE server as RTCPeerConnection takes it. */
export interface IceServer {
  urls: string[];
  username?: string;
  credential?: string;
}

/** Everything the page needs to connect, sent by the agent once the page says hello. No credentials. */
export interface ViewerConfig {
  session: string;
  channelARN: string;
  /** The WSS endpoint for the VIEWER role (ws:// for the local emulator). */
  channelEndpoint: string;
  region: string;
  clientId: string;
  iceServers: IceServer[];
  keyframeIntervalMs: number;
  /** Base URL of the frame WebSocket, token included; the worker appends `&kind=…`. */
  frameUrl: string;
  /**
   * Age at which the page replaces its signaling socket (a new one opens before the old one closes), below
   * KVS's 1-hour connection limit; e.g. 50 minutes. Default 50 minutes.
   */
  signalingMaxAgeMs?: number;
}

export type AgentToPage =
  | ({ type: 'config' } & ViewerConfig)
  | { type: 'presigned'; id: number; url: string }
  | { type: 'presign-failed'; id: number; message: string }
  /**
   * A new viewer session now (new peer connection and offer, no backoff), with a fresh config; e.g. the
   * agent's media watchdog saw no media. `iceServers`, when given, replace the config's.
   */
  | { type: 'reconnect'; reason: string; iceServers?: IceServer[] }
  | { type: 'stop' }
  | ({ type: 'recording' } & RecordingStatus);

/** How a kvssink fragment was acknowledged (PIC's FRAGMENT_ACK_TYPE names). */
export type FragmentAck = 'buffering' | 'received' | 'persisted' | 'error' | 'idle' | 'undefined';

/**
 * What the agent is recording, for the page's panel: sent when it changes (throttled) and after every hello.
 * Names only (a file's base name, the stream's name): never a path, URL or credential. Times are epoch ms.
 */
export interface RecordingStatus {
  sink: 'file' | 'kvssink';
  state: 'waiting-for-key-frame' | 'starting' | 'running' | 'restarting' | 'stopped';
  /** Runs (files, kvssink sessions) started so far; the current one is the last. */
  runs: number;
  restarts: number;
  /** The run being written, once its GStreamer is up. */
  current?: { number: number; name: string; size: string; startedAtMs: number };
  /** The last run that finished (file segment written, kvssink session ended). */
  last?: { number: number; name: string; endedAtMs: number; videoFrames: number };
  /** kvssink: acknowledgements since the agent started, and the latest one. */
  fragments?: {
    received: number;
    persisted: number;
    errors: number;
    last?: { ack: FragmentAck; timecode: number; atMs: number };
  };
}

export type SignalingState = 'connecting' | 'open' | 'closed';

/**
 * Whether the master answered the current offer: `none` before an offer went out (signaling not open yet),
 * `waiting` while an offer is unanswered (the page keeps one in the channel's message queue), `answered`.
 */
export type MasterAnswerState = 'none' | 'waiting' | 'answered';

/** Running totals since the page loaded (they survive viewer sessions); all non-negative integers. */
export interface PageCounters {
  /** SDP offers sent, re-sends of an unanswered offer included. */
  offersSent: number;
  /** SDP answers dropped: older ones of a burst, or late ones after an answer was applied. */
  answersIgnored: number;
  /** ICE restarts (RECONNECT_ICE_SERVER, `disconnected`, a late answer). */
  iceRestarts: number;
  /** Planned signaling replacements (max age, GO_AWAY). */
  signalingRenewals: number;
  /** Signaling sockets that closed under the page and were reconnected. */
  signalingReconnects: number;
  /** Signaling messages dropped as invalid, unexpected or oversized (> 64 KiB). */
  signalingInvalid: number;
  /** Messages from the agent on a frame socket that were not valid JSON or not known. */
  frameSocketInvalid: number;
}

export interface TrackStats {
  codec: string;
  width: number;
  height: number;
  fps: number;
  bitrateKbps: number;
  framesForwarded: number;
  keyFrames: number;
  keyFrameRequests: number;
}

/** A log line from the page or a worker, forwarded into the agent's log. */
export interface PageLog {
  type: 'log';
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  data?: Record<string, unknown>;
}

export type PageToAgent =
  | { type: 'hello'; userAgent: string }
  | { type: 'presign'; id: number; endpoint: string; queryParams: Record<string, string>; date?: number }
  | {
      type: 'state';
      signaling: SignalingState;
      peer: string;
      ice: string;
      master: MasterAnswerState;
    }
  /**
   * Every second from the page's main thread: the agent declares the page hung when these stop.
   * `sessions`: viewer sessions started since the page loaded; `uptimeMs`: since the page loaded.
   * `masterWaitingMs`: how long the current offer has been unanswered (0 unless `master` is `waiting`), so
   * readiness can say "master not answering".
   */
  | {
      type: 'heartbeat';
      sessions: number;
      uptimeMs: number;
      master: MasterAnswerState;
      masterWaitingMs: number;
      counters: PageCounters;
    }
  /**
   * RECONNECT_ICE_SERVER: the page wants fresh ICE servers (GetIceServerConfig) to restart ICE on the live
   * call. The agent answers with a `config` message (as for `hello`); the page uses its `iceServers`.
   */
  | { type: 'ice-servers'; reason: string }
  | { type: 'stats'; video?: TrackStats; audio?: TrackStats }
  /** GO_AWAY / RECONNECT_ICE_SERVER / STATUS_RESPONSE seen on the signaling channel. */
  | {
      type: 'signaling-event';
      event: 'go-away' | 'reconnect-ice-server' | 'status-response';
      detail?: string;
    }
  | PageLog;
