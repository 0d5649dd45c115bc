import { GetSignalingChannelEndpointCommand, KinesisVideoClient } from '@aws-sdk/client-kinesis-video';
import { SigV4RequestSigner } from 'amazon-kinesis-video-streams-webrtc';
import { WebSocket } from 'ws';
import { DEFAULT_EMULATOR_CREDENTIALS, type Emulator } from '../../emulator/server.js';

export type Credentials = { accessKeyId: string; secretAccessKey: string; sessionToken?: string };

export function controlClient(
  emulator: Emulator,
  credentials: Credentials = DEFAULT_EMULATOR_CREDENTIALS,
  region = emulator.region,
): KinesisVideoClient {
  return new KinesisVideoClient({ region, endpoint: emulator.url, credentials, maxAttempts: 1 });
}

/** The role's WSS endpoint, from GetSignalingChannelEndpoint as a real client would get it. */
export async function wssEndpoint(
  emulator: Emulator,
  channelARN: string,
  role: 'MASTER' | 'VIEWER',
): Promise<string> {
  const client = controlClient(emulator);
  try {
    const out = await client.send(
      new GetSignalingChannelEndpointCommand({
        ChannelARN: channelARN,
        SingleMasterChannelEndpointConfiguration: { Protocols: ['WSS', 'HTTPS'], Role: role },
      }),
    );
    const wss = out.ResourceEndpointList?.find((e) => e.Protocol === 'WSS')?.ResourceEndpoint;
    if (!wss) throw new Error('no WSS endpoint');
    return wss;
  } finally {
    client.destroy();
  }
}

/**
 * The KVS JS SDK's own signer only signs `wss://`: sign that, connect over `ws://` (the scheme is not signed).
 * Usable as the SDK's `requestSigner`.
 */
export function wsRequestSigner(region: string, credentials: Credentials = DEFAULT_EMULATOR_CREDENTIALS) {
  const signer = new SigV4RequestSigner(region, { ...credentials });
  return {
    async getSignedURL(endpoint: string, queryParams: Record<string, string>, date?: Date): Promise<string> {
      const signed = await signer.getSignedURL(endpoint.replace(/^ws:/, 'wss:'), queryParams, date);
      return signed.replace(/^wss:/, 'ws:');
    },
  };
}

/** A raw `ws` client that records every message, for the wire-level cases the SDK cannot produce. */
export class RawClient {
  readonly messages: Array<Record<string, unknown>> = [];
  readonly #waiters: Array<() => void> = [];
  closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      this.messages.push(JSON.parse(data.toString('utf8')) as Record<string, unknown>);
      for (const w of this.#waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) =>
      ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
  }

  static async connect(url: string): Promise<RawClient> {
    const ws = new WebSocket(url);
    const client = new RawClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return client;
  }

  send(value: unknown): void {
    this.ws.send(typeof value === 'string' ? value : JSON.stringify(value));
  }

  /** Waits for the n-th message (1-based) matching `predicate`. */
  async next(
    predicate: (m: Record<string, unknown>) => boolean = () => true,
    timeoutMs = 5000,
  ): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(predicate);
      if (found) {
        this.messages.splice(this.messages.indexOf(found), 1);
        return found;
      }
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`no matching message within ${timeoutMs} ms; have ${JSON.stringify(this.messages)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.ws.close();
  }
}

/** Connect attempt that reports the HTTP status of a refused handshake instead of throwing. */
export function handshakeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.once('error', (err) => reject(err));
  });
}

export const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64');
export const unb64 = (value: unknown): unknown =>
  JSON.parse(Buffer.from(String(value), 'base64').toString('utf8'));
