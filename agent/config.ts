import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { ConfigError } from './errors.js';

/**
 * The agent's one configuration: every option has an environment variable and a flag (flags win), a default
 * and a description. It is validated once at start into an immutable object; everything else receives plain
 * values from it.
 */

interface OptionSpec {
  flag: string;
  env: string;
  /** `boolean` options take no value on the command line (`--headed`, `--no-headed`). */
  type: 'string' | 'boolean';
  description: string;
  defaultText: string;
}

/**
 * Debian's Chromium builds. Headless, the agent runs the headless shell: the same Blink and WebRTC without
 * the browser UI, ≈ 120 MiB less PSS for the same call (measured, Chromium 156). A window needs the full one.
 */
export const HEADLESS_SHELL_PATH = '/usr/lib/chromium/chromium-headless-shell';
export const CHROMIUM_PATH = '/usr/lib/chromium/chromium';

/** The agent's Chromium when --chromium-path is not given. */
export function defaultChromiumPath(headed: boolean): string {
  return headed ? CHROMIUM_PATH : HEADLESS_SHELL_PATH;
}

/** The Chromium the agent would run (CHROMIUM_PATH, or the default): for scripts and tests that start it themselves. */
export function agentChromiumPath(headed = false): string {
  return process.env.CHROMIUM_PATH ?? defaultChromiumPath(headed);
}

const OPTIONS = {
  channel: {
    flag: 'channel',
    env: 'CHANNEL_NAME',
    type: 'string',
    description:
      'Signaling channel to join as a viewer; several as NAME=STREAM, repeated (CHANNEL_NAME: comma-separated)',
    defaultText: 'webrtc-kvs-agent-channel',
  },
  channelsFile: {
    flag: 'channels-file',
    env: 'CHANNELS_FILE',
    type: 'string',
    description:
      'JSON file mapping channel → stream ({"cam1": "stream-1", …}) instead of --channel; re-read on SIGHUP',
    defaultText: 'none',
  },
  stream: {
    flag: 'stream',
    env: 'STREAM_NAME',
    type: 'string',
    description: 'Kinesis video stream to record into (used by the kvssink sink and in file names)',
    defaultText: 'webrtc-kvs-agent-stream',
  },
  region: {
    flag: 'region',
    env: 'AWS_REGION',
    type: 'string',
    description: 'AWS region',
    defaultText: 'ap-northeast-1',
  },
  clientId: {
    flag: 'client-id',
    env: 'CLIENT_ID',
    type: 'string',
    description: 'Viewer client id (1-256 of [a-zA-Z0-9_.-], not starting with AWS_)',
    defaultText: 'viewer-<timestamp>',
  },
  endpoint: {
    flag: 'endpoint',
    env: 'KVS_ENDPOINT',
    type: 'string',
    description: 'Control-plane endpoint override, e.g. the local emulator http://127.0.0.1:4566',
    defaultText: 'real AWS',
  },
  sink: {
    flag: 'sink',
    env: 'SINK',
    type: 'string',
    description: 'Where media goes: kvssink (the Kinesis video stream) or file (MPEG-TS segments)',
    defaultText: 'kvssink',
  },
  retentionHours: {
    flag: 'retention-hours',
    env: 'RETENTION_HOURS',
    type: 'string',
    description: 'Retention of the stream when the agent creates it (0 = keep nothing: no playback)',
    defaultText: '24',
  },
  createStream: {
    flag: 'create-stream',
    env: 'CREATE_STREAM',
    type: 'boolean',
    description: 'Create the stream if it does not exist (--no-create-stream to require it)',
    defaultText: 'true',
  },
  outputDir: {
    flag: 'output-dir',
    env: 'OUTPUT_DIR',
    type: 'string',
    description: 'Directory for the file sink',
    defaultText: './recordings',
  },
  segmentSeconds: {
    flag: 'segment-seconds',
    env: 'SEGMENT_SECONDS',
    type: 'string',
    description: 'File sink: start a new file after this many seconds (at the next key frame)',
    defaultText: '300',
  },
  keyframeIntervalMs: {
    flag: 'keyframe-interval-ms',
    env: 'KEYFRAME_INTERVAL_MS',
    type: 'string',
    description: 'Ask the master for a key frame when the last one is older than this',
    defaultText: '2000',
  },
  durationSeconds: {
    flag: 'duration',
    env: 'DURATION_SECONDS',
    type: 'string',
    description: 'Stop cleanly after this many seconds of running',
    defaultText: 'run until SIGINT/SIGTERM',
  },
  headed: {
    flag: 'headed',
    env: 'HEADED',
    type: 'boolean',
    description: 'Show the viewer browser window (needs a display)',
    defaultText: 'false',
  },
  chromiumPath: {
    flag: 'chromium-path',
    env: 'CHROMIUM_PATH',
    type: 'string',
    description: 'Chromium binary (not the /usr/bin/chromium wrapper script)',
    defaultText: `${HEADLESS_SHELL_PATH} (with --headed: ${CHROMIUM_PATH})`,
  },
  gstLaunchPath: {
    flag: 'gst-launch-path',
    env: 'GST_LAUNCH_PATH',
    type: 'string',
    description: 'gst-launch-1.0 binary',
    defaultText: 'gst-launch-1.0',
  },
  webRoot: {
    flag: 'web-root',
    env: 'WEB_ROOT',
    type: 'string',
    description: 'Built viewer page (vite build output)',
    defaultText: 'dist/web',
  },
  stopBudgetSeconds: {
    flag: 'stop-budget',
    env: 'STOP_BUDGET_SECONDS',
    type: 'string',
    description:
      'Seconds from SIGTERM to exit: drain, last fragment persisted, children killed when their share runs out (keep below the task stopTimeout)',
    defaultText: '25',
  },
  metricsAddress: {
    flag: 'metrics-address',
    env: 'METRICS_ADDRESS',
    type: 'string',
    description: 'host:port of /healthz, /readyz and /metrics (Prometheus); "off" disables it',
    defaultText: '127.0.0.1:9090',
  },
  emfIntervalSeconds: {
    flag: 'emf-interval',
    env: 'EMF_INTERVAL_SECONDS',
    type: 'string',
    description:
      'Seconds between CloudWatch EMF metric lines in the log (one per channel, and one at stop; 0 = off)',
    defaultText: '60',
  },
  signalingRenewSeconds: {
    flag: 'signaling-renew-seconds',
    env: 'SIGNALING_RENEW_SECONDS',
    type: 'string',
    description:
      'Open a new signaling socket after this long, before KVS closes it at 1 hour (the call goes on)',
    defaultText: '3000',
  },
  logLevel: {
    flag: 'log-level',
    env: 'LOG_LEVEL',
    type: 'string',
    description: 'trace, debug, info, warn, error',
    defaultText: 'info',
  },
} as const satisfies Record<string, OptionSpec>;

