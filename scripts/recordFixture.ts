/**
 * `npm run record-fixture [-- --seconds 30 --out test/fixtures/chromium-call-ramp.mkv]`: records the test
 * fixture with the project's own stack, offline. The KVS emulator, the reference master (fake camera 1280x720@30
 * and microphone, with its start-of-call resolution ramp) and the real viewer page in Debian's Chromium talking
 * to a real BridgeServer: the frames are kept exactly as the page's transform workers forward them (H.264
 * Annex B with in-band SPS/PPS on key frames, Opus packets) and written, without re-encoding, into Matroska
 * with mediabunny.
 *
 * Timestamps come from RTP: the first video key frame is 0 and video advances by its 90 kHz RTP deltas; audio
 * runs on its own 48 kHz RTP clock, anchored at its first packet's receive time relative to the key frame's.
 * The recording lasts at least `--seconds` and until the ramp has reached 1280x720 and shown a few key frames
 * there; the result is checked with ffprobe/ffmpeg before the script says it is done. A call that does not
 * start at 320x180 or fails a check is recorded again (`--attempts`); `--save-capture FILE` keeps the raw
 * frames and `--from-capture FILE` rebuilds the Matroska file from them without a call (`KEEP_FAILED=1` keeps
 * a file that failed its checks, as `<out>.tmp.mkv`).
 */
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  EncodedAudioPacketSource,
  EncodedPacket,
  EncodedVideoPacketSource,
  FilePathTarget,
  MkvOutputFormat,
  Output,
} from 'mediabunny';
import { chromium, type Browser } from 'playwright-core';
import { ChannelDiscovery } from '../agent/aws/discovery.js';
import { SignalingPresigner } from '../agent/aws/presigner.js';
import { BridgeServer } from '../agent/bridge/bridgeServer.js';
import { decodeFrame, encodeFrame, type WireFrame } from '../agent/bridge/wire.js';
import { CHROMIUM_FLAGS } from '../agent/browser/viewerBrowser.js';
import { createLogger } from '../agent/log.js';
import { DEFAULT_CHANNEL_NAME, DEFAULT_EMULATOR_CREDENTIALS, startEmulator } from '../emulator/server.js';
import { launchMaster } from './lib/masterBrowser.js';
import { decodeErrors, keyframeTimes, probe, probeFrames } from './lib/mediaProbe.js';

const ROOT = resolve(import.meta.dirname, '..');
const CLIENT_ID = 'fixture-recorder';
/** The ramp Chromium's encoder climbs through on a fresh call with a 1280x720 camera. */
const RAMP = ['320x180', '480x270', '640x360', '960x540', '1280x720'];
/** Key frames wanted at the final size, so that tests see more than one GOP there. */
const KEY_FRAMES_AT_TOP = 4;
const KEYFRAME_INTERVAL_MS = 2000;

/**
 * Whether a call starts at the bottom of the ramp is otherwise a race: WebRTC drops the first frames and
 * scales down only while the sender's target bitrate is under 300 kbps, and its default start estimate sits
 * right at that line (an idle machine often starts at 640x360, a loaded one at 320x180). The viewer's offer
 * therefore proposes a lower start bitrate (`x-google-start-bitrate`, which the master's sender takes from
 * the negotiated codec): the call starts at 320x180 and climbs as the bandwidth estimate grows, exactly as a
 * call over a slow start does. Nothing in the media path changes.
 */
const START_BITRATE_KBPS = 150;

/** Runs in the viewer page before its own scripts (a Playwright init script; the Node side has no DOM types). */
const START_LOW_SCRIPT = `(() => {
  const proto = RTCPeerConnection.prototype;
  const createOffer = proto.createOffer;
  proto.createOffer = async function (...args) {
    const offer = await createOffer.apply(this, args);
    const sdp = offer.sdp || '';
    const h264 = [...sdp.matchAll(/^a=rtpmap:(\\d+) H264\\/90000/gm)].map((m) => m[1]);
    const munged = sdp.replace(/^a=fmtp:(\\d+) (.*)$/gm, (line, pt, params) =>
      h264.includes(pt) ? 'a=fmtp:' + pt + ' ' + params + ';x-google-start-bitrate=${START_BITRATE_KBPS}' : line);
    return { type: offer.type, sdp: munged };
  };
})();`;

