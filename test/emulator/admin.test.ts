import { networkInterfaces } from 'node:os';
import { expect, test } from '@playwright/test';
import { startEmulator, type Emulator } from '../../emulator/server.js';
import { RawClient, controlClient, wsRequestSigner, wssEndpoint } from './support.js';
import { DescribeSignalingChannelCommand } from '@aws-sdk/client-kinesis-video';

let emulator: Emulator;

test.afterEach(async () => {
  await emulator.stop();
});

test('HTTP admin hooks: connections, go-away, reconnect-ice-server, drop, stats', async () => {
  emulator = await startEmulator();
  const kvs = controlClient(emulator);
  const arn = (
    await kvs.send(new DescribeSignalingChannelCommand({ ChannelName: 'webrtc-kvs-agent-channel' }))
  ).ChannelInfo!.ChannelARN!;
  kvs.destroy();
  const url = await wsRequestSigner(emulator.region).getSignedURL(
    await wssEndpoint(emulator, arn, 'VIEWER'),
    {
      'X-Amz-ChannelARN': arn,
      'X-Amz-ClientId': 'v1',
    },
  );
  const viewer = await RawClient.connect(url);
  const base = `${emulator.url}/_emulator/channels/webrtc-kvs-agent-channel`;
  await expect
    .poll(async () => (await fetch(`${base}/connections`)).json())
    .toEqual({ master: false, viewers: ['v1'] });

  const goAway = await fetch(`${base}/clients/v1/go-away`, { method: 'POST' });
  expect(goAway.status).toBe(200);
  expect((await viewer.next()).messageType).toBe('GO_AWAY');
  expect((await fetch(`${base}/clients/v1/reconnect-ice-server`, { method: 'POST' })).status).toBe(200);
  expect((await viewer.next()).messageType).toBe('RECONNECT_ICE_SERVER');
  expect((await fetch(`${base}/clients/MASTER/go-away`, { method: 'POST' })).status).toBe(404);
  expect((await fetch(`${base}/clients/v1/explode`, { method: 'POST' })).status).toBe(404);
  expect((await fetch(`${base}/clients/v1/drop`, { method: 'POST' })).status).toBe(200);
  expect((await viewer.closed).code).toBe(1006);

  const stats = (await (await fetch(`${emulator.url}/_emulator/stats`)).json()) as Record<string, number>;
  expect(stats).toMatchObject({ 'sent.GO_AWAY': 1, 'sent.RECONNECT_ICE_SERVER': 1, dropped: 1 });
});

test('admin routes are not reachable from a non-loopback address', async () => {
  // Listening on all interfaces lets a non-loopback address of this machine reach the server.
  const external = Object.values(networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
  test.skip(!external, 'no non-loopback IPv4 address on this machine');
  emulator = await startEmulator({ host: '0.0.0.0' });
  const res = await fetch(`http://${external}:${emulator.port}/_emulator/stats`);
  expect(res.status).toBe(403);
  expect((await fetch(`http://127.0.0.1:${emulator.port}/_emulator/stats`)).status).toBe(200);
});
