import { expect, test } from '@playwright/test';
import type { PageLog } from '../../../agent/bridge/controlProtocol.js';
import { pageLogEntry, PAGE_LOG_LIMITS } from '../../../agent/bridge/pageLog.js';
import { createLogger } from '../../../agent/log.js';

function logPage(message: PageLog): Record<string, unknown> {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    level: 'debug',
    base: { channel: 'agent-channel', session: 'agent-session' },
    destination: { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) },
  });
  const entry = pageLogEntry(message);
  logger.child({ component: 'page' })[entry.level](entry.fields, entry.msg);
  return lines[0]!;
}

test('page data is nested under `page` and cannot forge level, channel, session, msg or time', () => {
  const line = logPage({
    type: 'log',
    level: 'info',
    msg: 'ice state',
    data: {
      level: 'fatal',
      channel: 'someone-else',
      session: 'forged',
      msg: 'forged message',
      time: 0,
      component: 'agent',
      ice: 'connected',
    },
  });
  expect(line.level).toBe('info');
  expect(line.channel).toBe('agent-channel');
  expect(line.session).toBe('agent-session');
  expect(line.component).toBe('page');
  expect(line.msg).toBe('page: ice state');
  expect(typeof line.time).toBe('string');
  expect(line.page).toEqual({
    level: 'fatal',
    channel: 'someone-else',
    session: 'forged',
    msg: 'forged message',
    time: 0,
    component: 'agent',
    ice: 'connected',
  });
  // Nothing but the logger's own keys and `page` at the top level.
  expect(Object.keys(line).sort()).toEqual([
    'channel',
    'component',
    'level',
    'msg',
    'page',
    'session',
    'time',
  ]);
});

test('size, depth, key count and string length are bounded', () => {
  let deep: unknown = 'bottom';
  for (let i = 0; i < 20; i++) deep = { d: deep };
  const many = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`k${i}`, i]));
  const entry = pageLogEntry({
    type: 'log',
    level: 'warn',
    msg: 'x'.repeat(10_000),
    data: { deep, many, long: 'y'.repeat(100_000), list: Array.from({ length: 1000 }, (_, i) => i) },
  });
  const json = JSON.stringify(entry);
  expect(json.length).toBeLessThan(20_000);
  expect(entry.msg.length).toBeLessThan(PAGE_LOG_LIMITS.msgChars + 50);
  const page = entry.fields.page!;
  expect(JSON.stringify(page.deep)).toContain('[too deep]');
  expect(Object.keys(page.many as object).length).toBeLessThanOrEqual(PAGE_LOG_LIMITS.keysPerObject + 1);
  expect((page.many as Record<string, unknown>)._truncatedKeys).toBe(500 - PAGE_LOG_LIMITS.keysPerObject);
  expect((page.long as string).length).toBeLessThan(PAGE_LOG_LIMITS.stringChars + 50);
  expect((page.list as unknown[]).length).toBe(PAGE_LOG_LIMITS.itemsPerArray + 1);

  // The total budget holds even when every object stays under its own key limit.
  const wide = Object.fromEntries(
    Array.from({ length: 30 }, (_, i) => [
      `o${i}`,
      Object.fromEntries(Array.from({ length: 30 }, (_, j) => [`k${j}`, j])),
    ]),
  );
  const counted = JSON.stringify(pageLogEntry({ type: 'log', level: 'info', msg: 'm', data: wide }));
  expect((counted.match(/"k\d+":/g) ?? []).length).toBeLessThanOrEqual(PAGE_LOG_LIMITS.totalEntries);
});

test('hostile shapes: __proto__, non-JSON values, secrets are handled', () => {
  const data = JSON.parse(
    '{"__proto__": {"polluted": 1}, "url": "ws://x/frames?token=abc&kind=video"}',
  ) as Record<string, unknown>;
  const line = logPage({
    type: 'log',
    level: 'error',
    msg: 'see ws://x/?X-Amz-Signature=feed',
    data: { ...data, sessionToken: 'secret-token', n: Number.NaN },
  });
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(JSON.stringify(line)).not.toContain('secret-token');
  expect(JSON.stringify(line)).not.toContain('feed');
  expect(JSON.stringify(line)).not.toContain('token=abc');
  expect((line.page as Record<string, unknown>).n).toBe('NaN');
  expect(line.level).toBe('error');
  expect(pageLogEntry({ type: 'log', level: 'info', msg: 'no data' }).fields).toEqual({});
  expect(pageLogEntry({ type: 'log', level: 'info', msg: 'empty', data: {} }).fields).toEqual({});
});
