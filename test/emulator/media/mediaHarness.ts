import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import express from 'express';
import { pino } from 'pino';
import { SigV4Verifier } from '../../../emulator/sigv4.js';
import { AckStreamParser, type Ack } from '../../../emulator/media/ackStream.js';
import {
  Id,
  UNKNOWN_SIZE,
  children,
  element,
  elementHeader,
  readId,
  readSize,
  uintElement,
} from '../../../emulator/media/ebml.js';
import { FragmentStore } from '../../../emulator/media/fragmentStore.js';
import {
  createMediaRouter,
  type MediaRouterOptions,
  type MediaStreamInfo,
} from '../../../emulator/media/mediaRouter.js';

const run = promisify(execFile);

export const REGION = 'us-west-2';
export const CREDENTIALS = { accessKeyId: 'AKIDMEDIATEST', secretAccessKey: 'media-test-secret' };

/** The parts of a Matroska file that a KVS-style stream is rebuilt from. */
export interface MkvParts {
  ebmlHeader: Buffer;
  info: Buffer;
  tracks: Buffer;
  clusters: Array<{ timecode: number; blocks: Buffer[] }>;
}

/**
 * Encodes H.264 (x264, no B-frames, a key frame each second) and optionally AAC with real GStreamer, in a
 * file with known element sizes (easy to take apart).
 */
