import { DescribeSignalingChannelCommand } from '@aws-sdk/client-kinesis-video';
import { expect, test } from '@playwright/test';
import { WebSocket } from 'ws';
import { startEmulator, type Emulator } from '../../emulator/server.js';
import { MAX_PAYLOAD_CHARS } from '../../emulator/signaling.js';
import {
  b64,
  controlClient,
  handshakeStatus,
  RawClient,
  wsRequestSigner,
  wssEndpoint,
} from '../emulator/support.js';
import { fuzzSeed, mutateObject, report, type Prng } from './fuzzSupport.js';

/**
 * Random JSON and mutated valid messages into the emulator's signaling socket over properly presigned
 * connections (a master and a viewer), then random edits of a presigned handshake URL. An independent
 * model of the KVS message rules says which messages must be refused; the emulator's counters must agree.
 */
const MESSAGES = 2000;
const HANDSHAKES = 300;
const CHANNEL = 'webrtc-kvs-agent-channel';
const VIEWER = 'v1';

let emulator: Emulator;
let channelARN: string;
const clients: Array<{ close(): void }> = [];

test.beforeEach(async () => {
  emulator = await startEmulator();
  const kvs = controlClient(emulator);
  channelARN = (await kvs.send(new DescribeSignalingChannelCommand({ ChannelName: CHANNEL }))).ChannelInfo!
    .ChannelARN!;
  kvs.destroy();
});

test.afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await emulator.stop();
});

async function signedUrl(role: 'MASTER' | 'VIEWER', clientId?: string): Promise<string> {
  const endpoint = await wssEndpoint(emulator, channelARN, role);
  return wsRequestSigner(emulator.region).getSignedURL(endpoint, {
    'X-Amz-ChannelARN': channelARN,
    ...(clientId !== undefined ? { 'X-Amz-ClientId': clientId } : {}),
  });
}

async function connect(role: 'MASTER' | 'VIEWER', clientId?: string): Promise<RawClient> {
  const c = await RawClient.connect(await signedUrl(role, clientId));
  clients.push(c);
  return c;
}

const CLIENT_ID = /^[a-zA-Z0-9_.-]{1,256}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const ACTIONS = ['SDP_OFFER', 'SDP_ANSWER', 'ICE_CANDIDATE'];

/** The KVS rules for one inbound message, written down independently of the emulator's code. */
function accepted(text: string | null, role: 'MASTER' | 'VIEWER'): boolean {
  if (text === null) return false;
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return false;
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return false;
  const m = msg as Record<string, unknown>;
  const field = (camel: string) => m[camel] ?? m[camel[0]!.toUpperCase() + camel.slice(1)];
  const correlationId = field('correlationId');
  if (correlationId !== undefined && !(typeof correlationId === 'string' && CLIENT_ID.test(correlationId))) {
    return false;
  }
  const action = field('action');
  if (typeof action !== 'string' || !ACTIONS.includes(action)) return false;
  const payload = field('messagePayload');
  if (typeof payload !== 'string' || payload.length === 0 || payload.length > MAX_PAYLOAD_CHARS) return false;
  if (!BASE64.test(payload)) return false;
  if (role === 'VIEWER') return true;
  return field('recipientClientId') === VIEWER;
}

function validMessage(rng: Prng, role: 'MASTER' | 'VIEWER'): Record<string, unknown> {
  const pascal = rng.bool(0.3);
  const k = (camel: string) => (pascal ? camel[0]!.toUpperCase() + camel.slice(1) : camel);
  return {
    [k('action')]: rng.pick(ACTIONS),
    [k('messagePayload')]: b64({ type: 'offer', sdp: rng.string(200) }),
    ...(role === 'MASTER' ? { [k('recipientClientId')]: VIEWER } : {}),
    ...(rng.bool(0.3) ? { [k('correlationId')]: `c-${rng.int(0, 1e6)}` } : {}),
  };
}

type Input = { text: string } | { binary: Uint8Array };

function input(rng: Prng, role: 'MASTER' | 'VIEWER'): Input {
  const valid = validMessage(rng, role);
  switch (rng.int(0, 7)) {
    case 0:
    case 1:
      return { text: JSON.stringify(valid) };
    case 2:
      return { text: JSON.stringify(rng.json()) };
    case 3: {
      const s = JSON.stringify(valid);
      return { text: s.slice(0, rng.int(0, s.length - 1)) };
    }
    case 4:
      return rng.bool() ? { binary: rng.bytes(rng.int(0, 200)) } : { text: rng.string(300) };
    case 5: // payload just over the limit, or not base64
      return {
        text: JSON.stringify({
          ...valid,
          messagePayload: rng.bool() ? 'A'.repeat(MAX_PAYLOAD_CHARS + rng.int(1, 8)) : `${b64('x')}*`,
        }),
      };
    default:
      return { text: JSON.stringify(mutateObject(rng, valid)) };
  }
}

function sum(stats: Record<string, number>, prefix: string): number {
  return Object.entries(stats)
    .filter(([k]) => k.startsWith(prefix))
    .reduce((n, [, v]) => n + v, 0);
}

