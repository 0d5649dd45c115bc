import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { DescribeSignalingChannelCommand, KinesisVideoClient } from '@aws-sdk/client-kinesis-video';
import { expect, test } from '@playwright/test';

const ROOT = resolve(import.meta.dirname, '../..');

test('npm run emulator prints its endpoint, serves the default channel and stops on SIGTERM', async () => {
  // tsx directly (what `npm run emulator` runs) so that the signal reaches the emulator, not npm.
  const child = spawn(
    process.execPath,
    [resolve(ROOT, 'node_modules/tsx/dist/cli.mjs'), 'emulator/main.ts'],
    {
      cwd: ROOT,
      env: { ...process.env, KVS_EMULATOR_PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  try {
    const line = await new Promise<string>((done, fail) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('\n')) done(out.split('\n')[0]!);
      });
      child.once('exit', (code) => fail(new Error(`emulator exited early with ${code}`)));
    });
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
    child.kill('SIGTERM');
  }
  expect(await exited).toBe(0);
});
