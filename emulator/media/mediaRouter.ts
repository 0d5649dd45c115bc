import type { IncomingMessage } from 'node:http';
import express, { type Request, type Response, type Router } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import { accessDenied, invalidArgument, resourceNotFound } from '../awsErrors.js';
import { buildClipMatroska } from './clipBuilder.js';
import {
  compareFragmentNumbers,
  fragmentsOverlapping,
  fragmentsStartingIn,
  timestampOf,
  type TimestampKind,
} from './fragmentSelection.js';
import type { FragmentStore } from './fragmentStore.js';
import { createGetImagesRouter } from './getImages.js';
import { createHlsRouter } from './hlsRouter.js';
import { MEDIA_CONTENT_TYPE, mediaChunk } from './mediaChunk.js';
import { remuxToMp4 } from './mp4Remuxer.js';
import { sendOperationError, signedJsonOperation } from './signedJsonOperation.js';
import { PutMediaFaults } from './putMediaFaults.js';
import { DEFAULT_PUT_MEDIA_LIMITS, PutMediaSession, type PutMediaLimits } from './putMediaSession.js';

export interface MediaStreamInfo {
  name: string;
  arn: string;
  retentionHours: number;
  status: string;
}

/** SigV4 check supplied by the server; resolves to an error message to reject with 403, else undefined. */
export type VerifyRequest = (
  req: IncomingMessage,
  options: { emptyPayloadHash: boolean; body?: Buffer },
) => Promise<string | undefined>;

export interface MediaRouterOptions {
  store: FragmentStore;
  /** Resolves a stream name/ARN to its state; undefined if the stream does not exist. */
  lookupStream: (ref: { StreamName?: string; StreamARN?: string }) => MediaStreamInfo | undefined;
  verify: VerifyRequest;
  logger: Logger;
  /** Counter hook (e.g. the emulator's `Stats.inc`). */
  count?: (name: string, by?: number) => void;
  /** Overrides of the KVS quotas (tests shorten the idle timers). */
  limits?: Partial<PutMediaLimits>;
  /** GetClip: ffmpeg binary (default `ffmpeg`) and KVS-like limits (100 fragments, 200 MB). */
  clip?: { ffmpegPath?: string; maxFragments?: number; maxBytes?: number; timeoutMs?: number };
  /** GetMedia keeps following a live stream until no fragment arrives for this long (default 5 s). */
  getMediaIdleMs?: number;
  /** Fault injection for PutMedia (admin hook); none by default. */
  faults?: PutMediaFaults;
  /** HLS sessions: the clock of their expiry and of LIVE_REPLAY (tests move it); default Date.now. */
  hls?: { now?: () => number };
}

const epochSeconds = z.number().finite().nonnegative();
const streamRef = {
  StreamName: z.string().min(1).max(256).optional(),
  StreamARN: z.string().min(1).max(1024).optional(),
};
const timestampRange = z.object({ StartTimestamp: epochSeconds, EndTimestamp: epochSeconds });
const selectorType = z.enum(['PRODUCER_TIMESTAMP', 'SERVER_TIMESTAMP']);

const listFragmentsInput = z.object({
  ...streamRef,
  MaxResults: z.number().int().min(1).max(1000).optional(),
  NextToken: z.string().optional(),
  FragmentSelector: z
    .object({ FragmentSelectorType: selectorType, TimestampRange: timestampRange })
    .optional(),
});
const getMediaInput = z.object({
  ...streamRef,
  StartSelector: z.object({
    StartSelectorType: z.enum([
      'FRAGMENT_NUMBER',
      'SERVER_TIMESTAMP',
      'PRODUCER_TIMESTAMP',
      'NOW',
      'EARLIEST',
      'CONTINUATION_TOKEN',
    ]),
    AfterFragmentNumber: z
      .string()
      .regex(/^[0-9]+$/)
      .optional(),
    StartTimestamp: epochSeconds.optional(),
    ContinuationToken: z
      .string()
      .regex(/^[0-9]+$/)
      .optional(),
  }),
});
const getMediaForFragmentListInput = z.object({
  ...streamRef,
  Fragments: z
    .array(z.string().regex(/^[0-9]+$/))
    .min(1)
    .max(1000),
});
const getClipInput = z.object({
  ...streamRef,
  ClipFragmentSelector: z.object({ FragmentSelectorType: selectorType, TimestampRange: timestampRange }),
});

