import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from '@playwright/test';
import {
  GetImagesCommand,
  InvalidArgumentException,
  KinesisVideoArchivedMediaClient,
  type GetImagesInput,
  type Image,
} from '@aws-sdk/client-kinesis-video-archived-media';
import { GetDataEndpointCommand, KinesisVideoClient } from '@aws-sdk/client-kinesis-video';
import {
  DEFAULT_EMULATOR_CREDENTIALS,
  DEFAULT_STREAM_NAME,
  startEmulator,
  type Emulator,
} from '../../../emulator/server.js';
import { putFixtureIntoStream, type FixtureUpload } from '../../support/fixtureUpload.js';
import { RAMP_RESOLUTIONS } from '../../support/media.js';

const run = promisify(execFile);
const credentials = { ...DEFAULT_EMULATOR_CREDENTIALS };
let emulator: Emulator;
let client: KinesisVideoArchivedMediaClient;
let put: FixtureUpload;
let work: string;

test.beforeAll(async () => {
  emulator = await startEmulator();
  work = await mkdtemp(join(tmpdir(), 'kvs-images-'));
  put = await putFixtureIntoStream({
    endpoint: emulator.url,
    region: emulator.region,
    credentials,
    streamName: DEFAULT_STREAM_NAME,
    startMs: 1_700_000_000_000,
  });
  const control = new KinesisVideoClient({ endpoint: emulator.url, region: emulator.region, credentials });
  const { DataEndpoint } = await control.send(
    new GetDataEndpointCommand({ StreamName: DEFAULT_STREAM_NAME, APIName: 'GET_IMAGES' }),
  );
  control.destroy();
  client = new KinesisVideoArchivedMediaClient({
    endpoint: DataEndpoint,
    region: emulator.region,
    credentials,
  });
});
test.afterAll(async () => {
  client.destroy();
  await emulator.stop();
  await rm(work, { recursive: true, force: true });
});

type Request = Omit<GetImagesInput, 'StreamName' | 'ImageSelectorType'>;

async function allImages(input: Request): Promise<{ images: Image[]; pages: number }> {
  const images: Image[] = [];
  let token: string | undefined;
  let pages = 0;
  do {
    const out = await client.send(
      new GetImagesCommand({
        StreamName: DEFAULT_STREAM_NAME,
        ImageSelectorType: 'PRODUCER_TIMESTAMP',
        ...input,
        ...(token ? { NextToken: token } : {}),
      }),
    );
    images.push(...(out.Images ?? []));
    token = out.NextToken;
    pages++;
  } while (token);
  return { images, pages };
}

async function probeImage(
  name: string,
  base64: string,
): Promise<{ codec: string; width: number; height: number }> {
  const path = join(work, name);
  await writeFile(path, Buffer.from(base64, 'base64'));
  const { stdout, stderr } = await run('ffprobe', [
    '-v',
    'error',
    '-show_entries',
    'stream=codec_name,width,height',
    '-of',
    'json',
    path,
  ]);
  expect(stderr).toBe('');
  // Decoding it too: a truncated image probes but does not decode.
  const decoded = await run('ffmpeg', ['-v', 'error', '-i', path, '-f', 'null', '-']);
  expect(decoded.stderr).toBe('');
  const stream = (
    JSON.parse(stdout) as { streams: Array<{ codec_name: string; width: number; height: number }> }
  ).streams[0]!;
  return { codec: stream.codec_name, width: stream.width, height: stream.height };
}