type OptionKey = keyof typeof OPTIONS;

const clientIdPattern = /^(?!AWS_)[a-zA-Z0-9_.-]{1,256}$/;

const intFromString = (min: number, max: number) =>
  z.coerce
    .number({ error: 'must be a number' })
    .int({ error: 'must be a whole number' })
    .min(min, { error: `must be at least ${min}` })
    .max(max, { error: `must be at most ${max}` });

const NAME = '[a-zA-Z0-9_.-]{1,256}';
const CHANNEL_ITEM = `${NAME}(=${NAME})?`;

const schema = z
  .object({
    channel: z
      .string()
      .regex(new RegExp(`^${CHANNEL_ITEM}(,${CHANNEL_ITEM})*$`), {
        error: 'must be NAME or NAME=STREAM (1-256 characters of a-z A-Z 0-9 _ . -), comma-separated',
      })
      .default('webrtc-kvs-agent-channel'),
    channelsFile: z.string().min(1).optional(),
    stream: z
      .string()
      .regex(/^[a-zA-Z0-9_.-]{1,256}$/, { error: 'must be 1-256 characters of a-z A-Z 0-9 _ . -' })
      .default('webrtc-kvs-agent-stream'),
    region: z
      .string()
      .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, { error: 'must look like ap-northeast-1' })
      .default('ap-northeast-1'),
    clientId: z
      .string()
      .regex(clientIdPattern, {
        error: 'must be 1-256 characters of a-z A-Z 0-9 _ . - and not start with AWS_',
      })
      .optional(),
    endpoint: z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
      .transform((u) => u.replace(/\/+$/, ''))
      .optional(),
    sink: z.enum(['kvssink', 'file'], { error: 'must be kvssink or file' }).default('kvssink'),
    retentionHours: intFromString(0, 87_600).default(24),
    createStream: z.boolean().default(true),
    outputDir: z.string().min(1).default('./recordings'),
    segmentSeconds: intFromString(1, 86_400).default(300),
    keyframeIntervalMs: intFromString(500, 9_000).default(2000),
    durationSeconds: intFromString(1, 365 * 86_400).optional(),
    headed: z.boolean().default(false),
    chromiumPath: z.string().min(1).optional(),
    gstLaunchPath: z.string().min(1).default('gst-launch-1.0'),
    webRoot: z.string().min(1).default('dist/web'),
    stopBudgetSeconds: intFromString(5, 3_600).default(25),
    metricsAddress: z
      .string()
      .regex(/^(off|(\[[0-9a-fA-F:]+\]|[a-zA-Z0-9.-]+):\d{1,5})$/, {
        error: 'must be host:port (e.g. 0.0.0.0:9090) or off',
      })
      .refine((v) => v === 'off' || Number(v.slice(v.lastIndexOf(':') + 1)) <= 65_535, {
        error: 'port must be at most 65535',
      })
      .default('127.0.0.1:9090'),
    emfIntervalSeconds: intFromString(0, 3_600).default(60),
    signalingRenewSeconds: intFromString(5, 3_540).default(3_000),
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  })
  .strict();

