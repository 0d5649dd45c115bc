import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';

/** Serves a directory on 127.0.0.1 at an ephemeral port (the built pages for tests and the demo). */
export async function serveStatic(dir: string): Promise<{ url: string; close(): Promise<void> }> {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.static(dir, { index: ['index.html'] }));
  const server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
      return closing;
    },
  };
}