interface Capture {
  video: WireFrame[];
  audio: WireFrame[];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '30' },
      'max-seconds': { type: 'string', default: '75' },
      attempts: { type: 'string', default: '8' },
      out: { type: 'string', default: resolve(ROOT, 'test/fixtures/chromium-call-ramp.mkv') },
      /** Also keep the raw capture (wire frames, length-prefixed) to rebuild the file without a new call. */
      'save-capture': { type: 'string' },
      'from-capture': { type: 'string' },
      /** Built pages (viewer and reference master), `vite build` output. */
      'web-root': { type: 'string', default: resolve(ROOT, 'dist/web') },
    },
  });
  const seconds = Number(values.seconds);
  const maxSeconds = Number(values['max-seconds']);
  const attempts = Number(values.attempts);
  if (!Number.isFinite(seconds) || seconds < 10 || seconds > 600) throw new Error('--seconds: 10 to 600');
  if (!Number.isFinite(maxSeconds) || maxSeconds < seconds)
    throw new Error('--max-seconds: at least --seconds');
  if (!Number.isInteger(attempts) || attempts < 1) throw new Error('--attempts: a whole number ≥ 1');
  const out = resolve(values.out);
  await mkdir(dirname(out), { recursive: true });

  for (let attempt = 1; ; attempt++) {
    try {
      console.log(`Recording a call (attempt ${attempt} of ${attempts}), at least ${seconds} s…`);
      const capture = values['from-capture']
        ? await loadCapture(values['from-capture'])
        : await recordCall(seconds, maxSeconds, resolve(values['web-root']));
      if (values['save-capture']) await saveCapture(capture, values['save-capture']);
      const tmp = `${out}.tmp.mkv`;
      const written = await writeMatroska(capture, tmp);
      const report = await check(tmp);
      await rename(tmp, out);
      const { size } = await stat(out);
      console.log('');
      console.log(`Fixture written: ${relative(process.cwd(), out)} (${(size / 1e6).toFixed(2)} MB)`);
      console.log(`  duration:      ${report.durationS.toFixed(2)} s`);
      console.log(
        `  video:         H.264 ${report.profile}, ${report.videoFrames} frames, ${report.keyFrames} key frames`,
      );
      console.log(`  resolutions:   ${report.resolutions.join(' → ')}`);
      console.log(`  key frames at: ${report.keyTimes.map((t) => t.toFixed(2)).join(', ')} s`);
      console.log(
        `  audio:         Opus ${report.audioChannels} ch ${report.audioRate} Hz, ${written.audio} packets`,
      );
      console.log(
        `  dropped:       ${written.videoBeforeKey} video frames before the first key frame, ${written.videoRepeated} repeated RTP timestamps, ${written.audioBeforeStart} audio packets before it`,
      );
      console.log('  decode errors: none');
      return;
    } catch (err) {
      console.error(`  attempt ${attempt} failed: ${err instanceof Error ? err.message : String(err)}`);
      if (!process.env.KEEP_FAILED) await rm(`${out}.tmp.mkv`, { force: true });
      if (attempt >= attempts) throw err;
    }
  }
}

