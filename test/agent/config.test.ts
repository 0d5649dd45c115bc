import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from '@playwright/test';
import {
  CHROMIUM_PATH,
  HEADLESS_SHELL_PATH,
  helpText,
  loadConfig,
  readChannelsFile,
} from '../../agent/config.js';
import { ConfigError } from '../../agent/errors.js';

const run = promisify(execFile);
/** A channels file for the option table's sample value (read by loadConfig). */
const FILES = mkdtempSync(resolve(tmpdir(), 'agent-config-'));
const CHANNELS_FILE = resolve(FILES, 'channels.json');
writeFileSync(CHANNELS_FILE, JSON.stringify({ 'cam-1': 'stream-1' }));
const ROOT = resolve(import.meta.dirname, '../..');

test('defaults are the user’s original setup', () => {
  const config = loadConfig([], {}, new Date(1_700_000_000_000));
  expect(config).toMatchObject({
    channel: 'webrtc-kvs-agent-channel',
    stream: 'webrtc-kvs-agent-stream',
    region: 'ap-northeast-1',
    clientId: 'viewer-1700000000000',
    sink: 'kvssink',
    retentionHours: 24,
    createStream: true,
    keyframeIntervalMs: 2000,
    headed: false,
  });
  expect(config.endpoint).toBeUndefined();
  expect(Object.isFrozen(config)).toBe(true);
});

test('flags win over environment, environment over defaults', () => {
  const env = {
    AWS_REGION: 'us-west-2',
    CHANNEL_NAME: 'from-env',
    KEYFRAME_INTERVAL_MS: '1500',
    HEADED: 'true',
  };
  const config = loadConfig(
    ['--channel', 'from-flag', '--no-headed', '--no-create-stream', '--endpoint', 'http://127.0.0.1:4566/'],
    env,
  );
  expect(config.channel).toBe('from-flag');
  expect(config.region).toBe('us-west-2');
  expect(config.keyframeIntervalMs).toBe(1500);
  expect(config.headed).toBe(false);
  expect(config.endpoint).toBe('http://127.0.0.1:4566');
  expect(config.createStream).toBe(false);
});