export async function encodeWithGStreamer(options: {
  seconds: number;
  audio: boolean;
  width?: number;
  height?: number;
  pattern?: string;
}): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'kvs-media-enc-'));
  const out = join(dir, 'out.mkv');
  const frames = options.seconds * 30;
  const pipeline = [
    `videotestsrc num-buffers=${frames} pattern=${options.pattern ?? 'smpte'}`,
    `! video/x-raw,width=${options.width ?? 320},height=${options.height ?? 240},framerate=30/1`,
    '! x264enc bframes=0 key-int-max=30 tune=zerolatency ! h264parse ! video/x-h264,stream-format=avc',
    `! matroskamux name=mux streamable=false ! filesink location=${out}`,
  ];
  if (options.audio) {
    const buffers = Math.ceil((options.seconds * 48000) / 1024);
    pipeline.push(
      `audiotestsrc num-buffers=${buffers} samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=1`,
      '! avenc_aac ! aacparse ! mux.',
    );
  }
  try {
    await run('gst-launch-1.0', ['-q', ...pipeline.join(' ').split(' ')], { timeout: 60_000 });
    return await readFile(out);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Takes a known-size Matroska file apart (Segment children, Cluster Timecode and blocks). */
export function splitMatroska(file: Buffer): MkvParts {
  const top = [...children(file)];
  const ebml = top.find((e) => e.id === Id.EBML);
  const segment = top.find((e) => e.id === Id.Segment);
  if (!ebml || !segment) throw new Error('not a Matroska file');
  const parts: MkvParts = {
    ebmlHeader: element(Id.EBML, ebml.data),
    info: Buffer.alloc(0),
    tracks: Buffer.alloc(0),
    clusters: [],
  };
  for (const child of children(segment.data)) {
    if (child.id === Id.Info) parts.info = element(Id.Info, child.data);
    else if (child.id === Id.Tracks) parts.tracks = element(Id.Tracks, child.data);
    else if (child.id === Id.Cluster) {
      let timecode = 0;
      const blocks: Buffer[] = [];
      for (const c of children(child.data)) {
        if (c.id === Id.Timecode) timecode = c.data.length === 0 ? 0 : c.data.readUIntBE(0, c.data.length);
        else if (c.id === Id.SimpleBlock || c.id === Id.BlockGroup) blocks.push(element(c.id, c.data));
      }
      parts.clusters.push({ timecode, blocks });
    }
  }
  return parts;
}

/** A SimpleBlock element. */
export function simpleBlock(
  track: number,
  relativeTimecode: number,
  keyFrame: boolean,
  payload: Buffer,
): Buffer {
  const head = Buffer.alloc(4);
  head[0] = 0x80 | track;
  head.writeInt16BE(relativeTimecode, 1);
  head[3] = keyFrame ? 0x80 : 0;
  return element(Id.SimpleBlock, head, payload);
}

/** Block fields of a SimpleBlock element built by `element()` (8-byte size). */
export function blockTrack(block: Buffer): number {
  const id = readId(block, 0);
  const size = id ? readSize(block, id.length) : undefined;
  if (!id || !size) throw new Error('bad block');
  return (block[id.length + size.length] ?? 0) & 0x7f;
}

/** Changes a SimpleBlock's track number (single-byte track varints only). */
export function retrack(block: Buffer, track: number): Buffer {
  const copy = Buffer.from(block);
  const id = readId(copy, 0);
  const size = id ? readSize(copy, id.length) : undefined;
  if (!id || !size) throw new Error('bad block');
  copy[id.length + size.length] = 0x80 | track;
  return copy;
}

/**
 * What kvssink sends: EBML header, a Segment of unknown size, Info, Tracks, then one unknown-size Cluster per
 * fragment with an absolute epoch-ms Timecode.
 */
export function kvsStream(parts: MkvParts, options: { baseMs: number; tracks?: Buffer }): Buffer {
  const out: Buffer[] = [
    parts.ebmlHeader,
    elementHeader(Id.Segment, UNKNOWN_SIZE),
    parts.info,
    options.tracks ?? parts.tracks,
  ];
  for (const cluster of parts.clusters) {
    out.push(
      elementHeader(Id.Cluster, UNKNOWN_SIZE),
      uintElement(Id.Timecode, options.baseMs + cluster.timecode),
      ...cluster.blocks,
    );
  }
  return Buffer.concat(out);
}

/** Adds TrackEntry elements (copies of the first one with new numbers) to a Tracks element. */
export function withExtraTracks(tracks: Buffer, count: number): Buffer {
  const id = readId(tracks, 0);
  const size = id ? readSize(tracks, id.length) : undefined;
  if (!id || !size) throw new Error('bad Tracks');
  const entries = [...children(tracks.subarray(id.length + size.length))].map((e) => element(e.id, e.data));
  const first = entries[0];
  if (!first) throw new Error('no TrackEntry');
  const firstChildren = [...children(first.subarray(1 + 8))]; // TrackEntry ID (1) + 8-byte size
  for (let n = 0; n < count; n++) {
    const number = entries.length + 1;
    entries.push(
      element(
        Id.TrackEntry,
        ...firstChildren.map((c) =>
          c.id === Id.TrackNumber
            ? uintElement(Id.TrackNumber, number)
            : c.id === 0x73c5
              ? uintElement(0x73c5, number)
              : element(c.id, c.data),
        ),
      ),
    );
  }
  return element(Id.Tracks, ...entries);
}

export interface MediaServer {
  url: string;
  dataDir: string;
  store: FragmentStore;
  counts: Map<string, number>;
  streams: Map<string, MediaStreamInfo>;
  close(): Promise<void>;
}

/** A minimal express app mounting the media router, with SigV4 verified by the emulator's verifier. */
export async function startMediaServer(
  overrides: Partial<Pick<MediaRouterOptions, 'limits' | 'getMediaIdleMs' | 'faults' | 'hls'>> = {},
): Promise<MediaServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'kvs-media-store-'));
  const logger = pino({ level: process.env.MEDIA_TEST_LOG ?? 'silent' });
  const store = new FragmentStore({ dataDir, logger });
  const counts = new Map<string, number>();
  const streams = new Map<string, MediaStreamInfo>();
  const verifier = new SigV4Verifier({ region: REGION, service: 'kinesisvideo', credentials: [CREDENTIALS] });
  const app = express();
  app.use(
    createMediaRouter({
      store,
      logger,
      lookupStream: (ref) =>
        ref.StreamName !== undefined
          ? streams.get(ref.StreamName)
          : [...streams.values()].find((s) => s.arn === ref.StreamARN),
      verify: (req: IncomingMessage, options) => {
        const url = (req as express.Request).originalUrl ?? req.url ?? '/';
        const result = verifier.verify({
          method: req.method ?? 'POST',
          url,
          rawHeaders: req.rawHeaders,
          ...(options.emptyPayloadHash ? {} : { body: options.body ?? Buffer.alloc(0) }),
        });
        return Promise.resolve(result.ok ? undefined : result.message);
      },
      count: (name, by = 1) => counts.set(name, (counts.get(name) ?? 0) + by),
      ...overrides,
    }),
  );
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    dataDir,
    store,
    counts,
    streams,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await store.flush();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export function addStream(server: MediaServer, name: string, retentionHours = 2): MediaStreamInfo {
  const info = {
    name,
    arn: `arn:aws:kinesisvideo:${REGION}:123456789012:stream/${name}/1`,
    retentionHours,
    status: 'ACTIVE',
  };
  server.streams.set(name, info);
  return info;
}

