import { expect, test } from '@playwright/test';
import {
  DescribeStreamCommand,
  KinesisVideoClient,
  UpdateMediaStorageConfigurationCommand,
} from '@aws-sdk/client-kinesis-video';
import { WebSocket } from 'ws';
import { ChannelDiscovery } from '../../../agent/aws/discovery.js';
import { SignalingPresigner } from '../../../agent/aws/presigner.js';
import { AgentError } from '../../../agent/errors.js';
import {
  DEFAULT_CHANNEL_NAME,
  DEFAULT_EMULATOR_CREDENTIALS,
  DEFAULT_STREAM_NAME,
  startEmulator,
  type Emulator,
} from '../../../emulator/server.js';

let emulator: Emulator;
const credentials = () => Promise.resolve({ ...DEFAULT_EMULATOR_CREDENTIALS });
const turn = {
  Uris: ['turn:127.0.0.1:3478?transport=udp'],
  Username: '1700000000:user',
  Password: 'p=ss',
  Ttl: 300,
};

test.beforeEach(async () => {
  emulator = await startEmulator({ port: 0, iceServers: [turn] });
});
test.afterEach(async () => {
  await emulator.stop();
});

function discovery(): ChannelDiscovery {
  return new ChannelDiscovery({ region: emulator.region, endpoint: emulator.url, credentials });
}

test('finds the channel’s viewer endpoints and TURN servers (no regional STUN against an endpoint override)', async () => {
  const d = discovery();
  const channel = await d.describeChannel(DEFAULT_CHANNEL_NAME);
  expect(channel.channelARN).toMatch(
    /^arn:aws:kinesisvideo:ap-northeast-1:\d+:channel\/webrtc-kvs-agent-channel\//,
  );
  expect(channel.wssEndpoint).toMatch(/^ws:\/\/127\.0\.0\.1:\d+/);
  expect(await d.iceServers(channel, 'viewer-1')).toEqual([
    { urls: turn.Uris, username: turn.Username, credential: turn.Password },
  ]);
  d.destroy();
});

test('the presigned viewer URL opens the real signaling WebSocket; other endpoints or channels are refused', async () => {
  const d = discovery();
  const channel = await d.describeChannel(DEFAULT_CHANNEL_NAME);
  d.destroy();
  const presigner = new SignalingPresigner({
    region: emulator.region,
    credentials,
    allowedEndpoint: channel.wssEndpoint,
    channelARN: channel.channelARN,
    clientId: 'viewer-presign-test',
  });
  const url = await presigner.presign(channel.wssEndpoint, {
    'X-Amz-ChannelARN': channel.channelARN,
    'X-Amz-ClientId': 'viewer-presign-test',
  });
  expect(url).not.toContain(DEFAULT_EMULATOR_CREDENTIALS.secretAccessKey);
  await new Promise<void>((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => {
      ws.close();
      resolve();
    });
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
  await expect(
    presigner.presign('wss://example.com', { 'X-Amz-ChannelARN': channel.channelARN }),
  ).rejects.toThrow(/endpoint/);
  await expect(
    presigner.presign(channel.wssEndpoint, { 'X-Amz-ChannelARN': `${channel.channelARN}x` }),
  ).rejects.toThrow(/channel/);
});

test('a channel with media storage ENABLED stops the agent with a message that says how to fix it', async () => {
  const d = discovery();
  const control = new KinesisVideoClient({ region: emulator.region, endpoint: emulator.url, credentials });
  const { channelARN } = await d.describeChannel(DEFAULT_CHANNEL_NAME);
  const streamARN = (await control.send(new DescribeStreamCommand({ StreamName: DEFAULT_STREAM_NAME })))
    .StreamInfo!.StreamARN!;
  await control.send(
    new UpdateMediaStorageConfigurationCommand({
      ChannelARN: channelARN,
      MediaStorageConfiguration: { Status: 'ENABLED', StreamARN: streamARN },
    }),
  );
  const error = await d.describeChannel(DEFAULT_CHANNEL_NAME).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(AgentError);
  expect((error as AgentError).code).toBe('CHANNEL_STORAGE_ENABLED');
  expect((error as AgentError).message).toContain('update-media-storage-configuration');
  control.destroy();
  d.destroy();
});

test('a missing channel is a DiscoveryError naming it', async () => {
  const d = discovery();
  const error = await d.describeChannel('no-such-channel').catch((e: unknown) => e);
  expect((error as AgentError).code).toBe('DISCOVERY_FAILED');
  expect((error as AgentError).message).toContain('no-such-channel');
  d.destroy();
});
