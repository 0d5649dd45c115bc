import { Router } from 'express';
import { z } from 'zod';
import { invalidArgument } from './awsErrors.js';
import { epochSeconds, operationRouter, validate, type Operation } from './awsHttp.js';
import type { ChannelRecord, EmulatorState, StreamRecord } from './state.js';

/** Where clients are sent: the emulator's own HTTP base and its WebSocket base (`ws://host:port`). */
export interface PublicEndpoints {
  http: string;
  ws: string;
}

export interface ControlPlaneOptions {
  state: EmulatorState;
  endpoints: () => PublicEndpoints;
  /** Lets signaling close the channel's connections when it is deleted. */
  onChannelDeleted: (channel: ChannelRecord) => void;
  /** Told the AWS error type of every refused operation (e.g. to count `rejected.http.<type>`). */
  onRejected?: (errorType: string) => void;
}

/** Signaling paths per role; the role is also checked against the presence of a ClientId at connect time. */
export const SIGNALING_PATHS = { MASTER: '/signaling/master', VIEWER: '/signaling/viewer' } as const;

const name = z.string().regex(/^[a-zA-Z0-9_.-]{1,256}$/, 'must match [a-zA-Z0-9_.-]{1,256}');
const arn = z.string().min(1).max(1024);
const tagList = z.array(z.object({ Key: z.string().min(1).max(128), Value: z.string().max(256) })).max(50);
const tagMap = z.record(z.string().min(1).max(128), z.string().max(256));
const maxResults = z.number().int().min(1).max(10_000).optional();
const nextToken = z.string().regex(/^\d+$/, 'must be a token from a previous page').optional();
const nameCondition = z
  .object({ ComparisonOperator: z.literal('BEGINS_WITH').optional(), ComparisonValue: z.string().optional() })
  .optional();

const channelRef = z
  .object({ ChannelName: name.optional(), ChannelARN: arn.optional() })
  .refine(
    (v) => v.ChannelName !== undefined || v.ChannelARN !== undefined,
    'ChannelName or ChannelARN is required',
  );
const streamRef = z
  .object({ StreamName: name.optional(), StreamARN: arn.optional() })
  .refine(
    (v) => v.StreamName !== undefined || v.StreamARN !== undefined,
    'StreamName or StreamARN is required',
  );

const schemas = {
  createSignalingChannel: z.object({
    ChannelName: name,
    ChannelType: z.literal('SINGLE_MASTER').optional(),
    SingleMasterConfiguration: z
      .object({ MessageTtlSeconds: z.number().int().min(5).max(120).optional() })
      .optional(),
    Tags: tagList.optional(),
  }),
  listSignalingChannels: z.object({
    MaxResults: maxResults,
    NextToken: nextToken,
    ChannelNameCondition: nameCondition,
  }),
  deleteSignalingChannel: z.object({ ChannelARN: arn, CurrentVersion: z.string().optional() }),
  getSignalingChannelEndpoint: z.object({
    ChannelARN: arn,
    SingleMasterChannelEndpointConfiguration: z
      .object({
        Protocols: z
          .array(z.enum(['WSS', 'HTTPS', 'WEBRTC']))
          .min(1)
          .max(5)
          .optional(),
        Role: z.enum(['MASTER', 'VIEWER']).optional(),
      })
      .optional(),
  }),
  updateMediaStorageConfiguration: z.object({
    ChannelARN: arn,
    MediaStorageConfiguration: z.object({
      StreamARN: arn.optional(),
      Status: z.enum(['ENABLED', 'DISABLED']),
    }),
  }),
  createStream: z.object({
    StreamName: name,
    DeviceName: z.string().min(1).max(128).optional(),
    MediaType: z.string().min(1).max(128).optional(),
    KmsKeyId: z.string().min(1).max(2048).optional(),
    DataRetentionInHours: z.number().int().min(0).max(87_600).optional(),
    Tags: tagMap.optional(),
  }),
  listStreams: z.object({ MaxResults: maxResults, NextToken: nextToken, StreamNameCondition: nameCondition }),
  deleteStream: z.object({ StreamARN: arn, CurrentVersion: z.string().optional() }),
  getDataEndpoint: streamRef.and(
    z.object({
      APIName: z.enum([
        'PUT_MEDIA',
        'GET_MEDIA',
        'LIST_FRAGMENTS',
        'GET_MEDIA_FOR_FRAGMENT_LIST',
        'GET_HLS_STREAMING_SESSION_URL',
        'GET_DASH_STREAMING_SESSION_URL',
        'GET_CLIP',
        'GET_IMAGES',
      ]),
    }),
  ),
  tagStream: streamRef.and(z.object({ Tags: tagMap })),
};