/** One channel the agent records, and the stream it records into. */
export interface ChannelEntry {
  readonly channel: string;
  readonly stream: string;
}

export type AgentConfig = Readonly<
  Omit<z.infer<typeof schema>, 'clientId' | 'chromiumPath'> & {
    clientId: string;
    chromiumPath: string;
    /** Every channel to record, in the order given; `channel` and `stream` are the first one's. */
    channels: readonly ChannelEntry[];
    /**
     * Several channels, or a channels file (the set can change on SIGHUP): each unit's log lines carry their
     * own `channel`; otherwise the one channel is bound once for the whole process.
     */
    channelPerUnit: boolean;
  }
>;

const BOOLEAN_TRUE = new Set(['1', 'true', 'yes', 'on']);
const BOOLEAN_FALSE = new Set(['0', 'false', 'no', 'off', '']);

/** Reads flags and environment into a validated config, or throws ConfigError naming the field. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv, now = new Date()): AgentConfig {
  const parseOptions: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {
    help: { type: 'boolean' },
  };
  for (const spec of Object.values(OPTIONS)) {
    parseOptions[spec.flag] = { type: spec.type, ...(spec.flag === 'channel' ? { multiple: true } : {}) };
    if (spec.type === 'boolean') parseOptions[`no-${spec.flag}`] = { type: 'boolean' };
  }
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    values = parseArgs({
      args: [...argv],
      options: parseOptions,
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    throw new ConfigError(`${err instanceof Error ? err.message : String(err)} (see --help)`);
  }

  const raw: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(OPTIONS) as [OptionKey, OptionSpec][]) {
    const fromFlag = values[spec.flag];
    const negated = spec.type === 'boolean' ? values[`no-${spec.flag}`] : undefined;
    const fromEnv = env[spec.env];
    if (spec.type === 'boolean') {
      if (fromFlag === true) raw[key] = true;
      else if (negated === true) raw[key] = false;
      else if (fromEnv !== undefined) {
        const v = fromEnv.trim().toLowerCase();
        if (BOOLEAN_TRUE.has(v)) raw[key] = true;
        else if (BOOLEAN_FALSE.has(v)) raw[key] = false;
        else throw new ConfigError(`${spec.env}: must be true or false, got "${fromEnv}"`, spec.env);
      }
    } else if (typeof fromFlag === 'string') {
      raw[key] = fromFlag;
    } else if (Array.isArray(fromFlag) && fromFlag.length > 0) {
      raw[key] = fromFlag.join(',');
    } else if (fromEnv !== undefined && fromEnv !== '') {
      raw[key] = fromEnv;
    }
  }

  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = (issue?.path[0] as OptionKey | undefined) ?? 'channel';
    const spec: OptionSpec = OPTIONS[key];
    const source = values[spec.flag] !== undefined ? `--${spec.flag}` : spec.env;
    throw new ConfigError(`${source}: ${issue?.message ?? 'invalid value'}`, source);
  }
  const { clientId, ...rest } = parsed.data;
  const channelSource = values.channel !== undefined ? '--channel' : 'CHANNEL_NAME';
  let channels: ChannelEntry[];
  if (rest.channelsFile !== undefined) {
    if (raw.channel !== undefined)
      throw new ConfigError(
        `${channelSource}: give either channels or a channels file, not both`,
        channelSource,
      );
    channels = readChannelsFile(rest.channelsFile);
  } else {
    channels = channelEntries(rest.channel, rest.stream, channelSource);
  }
  return Object.freeze({
    ...rest,
    channel: channels[0]!.channel,
    stream: channels[0]!.stream,
    channels: Object.freeze(channels),
    channelPerUnit: channels.length > 1 || rest.channelsFile !== undefined,
    clientId: clientId ?? `viewer-${now.getTime()}`,
    chromiumPath: rest.chromiumPath ?? defaultChromiumPath(rest.headed),
  });
}

const channelsFileSchema = z
  .record(
    z.string(),
    z
      .string()
      .regex(new RegExp(`^${NAME}$`), { error: 'stream names are 1-256 characters of a-z A-Z 0-9 _ . -' }),
  )
  .refine((r) => Object.keys(r).length > 0, { error: 'lists no channel' });

/**
 * The channels file (`--channels-file`): a JSON object mapping channel → stream. Read at start and again on
 * SIGHUP; a broken file is a ConfigError naming the file and what is wrong, and the agent keeps what it has.
 */
