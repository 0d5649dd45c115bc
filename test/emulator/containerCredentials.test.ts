import { networkInterfaces } from 'node:os';
import {
  AccessDeniedException,
  DescribeSignalingChannelCommand,
  KinesisVideoClient,
} from '@aws-sdk/client-kinesis-video';
import { fromContainerMetadata, fromHttp, fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { expect, test } from '@playwright/test';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { pino } from 'pino';
import { ContainerCredentialsIssuer } from '../../emulator/containerCredentials.js';
import { DEFAULT_CHANNEL_NAME, startEmulator, type Emulator } from '../../emulator/server.js';
import { SigV4Verifier } from '../../emulator/sigv4.js';
import { Stats } from '../../emulator/stats.js';
import { handshakeStatus, wsRequestSigner, wssEndpoint } from './support.js';
import { startEmulatorCli } from '../support/emulatorCli.js';

/** Every variable the SDK's default chain reads before the container provider, so only the emulator answers. */
const AWS_ENV = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_PROFILE',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_ROLE_ARN',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
  'AWS_EC2_METADATA_DISABLED',
  'AWS_CONFIG_FILE',
  'AWS_SHARED_CREDENTIALS_FILE',
];

let emulator: Emulator | undefined;
let savedEnv: Record<string, string | undefined> = {};

test.beforeEach(() => {
  savedEnv = Object.fromEntries(AWS_ENV.map((name) => [name, process.env[name]]));
  for (const name of AWS_ENV) delete process.env[name];
  // No ~/.aws files may answer first, and the IMDS fallback must not wait on a network timeout.
  process.env.AWS_CONFIG_FILE = '/nonexistent/aws-config';
  process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/aws-credentials';
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
});

test.afterEach(async () => {
  for (const [name, value] of Object.entries(savedEnv)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await emulator?.stop();
  emulator = undefined;
});

function kvs(credentials: AwsCredentialIdentity | AwsCredentialIdentityProvider): KinesisVideoClient {
  return new KinesisVideoClient({
    region: emulator!.region,
    endpoint: emulator!.url,
    credentials,
    maxAttempts: 1,
  });
}

async function describeChannel(
  credentials: AwsCredentialIdentity | AwsCredentialIdentityProvider,
): Promise<string> {
  const client = kvs(credentials);
  try {
    const out = await client.send(new DescribeSignalingChannelCommand({ ChannelName: DEFAULT_CHANNEL_NAME }));
    return out.ChannelInfo!.ChannelARN!;
  } finally {
    client.destroy();
  }
}

/** Resolves when `date` has passed (the point of these tests is that time passes), plus a margin. */
async function until(date: Date | undefined): Promise<void> {
  const wait = (date?.getTime() ?? 0) - Date.now() + 50;
  if (wait > 0) await new Promise((done) => setTimeout(done, wait));
}

function credentialRejections(stats: Record<string, number>): string[] {
  return Object.keys(stats).filter(
    (k) => k.includes('sigv4') || k.startsWith('container-credentials.rejected'),
  );
}

test('the endpoint answers the ECS shape that fromHttp, fromContainerMetadata and the default chain accept', async () => {
  emulator = await startEmulator({ containerCredentials: { ttlMs: 900_000 } });
  const url = emulator.containerCredentialsUrl!;
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/_ecs\/credentials$/);

  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await res.json()) as Record<string, string>;
  expect(Object.keys(body).sort()).toEqual([
    'AccessKeyId',
    'Expiration',
    'RoleArn',
    'SecretAccessKey',
    'Token',
  ]);
  expect(body.AccessKeyId).toMatch(/^ASIA[A-Z2-7]{16}$/);
  expect(body.Expiration).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  expect(body.RoleArn).toMatch(/^arn:aws:iam::\d{12}:role\//);

  process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI = url;
  const viaHttp = await fromHttp({ maxRetries: 0 })();
  const viaMetadata = await fromContainerMetadata({ maxRetries: 0 })();
  const viaChain = await fromNodeProviderChain()();
  const keys = [body.AccessKeyId, viaHttp.accessKeyId, viaMetadata.accessKeyId, viaChain.accessKeyId];
  expect(new Set(keys).size, 'every call mints a new set').toBe(4);
  for (const credentials of [viaHttp, viaMetadata, viaChain]) {
    expect(credentials.sessionToken!.length).toBeGreaterThan(100);
    const left = credentials.expiration!.getTime() - Date.now();
    expect(left).toBeGreaterThan(890_000);
    expect(left).toBeLessThanOrEqual(900_000);
    expect(await describeChannel(credentials)).toMatch(/^arn:aws:kinesisvideo:/);
  }
  // The static credentials keep working next to the minted ones.
  expect(
    await describeChannel({
      accessKeyId: 'AKIAKVSEMULATOR00001',
      secretAccessKey: 'kvs-emulator-secret-key-not-for-aws',
    }),
  ).toMatch(/^arn:/);

  const stats = emulator.admin.stats();
  expect(stats['container-credentials.issued']).toBe(4);
  expect(credentialRejections(stats)).toEqual([]);
});

