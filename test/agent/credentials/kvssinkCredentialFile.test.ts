import { readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { expect, test } from '@playwright/test';
import type { AwsCredentialIdentity } from '@smithy/types';
import {
  formatCredentialLine,
  KvssinkCredentialFile,
} from '../../../agent/credentials/kvssinkCredentialFile.js';
import { createLogger } from '../../../agent/log.js';

const logger = createLogger({ level: 'silent' });

test('temporary credentials use the 5-token form with a 20-character UTC expiry', () => {
  const line = formatCredentialLine({
    accessKeyId: 'ASIAEXAMPLE',
    secretAccessKey: 'secret/with+chars',
    sessionToken: 'token==',
    expiration: new Date('2026-11-24T12:34:56.789Z'),
  });
  expect(line).toBe('CREDENTIALS ASIAEXAMPLE 2026-11-24T12:34:56Z secret/with+chars token==\n');
  expect(line.split(' ')[2]).toHaveLength(20);
});

test('long-term keys use the 3-token form', () => {
  expect(formatCredentialLine({ accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 's' })).toBe(
    'CREDENTIALS AKIAEXAMPLE s\n',
  );
});

test('credentials with whitespace are refused rather than written ambiguously', () => {
  expect(() => formatCredentialLine({ accessKeyId: 'A B', secretAccessKey: 's' })).toThrow('whitespace');
});

test('the file is private, rewritten atomically and refreshed before expiry', async () => {
  let n = 0;
  const issued: AwsCredentialIdentity[] = [];
  const provider = () => {
    n++;
    // Expires in 100 s: 10 s before the 90 s refresh margin, so the writer must refresh on its own soon.
    const c = {
      accessKeyId: `ASIA${n}`,
      secretAccessKey: `secret${n}`,
      sessionToken: `token${n}`,
      expiration: new Date(Date.now() + 100_000),
    };
    issued.push(c);
    return Promise.resolve(c);
  };
  const file = new KvssinkCredentialFile({ provider, logger });
  await file.start();
  try {
    expect((await stat(file.path)).mode & 0o777).toBe(0o600);
    expect((await stat(dirname(file.path))).mode & 0o777).toBe(0o700);
    const first = await readFile(file.path, 'utf8');
    expect(first).toMatch(/^CREDENTIALS ASIA\d+ \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ secret\d+ token\d+\n$/);
    // 10 s before the refresh margin the writer schedules itself at ≥ 5 s: wait for a new line.
    await expect.poll(async () => readFile(file.path, 'utf8'), { timeout: 20_000 }).not.toBe(first);
  } finally {
    await file.close();
  }
  await expect(stat(file.path)).rejects.toThrow();
});

test('start fails loudly when no credentials can be resolved', async () => {
  const file = new KvssinkCredentialFile({
    provider: () => Promise.reject(new Error('Could not load credentials from any providers')),
    logger,
  });
  await expect(file.start()).rejects.toThrow('Could not load credentials');
});
