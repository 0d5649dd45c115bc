import {
  CreateSignalingChannelCommand,
  CreateStreamCommand,
  DeleteSignalingChannelCommand,
  DescribeSignalingChannelCommand,
  UpdateMediaStorageConfigurationCommand,
} from '@aws-sdk/client-kinesis-video';
import { expect, test } from '@playwright/test';
import { Role, SignalingClient } from 'amazon-kinesis-video-streams-webrtc';
import { WebSocket } from 'ws';
import { startEmulator, type Emulator } from '../../emulator/server.js';
import {
  b64,
  controlClient,
  handshakeStatus,
  RawClient,
  unb64,
  wsRequestSigner,
  wssEndpoint,
} from './support.js';

// The KVS JS SDK opens `new WebSocket(url)` from the global scope, as in a browser.
(globalThis as { WebSocket?: unknown }).WebSocket = WebSocket;

const CHANNEL = 'webrtc-kvs-agent-channel';
let emulator: Emulator;
let channelARN: string;
const clients: Array<{ close(): void }> = [];

async function start(options: Parameters<typeof startEmulator>[0] = {}): Promise<void> {
  emulator = await startEmulator(options);
  const kvs = controlClient(emulator);
  channelARN = (await kvs.send(new DescribeSignalingChannelCommand({ ChannelName: CHANNEL }))).ChannelInfo!
    .ChannelARN!;
  kvs.destroy();
}

async function signedUrl(role: 'MASTER' | 'VIEWER', clientId?: string, arn = channelARN): Promise<string> {
  // Endpoints come from the live channel (a deleted or made-up ARN still needs a URL to be refused on).
  const endpoint = await wssEndpoint(emulator, channelARN, role);
  return wsRequestSigner(emulator.region).getSignedURL(endpoint, {
    'X-Amz-ChannelARN': arn,
    ...(clientId !== undefined ? { 'X-Amz-ClientId': clientId } : {}),
  });
}

async function raw(role: 'MASTER' | 'VIEWER', clientId?: string, arn?: string): Promise<RawClient> {
  const client = await RawClient.connect(await signedUrl(role, clientId, arn));
  clients.push(client);
  return client;
}

/** Waits until the emulator sees the expected set of connections (connect/close are asynchronous). */
async function connectionsBecome(
  expected: { master: boolean; viewers: string[] },
  channel = CHANNEL,
): Promise<void> {
  await expect.poll(() => emulator.admin.connections(channel)).toEqual(expected);
}

test.afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await emulator.stop();
});

