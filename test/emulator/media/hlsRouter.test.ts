import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from '@playwright/test';
import {
  GetHLSStreamingSessionURLCommand,
  InvalidArgumentException,
  KinesisVideoArchivedMediaClient,
  ListFragmentsCommand,
  ResourceNotFoundException,
  type GetHLSStreamingSessionURLInput,
} from '@aws-sdk/client-kinesis-video-archived-media';
import { GetDataEndpointCommand, KinesisVideoClient } from '@aws-sdk/client-kinesis-video';
import HLS from 'hls-parser';
import {
  DEFAULT_EMULATOR_CREDENTIALS,
  DEFAULT_STREAM_NAME,
  startEmulator,
  type Emulator,
} from '../../../emulator/server.js';
import { putFixtureIntoStream, type FixtureUpload } from '../../support/fixtureUpload.js';
import { decodeAll } from './mediaHarness.js';

const run = promisify(execFile);
HLS.setOptions({ strictMode: true });

const credentials = { ...DEFAULT_EMULATOR_CREDENTIALS };
const ORIGIN = 'http://localhost:5173';
let emulator: Emulator;
let work: string;
let clockOffsetMs = 0;

test.beforeEach(async () => {
  clockOffsetMs = 0;
  emulator = await startEmulator({ media: { hls: { now: () => Date.now() + clockOffsetMs } } });
  work = await mkdtemp(join(tmpdir(), 'kvs-hls-'));
});
test.afterEach(async () => {
  await emulator.stop();
  await rm(work, { recursive: true, force: true });
});

/**
 * Every test puts the fixture into the same stream: without a start of its own, each upload gets a
 * ten-minute slot of producer time in the past few hours, so that no two uploads overlap (an overlap would
 * put another test's fragments into this test's ON_DEMAND range).
 */
let nextSlotMs = Date.now() - 6 * 3600_000;
async function upload(startMs?: number): Promise<FixtureUpload> {
  return putFixtureIntoStream({
    endpoint: emulator.url,
    region: emulator.region,
    credentials,
    streamName: DEFAULT_STREAM_NAME,
    startMs: startMs ?? (nextSlotMs += 600_000),
  });
}

/** The archived-media client on the endpoint GetDataEndpoint names for HLS, as a real application does. */
async function hlsClient(): Promise<KinesisVideoArchivedMediaClient> {
  const control = new KinesisVideoClient({ endpoint: emulator.url, region: emulator.region, credentials });
  const { DataEndpoint } = await control.send(
    new GetDataEndpointCommand({ StreamName: DEFAULT_STREAM_NAME, APIName: 'GET_HLS_STREAMING_SESSION_URL' }),
  );
  control.destroy();
  return new KinesisVideoArchivedMediaClient({
    endpoint: DataEndpoint,
    region: emulator.region,
    credentials,
  });
}

async function sessionUrl(input: Omit<GetHLSStreamingSessionURLInput, 'StreamName'>): Promise<string> {
  const client = await hlsClient();
  try {
    const out = await client.send(
      new GetHLSStreamingSessionURLCommand({ StreamName: DEFAULT_STREAM_NAME, ...input }),
    );
    if (!out.HLSStreamingSessionURL) throw new Error('no session URL');
    return out.HLSStreamingSessionURL;
  } finally {
    client.destroy();
  }
}

async function get(url: string): Promise<Response> {
  return fetch(url, { headers: { origin: ORIGIN } });
}

async function playlist<T extends HLS.types.MasterPlaylist | HLS.types.MediaPlaylist>(
  url: string,
): Promise<T> {
  const res = await get(url);
  expect(res.status, await res.clone().text()).toBe(200);
  expect(res.headers.get('content-type')).toContain('application/vnd.apple.mpegurl');
  expect(res.headers.get('access-control-allow-origin')).toBe(ORIGIN);
  return HLS.parse(await res.text()) as T;
}

