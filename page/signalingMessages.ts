/**
 * Parses and validates what arrives on the signaling socket. Everything here comes from the network (KVS
 * relays whatever a master sends), so nothing is trusted: a message is either one of the shapes below or a
 * rejection with a reason, and parsing never throws. The KVS JS SDK's own parser would hand any base64 JSON
 * to us as an "answer"; the session takes answers and candidates from here instead.
 */

/** Bigger messages are dropped unread: KVS itself limits payloads to 10 KB of base64. */
export const MAX_SIGNALING_MESSAGE_CHARS = 64 * 1024;
const MAX_SDP_CHARS = 48 * 1024;
const MAX_CANDIDATE_CHARS = 2048;
const MAX_ID_CHARS = 256;

/** RTCIceCandidateInit, spelled out so that this file needs no DOM types (it is unit-tested in Node). */
export interface IceCandidateInit {
  candidate: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
  usernameFragment?: string | null;
}

export type InboundSignaling =
  | { messageType: 'SDP_ANSWER'; sdp: string; senderClientId?: string }
  | { messageType: 'ICE_CANDIDATE'; candidate: IceCandidateInit; senderClientId?: string }
  | { messageType: 'GO_AWAY' }
  | { messageType: 'RECONNECT_ICE_SERVER' }
  | { messageType: 'STATUS_RESPONSE'; statusResponse: Record<string, unknown> };

export type ParseResult = { ok: true; message: InboundSignaling } | { ok: false; reason: string };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function reject(reason: string): ParseResult {
  return { ok: false, reason };
}

/** base64 → JSON, or undefined (atob throws on bad base64, JSON.parse on bad JSON). */
function decodePayload(payload: string): unknown {
  try {
    return JSON.parse(atob(payload)) as unknown;
  } catch {
    return undefined;
  }
}

function optionalString(value: unknown, max: number): value is string | null | undefined {
  return value === undefined || value === null || (typeof value === 'string' && value.length <= max);
}

function parseCandidate(value: unknown): IceCandidateInit | undefined {
  if (!isRecord(value)) return undefined;
  const { candidate, sdpMid, sdpMLineIndex, usernameFragment } = value;
  if (typeof candidate !== 'string' || candidate.length > MAX_CANDIDATE_CHARS) return undefined;
  if (!optionalString(sdpMid, MAX_ID_CHARS) || !optionalString(usernameFragment, MAX_ID_CHARS))
    return undefined;
  if (
    sdpMLineIndex !== undefined &&
    sdpMLineIndex !== null &&
    !(Number.isInteger(sdpMLineIndex) && (sdpMLineIndex as number) >= 0 && (sdpMLineIndex as number) < 1024)
  )
    return undefined;
  return {
    candidate,
    ...(sdpMid !== undefined ? { sdpMid } : {}),
    ...(sdpMLineIndex !== undefined ? { sdpMLineIndex: sdpMLineIndex as number | null } : {}),
    ...(usernameFragment !== undefined ? { usernameFragment } : {}),
  };
}

/** One raw WebSocket message from the signaling service. */
export function parseSignalingMessage(data: unknown): ParseResult {
  if (typeof data !== 'string') return reject('binary message');
  if (data.length > MAX_SIGNALING_MESSAGE_CHARS) return reject('oversized message');
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return reject('not JSON');
  }
  if (!isRecord(parsed)) return reject('not a JSON object');
  const { messageType, messagePayload, senderClientId, statusResponse } = parsed;
  if (typeof messageType !== 'string') return reject('no messageType');
  if (!optionalString(senderClientId, MAX_ID_CHARS)) return reject('bad senderClientId');
  const sender = typeof senderClientId === 'string' ? { senderClientId } : {};
  switch (messageType) {
    case 'GO_AWAY':
    case 'RECONNECT_ICE_SERVER':
      return { ok: true, message: { messageType } };
    case 'STATUS_RESPONSE':
      if (!isRecord(statusResponse)) return reject('STATUS_RESPONSE without statusResponse');
      return { ok: true, message: { messageType, statusResponse } };
    case 'SDP_ANSWER': {
      if (typeof messagePayload !== 'string') return reject('SDP_ANSWER without payload');
      const payload = decodePayload(messagePayload);
      if (!isRecord(payload) || payload.type !== 'answer')
        return reject('SDP_ANSWER payload is not an answer');
      const { sdp } = payload;
      if (typeof sdp !== 'string' || sdp.length === 0 || sdp.length > MAX_SDP_CHARS || !sdp.startsWith('v=0'))
        return reject('SDP_ANSWER without a usable sdp');
      return { ok: true, message: { messageType, sdp, ...sender } };
    }
    case 'ICE_CANDIDATE': {
      if (typeof messagePayload !== 'string') return reject('ICE_CANDIDATE without payload');
      const candidate = parseCandidate(decodePayload(messagePayload));
      if (!candidate) return reject('ICE_CANDIDATE payload is not a candidate');
      return { ok: true, message: { messageType, candidate, ...sender } };
    }
    case 'SDP_OFFER':
      // Only masters receive offers; a viewer never answers one.
      return reject('unexpected SDP_OFFER');
    default:
      return reject('unknown messageType');
  }
}
