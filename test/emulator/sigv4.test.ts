import { createHash } from 'node:crypto';
import {
  AccessDeniedException,
  DescribeSignalingChannelCommand,
  KinesisVideoClient,
} from '@aws-sdk/client-kinesis-video';
import { Sha256 } from '@aws-crypto/sha256-js';
import { expect, test } from '@playwright/test';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { SigV4RequestSigner } from 'amazon-kinesis-video-streams-webrtc';
import { DEFAULT_EMULATOR_CREDENTIALS, startEmulator, type Emulator } from '../../emulator/server.js';
import { escapeUri, SigV4Verifier } from '../../emulator/sigv4.js';
import { handshakeStatus, wssEndpoint, wsRequestSigner } from './support.js';

/** Expected URLs from the KVS JS SDK's own `src/SigV4RequestSigner.spec.ts` (signed at 2019-12-01T00:00:00Z). */
const UPSTREAM = {
  credentials: {
    accessKeyId: 'AKIA4F7WJQR7FMMWMNXI',
    secretAccessKey: 'FakeSecretKey',
    sessionToken: 'FakeSessionToken',
  },
  withToken:
    'wss://kvs.awsamazon.com/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA4F7WJQR7FMMWMNXI%2F20191201%2Fus-west-2%2Fkinesisvideo%2Faws4_request&X-Amz-Date=20191201T000000Z&X-Amz-Expires=299&X-Amz-Security-Token=FakeSessionToken&X-Amz-Signature=fc268038be276315822b4f73eafd28ee3a5632a2a35fdb0a88db9a42b13d6c92&X-Amz-SignedHeaders=host&X-Amz-TestParam=test-param-value',
  withoutToken:
    'wss://kvs.awsamazon.com/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA4F7WJQR7FMMWMNXI%2F20191201%2Fus-west-2%2Fkinesisvideo%2Faws4_request&X-Amz-Date=20191201T000000Z&X-Amz-Expires=299&X-Amz-Signature=be1e78950d956a8a9a1997417099ddbd7455619f3d08c4ad20e1e272179ca695&X-Amz-SignedHeaders=host&X-Amz-TestParam=test-param-value',
  withPath:
    'wss://kvs.awsamazon.com/path/path/path?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA4F7WJQR7FMMWMNXI%2F20191201%2Fus-west-2%2Fkinesisvideo%2Faws4_request&X-Amz-Date=20191201T000000Z&X-Amz-Expires=299&X-Amz-Security-Token=FakeSessionToken&X-Amz-Signature=0bf3df6ca23d8d82f688e8dbfb90d69e74843d40038541b1721c545eef7612a4&X-Amz-SignedHeaders=host&X-Amz-TestParam=test-param-value',
  firehose:
    'wss://kvs.awsamazon.com/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA4F7WJQR7FMMWMNXI%2F20191201%2Fus-west-2%2Ffirehose%2Faws4_request&X-Amz-Date=20191201T000000Z&X-Amz-Expires=299&X-Amz-Security-Token=FakeSessionToken&X-Amz-Signature=f15308513d21a381d38b7607a0439f25fc2e6c9f5ff56a48c1664b486e6234d5&X-Amz-SignedHeaders=host&X-Amz-TestParam=test-param-value',
};

function upstreamVerifier(
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
  nowIso = '2019-12-01T00:01:00Z',
) {
  return new SigV4Verifier({
    region: 'us-west-2',
    service: 'kinesisvideo',
    credentials: [credentials],
    now: () => Date.parse(nowIso),
  });
}

const asReceived = (signedUrl: string) => {
  const u = new URL(signedUrl);
  return { method: 'GET', url: `${u.pathname}${u.search}`, rawHeaders: ['Host', u.host] };
};

