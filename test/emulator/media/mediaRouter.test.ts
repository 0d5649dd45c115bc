import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import {
  GetClipCommand,
  GetMediaForFragmentListCommand,
  KinesisVideoArchivedMediaClient,
  ListFragmentsCommand,
  ResourceNotFoundException,
} from '@aws-sdk/client-kinesis-video-archived-media';
import { GetMediaCommand, KinesisVideoMediaClient } from '@aws-sdk/client-kinesis-video-media';
import {
  CREDENTIALS,
  REGION,
  addStream,
  decode,
  encodeWithGStreamer,
  ffprobe,
  kvsStream,
  putMedia,
  splitMatroska,
  startMediaServer,
  stripParameterSets,
  type MediaServer,
} from './mediaHarness.js';

const BASE_MS = 1_700_000_000_000;
let server: MediaServer;
let work: string;

test.beforeEach(async () => {
  server = await startMediaServer({ getMediaIdleMs: 500 });
  work = await mkdtemp(join(tmpdir(), 'kvs-media-read-'));
});
test.afterEach(async () => {
  await server.close();
  await rm(work, { recursive: true, force: true });
});

const clients = (): { archived: KinesisVideoArchivedMediaClient; media: KinesisVideoMediaClient } => ({
  archived: new KinesisVideoArchivedMediaClient({
    endpoint: server.url,
    region: REGION,
    credentials: CREDENTIALS,
  }),
  media: new KinesisVideoMediaClient({ endpoint: server.url, region: REGION, credentials: CREDENTIALS }),
});

/** Splits GetMedia output at each chunk's EBML header. */
function splitChunks(bytes: Buffer): Buffer[] {
  const magic = Buffer.from([0x1a, 0x45, 0xdf, 0xa3]);
  const starts: number[] = [];
  for (let i = bytes.indexOf(magic); i >= 0; i = bytes.indexOf(magic, i + 4)) starts.push(i);
  return starts.map((s, k) => bytes.subarray(s, starts[k + 1] ?? bytes.length));
}

test('ListFragments, GetMedia and GetClip through the AWS SDK v3 clients', async () => {
  addStream(server, 'cam');
  const av = splitMatroska(await encodeWithGStreamer({ seconds: 4, audio: true }));
  const put = await putMedia(server.url, 'cam', kvsStream(av, { baseMs: BASE_MS }));
  const persisted = put.acks.filter((a) => a.EventType === 'PERSISTED');
  expect(persisted).toHaveLength(av.clusters.length);
  const { archived, media } = clients();

  const all = await archived.send(new ListFragmentsCommand({ StreamName: 'cam' }));
  expect(all.Fragments?.map((f) => f.FragmentNumber)).toEqual(persisted.map((a) => a.FragmentNumber));
  const first = all.Fragments?.[0];
  expect(first?.ProducerTimestamp?.getTime()).toBe(BASE_MS);
  expect(first?.FragmentSizeInBytes).toBeGreaterThan(1000);
  expect(first?.FragmentLengthInMilliseconds).toBeGreaterThan(900);
  expect(first?.ServerTimestamp?.getTime()).toBeGreaterThan(Date.now() - 60_000);

  // A range selecting the 2nd and 3rd fragments (start timestamps inclusive).
  const ranged = await archived.send(
    new ListFragmentsCommand({
      StreamName: 'cam',
      FragmentSelector: {
        FragmentSelectorType: 'PRODUCER_TIMESTAMP',
        TimestampRange: { StartTimestamp: new Date(BASE_MS + 500), EndTimestamp: new Date(BASE_MS + 2000) },
      },
    }),
  );
  expect(ranged.Fragments?.map((f) => f.ProducerTimestamp?.getTime())).toEqual([
    BASE_MS + 1000,
    BASE_MS + 2000,
  ]);

  const paged = await archived.send(new ListFragmentsCommand({ StreamName: 'cam', MaxResults: 2 }));
  expect(paged.Fragments).toHaveLength(2);
  expect(paged.NextToken).toBeTruthy();

  // GetMedia from EARLIEST: one Matroska chunk per fragment, each decodable on its own.
  const got = await media.send(
    new GetMediaCommand({ StreamName: 'cam', StartSelector: { StartSelectorType: 'EARLIEST' } }),
  );
  expect(got.ContentType).toBe('video/webm');
  const stream = Buffer.from((await got.Payload?.transformToByteArray()) ?? []);
  const chunks = splitChunks(stream);
  expect(chunks).toHaveLength(av.clusters.length);
  expect(chunks[1]?.includes(Buffer.from(persisted[1]?.FragmentNumber ?? 'x'))).toBe(true);
  for (const [i, chunk] of chunks.entries()) {
    const path = join(work, `chunk${i}.mkv`);
    await writeFile(path, chunk);
    const probe = await ffprobe(path);
    expect(probe.streams.map((s) => s['codec_name'])).toEqual(['h264', 'aac']);
    const { errors, videoFrames } = await decode(path);
    expect(errors).toBe('');
    expect(videoFrames).toBe(30);
  }

  // Continuation token: resume after the second fragment.
  const resumed = await media.send(
    new GetMediaCommand({
      StreamName: 'cam',
      StartSelector: {
        StartSelectorType: 'CONTINUATION_TOKEN',
        ContinuationToken: persisted[1]?.FragmentNumber,
      },
    }),
  );
  expect(splitChunks(Buffer.from((await resumed.Payload?.transformToByteArray()) ?? []))).toHaveLength(
    av.clusters.length - 2,
  );

  const listed = await archived.send(
    new GetMediaForFragmentListCommand({
      StreamName: 'cam',
      Fragments: [persisted[2]?.FragmentNumber ?? ''],
    }),
  );
  expect(splitChunks(Buffer.from((await listed.Payload?.transformToByteArray()) ?? []))).toHaveLength(1);

  // GetClip of seconds 1..3 → fragmented MP4 starting on the key frame of fragment 2.
  const clip = await archived.send(
    new GetClipCommand({
      StreamName: 'cam',
      ClipFragmentSelector: {
        FragmentSelectorType: 'PRODUCER_TIMESTAMP',
        TimestampRange: { StartTimestamp: new Date(BASE_MS + 1000), EndTimestamp: new Date(BASE_MS + 2999) },
      },
    }),
  );
  expect(clip.ContentType).toBe('video/mp4');
  const clipPath = join(work, 'clip.mp4');
  await writeFile(clipPath, Buffer.from((await clip.Payload?.transformToByteArray()) ?? []));
  const probe = await ffprobe(clipPath);
  expect(probe.format['format_name']).toContain('mp4');
  expect(probe.streams.map((s) => s['codec_name'])).toEqual(['h264', 'aac']);
  expect(Number(probe.format['duration'])).toBeGreaterThan(1.9);
  expect(Number(probe.format['duration'])).toBeLessThan(2.2);
  const decoded = await decode(clipPath);
  expect(decoded.errors).toBe('');
  expect(decoded.videoFrames).toBe(60);
});

