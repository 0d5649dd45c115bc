import { DescribeSignalingChannelCommand, KinesisVideoClient } from '@aws-sdk/client-kinesis-video';
import { expect, test } from '@playwright/test';
import { startEmulatorCli } from '../support/emulatorCli.js';

test('npm run emulator prints its endpoint, serves the default channel and stops on SIGTERM', async () => {
  // tsx directly (what `npm run emulator` runs) so that the signal reaches the emulator, not npm.
  const emulator = await startEmulatorCli({});
  const { line } = emulator;
  try {
    const match =
      /^KVS emulator at (http:\/\/127\.0\.0\.1:\d+) region=(\S+) AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+)$/.exec(
        line,
      );
    expect(match, line).not.toBeNull();
    const [, endpoint, region, accessKeyId, secretAccessKey] = match!;
    const kvs = new KinesisVideoClient({
      endpoint,
      region,
      credentials: { accessKeyId: accessKeyId!, secretAccessKey: secretAccessKey! },
    });
    const out = await kvs.send(
      new DescribeSignalingChannelCommand({ ChannelName: 'webrtc-kvs-agent-channel' }),
    );
    kvs.destroy();
    expect(out.ChannelInfo?.ChannelStatus).toBe('ACTIVE');
  } finally {
    expect(await emulator.stop()).toBe(0);
  }
});