test.describe('verifier against the upstream JS SDK vectors', () => {
  test('accepts the exact URLs the KVS JS SDK test-suite expects', () => {
    const { sessionToken: _t, ...noToken } = UPSTREAM.credentials;
    expect(upstreamVerifier(UPSTREAM.credentials).verify(asReceived(UPSTREAM.withToken))).toMatchObject({
      ok: true,
      accessKeyId: 'AKIA4F7WJQR7FMMWMNXI',
    });
    expect(upstreamVerifier(noToken).verify(asReceived(UPSTREAM.withoutToken)).ok).toBe(true);
    expect(upstreamVerifier(UPSTREAM.credentials).verify(asReceived(UPSTREAM.withPath)).ok).toBe(true);
  });

  test('refuses altered, expired, mis-scoped and token-less variants', () => {
    const v = upstreamVerifier(UPSTREAM.credentials);
    const reason = (url: string, verifier = v, headers?: string[]) => {
      const r = verifier.verify({ ...asReceived(url), ...(headers ? { rawHeaders: headers } : {}) });
      return r.ok ? 'ok' : r.reason;
    };
    expect(reason(UPSTREAM.withToken.replace('test-param-value', 'test-param-valuX'))).toBe('bad-signature');
    expect(reason(UPSTREAM.withToken.replace('/?', '/other?'))).toBe('bad-signature');
    expect(reason(UPSTREAM.withToken, v, ['Host', 'kvs.awsamazon.com:443'])).toBe('bad-signature');
    expect(reason(UPSTREAM.withToken.replace('fc268038', 'fc268039'))).toBe('bad-signature');
    expect(reason(UPSTREAM.firehose)).toBe('wrong-service');
    expect(reason(UPSTREAM.withToken, upstreamVerifier(UPSTREAM.credentials, '2019-12-01T00:05:00Z'))).toBe(
      'presign-expired',
    );
    expect(reason(UPSTREAM.withToken, upstreamVerifier(UPSTREAM.credentials, '2019-11-30T23:50:00Z'))).toBe(
      'clock-skew',
    );
    expect(reason(UPSTREAM.withoutToken)).toBe('missing-token');
    expect(
      reason(UPSTREAM.withToken, upstreamVerifier({ ...UPSTREAM.credentials, secretAccessKey: 'Other' })),
    ).toBe('bad-signature');
    expect(
      reason(UPSTREAM.withToken, upstreamVerifier({ ...UPSTREAM.credentials, accessKeyId: 'AKIAOTHER' })),
    ).toBe('unknown-key');
    expect(
      reason(UPSTREAM.withToken, upstreamVerifier({ ...UPSTREAM.credentials, sessionToken: 'Other' })),
    ).toBe('wrong-token');
    const wrongRegion = new SigV4Verifier({
      region: 'eu-west-1',
      service: 'kinesisvideo',
      credentials: [UPSTREAM.credentials],
      now: () => Date.parse('2019-12-01T00:01:00Z'),
    });
    expect(reason(UPSTREAM.withToken, wrongRegion)).toBe('wrong-region');
  });
});

test.describe('payload hash and query decoding', () => {
  const credentials = { accessKeyId: 'AKIAUNITTEST00000001', secretAccessKey: 'unit-secret' };
  const now = Date.parse('2026-01-01T00:00:00Z');
  const verifier = () =>
    new SigV4Verifier({
      region: 'us-west-2',
      service: 'kinesisvideo',
      credentials: [credentials],
      now: () => now,
    });
  const signer = new SignatureV4({
    service: 'kinesisvideo',
    region: 'us-west-2',
    credentials,
    sha256: Sha256,
  });

  /** Signs a POST whose `x-amz-content-sha256` is `claimed` (smithy signs a given header value as is). */
  async function received(body: string, claimed?: string, sentBody = body) {
    const signed = await signer.sign(
      new HttpRequest({
        method: 'POST',
        protocol: 'https:',
        hostname: 'kinesisvideo.us-west-2.amazonaws.com',
        path: '/describeSignalingChannel',
        headers: {
          host: 'kinesisvideo.us-west-2.amazonaws.com',
          'content-type': 'application/json',
          ...(claimed !== undefined ? { 'x-amz-content-sha256': claimed } : {}),
        },
        body,
      }),
      { signingDate: new Date(now) },
    );
    return {
      method: 'POST',
      url: '/describeSignalingChannel',
      rawHeaders: Object.entries(signed.headers).flat(),
      body: Buffer.from(sentBody),
    };
  }
  const reason = (r: ReturnType<SigV4Verifier['verify']>) => (r.ok ? 'ok' : r.reason);

  test('a non-hex x-amz-content-sha256 is refused unless it is one of the named AWS values', async () => {
    const body = '{"ChannelName":"c"}';
    const v = verifier();
    expect(reason(v.verify(await received(body)))).toBe('ok');
    for (const bogus of ['not-a-hash', 'unsigned-payload', 'UNSIGNED_PAYLOAD', 'e3b0', 'x'.repeat(64), '']) {
      expect(reason(v.verify(await received(body, bogus))), JSON.stringify(bogus)).toBe('bad-content-sha256');
    }
    for (const named of [
      'UNSIGNED-PAYLOAD',
      'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
      'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
      'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER',
      'STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD',
      'STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER',
      'STREAMING-AWS4-HMAC-SHA256-EVENTS',
    ]) {
      expect(reason(v.verify(await received(body, named, 'a different body'))), named).toBe('ok');
    }
    // A hex digest must be the body's, in either case.
    const hex = createHash('sha256').update(body).digest('hex');
    expect(reason(v.verify(await received(body, hex.toUpperCase())))).toBe('ok');
    expect(reason(v.verify(await received(body, hex, `${body} `)))).toBe('body-hash-mismatch');
    expect(reason(v.verify(await received(body, hex.toUpperCase(), `${body} `)))).toBe('body-hash-mismatch');
  });

  test('the verified query is reported decoded exactly as it was verified', async () => {
    const presigned = await signer.presign(
      new HttpRequest({
        method: 'GET',
        protocol: 'wss:',
        hostname: 'kvs.example',
        path: '/',
        query: { 'X-Amz-ChannelARN': 'arn:aws:x/y', 'X-Amz-ClientId': 'a+b c' },
        headers: { host: 'kvs.example' },
      }),
      { expiresIn: 299, signingDate: new Date(now) },
    );
    const qs = Object.entries(presigned.query as Record<string, string>)
      .map(([k, v]) => `${escapeUri(k)}=${escapeUri(v)}`)
      .join('&');
    const r = verifier().verify({ method: 'GET', url: `/?${qs}`, rawHeaders: ['Host', 'kvs.example'] });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.path).toBe('/');
    expect(new Map(r.query).get('X-Amz-ClientId')).toBe('a+b c');
    expect(new Map(r.query).get('X-Amz-ChannelARN')).toBe('arn:aws:x/y');
    // URLSearchParams would read a literal '+' as a space; the verifier (and so the emulator) never does.
    const literalPlus = verifier().verify({
      method: 'GET',
      url: `/?${qs.replace('a%2Bb', 'a+b')}`,
      rawHeaders: ['Host', 'kvs.example'],
    });
    expect(literalPlus.ok && new Map(literalPlus.query).get('X-Amz-ClientId')).toBe('a+b c');
    expect(reason(verifier().verify({ method: 'GET', url: '/?X-Amz-Signature=%zz', rawHeaders: [] }))).toBe(
      'malformed',
    );
  });
});

