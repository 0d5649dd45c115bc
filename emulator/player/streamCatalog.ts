import {
  GetHLSStreamingSessionURLCommand,
  KinesisVideoArchivedMediaClient,
  ListFragmentsCommand,
  type ContainerFormat,
  type HLSPlaybackMode,
} from '@aws-sdk/client-kinesis-video-archived-media';
import {
  DescribeStreamCommand,
  GetDataEndpointCommand,
  KinesisVideoClient,
  ListStreamsCommand,
  type APIName,
} from '@aws-sdk/client-kinesis-video';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { fragmentTimeline, type FragmentTimeline } from './fragmentTimeline.js';

/** What the player lists: a stream and the facts a person picks it by. */
export interface StreamSummary {
  name: string;
  arn: string;
  status: string;
  mediaType: string | undefined;
  retentionHours: number;
  createdMs: number | undefined;
}

export interface PlaybackSession {
  url: string;
  mode: HLSPlaybackMode;
  expiresAtMs: number;
}

export interface PlaybackRequest {
  mode: HLSPlaybackMode;
  /** ON_DEMAND and LIVE_REPLAY: the range by producer timestamp (ms). */
  startMs?: number;
  endMs?: number;
  container?: ContainerFormat;
  expiresSeconds?: number;
}

export interface StreamCatalogOptions {
  region: string;
  /** Omitted against AWS: the SDK's own endpoint resolution. */
  endpoint?: string;
  /** Omitted against AWS: the SDK's default credential chain (env, profile, task role…). */
  credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider;
}

/**
 * The player's only link to Kinesis Video Streams: ListStreams, ListFragments and GetHLSStreamingSessionURL
 * through the AWS SDK v3 clients, so that signing happens here and never in the page. The same code runs
 * against the emulator (an endpoint and its test credentials) and against AWS (neither).
 */
export class StreamCatalog {
  readonly #control: KinesisVideoClient;
  readonly #archived = new Map<string, KinesisVideoArchivedMediaClient>();

  constructor(private readonly options: StreamCatalogOptions) {
    this.#control = new KinesisVideoClient(this.#clientConfig(options.endpoint));
  }

  #clientConfig(endpoint: string | undefined): {
    region: string;
    endpoint?: string;
    credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  } {
    return {
      region: this.options.region,
      ...(endpoint ? { endpoint } : {}),
      ...(this.options.credentials ? { credentials: this.options.credentials } : {}),
    };
  }

  async #archivedFor(streamName: string, api: APIName): Promise<KinesisVideoArchivedMediaClient> {
    const { DataEndpoint } = await this.#control.send(
      new GetDataEndpointCommand({ StreamName: streamName, APIName: api }),
    );
    if (!DataEndpoint) throw new Error(`GetDataEndpoint(${api}) returned no endpoint for ${streamName}`);
    let client = this.#archived.get(DataEndpoint);
    if (!client) {
      client = new KinesisVideoArchivedMediaClient(this.#clientConfig(DataEndpoint));
      this.#archived.set(DataEndpoint, client);
    }
    return client;
  }

  async streams(): Promise<StreamSummary[]> {
    const out: StreamSummary[] = [];
    let token: string | undefined;
    do {
      const page = await this.#control.send(
        new ListStreamsCommand({ ...(token ? { NextToken: token } : {}) }),
      );
      for (const s of page.StreamInfoList ?? []) {
        if (!s.StreamName || !s.StreamARN) continue;
        out.push({
          name: s.StreamName,
          arn: s.StreamARN,
          status: s.Status ?? 'UNKNOWN',
          mediaType: s.MediaType,
          retentionHours: s.DataRetentionInHours ?? 0,
          createdMs: s.CreationTime?.getTime(),
        });
      }
      token = page.NextToken;
    } while (token);
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Throws the SDK's ResourceNotFoundException for an unknown stream. */
  async describe(streamName: string): Promise<void> {
    await this.#control.send(new DescribeStreamCommand({ StreamName: streamName }));
  }

  /** Fragments by producer timestamp in [startMs, endMs] (ListFragments, every page), with the gaps between them. */
  async fragments(streamName: string, range: { startMs: number; endMs: number }): Promise<FragmentTimeline> {
    const client = await this.#archivedFor(streamName, 'LIST_FRAGMENTS');
    const fragments: {
      number: string;
      producerMs: number;
      serverMs: number;
      durationMs: number;
      bytes: number;
    }[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(
        new ListFragmentsCommand({
          StreamName: streamName,
          MaxResults: 1000,
          ...(token
            ? { NextToken: token }
            : {
                FragmentSelector: {
                  FragmentSelectorType: 'PRODUCER_TIMESTAMP',
                  TimestampRange: {
                    StartTimestamp: new Date(range.startMs),
                    EndTimestamp: new Date(range.endMs),
                  },
                },
              }),
        }),
      );
      for (const f of page.Fragments ?? []) {
        if (!f.FragmentNumber || !f.ProducerTimestamp) continue;
        fragments.push({
          number: f.FragmentNumber,
          producerMs: f.ProducerTimestamp.getTime(),
          serverMs: f.ServerTimestamp?.getTime() ?? f.ProducerTimestamp.getTime(),
          durationMs: f.FragmentLengthInMilliseconds ?? 0,
          bytes: f.FragmentSizeInBytes ?? 0,
        });
      }
      token = page.NextToken;
    } while (token);
    return fragmentTimeline(fragments);
  }

  async playback(streamName: string, request: PlaybackRequest): Promise<PlaybackSession> {
    const client = await this.#archivedFor(streamName, 'GET_HLS_STREAMING_SESSION_URL');
    const expiresSeconds = request.expiresSeconds ?? 3600;
    const ranged = request.mode !== 'LIVE' && request.startMs !== undefined;
    const out = await client.send(
      new GetHLSStreamingSessionURLCommand({
        StreamName: streamName,
        PlaybackMode: request.mode,
        ContainerFormat: request.container ?? 'FRAGMENTED_MP4',
        // A discontinuity where the producer's timeline jumps (a new session, a gap), not at every fragment.
        DiscontinuityMode: 'ON_DISCONTINUITY',
        DisplayFragmentTimestamp: 'ALWAYS',
        Expires: expiresSeconds,
        ...(ranged
          ? {
              HLSFragmentSelector: {
                FragmentSelectorType: 'PRODUCER_TIMESTAMP',
                TimestampRange: {
                  StartTimestamp: new Date(request.startMs!),
                  ...(request.endMs !== undefined ? { EndTimestamp: new Date(request.endMs) } : {}),
                },
              },
            }
          : {}),
      }),
    );
    if (!out.HLSStreamingSessionURL) throw new Error('GetHLSStreamingSessionURL returned no URL');
    return {
      url: out.HLSStreamingSessionURL,
      mode: request.mode,
      expiresAtMs: Date.now() + expiresSeconds * 1000,
    };
  }

  destroy(): void {
    this.#control.destroy();
    for (const c of this.#archived.values()) c.destroy();
    this.#archived.clear();
  }
}