test('random and mutated signaling messages: no crash, every reject counted, valid ones routed', async () => {
  test.setTimeout(60_000);
  const rng = fuzzSeed('signaling messages');
  const master = await connect('MASTER');
  const viewer = await connect('VIEWER', VIEWER);
  await expect.poll(() => emulator.admin.connections(CHANNEL)).toEqual({ master: true, viewers: [VIEWER] });
  let rejects = 0;
  let routed = 0;
  for (let i = 0; i < MESSAGES; i++) {
    const role = rng.bool() ? 'MASTER' : 'VIEWER';
    const msg = input(rng, role);
    if (accepted('text' in msg ? msg.text : null, role)) routed++;
    else rejects++;
    const ws = (role === 'MASTER' ? master : viewer).ws;
    ws.send('text' in msg ? msg.text : msg.binary, { binary: 'binary' in msg });
  }
  await expect.poll(() => emulator.admin.stats()['messages.received'], { timeout: 30_000 }).toBe(MESSAGES);
  const stats = emulator.admin.stats();
  const rejectedCount = sum(stats, 'rejected.message.');
  report(`signaling: ${MESSAGES} sent, ${rejectedCount} rejected, ${sum(stats, 'routed.')} routed`);
  report(
    'rejected by reason',
    Object.fromEntries(Object.entries(stats).filter(([k]) => k.startsWith('rejected.message.'))),
  );
  expect(rejectedCount).toBe(rejects);
  expect(sum(stats, 'routed.') + (stats['queue.enqueued'] ?? 0)).toBe(routed);
  expect(rejects).toBeGreaterThan(MESSAGES / 3);
  expect(routed).toBeGreaterThan(MESSAGES / 10);
  // Nobody was disconnected by bad input.
  expect(emulator.admin.connections(CHANNEL)).toEqual({ master: true, viewers: [VIEWER] });

  // Beyond the socket's maxPayload: that socket is closed and the message counted; the other stays.
  const closed = viewer.closed;
  viewer.ws.send(JSON.stringify({ action: 'SDP_OFFER', messagePayload: 'A'.repeat(300 * 1024) }));
  expect((await closed).code).toBe(1009);
  await expect.poll(() => emulator.admin.stats()['rejected.message.too-large-frame']).toBe(1);

  // Still serving: a fresh viewer's valid offer reaches the master.
  const again = await connect('VIEWER', 'v2');
  master.messages.splice(0);
  again.send({ action: 'SDP_OFFER', messagePayload: b64({ type: 'offer', sdp: 'after fuzz' }) });
  const offer = await master.next((m) => m.senderClientId === 'v2');
  expect(offer.messageType).toBe('SDP_OFFER');
});

/** Random edits of a presigned URL's query (the signed part) and path. */
function mutateUrl(rng: Prng, url: string): string {
  const q = url.indexOf('?');
  let s = url;
  for (let e = rng.int(1, 3); e > 0; e--) {
    const at = rng.int(q - 5, s.length - 1);
    switch (rng.int(0, 4)) {
      case 0:
        s = s.slice(0, at) + rng.pick([...'aZ09%+&=?#/._-~ ']) + s.slice(at + 1);
        break;
      case 1:
        s = s.slice(0, at) + s.slice(at + rng.int(1, 10));
        break;
      case 2:
        s =
          s.slice(0, at) +
          rng.pick(['&X-Amz-ClientId=x', '&X-Amz-ChannelARN=a', '%zz', '&&', '%00']) +
          s.slice(at);
        break;
      case 3:
        s = `${s}&${rng.string(10)}=${rng.string(10)}`;
        break;
      default:
        s = s.slice(0, at) + s.slice(at).replace(/%[0-9A-F]{2}/, (m) => m.toLowerCase());
    }
  }
  return s;
}

test('mutated presigned handshakes: every attempt answered and counted, the hub keeps serving', async () => {
  test.setTimeout(60_000);
  const rng = fuzzSeed('signaling handshakes');
  const good = await signedUrl('VIEWER', 'fuzz-viewer');
  const statuses: Record<string, number> = {};
  let attempted = 0;
  let tried = 0;
  // Sequential handshakes stop at the count or the time budget, so the test stays bounded on a loaded machine.
  const deadline = Date.now() + 25_000;
  for (; tried < HANDSHAKES && Date.now() < deadline; tried++) {
    const url = mutateUrl(rng, good);
    let status: number | string;
    try {
      status = await handshakeStatus(url);
      attempted++;
    } catch (err) {
      // The client refused to send it (invalid URL or request line) or the server hung up: never a hang.
      status = `client: ${(err as Error).message.slice(0, 40)}`;
    }
    statuses[String(status)] = (statuses[String(status)] ?? 0) + 1;
  }
  report(`${tried} mutated handshakes, outcomes`, statuses);
  expect(tried).toBeGreaterThanOrEqual(50);
  const stats = emulator.admin.stats();
  const hubRejects = sum(stats, 'rejected.ws.') - (stats['rejected.ws.unknown-path'] ?? 0);
  const accepted = (stats['connected.viewer'] ?? 0) + (stats['connected.master'] ?? 0);
  // Every handshake the hub saw ended as a connection or a counted refusal.
  expect(hubRejects + accepted).toBe(stats['ws.handshakes']);
  expect(
    (stats['ws.handshakes'] ?? 0) +
      (stats['rejected.ws.unknown-path'] ?? 0) +
      (stats['rejected.http.client-error'] ?? 0),
  ).toBeGreaterThanOrEqual(attempted);
  for (const status of Object.keys(statuses).filter((s) => /^\d+$/.test(s))) {
    expect(['101', '400', '403', '404']).toContain(status);
  }
  // Still serving: the unmodified URL connects.
  expect(await handshakeStatus(await signedUrl('VIEWER', 'after-fuzz'))).toBe(101);
  const ws = new WebSocket(await signedUrl('MASTER'));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.close();
});
