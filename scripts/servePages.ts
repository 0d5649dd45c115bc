/**
 * Serves the built pages (`dist/web`, the Vite build) for a browser: the reference master page is at
 * `/WebRTC/index.html`. compose.yaml's `pages` service runs it next to the emulator; locally:
 *
 *   npx tsx scripts/servePages.ts            (after `npm run build:web`)
 *
 * Env: PAGES_ADDRESS (host:port, default 127.0.0.1:8080), WEB_ROOT (default dist/web). With KVS_ENDPOINT set
 * (the emulator), it prints a master URL that fills in the emulator's endpoint, region, channel and test
 * credentials and starts at once. Stops on SIGINT/SIGTERM.
 */
import { createServer } from 'node:http';
import { resolve } from 'node:path';
import express from 'express';
import { DEFAULT_CHANNEL_NAME, DEFAULT_EMULATOR_CREDENTIALS, DEFAULT_REGION } from '../emulator/server.js';

const address = process.env.PAGES_ADDRESS ?? '127.0.0.1:8080';
const split = address.lastIndexOf(':');
const host = address.slice(0, split) || '127.0.0.1';
const port = Number(address.slice(split + 1));
if (split < 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`PAGES_ADDRESS must be host:port, got '${address}'\n`);
  process.exit(2);
}
const root = resolve(process.env.WEB_ROOT ?? 'dist/web');

const app = express();
app.disable('x-powered-by');
app.use(express.static(root, { index: ['index.html'] }));
const server = createServer(app);
server.listen(port, host, () => {
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  const base = `http://${shown}:${port}/WebRTC/index.html`;
  const endpoint = process.env.KVS_ENDPOINT;
  const query = endpoint
    ? '?' +
      new URLSearchParams({
        endpoint,
        region: process.env.AWS_REGION ?? DEFAULT_REGION,
        channel: process.env.CHANNEL_NAME ?? DEFAULT_CHANNEL_NAME,
        accessKeyId: DEFAULT_EMULATOR_CREDENTIALS.accessKeyId,
        secretAccessKey: DEFAULT_EMULATOR_CREDENTIALS.secretAccessKey,
        autostart: '1',
      }).toString()
    : '';
  process.stdout.write(`Pages from ${root}; reference master: ${base}${query}\n`);
});
const stop = (): void => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
