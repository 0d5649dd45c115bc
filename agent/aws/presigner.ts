import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { PresignRefusedError } from '../errors.js';

/** The KVS JS SDK presigns for 299 s; the URL only has to survive the WebSocket handshake. */
const PRESIGN_EXPIRES_SECONDS = 299;

/** The query a KVS JS SDK viewer asks to have signed (SignalingClient.asyncOpen): nothing else is signed. */
const VIEWER_QUERY_KEYS = ['X-Amz-ChannelARN', 'X-Amz-ClientId'] as const;

export interface SignalingPresignerOptions {
  region: string;
  credentials: AwsCredentialIdentityProvider;
  /** The channel's WSS endpoint for the VIEWER role, from GetSignalingChannelEndpoint. */
  allowedEndpoint: string;
  channelARN: string;
  /** The agent's viewer client id: the only `X-Amz-ClientId` signed. */
  clientId: string;
  /** The agent's clock (tests); the page's clock is never used. */
  now?: () => Date;
}

/**
 * Presigns signaling WebSocket URLs for the page (SigV4 query auth, service `kinesisvideo`). The page is
 * untrusted: the agent signs only its own channel's viewer endpoint, for its own channel ARN and client id,
 * with its own clock, and refuses any other query parameter — a compromised page cannot turn it into a
 * signing oracle (another channel, the master role, a URL dated into the future to outlive the 299 s).
 */
export class SignalingPresigner {
  readonly #signer: SignatureV4;
  readonly #options: SignalingPresignerOptions;

  constructor(options: SignalingPresignerOptions) {
    this.#options = options;
    this.#signer = new SignatureV4({
      service: 'kinesisvideo',
      region: options.region,
      credentials: options.credentials,
      sha256: Sha256,
      uriEscapePath: true,
    });
  }

  /**
   * @param _pageDate the date the page's SDK proposes; ignored (kept so the SDK's `getSignedURL` shape
   *   passes straight through).
   * @throws PresignRefusedError when the endpoint or the query is not exactly the agent's own.
   */
  async presign(endpoint: string, queryParams: Record<string, string>, _pageDate?: Date): Promise<string> {
    const { allowedEndpoint, channelARN, clientId } = this.#options;
    if (typeof endpoint !== 'string' || trimSlashes(endpoint) !== trimSlashes(allowedEndpoint)) {
      throw new PresignRefusedError(
        'refusing to presign an endpoint other than the channel’s viewer endpoint',
      );
    }
    const keys = Object.keys(queryParams);
    const unexpected = keys.filter((k) => !(VIEWER_QUERY_KEYS as readonly string[]).includes(k));
    if (unexpected.length > 0) {
      throw new PresignRefusedError(
        `refusing to presign query parameters other than ${VIEWER_QUERY_KEYS.join(', ')} (got ${unexpected.length} other)`,
      );
    }
    if (queryParams['X-Amz-ChannelARN'] !== channelARN) {
      throw new PresignRefusedError('refusing to presign for another channel');
    }
    if (queryParams['X-Amz-ClientId'] !== clientId) {
      throw new PresignRefusedError('refusing to presign for another client id (or for the master role)');
    }
    const url = new URL(allowedEndpoint);
    const request = new HttpRequest({
      method: 'GET',
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port ? { port: Number(url.port) } : {}),
      path: url.pathname || '/',
      // The agent's own values, not the page's objects (equal, but nothing of the page's is signed).
      query: { 'X-Amz-ChannelARN': channelARN, 'X-Amz-ClientId': clientId },
      headers: { host: url.host },
    });
    const signed = await this.#signer.presign(request, {
      expiresIn: PRESIGN_EXPIRES_SECONDS,
      signingDate: this.#options.now?.() ?? new Date(),
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

function trimSlashes(s: string): string {
  return s.replace(/\/+$/, '');
}

function encodeRfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
