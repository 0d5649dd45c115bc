import { ConfigError } from '../errors.js';

/** Where the recording goes. */
export type SinkSpec =
  | {
      kind: 'file';
      /** The MPEG-TS file this run writes (the recorder starts a new run, and file, per segment). */
      path: string;
    }
  | {
      kind: 'kvssink';
      streamName: string;
      /** kvssink `aws-region`; kvssink's own default (us-west-2, or AWS_DEFAULT_REGION) when absent. */
      awsRegion?: string;
      /** Further kvssink properties, written as `name=value`. */
      properties?: Record<string, string | number | boolean>;
    };

export interface PipelineOptions {
  hasAudio: boolean;
}

/**
 * The front half, shared by every sink: one Matroska stream per track from the agent (video on stdin, audio on
 * fd 3: see TrackStream), each demuxed; H.264 kept as it is
 * (h264parse only re-frames it, its caps come from the back half); Opus decoded and re-encoded as AAC-LC,
 * the only audio codec KVS plays back. The back half's muxer interleaves the two by running time. Queues are
 * bounded in bytes only (queue's default 10 MB), not in time: after a gap (a Chromium relaunch, a new peer)
 * video that comes back before audio would otherwise fill the video queue by its timestamps alone (the frames
 * on both sides of a 10 s gap are "10 s" of queue) and gst would stop reading video while it waits for audio.
 */
/**
 * How much later than its timestamp a player shows the audio this chain writes, measured with the synthetic
 * clip (test/agent/sink/pipeline.test.ts): opusdec outputs the Opus encoder's lookahead (312 samples at
 * 48 kHz: WebRTC carries no pre-skip) and voaacenc delays its output by 1600 samples (1024 of priming and its
 * 576-sample lookahead), which MPEG-TS and KVS fragments cannot signal. The timeline stamps audio this much
 * earlier (MediaTimeline audioLeadMs). voaacenc rather than libav's avenc_aac: gst-libav loads libavcodec,
 * libavfilter and their ~150 libraries into every gst (10 MiB more private memory per channel), and on the
 * fixture's audio voaacenc's output is closer to its input (SNR 32 dB against 24 dB at 128 kbit/s).
 */
export const AUDIO_CHAIN_DELAY_MS = ((312 + 1600) * 1000) / 48_000;

/**
 * How much of its input the audio chain never outputs when the input ends: voaacenc does not drain, so its
 * 1600 samples of delay and the last partial 1024-sample frame stay in it (measured: 10 000 samples in, 9
 * frames out). The muxer pads each run's audio by this much (MatroskaStreamMuxerOptions.audioTailUs): without
 * it a run's last 35–55 ms of audio were lost, and kvssink, which ends a session at its first pad's EOS, lost
 * the session's last video frame whenever the audio then ended before it.
 */
export const AUDIO_CHAIN_TAIL_MS = ((1600 + 1024) * 1000) / 48_000;

/** The pipes a pipeline reads, in GstProcess input order: video on stdin, audio on fd 3. */
export function pipelineInputs(options: PipelineOptions): number {
  return options.hasAudio ? 2 : 1;
}

/** A queue bounded by bytes only (see frontHalf). */
const QUEUE = ['queue', 'max-size-time=0', 'max-size-buffers=0'];

function frontHalf(videoCaps: string, videoTail: string[], hasAudio: boolean, audioTarget: string): string[] {
  const video = [
    'fdsrc',
    'fd=0',
    '!',
    'matroskademux',
    'name=vdemux',
    'vdemux.video_0',
    '!',
    ...QUEUE,
    '!',
    'h264parse',
    'config-interval=-1',
    '!',
    videoCaps,
    ...videoTail,
  ];
  const audio = hasAudio
    ? [
        'fdsrc',
        'fd=3',
        '!',
        'matroskademux',
        'name=ademux',
        'ademux.audio_0',
        '!',
        ...QUEUE,
        '!',
        'opusdec',
        '!',
        // Samples to match timestamps within 1 ms: a hole (a lost packet, filler silence that does not end on
        // the next packet) becomes silence, an overlap is cut. Without it the encoder takes the samples back to
        // back and every hole moves all later audio earlier (measured: −12 ms, then −32 ms after a lost packet).
        'audiorate',
        'tolerance=1000000',
        'skip-to-first=true',
        '!',
        'audioconvert',
        '!',
        'audioresample',
        '!',
        'voaacenc',
        '!',
        'aacparse',
        '!',
        ...QUEUE,
        '!',
        audioTarget,
      ]
    : [];
  return [...video, ...audio];
}

function fileBackHalf(spec: Extract<SinkSpec, { kind: 'file' }>, hasAudio: boolean): string[] {
  if (spec.path.length === 0 || !spec.path.endsWith('.ts')) {
    throw new ConfigError(`the file sink writes MPEG-TS to a .ts path, got "${spec.path}"`, 'outputDir');
  }
  // MPEG-TS: every packet is self-contained, so a file cut short by SIGKILL stays playable; its stream
  // format carries SPS/PPS in-band, so mid-stream resolution changes pass (matroskamux refuses new caps,
  // mp4mux corrupts the frames around the switch). MPEG-TS also carries DTS, derived from PTS here: WebRTC
  // H.264 has no B-frames. Segmenting is done by the recorder (a new gst per file), not splitmuxsink:
  // with GStreamer 1.22 splitmuxsink(mpegtsmux) hung in 2–3 of 12 runs on the fixture, even video-only and
  // with unbounded queues, while plain mpegtsmux finished 40 of 40. (h264timestamper in this branch also
  // made the muxer wait forever for video, so it is only used for kvssink.)
  const front = frontHalf(
    'video/x-h264,stream-format=byte-stream,alignment=au',
    ['!', ...QUEUE, '!', 'mux.'],
    hasAudio,
    'mux.',
  );
  return [...front, 'mpegtsmux', 'name=mux', '!', 'filesink', `location=${spec.path}`];
}

const PROPERTY_NAME = /^[a-z][a-z0-9-]*$/;

function kvssinkBackHalf(spec: Extract<SinkSpec, { kind: 'kvssink' }>, hasAudio: boolean): string[] {
  if (!/^[a-zA-Z0-9_.-]{1,256}$/.test(spec.streamName)) {
    throw new ConfigError(`invalid Kinesis video stream name "${spec.streamName}"`, 'stream');
  }
  const props: string[] = [`stream-name=${spec.streamName}`];
  if (spec.awsRegion) props.push(`aws-region=${spec.awsRegion}`);
  for (const [name, value] of Object.entries(spec.properties ?? {})) {
    if (!PROPERTY_NAME.test(name))
      throw new ConfigError(`invalid kvssink property name "${name}"`, 'kvssink');
    props.push(`${name}=${String(value)}`);
  }
  // kvssink drops key frames without DTS (Matroska carries PTS only): h264timestamper fills DTS in.
  const front = frontHalf(
    'video/x-h264,stream-format=avc,alignment=au',
    ['!', 'h264timestamper', '!', ...QUEUE, '!', 'sink.'],
    hasAudio,
    'sink.',
  );
  return [...front, 'kvssink', 'name=sink', ...props];
}

/** argv for `gst-launch-1.0` (everything after the binary and its `-e`), reading the pipes of pipelineInputs(). */
export function buildPipelineArgs(spec: SinkSpec, options: PipelineOptions): string[] {
  switch (spec.kind) {
    case 'file':
      return fileBackHalf(spec, options.hasAudio);
    case 'kvssink':
      return kvssinkBackHalf(spec, options.hasAudio);
  }
}