test('GetClip across a resolution change: the new parameter sets go in-band and every frame decodes', async () => {
  addStream(server, 'ramp');
  const small = stripParameterSets(
    splitMatroska(await encodeWithGStreamer({ seconds: 2, audio: false, width: 320, height: 180 })),
  );
  const large = stripParameterSets(
    splitMatroska(
      await encodeWithGStreamer({ seconds: 2, audio: false, width: 640, height: 360, pattern: 'ball' }),
    ),
  );
  // Two PutMedia sessions, as a producer restarting with new codec private data would send.
  await putMedia(server.url, 'ramp', kvsStream(small, { baseMs: BASE_MS }));
  await putMedia(server.url, 'ramp', kvsStream(large, { baseMs: BASE_MS + 2000 }));
  const { archived } = clients();
  const clip = await archived.send(
    new GetClipCommand({
      StreamName: 'ramp',
      ClipFragmentSelector: {
        FragmentSelectorType: 'PRODUCER_TIMESTAMP',
        TimestampRange: { StartTimestamp: new Date(BASE_MS), EndTimestamp: new Date(BASE_MS + 4000) },
      },
    }),
  );
  const clipPath = join(work, 'ramp.mp4');
  await writeFile(clipPath, Buffer.from((await clip.Payload?.transformToByteArray()) ?? []));
  const decoded = await decode(clipPath);
  expect(decoded.errors).toBe('');
  expect(decoded.videoFrames).toBe(120);
});

test('read APIs answer unknown streams and empty ranges with AWS errors', async () => {
  addStream(server, 'empty');
  const { archived, media } = clients();
  await expect(archived.send(new ListFragmentsCommand({ StreamName: 'missing' }))).rejects.toBeInstanceOf(
    ResourceNotFoundException,
  );
  expect((await archived.send(new ListFragmentsCommand({ StreamName: 'empty' }))).Fragments).toEqual([]);
  await expect(
    archived.send(
      new GetClipCommand({
        StreamName: 'empty',
        ClipFragmentSelector: {
          FragmentSelectorType: 'SERVER_TIMESTAMP',
          TimestampRange: { StartTimestamp: new Date(BASE_MS), EndTimestamp: new Date(BASE_MS + 1000) },
        },
      }),
    ),
  ).rejects.toBeInstanceOf(ResourceNotFoundException);
  await expect(
    media.send(
      new GetMediaCommand({
        StreamName: 'empty',
        StartSelector: { StartSelectorType: 'FRAGMENT_NUMBER', AfterFragmentNumber: '123' },
      }),
    ),
  ).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  expect(server.counts.get('listFragments.rejected.ResourceNotFoundException')).toBe(1);
});
