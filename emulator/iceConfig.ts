import type { Router } from 'express';
import { z } from 'zod';
import { operationRouter, validate } from './awsHttp.js';
import type { EmulatorState } from './state.js';

export interface IceServerEntry {
  Uris: string[];
  Username: string;
  Password: string;
  Ttl: number;
}

const request = z.object({
  ChannelARN: z.string().min(1).max(1024),
  ClientId: z
    .string()
    .regex(/^[a-zA-Z0-9_.-]{1,256}$/)
    .optional(),
  Service: z.literal('TURN').optional(),
  Username: z.string().min(1).max(256).optional(),
});

/**
 * Signaling HTTPS API (`kinesisvideo` signing name): GetIceServerConfig. STUN is never in the answer, as on
 * AWS; the configured TURN list is returned as is (default empty: loopback needs no relay).
 */
export function createIceConfigRouter(options: {
  state: EmulatorState;
  iceServers: IceServerEntry[];
}): Router {
  return operationRouter({
    '/v1/get-ice-server-config': (body) => {
      const input = validate(request, body);
      options.state.findChannel({ arn: input.ChannelARN });
      return { IceServerList: options.iceServers.map((s) => ({ ...s, Uris: [...s.Uris] })) };
    },
  });
}
