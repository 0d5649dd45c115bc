import {
  CreateSignalingChannelCommand,
  CreateStreamCommand,
  DeleteSignalingChannelCommand,
  DeleteStreamCommand,
  DescribeMediaStorageConfigurationCommand,
  DescribeSignalingChannelCommand,
  DescribeStreamCommand,
  GetDataEndpointCommand,
  GetSignalingChannelEndpointCommand,
  InvalidArgumentException,
  type KinesisVideoClient,
  ListSignalingChannelsCommand,
  ListStreamsCommand,
  ResourceInUseException,
  ResourceNotFoundException,
  TagStreamCommand,
  UpdateMediaStorageConfigurationCommand,
} from '@aws-sdk/client-kinesis-video';
import { Sha256 } from '@aws-crypto/sha256-js';
import { expect, test } from '@playwright/test';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import {
  DEFAULT_EMULATOR_CREDENTIALS,
  DEFAULT_REGION,
  startEmulator,
  type Emulator,
} from '../../emulator/server.js';
import { controlClient } from './support.js';

let emulator: Emulator;
let kvs: KinesisVideoClient;

test.beforeEach(async () => {
  emulator = await startEmulator();
  kvs = controlClient(emulator);
});

test.afterEach(async () => {
  kvs.destroy();
  await emulator.stop();
});

test('seeds the default channel and stream', async () => {
  const channel = await kvs.send(
    new DescribeSignalingChannelCommand({ ChannelName: 'webrtc-kvs-agent-channel' }),
  );
  expect(channel.ChannelInfo?.ChannelARN).toMatch(
    new RegExp(
      `^arn:aws:kinesisvideo:${DEFAULT_REGION}:123456789012:channel/webrtc-kvs-agent-channel/\\d{13}$`,
    ),
  );
  expect(channel.ChannelInfo?.ChannelStatus).toBe('ACTIVE');
  expect(channel.ChannelInfo?.CreationTime).toBeInstanceOf(Date);
  expect(Math.abs(channel.ChannelInfo!.CreationTime!.getTime() - Date.now())).toBeLessThan(60_000);
  const stream = await kvs.send(new DescribeStreamCommand({ StreamName: 'webrtc-kvs-agent-stream' }));
  expect(stream.StreamInfo?.Status).toBe('ACTIVE');
  expect(typeof stream.StreamInfo?.DataRetentionInHours).toBe('number');
});

test('channel lifecycle: create, describe by name and ARN, list, endpoints, delete', async () => {
  const { ChannelARN } = await kvs.send(
    new CreateSignalingChannelCommand({
      ChannelName: 'cam-1',
      ChannelType: 'SINGLE_MASTER',
      SingleMasterConfiguration: { MessageTtlSeconds: 30 },
      Tags: [{ Key: 'team', Value: 'video' }],
    }),
  );
  expect(ChannelARN).toContain(':channel/cam-1/');
  const byArn = await kvs.send(new DescribeSignalingChannelCommand({ ChannelARN }));
  expect(byArn.ChannelInfo?.ChannelName).toBe('cam-1');
  expect(byArn.ChannelInfo?.SingleMasterConfiguration?.MessageTtlSeconds).toBe(30);

  await expect(kvs.send(new CreateSignalingChannelCommand({ ChannelName: 'cam-1' }))).rejects.toBeInstanceOf(
    ResourceInUseException,
  );

  const listed = await kvs.send(
    new ListSignalingChannelsCommand({
      ChannelNameCondition: { ComparisonOperator: 'BEGINS_WITH', ComparisonValue: 'cam' },
    }),
  );
  expect(listed.ChannelInfoList?.map((c) => c.ChannelName)).toEqual(['cam-1']);

  const master = await kvs.send(
    new GetSignalingChannelEndpointCommand({
      ChannelARN,
      SingleMasterChannelEndpointConfiguration: { Protocols: ['WSS', 'HTTPS'], Role: 'MASTER' },
    }),
  );
  const viewer = await kvs.send(
    new GetSignalingChannelEndpointCommand({
      ChannelARN,
      SingleMasterChannelEndpointConfiguration: { Protocols: ['WSS', 'HTTPS'], Role: 'VIEWER' },
    }),
  );
  const find = (list: typeof master.ResourceEndpointList, p: string) =>
    list?.find((e) => e.Protocol === p)?.ResourceEndpoint;
  expect(find(master.ResourceEndpointList, 'HTTPS')).toBe(emulator.url);
  expect(find(master.ResourceEndpointList, 'WSS')).toMatch(
    new RegExp(`^ws://127\\.0\\.0\\.1:${emulator.port}/`),
  );
  expect(find(viewer.ResourceEndpointList, 'WSS')).toMatch(
    new RegExp(`^ws://127\\.0\\.0\\.1:${emulator.port}/`),
  );
  expect(find(viewer.ResourceEndpointList, 'WSS')).not.toBe(find(master.ResourceEndpointList, 'WSS'));

  await kvs.send(new DeleteSignalingChannelCommand({ ChannelARN }));
  const err = await kvs
    .send(new DescribeSignalingChannelCommand({ ChannelName: 'cam-1' }))
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ResourceNotFoundException);
  expect((err as ResourceNotFoundException).$metadata.httpStatusCode).toBe(404);
  await expect(kvs.send(new DeleteSignalingChannelCommand({ ChannelARN }))).rejects.toBeInstanceOf(
    ResourceNotFoundException,
  );
});