test('after the TTL the same credentials get 403, while a re-resolving provider gets new ones that work', async () => {
  emulator = await startEmulator({ containerCredentials: { ttlMs: 3000 } });
  process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI = emulator.containerCredentialsUrl!;
  const first = await fromHttp({ maxRetries: 0 })();
  expect(await describeChannel(first)).toMatch(/^arn:/);

  // The SDK's memoized chain treats credentials expiring within 5 minutes as stale and re-resolves them.
  const provider = fromNodeProviderChain();
  const client = kvs(provider);
  await client.send(new DescribeSignalingChannelCommand({ ChannelName: DEFAULT_CHANNEL_NAME }));

  await until(first.expiration);
  const refused = await describeChannel(first).catch((e: unknown) => e);
  expect(refused).toBeInstanceOf(AccessDeniedException);
  expect((refused as AccessDeniedException).$metadata.httpStatusCode).toBe(403);
  expect((refused as AccessDeniedException).message).toMatch(/expired/);

  await client.send(new DescribeSignalingChannelCommand({ ChannelName: DEFAULT_CHANNEL_NAME }));
  const current = await provider();
  expect(current.accessKeyId).not.toBe(first.accessKeyId);
  expect(current.expiration!.getTime()).toBeGreaterThan(Date.now());
  client.destroy();

  const stats = emulator.admin.stats();
  expect(stats['container-credentials.issued']).toBeGreaterThanOrEqual(3);
  expect(stats['container-credentials.rejected-expired']).toBe(1);
  expect(stats[`container-credentials.rejected-expired.${first.accessKeyId}`]).toBe(1);
  expect(stats['rejected.http.sigv4.credentials-expired']).toBe(1);
});

test('presigned signaling URLs signed with expired credentials are refused; fresh ones connect', async () => {
  emulator = await startEmulator({ containerCredentials: { ttlMs: 3000 } });
  const arn = await describeChannel({
    accessKeyId: 'AKIAKVSEMULATOR00001',
    secretAccessKey: 'kvs-emulator-secret-key-not-for-aws',
  });
  const endpoint = await wssEndpoint(emulator, arn, 'VIEWER');
  const query = { 'X-Amz-ChannelARN': arn, 'X-Amz-ClientId': 'viewer-1' };
  const provider = fromHttp({
    awsContainerCredentialsFullUri: emulator.containerCredentialsUrl!,
    maxRetries: 0,
  });
  const old = await provider();
  const signedEarly = await wsRequestSigner(emulator.region, old).getSignedURL(endpoint, query);
  expect(await handshakeStatus(signedEarly)).toBe(101);

  await until(old.expiration);
  // Both a URL signed while valid and one signed now with the stale keys: the credentials, not the URL, expired.
  expect(await handshakeStatus(signedEarly)).toBe(403);
  const signedLate = await wsRequestSigner(emulator.region, old).getSignedURL(endpoint, query);
  expect(await handshakeStatus(signedLate)).toBe(403);
  const fresh = await provider();
  const signedFresh = await wsRequestSigner(emulator.region, fresh).getSignedURL(endpoint, query);
  expect(await handshakeStatus(signedFresh)).toBe(101);

  const stats = emulator.admin.stats();
  expect(stats['rejected.ws.sigv4.credentials-expired']).toBe(2);
  expect(stats[`container-credentials.rejected-expired.${old.accessKeyId}`]).toBe(2);
  expect(stats[`container-credentials.rejected-expired.${fresh.accessKeyId}`]).toBeUndefined();
});

