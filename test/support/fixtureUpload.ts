import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GetDataEndpointCommand, KinesisVideoClient } from '@aws-sdk/client-kinesis-video';
import { EncodedPacketSink, FilePathSource, Input, MATROSKA, WEBM } from 'mediabunny';
import { annexBNalUnits } from '../../agent/media/h264.js';
import {
  Id,
  UNKNOWN_SIZE,
  element,
  elementHeader,
  stringElement,
  uintElement,
} from '../../emulator/media/ebml.js';
import { probeFrames } from '../../scripts/lib/mediaProbe.js';
import { putMedia, simpleBlock } from '../emulator/media/mediaHarness.js';
import { FIXTURE_RAMP } from './media.js';

const run = promisify(execFile);

export interface FixtureUpload {
  streamName: string;
  /** KVS fragments put (one per video key frame), all acknowledged PERSISTED. */
  fragments: number;
  /** Distinct video sizes (`WxH`) in the order they first appear. */
  resolutions: string[];
  /** PutMedia sessions opened (one per run of key frames of one size). */
  sessions: number;
  /** Producer timestamp (epoch ms) of the first fragment and the start of the last one. */
  firstMs: number;
  lastMs: number;
}

export interface FixtureUploadOptions {
  /** The emulator's base URL (control plane): the PUT_MEDIA data endpoint is asked with GetDataEndpoint. */
  endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** An existing stream. */
  streamName: string;
  /** Pace frames at media speed (live playback tests); default false = as fast as accepted. */
  realtime?: boolean;
  /** Producer timestamp of the first frame (default Date.now()). */
  startMs?: number;
}

interface Frame {
  track: 1 | 2;
  /** Milliseconds from the fixture's first video key frame. */
  ms: number;
  key: boolean;
  data: Buffer;
}

interface Fragment {
  ms: number;
  frames: Frame[];
}

interface Session {
  resolution: string;
  width: number;
  height: number;
  avcC: Buffer;
  fragments: Fragment[];
}

interface PreparedFixture {
  sessions: Session[];
  audioSpecificConfig: Buffer;
  sampleRate: number;
  channels: number;
}

/**
 * Puts the recorded call `test/fixtures/chromium-call-ramp.mkv` into a stream the way the agent's kvssink path
 * does: H.264 as avc (4-byte lengths, avcC CodecPrivate; SPS/PPS stay in-band too, as h264parse
 * config-interval=-1 leaves them), Opus re-encoded as AAC-LC on track 2, one cluster (KVS fragment) per key
 * frame with absolute millisecond timecodes, and a new PutMedia session for every resolution change (each
 * with that resolution's avcC in Tracks, as kvssink restarts on new caps). Each session's fragments are
 * PERSISTED before the next session opens.
 */
export async function putFixtureIntoStream(options: FixtureUploadOptions): Promise<FixtureUpload> {
  const fixture = await prepareFixture();
  const client = new KinesisVideoClient({
    endpoint: options.endpoint,
    region: options.region,
    credentials: options.credentials,
  });
  const { DataEndpoint } = await client.send(
    new GetDataEndpointCommand({ StreamName: options.streamName, APIName: 'PUT_MEDIA' }),
  );
  client.destroy();
  if (!DataEndpoint) throw new Error('GetDataEndpoint returned no endpoint');
  const startMs = Math.round(options.startMs ?? Date.now());
  const wallStart = Date.now();
  let fragments = 0;
  for (const session of fixture.sessions) {
    const first = session.fragments[0];
    if (!first) continue;
    const body = sessionBody(fixture, session, startMs, options.realtime === true ? wallStart : undefined);
    const firstTimecode = startMs + first.ms;
    const result = await putMedia(DataEndpoint, options.streamName, body, {
      auth: { credentials: options.credentials, region: options.region },
      headers: {
        'x-amzn-producer-start-timestamp': `${Math.floor(firstTimecode / 1000)}.${firstTimecode % 1000}`,
      },
    });
    const persisted = result.acks.filter((a) => a.EventType === 'PERSISTED').length;
    const errors = result.acks.filter((a) => a.EventType === 'ERROR');
    if (result.status !== 200 || errors.length > 0 || persisted !== session.fragments.length) {
      throw new Error(
        `PutMedia of the ${session.resolution} session: HTTP ${result.status}, ${persisted}/${session.fragments.length} PERSISTED, errors ${JSON.stringify(errors)} ${result.status === 200 ? '' : result.body}`,
      );
    }
    fragments += persisted;
  }
  const all = fixture.sessions.flatMap((s) => s.fragments);
  return {
    streamName: options.streamName,
    fragments,
    resolutions: [...new Set(fixture.sessions.map((s) => s.resolution))],
    sessions: fixture.sessions.length,
    firstMs: startMs + (all[0]?.ms ?? 0),
    lastMs: startMs + (all.at(-1)?.ms ?? 0),
  };
}