async function bytes(url: string): Promise<Buffer> {
  const res = await get(url);
  expect(res.status, await res.clone().text()).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

interface ProbedSegment {
  errors: string;
  video: number;
  audio: number;
  width: number | undefined;
  height: number | undefined;
  /** First packet's presentation time, seconds. */
  startS: number;
}

async function probeSegment(name: string, data: Buffer): Promise<ProbedSegment> {
  const path = join(work, name);
  await writeFile(path, data);
  const decoded = await decodeAll(path);
  const { stdout } = await run('ffprobe', [
    '-v',
    'error',
    '-show_entries',
    'stream=codec_type,width,height,start_time',
    '-of',
    'json',
    path,
  ]);
  const streams = (
    JSON.parse(stdout) as {
      streams: Array<{ codec_type: string; width?: number; height?: number; start_time?: string }>;
    }
  ).streams;
  const video = streams.find((s) => s.codec_type === 'video');
  return {
    errors: decoded.errors,
    video: decoded.frames.video,
    audio: decoded.frames.audio,
    width: video?.width,
    height: video?.height,
    startS: Math.min(...streams.map((s) => Number(s.start_time ?? Infinity))),
  };
}

const resolved = (uri: string, base: string): string => new URL(uri, base).toString();

test('ON_DEMAND fMP4: playlists parse strictly, every fragment decodes, a new init segment and a discontinuity at each codec private data change', async () => {
  const put = await upload();
  const url = await sessionUrl({
    PlaybackMode: 'ON_DEMAND',
    HLSFragmentSelector: {
      FragmentSelectorType: 'PRODUCER_TIMESTAMP',
      TimestampRange: { StartTimestamp: new Date(put.firstMs), EndTimestamp: new Date(put.lastMs) },
    },
    DisplayFragmentTimestamp: 'ALWAYS',
  });
  expect(new URL(url).pathname).toBe('/hls/v1/getHLSMasterPlaylist.m3u8');
  expect(new URL(url).searchParams.get('SessionToken')).toMatch(/^[A-Za-z0-9_-]{40,}$/);

  const master = await playlist<HLS.types.MasterPlaylist>(url);
  expect(master.variants).toHaveLength(1);
  const variant = master.variants[0]!;
  expect(variant.codecs).toMatch(/^avc1\.42[0-9a-f]{4},mp4a\.40\.2$/); // Constrained Baseline (OpenH264)
  expect(variant.resolution).toEqual({ width: 1280, height: 720 });
  expect(variant.bandwidth).toBeGreaterThan(10_000);
  expect(variant.audio).toHaveLength(1);

  const videoUrl = resolved(variant.uri, url);
  const audioUrl = resolved(variant.audio[0]!.uri!, url);
  const video = await playlist<HLS.types.MediaPlaylist>(videoUrl);
  const audio = await playlist<HLS.types.MediaPlaylist>(audioUrl);
  for (const media of [video, audio]) {
    expect(media.endlist).toBe(true);
    expect(media.playlistType).toBe('VOD');
    expect(media.segments).toHaveLength(put.fragments);
    for (const s of media.segments) expect(Math.round(s.duration)).toBeLessThanOrEqual(media.targetDuration);
  }

  const probed: ProbedSegment[] = [];
  let previousMap: string | undefined;
  const maps = new Set<string>();
  for (const [i, segment] of video.segments.entries()) {
    const mapUri = resolved(segment.map.uri, videoUrl);
    maps.add(mapUri);
    const init = await bytes(mapUri);
    const media = await bytes(resolved(segment.uri, videoUrl));
    const p = await probeSegment(`v${i}.mp4`, Buffer.concat([init, media]));
    expect(p.errors, `video segment ${i}`).toBe('');
    expect(p.video).toBeGreaterThan(0);
    const prev = probed.at(-1);
    const sizeChanged = prev !== undefined && (prev.width !== p.width || prev.height !== p.height);
    // PRODUCER_TIMESTAMP defaults to NEVER: the only discontinuities are the codec private data changes.
    expect(segment.discontinuity ?? false, `discontinuity before segment ${i}`).toBe(sizeChanged);
    expect(mapUri !== previousMap, `EXT-X-MAP before segment ${i}`).toBe(i === 0 || sizeChanged);
    previousMap = mapUri;
    probed.push(p);
  }
  expect(maps.size).toBe(put.sessions);
  const sizes = [...new Set(probed.map((p) => `${p.width}x${p.height}`))];
  expect(sizes).toEqual(put.resolutions);
  // The decode timeline continues across fragments (tfdt from the fragments' timestamps): no jumps.
  const firstPdt = video.segments[0]!.programDateTime!.getTime();
  expect(firstPdt).toBe(put.firstMs);
  for (const [i, segment] of video.segments.entries()) {
    const pdtS = (segment.programDateTime!.getTime() - firstPdt) / 1000;
    expect(Math.abs(probed[i]!.startS - probed[0]!.startS - pdtS), `start of segment ${i}`).toBeLessThan(
      0.002,
    );
    if (i > 0) {
      const expectedStart = probed[i - 1]!.startS + video.segments[i - 1]!.duration;
      expect(Math.abs(probed[i]!.startS - expectedStart), `segment ${i} follows ${i - 1}`).toBeLessThan(0.25);
    }
  }
  const fixtureVideoFrames = probed.reduce((sum, p) => sum + p.video, 0);
  const whole = await decodeAll(join(import.meta.dirname, '../../fixtures/chromium-call-ramp.mkv'));
  expect(fixtureVideoFrames).toBe(whole.frames.video);

  let audioFrames = 0;
  for (const [i, segment] of audio.segments.entries()) {
    expect(segment.discontinuity ?? false).toBe(video.segments[i]!.discontinuity ?? false);
    const init = await bytes(resolved(segment.map.uri, audioUrl));
    const p = await probeSegment(
      `a${i}.mp4`,
      Buffer.concat([init, await bytes(resolved(segment.uri, audioUrl))]),
    );
    expect(p.errors, `audio segment ${i}`).toBe('');
    expect(p.video).toBe(0);
    expect(Math.abs(p.startS - probed[i]!.startS), `audio ${i} starts with video`).toBeLessThan(0.05);
    audioFrames += p.audio;
  }
  const durationS = video.segments.reduce((sum, s) => sum + s.duration, 0);
  expect(audioFrames).toBeGreaterThan(((durationS - 1) * 48_000) / 1024);
});

test('ON_DEMAND MPEG-TS: one muxed playlist, every fragment decodes with video and audio, PTS continue across fragments', async () => {
  const put = await upload();
  const url = await sessionUrl({
    PlaybackMode: 'ON_DEMAND',
    ContainerFormat: 'MPEG_TS',
    HLSFragmentSelector: {
      FragmentSelectorType: 'PRODUCER_TIMESTAMP',
      TimestampRange: { StartTimestamp: new Date(put.firstMs), EndTimestamp: new Date(put.lastMs) },
    },
  });
  const master = await playlist<HLS.types.MasterPlaylist>(url);
  expect(master.variants).toHaveLength(1);
  expect(master.variants[0]!.audio).toHaveLength(0);
  expect(master.variants[0]!.codecs).toMatch(/^avc1\.[0-9a-f]{6},mp4a\.40\.2$/);
  const mediaUrl = resolved(master.variants[0]!.uri, url);
  const media = await playlist<HLS.types.MediaPlaylist>(mediaUrl);
  expect(media.segments).toHaveLength(put.fragments);
  expect(media.endlist).toBe(true);
  let previous: { p: ProbedSegment; duration: number } | undefined;
  let sizeChanges = 0;
  for (const [i, segment] of media.segments.entries()) {
    expect(segment.uri).toMatch(/^getTSFragment\.ts\?FragmentNumber=[0-9]+&SessionToken=/);
    expect(segment.map).toBeFalsy();
    const p = await probeSegment(`s${i}.ts`, await bytes(resolved(segment.uri, mediaUrl)));
    expect(p.errors, `TS segment ${i}`).toBe('');
    expect(p.video).toBeGreaterThan(0);
    expect(p.audio).toBeGreaterThan(0);
    const sizeChanged =
      previous !== undefined && `${previous.p.width}x${previous.p.height}` !== `${p.width}x${p.height}`;
    if (sizeChanged) sizeChanges++;
    expect(segment.discontinuity ?? false, `discontinuity before segment ${i}`).toBe(sizeChanged);
    if (previous) {
      expect(Math.abs(p.startS - (previous.p.startS + previous.duration)), `segment ${i}`).toBeLessThan(0.25);
    }
    previous = { p, duration: segment.duration };
  }
  expect(sizeChanges).toBe(put.sessions - 1);
});

test('DiscontinuityMode ALWAYS marks every fragment, ON_DISCONTINUITY only codec changes and gaps above 50 ms', async () => {
  const put = await upload();
  const range = { StartTimestamp: new Date(put.firstMs), EndTimestamp: new Date(put.lastMs) };
  const mediaOf = async (mode: 'ALWAYS' | 'ON_DISCONTINUITY'): Promise<HLS.types.MediaPlaylist> => {
    const url = await sessionUrl({
      PlaybackMode: 'ON_DEMAND',
      DiscontinuityMode: mode,
      HLSFragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: range },
    });
    const master = await playlist<HLS.types.MasterPlaylist>(url);
    return playlist<HLS.types.MediaPlaylist>(resolved(master.variants[0]!.uri, url));
  };
  const always = await mediaOf('ALWAYS');
  expect(always.segments.every((s) => s.discontinuity === true)).toBe(true);
  // The discontinuity sequence of each segment counts the tags before it.
  expect(always.segments.map((s) => s.discontinuitySequence)).toEqual(always.segments.map((_, i) => i + 1));

  const client = await hlsClient();
  const listed = (
    await client.send(new ListFragmentsCommand({ StreamName: DEFAULT_STREAM_NAME, MaxResults: 1000 }))
  )
    .Fragments!.map((f) => ({
      start: f.ProducerTimestamp!.getTime(),
      length: f.FragmentLengthInMilliseconds!,
    }))
    .sort((a, b) => a.start - b.start);
  client.destroy();
  const onDiscontinuity = await mediaOf('ON_DISCONTINUITY');
  const codecChanges = new Set<number>();
  let map: string | undefined;
  for (const [i, s] of onDiscontinuity.segments.entries()) {
    if (map !== undefined && s.map.uri !== map) codecChanges.add(i);
    map = s.map.uri;
  }
  expect(codecChanges.size).toBe(put.sessions - 1);
  for (const [i, s] of onDiscontinuity.segments.entries()) {
    const prev = listed[i - 1];
    const gap = prev ? Math.abs(listed[i]!.start - (prev.start + prev.length)) : 0;
    expect(s.discontinuity ?? false, `segment ${i} (gap ${gap} ms)`).toBe(codecChanges.has(i) || gap > 50);
  }
});