export function readChannelsFile(path: string): ChannelEntry[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${path}: cannot be read (${errorCode(err)})`, 'channelsFile');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(
      `${path}: not JSON (${err instanceof Error ? err.message : String(err)})`,
      'channelsFile',
    );
  }
  const parsed = channelsFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const at = issue?.path.length ? ` at "${issue.path.join('.')}"` : '';
    throw new ConfigError(`${path}${at}: ${issue?.message ?? 'invalid'}`, 'channelsFile');
  }
  const badKey = Object.keys(parsed.data).find((k) => !new RegExp(`^${NAME}$`).test(k));
  if (badKey !== undefined)
    throw new ConfigError(
      `${path} at "${badKey}": channel names are 1-256 characters of a-z A-Z 0-9 _ . -`,
      'channelsFile',
    );
  const list = Object.entries(parsed.data)
    .map(([channel, stream]) => `${channel}=${stream}`)
    .join(',');
  return channelEntries(list, '', path);
}

function errorCode(err: unknown): string {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : String(err);
}

/**
 * `cam` (one channel into --stream) or `cam1=stream1,cam2=stream2`: with several channels each names its
 * stream (KVS takes one producer per stream), and neither a channel nor a stream may appear twice.
 */
function channelEntries(list: string, defaultStream: string, source: string): ChannelEntry[] {
  const items = list.split(',').map((item) => {
    const [channel, stream] = item.split('=') as [string, string | undefined];
    return { channel, stream };
  });
  if (items.length > 1) {
    const missing = items.find((i) => i.stream === undefined);
    if (missing)
      throw new ConfigError(
        `${source}: with several channels each needs NAME=STREAM ("${missing.channel}" has no stream)`,
        source,
      );
  }
  const entries = items.map((i) => ({ channel: i.channel, stream: i.stream ?? defaultStream }));
  for (const field of ['channel', 'stream'] as const) {
    const seen = new Set<string>();
    for (const e of entries) {
      if (seen.has(e[field]))
        throw new ConfigError(`${source}: ${field} "${e[field]}" is listed twice`, source);
      seen.add(e[field]);
    }
  }
  return entries;
}

export function wantsHelp(argv: readonly string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}

/** The `--help` text, generated from the same table the parser uses so the two cannot drift apart. */
export function helpText(): string {
  const rows = Object.values(OPTIONS).map((o: OptionSpec) => {
    const flag = o.type === 'boolean' ? `--${o.flag}` : `--${o.flag} <value>`;
    return `  ${flag.padEnd(30)} ${o.env.padEnd(22)} ${o.description} (default: ${o.defaultText})`;
  });
  return [
    'Usage: webrtc-kvs-agent [options]',
    '',
    'Joins a Kinesis Video Streams signaling channel as a viewer and records the master’s H.264 + Opus',
    '(Opus converted to AAC). Credentials come from the standard AWS chain (env, ECS task role, SSO, profile).',
    '',
    `  ${'flag'.padEnd(30)} ${'environment'.padEnd(22)} description`,
    ...rows,
    `  ${'--help'.padEnd(30)} ${''.padEnd(22)} Show this text`,
    '',
  ].join('\n');
}

/** Rows for the README configuration table. */
export function optionTable(): Array<{ flag: string; env: string; description: string; default: string }> {
  return Object.values(OPTIONS).map((o: OptionSpec) => ({
    flag: `--${o.flag}`,
    env: o.env,
    description: o.description,
    default: o.defaultText,
  }));
}