/** EBML header + Segment + Info + Tracks (this session's avcC) + one unknown-size Cluster per fragment. */
async function* sessionBody(
  fixture: PreparedFixture,
  session: Session,
  startMs: number,
  pacedFrom: number | undefined,
): AsyncGenerator<Buffer> {
  yield Buffer.concat([
    element(
      Id.EBML,
      uintElement(0x4286, 1),
      uintElement(0x42f7, 1),
      uintElement(0x42f2, 4),
      uintElement(0x42f3, 8),
      stringElement(Id.DocType, 'matroska'),
      uintElement(0x4287, 4),
      uintElement(0x4285, 2),
    ),
    elementHeader(Id.Segment, UNKNOWN_SIZE),
    element(
      Id.Info,
      uintElement(Id.TimecodeScale, 1_000_000),
      stringElement(0x4d80, 'webrtc-kvs-agent fixtureUpload'),
      stringElement(0x5741, 'webrtc-kvs-agent fixtureUpload'),
    ),
    element(
      Id.Tracks,
      element(
        Id.TrackEntry,
        uintElement(Id.TrackNumber, 1),
        uintElement(0x73c5, 1),
        uintElement(Id.TrackType, 1),
        stringElement(Id.CodecID, 'V_MPEG4/ISO/AVC'),
        element(Id.CodecPrivate, session.avcC),
        element(
          Id.Video,
          uintElement(Id.PixelWidth, session.width),
          uintElement(Id.PixelHeight, session.height),
        ),
      ),
      element(
        Id.TrackEntry,
        uintElement(Id.TrackNumber, 2),
        uintElement(0x73c5, 2),
        uintElement(Id.TrackType, 2),
        stringElement(Id.CodecID, 'A_AAC'),
        element(Id.CodecPrivate, fixture.audioSpecificConfig),
        element(0xe1, floatElement(0xb5, fixture.sampleRate), uintElement(0x9f, fixture.channels)),
      ),
    ),
  ]);
  for (const fragment of session.fragments) {
    const timecode = startMs + fragment.ms;
    yield Buffer.concat([elementHeader(Id.Cluster, UNKNOWN_SIZE), uintElement(Id.Timecode, timecode)]);
    for (const frame of fragment.frames) {
      if (pacedFrom !== undefined) {
        const wait = pacedFrom + frame.ms - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      }
      yield simpleBlock(frame.track, Math.round(frame.ms) - fragment.ms, frame.key, frame.data);
    }
  }
}

function floatElement(id: number, value: number): Buffer {
  const payload = Buffer.alloc(8);
  payload.writeDoubleBE(value);
  return element(id, payload);
}

let prepared: Promise<PreparedFixture> | undefined;

/** The fixture split into sessions and fragments, once per process; the AAC encode is cached on disk. */
function prepareFixture(): Promise<PreparedFixture> {
  prepared ??= (async () => {
    const source = await readFile(FIXTURE_RAMP);
    const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
    const cacheDir = join(tmpdir(), 'webrtc-kvs-agent-fixture-cache', hash);
    await mkdir(cacheDir, { recursive: true });
    const [aac, sizes] = await Promise.all([cachedAac(cacheDir), cachedKeyFrameSizes(cacheDir)]);
    const audio = parseAdts(aac);
    const video = await readVideo();
    return { ...audio.config, sessions: splitSessions(video, sizes, audio.frames) };
  })();
  prepared.catch(() => (prepared = undefined));
  return prepared;
}

async function cached(path: string, make: (tmp: string) => Promise<void>): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch {
    const tmp = `${path}.${process.pid}.tmp`;
    await make(tmp);
    await rename(tmp, path);
    return readFile(path);
  }
}

/**
 * Opus → AAC-LC, ADTS. `aresample async` fills the holes of lost RTP packets and pads from 0, so AAC frame i
 * (after the encoder's priming frame) starts at i × 1024 samples from the first video key frame.
 */
function cachedAac(dir: string): Promise<Buffer> {
  return cached(join(dir, 'audio.aac'), async (tmp) => {
    await run(
      'ffmpeg',
      [
        '-hide_banner',
        '-nostdin',
        '-v',
        'error',
        '-y',
        '-i',
        FIXTURE_RAMP,
        '-vn',
        '-af',
        'aresample=async=1:first_pts=0',
        '-c:a',
        'aac',
        '-b:a',
        '64k',
        '-ar',
        '48000',
        '-ac',
        '1',
        '-f',
        'adts',
        tmp,
      ],
      { timeout: 120_000 },
    );
  });
}

/** The decoded size of every video key frame, in order (the fixture's track header names only the first). */
async function cachedKeyFrameSizes(dir: string): Promise<string[]> {
  const bytes = await cached(join(dir, 'keyframe-sizes.json'), async (tmp) => {
    const frames = await probeFrames(FIXTURE_RAMP, 'v');
    const sizes = frames.filter((f) => f.keyFrame).map((f) => `${f.width ?? 0}x${f.height ?? 0}`);
    await writeFile(tmp, JSON.stringify(sizes));
  });
  return JSON.parse(bytes.toString('utf8')) as string[];
}

