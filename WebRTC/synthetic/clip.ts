import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { EncodedPacketSink, FilePathSource, Input, MATROSKA } from 'mediabunny';

/**
 * The synthetic master's media, encoded once with GStreamer from pictures and sound drawn here, so that every
 * frame's content is known: a test pattern with the frame number in large digits, and at known instants a
 * full-frame white flash in video and a 1 kHz beep in audio that start at exactly the same content time.
 *
 * Frame rate 30 and Opus 20 ms packets meet every 100 ms (3 frames = 5 packets). Flashes, beeps and key frames
 * sit on that grid, so the master can jump both tracks to the next key frame (on a PLI) and keep them aligned.
 */
export interface ClipSpec {
  width: number;
  height: number;
  /** Clip length in frames at 30 fps; a multiple of keyIntervalFrames. */
  frames: number;
  /** IDR every this many frames (x264 scene-cut off, so no others); a multiple of 3. */
  keyIntervalFrames: number;
  /** A flash + beep every this many frames, first at `flashOffsetFrames`; both multiples of 3. */
  flashEveryFrames: number;
  flashOffsetFrames: number;
  bitrateKbps: number;
}

export const FPS = 30;
export const VIDEO_CLOCK = 90_000;
export const AUDIO_RATE = 48_000;
/** Opus packet length in samples (20 ms). */
export const AUDIO_PACKET_SAMPLES = 960;
/** 3 video frames = 5 audio packets = 100 ms: the grid the two tracks share. */
export const GRID_FRAMES = 3;
export const GRID_PACKETS = 5;
export const BEEP_HZ = 1000;
export const BEEP_MS = 100;

export function clipSpec(width: number, height: number, overrides: Partial<ClipSpec> = {}): ClipSpec {
  const spec: ClipSpec = {
    width,
    height,
    frames: 360,
    keyIntervalFrames: 60,
    flashEveryFrames: 30,
    flashOffsetFrames: 15,
    bitrateKbps: Math.round((width * height * 30) / 460), // ≈ 2 Mbit/s at 720p30
    ...overrides,
  };
  for (const [name, value] of Object.entries({
    frames: spec.frames,
    keyIntervalFrames: spec.keyIntervalFrames,
    flashEveryFrames: spec.flashEveryFrames,
    flashOffsetFrames: spec.flashOffsetFrames,
  })) {
    if (!Number.isInteger(value) || value % GRID_FRAMES !== 0)
      throw new Error(`${name} must be a multiple of 3`);
  }
  if (spec.frames % spec.keyIntervalFrames !== 0)
    throw new Error('frames must be a multiple of keyIntervalFrames');
  if (spec.width % 2 || spec.height % 2) throw new Error('width and height must be even');
  return spec;
}

export interface ClipVideoFrame {
  /** Content index in the clip (0 … frames-1). */
  index: number;
  key: boolean;
  flash: boolean;
  /** NAL units without start codes; key frames carry SPS and PPS first. */
  nalus: Buffer[];
}

export interface Clip {
  spec: ClipSpec;
  video: ClipVideoFrame[];
  /** Opus packets, 20 ms each; packet i starts at content time i × 20 ms. */
  audio: Buffer[];
  /** Content audio packet indices where a beep starts (same instants as the flash frames). */
  beepPackets: number[];
}

export function isFlashFrame(spec: ClipSpec, index: number): boolean {
  return index >= spec.flashOffsetFrames && (index - spec.flashOffsetFrames) % spec.flashEveryFrames === 0;
}

/** Where the clip files live: a per-user cache, keyed by everything that shapes them. */
export function clipDir(): string {
  return process.env.SYNTHETIC_MEDIA_DIR ?? join(homedir(), '.cache', 'webrtc-kvs-agent', 'synthetic');
}

const FORMAT_VERSION = 1;

/** The clip's cached Matroska files (H.264 and Opus), named by everything that shapes them. */
export function clipFiles(spec: ClipSpec, dir = clipDir()): { videoFile: string; audioFile: string } {
  const key = createHash('sha256')
    .update(JSON.stringify({ spec, FORMAT_VERSION }))
    .digest('hex')
    .slice(0, 16);
  return {
    videoFile: join(dir, `video-${spec.width}x${spec.height}-${key}.mkv`),
    audioFile: join(dir, `audio-${spec.frames}-${key}.mkv`),
  };
}

