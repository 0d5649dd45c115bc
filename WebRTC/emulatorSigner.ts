import { kvs, type KvsCredentials, type RequestSigner } from '../page/kvsSdk.js';
import { allowWsScheme } from './wsSchemeSigner.js';

/** The SDK's signer, also for the emulator's `ws://` endpoint (see wsSchemeSigner.ts). */
export function requestSignerFor(region: string, credentials: KvsCredentials): RequestSigner {
  return allowWsScheme(new kvs.SigV4RequestSigner(region, credentials));
}
