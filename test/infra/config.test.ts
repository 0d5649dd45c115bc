import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { configFromContext, InfraConfigError, parseConfig } from '../../infra/lib/config.js';

test('defaults are the user’s original setup on ARM64 Fargate', () => {
  expect(parseConfig({})).toEqual({
    stackName: 'WebrtcKvsAgent',
    region: 'ap-northeast-1',
    channelName: 'webrtc-kvs-agent-channel',
    streamName: 'webrtc-kvs-agent-stream',
    createChannel: true,
    createStream: true,
    retentionHours: 24,
    cpu: 1024,
    memoryMiB: 2048,
    architecture: 'arm64',
    desiredCount: 1,
    imageSource: 'asset',
    ecrRepositoryName: 'webrtc-kvs-agent',
    createEcrRepository: true,
    imageTag: 'latest',
    logRetentionDays: 30,
    stopBudgetSeconds: 25,
    emfIntervalSeconds: 60,
    logLevel: 'info',
    noMediaMinutes: 5,
    restartThreshold: 3,
    restartWindowMinutes: 15,
    retainData: false,
  });
  expect(Object.isFrozen(parseConfig({}))).toBe(true);
});

for (const [raw, field] of [
  [{ desiredCount: 2 }, 'desiredCount'], // two agents on one channel
  [{ cpu: 1000 }, 'cpu'],
  [{ cpu: 1024, memoryMiB: 1024 }, 'memoryMiB'], // not a Fargate size
  [{ logRetentionDays: 31 }, 'logRetentionDays'],
  [{ architecture: 'arm' }, 'architecture'],
  [{ createStream: 'yes' }, 'createStream'],
  [{ channelName: 'has space' }, 'channelName'],
  [{ retentionHours: 0 }, 'retentionHours'],
  [{ stopBudgetSeconds: 116 }, 'stopBudgetSeconds'], // stopTimeout would exceed Fargate's 120 s
  [{ emfIntervalSeconds: 120 }, 'emfIntervalSeconds'],
  [{ alarmEmail: 'not-an-address' }, 'alarmEmail'],
  [{ region: 'Tokyo' }, 'region'],
  [{ unknownKey: 1 }, '(config)'],
] as const) {
  test(`invalid ${field} is refused, naming the field`, () => {
    expect(() => parseConfig(raw)).toThrow(InfraConfigError);
    expect(() => parseConfig(raw)).toThrow(`infra config ${field}`);
  });
}

test('context strings (-c key=value) are coerced; a config file is merged under the context', () => {
  const dir = mkdtempSync(join(tmpdir(), 'infra-config-'));
  const file = join(dir, 'prod.json');
  writeFileSync(
    file,
    JSON.stringify({ channelName: 'from-file', desiredCount: 0, cpu: 2048, memoryMiB: 4096 }),
  );
  const context: Record<string, unknown> = {
    configFile: file,
    desiredCount: '1',
    createStream: 'false',
    architecture: 'x86_64',
    // CDK's own context keys are not ours and are ignored.
    '@aws-cdk/core:newStyleStackSynthesis': true,
  };
  const config = configFromContext((key) => context[key]);
  expect(config).toMatchObject({
    channelName: 'from-file',
    desiredCount: 1,
    createStream: false,
    architecture: 'x86_64',
    cpu: 2048,
    memoryMiB: 4096,
  });
  writeFileSync(file, JSON.stringify({ channelNmae: 'typo' }));
  expect(() => configFromContext((key) => context[key])).toThrow(InfraConfigError);
  expect(() =>
    configFromContext((key) => (key === 'configFile' ? join(dir, 'missing.json') : undefined)),
  ).toThrow(/cannot read/);
});