const signer = new SignatureV4({
  credentials: CREDENTIALS,
  region: REGION,
  service: 'kinesisvideo',
  sha256: Sha256,
});

export interface PutMediaResult {
  status: number;
  acks: Ack[];
  gotContinue: boolean;
  /** Set when the response body was not an ACK stream (errors). */
  body: string;
  headers: IncomingMessage['headers'];
  /** Raw reads of the response body (to show ACKs may be split). */
  reads: number;
}

/**
 * A PutMedia client as kvssink behaves: chunked, `Expect: 100-continue`, signed with the empty-payload hash
 * (Host without the port is what kvssink signs; here the port is kept as Node sends it). The body is
 * written in `chunkSize` pieces once the server says 100 Continue, optionally pausing between pieces.
 */
export async function putMedia(
  baseUrl: string,
  stream: string,
  body: Buffer | AsyncIterable<Buffer>,
  options: {
    chunkSize?: number;
    signed?: boolean;
    headers?: Record<string, string>;
    onAck?: (ack: Ack) => void;
    /** Sign with these instead of the harness's CREDENTIALS/REGION (e.g. against a full emulator). */
    auth?: {
      credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
      region: string;
    };
  } = {},
): Promise<PutMediaResult> {
  const url = new URL('/putMedia', baseUrl);
  const headers: Record<string, string> = {
    host: url.host,
    'x-amzn-stream-name': stream,
    'x-amzn-fragment-timecode-type': 'ABSOLUTE',
    'x-amzn-producer-start-timestamp': `${Math.floor(Date.now() / 1000)}.30`,
    'x-amzn-fragment-acknowledgment-required': '1',
    ...options.headers,
  };
  let signedHeaders = headers;
  if (options.signed !== false) {
    const withAuth = options.auth
      ? new SignatureV4({
          credentials: options.auth.credentials,
          region: options.auth.region,
          service: 'kinesisvideo',
          sha256: Sha256,
        })
      : signer;
    const signed = await withAuth.sign(
      new HttpRequest({
        method: 'POST',
        protocol: 'http:',
        hostname: url.hostname,
        port: Number(url.port),
        path: '/putMedia',
        headers,
      }),
    );
    signedHeaders = signed.headers;
  }
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, {
      method: 'POST',
      headers: {
        ...signedHeaders,
        'content-type': 'application/json',
        expect: '100-continue',
        'transfer-encoding': 'chunked',
      },
    });
    let gotContinue = false;
    req.on('error', reject);
    req.on('continue', () => {
      gotContinue = true;
      void (async () => {
        const chunkSize = options.chunkSize ?? 64 * 1024;
        const pieces = Buffer.isBuffer(body) ? split(body, chunkSize) : body;
        for await (const piece of pieces) {
          if (req.destroyed || req.writableEnded) return;
          if (!req.write(piece)) await new Promise((r) => req.once('drain', r));
        }
        req.end();
      })().catch(() => req.destroy());
    });
    req.on('response', (res) => {
      const parser = new AckStreamParser();
      const acks: Ack[] = [];
      let text = '';
      let reads = 0;
      res.on('data', (chunk: Buffer) => {
        reads++;
        text += chunk.toString();
        if (res.statusCode === 200) {
          for (const ack of parser.push(chunk)) {
            acks.push(ack);
            options.onAck?.(ack);
          }
        }
      });
      res.on('end', () => {
        if (!req.writableEnded) req.destroy();
        resolve({ status: res.statusCode ?? 0, acks, gotContinue, body: text, headers: res.headers, reads });
      });
      res.on('error', reject);
    });
  });
}

