import { z } from 'zod';
import type { PageToAgent } from './controlProtocol.js';

/** Bounds for counters and durations from the page: non-negative integers a page could reach in years. */
const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const finite = z.number().finite();

const trackStats = z
  .object({
    codec: z.string().max(100),
    width: finite,
    height: finite,
    fps: finite,
    bitrateKbps: finite,
    framesForwarded: finite,
    keyFrames: finite,
    keyFrameRequests: finite,
  })
  .strict();

const masterAnswerState = z.enum(['none', 'waiting', 'answered']);

const pageCounters = z
  .object({
    offersSent: count,
    answersIgnored: count,
    iceRestarts: count,
    signalingRenewals: count,
    signalingReconnects: count,
    signalingInvalid: count,
    frameSocketInvalid: count,
  })
  .strict();

/**
 * Validates what the page says; the page runs untrusted media and must not be able to confuse the agent.
 * Strict: unknown fields are refused (and counted by the bridge), not silently passed on.
 */
export const pageToAgentSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('hello'), userAgent: z.string().max(1000) }).strict(),
  z
    .object({
      type: z.literal('presign'),
      id: z.number().int(),
      endpoint: z.string().max(2048),
      queryParams: z.record(z.string().max(256), z.string().max(2048)),
      date: z.number().optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal('state'),
      signaling: z.enum(['connecting', 'open', 'closed']),
      peer: z.string().max(50),
      ice: z.string().max(50),
      master: masterAnswerState,
    })
    .strict(),
  z
    .object({
      type: z.literal('heartbeat'),
      sessions: count,
      // Ten years of uptime is more than any page lives.
      uptimeMs: count.max(10 * 365 * 86_400_000),
      master: masterAnswerState,
      masterWaitingMs: count.max(10 * 365 * 86_400_000),
      counters: pageCounters,
    })
    .strict(),
  z.object({ type: z.literal('ice-servers'), reason: z.string().max(200) }).strict(),
  z.object({ type: z.literal('stats'), video: trackStats.optional(), audio: trackStats.optional() }).strict(),
  z
    .object({
      type: z.literal('signaling-event'),
      event: z.enum(['go-away', 'reconnect-ice-server', 'status-response']),
      detail: z.string().max(2000).optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal('log'),
      level: z.enum(['debug', 'info', 'warn', 'error']),
      msg: z.string().max(4000),
      data: z.record(z.string().max(100), z.unknown()).optional(),
    })
    .strict(),
]) satisfies z.ZodType<PageToAgent>;