test('media storage configuration defaults to DISABLED and can be enabled with a stream', async () => {
  const { ChannelARN } = await kvs.send(new CreateSignalingChannelCommand({ ChannelName: 'ingest' }));
  const before = await kvs.send(new DescribeMediaStorageConfigurationCommand({ ChannelARN }));
  expect(before.MediaStorageConfiguration?.Status).toBe('DISABLED');
  await expect(
    kvs.send(
      new UpdateMediaStorageConfigurationCommand({
        ChannelARN,
        MediaStorageConfiguration: { Status: 'ENABLED' },
      }),
    ),
  ).rejects.toBeInstanceOf(InvalidArgumentException);
  const { StreamARN } = await kvs.send(
    new CreateStreamCommand({ StreamName: 'ingest-stream', DataRetentionInHours: 2 }),
  );
  await kvs.send(
    new UpdateMediaStorageConfigurationCommand({
      ChannelARN,
      MediaStorageConfiguration: { Status: 'ENABLED', StreamARN },
    }),
  );
  const after = await kvs.send(new DescribeMediaStorageConfigurationCommand({ ChannelName: 'ingest' }));
  expect(after.MediaStorageConfiguration).toEqual({ Status: 'ENABLED', StreamARN });
});

test('stream lifecycle: create, describe, list, tag, data endpoint, delete', async () => {
  const { StreamARN } = await kvs.send(
    new CreateStreamCommand({
      StreamName: 'cam-1-stream',
      DeviceName: 'agent',
      MediaType: 'video/h264,audio/aac',
      DataRetentionInHours: 2,
    }),
  );
  expect(StreamARN).toMatch(
    /^arn:aws:kinesisvideo:ap-northeast-1:123456789012:stream\/cam-1-stream\/\d{13}$/,
  );
  await expect(kvs.send(new CreateStreamCommand({ StreamName: 'cam-1-stream' }))).rejects.toBeInstanceOf(
    ResourceInUseException,
  );
  const described = await kvs.send(new DescribeStreamCommand({ StreamName: 'cam-1-stream' }));
  expect(described.StreamInfo).toMatchObject({
    StreamARN,
    DeviceName: 'agent',
    MediaType: 'video/h264,audio/aac',
    DataRetentionInHours: 2,
    Status: 'ACTIVE',
  });
  const listed = await kvs.send(new ListStreamsCommand({ MaxResults: 1 }));
  expect(listed.StreamInfoList).toHaveLength(1);
  expect(listed.NextToken).toBeTruthy();
  const page2 = await kvs.send(new ListStreamsCommand({ MaxResults: 1, NextToken: listed.NextToken }));
  expect(page2.StreamInfoList?.[0]?.StreamName).not.toBe(listed.StreamInfoList?.[0]?.StreamName);

  await kvs.send(new TagStreamCommand({ StreamARN, Tags: { owner: 'tests' } }));
  const endpoint = await kvs.send(
    new GetDataEndpointCommand({ StreamName: 'cam-1-stream', APIName: 'PUT_MEDIA' }),
  );
  expect(endpoint.DataEndpoint).toBe(emulator.url);

  await kvs.send(new DeleteStreamCommand({ StreamARN }));
  await expect(kvs.send(new DescribeStreamCommand({ StreamName: 'cam-1-stream' }))).rejects.toBeInstanceOf(
    ResourceNotFoundException,
  );
  await expect(
    kvs.send(new GetDataEndpointCommand({ StreamName: 'cam-1-stream', APIName: 'PUT_MEDIA' })),
  ).rejects.toBeInstanceOf(ResourceNotFoundException);
});