function* split(body: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < body.length; i += size) yield body.subarray(i, i + size);
}

export async function ffprobe(
  path: string,
): Promise<{ streams: Array<Record<string, unknown>>; format: Record<string, unknown> }> {
  const { stdout } = await run('ffprobe', [
    '-v',
    'error',
    '-show_streams',
    '-show_format',
    '-of',
    'json',
    path,
  ]);
  return JSON.parse(stdout) as { streams: Array<Record<string, unknown>>; format: Record<string, unknown> };
}

/** Decodes every frame; returns ffmpeg's error output (empty = clean) and the decoded video frame count. */
export async function decode(path: string): Promise<{ errors: string; videoFrames: number }> {
  const { stderr } = await run('ffmpeg', ['-v', 'error', '-i', path, '-f', 'null', '-'], {
    maxBuffer: 16 * 1024 * 1024,
  });
  const { stdout } = await run('ffprobe', [
    '-v',
    'error',
    '-count_frames',
    '-select_streams',
    'v:0',
    '-show_entries',
    'stream=nb_read_frames',
    '-of',
    'csv=p=0',
    path,
  ]);
  return { errors: stderr.trim(), videoFrames: Number(stdout.trim()) };
}

/**
 * Removes in-band SPS/PPS (NAL types 7, 8) from 4-byte length-prefixed H.264 SimpleBlocks of track 1, so
 * the only parameter sets left are the Tracks header's (as from an encoder that never repeats them).
 */
export function stripParameterSets(parts: MkvParts): MkvParts {
  const strip = (block: Buffer): Buffer => {
    if (blockTrack(block) !== 1 || readId(block, 0)?.value !== Id.SimpleBlock) return block;
    const payload = block.subarray(1 + 8);
    const head = payload.subarray(0, 4);
    const kept: Buffer[] = [];
    for (let o = 4; o + 4 <= payload.length;) {
      const len = payload.readUInt32BE(o);
      const type = (payload[o + 4] ?? 0) & 0x1f;
      if (type !== 7 && type !== 8) kept.push(payload.subarray(o, o + 4 + len));
      o += 4 + len;
    }
    return element(Id.SimpleBlock, head, ...kept);
  };
  return { ...parts, clusters: parts.clusters.map((c) => ({ ...c, blocks: c.blocks.map(strip) })) };
}

/**
 * Decodes every frame of every stream with ffprobe (no muxer behind the decoder: `ffmpeg -f null` also reports
 * its own frame-rate rounding for WebRTC's uneven frame spacing, which is not a decoding problem). Returns
 * the decoder's error output (empty = clean) and the decoded frame count per stream type.
 */
export async function decodeAll(
  path: string,
): Promise<{ errors: string; frames: { video: number; audio: number } }> {
  const { stdout, stderr } = await run(
    'ffprobe',
    [
      '-v',
      'error',
      '-count_frames',
      '-show_entries',
      'stream=codec_type,nb_read_frames',
      '-of',
      'json',
      path,
    ],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  const streams = (JSON.parse(stdout) as { streams: Array<{ codec_type: string; nb_read_frames?: string }> })
    .streams;
  const count = (type: string): number =>
    streams.filter((s) => s.codec_type === type).reduce((sum, s) => sum + Number(s.nb_read_frames ?? 0), 0);
  return { errors: stderr.trim(), frames: { video: count('video'), audio: count('audio') } };
}
