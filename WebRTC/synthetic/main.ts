/**
 * `tsx WebRTC/synthetic/main.ts --endpoint http://127.0.0.1:PORT [--channel NAME]... [--region R]
 *   [--resolution 1280x720]... [--switch-every SECONDS] [--sent-log FILE]`
 *
 * Runs synthetic masters in a process of their own (the bench keeps their cost out of the agent's): one per
 * `--channel`, all sending the same clips. Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
 * AWS_SESSION_TOKEN. Stdout carries JSON lines: `{"ready":true}` once every channel's signaling is open, then
 * `{"answered":CHANNEL,"viewer":ID,"atMs":EPOCH_MS}` per answer. Every frame sent goes to --sent-log as JSON
 * lines (a SentFrame plus its `channel`).
 */
import { createWriteStream } from 'node:fs';
import { parseArgs } from 'node:util';
import { createLogger } from '../../agent/log.js';
import { clipSpec, loadClip, type Clip } from './clip.js';
import { SyntheticMaster } from './syntheticMaster.js';

const { values } = parseArgs({
  options: {
    endpoint: { type: 'string', default: '' },
    channel: { type: 'string', multiple: true, default: ['webrtc-kvs-agent-channel'] },
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
const clips: Clip[] = [];
for (const r of values.resolution) {
  const m = /^(\d+)x(\d+)$/.exec(r);
  if (!m) {
    logger.error({ field: 'resolution', value: r }, 'expected WIDTHxHEIGHT');
    process.exit(2);
  }
  clips.push(await loadClip(clipSpec(Number(m[1]), Number(m[2]))));
}
const log = values['sent-log'] ? createWriteStream(values['sent-log']) : undefined;
const out = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);
const masters = values.channel.map(
  (channel) =>
    new SyntheticMaster({
      region: values.region,
      channelName: channel,
      endpoint: values.endpoint,
      credentials: {
        accessKeyId,
        secretAccessKey,
        ...(process.env.AWS_SESSION_TOKEN ? { sessionToken: process.env.AWS_SESSION_TOKEN } : {}),
      },
      clips,
      logger: logger.child({ channel }),
      onAnswered: (viewer, atMs) => out({ answered: channel, viewer, atMs }),
      ...(log ? { onSent: (f) => log.write(`${JSON.stringify({ channel, ...f })}\n`) } : {}),
    }),
);
await Promise.all(masters.map((m) => m.start()));
out({ ready: true });
const every = Number(values['switch-every'] ?? 0);
let clip = 0;
const switcher =
  every > 0 && clips.length > 1
    ? setInterval(() => {
        clip = (clip + 1) % clips.length;
        for (const m of masters) m.setClip(clip);
      }, every * 1000)
    : undefined;
const shutdown = () => {
  clearInterval(switcher);
  void Promise.all(masters.map((m) => m.stop())).then(() => {
    for (const [i, m] of masters.entries())
      logger.info({ channel: values.channel[i], ...m.stats }, 'synthetic master stopped');
    if (log) log.end(() => process.exit(0));
    else process.exit(0);
  });
};
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