test('real KVS JS SDK master and viewer: offer, answer and ICE candidates round-trip', async () => {
  await start();
  const endpoints = {
    MASTER: await wssEndpoint(emulator, channelARN, 'MASTER'),
    VIEWER: await wssEndpoint(emulator, channelARN, 'VIEWER'),
  };
  const make = (role: 'MASTER' | 'VIEWER') =>
    new SignalingClient({
      channelARN,
      channelEndpoint: endpoints[role],
      region: emulator.region,
      role: role === 'MASTER' ? Role.MASTER : Role.VIEWER,
      ...(role === 'VIEWER' ? { clientId: 'viewer-sdk' } : {}),
      requestSigner: wsRequestSigner(emulator.region),
    });
  const master = make('MASTER');
  const viewer = make('VIEWER');
  clients.push(master, viewer);
  const opened = (c: SignalingClient) => new Promise<void>((resolve) => c.once('open', () => resolve()));

  const masterOpen = opened(master);
  master.open();
  await masterOpen;
  const offerAtMaster = new Promise<[unknown, string]>((resolve) =>
    master.once('sdpOffer', (offer: unknown, sender: string) => resolve([offer, sender])),
  );
  const iceAtMaster = new Promise<[unknown, string]>((resolve) =>
    master.once('iceCandidate', (c: unknown, sender: string) => resolve([c, sender])),
  );
  const viewerOpen = opened(viewer);
  viewer.open();
  await viewerOpen;

  const offer = { type: 'offer', sdp: 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n' };
  const candidate = {
    candidate: 'candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host',
    sdpMid: '0',
    sdpMLineIndex: 0,
  };
  // Plain objects: the SDK only JSON-serialises what it is given, as a browser's RTCSessionDescription does.
  viewer.sendSdpOffer(offer);
  viewer.sendIceCandidate(candidate);
  expect(await offerAtMaster).toEqual([offer, 'viewer-sdk']);
  expect(await iceAtMaster).toEqual([candidate, 'viewer-sdk']);

  const answerAtViewer = new Promise<[unknown, string | undefined]>((resolve) =>
    viewer.once('sdpAnswer', (answer: unknown, sender?: string) => resolve([answer, sender])),
  );
  const iceAtViewer = new Promise<unknown>((resolve) =>
    viewer.once('iceCandidate', (c: unknown) => resolve(c)),
  );
  const answer = { type: 'answer', sdp: 'v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\n' };
  master.sendSdpAnswer(answer, 'viewer-sdk');
  master.sendIceCandidate(
    { ...candidate, candidate: 'candidate:2 1 udp 1 127.0.0.1 50001 typ host' },
    'viewer-sdk',
  );
  expect(await answerAtViewer).toEqual([answer, undefined]);
  expect(await iceAtViewer).toMatchObject({ candidate: 'candidate:2 1 udp 1 127.0.0.1 50001 typ host' });

  const stats = emulator.admin.stats();
  expect(stats['routed.SDP_OFFER']).toBe(1);
  expect(stats['routed.SDP_ANSWER']).toBe(1);
  expect(stats['routed.ICE_CANDIDATE']).toBe(2);
});

test('both key casings are accepted; senderClientId only towards the master', async () => {
  await start();
  const master = await raw('MASTER');
  const viewer = await raw('VIEWER', 'v1');
  await connectionsBecome({ master: true, viewers: ['v1'] });

  // PascalCase (C SDK) from the viewer; its RecipientClientId is ignored.
  viewer.send({
    Action: 'SDP_OFFER',
    RecipientClientId: 'someone-else',
    MessagePayload: b64({ type: 'offer', sdp: 'x' }),
  });
  const atMaster = await master.next();
  expect(atMaster).toEqual({
    senderClientId: 'v1',
    messageType: 'SDP_OFFER',
    messagePayload: b64({ type: 'offer', sdp: 'x' }),
  });

  master.send({
    Action: 'SDP_ANSWER',
    RecipientClientId: 'v1',
    MessagePayload: b64({ type: 'answer', sdp: 'y' }),
  });
  const atViewer = await viewer.next();
  expect(atViewer).not.toHaveProperty('senderClientId');
  expect(atViewer.messageType).toBe('SDP_ANSWER');
  expect(unb64(atViewer.messagePayload)).toEqual({ type: 'answer', sdp: 'y' });

  master.send({
    action: 'ICE_CANDIDATE',
    recipientClientId: 'v1',
    messagePayload: b64({ candidate: 'c' }),
    correlationId: 'ok-1',
  });
  expect((await viewer.next()).messageType).toBe('ICE_CANDIDATE');
});

test('STATUS_RESPONSE only for failed sends that carry a correlationId; bad messages never close the socket', async () => {
  await start();
  const master = await raw('MASTER');
  const viewer = await raw('VIEWER', 'v1');
  await connectionsBecome({ master: true, viewers: ['v1'] });
  const payload = b64({ type: 'answer', sdp: 'y' });

  // Successes get no reply, failures without a correlationId neither: the next message must be the probe's.
  master.send({
    action: 'SDP_ANSWER',
    recipientClientId: 'v1',
    messagePayload: payload,
    correlationId: 'success-1',
  });
  master.send({ action: 'SDP_ANSWER', recipientClientId: 'nobody', messagePayload: payload });
  master.send({ action: 'SDP_ANSWER', messagePayload: payload });
  master.send('{"action": "SDP_ANSWER", ');
  master.send({
    action: 'SDP_ANSWER',
    recipientClientId: 'nobody',
    messagePayload: payload,
    correlationId: 'probe-1',
  });
  const status = await master.next();
  expect(status).toEqual({
    messageType: 'STATUS_RESPONSE',
    statusResponse: {
      correlationId: 'probe-1',
      errorType: 'InvalidArgumentException',
      statusCode: '400',
      description: expect.stringContaining('nobody') as unknown,
    },
  });
  expect(master.messages).toEqual([]);

  const cases: Array<[string, Record<string, unknown>]> = [
    [
      'unknown-action',
      { action: 'SDP_REOFFER', recipientClientId: 'v1', messagePayload: payload, correlationId: 'c-unknown' },
    ],
    [
      'oversize-payload',
      {
        action: 'SDP_ANSWER',
        recipientClientId: 'v1',
        messagePayload: 'A'.repeat(10 * 1024 + 4),
        correlationId: 'c-big',
      },
    ],
    [
      'payload-not-base64',
      {
        action: 'SDP_ANSWER',
        recipientClientId: 'v1',
        messagePayload: '{not base64}',
        correlationId: 'c-b64',
      },
    ],
    ['missing-recipient', { action: 'SDP_ANSWER', messagePayload: payload, correlationId: 'c-recipient' }],
  ];
  for (const [reason, message] of cases) {
    master.send(message);
    const reply = await master.next();
    expect(reply.messageType, reason).toBe('STATUS_RESPONSE');
    expect((reply.statusResponse as { correlationId: string }).correlationId).toBe(message.correlationId);
    // missing-recipient was already counted once above, without a correlationId.
    expect(emulator.admin.stats()[`rejected.message.${reason}`], reason).toBe(
      reason === 'missing-recipient' ? 2 : 1,
    );
  }
  master.ws.send(Buffer.from([0xff, 0x00, 0x12]), { binary: true });
  viewer.send('[]');
  viewer.send({ action: 'SDP_OFFER' });

  // Still connected and routing in both directions.
  master.send({ action: 'SDP_ANSWER', recipientClientId: 'v1', messagePayload: payload });
  const received = await viewer.next((m) => m.messageType === 'SDP_ANSWER');
  expect(received.messagePayload).toBe(payload);
  viewer.send({ action: 'SDP_OFFER', messagePayload: payload });
  expect((await master.next()).senderClientId).toBe('v1');
  const stats = emulator.admin.stats();
  expect(stats['rejected.message.malformed-json']).toBe(3);
  expect(stats['rejected.message.missing-payload']).toBe(1);
  expect(stats['status-responses']).toBe(5);
  expect(emulator.admin.connections(CHANNEL)).toEqual({ master: true, viewers: ['v1'] });
});

test('messages for an absent master wait for it; a newer offer replaces the older one', async () => {
  await start();
  const viewer = await raw('VIEWER', 'early');
  const other = await raw('VIEWER', 'other');
  await connectionsBecome({ master: false, viewers: ['early', 'other'] });
  // Order across two sockets is only defined once the first message is in the queue.
  other.send({ action: 'SDP_OFFER', messagePayload: b64({ type: 'offer', sdp: 'other' }) });
  await expect.poll(() => emulator.admin.stats()['queue.enqueued']).toBe(1);
  viewer.send({ action: 'SDP_OFFER', messagePayload: b64({ type: 'offer', sdp: 'first' }) });
  viewer.send({ action: 'ICE_CANDIDATE', messagePayload: b64({ candidate: 'stale' }) });
  viewer.send({ action: 'SDP_OFFER', messagePayload: b64({ type: 'offer', sdp: 'second' }) });
  viewer.send({ action: 'ICE_CANDIDATE', messagePayload: b64({ candidate: 'fresh' }) });
  await expect.poll(() => emulator.admin.stats()['queue.enqueued']).toBe(5);

  const master = await raw('MASTER');
  const delivered = [await master.next(), await master.next(), await master.next()];
  expect(delivered.map((m) => [m.senderClientId, m.messageType, unb64(m.messagePayload)])).toEqual([
    ['other', 'SDP_OFFER', { type: 'offer', sdp: 'other' }],
    ['early', 'SDP_OFFER', { type: 'offer', sdp: 'second' }],
    ['early', 'ICE_CANDIDATE', { candidate: 'fresh' }],
  ]);
  expect(emulator.admin.stats()['queue.superseded']).toBe(2);
});

test('queued messages expire after the channel MessageTtlSeconds', async () => {
  await start();
  const kvs = controlClient(emulator);
  const { ChannelARN } = await kvs.send(
    new CreateSignalingChannelCommand({
      ChannelName: 'short-ttl',
      SingleMasterConfiguration: { MessageTtlSeconds: 5 },
    }),
  );
  kvs.destroy();
  const viewer = await raw('VIEWER', 'v1', ChannelARN);
  viewer.send({ action: 'SDP_OFFER', messagePayload: b64({ type: 'offer', sdp: 'old' }) });
  await expect.poll(() => emulator.admin.stats()['queue.enqueued']).toBe(1);
  await new Promise((resolve) => setTimeout(resolve, 5_500));
  const master = await raw('MASTER', undefined, ChannelARN);
  await expect.poll(() => emulator.admin.stats()['queue.expired']).toBe(1);
  viewer.send({ action: 'SDP_OFFER', messagePayload: b64({ type: 'offer', sdp: 'new' }) });
  expect(unb64((await master.next()).messagePayload)).toEqual({ type: 'offer', sdp: 'new' });
  expect(master.messages).toEqual([]);
});

test('a new master replaces the old one; a viewer reconnecting with its ClientId replaces itself', async () => {
  await start();
  const first = await raw('MASTER');
  await connectionsBecome({ master: true, viewers: [] });
  const second = await raw('MASTER');
  expect((await first.closed).code).toBe(1000);
  const viewer = await raw('VIEWER', 'v1');
  await connectionsBecome({ master: true, viewers: ['v1'] });
  viewer.send({ action: 'SDP_OFFER', messagePayload: b64({ type: 'offer', sdp: 'x' }) });
  expect((await second.next()).senderClientId).toBe('v1');

  const again = await raw('VIEWER', 'v1');
  expect((await viewer.closed).code).toBe(1000);
  await connectionsBecome({ master: true, viewers: ['v1'] });
  second.send({
    action: 'SDP_ANSWER',
    recipientClientId: 'v1',
    messagePayload: b64({ type: 'answer', sdp: 'y' }),
  });
  expect((await again.next()).messageType).toBe('SDP_ANSWER');
  expect(emulator.admin.stats()).toMatchObject({ 'replaced.master': 1, 'replaced.viewer': 1 });
});

test('handshake refusals: 11th viewer, bad ClientId, unknown channel, media storage enabled', async () => {
  await start();
  for (let i = 0; i < 10; i++) await raw('VIEWER', `viewer-${i}`);
  await expect.poll(() => emulator.admin.connections(CHANNEL).viewers.length).toBe(10);
  expect(await handshakeStatus(await signedUrl('VIEWER', 'viewer-10'))).toBe(400);
  expect(await handshakeStatus(await signedUrl('VIEWER', 'viewer-3'))).toBe(101);
  expect(await handshakeStatus(await signedUrl('VIEWER', 'AWS_reserved'))).toBe(400);
  expect(await handshakeStatus(await signedUrl('VIEWER', 'has space'))).toBe(400);
  expect(await handshakeStatus(await signedUrl('VIEWER', 'x'.repeat(257)))).toBe(400);
  const gone = channelARN.replace(/\/\d+$/, '/1');
  expect(await handshakeStatus(await signedUrl('MASTER', undefined, gone))).toBe(404);

  const kvs = controlClient(emulator);
  const { StreamARN } = await kvs.send(new CreateStreamCommand({ StreamName: 'storage' }));
  const { ChannelARN } = await kvs.send(new CreateSignalingChannelCommand({ ChannelName: 'stored' }));
  await kvs.send(
    new UpdateMediaStorageConfigurationCommand({
      ChannelARN,
      MediaStorageConfiguration: { Status: 'ENABLED', StreamARN },
    }),
  );
  kvs.destroy();
  expect(await handshakeStatus(await signedUrl('VIEWER', 'v1', ChannelARN))).toBe(400);
  expect(emulator.admin.stats()).toMatchObject({
    'rejected.ws.viewer-limit': 1,
    'rejected.ws.bad-client-id': 3,
    'rejected.ws.unknown-channel': 1,
    'rejected.ws.media-storage-enabled': 1,
  });
});

test('admin: GO_AWAY, RECONNECT_ICE_SERVER and drop reach the right client', async () => {
  await start();
  const master = await raw('MASTER');
  const viewer = await raw('VIEWER', 'v1');
  await connectionsBecome({ master: true, viewers: ['v1'] });
  expect(emulator.admin.send(CHANNEL, 'MASTER', 'GO_AWAY')).toBe(true);
  expect((await master.next()).messageType).toBe('GO_AWAY');
  expect(emulator.admin.send(CHANNEL, 'v1', 'RECONNECT_ICE_SERVER')).toBe(true);
  expect((await viewer.next()).messageType).toBe('RECONNECT_ICE_SERVER');
  expect(emulator.admin.send(CHANNEL, 'nobody', 'GO_AWAY')).toBe(false);
  expect(emulator.admin.send('no-such-channel', 'MASTER', 'GO_AWAY')).toBe(false);
  expect(emulator.admin.drop(CHANNEL, 'v1')).toBe(true);
  expect((await viewer.closed).code).toBe(1006);
  await connectionsBecome({ master: true, viewers: [] });
  expect(emulator.admin.drop(CHANNEL, 'v1')).toBe(false);
  expect(master.messages).toEqual([]);
});

test('idle connections are closed; pings keep them alive; maximum age closes anyway', async () => {
  await start({ idleTimeoutMs: 400, maxConnectionAgeMs: 3_000 });
  const idle = await raw('VIEWER', 'idle');
  const busy = await raw('VIEWER', 'busy');
  const pinger = setInterval(() => busy.ws.ping(), 100);
  try {
    const closed = await idle.closed;
    expect(closed.reason).toBe('idle timeout');
    expect(busy.ws.readyState).toBe(WebSocket.OPEN);
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(busy.ws.readyState).toBe(WebSocket.OPEN);
    expect((await busy.closed).reason).toBe('maximum connection age reached');
  } finally {
    clearInterval(pinger);
  }
  expect(emulator.admin.stats()).toMatchObject({ 'closed.idle': 1, 'closed.max-age': 1 });
});

test('deleting a channel disconnects its clients', async () => {
  await start();
  const master = await raw('MASTER');
  await connectionsBecome({ master: true, viewers: [] });
  const kvs = controlClient(emulator);
  await kvs.send(new DeleteSignalingChannelCommand({ ChannelARN: channelARN }));
  kvs.destroy();
  expect((await master.closed).reason).toBe('channel deleted');
});