/** Encodes the clip if it is not cached yet, then loads its packets. */
export async function loadClip(spec: ClipSpec, dir = clipDir()): Promise<Clip> {
  const { videoFile, audioFile } = clipFiles(spec, dir);
  await mkdir(dir, { recursive: true });
  if (!(await exists(videoFile))) await encodeVideo(spec, videoFile);
  if (!(await exists(audioFile))) await encodeAudio(spec, audioFile);
  const video = (await readPackets(videoFile, 'video')).map((p, index) => ({
    index,
    key: p.key,
    flash: isFlashFrame(spec, index),
    nalus: withParameterSets(avccToNalus(p.data), p.key, p.config),
  }));
  if (video.length !== spec.frames)
    throw new Error(`${videoFile}: ${video.length} frames, expected ${spec.frames}`);
  for (const f of video) {
    if (f.key !== (f.index % spec.keyIntervalFrames === 0))
      throw new Error(`${videoFile}: frame ${f.index} key=${f.key}, against the key interval`);
  }
  const audio = (await readPackets(audioFile, 'audio')).map((p) => Buffer.from(p.data));
  const packets = (spec.frames / GRID_FRAMES) * GRID_PACKETS;
  if (audio.length < packets) throw new Error(`${audioFile}: ${audio.length} packets, expected ${packets}`);
  const beepPackets = video.filter((f) => f.flash).map((f) => (f.index / GRID_FRAMES) * GRID_PACKETS);
  return { spec, video, audio: audio.slice(0, packets), beepPackets };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.size > 0,
    () => false,
  );
}

async function readPackets(
  file: string,
  kind: 'video' | 'audio',
): Promise<{ key: boolean; data: Uint8Array; config: Uint8Array | undefined }[]> {
  const input = new Input({ source: new FilePathSource(file), formats: [MATROSKA] });
  try {
    const track = kind === 'video' ? await input.getPrimaryVideoTrack() : await input.getPrimaryAudioTrack();
    if (!track) throw new Error(`${file} has no ${kind} track`);
    // VideoDecoderConfig is a DOM type (not in Node's lib): only its description (avcC) is read.
    const decoderConfig =
      kind === 'video' && track.isVideoTrack()
        ? ((await track.getDecoderConfig()) as { description?: ArrayBuffer | ArrayBufferView } | null)
        : null;
    const config = decoderConfig?.description;
    const description = !config
      ? undefined
      : ArrayBuffer.isView(config)
        ? new Uint8Array(config.buffer, config.byteOffset, config.byteLength)
        : new Uint8Array(config);
    const out = [];
    for await (const p of new EncodedPacketSink(track).packets())
      out.push({ key: p.type === 'key', data: p.data, config: description });
    return out;
  } finally {
    input.dispose();
  }
}

/** Matroska keeps H.264 as 4-byte length-prefixed NAL units (h264parse's `avc` format). */
function avccToNalus(data: Uint8Array): Buffer[] {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const nalus: Buffer[] = [];
  for (let at = 0; at + 4 <= buf.length;) {
    const len = buf.readUInt32BE(at);
    if (len === 0 || at + 4 + len > buf.length) throw new Error('malformed length-prefixed H.264 sample');
    nalus.push(Buffer.from(buf.subarray(at + 4, at + 4 + len)));
    at += 4 + len;
  }
  return nalus;
}

/** Key frames go out as SPS + PPS + IDR, as Chromium sends them: taken from avcC where not in-band. */
function withParameterSets(nalus: Buffer[], key: boolean, avcc: Uint8Array | undefined): Buffer[] {
  const body = nalus.filter((n) => ![7, 8, 9].includes(n[0]! & 0x1f));
  if (!key) return body;
  const sps = nalus.find((n) => (n[0]! & 0x1f) === 7);
  const pps = nalus.find((n) => (n[0]! & 0x1f) === 8);
  if (sps && pps) return [sps, pps, ...body];
  if (!avcc) throw new Error('a key frame without SPS/PPS and no avcC');
  const fromConfig = parseAvcc(Buffer.from(avcc));
  return [...fromConfig, ...body];
}

function parseAvcc(avcc: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 5;
  const spsCount = avcc[at++]! & 0x1f;
  for (let i = 0; i < spsCount; i++) {
    const len = avcc.readUInt16BE(at);
    out.push(avcc.subarray(at + 2, at + 2 + len));
    at += 2 + len;
  }
  const ppsCount = avcc[at++]!;
  for (let i = 0; i < ppsCount; i++) {
    const len = avcc.readUInt16BE(at);
    out.push(avcc.subarray(at + 2, at + 2 + len));
    at += 2 + len;
  }
  return out;
}

/** Runs gst-launch with raw input produced by `feed`, writing to `out` atomically. */
async function encode(
  args: string[],
  out: string,
  feed: (write: (chunk: Buffer) => Promise<void>) => Promise<void>,
): Promise<void> {
  const tmp = `${out}.${process.pid}.tmp`;
  const child = spawn('gst-launch-1.0', ['-q', '-e', ...args, '!', 'filesink', `location=${tmp}`], {
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => resolve(code));
  });
  const write = async (chunk: Buffer) => {
    if (!child.stdin.write(chunk)) await once(child.stdin, 'drain');
  };
  try {
    await feed(write);
    child.stdin.end();
    const code = await exited;
    if (code !== 0) throw new Error(`gst-launch-1.0 exited ${code} encoding ${out}: ${stderr.slice(-500)}`);
    await rename(tmp, out);
  } catch (err) {
    child.kill('SIGKILL');
    await rm(tmp, { force: true });
    throw err;
  }
}

