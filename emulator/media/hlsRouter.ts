import express, { type Request, type Response, type Router } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import { AwsError, invalidArgument, resourceNotFound } from '../awsErrors.js';
import type { FragmentStore } from './fragmentStore.js';
import { buildSegment, fragmentFileStartMs, type Segment, type SegmentKind } from './hlsSegments.js';
import {
  AUDIO_TRACK,
  VIDEO_TRACK,
  audioTrackOf,
  masterPlaylist,
  mediaPlaylist,
  videoTrackOf,
} from './hlsPlaylist.js';
import {
  HlsSessions,
  selectable,
  type HlsSession,
  type HlsSessionSettings,
  type TimelineEntry,
} from './hlsSessions.js';
import type { MediaStreamInfo, VerifyRequest } from './mediaRouter.js';
import { sendOperationError, signedJsonOperation } from './signedJsonOperation.js';

export interface HlsRouterOptions {
  store: FragmentStore;
  lookupStream: (ref: { StreamName?: string; StreamARN?: string }) => MediaStreamInfo | undefined;
  verify: VerifyRequest;
  logger: Logger;
  count: (name: string, by?: number) => void;
  /** Clock of session expiry and LIVE_REPLAY (tests move it). */
  now?: () => number;
  ffmpegPath?: string;
  segmentTimeoutMs?: number;
}

/** The session URL's path prefix, as KVS serves it. */
export const HLS_PATH = '/hls/v1';
/** LIVE needs a fragment this recent (server time) to start a session (KVS: 30 s). */
const LIVE_WINDOW_MS = 30_000;
/** ON_DEMAND ranges are at most this long (KVS: 24 hours). */
const MAX_ON_DEMAND_RANGE_MS = 24 * 3_600_000;
const SEGMENT_CACHE_ENTRIES = 256;

const epochSeconds = z.number().finite().nonnegative();
const getHlsInput = z.object({
  StreamName: z.string().min(1).max(256).optional(),
  StreamARN: z.string().min(1).max(1024).optional(),
  PlaybackMode: z.enum(['LIVE', 'LIVE_REPLAY', 'ON_DEMAND']).optional(),
  HLSFragmentSelector: z
    .object({
      FragmentSelectorType: z.enum(['PRODUCER_TIMESTAMP', 'SERVER_TIMESTAMP']).optional(),
      TimestampRange: z
        .object({ StartTimestamp: epochSeconds.optional(), EndTimestamp: epochSeconds.optional() })
        .optional(),
    })
    .optional(),
  ContainerFormat: z.enum(['FRAGMENTED_MP4', 'MPEG_TS']).optional(),
  DiscontinuityMode: z.enum(['ALWAYS', 'NEVER', 'ON_DISCONTINUITY']).optional(),
  DisplayFragmentTimestamp: z.enum(['ALWAYS', 'NEVER']).optional(),
  Expires: z.number().int().min(300).max(43_200).optional(),
  MaxMediaPlaylistFragmentResults: z.number().int().min(1).max(5000).optional(),
});

const notAuthorized = (message: string): AwsError => new AwsError(403, 'NotAuthorizedException', message);

/**
 * GetHLSStreamingSessionURL (signed) and the session URL's endpoints (authorized by the session token, not
 * SigV4): master and media playlists, fMP4 init and media fragments, MPEG-TS fragments.
 */
