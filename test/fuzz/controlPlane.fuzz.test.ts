import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, test } from '@playwright/test';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import express from 'express';
import { createControlPlaneRouter } from '../../emulator/controlPlane.js';
import { DEFAULT_EMULATOR_CREDENTIALS, startEmulator, type Emulator } from '../../emulator/server.js';
import { EmulatorState } from '../../emulator/state.js';
import { fuzzSeed, mutateObject, report, type Prng } from './fuzzSupport.js';

/**
 * Random and mutated bodies, properly SigV4-signed, into every control-plane operation of a running
 * emulator over raw HTTP: no 5xx (a 500 is an emulator bug), every answer a 200 or an AWS-shaped 4xx, and
 * the emulator still serving afterwards. A second run against the control-plane router alone checks that
 * every refusal is reported to `onRejected` (the emulator's `rejected.http.<type>` counters, once wired).
 */
const REQUESTS = 1500;

/** node:crypto behind smithy's checksum interface: the pure-JS SHA-256 made signing the slow part. */
class NodeSha256 {
  readonly #secret: string | Uint8Array | undefined;
  #hash: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#secret = secret === undefined || typeof secret === 'string' ? secret : bytes(secret);
    this.#hash = this.#fresh();
  }
  #fresh(): Hash | Hmac {
    return this.#secret === undefined ? createHash('sha256') : createHmac('sha256', this.#secret);
  }
  reset(): void {
    this.#hash = this.#fresh();
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.#hash.update(typeof data === 'string' ? data : bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#hash.digest()));
  }
}

function bytes(data: ArrayBuffer | ArrayBufferView): Uint8Array {
  return ArrayBuffer.isView(data)
    ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    : new Uint8Array(data);
}

/** Sequential requests stop at whichever comes first, so the test stays bounded on a loaded machine. */
const BUDGET_MS = 25_000;

const VALID: Record<string, (rng: Prng, arn: string) => Record<string, unknown>> = {
  '/createSignalingChannel': (rng) => ({
    ChannelName: `fuzz-${rng.int(0, 50)}`,
    ChannelType: 'SINGLE_MASTER',
    SingleMasterConfiguration: { MessageTtlSeconds: rng.int(5, 120) },
    Tags: [{ Key: 'k', Value: 'v' }],
  }),
  '/describeSignalingChannel': (_rng, arn) => ({ ChannelARN: arn }),
  '/listSignalingChannels': (rng) => ({
    MaxResults: rng.int(1, 20),
    ChannelNameCondition: { ComparisonOperator: 'BEGINS_WITH', ComparisonValue: 'fuzz' },
  }),
  '/deleteSignalingChannel': (_rng, arn) => ({ ChannelARN: `${arn}-missing` }),
  '/getSignalingChannelEndpoint': (_rng, arn) => ({
    ChannelARN: arn,
    SingleMasterChannelEndpointConfiguration: { Protocols: ['WSS', 'HTTPS'], Role: 'VIEWER' },
  }),
  '/describeMediaStorageConfiguration': (_rng, arn) => ({ ChannelARN: arn }),
  '/updateMediaStorageConfiguration': (_rng, arn) => ({
    ChannelARN: arn,
    MediaStorageConfiguration: { Status: 'DISABLED' },
  }),
  '/createStream': (rng) => ({ StreamName: `fuzz-${rng.int(0, 50)}`, DataRetentionInHours: rng.int(0, 48) }),
  '/describeStream': () => ({ StreamName: 'webrtc-kvs-agent-stream' }),
  '/listStreams': (rng) => ({ MaxResults: rng.int(1, 20), NextToken: String(rng.int(0, 5)) }),
  '/deleteStream': (rng) => ({ StreamARN: `arn:aws:kinesisvideo:x:1:stream/fuzz-${rng.int(0, 50)}/1` }),
  '/getDataEndpoint': () => ({ StreamName: 'webrtc-kvs-agent-stream', APIName: 'PUT_MEDIA' }),
  '/tagStream': (rng) => ({ StreamName: 'webrtc-kvs-agent-stream', Tags: { [`k${rng.int(0, 60)}`]: 'v' } }),
  '/v1/get-ice-server-config': (_rng, arn) => ({ ChannelARN: arn, ClientId: 'v1', Service: 'TURN' }),
};
const PATHS = Object.keys(VALID);

function body(rng: Prng, path: string, arn: string): string | Buffer {
  const valid = VALID[path]!(rng, arn);
  switch (rng.int(0, 6)) {
    case 0:
      return JSON.stringify(valid);
    case 1:
      return JSON.stringify(rng.json());
    case 2: {
      const s = JSON.stringify(valid);
      return s.slice(0, rng.int(0, s.length - 1));
    }
    case 3:
      return Buffer.from(rng.bytes(rng.int(0, 300)));
    case 4: // deep nesting
      return `${'['.repeat(rng.int(1, 5000))}${']'.repeat(rng.int(0, 5000))}`;
    default:
      return JSON.stringify(mutateObject(rng, valid));
  }
}