test('expireContainerCredentials rotates at once: cached keys are refused, re-resolved ones work', async () => {
  emulator = await startEmulator({ containerCredentials: { ttlMs: 3_600_000 } });
  const provider = fromHttp({
    awsContainerCredentialsFullUri: emulator.containerCredentialsUrl!,
    maxRetries: 0,
  });
  const cached = await provider();
  expect(await describeChannel(cached)).toMatch(/^arn:/);
  expect(emulator.expireContainerCredentials!()).toBe(1);
  await expect(describeChannel(cached)).rejects.toBeInstanceOf(AccessDeniedException);
  expect(await describeChannel(await provider())).toMatch(/^arn:/);
  expect(emulator.admin.stats()['container-credentials.rejected-expired']).toBe(1);
});

test('failContainerCredentials: the endpoint answers the status asked for, issued keys keep working, then it recovers', async () => {
  emulator = await startEmulator({ containerCredentials: { ttlMs: 3_600_000 } });
  const url = emulator.containerCredentialsUrl!;
  const issued = await fromHttp({ awsContainerCredentialsFullUri: url, maxRetries: 0 })();
  emulator.failContainerCredentials!(500);
  const failing = await fetch(url);
  expect(failing.status).toBe(500);
  expect(((await failing.json()) as { Code: string }).Code).toBe('InternalError');
  await expect(fromHttp({ awsContainerCredentialsFullUri: url, maxRetries: 0 })()).rejects.toThrow();
  expect(await describeChannel(issued)).toMatch(/^arn:/);
  expect(emulator.admin.stats()['container-credentials.failed-injected']).toBe(2);
  expect(() => emulator!.failContainerCredentials!(200)).toThrow(RangeError);
  emulator.failContainerCredentials!(undefined);
  expect(
    await describeChannel(await fromHttp({ awsContainerCredentialsFullUri: url, maxRetries: 0 })()),
  ).toMatch(/^arn:/);
});

test('the authorization token is enforced', async () => {
  const token = 'Bearer emulator-token/with+odd=chars';
  emulator = await startEmulator({ containerCredentials: { ttlMs: 60_000, authorizationToken: token } });
  const url = emulator.containerCredentialsUrl!;

  const missing = await fetch(url);
  expect(missing.status).toBe(403);
  expect(await missing.json()).toMatchObject({ Code: 'AccessDenied' });
  expect((await fetch(url, { headers: { Authorization: `${token}x` } })).status).toBe(403);
  expect((await fetch(url, { headers: { Authorization: token.toUpperCase() } })).status).toBe(403);

  const http = (awsContainerAuthorizationToken?: string) =>
    fromHttp({
      awsContainerCredentialsFullUri: url,
      ...(awsContainerAuthorizationToken !== undefined ? { awsContainerAuthorizationToken } : {}),
      maxRetries: 0,
    })();
  await expect(http()).rejects.toThrow(/403/);
  await expect(http('Bearer wrong')).rejects.toThrow(/403/);
  expect(await describeChannel(await http(token))).toMatch(/^arn:/);

  process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI = url;
  await expect(fromContainerMetadata({ maxRetries: 0 })()).rejects.toThrow();
  process.env.AWS_CONTAINER_AUTHORIZATION_TOKEN = token;
  expect(await describeChannel(await fromContainerMetadata({ maxRetries: 0 })())).toMatch(/^arn:/);
  expect(await describeChannel(fromNodeProviderChain())).toMatch(/^arn:/);

  const stats = emulator.admin.stats();
  expect(stats['container-credentials.rejected.authorization']).toBe(6);
  // The default chain may resolve more than once: a set expiring within 5 minutes is stale to its memoizer.
  expect(stats['container-credentials.issued']).toBeGreaterThanOrEqual(3);
  expect(credentialRejections(stats).filter((k) => !k.endsWith('.authorization'))).toEqual([]);
});

