import express, { type Router } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import { invalidArgument, resourceNotFound } from '../awsErrors.js';
import { timestampOf } from './fragmentSelection.js';
import type { FragmentRecord, FragmentStore } from './fragmentStore.js';
import { videoTrackOf } from './hlsPlaylist.js';
import { extractKeyFrameImage, type ImageOptions } from './imageExtractor.js';
import type { MediaStreamInfo, VerifyRequest } from './mediaRouter.js';
import { signedJsonOperation } from './signedJsonOperation.js';

export interface GetImagesOptions {
  store: FragmentStore;
  lookupStream: (ref: { StreamName?: string; StreamARN?: string }) => MediaStreamInfo | undefined;
  verify: VerifyRequest;
  logger: Logger;
  count: (name: string, by?: number) => void;
  ffmpegPath?: string;
}

/** KVS GetImages limits: a range of at most 300 s, at most 25 images a page, 200 ms minimum interval. */
const MAX_RANGE_MS = 300_000;
const PAGE_SIZE = 25;
const DEFAULT_SAMPLING_INTERVAL_MS = 3_000;

const epochSeconds = z.number().finite().nonnegative();
const getImagesInput = z.object({
  StreamName: z.string().min(1).max(256).optional(),
  StreamARN: z.string().min(1).max(1024).optional(),
  ImageSelectorType: z.enum(['PRODUCER_TIMESTAMP', 'SERVER_TIMESTAMP']),
  StartTimestamp: epochSeconds,
  EndTimestamp: epochSeconds,
  SamplingInterval: z.number().int().min(200).max(20_000).optional(),
  Format: z.enum(['JPEG', 'PNG']),
  FormatConfig: z
    .object({
      JPEGQuality: z
        .string()
        .regex(/^[0-9]{1,3}$/)
        .refine((v) => Number(v) >= 1 && Number(v) <= 100, 'JPEGQuality is 1..100')
        .optional(),
    })
    .strict()
    .optional(),
  WidthPixels: z.number().int().min(1).max(3840).optional(),
  HeightPixels: z.number().int().min(1).max(2160).optional(),
  MaxResults: z.number().int().min(1).optional(),
  NextToken: z.string().min(1).max(4096).optional(),
});

interface ImageResult {
  TimeStamp: number;
  ImageContent?: string;
  Error?: 'NO_MEDIA' | 'MEDIA_ERROR';
}

/**
 * GetImages: one image per sampling interval from StartTimestamp to EndTimestamp (both inclusive), each from
 * the key frame that starts the fragment holding that timestamp; NO_MEDIA where no video fragment does,
 * MEDIA_ERROR where the frame cannot be decoded. Paginated by NextToken (the next sample's index).
 */
export function createGetImagesRouter(options: GetImagesOptions): Router {
  const router = express.Router();
  const logger = options.logger.child({ module: 'getImages' });
  signedJsonOperation(router, { ...options, logger }, '/getImages', getImagesInput, async (input, res) => {
    if (input.StreamName === undefined && input.StreamARN === undefined) {
      throw invalidArgument('StreamName or StreamARN must be specified');
    }
    const stream = options.lookupStream({
      ...(input.StreamName !== undefined ? { StreamName: input.StreamName } : {}),
      ...(input.StreamARN !== undefined ? { StreamARN: input.StreamARN } : {}),
    });
    if (!stream) {
      throw resourceNotFound(
        `The requested stream ${input.StreamName ?? input.StreamARN ?? ''} is not found`,
      );
    }
    const startMs = input.StartTimestamp * 1000;
    const endMs = input.EndTimestamp * 1000;
    if (endMs < startMs) throw invalidArgument('EndTimestamp must not be before StartTimestamp');
    if (endMs - startMs > MAX_RANGE_MS) {
      throw invalidArgument('EndTimestamp must be at most 300 seconds after StartTimestamp');
    }
    if (input.WidthPixels !== undefined && input.HeightPixels === undefined) {
      throw invalidArgument('WidthPixels needs HeightPixels');
    }
    const interval = input.SamplingInterval ?? DEFAULT_SAMPLING_INTERVAL_MS;
    const total = Math.floor((endMs - startMs) / interval) + 1;
    const first = input.NextToken === undefined ? 0 : decodeToken(input.NextToken, total);
    const pageSize = Math.min(input.MaxResults ?? PAGE_SIZE, PAGE_SIZE);
    const last = Math.min(total, first + pageSize);

    const kind = input.ImageSelectorType;
    const records = (await options.store.list(stream.name))
      .filter((r) => videoTrackOf(r) !== undefined)
      .sort((a, b) => timestampOf(a, kind) - timestampOf(b, kind));
    const holding = (t: number): FragmentRecord | undefined =>
      records
        .filter((r) => timestampOf(r, kind) <= t && t < timestampOf(r, kind) + Math.max(r.durationMs, 1))
        .at(-1);
    const imageOptions: ImageOptions = {
      format: input.Format,
      jpegQuality: Number(input.FormatConfig?.JPEGQuality ?? 80),
      width: input.WidthPixels,
      height: input.HeightPixels,
      ffmpegPath: options.ffmpegPath ?? 'ffmpeg',
      timeoutMs: 30_000,
    };
    // Samples inside one fragment share its key frame: one decode each.
    const images = new Map<string, Promise<Buffer>>();
    const results: ImageResult[] = [];
    for (let i = first; i < last; i++) {
      const t = startMs + i * interval;
      const record = holding(t);
      if (!record) {
        results.push({ TimeStamp: t / 1000, Error: 'NO_MEDIA' });
        continue;
      }
      let image = images.get(record.fragmentNumber);
      if (!image) {
        image = options.store
          .read(stream.name, record)
          .then((file) => extractKeyFrameImage(file, imageOptions));
        images.set(record.fragmentNumber, image);
      }
      try {
        results.push({ TimeStamp: t / 1000, ImageContent: (await image).toString('base64') });
      } catch (err) {
        logger.info({ err, fragment: record.fragmentNumber }, 'GetImages: no image from fragment');
        results.push({ TimeStamp: t / 1000, Error: 'MEDIA_ERROR' });
      }
    }
    options.count('getImages.images', results.filter((r) => r.ImageContent !== undefined).length);
    res.json({ Images: results, ...(last < total ? { NextToken: encodeToken(last) } : {}) });
  });
  return router;
}

function encodeToken(index: number): string {
  return Buffer.from(JSON.stringify({ image: index })).toString('base64url');
}

function decodeToken(token: string, total: number): number {
  try {
    const { image } = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { image?: unknown };
    if (typeof image === 'number' && Number.isInteger(image) && image >= 0 && image < total) return image;
  } catch {
    // fall through
  }
  throw invalidArgument('NextToken is invalid');
}
