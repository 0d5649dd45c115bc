import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from '@playwright/test';
import { helpText, loadConfig, optionTable } from '../../agent/config.js';
import { ConfigError } from '../../agent/errors.js';

const run = promisify(execFile);
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

test('--help documents every option with its environment variable', () => {
  const help = helpText();
  for (const row of optionTable()) {
    expect(help).toContain(row.flag);
    expect(help).toContain(row.env);
  }
});

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