/** One call: emulator + master + viewer page + bridge; returns every frame the page forwarded. */
async function recordCall(seconds: number, maxSeconds: number, webRoot: string): Promise<Capture> {
  const logger = createLogger({ level: 'warn' });
  const credentials = () => Promise.resolve({ ...DEFAULT_EMULATOR_CREDENTIALS });
  const capture: Capture = { video: [], audio: [] };
  const emulator = await startEmulator({ port: 0, logger: logger.child({ component: 'emulator' }) });
  let browser: Browser | undefined;
  let bridge: BridgeServer | undefined;
  let master: Awaited<ReturnType<typeof launchMaster>> | undefined;
  try {
    master = await launchMaster({
      endpoint: emulator.url,
      region: emulator.region,
      channel: DEFAULT_CHANNEL_NAME,
      credentials: { ...DEFAULT_EMULATOR_CREDENTIALS },
      // The point of the fixture: the encoder's start-of-call bandwidth ramp.
      maintainResolution: false,
      webRoot,
      logger: logger.child({ component: 'master' }),
    });
    const discovery = new ChannelDiscovery({ region: emulator.region, endpoint: emulator.url, credentials });
    const channel = await discovery.describeChannel(DEFAULT_CHANNEL_NAME);
    const presigner = new SignalingPresigner({
      region: emulator.region,
      credentials,
      allowedEndpoint: channel.wssEndpoint,
      channelARN: channel.channelARN,
      clientId: CLIENT_ID,
    });
    const b = new BridgeServer({ webRoot, logger: logger.child({ component: 'bridge' }) });
    bridge = b;
    await b.listen();
    let hellos = 0;
    b.on('frame', (f) => (f.header.kind === 'video' ? capture.video : capture.audio).push(f));
    b.on('control', (msg) => {
      if (msg.type === 'hello') {
        if (++hellos > 1) logger.warn('the page started a second session: this capture will be refused');
        b.sendControl({
          type: 'config',
          session: CLIENT_ID,
          channelARN: channel.channelARN,
          channelEndpoint: channel.wssEndpoint,
          region: emulator.region,
          clientId: CLIENT_ID,
          iceServers: [],
          keyframeIntervalMs: KEYFRAME_INTERVAL_MS,
          frameUrl: b.frameUrl,
        });
      } else if (msg.type === 'presign') {
        presigner
          .presign(msg.endpoint, msg.queryParams, msg.date === undefined ? undefined : new Date(msg.date))
          .then((url) => b.sendControl({ type: 'presigned', id: msg.id, url }))
          .catch((err: unknown) =>
            b.sendControl({ type: 'presign-failed', id: msg.id, message: String(err) }),
          );
      } else if (msg.type === 'log' && (msg.level === 'error' || msg.level === 'warn')) {
        console.log(`  page ${msg.level}: ${msg.msg}`);
      }
    });
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/lib/chromium/chromium',
      args: [...CHROMIUM_FLAGS],
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
    });
    const page = await browser.newPage();
    await page.addInitScript({ content: START_LOW_SCRIPT });
    page.on('pageerror', (err) => console.log(`  viewer page error: ${err.message}`));
    await page.goto(b.pageUrl);
    await master.waitForViewerConnected(30_000);
    console.log('  call connected; recording…');

    const started = Date.now();
    let lastReport = started;
    for (;;) {
      await new Promise((r) => setTimeout(r, 250));
      const now = Date.now();
      const firstKey = capture.video.find((f) => f.header.key);
      const keySizes = capture.video
        .filter((f) => f.header.key)
        .map((f) => `${f.header.width}x${f.header.height}`);
      const recordedS = firstKey ? (now - firstKey.header.receiveTimeMs) / 1000 : 0;
      const atTop = keySizes.filter((s) => s === RAMP.at(-1)).length;
      if (now - lastReport >= 5000) {
        lastReport = now;
        console.log(
          `  ${recordedS.toFixed(0)} s: key frames ${[...new Set(keySizes)].join(' → ') || '(none yet)'}`,
        );
      }
      if (hellos > 1) throw new Error('the page restarted its session during the capture');
      // Whether the encoder starts at the bottom of the ramp is a race between its first frame and the first
      // bandwidth probe (a loaded machine starts at 320x180, an idle one often higher): a call that did not
      // start at the bottom cannot become the fixture, so give up on it at once.
      if (keySizes[0] !== undefined && keySizes[0] !== RAMP[0])
        throw new Error(`the call started at ${keySizes[0]}, not ${RAMP[0]}`);
      if (recordedS >= seconds && atTop >= KEY_FRAMES_AT_TOP) break;
      if ((now - started) / 1000 > maxSeconds) {
        throw new Error(
          `after ${maxSeconds} s the call had key frames at ${[...new Set(keySizes)].join(', ')} only (${atTop} at ${RAMP.at(-1)})`,
        );
      }
    }
  } finally {
    await browser?.close().catch(() => undefined);
    await bridge?.close().catch(() => undefined);
    await master?.close().catch(() => undefined);
    await emulator.stop();
  }
  return capture;
}

async function saveCapture(capture: Capture, file: string): Promise<void> {
  const parts: Uint8Array[] = [];
  for (const f of [...capture.video, ...capture.audio]) {
    const bytes = new Uint8Array(encodeFrame(f.header, f.payload));
    const length = new Uint8Array(4);
    new DataView(length.buffer).setUint32(0, bytes.byteLength, true);
    parts.push(length, bytes);
  }
  await writeFile(file, Buffer.concat(parts));
}

async function loadCapture(file: string): Promise<Capture> {
  const data = new Uint8Array(await readFile(file));
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const capture: Capture = { video: [], audio: [] };
  for (let at = 0; at < data.byteLength;) {
    const length = view.getUint32(at, true);
    const decoded = decodeFrame(data.subarray(at + 4, at + 4 + length));
    if (!decoded.ok) throw new Error(`${file}: ${decoded.reason}`);
    (decoded.frame.header.kind === 'video' ? capture.video : capture.audio).push(decoded.frame);
    at += 4 + length;
  }
  return capture;
}

/** Unwraps 32-bit RTP timestamps into a monotonic count (assumes steps of less than 2^31). */
function rtpUnwrapper(): (rtp: number) => number {
  let last: number | undefined;
  let cycles = 0;
  return (rtp) => {
    if (last !== undefined) {
      const diff = rtp - last;
      if (diff < -(2 ** 31)) cycles++;
      else if (diff > 2 ** 31) cycles--;
    }
    last = rtp;
    return cycles * 2 ** 32 + rtp;
  };
}

