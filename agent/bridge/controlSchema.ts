import { z } from 'zod';
import type { PageToAgent } from './controlProtocol.js';

const trackStats = z.object({
  codec: z.string().max(100),
  width: z.number(),
  height: z.number(),
  fps: z.number(),
  bitrateKbps: z.number(),
  framesForwarded: z.number(),
  keyFrames: z.number(),
  keyFrameRequests: z.number(),
});

/** Validates what the page says; the page runs untrusted media and must not be able to confuse the agent. */
export const pageToAgentSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('hello'), userAgent: z.string().max(1000) }),
  z.object({
    type: z.literal('presign'),
    id: z.number().int(),
    endpoint: z.string().max(2048),
    queryParams: z.record(z.string().max(256), z.string().max(2048)),
    date: z.number().optional(),
  }),
  z.object({
    type: z.literal('state'),
    signaling: z.enum(['connecting', 'open', 'closed']),
    peer: z.string().max(50),
    ice: z.string().max(50),
  }),
  z.object({ type: z.literal('stats'), video: trackStats.optional(), audio: trackStats.optional() }),
  z.object({
    type: z.literal('signaling-event'),
    event: z.enum(['go-away', 'reconnect-ice-server', 'status-response']),
    detail: z.string().max(2000).optional(),
  }),
  z.object({
    type: z.literal('log'),
    level: z.enum(['debug', 'info', 'warn', 'error']),
    msg: z.string().max(4000),
    data: z.record(z.string(), z.unknown()).optional(),
  }),
]) satisfies z.ZodType<PageToAgent>;
