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
}

export type AgentToPage =
  | ({ type: 'config' } & ViewerConfig)
  | { type: 'presigned'; id: number; url: string }
  | { type: 'presign-failed'; id: number; message: string }
  /** Reconnect signaling and peer connection (e.g. the agent refreshed ICE servers). */
  | { type: 'reconnect'; reason: string; iceServers?: IceServer[] }
  | { type: 'stop' };

export type SignalingState = 'connecting' | 'open' | 'closed';

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
    }
  | { type: 'stats'; video?: TrackStats; audio?: TrackStats }
  /** GO_AWAY / RECONNECT_ICE_SERVER / STATUS_RESPONSE seen on the signaling channel. */
  | {
      type: 'signaling-event';
      event: 'go-away' | 'reconnect-ice-server' | 'status-response';
      detail?: string;
    }
  | PageLog;