test('only GET from loopback is served; the endpoint is off unless configured', async () => {
  emulator = await startEmulator();
  expect(emulator.containerCredentialsUrl).toBeUndefined();
  expect(emulator.expireContainerCredentials).toBeUndefined();
  // Without the option the path is just another unsigned request.
  expect((await fetch(`${emulator.url}/_ecs/credentials`)).status).toBe(403);
  await emulator.stop();

  emulator = await startEmulator({ host: '0.0.0.0', containerCredentials: { ttlMs: 60_000 } });
  expect(emulator.containerCredentialsUrl).toMatch(/^http:\/\/127\.0\.0\.1:/);
  expect((await fetch(emulator.containerCredentialsUrl!, { method: 'POST' })).status).toBe(405);
  expect((await fetch(emulator.containerCredentialsUrl!)).status).toBe(200);
  const external = Object.values(networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
  if (external) {
    const res = await fetch(`http://${external}:${emulator.port}/_ecs/credentials`);
    expect(res.status).toBe(403);
    expect(emulator.admin.stats()['container-credentials.rejected.not-loopback']).toBe(1);
  }
  expect(emulator.admin.stats()['container-credentials.issued']).toBe(1);
});

test('bad options are refused with a clear error', async () => {
  await expect(startEmulator({ containerCredentials: { ttlMs: 500 } })).rejects.toThrow(/ttlMs must be/);
  await expect(
    startEmulator({ containerCredentials: { ttlMs: 5000, authorizationToken: 'a\r\nb' } }),
  ).rejects.toThrow(/authorizationToken/);
});

test('remembered keys stay bounded: long-expired ones are forgotten, at most 1000 are kept', () => {
  let now = Date.UTC(2026, 0, 1);
  const verifier = new SigV4Verifier({
    region: 'ap-northeast-1',
    service: 'kinesisvideo',
    credentials: [],
    now: () => now,
  });
  const issuer = new ContainerCredentialsIssuer({
    ttlMs: 60_000,
    verifier,
    stats: new Stats(),
    logger: pino({ level: 'silent' }),
    roleArn: 'arn:aws:iam::123456789012:role/r',
    now: () => now,
  });
  const expired = issuer.issue();
  now += 60_000 + 5 * 60_000;
  const recent = issuer.issue();
  // Expired, but recently: still known so that late requests are reported as expired.
  expect(verifier.removeCredential(expired.accessKeyId)).toBe(true);
  verifier.addCredential(expired);
  now += 10 * 60_000;
  issuer.issue();
  expect(verifier.removeCredential(expired.accessKeyId), 'forgotten 10 min after expiry').toBe(false);
  expect(verifier.removeCredential(recent.accessKeyId)).toBe(true);
  verifier.addCredential(recent);

  const burst = Array.from({ length: 1000 }, () => issuer.issue());
  expect(verifier.removeCredential(recent.accessKeyId), 'oldest dropped at the bound').toBe(false);
  expect(verifier.removeCredential(burst[0]!.accessKeyId)).toBe(true);
  expect(issuer.stats().issued).toBe(1003);
});

test('npm run emulator with KVS_EMULATOR_CONTAINER_CREDENTIALS_TTL_SECONDS prints the FULL_URI', async () => {
  const emulator = await startEmulatorCli({
    KVS_EMULATOR_CONTAINER_CREDENTIALS_TTL_SECONDS: '120',
    KVS_EMULATOR_CONTAINER_AUTHORIZATION_TOKEN: 'cli-token',
  });
  const { line } = emulator;
  try {
    const match =
      /^KVS emulator at (http:\/\/127\.0\.0\.1:\d+) region=(\S+) AWS_ACCESS_KEY_ID=\S+ AWS_SECRET_ACCESS_KEY=\S+ AWS_CONTAINER_CREDENTIALS_FULL_URI=(http:\/\/127\.0\.0\.1:\d+\/_ecs\/credentials)$/.exec(
        line,
      );
    expect(match, line).not.toBeNull();
    const [, endpoint, region, fullUri] = match!;
    const credentials = await fromHttp({
      awsContainerCredentialsFullUri: fullUri!,
      awsContainerAuthorizationToken: 'cli-token',
      maxRetries: 0,
    })();
    const left = credentials.expiration!.getTime() - Date.now();
    expect(left).toBeGreaterThan(110_000);
    expect(left).toBeLessThanOrEqual(120_000);
    const client = new KinesisVideoClient({ endpoint, region, credentials, maxAttempts: 1 });
    const out = await client.send(new DescribeSignalingChannelCommand({ ChannelName: DEFAULT_CHANNEL_NAME }));
    client.destroy();
    expect(out.ChannelInfo?.ChannelStatus).toBe('ACTIVE');
  } finally {
    expect(await emulator.stop()).toBe(0);
  }
});
