/**
 * `tsx WebRTC/synthetic/main.ts --endpoint http://127.0.0.1:PORT [--channel NAME] [--region R]
 *   [--resolution 1280x720]... [--switch-every SECONDS] [--sent-log FILE]`
 *
 * Runs the synthetic master in a process of its own (the bench keeps its cost out of the agent's). Credentials
 * come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN. Prints one JSON line
 * `{"ready":true}` on stdout once signaling is open; every frame sent goes to --sent-log as JSON lines.
 */
import { createWriteStream } from 'node:fs';
import { parseArgs } from 'node:util';
import { createLogger } from '../../agent/log.js';
import { clipSpec, loadClip } from './clip.js';
import { SyntheticMaster } from './syntheticMaster.js';

const { values } = parseArgs({
  options: {
    endpoint: { type: 'string', default: '' },
    channel: { type: 'string', default: 'webrtc-kvs-agent-channel' },
    region: { type: 'string', default: process.env.AWS_REGION ?? 'ap-northeast-1' },
    resolution: { type: 'string', multiple: true, default: ['1280x720'] },
    'switch-every': { type: 'string' },
    'sent-log': { type: 'string' },
  },
});

const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'info' }).child({
  component: 'synthetic-master',
});
const accessKeyId = process.env.AWS_ACCESS_KEY_ID;
const secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY;
if (!accessKeyId || !secretAccessKey) {
  logger.error('AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are required');
  process.exit(2);
}
const clips = [];
for (const r of values.resolution) {
  const m = /^(\d+)x(\d+)$/.exec(r);
  if (!m) {
    logger.error({ field: 'resolution', value: r }, 'expected WIDTHxHEIGHT');
    process.exit(2);
  }
  clips.push(await loadClip(clipSpec(Number(m[1]), Number(m[2]))));
}
const log = values['sent-log'] ? createWriteStream(values['sent-log']) : undefined;
const master = new SyntheticMaster({
  region: values.region,
  channelName: values.channel,
  endpoint: values.endpoint,
  credentials: {
    accessKeyId,
    secretAccessKey,
    ...(process.env.AWS_SESSION_TOKEN ? { sessionToken: process.env.AWS_SESSION_TOKEN } : {}),
  },
  clips,
  logger,
  ...(log ? { onSent: (f) => log.write(`${JSON.stringify(f)}\n`) } : {}),
});
await master.start();
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
const every = Number(values['switch-every'] ?? 0);
let clip = 0;
const switcher =
  every > 0 && clips.length > 1
    ? setInterval(() => master.setClip((clip = (clip + 1) % clips.length)), every * 1000)
    : undefined;
const shutdown = () => {
  clearInterval(switcher);
  void master.stop().then(() => {
    log?.end();
    logger.info({ ...master.stats }, 'synthetic master stopped');
    process.exit(0);
  });
};
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