test('invalid input is a typed InvalidArgumentException', async () => {
  await expect(
    kvs.send(new CreateSignalingChannelCommand({ ChannelName: 'bad name!' })),
  ).rejects.toBeInstanceOf(InvalidArgumentException);
  await expect(
    kvs.send(
      new CreateSignalingChannelCommand({
        ChannelName: 'ttl',
        SingleMasterConfiguration: { MessageTtlSeconds: 500 },
      }),
    ),
  ).rejects.toBeInstanceOf(InvalidArgumentException);
  await expect(kvs.send(new DescribeStreamCommand({}))).rejects.toBeInstanceOf(InvalidArgumentException);
});

test('malformed JSON and unknown operations get AWS-shaped errors and the server keeps answering', async () => {
  // Signed requests with broken bodies: the body is hashed into the signature, so sign what is sent.
  const signer = new SignatureV4({
    service: 'kinesisvideo',
    region: emulator.region,
    credentials: DEFAULT_EMULATOR_CREDENTIALS,
    sha256: Sha256,
  });
  const url = new URL(emulator.url);
  const send = async (path: string, body: string) => {
    const signed = await signer.sign(
      new HttpRequest({
        method: 'POST',
        protocol: 'http:',
        hostname: url.hostname,
        port: Number(url.port),
        path,
        headers: { host: url.host, 'content-type': 'application/json' },
        body,
      }),
    );
    return fetch(`${emulator.url}${path}`, { method: 'POST', headers: signed.headers, body });
  };
  const malformed = await send('/describeStream', '{"StreamName": ');
  expect(malformed.status).toBe(400);
  expect(malformed.headers.get('x-amzn-errortype')).toBe('SerializationException');
  expect(await malformed.json()).toHaveProperty('message');

  const unknown = await send('/fooBar', '{}');
  expect(unknown.status).toBe(404);
  expect(unknown.headers.get('x-amzn-errortype')).toBe('UnknownOperationException');

  const wrongType = await send('/describeStream', '[1,2,3]');
  expect(wrongType.status).toBe(400);
  expect(wrongType.headers.get('x-amzn-errortype')).toBe('InvalidArgumentException');

  const ok = await kvs.send(new DescribeStreamCommand({ StreamName: 'webrtc-kvs-agent-stream' }));
  expect(ok.StreamInfo?.StreamName).toBe('webrtc-kvs-agent-stream');
  expect(emulator.admin.stats()['rejected.http.unknown-operation']).toBe(1);
});

test('answers CORS preflights for browser clients', async () => {
  const res = await fetch(`${emulator.url}/describeSignalingChannel`, {
    method: 'OPTIONS',
    headers: {
      origin: 'http://127.0.0.1:5173',
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization,x-amz-date,content-type,amz-sdk-invocation-id',
    },
  });
  expect(res.status).toBe(204);
  expect(res.headers.get('access-control-allow-origin')).toBe('http://127.0.0.1:5173');
  expect(res.headers.get('access-control-allow-headers')).toContain('amz-sdk-invocation-id');
  expect(res.headers.get('access-control-expose-headers')).toContain('x-amzn-ErrorType');
});
