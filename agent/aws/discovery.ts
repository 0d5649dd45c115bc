import {
  DescribeMediaStorageConfigurationCommand,
  DescribeSignalingChannelCommand,
  GetSignalingChannelEndpointCommand,
  KinesisVideoClient,
  ResourceNotFoundException,
} from '@aws-sdk/client-kinesis-video';
import {
  GetIceServerConfigCommand,
  KinesisVideoSignalingClient,
} from '@aws-sdk/client-kinesis-video-signaling';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import type { IceServer } from '../bridge/controlProtocol.js';
import { AgentError, DiscoveryError } from '../errors.js';

export interface ChannelEndpoints {
  channelARN: string;
  /** WSS endpoint for the VIEWER role; the page connects here with a URL presigned by the agent. */
  wssEndpoint: string;
  /** HTTPS endpoint for the VIEWER role (GetIceServerConfig). */
  httpsEndpoint: string;
}

export interface DiscoveryOptions {
  region: string;
  /** Control-plane endpoint override (the emulator); undefined = real AWS. */
  endpoint?: string | undefined;
  credentials: AwsCredentialIdentityProvider;
}

/**
 * Finds the channel and its viewer endpoints, and fetches TURN servers, with the AWS SDK v3 clients — the
 * same calls a browser viewer makes, done in Node so that no credential reaches the page.
 */
export class ChannelDiscovery {
  readonly #control: KinesisVideoClient;
  readonly #options: DiscoveryOptions;

  constructor(options: DiscoveryOptions) {
    this.#options = options;
    this.#control = new KinesisVideoClient({
      region: options.region,
      credentials: options.credentials,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    });
  }

  async describeChannel(channelName: string): Promise<ChannelEndpoints> {
    const channelARN = await this.#call(`DescribeSignalingChannel ${channelName}`, async () => {
      const out = await this.#control.send(new DescribeSignalingChannelCommand({ ChannelName: channelName }));
      const arn = out.ChannelInfo?.ChannelARN;
      if (!arn)
        throw new DiscoveryError(`channel ${channelName} has no ARN in the DescribeSignalingChannel answer`);
      if (out.ChannelInfo?.ChannelStatus && out.ChannelInfo.ChannelStatus !== 'ACTIVE') {
        throw new DiscoveryError(`channel ${channelName} is ${out.ChannelInfo.ChannelStatus}, not ACTIVE`);
      }
      return arn;
    });

    await this.#assertPeerToPeer(channelName, channelARN);

    const endpoints = await this.#call('GetSignalingChannelEndpoint', () =>
      this.#control.send(
        new GetSignalingChannelEndpointCommand({
          ChannelARN: channelARN,
          SingleMasterChannelEndpointConfiguration: { Protocols: ['WSS', 'HTTPS'], Role: 'VIEWER' },
        }),
      ),
    );
    const find = (protocol: string) =>
      endpoints.ResourceEndpointList?.find((e) => e.Protocol === protocol)?.ResourceEndpoint;
    const wssEndpoint = find('WSS');
    const httpsEndpoint = find('HTTPS');
    if (!wssEndpoint || !httpsEndpoint) {
      throw new DiscoveryError('GetSignalingChannelEndpoint returned no WSS or HTTPS endpoint for VIEWER');
    }
    return { channelARN, wssEndpoint, httpsEndpoint };
  }

  /**
   * TURN servers for this viewer (TTL ≈ 5 min, so fetched for every new peer connection), plus the region's
   * STUN server on real AWS (GetIceServerConfig never returns STUN).
   */
  async iceServers(channel: ChannelEndpoints, clientId: string): Promise<IceServer[]> {
    const signaling = new KinesisVideoSignalingClient({
      region: this.#options.region,
      credentials: this.#options.credentials,
      endpoint: channel.httpsEndpoint,
    });
    try {
      const out = await this.#call('GetIceServerConfig', () =>
        signaling.send(new GetIceServerConfigCommand({ ChannelARN: channel.channelARN, ClientId: clientId })),
      );
      const servers: IceServer[] = [];
      if (!this.#options.endpoint) {
        servers.push({ urls: [`stun:stun.kinesisvideo.${this.#options.region}.amazonaws.com:443`] });
      }
      for (const s of out.IceServerList ?? []) {
        if (!s.Uris?.length) continue;
        servers.push({
          urls: s.Uris,
          ...(s.Username ? { username: s.Username } : {}),
          ...(s.Password ? { credential: s.Password } : {}),
        });
      }
      return servers;
    } finally {
      signaling.destroy();
    }
  }

  /** Viewers are refused by KVS on a channel whose media storage (WebRTC ingestion) is ENABLED. */
  async #assertPeerToPeer(channelName: string, channelARN: string): Promise<void> {
    const status = await this.#call('DescribeMediaStorageConfiguration', async () => {
      const out = await this.#control.send(
        new DescribeMediaStorageConfigurationCommand({ ChannelARN: channelARN }),
      );
      return out.MediaStorageConfiguration?.Status;
    });
    if (status === 'ENABLED') {
      throw new AgentError(
        'CHANNEL_STORAGE_ENABLED',
        `channel ${channelName} has media storage ENABLED, so KVS refuses peer-to-peer viewers such as this agent. ` +
          `Disable it (aws kinesisvideo update-media-storage-configuration --channel-arn ${channelARN} ` +
          `--media-storage-configuration Status=DISABLED) or use another channel.`,
      );
    }
  }

  async #call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof AgentError) throw err;
      if (err instanceof ResourceNotFoundException) {
        throw new DiscoveryError(`${what}: not found (${err.message})`, { cause: err });
      }
      const name = err instanceof Error ? err.name : 'Error';
      const message = err instanceof Error ? err.message : String(err);
      throw new DiscoveryError(`${what} failed: ${name}: ${message}`, { cause: err });
    }
  }

  destroy(): void {
    this.#control.destroy();
  }
}
