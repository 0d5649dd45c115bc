import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import { LocalRecordings, type LocalSegment } from './localRecordings.js';
import { StreamCatalog, type StreamCatalogOptions } from './streamCatalog.js';

/** Where Vite puts the player page inside the built web root (`dist/web`). */
export const PLAYER_PAGE_PATH = '/emulator/player/web/';

export interface PlayerServerOptions extends StreamCatalogOptions {
  /** The file sink's recordings to offer too (MPEG-TS segments played as HLS), e.g. `recordings/`. */
  recordingsDir?: string;
  /** The built web root (`dist/web`) holding the player page. */
  webRoot: string;
  port?: number;
  host?: string;
  logger: Logger;
}

export interface PlayerServer {
  /** The player page's URL. */
  url: string;
  close(): Promise<void>;
}

const playbackBody = z.object({
  mode: z.enum(['LIVE', 'LIVE_REPLAY', 'ON_DEMAND']),
  startMs: z.number().int().nonnegative().optional(),
  endMs: z.number().int().nonnegative().optional(),
  container: z.enum(['FRAGMENTED_MP4', 'MPEG_TS']).optional(),
  expiresSeconds: z.number().int().min(300).max(43_200).optional(),
});
const fragmentsQuery = z.object({
  startMs: z.coerce.number().int().nonnegative().optional(),
  endMs: z.coerce.number().int().nonnegative().optional(),
});
const DAY_MS = 24 * 3600 * 1000;

/**
 * The small local server behind the player page: it holds the AWS credentials and calls KVS (ListStreams,
 * ListFragments, GetHLSStreamingSessionURL) for the page, which receives only the HLS session URL — KVS's
 * HLS endpoints are authorized by the session token in that URL, so the page signs nothing. Bound to
 * loopback; requests whose Host is not loopback are refused (a page on another site could otherwise reach
 * these APIs through DNS rebinding).
 */
export async function startPlayerServer(options: PlayerServerOptions): Promise<PlayerServer> {
  const catalog = new StreamCatalog(options);
  const host = options.host ?? '127.0.0.1';
  const app = express();
  app.disable('x-powered-by');
  app.use((req: Request, res: Response, next: NextFunction) => {
    const hostname = (req.headers.host ?? '').replace(/:\d+$/, '');
    if (!['127.0.0.1', 'localhost', '[::1]', host].includes(hostname)) {
      res.status(403).json({ error: 'ForbiddenHost', message: `Host ${hostname} is not served` });
      return;
    }
    next();
  });
  app.get('/', (_req, res) => res.redirect(PLAYER_PAGE_PATH));
  app.get('/api/config', (_req, res) => {
    res.json({
      region: options.region,
      target: options.endpoint ? 'endpoint' : 'aws',
      endpoint: options.endpoint,
    });
  });
  app.get('/api/streams', (_req, res, next) => {
    catalog.streams().then((streams) => res.json({ streams }), next);
  });
  app.get('/api/streams/:name/fragments', (req, res, next) => {
    const query = fragmentsQuery.safeParse(req.query);
    if (!query.success) return badRequest(res, query.error);
    const endMs = query.data.endMs ?? Date.now() + 60_000;
    const startMs = query.data.startMs ?? endMs - DAY_MS;
    catalog.fragments(req.params.name, { startMs, endMs }).then((timeline) => res.json(timeline), next);
  });
  app.post('/api/streams/:name/playback', express.json({ limit: '4kb' }), (req, res, next) => {
    const body = playbackBody.safeParse(req.body);
    if (!body.success) return badRequest(res, body.error);
    catalog.playback(req.params.name, body.data).then((session) => res.json(session), next);
  });
  const local = options.recordingsDir ? new LocalRecordings(options.recordingsDir) : undefined;
  app.get('/api/local', (_req, res, next) => {
    (local ? local.list() : Promise.resolve([])).then((recordings) => res.json({ recordings }), next);
  });
  const localName = z.object({ name: z.string().min(1).max(300) });
  const withSegments = (
    handler: (req: Request, res: Response, name: string, segments: LocalSegment[]) => void,
  ) => {
    return (req: Request, res: Response, next: NextFunction): void => {
      const query = localName.safeParse(req.query);
      if (!query.success) return badRequest(res, query.error);
      (local ? local.segments(query.data.name) : Promise.resolve(undefined)).then((segments) => {
        if (!segments) {
          res
            .status(404)
            .json({ error: 'ResourceNotFoundException', message: `no recording ${query.data.name}` });
          return;
        }
        handler(req, res, query.data.name, segments);
      }, next);
    };
  };
  app.get(
    '/api/local/fragments',
    withSegments((_req, res, _name, segments) => res.json(LocalRecordings.timeline(segments))),
  );
  app.get(
    '/local/playlist.m3u8',
    withSegments((_req, res, name, segments) => {
      const uri = (file: string) => `segment.ts?${new URLSearchParams({ name, file }).toString()}`;
      res.type('application/vnd.apple.mpegurl').send(LocalRecordings.playlist(segments, uri));
    }),
  );
  app.get('/local/segment.ts', (req, res) => {
    const name = typeof req.query.name === 'string' ? req.query.name : '';
    const file = typeof req.query.file === 'string' ? req.query.file : '';
    const path = local?.segmentPath(name, file);
    if (!path || !existsSync(path)) {
      res.status(404).json({ error: 'ResourceNotFoundException', message: 'no such segment' });
      return;
    }
    res.type('video/mp2t').sendFile(path);
  });
  if (existsSync(options.webRoot)) {
    app.use(express.static(options.webRoot, { index: ['index.html'] }));
  } else {
    app.use((_req, res) => {
      res
        .status(503)
        .type('text')
        .send(`The player page is not built: run \`npx vite build\` (no ${options.webRoot})`);
    });
  }
  // AWS SDK errors keep their service name and status (ResourceNotFoundException 404, …); the page shows them.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    const status = e.$metadata?.httpStatusCode ?? 502;
    options.logger.warn({ err: { name: e.name, message: e.message }, status }, 'player API call failed');
    res
      .status(status >= 400 && status < 600 ? status : 502)
      .json({ error: e.name ?? 'Error', message: e.message ?? '' });
  });

  const server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}${PLAYER_PAGE_PATH}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }).finally(() => catalog.destroy());
      return closing;
    },
  };
}

function badRequest(res: Response, error: z.ZodError): void {
  const issue = error.issues[0];
  res.status(400).json({
    error: 'InvalidArgument',
    message: `${issue?.path.join('.') || 'request'}: ${issue?.message ?? 'invalid'}`,
  });
}

/**
 * The built web root (`dist/web`): beside the sources when run with tsx (`emulator/player/` → `dist/web`),
 * or beside the compiled tree in the image (`dist/node/emulator/player/` → `dist/web`).
 */
export const DEFAULT_WEB_ROOT =
  [join(import.meta.dirname, '../../dist/web'), join(import.meta.dirname, '../../../web')].find((dir) =>
    existsSync(join(dir, PLAYER_PAGE_PATH, 'index.html')),
  ) ?? join(import.meta.dirname, '../../dist/web');