function assertContiguous(frames: WireFrame[], kind: string): void {
  const ssrcs = new Set(frames.map((f) => f.header.ssrc));
  if (ssrcs.size !== 1) throw new Error(`${kind}: ${ssrcs.size} SSRCs (the peer connection was replaced)`);
  for (let i = 1; i < frames.length; i++) {
    if (frames[i]!.header.seq !== frames[i - 1]!.header.seq + 1)
      throw new Error(
        `${kind}: sequence gap after ${frames[i - 1]!.header.seq} (frames lost before the bridge)`,
      );
  }
}

/** `avc1.PPCCLL` from the first SPS of an Annex B access unit. */
function avcCodecString(au: Uint8Array): string {
  for (let i = 0; i + 7 < au.length; i++) {
    const startCode3 = au[i] === 0 && au[i + 1] === 0 && au[i + 2] === 1;
    if (startCode3 && (au[i + 3]! & 0x1f) === 7) {
      const hex = (b: number) => b.toString(16).padStart(2, '0');
      return `avc1.${hex(au[i + 4]!)}${hex(au[i + 5]!)}${hex(au[i + 6]!)}`;
    }
  }
  throw new Error('the first key frame carries no SPS');
}

/** RFC 7845 identification header (OpusHead) for `channels` at 48 kHz, channel mapping family 0. */
function opusHead(channels: number): Uint8Array {
  const head = new Uint8Array(19);
  head.set(new TextEncoder().encode('OpusHead'), 0);
  const view = new DataView(head.buffer);
  view.setUint8(8, 1);
  view.setUint8(9, channels);
  view.setUint16(10, 312, true); // pre-skip: libopus' usual 6.5 ms
  view.setUint32(12, 48_000, true);
  return head;
}

/** Opus packet duration from its TOC byte (RFC 6716 §3.1), µs. */
function opusDurationUs(packet: Uint8Array): number {
  const toc = packet[0]!;
  const config = toc >> 3;
  const frameUs =
    config < 12
      ? [10_000, 20_000, 40_000, 60_000][config % 4]!
      : config < 16
        ? [10_000, 20_000][config % 2]!
        : [2_500, 5_000, 10_000, 20_000][config % 4]!;
  const code = toc & 3;
  const frames = code === 0 ? 1 : code === 3 ? (packet[1] ?? 0) & 0x3f : 2;
  return frameUs * frames;
}

interface Written {
  video: number;
  audio: number;
  videoBeforeKey: number;
  videoRepeated: number;
  audioBeforeStart: number;
}

