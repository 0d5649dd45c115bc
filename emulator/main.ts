import { join } from 'node:path';
import { pino } from 'pino';
import { DEFAULT_WEB_ROOT, startPlayerServer } from './player/playerServer.js';
import { DEFAULT_EMULATOR_CREDENTIALS, startEmulator } from './server.js';

/**
 * `npm run emulator`: a standalone KVS emulator with the default channel and stream. Prints one line with the
 * endpoint, region and credentials to use; stops cleanly on SIGINT/SIGTERM. Env: KVS_EMULATOR_PORT (default
 * 4566), KVS_EMULATOR_HOST (default 127.0.0.1), LOG_LEVEL (default warn),
 * KVS_EMULATOR_CONTAINER_CREDENTIALS_TTL_SECONDS (serve the ECS-style credentials endpoint; the line then ends
 * with AWS_CONTAINER_CREDENTIALS_FULL_URI=…), KVS_EMULATOR_CONTAINER_AUTHORIZATION_TOKEN (token it requires),
 * KVS_EMULATOR_PLAYER_PORT (the recordings player page, default the emulator's port + 1; 0 = any free port),
 * KVS_EMULATOR_RECORDINGS_DIR (file-sink recordings the player also offers, default `recordings/` here).
 */
const logger = pino({ level: process.env.LOG_LEVEL ?? 'warn' });
const port = Number(process.env.KVS_EMULATOR_PORT ?? 4566);
const ttlSetting = process.env.KVS_EMULATOR_CONTAINER_CREDENTIALS_TTL_SECONDS;
const ttlSeconds = ttlSetting === undefined || ttlSetting === '' ? undefined : Number(ttlSetting);
if (ttlSeconds !== undefined && !(ttlSeconds >= 1)) {
  process.stderr.write(
    `KVS_EMULATOR_CONTAINER_CREDENTIALS_TTL_SECONDS must be a number ≥ 1, got '${ttlSetting}'\n`,
  );
  process.exit(2);
}
const authorizationToken = process.env.KVS_EMULATOR_CONTAINER_AUTHORIZATION_TOKEN;
const emulator = await startEmulator({
  port: Number.isInteger(port) && port >= 0 ? port : 4566,
  host: process.env.KVS_EMULATOR_HOST ?? '127.0.0.1',
  ...(ttlSeconds !== undefined
    ? {
        containerCredentials: {
          ttlMs: Math.round(ttlSeconds * 1000),
          ...(authorizationToken ? { authorizationToken } : {}),
        },
      }
    : {}),
  logger,
});
process.stdout.write(
  `KVS emulator at ${emulator.url} region=${emulator.region} ` +
    `AWS_ACCESS_KEY_ID=${DEFAULT_EMULATOR_CREDENTIALS.accessKeyId} ` +
    `AWS_SECRET_ACCESS_KEY=${DEFAULT_EMULATOR_CREDENTIALS.secretAccessKey}` +
    (emulator.containerCredentialsUrl
      ? ` AWS_CONTAINER_CREDENTIALS_FULL_URI=${emulator.containerCredentialsUrl}`
      : '') +
    '\n',
);

const playerPortSetting = process.env.KVS_EMULATOR_PLAYER_PORT;
const playerPort =
  playerPortSetting === undefined || playerPortSetting === ''
    ? port === 0
      ? 0
      : port + 1
    : Number(playerPortSetting);
const player = await startPlayerServer({
  region: emulator.region,
  endpoint: emulator.url,
  credentials: { ...DEFAULT_EMULATOR_CREDENTIALS },
  webRoot: DEFAULT_WEB_ROOT,
  recordingsDir: process.env.KVS_EMULATOR_RECORDINGS_DIR || join(import.meta.dirname, '..', 'recordings'),
  port: Number.isInteger(playerPort) && playerPort >= 0 ? playerPort : 0,
  host: process.env.KVS_EMULATOR_HOST ?? '127.0.0.1',
  logger: logger.child({ component: 'player' }),
});
process.stdout.write(`Recordings player at ${player.url}\n`);

let stopping = false;
const shutdown = (signal: string): void => {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'stopping KVS emulator');
  Promise.all([player.close(), emulator.stop()]).then(
    () => process.exit(0),
    (err: unknown) => {
      logger.error({ err }, 'emulator stop failed');
      process.exit(1);
    },
  );
};
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));
