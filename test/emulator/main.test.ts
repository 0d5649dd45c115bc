import { DescribeSignalingChannelCommand, KinesisVideoClient } from '@aws-sdk/client-kinesis-video';
import { expect, test } from '@playwright/test';
import { startEmulatorCli } from '../support/emulatorCli.js';

test('npm run emulator prints its endpoint and player, serves the default channel and stream, and stops on SIGTERM', async () => {
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
    // The recordings player beside it lists the emulator's streams (the server signs; the page never does).
    const player = /^Recordings player at (http:\/\/127\.0\.0\.1:\d+)(\/\S*)$/.exec(emulator.playerLine);
    expect(player, emulator.playerLine).not.toBeNull();
    const page = await fetch(`${player![1]}${player![2]}`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<video');
    const streams = (await (await fetch(`${player![1]}/api/streams`)).json()) as {
      streams: { name: string }[];
    };
    expect(streams.streams.map((s) => s.name)).toContain('webrtc-kvs-agent-stream');
  } finally {
    expect(await emulator.stop()).toBe(0);
  }
});