async function signedPost(signer: SignatureV4, base: string, path: string, payload: string | Buffer) {
  const url = new URL(base);
  const signed = await signer.sign(
    new HttpRequest({
      method: 'POST',
      protocol: 'http:',
      hostname: url.hostname,
      port: Number(url.port),
      path,
      headers: { host: url.host, 'content-type': 'application/json' },
      body: payload,
    }),
  );
  const res = await fetch(`${base}${path}`, { method: 'POST', headers: signed.headers, body: payload });
  return { status: res.status, type: res.headers.get('x-amzn-errortype'), text: await res.text() };
}

function expectWellFormed(r: { status: number; type: string | null; text: string }, what: string): void {
  expect(r.status, `${what}: ${r.text}`).toBeLessThan(500);
  if (r.status === 200) {
    expect(() => JSON.parse(r.text) as unknown, what).not.toThrow();
  } else {
    expect(r.status, what).toBeGreaterThanOrEqual(400);
    expect(r.type, what).toMatch(/Exception$/);
    expect(JSON.parse(r.text), what).toEqual({ message: expect.any(String) as unknown });
  }
}

test.describe('control plane fuzz', () => {
  let emulator: Emulator;

  test.afterEach(async () => {
    await emulator?.stop();
  });

  test('random signed bodies into every operation of a running emulator: no 5xx, AWS-shaped errors, still serving', async () => {
    test.setTimeout(60_000);
    const rng = fuzzSeed('control plane (emulator)');
    emulator = await startEmulator();
    const signer = new SignatureV4({
      service: 'kinesisvideo',
      region: emulator.region,
      credentials: DEFAULT_EMULATOR_CREDENTIALS,
      sha256: NodeSha256,
    });
    const described = await signedPost(
      signer,
      emulator.url,
      '/describeSignalingChannel',
      '{"ChannelName":"webrtc-kvs-agent-channel"}',
    );
    const arn = (JSON.parse(described.text) as { ChannelInfo: { ChannelARN: string } }).ChannelInfo
      .ChannelARN;
    const byStatus: Record<number, number> = {};
    const deadline = Date.now() + BUDGET_MS;
    let sent = 0;
    for (; sent < REQUESTS && Date.now() < deadline; sent++) {
      const path = rng.pick(PATHS);
      const payload = body(rng, path, arn);
      const r = await signedPost(signer, emulator.url, path, payload);
      expectWellFormed(r, `${path} ${String(payload).slice(0, 200)}`);
      byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
    }
    report(`control plane (emulator): ${sent} requests, by status`, byStatus);
    expect(sent).toBeGreaterThanOrEqual(100);
    expect(byStatus[200]).toBeGreaterThan(0);
    const stats = emulator.admin.stats();
    // Signatures were valid throughout: nothing was refused by SigV4, nothing crashed into a 500.
    expect(Object.keys(stats).filter((k) => k.startsWith('rejected.http.sigv4.'))).toEqual([]);
    expect(stats['rejected.http.InternalFailure']).toBeUndefined();
    const after = await signedPost(signer, emulator.url, '/listStreams', '{}');
    expect(after.status).toBe(200);
    expect(after.text).toContain('webrtc-kvs-agent-stream');
  });

  test('every refusal of the control-plane router is reported to onRejected', async () => {
    test.setTimeout(60_000);
    const rng = fuzzSeed('control plane (router)');
    const state = new EmulatorState('us-west-2', '123456789012');
    const arn = state.createChannel({ name: 'fuzz-channel' }).arn;
    state.createStream({ name: 'webrtc-kvs-agent-stream', dataRetentionInHours: 24 });
    const rejected: Record<string, number> = {};
    const app = express();
    app.use(express.raw({ type: () => true, limit: '1mb' }));
    app.use(
      createControlPlaneRouter({
        state,
        endpoints: () => ({ http: 'http://127.0.0.1:1', ws: 'ws://127.0.0.1:1' }),
        onChannelDeleted: () => {},
        onRejected: (type) => (rejected[type] = (rejected[type] ?? 0) + 1),
      }),
    );
    const server: Server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      let refused = 0;
      let sent = 0;
      const deadline = Date.now() + BUDGET_MS;
      const paths = PATHS.filter((p) => p !== '/v1/get-ice-server-config');
      for (; sent < REQUESTS && Date.now() < deadline; sent++) {
        const path = rng.pick(paths);
        const payload = body(rng, path, arn);
        const res = await fetch(`${base}${path}`, { method: 'POST', body: payload });
        const text = await res.text();
        expect(res.status, text).toBeLessThan(500);
        if (res.status !== 200) refused++;
      }
      report(`control plane (router): ${sent} requests, ${refused} refused, by type`, rejected);
      expect(sent).toBeGreaterThanOrEqual(100);
      expect(Object.values(rejected).reduce((a, b) => a + b, 0)).toBe(refused);
      expect(refused).toBeGreaterThan(0);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
