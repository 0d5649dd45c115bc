/** The part of the KVS JS SDK's RequestSigner that signs a signaling URL. */
export interface UrlSigner {
  getSignedURL(endpoint: string, queryParams: Record<string, string>, date?: Date): Promise<string>;
}

/**
 * The SDK's SigV4RequestSigner refuses anything but `wss://`. The scheme is not part of the signature (only
 * host, path and query are), so a `ws://` endpoint (the local emulator) is signed in its `wss://` form and
 * the scheme swapped back.
 */
export function allowWsScheme(signer: UrlSigner): UrlSigner {
  return {
    async getSignedURL(endpoint, queryParams, date) {
      if (!endpoint.startsWith('ws://')) return signer.getSignedURL(endpoint, queryParams, date);
      const signed = await signer.getSignedURL(`wss://${endpoint.slice('ws://'.length)}`, queryParams, date);
      return `ws://${signed.slice('wss://'.length)}`;
    },
  };
}
