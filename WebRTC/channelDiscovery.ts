import {
  DescribeSignalingChannelCommand,
  GetSignalingChannelEndpointCommand,
  KinesisVideoClient,
} from '@aws-sdk/client-kinesis-video';
import {
  GetIceServerConfigCommand,
  KinesisVideoSignalingClient,
} from '@aws-sdk/client-kinesis-video-signaling';
/** The credentials shape the KVS JS SDK takes (page/kvsSdk.ts), repeated so Node code need not load the page's SDK. */
export interface KvsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** RTCIceServer's shape, spelled out so the synthetic master (Node, no DOM types) can share this module. */
export interface IceServer {
  urls: string | string[];
  username?: string | undefined;
  credential?: string | undefined;
}

export interface MasterChannel {
  channelARN: string;
  wssEndpoint: string;
  httpsEndpoint: string;
  iceServers: IceServer[];
}

/**
 * The master's view of a signaling channel through the AWS SDK v3: ARN, its MASTER endpoints and ICE servers.
 * `endpoint` overrides the control plane (the local emulator); empty means real AWS.
 */
export async function discoverMasterChannel(options: {
  region: string;
  channelName: string;
  credentials: KvsCredentials;
  endpoint?: string;
  /** MASTER (default) or VIEWER: which role's endpoints to ask for. */
  role?: 'MASTER' | 'VIEWER';
}): Promise<MasterChannel> {
  const role = options.role ?? 'MASTER';
  const { region, credentials } = options;
  const endpoint = options.endpoint || undefined;
  const kv = new KinesisVideoClient({ region, credentials, ...(endpoint ? { endpoint } : {}) });
  try {
    const described = await kv.send(
      new DescribeSignalingChannelCommand({ ChannelName: options.channelName }),
    );
    const channelARN = described.ChannelInfo?.ChannelARN;
    if (!channelARN) throw new Error(`channel ${options.channelName} has no ARN`);
    const endpoints = await kv.send(
      new GetSignalingChannelEndpointCommand({
        ChannelARN: channelARN,
        SingleMasterChannelEndpointConfiguration: { Protocols: ['WSS', 'HTTPS'], Role: role },
      }),
    );
    const find = (protocol: string) => {
      const found = endpoints.ResourceEndpointList?.find((e) => e.Protocol === protocol)?.ResourceEndpoint;
      if (!found) throw new Error(`no ${protocol} endpoint for the ${role} role`);
      return found;
    };
    const wssEndpoint = find('WSS');
    const httpsEndpoint = find('HTTPS');
    const signaling = new KinesisVideoSignalingClient({ region, credentials, endpoint: httpsEndpoint });
    try {
      const ice = await signaling.send(
        new GetIceServerConfigCommand({ ChannelARN: channelARN, Service: 'TURN' }),
      );
      const iceServers: IceServer[] = [];
      // STUN is never returned by the service: clients add the regional one themselves (not for the emulator).
      if (!endpoint) iceServers.push({ urls: `stun:stun.kinesisvideo.${region}.amazonaws.com:443` });
      for (const s of ice.IceServerList ?? []) {
        if (s.Uris?.length) iceServers.push({ urls: s.Uris, username: s.Username, credential: s.Password });
      }
      return { channelARN, wssEndpoint, httpsEndpoint, iceServers };
    } finally {
      signaling.destroy();
    }
  } finally {
    kv.destroy();
  }
}