test('LIVE: the newest fragments, no ENDLIST, the window slides with stable sequence numbers', async () => {
  const first = await upload(Date.now() - 40_000);
  const url = await sessionUrl({ MaxMediaPlaylistFragmentResults: 3 });
  const master = await playlist<HLS.types.MasterPlaylist>(url);
  const mediaUrl = resolved(master.variants[0]!.uri, url);
  const before = await playlist<HLS.types.MediaPlaylist>(mediaUrl);
  expect(before.endlist).toBe(false);
  expect(before.playlistType).toBeUndefined();
  expect(before.segments).toHaveLength(3);
  expect(before.mediaSequenceBase ?? 0).toBe(0);
  // SERVER_TIMESTAMP is the default selector, and ALWAYS its default discontinuity mode.
  expect(before.segments.every((s) => s.discontinuity === true)).toBe(true);
  const lastBefore = before.segments.at(-1)!.uri;

  const second = await upload(first.lastMs + 5_000);
  const after = await playlist<HLS.types.MediaPlaylist>(mediaUrl);
  expect(after.endlist).toBe(false);
  expect(after.segments).toHaveLength(3);
  // Every fragment of the second upload was appended behind the first window.
  expect(after.mediaSequenceBase).toBe(3 + second.fragments - 3);
  expect(after.segments.map((s) => s.uri)).not.toContain(lastBefore);
  expect(after.discontinuitySequenceBase).toBe(after.mediaSequenceBase);
  for (const [i, s] of after.segments.entries()) {
    const init = await bytes(resolved(s.map.uri, mediaUrl));
    const p = await probeSegment(
      `live${i}.mp4`,
      Buffer.concat([init, await bytes(resolved(s.uri, mediaUrl))]),
    );
    expect(p.errors).toBe('');
    expect(p.video).toBeGreaterThan(0);
  }
});

