import { expect, test } from '@playwright/test';
import { measured, ViewerHarness } from './viewerHarness.js';

/**
 * Signaling renewal: the emulator closes viewer signaling sockets after 4 s (standing in for KVS's hour), the
 * page is told to renew at 3 s. Every renewal must open the new socket before the old one goes, while the
 * call and its frames go on.
 */
const MAX_AGE_MS = 4_000;
const RENEW_MS = 3_000;
let h: ViewerHarness;

test.beforeAll(async () => {
  test.setTimeout(90_000);
  h = await ViewerHarness.start({
    emulator: { viewerMaxConnectionAgeMs: MAX_AGE_MS },
    config: { signalingMaxAgeMs: RENEW_MS },
  });
});

test.afterAll(async () => {
  await h?.close();
});

test('signaling renewed before its maximum age, again and again, without a media gap', async () => {
  test.setTimeout(90_000);
  await h.master.waitForViewerConnected(30_000);
  await expect.poll(() => h.framesOf('video'), { timeout: 20_000 }).toBeGreaterThan(30);
  const from = Date.now();
  const before = await h.status();
  await expect
    .poll(async () => (await h.status()).counters.signalingRenewals - before.counters.signalingRenewals, {
      timeout: 30_000,
    })
    .toBeGreaterThanOrEqual(4);
  const to = Date.now();
  const after = await h.status();
  const gap = h.maxVideoGapMs(from, to);
  const stats = h.emulator.admin.stats();
  measured(
    `${after.counters.signalingRenewals - before.counters.signalingRenewals} renewals in ${to - from} ms: ` +
      `max video gap ${gap} ms; emulator closed ${stats['closed.max-age'] ?? 0} sockets at max age, ` +
      `replaced ${stats['replaced.viewer'] ?? 0}`,
  );
  expect(gap).toBeLessThan(1_000);
  expect(after.sessions).toBe(before.sessions);
  expect(after.state).toMatchObject({ signaling: 'open', peer: 'connected' });
  // Each socket was replaced by the page before the emulator's limit closed it.
  expect(stats['closed.max-age'] ?? 0).toBe(0);
  expect(after.counters.signalingReconnects).toBe(0);
  expect(h.messages('hello', from)).toEqual([]);
});