/** Capture → Matroska, timestamps from RTP (see the header comment). */
async function writeMatroska(capture: Capture, file: string): Promise<Written> {
  assertContiguous(capture.video, 'video');
  assertContiguous(capture.audio, 'audio');
  const keyIndex = capture.video.findIndex((f) => f.header.key);
  if (keyIndex < 0) throw new Error('no video key frame');
  const key = capture.video[keyIndex]!;
  const written: Written = {
    video: 0,
    audio: 0,
    videoBeforeKey: keyIndex,
    videoRepeated: 0,
    audioBeforeStart: 0,
  };

  const packets: { kind: 'video' | 'audio'; timestampUs: number; key: boolean; data: Uint8Array }[] = [];
  const unwrapVideo = rtpUnwrapper();
  const keyRtp = unwrapVideo(key.header.rtpTimestamp);
  let lastVideoRtp = -Infinity;
  for (const f of capture.video.slice(keyIndex)) {
    const rtp = f === key ? keyRtp : unwrapVideo(f.header.rtpTimestamp);
    // Chromium re-delivers a delta frame to the receiver transform around a resolution switch: the copy is
    // not a new picture, and a decoder's timeline cannot hold two frames at one time.
    if (rtp <= lastVideoRtp) {
      written.videoRepeated++;
      continue;
    }
    lastVideoRtp = rtp;
    packets.push({
      kind: 'video',
      key: f.header.key,
      timestampUs: ((rtp - keyRtp) / 90) * 1000,
      data: f.payload,
    });
  }
  const first = capture.audio[0];
  if (!first) throw new Error('no audio');
  const unwrapAudio = rtpUnwrapper();
  const audioRtp0 = unwrapAudio(first.header.rtpTimestamp);
  const audioAnchorUs = (first.header.receiveTimeMs - key.header.receiveTimeMs) * 1000;
  let audioEndUs = -Infinity;
  for (const f of capture.audio) {
    const rtp = f === first ? audioRtp0 : unwrapAudio(f.header.rtpTimestamp);
    const timestampUs = Math.round(audioAnchorUs + ((rtp - audioRtp0) / 48) * 1000);
    if (timestampUs < 0 || timestampUs < audioEndUs) {
      written.audioBeforeStart++;
      continue;
    }
    audioEndUs = timestampUs + opusDurationUs(f.payload);
    packets.push({ kind: 'audio', key: true, timestampUs, data: f.payload });
  }
  // A video frame lasts until the next one (the last one a nominal 1/30 s): a fixed 1/30 s would overlap the
  // next frame whenever WebRTC delivers two frames closer together, which decoders report.
  const videoPackets = packets.filter((p) => p.kind === 'video');
  const durationUs = new Map(
    videoPackets.map((p, i) => [
      p,
      (videoPackets[i + 1]?.timestampUs ?? p.timestampUs + 33_333) - p.timestampUs,
    ]),
  );
  packets.sort((a, b) => a.timestampUs - b.timestampUs || (a.kind === 'video' ? -1 : 1));

  const output = new Output({
    format: new MkvOutputFormat(),
    target: new FilePathTarget(file),
  });
  // Annex B without a decoder description: no CodecPrivate, the in-band SPS/PPS is what decoders follow,
  // as in the agent's own live stream.
  const video = new EncodedVideoPacketSource('avc');
  const audio = new EncodedAudioPacketSource('opus');
  output.addVideoTrack(video);
  output.addAudioTrack(audio);
  await output.start();
  const channels = ((first.payload[0]! >> 2) & 1) === 1 ? 2 : 1;
  for (const p of packets) {
    if (p.kind === 'video') {
      const packet = new EncodedPacket(
        p.data,
        p.key ? 'key' : 'delta',
        p.timestampUs / 1e6,
        durationUs.get(p)! / 1e6,
      );
      if (written.video++ === 0) {
        await video.add(packet, {
          decoderConfig: {
            codec: avcCodecString(p.data),
            codedWidth: key.header.width,
            codedHeight: key.header.height,
          },
        });
      } else await video.add(packet);
    } else {
      const packet = new EncodedPacket(p.data, 'key', p.timestampUs / 1e6, opusDurationUs(p.data) / 1e6);
      if (written.audio++ === 0) {
        await audio.add(packet, {
          decoderConfig: {
            codec: 'opus',
            numberOfChannels: channels,
            sampleRate: 48_000,
            description: opusHead(channels),
          },
        });
      } else await audio.add(packet);
    }
  }
  await output.finalize();
  return written;
}

interface Report {
  durationS: number;
  profile: string;
  videoFrames: number;
  keyFrames: number;
  keyTimes: number[];
  resolutions: string[];
  audioChannels: number;
  audioRate: number;
}

/** What a decoder sees: both streams, every ramp step in order, a few key frames at the top, clean decode. */
async function check(file: string): Promise<Report> {
  const info = await probe(file);
  const codecs = info.streams.map((s) => `${s.codec_type}:${s.codec_name}`);
  if (codecs.join(',') !== 'video:h264,audio:opus')
    throw new Error(`unexpected streams ${codecs.join(', ')}`);
  const frames = await probeFrames(file, 'v');
  const sizes = [...new Set(frames.map((f) => `${f.width}x${f.height}`))];
  if (sizes.join(',') !== RAMP.join(','))
    throw new Error(`the ramp is not whole: ${sizes.join(' → ')} (wanted ${RAMP.join(' → ')})`);
  const keyTimes = await keyframeTimes(file);
  const top = frames.findIndex((f) => `${f.width}x${f.height}` === RAMP.at(-1));
  const keysAtTop = keyTimes.filter((t) => t >= frames[top]!.ptsTime - 1e-3).length;
  if (keysAtTop < KEY_FRAMES_AT_TOP) throw new Error(`only ${keysAtTop} key frames at ${RAMP.at(-1)}`);
  const errors = await decodeErrors(file);
  if (errors) throw new Error(`decode errors: ${errors.split('\n').slice(0, 3).join(' | ')}`);
  const audio = info.streams.find((s) => s.codec_type === 'audio')!;
  const videoStream = info.streams.find((s) => s.codec_type === 'video') as { profile?: string } | undefined;
  return {
    durationS: Number(info.format.duration),
    profile: videoStream?.profile ?? '?',
    videoFrames: frames.length,
    keyFrames: keyTimes.length,
    keyTimes,
    resolutions: sizes,
    audioChannels: audio.channels ?? 0,
    audioRate: Number(audio.sample_rate),
  };
}

main().catch((err: unknown) => {
  console.error(`record-fixture failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
