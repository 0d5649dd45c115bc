import { resourceInUse, resourceNotFound } from './awsErrors.js';

export interface ChannelRecord {
  name: string;
  arn: string;
  type: 'SINGLE_MASTER';
  status: 'ACTIVE';
  creationTime: Date;
  messageTtlSeconds: number;
  version: string;
  tags: Record<string, string>;
  mediaStorage: { status: 'ENABLED' | 'DISABLED'; streamARN?: string };
}

export interface StreamRecord {
  name: string;
  arn: string;
  deviceName?: string;
  mediaType?: string;
  kmsKeyId: string;
  dataRetentionInHours: number;
  status: 'ACTIVE';
  creationTime: Date;
  version: string;
  tags: Record<string, string>;
}

export const DEFAULT_MESSAGE_TTL_SECONDS = 60;

/** Channels and streams of one emulated account and region, in memory. */
export class EmulatorState {
  readonly #channels = new Map<string, ChannelRecord>();
  readonly #streams = new Map<string, StreamRecord>();
  #lastMillis = 0;

  constructor(
    readonly region: string,
    readonly accountId: string,
  ) {}

  createChannel(input: {
    name: string;
    messageTtlSeconds?: number;
    tags?: Record<string, string>;
  }): ChannelRecord {
    if (this.#channels.has(input.name))
      throw resourceInUse(`The signaling channel ${input.name} already exists`);
    const creationTime = this.#uniqueNow();
    const channel: ChannelRecord = {
      name: input.name,
      arn: `arn:aws:kinesisvideo:${this.region}:${this.accountId}:channel/${input.name}/${creationTime.getTime()}`,
      type: 'SINGLE_MASTER',
      status: 'ACTIVE',
      creationTime,
      messageTtlSeconds: input.messageTtlSeconds ?? DEFAULT_MESSAGE_TTL_SECONDS,
      version: versionString(),
      tags: { ...input.tags },
      mediaStorage: { status: 'DISABLED' },
    };
    this.#channels.set(channel.name, channel);
    return channel;
  }

  /** By name or ARN; both given must agree. */
  findChannel(ref: { name?: string | undefined; arn?: string | undefined }): ChannelRecord {
    const channel = ref.name !== undefined ? this.#channels.get(ref.name) : this.channelByArn(ref.arn ?? '');
    if (!channel || (ref.arn !== undefined && channel.arn !== ref.arn)) {
      throw resourceNotFound(
        `The requested channel ${ref.name ?? ref.arn ?? ''} is not found or not active.`,
      );
    }
    return channel;
  }

  channelByArn(arn: string): ChannelRecord | undefined {
    for (const c of this.#channels.values()) if (c.arn === arn) return c;
    return undefined;
  }

  channelByName(name: string): ChannelRecord | undefined {
    return this.#channels.get(name);
  }

  listChannels(): ChannelRecord[] {
    return [...this.#channels.values()];
  }

  deleteChannel(channel: ChannelRecord): void {
    this.#channels.delete(channel.name);
  }

  createStream(input: {
    name: string;
    deviceName?: string | undefined;
    mediaType?: string | undefined;
    kmsKeyId?: string | undefined;
    dataRetentionInHours?: number | undefined;
    tags?: Record<string, string> | undefined;
  }): StreamRecord {
    if (this.#streams.has(input.name)) throw resourceInUse(`The stream ${input.name} already exists`);
    const creationTime = this.#uniqueNow();
    const stream: StreamRecord = {
      name: input.name,
      arn: `arn:aws:kinesisvideo:${this.region}:${this.accountId}:stream/${input.name}/${creationTime.getTime()}`,
      ...(input.deviceName !== undefined ? { deviceName: input.deviceName } : {}),
      ...(input.mediaType !== undefined ? { mediaType: input.mediaType } : {}),
      kmsKeyId: input.kmsKeyId ?? `arn:aws:kms:${this.region}:${this.accountId}:alias/aws/kinesisvideo`,
      dataRetentionInHours: input.dataRetentionInHours ?? 0,
      status: 'ACTIVE',
      creationTime,
      version: versionString(),
      tags: { ...input.tags },
    };
    this.#streams.set(stream.name, stream);
    return stream;
  }

  findStream(ref: { name?: string | undefined; arn?: string | undefined }): StreamRecord {
    let stream = ref.name !== undefined ? this.#streams.get(ref.name) : undefined;
    if (ref.name === undefined && ref.arn !== undefined) {
      stream = [...this.#streams.values()].find((s) => s.arn === ref.arn);
    }
    if (!stream || (ref.arn !== undefined && stream.arn !== ref.arn)) {
      throw resourceNotFound(`The requested stream ${ref.name ?? ref.arn ?? ''} is not found or not active.`);
    }
    return stream;
  }

  listStreams(): StreamRecord[] {
    return [...this.#streams.values()];
  }

  deleteStream(stream: StreamRecord): void {
    this.#streams.delete(stream.name);
  }

  /** Creation times double as ARN suffixes, so two resources made in the same millisecond still differ. */
  #uniqueNow(): Date {
    this.#lastMillis = Math.max(Date.now(), this.#lastMillis + 1);
    return new Date(this.#lastMillis);
  }
}

function versionString(): string {
  return Math.random().toString(36).slice(2, 14).padEnd(12, '0');
}