test('LIVE_REPLAY: starts at StartTimestamp and adds fragments as the replay clock passes them', async () => {
  const put = await upload();
  const url = await sessionUrl({
    PlaybackMode: 'LIVE_REPLAY',
    HLSFragmentSelector: {
      FragmentSelectorType: 'PRODUCER_TIMESTAMP',
      TimestampRange: { StartTimestamp: new Date(put.firstMs) },
    },
    MaxMediaPlaylistFragmentResults: 100,
  });
  const master = await playlist<HLS.types.MasterPlaylist>(url);
  const mediaUrl = resolved(master.variants[0]!.uri, url);
  const start = await playlist<HLS.types.MediaPlaylist>(mediaUrl);
  expect(start.segments).toHaveLength(1);
  expect(start.endlist).toBe(false);
  clockOffsetMs = put.lastMs - put.firstMs + 1;
  const all = await playlist<HLS.types.MediaPlaylist>(mediaUrl);
  expect(all.segments).toHaveLength(put.fragments);
  expect(all.segments[0]!.uri).toBe(start.segments[0]!.uri);
});

test('session tokens expire; unknown or missing tokens and bad parameters get AWS-shaped errors', async () => {
  const put = await upload();
  const url = await sessionUrl({
    PlaybackMode: 'ON_DEMAND',
    HLSFragmentSelector: {
      FragmentSelectorType: 'SERVER_TIMESTAMP',
      TimestampRange: {
        StartTimestamp: new Date(Date.now() - 60_000),
        EndTimestamp: new Date(Date.now() + 1000),
      },
    },
    Expires: 300,
  });
  const master = await playlist<HLS.types.MasterPlaylist>(url);
  const mediaUrl = resolved(master.variants[0]!.uri, url);
  const media = await playlist<HLS.types.MediaPlaylist>(mediaUrl);
  expect(media.segments).toHaveLength(put.fragments);
  const fragmentUrl = resolved(media.segments[0]!.uri, mediaUrl);
  const initUrl = resolved(media.segments[0]!.map.uri, mediaUrl);
  expect((await get(fragmentUrl)).status).toBe(200);

  clockOffsetMs = 300_000;
  for (const u of [url, mediaUrl, fragmentUrl, initUrl]) {
    const res = await get(u);
    expect(res.status, u).toBe(403);
    expect(res.headers.get('x-amzn-errortype')).toBe('NotAuthorizedException');
    expect(res.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(((await res.json()) as { message: string }).message).toMatch(/expired/);
  }
  const unknown = await get(url.replace(/SessionToken=[^&]+/, 'SessionToken=AAAA'));
  expect(unknown.status).toBe(403);
  expect(unknown.headers.get('x-amzn-errortype')).toBe('NotAuthorizedException');
  const missing = await get(url.replace(/\?.*$/, ''));
  expect(missing.status).toBe(400);
  expect(missing.headers.get('x-amzn-errortype')).toBe('InvalidArgumentException');

  clockOffsetMs = 0;
  const fresh = await sessionUrl({
    PlaybackMode: 'ON_DEMAND',
    HLSFragmentSelector: {
      FragmentSelectorType: 'PRODUCER_TIMESTAMP',
      TimestampRange: { StartTimestamp: new Date(put.firstMs), EndTimestamp: new Date(put.lastMs) },
    },
  });
  const notInSession = await get(
    resolved(
      `getMP4MediaFragment.mp4?FragmentNumber=1&SessionToken=${new URL(fresh).searchParams.get('SessionToken')}`,
      fresh,
    ),
  );
  expect(notInSession.status).toBe(404);
  expect(notInSession.headers.get('x-amzn-errortype')).toBe('ResourceNotFoundException');

  const refused = async (input: Omit<GetHLSStreamingSessionURLInput, 'StreamName'>): Promise<unknown> =>
    sessionUrl(input).then(
      () => undefined,
      (err: unknown) => err,
    );
  expect(await refused({ Expires: 299 })).toBeInstanceOf(InvalidArgumentException);
  expect(await refused({ Expires: 43_201 })).toBeInstanceOf(InvalidArgumentException);
  expect(await refused({ PlaybackMode: 'ON_DEMAND' })).toBeInstanceOf(InvalidArgumentException);
  expect(
    await refused({
      HLSFragmentSelector: {
        FragmentSelectorType: 'SERVER_TIMESTAMP',
        TimestampRange: { StartTimestamp: new Date() },
      },
    }),
  ).toBeInstanceOf(InvalidArgumentException);
  expect(
    await refused({
      PlaybackMode: 'ON_DEMAND',
      HLSFragmentSelector: {
        FragmentSelectorType: 'PRODUCER_TIMESTAMP',
        TimestampRange: {
          StartTimestamp: new Date(put.lastMs + 60_000),
          EndTimestamp: new Date(put.lastMs + 120_000),
        },
      },
    }),
  ).toBeInstanceOf(ResourceNotFoundException);
  // LIVE needs a fragment ingested in the last 30 s.
  clockOffsetMs = 60_000;
  expect(await refused({})).toBeInstanceOf(ResourceNotFoundException);
});

test('CORS: a page on another origin may fetch the session endpoints (preflight too)', async () => {
  await upload();
  const url = await sessionUrl({});
  const preflight = await fetch(url, {
    method: 'OPTIONS',
    headers: {
      origin: ORIGIN,
      'access-control-request-method': 'GET',
      'access-control-request-headers': 'range',
    },
  });
  expect(preflight.status).toBe(204);
  expect(preflight.headers.get('access-control-allow-origin')).toBe(ORIGIN);
  expect(preflight.headers.get('access-control-allow-methods')).toContain('GET');
  const res = await get(url);
  expect(res.status).toBe(200);
  expect(res.headers.get('access-control-allow-origin')).toBe(ORIGIN);
});