async function encodeVideo(spec: ClipSpec, out: string): Promise<void> {
  const { width, height } = spec;
  const frameBytes = (width * height * 3) / 2;
  await encode(
    [
      'fdsrc',
      'fd=0',
      `blocksize=${frameBytes}`,
      '!',
      'rawvideoparse',
      'format=i420',
      `width=${width}`,
      `height=${height}`,
      `framerate=${FPS}/1`,
      '!',
      'x264enc',
      'speed-preset=veryfast',
      'tune=zerolatency',
      'sliced-threads=false',
      `bitrate=${spec.bitrateKbps}`,
      `key-int-max=${spec.keyIntervalFrames}`,
      'bframes=0',
      // No scene-cut IDRs (a flash is one): key frames exactly where the spec puts them.
      `option-string=scenecut=0:min-keyint=${spec.keyIntervalFrames}`,
      '!',
      'video/x-h264,profile=constrained-baseline',
      '!',
      'h264parse',
      'config-interval=-1',
      '!',
      'matroskamux',
    ],
    out,
    async (write) => {
      for (let i = 0; i < spec.frames; i++) await write(paintFrame(spec, i));
    },
  );
}

async function encodeAudio(spec: ClipSpec, out: string): Promise<void> {
  const packets = (spec.frames / GRID_FRAMES) * GRID_PACKETS;
  await encode(
    [
      'fdsrc',
      'fd=0',
      '!',
      'rawaudioparse',
      'format=pcm',
      'pcm-format=s16le',
      `sample-rate=${AUDIO_RATE}`,
      'num-channels=1',
      '!',
      'opusenc',
      'frame-size=20',
      'bitrate=64000',
      'audio-type=generic',
      '!',
      'matroskamux',
    ],
    out,
    async (write) => {
      // One extra packet of silence so the encoder's lookahead flushes the last real packet too.
      const samples = (packets + 1) * AUDIO_PACKET_SAMPLES;
      const pcm = Buffer.alloc(samples * 2);
      const beepSamples = (BEEP_MS * AUDIO_RATE) / 1000;
      for (let f = 0; f < spec.frames; f++) {
        if (!isFlashFrame(spec, f)) continue;
        const start = (f / GRID_FRAMES) * GRID_PACKETS * AUDIO_PACKET_SAMPLES;
        for (let s = 0; s < beepSamples; s++) {
          const v = Math.round(16_000 * Math.sin((2 * Math.PI * BEEP_HZ * s) / AUDIO_RATE));
          pcm.writeInt16LE(v, (start + s) * 2);
        }
      }
      await write(pcm);
    },
  );
}

/** 7-segment glyphs: segments a b c d e f g as bits 0…6. */
const DIGITS = [0x3f, 0x06, 0x5b, 0x4f, 0x66, 0x6d, 0x7d, 0x07, 0x7f, 0x6f];

/** One I420 picture: grey field, a bar sweeping right, the frame number; a flash frame is all white. */
export function paintFrame(spec: ClipSpec, index: number): Buffer {
  const { width: w, height: h } = spec;
  const frame = Buffer.alloc((w * h * 3) / 2, 128);
  const y = frame.subarray(0, w * h);
  if (isFlashFrame(spec, index)) {
    y.fill(235);
    return frame;
  }
  y.fill(72);
  const barW = Math.max(4, Math.round(w / 24));
  const barX = Math.round((index * w) / 90) % w;
  for (let row = 0; row < h; row++) y.fill(170, row * w + barX, row * w + Math.min(w, barX + barW));
  // Chroma: a colour that changes with the frame so the picture is not a still.
  const u = frame.subarray(w * h, (w * h * 5) / 4);
  const v = frame.subarray((w * h * 5) / 4);
  u.fill(96 + (index % 64));
  v.fill(160 - (index % 64));
  const digitH = Math.round(h / 4);
  const digitW = Math.round(digitH / 2);
  const stroke = Math.max(2, Math.round(digitH / 10));
  const text = String(index).padStart(4, '0');
  const x0 = Math.round(w / 2 - (text.length * (digitW + stroke * 2)) / 2);
  const y0 = Math.round(h / 2 - digitH / 2);
  const rect = (x: number, yy: number, rw: number, rh: number) => {
    for (let r = Math.max(0, yy); r < Math.min(h, yy + rh); r++)
      y.fill(235, r * w + Math.max(0, x), r * w + Math.min(w, x + rw));
  };
  [...text].forEach((ch, i) => {
    const bits = DIGITS[Number(ch)]!;
    const x = x0 + i * (digitW + stroke * 2);
    const half = Math.round(digitH / 2);
    if (bits & 1) rect(x, y0, digitW, stroke);
    if (bits & 2) rect(x + digitW - stroke, y0, stroke, half);
    if (bits & 4) rect(x + digitW - stroke, y0 + half, stroke, half);
    if (bits & 8) rect(x, y0 + digitH - stroke, digitW, stroke);
    if (bits & 16) rect(x, y0 + half, stroke, half);
    if (bits & 32) rect(x, y0, stroke, half);
    if (bits & 64) rect(x, y0 + half - Math.round(stroke / 2), digitW, stroke);
  });
  return frame;
}
