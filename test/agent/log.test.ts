import { expect, test } from '@playwright/test';
import { ChildProcessError, ConfigError, TimeoutError } from '../../agent/errors.js';
import { createLogger, errorFields, redact, redactString } from '../../agent/log.js';

function capture(level = 'debug') {
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const logger = createLogger({
    level,
    destination: {
      write(s: string) {
        raw.push(s);
        lines.push(JSON.parse(s) as Record<string, unknown>);
      },
    },
  });
  return { logger, lines, raw };
}

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const TOKEN = 'IQoJb3JpZ2luX2VjEXAMPLETOKEN';

test('credential-like keys are redacted at any depth, in objects and arrays', () => {
  const { logger, raw, lines } = capture();
  logger.info(
    {
      credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: SECRET },
      nested: {
        list: [{ SessionToken: TOKEN }, { deeper: [{ sessionToken: TOKEN, keep: 'visible' }] }],
        headers: { Authorization: `AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/x, Signature=abc` },
        'x-amz-security-token': TOKEN,
        ice: [{ urls: ['turn:1.2.3.4'], username: 'u', credential: 'turn-pass' }],
      },
      count: 3,
      checks: { credentials: false, token: 0 },
    },
    'with secrets',
  );
  const line = raw.join('');
  for (const secret of [SECRET, TOKEN, 'AKIAEXAMPLE', 'turn-pass', 'Signature=abc']) {
    expect(line).not.toContain(secret);
  }
  const l = lines[0]!;
  expect(l.credentials).toBe('[redacted]');
  const nested = l.nested as Record<string, unknown>;
  expect(nested['x-amz-security-token']).toBe('[redacted]');
  expect(nested.list).toEqual([
    { SessionToken: '[redacted]' },
    { deeper: [{ sessionToken: '[redacted]', keep: 'visible' }] },
  ]);
  expect(nested.headers).toEqual({ Authorization: '[redacted]' });
  expect(nested.ice).toEqual([{ urls: ['turn:1.2.3.4'], username: 'u', credential: '[redacted]' }]);
  expect(l.count).toBe(3);
  // Flags and counts under such keys are not secrets and stay readable.
  expect(l.checks).toEqual({ credentials: false, token: 0 });
  expect(l.msg).toBe('with secrets');
});

test('presigned URLs and the page token are cleaned inside strings, also in the message and bindings', () => {
  const url =
    'wss://kvs.example/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-ChannelARN=arn%3Aaws&X-Amz-Credential=AKIAEXAMPLE%2F20240101%2Fus-east-1&X-Amz-Date=20240101T000000Z&X-Amz-Security-Token=' +
    TOKEN +
    '&X-Amz-Signature=0123abcd&X-Amz-SignedHeaders=host';
  const pageUrl = 'http://127.0.0.1:1234/page/index.html#token=deadbeefcafe';
  const frameUrl = 'ws://127.0.0.1:1234/frames?token=deadbeefcafe&kind=video';
  const { logger, raw, lines } = capture();
  logger
    .child({ component: 'bridge' })
    .child({ page: pageUrl })
    .warn({ url, list: [frameUrl] }, `opening ${url}`);
  const line = raw.join('');
  for (const secret of [TOKEN, 'AKIAEXAMPLE', '0123abcd', 'deadbeefcafe']) expect(line).not.toContain(secret);
  // What is not secret stays readable.
  expect(lines[0]!.url).toContain('X-Amz-ChannelARN=arn%3Aaws');
  expect(lines[0]!.url).toContain('X-Amz-Date=20240101T000000Z');
  expect(lines[0]!.list).toEqual(['ws://127.0.0.1:1234/frames?token=[redacted]&kind=video']);
  expect(lines[0]!.page).toBe('http://127.0.0.1:1234/page/index.html#token=[redacted]');
  expect(
    redactString('Authorization: AWS4-HMAC-SHA256 Credential=AK/1, SignedHeaders=host, Signature=ff'),
  ).toBe('Authorization: AWS4-HMAC-SHA256 Credential=[redacted], SignedHeaders=host, Signature=[redacted]');
});

test('redact survives cycles, depth and __proto__ keys and never mutates its input', () => {
  const a: Record<string, unknown> = { name: 'a', token: 't' };
  a.self = a;
  let deep: Record<string, unknown> = { leaf: true };
  for (let i = 0; i < 50; i++) deep = { next: deep };
  const input = JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}') as Record<string, unknown>;
  const out = redact({ a, deep, input }) as Record<string, Record<string, unknown>>;
  expect(out.a!.self).toBe('[circular]');
  expect(out.a!.token).toBe('[redacted]');
  expect(a.token).toBe('t');
  expect(JSON.stringify(out.deep)).toContain('[too deep]');
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(Object.getPrototypeOf(out.input)).toBe(Object.prototype);
  expect(Object.keys(out.input!)).toEqual(['__proto__', 'ok']);
});

test('errors carry code, cause chain and, for children, pid, exit code, signal and last output', () => {
  const root = new Error('connect ECONNREFUSED 127.0.0.1:4566');
  (root as Error & { code: string }).code = 'ECONNREFUSED';
  const timeout = new TimeoutError('DescribeSignalingChannel did not finish', { cause: root });
  const child = new ChildProcessError(
    'gst-launch-1.0 exited with code 1',
    {
      child: 'gst',
      pid: 4242,
      exitCode: 1,
      signal: null,
      recentOutput: [
        ...Array.from({ length: 30 }, (_, i) => `line ${i}`),
        `kvssink: uploading to https://x/?X-Amz-Signature=abc123`,
      ],
    },
    { cause: timeout },
  );
  const { logger, lines } = capture();
  logger.error({ err: child }, 'pipeline failed');
  const err = lines[0]!.err as ReturnType<typeof errorFields>;
  expect(err).toMatchObject({
    type: 'ChildProcessError',
    code: 'CHILD_FAILED',
    message: 'gst-launch-1.0 exited with code 1',
    child: 'gst',
    pid: 4242,
    exitCode: 1,
    signal: null,
    cause: {
      type: 'TimeoutError',
      code: 'TIMEOUT',
      cause: { type: 'Error', code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:4566' },
    },
  });
  expect(err.recentOutput).toHaveLength(20);
  expect(err.recentOutput!.at(-1)).toBe('kvssink: uploading to https://x/?X-Amz-Signature=[redacted]');
  expect(err.stack).toContain('ChildProcessError');

  expect(errorFields(new ConfigError('bad port', '--health-port'))).toMatchObject({
    code: 'CONFIG_INVALID',
    field: '--health-port',
  });
  expect(errorFields('plain string')).toEqual({ type: 'string', message: 'plain string' });
  // A self-referencing cause chain ends.
  const loop = new Error('loop');
  (loop as { cause?: unknown }).cause = loop;
  expect(JSON.stringify(errorFields(loop))).toContain('cause chain truncated');
  // AWS SDK errors: HTTP status and request id.
  const aws = Object.assign(new Error('denied'), {
    name: 'AccessDeniedException',
    $metadata: { httpStatusCode: 403, requestId: 'req-1' },
  });
  expect(errorFields(aws)).toMatchObject({
    type: 'AccessDeniedException',
    httpStatusCode: 403,
    requestId: 'req-1',
  });
});

test('errors nested anywhere (not only under err) are serialized, not logged as {}', () => {
  const { logger, lines } = capture();
  logger.warn({ failures: [new TimeoutError('slow')] }, 'x');
  expect(lines[0]!.failures).toEqual([expect.objectContaining({ type: 'TimeoutError', code: 'TIMEOUT' })]);
});