export function createHlsRouter(options: HlsRouterOptions): Router {
  const router = express.Router();
  const logger = options.logger.child({ module: 'hls' });
  const now = options.now ?? Date.now;
  const sessions = new HlsSessions();
  const { store, count } = options;
  const segments = new Map<string, Promise<Segment>>();

  signedJsonOperation(
    router,
    { ...options, logger },
    '/getHLSStreamingSessionURL',
    getHlsInput,
    async (input, res, req) => {
      if (input.StreamName === undefined && input.StreamARN === undefined) {
        throw invalidArgument('StreamName or StreamARN must be specified');
      }
      const stream = options.lookupStream({
        ...(input.StreamName !== undefined ? { StreamName: input.StreamName } : {}),
        ...(input.StreamARN !== undefined ? { StreamARN: input.StreamARN } : {}),
      });
      if (!stream)
        throw resourceNotFound(
          `The requested stream ${input.StreamName ?? input.StreamARN ?? ''} is not found`,
        );
      if (stream.retentionHours <= 0) {
        throw new AwsError(
          400,
          'NoDataRetentionException',
          'The stream does not retain data (DataRetentionInHours is 0)',
        );
      }
      const mode = input.PlaybackMode ?? 'LIVE';
      const selector = input.HLSFragmentSelector?.FragmentSelectorType ?? 'SERVER_TIMESTAMP';
      const range = input.HLSFragmentSelector?.TimestampRange;
      if (mode === 'LIVE' && range)
        throw invalidArgument('TimestampRange must not be set when PlaybackMode is LIVE');
      if (mode !== 'LIVE' && range?.StartTimestamp === undefined) {
        throw invalidArgument(
          `HLSFragmentSelector with TimestampRange.StartTimestamp is required for ${mode}`,
        );
      }
      if (mode === 'ON_DEMAND' && range?.EndTimestamp === undefined) {
        throw invalidArgument('TimestampRange.EndTimestamp is required for ON_DEMAND');
      }
      const startMs = range?.StartTimestamp === undefined ? undefined : range.StartTimestamp * 1000;
      const endMs = range?.EndTimestamp === undefined ? undefined : range.EndTimestamp * 1000;
      if (startMs !== undefined && endMs !== undefined) {
        if (endMs <= startMs) throw invalidArgument('EndTimestamp must be after StartTimestamp');
        if (mode === 'ON_DEMAND' && endMs - startMs > MAX_ON_DEMAND_RANGE_MS) {
          throw invalidArgument('The TimestampRange of an ON_DEMAND session must not exceed 24 hours');
        }
      }
      const settings: HlsSessionSettings = {
        stream: stream.name,
        playbackMode: mode,
        selector,
        startMs,
        endMs,
        container: input.ContainerFormat ?? 'FRAGMENTED_MP4',
        discontinuityMode: input.DiscontinuityMode ?? (selector === 'SERVER_TIMESTAMP' ? 'ALWAYS' : 'NEVER'),
        displayFragmentTimestamp: input.DisplayFragmentTimestamp === 'ALWAYS',
        maxFragments: input.MaxMediaPlaylistFragmentResults ?? (mode === 'ON_DEMAND' ? 1000 : 5),
      };
      const records = await store.list(stream.name);
      let candidates = selectable(records, settings);
      const at = now();
      if (mode === 'LIVE') candidates = candidates.filter((r) => r.serverTimestampMs >= at - LIVE_WINDOW_MS);
      const first = candidates[0];
      if (!first) {
        throw resourceNotFound(
          mode === 'LIVE'
            ? 'No fragments were ingested in the last 30 seconds'
            : 'No fragments found in the requested time range',
        );
      }
      const video = videoTrackOf(first);
      if (!video && !audioTrackOf(first)) {
        throw new AwsError(
          400,
          'UnsupportedStreamMediaTypeException',
          'The stream has no H.264 video or AAC audio track',
        );
      }
      if (video && !video.codecPrivateHex) {
        throw new AwsError(
          400,
          'MissingCodecPrivateDataException',
          'The video track has no codec private data',
        );
      }
      const session = sessions.create(settings, at, input.Expires ?? 300);
      session.update(records, at);
      count('hls.sessions');
      logger.info({ stream: stream.name, mode, container: settings.container }, 'HLS session created');
      const base = `${req.protocol}://${req.get('host') ?? 'localhost'}`;
      res.json({
        HLSStreamingSessionURL: `${base}${HLS_PATH}/getHLSMasterPlaylist.m3u8?SessionToken=${session.token}`,
      });
    },
  );

  /** Session endpoints: the token authorizes (missing → 400, unknown or expired → 403 NotAuthorized). */
  const hlsGet = (
    file: string,
    run: (session: HlsSession, req: Request, res: Response) => Promise<void>,
  ): void => {
    const op = file.replace(/\..*$/, '');
    router.get(`${HLS_PATH}/${file}`, (req: Request, res: Response) => {
      void (async () => {
        const token = typeof req.query.SessionToken === 'string' ? req.query.SessionToken : undefined;
        if (!token) throw invalidArgument('SessionToken is required');
        const found = sessions.find(token, now());
        if (found === 'expired') throw notAuthorized('The session token has expired');
        if (!found) throw notAuthorized('The session token is not valid');
        count(`${op}.requests`);
        await run(found, req, res);
      })().catch((err: unknown) => sendOperationError(res, op, err, { logger, count }));
    });
  };

  const refresh = async (session: HlsSession): Promise<boolean> =>
    session.update(await store.list(session.settings.stream), now());

  const trackParam = (req: Request, session: HlsSession): number | undefined => {
    if (session.settings.container === 'MPEG_TS') return undefined;
    const raw = req.query.TrackNumber;
    if (raw === undefined) return VIDEO_TRACK;
    const n = typeof raw === 'string' && /^[0-9]+$/.test(raw) ? Number(raw) : NaN;
    if (n !== VIDEO_TRACK && n !== AUDIO_TRACK) throw invalidArgument('TrackNumber must be 1 or 2');
    return n;
  };

  const segmentFor = async (
    session: HlsSession,
    entry: TimelineEntry,
    kind: SegmentKind,
  ): Promise<Segment> => {
    const offsetKey = session.mediaTimeMs(entry);
    const key = `${session.settings.stream}:${entry.record.fragmentNumber}:${JSON.stringify(kind)}:${offsetKey}:${entry.timestampMs - entry.record.producerTimestampMs}`;
    let segment = segments.get(key);
    if (!segment) {
      segment = (async () => {
        const file = await store.read(session.settings.stream, entry.record);
        // The fragment's frames keep their spacing; its start moves to its place on the session timeline
        // (its selector timestamp: with SERVER_TIMESTAMP frames move by the server-producer difference).
        const offsetMs = session.mediaTimeMs(entry) - fragmentFileStartMs(file, entry.record);
        return buildSegment(file, kind, {
          offsetMs,
          ffmpegPath: options.ffmpegPath ?? 'ffmpeg',
          timeoutMs: options.segmentTimeoutMs ?? 30_000,
        });
      })();
      segments.set(key, segment);
      segment.catch(() => segments.delete(key));
      if (segments.size > SEGMENT_CACHE_ENTRIES) segments.delete(segments.keys().next().value ?? key);
    }
    return segment;
  };

  const kindFor = (session: HlsSession, track: number | undefined): SegmentKind =>
    session.settings.container === 'MPEG_TS'
      ? { container: 'MPEG_TS' }
      : { container: 'FRAGMENTED_MP4', track: track === AUDIO_TRACK ? 'audio' : 'video' };

  const fragmentEntry = (session: HlsSession, req: Request): TimelineEntry => {
    const number = req.query.FragmentNumber;
    if (typeof number !== 'string' || !/^[0-9]+$/.test(number)) {
      throw invalidArgument('FragmentNumber is required');
    }
    const entry = session.entry(number);
    if (!entry) throw resourceNotFound(`Fragment ${number} is not in this session`);
    return entry;
  };

  const requireTrack = (entry: TimelineEntry, track: number | undefined): void => {
    if (track === AUDIO_TRACK && !audioTrackOf(entry.record))
      throw resourceNotFound('The fragment has no audio track');
    if (track === VIDEO_TRACK && !videoTrackOf(entry.record))
      throw resourceNotFound('The fragment has no video track');
  };

  hlsGet('getHLSMasterPlaylist.m3u8', async (session, _req, res) => {
    await refresh(session);
    res.status(200).type('application/vnd.apple.mpegurl').send(masterPlaylist(session));
  });

  hlsGet('getHLSMediaPlaylist.m3u8', async (session, req, res) => {
    const track = trackParam(req, session);
    const complete = await refresh(session);
    res
      .status(200)
      .type('application/vnd.apple.mpegurl')
      .send(mediaPlaylist(session, track, complete));
  });

  hlsGet('getMP4InitFragment.mp4', async (session, req, res) => {
    if (session.settings.container !== 'FRAGMENTED_MP4')
      throw invalidArgument('The session is not FRAGMENTED_MP4');
    const track = trackParam(req, session);
    const raw = req.query.SequenceNumber ?? '0';
    const index = typeof raw === 'string' && /^[0-9]+$/.test(raw) ? Number(raw) : NaN;
    const entry = session.timeline.find((e) => e.initIndex === index);
    if (!entry) throw resourceNotFound(`No init fragment ${index} in this session`);
    requireTrack(entry, track);
    const segment = await segmentFor(session, entry, kindFor(session, track));
    res.status(200).type('video/mp4').send(segment.init);
  });

  hlsGet('getMP4MediaFragment.mp4', async (session, req, res) => {
    if (session.settings.container !== 'FRAGMENTED_MP4')
      throw invalidArgument('The session is not FRAGMENTED_MP4');
    const track = trackParam(req, session);
    const entry = fragmentEntry(session, req);
    requireTrack(entry, track);
    const segment = await segmentFor(session, entry, kindFor(session, track));
    count('hls.fragments');
    res.status(200).type('video/mp4').send(segment.media);
  });

  hlsGet('getTSFragment.ts', async (session, req, res) => {
    if (session.settings.container !== 'MPEG_TS') throw invalidArgument('The session is not MPEG_TS');
    const entry = fragmentEntry(session, req);
    const segment = await segmentFor(session, entry, { container: 'MPEG_TS' });
    count('hls.fragments');
    res.status(200).type('video/mp2t').send(segment.media);
  });

  return router;
}
