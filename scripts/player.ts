/**
 * `npm run player [-- --region R --endpoint URL --port P --recordings DIR]`: the recordings player for Kinesis video streams
 * in AWS (or any endpoint speaking the KVS APIs). Credentials come from the standard AWS chain (env, profile,
 * SSO, instance or task role) and stay in this process: the page gets HLS session URLs only. Region from
 * --region, else AWS_REGION, else ap-northeast-1. --recordings: a directory of file-sink recordings to offer
 * as well. Serves until Ctrl-C.
 */
import { parseArgs } from 'node:util';
import { createLogger } from '../agent/log.js';
import { DEFAULT_WEB_ROOT, startPlayerServer } from '../emulator/player/playerServer.js';

const { values } = parseArgs({
  options: {
    region: { type: 'string' },
    endpoint: { type: 'string' },
    port: { type: 'string', default: '8088' },
    recordings: { type: 'string' },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`--port must be a TCP port number, got '${values.port}'`);
  process.exit(2);
}
const region = values.region ?? process.env.AWS_REGION ?? 'ap-northeast-1';
const player = await startPlayerServer({
  region,
  ...(values.endpoint ? { endpoint: values.endpoint } : {}),
  webRoot: DEFAULT_WEB_ROOT,
  ...(values.recordings ? { recordingsDir: values.recordings } : {}),
  port,
  logger: createLogger({ level: 'warn' }),
});
console.log(`Recordings player (${values.endpoint ?? `AWS ${region}`}) at ${player.url} — Ctrl-C to stop`);
const stop = (): void => void player.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
