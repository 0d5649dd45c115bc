import { expect, test } from '@playwright/test';
import { createLogger } from '../../agent/log.js';
import {
  DEFAULT_CHANNEL_NAME,
  DEFAULT_EMULATOR_CREDENTIALS,
  startEmulator,
  type Emulator,
} from '../../emulator/server.js';
import { launchMaster } from '../../scripts/lib/masterBrowser.js';

/** The reference master page (AWS SDK v3 in the browser + KVS JS SDK as MASTER) against the emulator. */
let emulator: Emulator;
const logger = createLogger({ level: 'warn' });

test.beforeAll(async () => {
  emulator = await startEmulator({ port: 0 });
});

test.afterAll(async () => {
  await emulator?.stop();
});

test('connects as MASTER through the emulator, ws:// signaling presigned in the page', async () => {
  const master = await launchMaster({
    endpoint: emulator.url,
    region: emulator.region,
    channel: DEFAULT_CHANNEL_NAME,
    credentials: { ...DEFAULT_EMULATOR_CREDENTIALS },
    logger,
  });
  try {
    expect((await master.state()).signaling).toBe('open');
    expect(emulator.admin.connections(DEFAULT_CHANNEL_NAME).master).toBe(true);
    expect(await master.framesEncoded()).toBe(0);
  } finally {
    await master.close();
  }
  await expect.poll(() => emulator.admin.connections(DEFAULT_CHANNEL_NAME).master).toBe(false);
});

test('a wrong secret key fails visibly instead of hanging', async () => {
  await expect(
    launchMaster({
      endpoint: emulator.url,
      region: emulator.region,
      channel: DEFAULT_CHANNEL_NAME,
      credentials: { accessKeyId: DEFAULT_EMULATOR_CREDENTIALS.accessKeyId, secretAccessKey: 'wrong' },
      logger,
    }),
  ).rejects.toThrow(/did not connect/);
});
