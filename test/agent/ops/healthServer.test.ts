import { connect } from 'node:net';
import { expect, test } from '@playwright/test';
import { HealthServer, standardReadiness, type ReadinessReport } from '../../../agent/ops/healthServer.js';
import { AgentMetrics } from '../../../agent/ops/metrics.js';

let server: HealthServer | undefined;

test.afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(overrides: Partial<ConstructorParameters<typeof HealthServer>[0]> = {}) {
  const metrics = new AgentMetrics({ defaultMetrics: false });
  let alive = true;
  let report: ReadinessReport | (() => ReadinessReport | Promise<ReadinessReport>) = {
    checks: { signaling: { ok: true }, peer: { ok: true }, media: { ok: true }, credentials: { ok: true } },
  };
  server = new HealthServer({
    port: 0,
    alive: () => alive,
    readiness: () => (typeof report === 'function' ? report() : report),
    metrics,
    ...overrides,
  });
  const address = await server.start();
  return {
    metrics,
    address,
    base: `http://127.0.0.1:${address.port}`,
    setAlive: (v: boolean) => (alive = v),
    setReport: (r: typeof report) => (report = r),
  };
}

test('listens on loopback by default; /healthz follows the alive provider', async () => {
  const h = await start();
  expect(h.address.host).toBe('127.0.0.1');
  expect(server!.url).toBe(h.base);
  const ok = await fetch(`${h.base}/healthz`);
  expect(ok.status).toBe(200);
  expect(ok.headers.get('cache-control')).toBe('no-store');
  h.setAlive(false);
  expect((await fetch(`${h.base}/healthz`)).status).toBe(503);
});

test('/readyz: 200 with all checks ok, 503 with reasons otherwise; provider failures are 503', async () => {
  const h = await start({ providerTimeoutMs: 200 });
  const ready = await fetch(`${h.base}/readyz`);
  expect(ready.status).toBe(200);
  expect(await ready.json()).toEqual({
    ready: true,
    checks: { signaling: true, peer: true, media: true, credentials: true },
    reasons: [],
  });

  h.setReport({
    checks: {
      signaling: { ok: true },
      peer: { ok: false, reason: 'peer connection failed' },
      media: {
        ok: false,
        reason: 'no media for 12 s; see wss://x/?X-Amz-Signature=abc&X-Amz-Credential=AKIA1',
      },
    },
  });
  const notReady = await fetch(`${h.base}/readyz`);
  expect(notReady.status).toBe(503);
  const body = (await notReady.json()) as { ready: boolean; checks: object; reasons: string[] };
  expect(body.ready).toBe(false);
  expect(body.checks).toEqual({ signaling: true, peer: false, media: false });
  expect(body.reasons[0]).toBe('peer: peer connection failed');
  expect(body.reasons[1]).not.toContain('abc');
  expect(body.reasons[1]).not.toContain('AKIA1');

  h.setReport(() => {
    throw new Error('state unavailable');
  });
  const thrown = await fetch(`${h.base}/readyz`);
  expect(thrown.status).toBe(503);
  expect(((await thrown.json()) as { reasons: string[] }).reasons[0]).toContain('state unavailable');

  h.setReport(() => new Promise<ReadinessReport>(() => {}));
  const hung = await fetch(`${h.base}/readyz`);
  expect(hung.status).toBe(503);
  expect(((await hung.json()) as { reasons: string[] }).reasons[0]).toContain('did not finish within 200 ms');

  h.setReport({ checks: {} });
  expect((await fetch(`${h.base}/readyz`)).status).toBe(503);
});

test('/metrics serves the registry; nothing else is served', async () => {
  const h = await start();
  h.metrics.channel('cam').frameAccepted('video', 10);
  const res = await fetch(`${h.base}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  expect(await res.text()).toContain('kvs_agent_frames_total{channel="cam",kind="video"} 1');
  expect((await fetch(`${h.base}/`)).status).toBe(404);
  expect((await fetch(`${h.base}/metrics/../etc/passwd`)).status).toBe(404);
  expect((await fetch(`${h.base}/healthz`, { method: 'POST' })).status).toBe(405);
  const head = await fetch(`${h.base}/healthz`, { method: 'HEAD' });
  expect(head.status).toBe(200);
  expect(await head.text()).toBe('');
  // Query strings do not change the route.
  expect((await fetch(`${h.base}/healthz?verbose=1`)).status).toBe(200);
});

test('start resolves only when listening, close is idempotent and frees the port', async () => {
  const h = await start();
  const first = server!.close();
  expect(server!.close()).toBe(first);
  await first;
  await expect(
    new Promise<void>((resolve, reject) => {
      const socket = connect(h.address.port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        reject(new Error('still listening'));
      });
      socket.once('error', () => resolve());
    }),
  ).resolves.toBeUndefined();
  // Never started: close still resolves.
  const idle = new HealthServer({
    port: 0,
    alive: () => true,
    readiness: () => ({ checks: {} }),
    metrics: h.metrics,
  });
  await idle.close();
});

test('a port in use rejects start', async () => {
  const h = await start();
  const second = new HealthServer({
    port: h.address.port,
    alive: () => true,
    readiness: () => ({ checks: {} }),
    metrics: h.metrics,
  });
  await expect(second.start()).rejects.toThrow(/EADDRINUSE/);
  await second.close();
});

test('standardReadiness: signaling, peer, media age and credential staleness', () => {
  const now = 1_000_000;
  const base = {
    now,
    signalingOpen: true,
    peerState: 'connected',
    lastMediaWrittenAtMs: now - 1000,
    mediaMaxAgeMs: 5000,
    credentialsExpireAtMs: now + 3_600_000,
  };
  const allOk = standardReadiness(base).checks;
  expect(Object.values(allOk).every((c) => c.ok)).toBe(true);
  expect(standardReadiness({ ...base, credentialsExpireAtMs: undefined }).checks.credentials!.ok).toBe(true);
  const bad = standardReadiness({
    ...base,
    signalingOpen: false,
    peerState: 'disconnected',
    lastMediaWrittenAtMs: now - 12_000,
    credentialsExpireAtMs: now + 30_000,
  }).checks;
  expect(bad.signaling).toEqual({ ok: false, reason: 'signaling socket not open' });
  expect(bad.peer).toEqual({ ok: false, reason: 'peer connection disconnected' });
  expect(bad.media).toEqual({ ok: false, reason: 'no media written for 12 s' });
  expect(bad.credentials!.ok).toBe(false);
  expect(standardReadiness({ ...base, lastMediaWrittenAtMs: undefined }).checks.media!.reason).toBe(
    'no media written yet',
  );
  expect(standardReadiness({ ...base, credentialsExpireAtMs: now - 5000 }).checks.credentials!.reason).toBe(
    'credentials expired 5 s ago',
  );
  expect(standardReadiness({ ...base, credentialsExpireAtMs: null }).checks.credentials!.ok).toBe(false);
});
