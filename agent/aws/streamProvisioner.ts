import {
  CreateStreamCommand,
  DescribeStreamCommand,
  KinesisVideoClient,
  ResourceNotFoundException,
} from '@aws-sdk/client-kinesis-video';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { DiscoveryError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';

export const STREAM_MEDIA_TYPE = 'video/h264,audio/aac';

export interface StreamState {
  streamARN: string;
  retentionHours: number;
  created: boolean;
}

/**
 * Makes sure the target stream exists before kvssink starts: DescribeStream, and CreateStream (H.264 + AAC,
 * the configured retention) when it is missing — unless creation is disabled. Waits until ACTIVE, since
 * CreateStream on AWS returns while the stream is still CREATING.
 */
export async function ensureStream(options: {
  streamName: string;
  region: string;
  endpoint?: string | undefined;
  credentials: AwsCredentialIdentityProvider;
  retentionHours: number;
  create: boolean;
  logger: Logger;
  activeTimeoutMs?: number;
}): Promise<StreamState> {
  const client = new KinesisVideoClient({
    region: options.region,
    credentials: options.credentials,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
  });
  try {
    let created = false;
    let info = await describe(client, options.streamName);
    if (!info) {
      if (!options.create) {
        throw new DiscoveryError(
          `stream ${options.streamName} does not exist and stream creation is disabled (--no-create-stream)`,
        );
      }
      await client
        .send(
          new CreateStreamCommand({
            StreamName: options.streamName,
            MediaType: STREAM_MEDIA_TYPE,
            DataRetentionInHours: options.retentionHours,
          }),
        )
        .catch((err: unknown) => {
          throw new DiscoveryError(`CreateStream ${options.streamName} failed: ${errorMessage(err)}`, {
            cause: err,
          });
        });
      created = true;
      options.logger.info(
        { stream: options.streamName, retentionHours: options.retentionHours },
        'stream created',
      );
      const deadline = Date.now() + (options.activeTimeoutMs ?? 60_000);
      do {
        info = await describe(client, options.streamName);
        if (info?.status === 'ACTIVE') break;
        await new Promise((r) => setTimeout(r, 1000));
      } while (Date.now() < deadline);
    }
    if (!info || info.status !== 'ACTIVE') {
      throw new DiscoveryError(`stream ${options.streamName} is ${info?.status ?? 'missing'}, not ACTIVE`);
    }
    if (info.retentionHours === 0) {
      options.logger.warn(
        { stream: options.streamName },
        'stream retention is 0 hours: KVS keeps nothing, so HLS, GetClip and GetMedia will have nothing to play. ' +
          'Set a retention (aws kinesisvideo update-data-retention) or let the agent create the stream.',
      );
    }
    return { streamARN: info.arn, retentionHours: info.retentionHours, created };
  } finally {
    client.destroy();
  }
}

async function describe(
  client: KinesisVideoClient,
  streamName: string,
): Promise<{ arn: string; status: string; retentionHours: number } | undefined> {
  try {
    const out = await client.send(new DescribeStreamCommand({ StreamName: streamName }));
    const s = out.StreamInfo;
    return {
      arn: s?.StreamARN ?? '',
      status: s?.Status ?? 'UNKNOWN',
      retentionHours: s?.DataRetentionInHours ?? 0,
    };
  } catch (err) {
    if (err instanceof ResourceNotFoundException) return undefined;
    throw new DiscoveryError(`DescribeStream ${streamName} failed: ${errorMessage(err)}`, { cause: err });
  }
}
