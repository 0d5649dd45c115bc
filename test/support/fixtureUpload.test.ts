import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import {
  GetClipCommand,
  KinesisVideoArchivedMediaClient,
  ListFragmentsCommand,
  type Fragment,
} from '@aws-sdk/client-kinesis-video-archived-media';
import {
  DEFAULT_EMULATOR_CREDENTIALS,
  DEFAULT_STREAM_NAME,
  startEmulator,
  type Emulator,
} from '../../emulator/server.js';
import { probeFrames } from '../../scripts/lib/mediaProbe.js';
import { decodeAll } from '../emulator/media/mediaHarness.js';
import { putFixtureIntoStream } from './fixtureUpload.js';
import { FIXTURE_RAMP, RAMP_RESOLUTIONS } from './media.js';

let emulator: Emulator;
let work: string;

test.beforeEach(async () => {
  emulator = await startEmulator();
  work = await mkdtemp(join(tmpdir(), 'fixture-upload-'));
});
test.afterEach(async () => {
  await emulator.stop();
  await rm(work, { recursive: true, force: true });
});

test('the ramp fixture goes in as one fragment per key frame and one PutMedia session per resolution', async () => {
  const credentials = { ...DEFAULT_EMULATOR_CREDENTIALS };
  const startMs = 1_700_000_000_000;
  const upload = await putFixtureIntoStream({
    endpoint: emulator.url,
    region: emulator.region,
    credentials,
    streamName: DEFAULT_STREAM_NAME,
    startMs,
  });
  expect(upload.resolutions).toEqual([...RAMP_RESOLUTIONS]);
  expect(upload.sessions).toBeGreaterThanOrEqual(RAMP_RESOLUTIONS.length);
  expect(upload.firstMs).toBe(startMs);

  // As many fragments as the fixture has key frames, every one listed, starting on its key frame.
  const fixtureFrames = await probeFrames(FIXTURE_RAMP, 'v');
  const keyFrames = fixtureFrames.filter((f) => f.keyFrame).length;
  expect(upload.fragments).toBe(keyFrames);
  const archived = new KinesisVideoArchivedMediaClient({
    endpoint: emulator.url,
    region: emulator.region,
    credentials,
  });
  const listed: Fragment[] = [];
  let token: string | undefined;
  do {
    const page = await archived.send(
      new ListFragmentsCommand({ StreamName: DEFAULT_STREAM_NAME, MaxResults: 10, NextToken: token }),
    );
    listed.push(...(page.Fragments ?? []));
    token = page.NextToken;
  } while (token);
  expect(listed).toHaveLength(upload.fragments);
  const producerMs = listed.map((f) => f.ProducerTimestamp?.getTime() ?? 0).sort((a, b) => a - b);
  expect(producerMs[0]).toBe(upload.firstMs);
  expect(producerMs.at(-1)).toBe(upload.lastMs);

  // One clip over the whole upload: every ramp step decodes, with no decoder error.
  const clip = await archived.send(
    new GetClipCommand({
      StreamName: DEFAULT_STREAM_NAME,
      ClipFragmentSelector: {
        FragmentSelectorType: 'PRODUCER_TIMESTAMP',
        TimestampRange: {
          StartTimestamp: new Date(upload.firstMs),
          EndTimestamp: new Date(upload.lastMs + 10_000),
        },
      },
    }),
  );
  const path = join(work, 'clip.mp4');
  await writeFile(path, Buffer.from((await clip.Payload?.transformToByteArray()) ?? new Uint8Array()));
  const frames = await probeFrames(path, 'v');
  const sizes = [...new Set(frames.map((f) => `${f.width ?? 0}x${f.height ?? 0}`))];
  expect(sizes).toEqual([...RAMP_RESOLUTIONS]);
  const decoded = await decodeAll(path);
  expect(decoded.errors).toBe('');
  expect(frames).toHaveLength(fixtureFrames.length);
  expect(decoded.frames.video).toBe(frames.length);
  // AAC at 1024 samples / 48 kHz over the clip's span (the fixture's audio starts a little after the video).
  const spanS = (frames.at(-1)?.ptsTime ?? 0) - (frames[0]?.ptsTime ?? 0);
  expect(decoded.frames.audio).toBeGreaterThan(((spanS - 1) * 48_000) / 1024);
  archived.destroy();
});
