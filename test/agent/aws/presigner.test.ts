import { expect, test } from '@playwright/test';
import { SignalingPresigner } from '../../../agent/aws/presigner.js';
import { PresignRefusedError } from '../../../agent/errors.js';
import { SigV4Verifier } from '../../../emulator/sigv4.js';

const CREDENTIALS = { accessKeyId: 'AKIAPRESIGNTEST00001', secretAccessKey: 'presign-secret' };
const ENDPOINT = 'wss://v-1234.kinesisvideo.ap-northeast-1.amazonaws.com';
const CHANNEL_ARN = 'arn:aws:kinesisvideo:ap-northeast-1:123456789012:channel/cam/1700000000000';
const CLIENT_ID = 'viewer-agent-1';
const AGENT_NOW = new Date('2026-01-02T03:04:05Z');

function presigner(now = AGENT_NOW) {
  return new SignalingPresigner({
    region: 'ap-northeast-1',
    credentials: () => Promise.resolve(CREDENTIALS),
    allowedEndpoint: ENDPOINT,
    channelARN: CHANNEL_ARN,
    clientId: CLIENT_ID,
    now: () => now,
  });
}

const viewerQuery = { 'X-Amz-ChannelARN': CHANNEL_ARN, 'X-Amz-ClientId': CLIENT_ID };

function verify(url: string, nowMs = AGENT_NOW.getTime()) {
  const u = new URL(url);
  return new SigV4Verifier({
    region: 'ap-northeast-1',
    service: 'kinesisvideo',
    credentials: [CREDENTIALS],
    now: () => nowMs,
  }).verify({ method: 'GET', url: `${u.pathname}${u.search}`, rawHeaders: ['Host', u.host] });
}

test('signs exactly what the KVS JS SDK viewer asks for, verifiably, with the agent’s clock', async () => {
  const url = await presigner().presign(ENDPOINT, viewerQuery, new Date('2030-01-01T00:00:00Z'));
  const u = new URL(url);
  expect(`${u.protocol}//${u.host}`).toBe(ENDPOINT);
  // The page's date is ignored: the URL is dated by the agent's clock.
  expect(u.searchParams.get('X-Amz-Date')).toBe('20260102T030405Z');
  expect(u.searchParams.get('X-Amz-Expires')).toBe('299');
  expect(u.searchParams.get('X-Amz-ChannelARN')).toBe(CHANNEL_ARN);
  expect(u.searchParams.get('X-Amz-ClientId')).toBe(CLIENT_ID);
  expect([...u.searchParams.keys()].sort()).toEqual([
    'X-Amz-Algorithm',
    'X-Amz-ChannelARN',
    'X-Amz-ClientId',
    'X-Amz-Credential',
    'X-Amz-Date',
    'X-Amz-Expires',
    'X-Amz-Signature',
    'X-Amz-SignedHeaders',
  ]);
  expect(url).not.toContain(CREDENTIALS.secretAccessKey);
  expect(verify(url)).toMatchObject({ ok: true, accessKeyId: CREDENTIALS.accessKeyId });
  // Signed by the agent's clock: expires 299 s after it, whatever the page proposed.
  expect(verify(url, AGENT_NOW.getTime() + 300_000)).toMatchObject({ ok: false, reason: 'presign-expired' });
  // A trailing slash on the endpoint is the same endpoint.
  expect(verify(await presigner().presign(`${ENDPOINT}/`, viewerQuery)).ok).toBe(true);
});

test('refuses other endpoints, channels, client ids, the master role and any extra parameter', async () => {
  const p = presigner();
  const refused = async (endpoint: string, query: Record<string, string>) => {
    const err = await p.presign(endpoint, query).catch((e: unknown) => e);
    expect(err, JSON.stringify({ endpoint, query })).toBeInstanceOf(PresignRefusedError);
    expect((err as PresignRefusedError).code).toBe('PRESIGN_REFUSED');
    return (err as Error).message;
  };
  expect(await refused('wss://evil.example', viewerQuery)).toMatch(/endpoint/);
  expect(await refused(`${ENDPOINT}/other`, viewerQuery)).toMatch(/endpoint/);
  expect(await refused(`${ENDPOINT}?X-Amz-ChannelARN=x`, viewerQuery)).toMatch(/endpoint/);
  expect(await refused(ENDPOINT, { ...viewerQuery, 'X-Amz-ChannelARN': `${CHANNEL_ARN}x` })).toMatch(
    /channel/,
  );
  expect(await refused(ENDPOINT, { ...viewerQuery, 'X-Amz-ClientId': 'someone-else' })).toMatch(/client id/);
  // The master role: no client id.
  expect(await refused(ENDPOINT, { 'X-Amz-ChannelARN': CHANNEL_ARN })).toMatch(/client id/);
  for (const extra of [
    'X-Amz-Expires',
    'X-Amz-Date',
    'X-Amz-Security-Token',
    'X-Amz-Signature',
    'Role',
    'x',
  ]) {
    expect(await refused(ENDPOINT, { ...viewerQuery, [extra]: '604800' })).toMatch(/query parameters/);
  }
  expect(await refused(ENDPOINT, {})).toMatch(/channel/);
});