/**
 * The KVS media data plane: `POST /putMedia` (kinesisvideo media endpoint) and the archived-media reads
 * `/listFragments`, `/getMedia`, `/getMediaForFragmentList`, `/getClip`. Mount before any body parser: PutMedia
 * streams its body and the JSON routes need the raw bytes for SigV4.
 */
export function createMediaRouter(options: MediaRouterOptions): Router {
  const router = express.Router();
  const logger = options.logger.child({ module: 'media' });
  const count = options.count ?? (() => undefined);
  const limits: PutMediaLimits = { ...DEFAULT_PUT_MEDIA_LIMITS, ...options.limits };
  const sessions = new Map<string, PutMediaSession>();
  const { store } = options;
  const faults = options.faults ?? new PutMediaFaults();

  const fail = (res: Response, op: string, err: unknown): void =>
    sendOperationError(res, op, err, { logger, count });

  const findStream = (ref: {
    StreamName?: string | undefined;
    StreamARN?: string | undefined;
  }): MediaStreamInfo => {
    if (ref.StreamName === undefined && ref.StreamARN === undefined) {
      throw invalidArgument('StreamName or StreamARN must be specified');
    }
    const stream = options.lookupStream({
      ...(ref.StreamName !== undefined ? { StreamName: ref.StreamName } : {}),
      ...(ref.StreamARN !== undefined ? { StreamARN: ref.StreamARN } : {}),
    });
    if (!stream)
      throw resourceNotFound(`The requested stream ${ref.StreamName ?? ref.StreamARN ?? ''} is not found`);
    return stream;
  };

  router.post('/putMedia', (req: Request, res: Response) => {
    void (async () => {
      const done = await faults.admit(req, res);
      res.once('close', done);
      const problem = await options.verify(req, { emptyPayloadHash: true });
      if (problem !== undefined) throw accessDenied(problem);
      const name = req.header('x-amzn-stream-name');
      const arn = req.header('x-amzn-stream-arn');
      const stream = findStream({ StreamName: name, StreamARN: arn });
      const timecodeType = req.header('x-amzn-fragment-timecode-type') ?? '';
      if (timecodeType !== 'ABSOLUTE' && timecodeType !== 'RELATIVE') {
        throw invalidArgument('x-amzn-fragment-timecode-type must be ABSOLUTE or RELATIVE');
      }
      const start = req.header('x-amzn-producer-start-timestamp');
      const producerStartMs = start === undefined ? undefined : parseProducerStart(start);
      if (producerStartMs === null)
        throw invalidArgument('x-amzn-producer-start-timestamp is not <seconds>.<ms>');
      if (timecodeType === 'RELATIVE' && producerStartMs === undefined) {
        throw invalidArgument('RELATIVE timecodes need x-amzn-producer-start-timestamp');
      }
      await store.open(stream.name);
      const session = new PutMediaSession({
        req,
        res,
        stream: { name: stream.name, retentionHours: stream.retentionHours },
        timecodeType,
        producerStartMs,
        store,
        limits,
        logger,
        count,
        // One PutMedia connection per stream: the newest wins — from its first fragment on. kvssink opens the
        // next connection before it stops using the old one when it rotates its token, and finishes the
        // fragment under way on the old one; cutting the old one at connect time would lose that fragment.
        onFirstFragment: () => {
          const previous = sessions.get(stream.name);
          if (previous !== session) previous?.supersede();
          sessions.set(stream.name, session);
        },
      });
      if (!sessions.has(stream.name)) sessions.set(stream.name, session);
      count('putMedia.connections');
      logger.info({ stream: stream.name }, 'PutMedia connection started');
      session.start();
      const end = await session.done;
      if (sessions.get(stream.name) === session) sessions.delete(stream.name);
      logger.info(
        { stream: stream.name, end, fragments: session.fragmentsStored.length },
        'PutMedia connection ended',
      );
    })().catch((err: unknown) => {
      // The body is not read on a refused request: drain it so the client sees the answer.
      req.resume();
      fail(res, 'putMedia', err);
    });
  });

  /** Reads, verifies and validates a REST-JSON request, then runs the operation. */
  const operation = <S extends z.ZodType>(
    path: string,
    schema: S,
    run: (input: z.infer<S>, res: Response, req: Request) => Promise<void>,
  ): void => signedJsonOperation(router, { verify: options.verify, logger, count }, path, schema, run);

  operation('/listFragments', listFragmentsInput, async (input, res) => {
    const stream = findStream(input);
    let records = await store.list(stream.name);
    if (input.FragmentSelector) {
      const range = toRange(
        input.FragmentSelector.FragmentSelectorType,
        input.FragmentSelector.TimestampRange,
      );
      records = fragmentsStartingIn(records, range);
    }
    const offset = input.NextToken === undefined ? 0 : decodeToken(input.NextToken);
    const max = input.MaxResults ?? 100;
    const page = records.slice(offset, offset + max);
    res.json({
      Fragments: page.map((r) => ({
        FragmentNumber: r.fragmentNumber,
        FragmentSizeInBytes: r.sizeBytes,
        ProducerTimestamp: r.producerTimestampMs / 1000,
        ServerTimestamp: r.serverTimestampMs / 1000,
        FragmentLengthInMilliseconds: r.durationMs,
      })),
      ...(offset + max < records.length ? { NextToken: encodeToken(offset + max) } : {}),
    });
  });

  operation('/getMediaForFragmentList', getMediaForFragmentListInput, async (input, res) => {
    const stream = findStream(input);
    const all = await store.list(stream.name);
    const wanted = input.Fragments.map((n) => {
      const record = all.find((r) => r.fragmentNumber === n);
      if (!record) throw resourceNotFound(`Fragment ${n} is not found`);
      return record;
    });
    res.status(200).type(MEDIA_CONTENT_TYPE);
    for (const record of wanted) {
      res.write(mediaChunk(await store.read(stream.name, record), record, { nowMs: Date.now() }));
    }
    res.end();
  });

  operation('/getMedia', getMediaInput, async (input, res, req) => {
    const stream = findStream(input);
    const selector = input.StartSelector;
    const all = await store.list(stream.name);
    let startIndex: number;
    switch (selector.StartSelectorType) {
      case 'EARLIEST':
        startIndex = 0;
        break;
      case 'NOW':
        startIndex = all.length;
        break;
      case 'FRAGMENT_NUMBER':
      case 'CONTINUATION_TOKEN': {
        const number =
          selector.StartSelectorType === 'FRAGMENT_NUMBER'
            ? selector.AfterFragmentNumber
            : selector.ContinuationToken;
        if (number === undefined)
          throw invalidArgument(`${selector.StartSelectorType} needs its fragment number`);
        const at = all.findIndex((r) => r.fragmentNumber === number);
        if (at < 0) throw resourceNotFound(`Fragment ${number} is not found`);
        // A continuation token names the last chunk delivered: resume after it.
        startIndex = selector.StartSelectorType === 'CONTINUATION_TOKEN' ? at + 1 : at;
        break;
      }
      case 'PRODUCER_TIMESTAMP':
      case 'SERVER_TIMESTAMP': {
        if (selector.StartTimestamp === undefined) throw invalidArgument('StartTimestamp is required');
        const startMs = selector.StartTimestamp * 1000;
        const kind: TimestampKind = selector.StartSelectorType;
        // The fragment containing the timestamp, else the first one after it.
        const containing = all.findIndex((r) => {
          const ts = timestampOf(r, kind);
          return ts <= startMs && startMs < ts + Math.max(r.durationMs, 1);
        });
        startIndex = containing >= 0 ? containing : all.findIndex((r) => timestampOf(r, kind) >= startMs);
        if (startIndex < 0) startIndex = all.length;
        break;
      }
    }
    res.status(200).type(MEDIA_CONTENT_TYPE);
    res.flushHeaders();
    let lastSent: string | undefined = all[startIndex - 1]?.fragmentNumber;
    let closed = false;
    req.on('close', () => (closed = true));
    const idleMs = options.getMediaIdleMs ?? 5_000;
    let lastNewAt = Date.now();
    for (;;) {
      const records = await store.list(stream.name);
      const next = records.filter(
        (r) => lastSent === undefined || compareFragmentNumbers(r.fragmentNumber, lastSent) > 0,
      );
      const pending = lastSent === undefined ? records.slice(startIndex) : next;
      for (const record of pending) {
        if (closed) return;
        const file = await store.read(stream.name, record);
        res.write(mediaChunk(file, record, { continuationToken: record.fragmentNumber, nowMs: Date.now() }));
        lastSent = record.fragmentNumber;
        lastNewAt = Date.now();
      }
      if (lastSent === undefined && pending.length === 0) lastSent = records.at(-1)?.fragmentNumber ?? '0';
      // Follow a live producer; stop once it is gone or silent.
      if (closed || !sessions.has(stream.name) || Date.now() - lastNewAt > idleMs) break;
      await new Promise<void>((resolve) => {
        const onFragment = (name: string): void => {
          if (name !== stream.name) return;
          clearTimeout(timer);
          store.off('fragment', onFragment);
          resolve();
        };
        const timer = setTimeout(() => {
          store.off('fragment', onFragment);
          resolve();
        }, 500);
        store.on('fragment', onFragment);
      });
    }
    res.end();
  });

  operation('/getClip', getClipInput, async (input, res) => {
    const stream = findStream(input);
    const selector = input.ClipFragmentSelector;
    const range = toRange(selector.FragmentSelectorType, selector.TimestampRange);
    if (range.endMs <= range.startMs) throw invalidArgument('EndTimestamp must be after StartTimestamp');
    const selected = fragmentsOverlapping(await store.list(stream.name), range);
    if (selected.length === 0) throw resourceNotFound('No fragments found in the requested time range');
    const maxFragments = options.clip?.maxFragments ?? 100;
    const maxBytes = options.clip?.maxBytes ?? 200 * 1024 * 1024;
    const bytes = selected.reduce((sum, r) => sum + r.sizeBytes, 0);
    if (selected.length > maxFragments || bytes > maxBytes) {
      throw invalidArgument(
        `The clip would contain ${selected.length} fragments / ${bytes} bytes; the limit is ${maxFragments} fragments / ${maxBytes} bytes`,
      );
    }
    const parts = await Promise.all(
      selected.map(async (record) => ({ record, file: await store.read(stream.name, record) })),
    );
    const clip = buildClipMatroska(parts);
    if (clip.cutAt) {
      logger.info(
        { stream: stream.name, at: clip.cutAt.fragmentNumber },
        'GetClip ends early: track layout changes',
      );
    }
    const mp4 = await remuxToMp4(clip.bytes, {
      ffmpegPath: options.clip?.ffmpegPath ?? 'ffmpeg',
      timeoutMs: options.clip?.timeoutMs ?? 60_000,
    });
    count('getClip.fragments', clip.included.length);
    res.status(200).type('video/mp4').send(mp4);
  });

  router.use(
    createHlsRouter({
      store,
      lookupStream: options.lookupStream,
      verify: options.verify,
      logger,
      count,
      ...(options.hls?.now ? { now: options.hls.now } : {}),
      ...(options.clip?.ffmpegPath ? { ffmpegPath: options.clip.ffmpegPath } : {}),
    }),
  );
  router.use(
    createGetImagesRouter({
      store,
      lookupStream: options.lookupStream,
      verify: options.verify,
      logger,
      count,
      ...(options.clip?.ffmpegPath ? { ffmpegPath: options.clip.ffmpegPath } : {}),
    }),
  );

  return router;
}

function toRange(
  kind: TimestampKind,
  range: { StartTimestamp: number; EndTimestamp: number },
): { kind: TimestampKind; startMs: number; endMs: number } {
  return { kind, startMs: range.StartTimestamp * 1000, endMs: range.EndTimestamp * 1000 };
}

/** `<seconds>.<ms>` where ms is not zero-padded (kvssink sends `.30` for 30 ms); null if malformed. */
export function parseProducerStart(value: string): number | null {
  const match = /^(\d+)(?:\.(\d{1,3}))?$/.exec(value.trim());
  if (!match) return null;
  return Number(match[1]) * 1000 + Number(match[2] ?? 0);
}

function encodeToken(offset: number): string {
  return Buffer.from(JSON.stringify({ offset })).toString('base64url');
}

function decodeToken(token: string): number {
  try {
    const { offset } = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { offset?: unknown };
    if (typeof offset === 'number' && Number.isInteger(offset) && offset >= 0) return offset;
  } catch {
    // fall through
  }
  throw invalidArgument('NextToken is invalid');
}