test.describe('against a running emulator', () => {
  let emulator: Emulator;
  let channelARN: string;
  let viewerEndpoint: string;

  test.beforeEach(async () => {
    emulator = await startEmulator({
      credentials: [
        { ...DEFAULT_EMULATOR_CREDENTIALS },
        {
          accessKeyId: 'ASIATEMPORARY0000001',
          secretAccessKey: 'temp-secret',
          sessionToken: 'temp-token',
          expiresAt: new Date(Date.now() + 3_600_000),
        },
        {
          accessKeyId: 'ASIAEXPIRED00000001',
          secretAccessKey: 'old-secret',
          sessionToken: 'old-token',
          expiresAt: new Date(Date.now() - 1000),
        },
      ],
    });
    const kvs = new KinesisVideoClient({
      region: emulator.region,
      endpoint: emulator.url,
      credentials: DEFAULT_EMULATOR_CREDENTIALS,
    });
    const out = await kvs.send(
      new DescribeSignalingChannelCommand({ ChannelName: 'webrtc-kvs-agent-channel' }),
    );
    kvs.destroy();
    channelARN = out.ChannelInfo!.ChannelARN!;
    viewerEndpoint = await wssEndpoint(emulator, channelARN, 'VIEWER');
  });

  test.afterEach(async () => {
    await emulator.stop();
  });

  const describeWith = async (
    credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
    region?: string,
  ) => {
    const kvs = new KinesisVideoClient({
      region: region ?? emulator.region,
      endpoint: emulator.url,
      credentials,
      maxAttempts: 1,
    });
    try {
      return await kvs.send(new DescribeSignalingChannelCommand({ ChannelName: 'webrtc-kvs-agent-channel' }));
    } finally {
      kvs.destroy();
    }
  };

  test('AWS SDK v3 requests verify; wrong key, secret, region, token or expired credentials → AccessDeniedException', async () => {
    expect((await describeWith(DEFAULT_EMULATOR_CREDENTIALS)).ChannelInfo?.ChannelARN).toBe(channelARN);
    expect(
      (
        await describeWith({
          accessKeyId: 'ASIATEMPORARY0000001',
          secretAccessKey: 'temp-secret',
          sessionToken: 'temp-token',
        })
      ).ChannelInfo?.ChannelARN,
    ).toBe(channelARN);
    const refused = [
      { ...DEFAULT_EMULATOR_CREDENTIALS, accessKeyId: 'AKIAUNKNOWN000000001' },
      { ...DEFAULT_EMULATOR_CREDENTIALS, secretAccessKey: 'wrong' },
      { accessKeyId: 'ASIATEMPORARY0000001', secretAccessKey: 'temp-secret' },
      { accessKeyId: 'ASIATEMPORARY0000001', secretAccessKey: 'temp-secret', sessionToken: 'forged' },
      { accessKeyId: 'ASIAEXPIRED00000001', secretAccessKey: 'old-secret', sessionToken: 'old-token' },
    ];
    for (const credentials of refused) {
      const err = await describeWith(credentials).catch((e: unknown) => e);
      expect(err, JSON.stringify(credentials)).toBeInstanceOf(AccessDeniedException);
      expect((err as AccessDeniedException).$metadata.httpStatusCode).toBe(403);
    }
    await expect(describeWith(DEFAULT_EMULATOR_CREDENTIALS, 'us-east-1')).rejects.toBeInstanceOf(
      AccessDeniedException,
    );
    const stats = emulator.admin.stats();
    for (const reason of [
      'unknown-key',
      'bad-signature',
      'missing-token',
      'wrong-token',
      'credentials-expired',
      'wrong-region',
    ]) {
      expect(stats[`rejected.http.sigv4.${reason}`], reason).toBeGreaterThan(0);
    }
  });

  test('tampered body, skewed date and unsigned requests are refused', async () => {
    const url = new URL(emulator.url);
    const signer = new SignatureV4({
      service: 'kinesisvideo',
      region: emulator.region,
      credentials: DEFAULT_EMULATOR_CREDENTIALS,
      sha256: Sha256,
    });
    const sign = (body: string, signingDate?: Date) =>
      signer.sign(
        new HttpRequest({
          method: 'POST',
          protocol: 'http:',
          hostname: url.hostname,
          port: Number(url.port),
          path: '/describeSignalingChannel',
          headers: { host: url.host, 'content-type': 'application/json' },
          body,
        }),
        signingDate ? { signingDate } : {},
      );
    const body = JSON.stringify({ ChannelName: 'webrtc-kvs-agent-channel' });
    const post = (headers: Record<string, string>, sent: string) =>
      fetch(`${emulator.url}/describeSignalingChannel`, { method: 'POST', headers, body: sent });

    expect((await post((await sign(body)).headers, body)).status).toBe(200);
    const tampered = await post((await sign(body)).headers, body.replace('webrtc', 'webrtX'));
    expect(tampered.status).toBe(403);
    expect(tampered.headers.get('x-amzn-errortype')).toBe('AccessDeniedException');
    // A signer that sends no x-amz-content-sha256: the body hash is computed from what arrived.
    const noChecksum = new SignatureV4({
      service: 'kinesisvideo',
      region: emulator.region,
      credentials: DEFAULT_EMULATOR_CREDENTIALS,
      sha256: Sha256,
      applyChecksum: false,
    });
    const plain = await noChecksum.sign(
      new HttpRequest({
        method: 'POST',
        protocol: 'http:',
        hostname: url.hostname,
        port: Number(url.port),
        path: '/describeSignalingChannel',
        headers: { host: url.host, 'content-type': 'application/json' },
        body,
      }),
    );
    expect(plain.headers['x-amz-content-sha256']).toBeUndefined();
    expect((await post(plain.headers, body)).status).toBe(200);
    expect((await post(plain.headers, body.replace('webrtc', 'webrtX'))).status).toBe(403);
    expect((await post((await sign(body, new Date(Date.now() - 10 * 60_000))).headers, body)).status).toBe(
      403,
    );
    expect((await post({ 'content-type': 'application/json' }, body)).status).toBe(403);
    const stats = emulator.admin.stats();
    expect(stats['rejected.http.sigv4.body-hash-mismatch']).toBe(1);
    expect(stats['rejected.http.sigv4.clock-skew']).toBe(1);
    expect(stats['rejected.http.sigv4.missing-auth']).toBe(1);
  });

  test('WebSocket upgrades: JS SDK and smithy presigned URLs connect; altered or expired ones get 403', async () => {
    const query = { 'X-Amz-ChannelARN': channelARN, 'X-Amz-ClientId': 'viewer-1' };
    const jsSdk = wsRequestSigner(emulator.region);
    expect(await handshakeStatus(await jsSdk.getSignedURL(viewerEndpoint, query))).toBe(101);

    const temporary = wsRequestSigner(emulator.region, {
      accessKeyId: 'ASIATEMPORARY0000001',
      secretAccessKey: 'temp-secret',
      sessionToken: 'temp-token',
    });
    expect(await handshakeStatus(await temporary.getSignedURL(viewerEndpoint, query))).toBe(101);

    const u = new URL(viewerEndpoint);
    const smithy = new SignatureV4({
      service: 'kinesisvideo',
      region: emulator.region,
      credentials: DEFAULT_EMULATOR_CREDENTIALS,
      sha256: Sha256,
    });
    const presigned = await smithy.presign(
      new HttpRequest({
        method: 'GET',
        protocol: 'ws:',
        hostname: u.hostname,
        port: Number(u.port),
        path: u.pathname,
        query: { ...query },
        headers: { host: u.host },
      }),
      { expiresIn: 299 },
    );
    const qs = new URLSearchParams(presigned.query as Record<string, string>).toString();
    expect(await handshakeStatus(`${viewerEndpoint}?${qs}`)).toBe(101);

    const good = await jsSdk.getSignedURL(viewerEndpoint, query);
    expect(await handshakeStatus(good.replace('viewer-1', 'viewer-2'))).toBe(403);
    expect(await handshakeStatus(good, { host: `localhost:${emulator.port}` })).toBe(403);
    const past = await jsSdk.getSignedURL(viewerEndpoint, query, new Date(Date.now() - 400_000));
    expect(await handshakeStatus(past)).toBe(403);
    const wrongRegion = await wsRequestSigner('us-east-1').getSignedURL(viewerEndpoint, query);
    expect(await handshakeStatus(wrongRegion)).toBe(403);
    const wrongSecret = await wsRequestSigner(emulator.region, {
      ...DEFAULT_EMULATOR_CREDENTIALS,
      secretAccessKey: 'nope',
    }).getSignedURL(viewerEndpoint, query);
    expect(await handshakeStatus(wrongSecret)).toBe(403);
    const expiredCreds = await wsRequestSigner(emulator.region, {
      accessKeyId: 'ASIAEXPIRED00000001',
      secretAccessKey: 'old-secret',
      sessionToken: 'old-token',
    }).getSignedURL(viewerEndpoint, query);
    expect(await handshakeStatus(expiredCreds)).toBe(403);
    const firehose = new SigV4RequestSigner(emulator.region, { ...DEFAULT_EMULATOR_CREDENTIALS }, 'firehose');
    const wrongService = (await firehose.getSignedURL(viewerEndpoint.replace(/^ws:/, 'wss:'), query)).replace(
      /^wss:/,
      'ws:',
    );
    expect(await handshakeStatus(wrongService)).toBe(403);
    expect(
      await handshakeStatus(
        `${viewerEndpoint}?X-Amz-ChannelARN=${encodeURIComponent(channelARN)}&X-Amz-ClientId=v`,
      ),
    ).toBe(403);

    const stats = emulator.admin.stats();
    for (const reason of [
      'bad-signature',
      'presign-expired',
      'wrong-region',
      'credentials-expired',
      'wrong-service',
      'missing-auth',
    ]) {
      expect(stats[`rejected.ws.sigv4.${reason}`], reason).toBeGreaterThan(0);
    }
  });
  test('WebSocket upgrades: a repeated, signed X-Amz-ChannelARN is refused, not resolved to one of them', async () => {
    const u = new URL(viewerEndpoint);
    const smithy = new SignatureV4({
      service: 'kinesisvideo',
      region: emulator.region,
      credentials: DEFAULT_EMULATOR_CREDENTIALS,
      sha256: Sha256,
    });
    const presigned = await smithy.presign(
      new HttpRequest({
        method: 'GET',
        protocol: 'ws:',
        hostname: u.hostname,
        port: Number(u.port),
        path: u.pathname,
        query: { 'X-Amz-ChannelARN': [channelARN, `${channelARN}-other`], 'X-Amz-ClientId': 'viewer-dup' },
        headers: { host: u.host },
      }),
      { expiresIn: 299 },
    );
    const qs = Object.entries(presigned.query ?? {})
      .flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => [k, x]) : [[k, String(v)]]))
      .map(([k, v]) => `${escapeUri(k!)}=${escapeUri(v!)}`)
      .join('&');
    expect(await handshakeStatus(`${viewerEndpoint}?${qs}`)).toBe(400);
    expect(emulator.admin.stats()['rejected.ws.malformed']).toBe(1);
  });
});
