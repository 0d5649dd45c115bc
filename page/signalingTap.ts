/**
 * Lets the page see raw signaling messages. The KVS JS SDK silently drops GO_AWAY and RECONNECT_ICE_SERVER
 * (it only emits offers, answers, candidates and status responses) and creates its socket with the global
 * `WebSocket`, so we put an observing subclass in its place. Our own sockets to the agent are not observed.
 */

export type SignalingMessageType =
  'SDP_OFFER' | 'SDP_ANSWER' | 'ICE_CANDIDATE' | 'GO_AWAY' | 'RECONNECT_ICE_SERVER' | 'STATUS_RESPONSE';

export interface RawSignalingMessage {
  messageType: string;
  senderClientId?: string;
  statusResponse?: Record<string, unknown>;
}

export type SignalingObserver = (message: RawSignalingMessage) => void;

let observer: SignalingObserver | undefined;
let installed = false;

/** The observer for sockets created from now on (one signaling connection at a time). */
export function observeSignaling(next: SignalingObserver | undefined): void {
  observer = next;
}

export function installSignalingTap(): void {
  if (installed) return;
  installed = true;
  const Native = globalThis.WebSocket;
  const ownHost = globalThis.location?.host;
  class ObservedWebSocket extends Native {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols);
      const target = new URL(this.url);
      if (target.host === ownHost) return;
      // Bound at creation: a late message from an old connection must not reach a newer session.
      const report = observer;
      if (!report) return;
      this.addEventListener('message', (event: MessageEvent) => {
        if (typeof event.data !== 'string') return;
        try {
          const parsed = JSON.parse(event.data) as Partial<RawSignalingMessage>;
          if (typeof parsed.messageType === 'string') report(parsed as RawSignalingMessage);
        } catch {
          // Not JSON: the SDK ignores it too.
        }
      });
    }
  }
  globalThis.WebSocket = ObservedWebSocket;
}
