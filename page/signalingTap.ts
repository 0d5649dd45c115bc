/**
 * Lets the page read the signaling socket itself. The KVS JS SDK silently drops GO_AWAY and
 * RECONNECT_ICE_SERVER, hands any base64 JSON on as an answer, and creates its socket with the global
 * `WebSocket`; so we put an observing subclass in its place. Every message is parsed and validated once
 * (`signalingMessages.ts`); invalid ones are reported and never reach the SDK's own listener.
 */
import { parseSignalingMessage, type InboundSignaling } from './signalingMessages.js';

export interface SignalingSocketHandlers {
  message(message: InboundSignaling): void;
  invalid(reason: string): void;
}

/** Presigned URL → the handlers of the signaling client that asked for it. */
const expected = new Map<string, SignalingSocketHandlers>();
let installed = false;

/**
 * Binds handlers to the socket the SDK is about to open with this presigned URL (call it before handing
 * the URL to the SDK). A socket is bound to its own client at creation, so while an old and a new signaling
 * socket overlap (renewal, GO_AWAY), each one's messages reach the right client. Returns an unbind function
 * for a URL the SDK never used.
 */
export function expectSignalingSocket(url: string, handlers: SignalingSocketHandlers): () => void {
  expected.set(url, handlers);
  return () => {
    if (expected.get(url) === handlers) expected.delete(url);
  };
}

export function installSignalingTap(): void {
  if (installed) return;
  installed = true;
  const Native = globalThis.WebSocket;
  class ObservedWebSocket extends Native {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols);
      const handlers = expected.get(String(url));
      // Our own sockets to the agent, and anything not opened by a signaling client, are left alone.
      if (!handlers) return;
      expected.delete(String(url));
      // Added in the constructor, so it runs before the SDK's listener and can stop it.
      this.addEventListener('message', (event: MessageEvent) => {
        const result = parseSignalingMessage(event.data);
        if (!result.ok) {
          event.stopImmediatePropagation();
          handlers.invalid(result.reason);
          return;
        }
        handlers.message(result.message);
      });
    }
  }
  globalThis.WebSocket = ObservedWebSocket;
}
