import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentityProvider } from '@smithy/types';

/** The KVS JS SDK presigns for 299 s; the URL only has to survive the WebSocket handshake. */
const PRESIGN_EXPIRES_SECONDS = 299;

/**
 * Presigns signaling WebSocket URLs for the page (SigV4 query auth, service `kinesisvideo`). The page sends
 * the endpoint and query it wants; the agent signs only its own channel's viewer endpoint, so a compromised
 * page cannot turn it into a general signing oracle.
 */
export class SignalingPresigner {
  readonly #signer: SignatureV4;

  constructor(
    private readonly options: {
      region: string;
      credentials: AwsCredentialIdentityProvider;
      allowedEndpoint: string;
      channelARN: string;
    },
  ) {
    this.#signer = new SignatureV4({
      service: 'kinesisvideo',
      region: options.region,
      credentials: options.credentials,
      sha256: Sha256,
      uriEscapePath: true,
    });
  }

  async presign(endpoint: string, queryParams: Record<string, string>, date?: Date): Promise<string> {
    if (endpoint.replace(/\/+$/, '') !== this.options.allowedEndpoint.replace(/\/+$/, '')) {
      throw new Error('refusing to presign an endpoint other than the channel’s viewer endpoint');
    }
    if (queryParams['X-Amz-ChannelARN'] !== this.options.channelARN) {
      throw new Error('refusing to presign for another channel');
    }
    const url = new URL(endpoint);
    const request = new HttpRequest({
      method: 'GET',
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port ? { port: Number(url.port) } : {}),
      path: url.pathname || '/',
      query: { ...queryParams },
      headers: { host: url.host },
    });
    const signed = await this.#signer.presign(request, {
      expiresIn: PRESIGN_EXPIRES_SECONDS,
      ...(date ? { signingDate: date } : {}),
    });
    const query = Object.entries(signed.query ?? {})
      .flatMap(([k, v]) =>
        Array.isArray(v) ? v.map((x) => [k, x] as const) : v == null ? [] : [[k, v] as const],
      )
      .map(([k, v]) => `${encodeRfc3986(k)}=${encodeRfc3986(v)}`)
      .join('&');
    return `${url.protocol}//${url.host}${url.pathname === '/' ? '/' : url.pathname}?${query}`;
  }
}

function encodeRfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
