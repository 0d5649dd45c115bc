import { DescribeSignalingChannelCommand } from '@aws-sdk/client-kinesis-video';
import {
  GetIceServerConfigCommand,
  InvalidArgumentException,
  KinesisVideoSignalingClient,
  ResourceNotFoundException,
} from '@aws-sdk/client-kinesis-video-signaling';
import { expect, test } from '@playwright/test';
import { DEFAULT_EMULATOR_CREDENTIALS, startEmulator, type Emulator } from '../../emulator/server.js';
import { controlClient } from './support.js';

let emulator: Emulator;

test.afterEach(async () => {
  await emulator.stop();
});

test('GetIceServerConfig on the HTTPS channel endpoint returns the configured TURN list', async () => {
  const turn = {
    Uris: ['turn:127.0.0.1:3478?transport=udp', 'turns:127.0.0.1:443?transport=tcp'],
    Username: '1700000000:djE6YXJuOmF3czpraW5lc2lzdmlkZW8=',
    Password: 'secret/with+chars=',
    Ttl: 300,
  };
  emulator = await startEmulator({ iceServers: [turn] });
  const kvs = controlClient(emulator);
  const arn = (
    await kvs.send(new DescribeSignalingChannelCommand({ ChannelName: 'webrtc-kvs-agent-channel' }))
  ).ChannelInfo!.ChannelARN!;
  kvs.destroy();
  const signaling = new KinesisVideoSignalingClient({
    region: emulator.region,
    endpoint: emulator.url,
    credentials: DEFAULT_EMULATOR_CREDENTIALS,
    maxAttempts: 1,
  });
  try {
    const out = await signaling.send(
      new GetIceServerConfigCommand({ ChannelARN: arn, ClientId: 'viewer-1', Service: 'TURN' }),
    );
    expect(out.IceServerList).toEqual([turn]);
    await expect(
      signaling.send(new GetIceServerConfigCommand({ ChannelARN: arn.replace(/\/\d+$/, '/1') })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
    await expect(
      signaling.send(new GetIceServerConfigCommand({ ChannelARN: arn, ClientId: 'bad id' })),
    ).rejects.toBeInstanceOf(InvalidArgumentException);
  } finally {
    signaling.destroy();
  }
});
