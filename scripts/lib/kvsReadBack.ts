import { writeFile } from 'node:fs/promises';
import {
  GetClipCommand,
  KinesisVideoArchivedMediaClient,
  ListFragmentsCommand,
  type Fragment,
} from '@aws-sdk/client-kinesis-video-archived-media';
import { GetDataEndpointCommand, KinesisVideoClient } from '@aws-sdk/client-kinesis-video';
import type { AwsCredentialIdentity } from '@smithy/types';

/**
 * Reads a recording back out of Kinesis Video Streams the way a user would — GetDataEndpoint, ListFragments,
 * GetClip with the AWS SDK v3 clients — against the emulator or AWS alike.
 */
export class KvsReadBack {
  readonly #control: KinesisVideoClient;

  constructor(
    private readonly options: {
      region: string;
      credentials: AwsCredentialIdentity;
      endpoint?: string;
      streamName: string;
    },
  ) {
    this.#control = new KinesisVideoClient({
      region: options.region,
      credentials: options.credentials,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    });
  }

  async #archived(api: 'LIST_FRAGMENTS' | 'GET_CLIP'): Promise<KinesisVideoArchivedMediaClient> {
    const { DataEndpoint } = await this.#control.send(
      new GetDataEndpointCommand({ StreamName: this.options.streamName, APIName: api }),
    );
    return new KinesisVideoArchivedMediaClient({
      region: this.options.region,
      credentials: this.options.credentials,
      endpoint: DataEndpoint,
    });
  }

  /** Every fragment, ordered by producer timestamp. */
  async fragments(): Promise<Fragment[]> {
    const client = await this.#archived('LIST_FRAGMENTS');
    const out: Fragment[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(
        new ListFragmentsCommand({
          StreamName: this.options.streamName,
          ...(token ? { NextToken: token } : {}),
        }),
      );
      out.push(...(page.Fragments ?? []));
      token = page.NextToken;
    } while (token);
    client.destroy();
    return out.sort((a, b) => (a.ProducerTimestamp?.getTime() ?? 0) - (b.ProducerTimestamp?.getTime() ?? 0));
  }

  /** GetClip (MP4) of [start, end] by producer timestamp, written to `path`. */
  async clip(start: Date, end: Date, path: string): Promise<void> {
    const client = await this.#archived('GET_CLIP');
    const out = await client.send(
      new GetClipCommand({
        StreamName: this.options.streamName,
        ClipFragmentSelector: {
          FragmentSelectorType: 'PRODUCER_TIMESTAMP',
          TimestampRange: { StartTimestamp: start, EndTimestamp: end },
        },
      }),
    );
    await writeFile(path, Buffer.from((await out.Payload?.transformToByteArray()) ?? []));
    client.destroy();
  }

  /** Every fragment, and a GetClip from the first one's start to the last one's end written to `path`. */
  async wholeClip(path: string): Promise<Fragment[]> {
    const fragments = await this.fragments();
    const first = fragments[0]?.ProducerTimestamp;
    const last = fragments.at(-1);
    if (!first || !last?.ProducerTimestamp) throw new Error(`${this.options.streamName} holds no fragments`);
    await this.clip(
      first,
      new Date(last.ProducerTimestamp.getTime() + (last.FragmentLengthInMilliseconds ?? 0)),
      path,
    );
    return fragments;
  }

  destroy(): void {
    this.#control.destroy();
  }
}