for (const [argv, env, field] of [
  [['--keyframe-interval-ms', 'soon'], {}, '--keyframe-interval-ms'],
  [[], { KEYFRAME_INTERVAL_MS: '20000' }, 'KEYFRAME_INTERVAL_MS'],
  [['--endpoint', 'ftp://example'], {}, '--endpoint'],
  [['--client-id', 'AWS_reserved'], {}, '--client-id'],
  [[], { AWS_REGION: 'Tokyo' }, 'AWS_REGION'],
  [['--sink', 'tape'], {}, '--sink'],
  [[], { HEADED: 'perhaps' }, 'HEADED'],
  [['--retention-hours', '-1'], {}, '--retention-hours'],
  [['--no-such-flag'], {}, '--no-such-flag'],
] as const) {
  test(`invalid ${field} is named in the error`, () => {
    let error: unknown;
    try {
      loadConfig([...argv], { ...env });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('CONFIG_INVALID');
    expect((error as ConfigError).message).toContain(field);
  });
}

/**
 * What the agent accepts, written down here independently of agent/config.ts: flag, environment variable,
 * the config field it sets, the default the help must state and the value loadConfig must return for it,
 * and one valid value with what it parses to. A new option fails these tests until it is written down here.
 */
type Row = [
  flag: string,
  env: string,
  key: string,
  helpDefault: string,
  value: unknown,
  sample: string,
  parsed: unknown,
];
// prettier-ignore
const EXPECTED_ROWS: Row[] = [
  ['channel', 'CHANNEL_NAME', 'channel', 'webrtc-kvs-agent-channel', 'webrtc-kvs-agent-channel', 'ch-1', 'ch-1'],
  ['channels-file', 'CHANNELS_FILE', 'channelsFile', 'none', undefined, CHANNELS_FILE, CHANNELS_FILE],
  ['stream', 'STREAM_NAME', 'stream', 'webrtc-kvs-agent-stream', 'webrtc-kvs-agent-stream', 'st.2', 'st.2'],
  ['region', 'AWS_REGION', 'region', 'ap-northeast-1', 'ap-northeast-1', 'eu-west-1', 'eu-west-1'],
  ['client-id', 'CLIENT_ID', 'clientId', 'viewer-<timestamp>', 'viewer-1700000000000', 'rec_1', 'rec_1'],
  ['endpoint', 'KVS_ENDPOINT', 'endpoint', 'real AWS', undefined, 'http://127.0.0.1:4566/', 'http://127.0.0.1:4566'],
  ['sink', 'SINK', 'sink', 'kvssink', 'kvssink', 'file', 'file'],
  ['retention-hours', 'RETENTION_HOURS', 'retentionHours', '24', 24, '0', 0],
  ['create-stream', 'CREATE_STREAM', 'createStream', 'true', true, 'false', false],
  ['output-dir', 'OUTPUT_DIR', 'outputDir', './recordings', './recordings', '/tmp/r', '/tmp/r'],
  ['segment-seconds', 'SEGMENT_SECONDS', 'segmentSeconds', '300', 300, '60', 60],
  ['keyframe-interval-ms', 'KEYFRAME_INTERVAL_MS', 'keyframeIntervalMs', '2000', 2000, '1000', 1000],
  ['duration', 'DURATION_SECONDS', 'durationSeconds', 'run until SIGINT/SIGTERM', undefined, '20', 20],
  ['headed', 'HEADED', 'headed', 'false', false, 'true', true],
  ['chromium-path', 'CHROMIUM_PATH', 'chromiumPath', '/usr/lib/chromium/chromium-headless-shell (with --headed: /usr/lib/chromium/chromium)', '/usr/lib/chromium/chromium-headless-shell', '/opt/c', '/opt/c'],
  ['gst-launch-path', 'GST_LAUNCH_PATH', 'gstLaunchPath', 'gst-launch-1.0', 'gst-launch-1.0', '/opt/gst', '/opt/gst'],
  ['web-root', 'WEB_ROOT', 'webRoot', 'dist/web', 'dist/web', 'web', 'web'],
  ['stop-budget', 'STOP_BUDGET_SECONDS', 'stopBudgetSeconds', '25', 25, '20', 20],
  ['metrics-address', 'METRICS_ADDRESS', 'metricsAddress', '127.0.0.1:9090', '127.0.0.1:9090', 'off', 'off'],
  ['emf-interval', 'EMF_INTERVAL_SECONDS', 'emfIntervalSeconds', '60', 60, '0', 0],
  ['signaling-renew-seconds', 'SIGNALING_RENEW_SECONDS', 'signalingRenewSeconds', '3000', 3000, '600', 600],
  ['log-level', 'LOG_LEVEL', 'logLevel', 'info', 'info', 'debug', 'debug'],
];
const EXPECTED_OPTIONS = EXPECTED_ROWS.map(([flag, env, key, helpDefault, def, text, value]) => ({
  flag,
  env,
  key,
  helpDefault,
  /** undefined: the field is absent by default. */
  default: def,
  sample: { text, value },
}));

/** `--help` as a user reads it: one line per option, `--flag [<value>]  ENV  description (default: …)`. */
function helpRows(): Map<string, { takesValue: boolean; env: string; helpDefault: string }> {
  const rows = new Map<string, { takesValue: boolean; env: string; helpDefault: string }>();
  for (const line of helpText().split('\n')) {
    const m = /^\s+--([a-z][a-z-]*)( <value>)?\s+([A-Z][A-Z0-9_]*)\s.*\(default: (.*)\)$/.exec(line);
    if (m) rows.set(m[1]!, { takesValue: !!m[2], env: m[3]!, helpDefault: m[4]! });
  }
  return rows;
}

test('--help lists exactly the options the agent has, each with its environment variable and default', () => {
  const rows = helpRows();
  expect([...rows.keys()].sort()).toEqual(EXPECTED_OPTIONS.map((o) => o.flag).sort());
  for (const o of EXPECTED_OPTIONS) {
    expect(rows.get(o.flag), o.flag).toEqual({
      takesValue: typeof o.default !== 'boolean',
      env: o.env,
      helpDefault: o.helpDefault,
    });
  }
  expect(helpText()).toMatch(/^\s+--help\s/m);
});

test('the defaults --help states are the values loadConfig returns, and nothing else is configured', () => {
  const config = loadConfig([], {}, new Date(1_700_000_000_000)) as unknown as Record<string, unknown>;
  // `channels` and `channelPerUnit` are derived from --channel, --stream and --channels-file, not options.
  expect(Object.keys(config).sort()).toEqual(
    [
      ...EXPECTED_OPTIONS.filter((o) => o.default !== undefined).map((o) => o.key),
      'channels',
      'channelPerUnit',
    ].sort(),
  );
  expect(config.channels).toEqual([
    { channel: 'webrtc-kvs-agent-channel', stream: 'webrtc-kvs-agent-stream' },
  ]);
  expect(config.channelPerUnit).toBe(false);
  for (const o of EXPECTED_OPTIONS) expect(config[o.key], o.flag).toEqual(o.default);
});

test('headless runs the headless shell, --headed the full Chromium; --chromium-path wins over both', () => {
  expect(loadConfig([], {}).chromiumPath).toBe(HEADLESS_SHELL_PATH);
  expect(loadConfig(['--headed'], {}).chromiumPath).toBe(CHROMIUM_PATH);
  expect(loadConfig([], { HEADED: 'true' }).chromiumPath).toBe(CHROMIUM_PATH);
  expect(loadConfig(['--headed', '--chromium-path', '/opt/c'], {}).chromiumPath).toBe('/opt/c');
  expect(loadConfig([], { CHROMIUM_PATH: '/opt/c' }).chromiumPath).toBe('/opt/c');
});

for (const o of EXPECTED_OPTIONS) {
  test(`--${o.flag} and ${o.env} set ${o.key}`, () => {
    const boolean = typeof o.default === 'boolean';
    const argv = boolean
      ? [o.sample.value ? `--${o.flag}` : `--no-${o.flag}`]
      : [`--${o.flag}`, o.sample.text];
    const fromFlag = loadConfig(argv, {}) as unknown as Record<string, unknown>;
    const fromEnv = loadConfig([], { [o.env]: o.sample.text }) as unknown as Record<string, unknown>;
    expect(fromFlag[o.key]).toEqual(o.sample.value);
    expect(fromEnv[o.key]).toEqual(o.sample.value);
    // The sample differs from the default, so the option really changed something.
    expect(o.sample.value).not.toEqual(o.default);
  });
}

test('the agent exits 2 on invalid configuration, naming the field, before touching anything', async () => {
  const error = await run(process.execPath, ['--import', 'tsx', 'agent/main.ts', '--segment-seconds', '0'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH },
  }).then(
    () => undefined,
    (err: unknown) => err as { code: number; stderr: string },
  );
  expect(error?.code).toBe(2);
  expect(error?.stderr).toContain('--segment-seconds');
});

