import { expect, test } from '@playwright/test';
import { pino } from 'pino';
import { DescribeStreamCommand, KinesisVideoClient } from '@aws-sdk/client-kinesis-video';
import { ensureStream } from '../../../agent/aws/streamProvisioner.js';
import { createLogger } from '../../../agent/log.js';
import { DEFAULT_EMULATOR_CREDENTIALS, startEmulator, type Emulator } from '../../../emulator/server.js';

let emulator: Emulator;
const logger = createLogger({ level: 'silent' });
const credentials = () => Promise.resolve({ ...DEFAULT_EMULATOR_CREDENTIALS });

test.beforeEach(async () => {
  emulator = await startEmulator({ port: 0 });
});
test.afterEach(async () => {
  await emulator.stop();
});

function options(streamName: string, extra: Partial<Parameters<typeof ensureStream>[0]> = {}) {
  return {
    streamName,
    region: emulator.region,
    endpoint: emulator.url,
    credentials,
    retentionHours: 24,
    create: true,
    logger,
    ...extra,
  };
}

test('creates a missing stream with H.264 + AAC and the retention asked for', async () => {
  const created = await ensureStream(options('new-stream', { retentionHours: 48 }));
  expect(created.created).toBe(true);
  const client = new KinesisVideoClient({ region: emulator.region, endpoint: emulator.url, credentials });
  const out = await client.send(new DescribeStreamCommand({ StreamName: 'new-stream' }));
  expect(out.StreamInfo).toMatchObject({
    MediaType: 'video/h264,audio/aac',
    DataRetentionInHours: 48,
    Status: 'ACTIVE',
  });
  expect(created.streamARN).toBe(out.StreamInfo?.StreamARN);
  client.destroy();
  // A second start finds it and leaves it as it is.
  expect((await ensureStream(options('new-stream'))).created).toBe(false);
});

test('--no-create-stream: a missing stream is an error that says so', async () => {
  await expect(ensureStream(options('absent', { create: false }))).rejects.toThrow(
    /does not exist.*--no-create-stream/,
  );
});

test('a stream with zero retention is accepted with a warning that nothing can be played back', async () => {
  const lines: string[] = [];
  const captured = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
  const state = await ensureStream(options('no-retention', { retentionHours: 0, logger: captured }));
  expect(state.retentionHours).toBe(0);
  expect(lines.join('\n')).toMatch(/retention is 0 hours/);
});
