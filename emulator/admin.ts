import { Router, type Request } from 'express';
import type { PutMediaFault, PutMediaFaults } from './media/putMediaFaults.js';
import type { ServiceMessageType, SignalingHub } from './signaling.js';
import type { Stats } from './stats.js';

/** Test and operator hooks into the emulator; embedded use gets this object, others the HTTP routes below. */
export interface EmulatorAdmin {
  /** Sends GO_AWAY or RECONNECT_ICE_SERVER to a connected client (clientId, or 'MASTER'). Returns false if not connected. */
  send(channelName: string, client: string, messageType: ServiceMessageType): boolean;
  /** Sends raw text to a connected client as if it came from the service (tests of malformed input). */
  inject(channelName: string, client: string, data: string): boolean;
  /** Drops a client's WebSocket abruptly (terminate). Returns false if not connected. */
  drop(channelName: string, client: string): boolean;
  /** Who is connected: { master: boolean, viewers: string[] } */
  connections(channelName: string): { master: boolean; viewers: string[] };
  /** Counters for tests: rejected requests by reason, routed messages, etc. */
  stats(): Record<string, number>;
  /** PutMedia refusing or stalling (see PutMediaFaults); `{ mode: 'none' }` is the real behaviour. */
  putMediaFault(fault?: PutMediaFault): PutMediaFault;
}

export function createAdmin(hub: SignalingHub, stats: Stats, faults: PutMediaFaults): EmulatorAdmin {
  return {
    putMediaFault: (fault) => {
      if (fault) faults.set(fault);
      return faults.fault;
    },
    send: (channelName, client, messageType) => hub.send(channelName, client, messageType),
    inject: (channelName, client, data) => hub.inject(channelName, client, data),
    drop: (channelName, client) => hub.drop(channelName, client),
    connections: (channelName) => hub.connections(channelName),
    stats: () => stats.snapshot(),
  };
}

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

/**
 * `/_emulator/...`: unsigned, so only answered to loopback peers.
 * POST channels/<name>/clients/<client>/{go-away|reconnect-ice-server|drop} → 200 `{ok:true}` or 404;
 * GET channels/<name>/connections; GET stats; GET|POST put-media/fault `{mode:'none'|'refuse'|'stall', status?}`.
 */
export function createAdminRouter(admin: EmulatorAdmin): Router {
  const router = Router();
  router.use((req, res, next) => {
    if (!isLoopback(req)) {
      res.status(403).json({ message: 'the admin API only answers loopback clients' });
      return;
    }
    next();
  });
  const actions: Record<string, (channel: string, client: string) => boolean> = {
    'go-away': (channel, client) => admin.send(channel, client, 'GO_AWAY'),
    'reconnect-ice-server': (channel, client) => admin.send(channel, client, 'RECONNECT_ICE_SERVER'),
    drop: (channel, client) => admin.drop(channel, client),
  };
  router.post('/channels/:channel/clients/:client/:action', (req, res) => {
    const action = actions[req.params.action];
    if (!action) {
      res.status(404).json({ message: `unknown admin action ${req.params.action}` });
      return;
    }
    const done = action(req.params.channel, req.params.client);
    res.status(done ? 200 : 404).json(done ? { ok: true } : { message: 'client not connected' });
  });
  router.get('/channels/:channel/connections', (req, res) => {
    res.json(admin.connections(req.params.channel));
  });
  router.get('/stats', (_req, res) => {
    res.json(admin.stats());
  });
  router.get('/put-media/fault', (_req, res) => {
    res.json(admin.putMediaFault());
  });
  router.post('/put-media/fault', (req, res) => {
    const body = (req.body ?? {}) as Partial<PutMediaFault>;
    try {
      res.json(
        admin.putMediaFault({ mode: body.mode ?? 'none', ...(body.status ? { status: body.status } : {}) }),
      );
    } catch (err) {
      res.status(400).json({ message: (err as Error).message });
    }
  });
  return router;
}

/** True for requests from this machine (the unsigned emulator routes answer only those). */
export function isLoopback(req: Request): boolean {
  return LOOPBACK.has(req.socket.remoteAddress ?? '');
}