test('the version kvssink reports matches package.json', async () => {
  const { AGENT_VERSION } = await import('../../agent/version.js');
  const pkg = JSON.parse(await readFile(resolve(ROOT, 'package.json'), 'utf8')) as { version: string };
  expect(AGENT_VERSION).toBe(pkg.version);
});

test('several channels: --channel NAME=STREAM repeated, or CHANNEL_NAME comma-separated; one channel keeps --stream', () => {
  const one = loadConfig(['--channel', 'cam', '--stream', 'cam-stream'], {});
  expect(one.channels).toEqual([{ channel: 'cam', stream: 'cam-stream' }]);
  const flags = loadConfig(['--channel', 'a=sa', '--channel', 'b=sb'], {});
  expect(flags.channels).toEqual([
    { channel: 'a', stream: 'sa' },
    { channel: 'b', stream: 'sb' },
  ]);
  expect([flags.channel, flags.stream]).toEqual(['a', 'sa']);
  const env = loadConfig([], { CHANNEL_NAME: 'x=sx,y=sy,z=sz' });
  expect(env.channels.map((c) => c.channel)).toEqual(['x', 'y', 'z']);
  const bad: Array<[string[], Record<string, string>, RegExp]> = [
    [
      ['--channel', 'a=sa', '--channel', 'b'],
      {},
      /^--channel: with several channels each needs NAME=STREAM \("b"/,
    ],
    [['--channel', 'a=s', '--channel', 'b=s'], {}, /^--channel: stream "s" is listed twice/],
    [['--channel', 'a=s1', '--channel', 'a=s2'], {}, /^--channel: channel "a" is listed twice/],
    [[], { CHANNEL_NAME: 'a=s1,b c=s2' }, /^CHANNEL_NAME: must be NAME or NAME=STREAM/],
  ];
  for (const [argv, e, message] of bad) {
    let error: unknown;
    try {
      loadConfig(argv, e);
    } catch (err) {
      error = err;
    }
    expect(error, argv.join(' ') || JSON.stringify(e)).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toMatch(message);
  }
});

test('--channels-file: channel → stream from JSON, read again by readChannelsFile; broken files name the problem', () => {
  const file = resolve(FILES, 'two.json');
  writeFileSync(file, JSON.stringify({ a: 'sa', b: 'sb' }));
  const config = loadConfig(['--channels-file', file], {});
  expect(config.channels).toEqual([
    { channel: 'a', stream: 'sa' },
    { channel: 'b', stream: 'sb' },
  ]);
  // A file's channels can change on SIGHUP, so even one of them is logged per unit.
  writeFileSync(resolve(FILES, 'one.json'), JSON.stringify({ a: 'sa' }));
  expect(loadConfig(['--channels-file', resolve(FILES, 'one.json')], {}).channelPerUnit).toBe(true);
  expect(loadConfig(['--channel', 'a=sa', '--channel', 'b=sb'], {}).channelPerUnit).toBe(true);
  expect(() => loadConfig(['--channels-file', file, '--channel', 'x'], {})).toThrow(
    /^--channel: give either channels or a channels file, not both/,
  );
  const cases: Array<[string, RegExp]> = [
    ['{"a": "s", "b": "s"}', /stream "s" is listed twice/],
    ['{}', /lists no channel/],
    ['{"a b": "s"}', /at "a b": channel names are/],
    ['{"a": 3}', /at "a"/],
    ['[1, 2', /not JSON/],
  ];
  for (const [text, message] of cases) {
    writeFileSync(file, text);
    expect(() => readChannelsFile(file), text).toThrow(message);
  }
  expect(() => readChannelsFile(resolve(FILES, 'missing.json'))).toThrow(/cannot be read \(ENOENT\)/);
});