test('JPEG thumbnails at the sampling interval, each a decodable picture of the stream at its size', async () => {
  const spanMs = put.lastMs - put.firstMs;
  const interval = 2_000;
  const { images, pages } = await allImages({
    StartTimestamp: new Date(put.firstMs),
    EndTimestamp: new Date(put.lastMs),
    SamplingInterval: interval,
    Format: 'JPEG',
    MaxResults: 4,
  });
  const expected = Math.floor(spanMs / interval) + 1;
  expect(images).toHaveLength(expected);
  expect(pages).toBe(Math.ceil(expected / 4));
  expect(images.map((i) => i.TimeStamp?.getTime())).toEqual(
    Array.from({ length: expected }, (_, k) => put.firstMs + k * interval),
  );
  const sizes: string[] = [];
  for (const [k, image] of images.entries()) {
    expect(image.Error, `image ${k}`).toBeUndefined();
    const p = await probeImage(`i${k}.jpg`, image.ImageContent!);
    expect(p.codec).toBe('mjpeg');
    sizes.push(`${p.width}x${p.height}`);
  }
  // The stream's own sizes, from the bottom of the ramp to the top, in order.
  expect(sizes[0]).toBe(RAMP_RESOLUTIONS[0]);
  expect(sizes.at(-1)).toBe(RAMP_RESOLUTIONS.at(-1));
  expect(new Set(sizes).size).toBeGreaterThan(1);
  for (const s of sizes) expect(RAMP_RESOLUTIONS as readonly string[]).toContain(s);
});

test('PNG at a requested size; height alone keeps the aspect ratio; NO_MEDIA outside the stream', async () => {
  const stretched = await allImages({
    StartTimestamp: new Date(put.firstMs),
    EndTimestamp: new Date(put.firstMs + 1_000),
    SamplingInterval: 500,
    Format: 'PNG',
    WidthPixels: 200,
    HeightPixels: 200,
  });
  expect(stretched.images).toHaveLength(3);
  for (const [k, image] of stretched.images.entries()) {
    expect(await probeImage(`p${k}.png`, image.ImageContent!)).toEqual({
      codec: 'png',
      width: 200,
      height: 200,
    });
  }
  // A range shorter than the interval: the image at StartTimestamp only.
  const byHeight = await allImages({
    StartTimestamp: new Date(put.lastMs),
    EndTimestamp: new Date(put.lastMs + 100),
    SamplingInterval: 1_000,
    Format: 'JPEG',
    HeightPixels: 90,
    FormatConfig: { JPEGQuality: '20' },
  });
  expect(byHeight.images).toHaveLength(1);
  expect(await probeImage('h.jpg', byHeight.images[0]!.ImageContent!)).toEqual({
    codec: 'mjpeg',
    width: 160,
    height: 90,
  });

  const outside = await allImages({
    StartTimestamp: new Date(put.firstMs - 5_000),
    EndTimestamp: new Date(put.firstMs - 1_000),
    SamplingInterval: 1_000,
    Format: 'JPEG',
  });
  expect(outside.images).toHaveLength(5);
  expect(outside.images.every((i) => i.Error === 'NO_MEDIA' && i.ImageContent === undefined)).toBe(true);
});

test('bad requests are refused with InvalidArgumentException', async () => {
  const refused = (input: Request): Promise<unknown> =>
    allImages(input).then(
      () => undefined,
      (err: unknown) => err,
    );
  const start = new Date(put.firstMs);
  expect(
    await refused({ StartTimestamp: start, EndTimestamp: new Date(put.firstMs + 301_000), Format: 'JPEG' }),
  ).toBeInstanceOf(InvalidArgumentException);
  expect(
    await refused({ StartTimestamp: start, EndTimestamp: start, Format: 'JPEG', SamplingInterval: 100 }),
  ).toBeInstanceOf(InvalidArgumentException);
  expect(
    await refused({ StartTimestamp: start, EndTimestamp: start, Format: 'JPEG', WidthPixels: 100 }),
  ).toBeInstanceOf(InvalidArgumentException);
  expect(
    await refused({
      StartTimestamp: start,
      EndTimestamp: start,
      Format: 'JPEG',
      FormatConfig: { JPEGQuality: '0' },
    }),
  ).toBeInstanceOf(InvalidArgumentException);
  expect(
    await refused({ StartTimestamp: start, EndTimestamp: start, Format: 'JPEG', NextToken: 'bm9wZQ' }),
  ).toBeInstanceOf(InvalidArgumentException);
});