/** KVS control plane (`kinesisvideo`): channels, streams, endpoints, media storage configuration. */
export function createControlPlaneRouter(options: ControlPlaneOptions): Router {
  const { state } = options;
  const channel = (input: { ChannelName?: string | undefined; ChannelARN?: string | undefined }) =>
    state.findChannel({ name: input.ChannelName, arn: input.ChannelARN });
  const stream = (input: { StreamName?: string | undefined; StreamARN?: string | undefined }) =>
    state.findStream({ name: input.StreamName, arn: input.StreamARN });

  const operations: Record<string, Operation> = {
    '/createSignalingChannel': (body) => {
      const input = validate(schemas.createSignalingChannel, body);
      const created = state.createChannel({
        name: input.ChannelName,
        ...(input.SingleMasterConfiguration?.MessageTtlSeconds !== undefined
          ? { messageTtlSeconds: input.SingleMasterConfiguration.MessageTtlSeconds }
          : {}),
        tags: Object.fromEntries((input.Tags ?? []).map((t) => [t.Key, t.Value])),
      });
      return { ChannelARN: created.arn };
    },
    '/describeSignalingChannel': (body) => ({
      ChannelInfo: channelInfo(channel(validate(channelRef, body))),
    }),
    '/listSignalingChannels': (body) => {
      const input = validate(schemas.listSignalingChannels, body);
      const prefix = input.ChannelNameCondition?.ComparisonValue ?? '';
      const all = state.listChannels().filter((c) => c.name.startsWith(prefix));
      const { page, next } = paginate(all, input.MaxResults, input.NextToken);
      return { ChannelInfoList: page.map(channelInfo), ...(next ? { NextToken: next } : {}) };
    },
    '/deleteSignalingChannel': (body) => {
      const input = validate(schemas.deleteSignalingChannel, body);
      const found = channel(input);
      if (input.CurrentVersion !== undefined && input.CurrentVersion !== found.version) {
        throw invalidArgument('CurrentVersion does not match the channel version');
      }
      state.deleteChannel(found);
      options.onChannelDeleted(found);
      return {};
    },
    '/getSignalingChannelEndpoint': (body) => {
      const input = validate(schemas.getSignalingChannelEndpoint, body);
      channel(input);
      const config = input.SingleMasterChannelEndpointConfiguration;
      const role = config?.Role ?? 'MASTER';
      const { http, ws } = options.endpoints();
      const list = (config?.Protocols ?? ['WSS', 'HTTPS']).map((protocol) => ({
        Protocol: protocol,
        ResourceEndpoint: protocol === 'WSS' ? `${ws}${SIGNALING_PATHS[role]}` : http,
      }));
      return { ResourceEndpointList: list };
    },
    '/describeMediaStorageConfiguration': (body) => {
      const found = channel(validate(channelRef, body));
      return {
        MediaStorageConfiguration: {
          Status: found.mediaStorage.status,
          ...(found.mediaStorage.streamARN ? { StreamARN: found.mediaStorage.streamARN } : {}),
        },
      };
    },
    '/updateMediaStorageConfiguration': (body) => {
      const input = validate(schemas.updateMediaStorageConfiguration, body);
      const found = channel(input);
      const { Status, StreamARN } = input.MediaStorageConfiguration;
      if (Status === 'ENABLED' && StreamARN === undefined) {
        throw invalidArgument('StreamARN is required to enable media storage');
      }
      if (StreamARN !== undefined) state.findStream({ arn: StreamARN });
      found.mediaStorage = { status: Status, ...(StreamARN !== undefined ? { streamARN: StreamARN } : {}) };
      return {};
    },
    '/createStream': (body) => {
      const input = validate(schemas.createStream, body);
      const created = state.createStream({
        name: input.StreamName,
        deviceName: input.DeviceName,
        mediaType: input.MediaType,
        kmsKeyId: input.KmsKeyId,
        dataRetentionInHours: input.DataRetentionInHours,
        tags: input.Tags,
      });
      return { StreamARN: created.arn };
    },
    '/describeStream': (body) => ({ StreamInfo: streamInfo(stream(validate(streamRef, body))) }),
    '/listStreams': (body) => {
      const input = validate(schemas.listStreams, body);
      const prefix = input.StreamNameCondition?.ComparisonValue ?? '';
      const all = state.listStreams().filter((s) => s.name.startsWith(prefix));
      const { page, next } = paginate(all, input.MaxResults, input.NextToken);
      return { StreamInfoList: page.map(streamInfo), ...(next ? { NextToken: next } : {}) };
    },
    '/deleteStream': (body) => {
      const input = validate(schemas.deleteStream, body);
      const found = stream(input);
      if (input.CurrentVersion !== undefined && input.CurrentVersion !== found.version) {
        throw invalidArgument('CurrentVersion does not match the stream version');
      }
      state.deleteStream(found);
      return {};
    },
    '/getDataEndpoint': (body) => {
      stream(validate(schemas.getDataEndpoint, body));
      // With the scheme: kvssink uses the answer verbatim and appends `/putMedia`.
      return { DataEndpoint: options.endpoints().http };
    },
    '/tagStream': (body) => {
      const input = validate(schemas.tagStream, body);
      const found = stream(input);
      if (Object.keys({ ...found.tags, ...input.Tags }).length > 50) {
        throw invalidArgument('a stream can have at most 50 tags');
      }
      Object.assign(found.tags, input.Tags);
      return {};
    },
  };
  const router = operationRouter(operations);
  const { onRejected } = options;
  if (!onRejected) return router;
  // Counted from the answer, so that refusals before an operation runs (a body that is not JSON) count too.
  const counting = Router();
  counting.use((req, res, next) => {
    if (req.method === 'POST' && Object.hasOwn(operations, req.path)) {
      res.once('finish', () => {
        if (res.statusCode >= 400) onRejected(String(res.getHeader('x-amzn-ErrorType') ?? 'UnknownError'));
      });
    }
    next();
  });
  counting.use(router);
  return counting;
}

function channelInfo(c: ChannelRecord) {
  return {
    ChannelName: c.name,
    ChannelARN: c.arn,
    ChannelType: c.type,
    ChannelStatus: c.status,
    CreationTime: epochSeconds(c.creationTime),
    SingleMasterConfiguration: { MessageTtlSeconds: c.messageTtlSeconds },
    Version: c.version,
  };
}

function streamInfo(s: StreamRecord) {
  return {
    StreamName: s.name,
    StreamARN: s.arn,
    ...(s.deviceName !== undefined ? { DeviceName: s.deviceName } : {}),
    ...(s.mediaType !== undefined ? { MediaType: s.mediaType } : {}),
    KmsKeyId: s.kmsKeyId,
    Version: s.version,
    Status: s.status,
    CreationTime: epochSeconds(s.creationTime),
    DataRetentionInHours: s.dataRetentionInHours,
  };
}

function paginate<T>(all: T[], maxResults: number | undefined, token: string | undefined) {
  const start = token === undefined ? 0 : Number(token);
  const size = maxResults ?? 10_000;
  const page = all.slice(start, start + size);
  const next = start + size < all.length ? String(start + size) : undefined;
  return { page, next };
}