async function readVideo(): Promise<Array<{ ms: number; key: boolean; data: Buffer }>> {
  const input = new Input({ source: new FilePathSource(FIXTURE_RAMP), formats: [MATROSKA, WEBM] });
  try {
    const track = await input.getPrimaryVideoTrack();
    if (!track) throw new Error('the fixture has no video track');
    const out: Array<{ ms: number; key: boolean; data: Buffer }> = [];
    for await (const p of new EncodedPacketSink(track).packets()) {
      out.push({ ms: p.timestamp * 1000, key: p.type === 'key', data: Buffer.from(p.data) });
    }
    return out;
  } finally {
    input.dispose();
  }
}

function splitSessions(
  video: Array<{ ms: number; key: boolean; data: Buffer }>,
  keySizes: string[],
  audio: Buffer[],
): Session[] {
  const sessions: Session[] = [];
  let fragment: Fragment | undefined;
  let keyIndex = 0;
  for (const packet of video) {
    const nals = [...annexBNalUnits(packet.data)].map((n) => Buffer.from(n));
    if (packet.key) {
      const resolution = keySizes[keyIndex++];
      if (!resolution) throw new Error('more key frames than ffprobe decoded');
      const sps = nals.find((n) => ((n[0] ?? 0) & 0x1f) === 7);
      const pps = nals.find((n) => ((n[0] ?? 0) & 0x1f) === 8);
      if (!sps || !pps) throw new Error(`key frame at ${packet.ms} ms has no SPS/PPS`);
      const avcC = avcDecoderConfiguration(sps, pps);
      let session = sessions.at(-1);
      if (!session || session.resolution !== resolution) {
        const [width, height] = resolution.split('x').map(Number);
        session = { resolution, width: width ?? 0, height: height ?? 0, avcC, fragments: [] };
        sessions.push(session);
      }
      fragment = { ms: Math.round(packet.ms), frames: [] };
      session.fragments.push(fragment);
    }
    if (!fragment) continue; // the fixture starts on a key frame; nothing before one is kept
    fragment.frames.push({ track: 1, ms: packet.ms, key: packet.key, data: lengthPrefixed(nals) });
  }
  // AAC frame 0 is the encoder's priming (1024 samples): dropped, so frame i + 1 starts at i × 21.333 ms.
  const fragments = sessions.flatMap((s) => s.fragments);
  const videoEnd = Math.max(...video.map((v) => v.ms));
  audio.slice(1).forEach((data, i) => {
    const ms = (i * 1024 * 1000) / 48_000;
    if (ms > videoEnd) return;
    const holder = fragments.filter((f) => f.ms <= ms).at(-1);
    holder?.frames.push({ track: 2, ms, key: true, data });
  });
  for (const f of fragments) f.frames.sort((a, b) => a.ms - b.ms || a.track - b.track);
  return sessions;
}

function avcDecoderConfiguration(sps: Buffer, pps: Buffer): Buffer {
  const head = Buffer.from([1, sps[1] ?? 0, sps[2] ?? 0, sps[3] ?? 0, 0xff, 0xe1]);
  const len = (n: Buffer): Buffer => Buffer.from([n.length >> 8, n.length & 0xff]);
  return Buffer.concat([head, len(sps), sps, Buffer.from([1]), len(pps), pps]);
}

function lengthPrefixed(nals: Buffer[]): Buffer {
  return Buffer.concat(
    nals.flatMap((n) => {
      const len = Buffer.alloc(4);
      len.writeUInt32BE(n.length);
      return [len, n];
    }),
  );
}

/** Raw AAC frames of an ADTS stream, and the AudioSpecificConfig its first header describes. */
function parseAdts(adts: Buffer): {
  frames: Buffer[];
  config: { audioSpecificConfig: Buffer; sampleRate: number; channels: number };
} {
  const rates = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];
  const frames: Buffer[] = [];
  let config: { audioSpecificConfig: Buffer; sampleRate: number; channels: number } | undefined;
  for (let o = 0; o + 7 <= adts.length;) {
    if (adts[o] !== 0xff || ((adts[o + 1] ?? 0) & 0xf6) !== 0xf0) throw new Error(`no ADTS sync at ${o}`);
    const protectionAbsent = (adts[o + 1] ?? 0) & 1;
    const b2 = adts[o + 2] ?? 0;
    const b3 = adts[o + 3] ?? 0;
    const objectType = (b2 >> 6) + 1;
    const rateIndex = (b2 >> 2) & 0x0f;
    const channels = ((b2 & 1) << 2) | (b3 >> 6);
    const length = ((b3 & 3) << 11) | ((adts[o + 4] ?? 0) << 3) | ((adts[o + 5] ?? 0) >> 5);
    const header = protectionAbsent ? 7 : 9;
    config ??= {
      audioSpecificConfig: Buffer.from([
        (objectType << 3) | (rateIndex >> 1),
        ((rateIndex & 1) << 7) | (channels << 3),
      ]),
      sampleRate: rates[rateIndex] ?? 48_000,
      channels,
    };
    frames.push(adts.subarray(o + header, o + length));
    o += length;
  }
  if (!config) throw new Error('no AAC frames');
  return { frames, config };
}
