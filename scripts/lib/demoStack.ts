import { resolve } from 'node:path';
import type { Logger } from '../../agent/log.js';
import {
  DEFAULT_EMULATOR_CREDENTIALS,
  startEmulator,
  type Emulator,
  type EmulatorOptions,
} from '../../emulator/server.js';
import { launchMaster, type MasterHandle } from './masterBrowser.js';

export const ROOT = resolve(import.meta.dirname, '../..');

export interface DemoStack {
  emulator: Emulator;
  master: MasterHandle;
  /** Environment for the agent: the emulator's test credentials through the standard AWS variables. */
  agentEnv: Record<string, string>;
  close(): Promise<void>;
}

/**
 * Everything but the agent: the KVS emulator (with the default channel and stream) and the reference master
 * page in its own headless Chromium with a fake camera and microphone.
 */
export async function startDemoStack(options: {
  logger: Logger;
  headed?: boolean;
  maintainResolution?: boolean;
  emulator?: EmulatorOptions;
}): Promise<DemoStack> {
  const emulator = await startEmulator({
    port: 0,
    logger: options.logger.child({ component: 'emulator' }),
    ...options.emulator,
  });
  let master: MasterHandle | undefined;
  try {
    master = await launchMaster({
      endpoint: emulator.url,
      region: emulator.region,
      channel: 'webrtc-kvs-agent-channel',
      credentials: { ...DEFAULT_EMULATOR_CREDENTIALS },
      headed: options.headed ?? false,
      maintainResolution: options.maintainResolution ?? false,
      webRoot: resolve(ROOT, 'dist/web'),
      logger: options.logger.child({ component: 'master' }),
    });
  } catch (err) {
    await emulator.stop();
    throw err;
  }
  const m = master;
  return {
    emulator,
    master: m,
    agentEnv: {
      AWS_ACCESS_KEY_ID: DEFAULT_EMULATOR_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: DEFAULT_EMULATOR_CREDENTIALS.secretAccessKey,
      AWS_REGION: emulator.region,
    },
    async close() {
      await m.close().catch(() => undefined);
      await emulator.stop();
    },
  };
}
