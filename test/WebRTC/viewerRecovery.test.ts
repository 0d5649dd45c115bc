import { expect, test } from '@playwright/test';
import { CLIENT_ID, measured, ViewerHarness } from './viewerHarness.js';

/**
 * The viewer page when the master goes away: reloaded, or gone for longer than the channel's message TTL
 * (5 s here instead of the default 60 s, so that a queued offer expires within the test). Recovery times
 * are printed; the bounds are the (≤ 5 s after the master answers, ≤ 10 s after it is back).
 */
test.describe.configure({ mode: 'serial' });

const TTL_SECONDS = 5;
let h: ViewerHarness;

test.beforeAll(async () => {
  test.setTimeout(90_000);
  h = await ViewerHarness.start({ messageTtlSeconds: TTL_SECONDS });
  await h.master.waitForViewerConnected(30_000);
  await expect.poll(() => h.framesOf('video'), { timeout: 20_000 }).toBeGreaterThan(30);
});

test.afterAll(async () => {
  await h?.close();
});

/** The SSRC of the newest video frame. */
function lastSsrc(): number {
  return h.frames.findLast((f) => f.value.header.kind === 'video')!.value.header.ssrc;
}

/** First video frame of another SSRC (a new master peer) received at or after `since`. */
function firstNewFrame(since: number, oldSsrc: number): number | undefined {
  return h.frames.find(
    (f) => f.at >= since && f.value.header.kind === 'video' && f.value.header.ssrc !== oldSsrc,
  )?.at;
}

test('master page reloaded: the same peer connection restarts ICE, frames again soon after the answer', async () => {
  const before = await h.status();
  const oldSsrc = lastSsrc();
  const reloadAt = Date.now();
  await h.master.reload();
  const masterBackAt = Date.now();
  await expect.poll(() => firstNewFrame(reloadAt, oldSsrc), { timeout: 40_000 }).toBeDefined();
  const framesAt = firstNewFrame(reloadAt, oldSsrc)!;
  // From the reload on: the new master can answer before reload() has returned.
  const answeredAt = h.logs('SDP answer applied', reloadAt).at(0)?.at;
  const disconnectedAt = h.messages('state', reloadAt).find((m) => m.value.peer === 'disconnected')?.at;
  const restartAt = h.logs('ICE restart', reloadAt).at(0)?.at;
  expect(answeredAt).toBeDefined();
  measured(
    `master reload: master back on signaling +${masterBackAt - reloadAt} ms, viewer disconnected ` +
      `+${disconnectedAt === undefined ? '-' : disconnectedAt - reloadAt} ms, ICE restart ` +
      `+${restartAt === undefined ? '-' : restartAt - reloadAt} ms, answer applied +${answeredAt! - reloadAt} ms, ` +
      `frames +${framesAt - reloadAt} ms (${framesAt - answeredAt!} ms after the answer)`,
  );
  expect(framesAt - answeredAt!).toBeLessThanOrEqual(5_000);
  const after = await h.status();
  expect(after.state).toMatchObject({ peer: 'connected', master: 'answered' });
  // Healed inside the session (ICE restart), or at worst by one new session.
  expect(after.sessions - before.sessions).toBeLessThanOrEqual(1);
  expect(await h.master.waitForViewerConnected(10_000)).toBe(CLIENT_ID);
});

test('master gone for longer than the message TTL: an offer keeps waiting, frames again soon after it returns', async () => {
  test.setTimeout(120_000);
  const before = await h.status();
  const oldSsrc = lastSsrc();
  const goneAt = Date.now();
  await h.master.stop();
  await expect.poll(() => h.emulator.admin.connections(h.channelName).master).toBe(false);
  // The page notices, and from then on keeps an offer in the queue.
  await expect.poll(async () => (await h.status()).state.master, { timeout: 30_000 }).toBe('waiting');
  const waitingAt = Date.now();
  // Away for more than twice the TTL while waiting: any single offer would have expired by now, and the
  // page says at warn that the master does not answer.
  await expect.poll(() => h.logs('the master is not answering', goneAt).length, { timeout: 30_000 }).toBe(1);
  await expect.poll(() => Date.now() - waitingAt >= 2 * TTL_SECONDS * 1000, { timeout: 30_000 }).toBe(true);
  const waiting = await h.status();
  expect(waiting.counters.offersSent - before.counters.offersSent).toBeGreaterThanOrEqual(3);
  const beat = h.messages('heartbeat').at(-1)!.value;
  expect(beat.master).toBe('waiting');
  expect(beat.masterWaitingMs).toBeGreaterThan(2 * TTL_SECONDS * 1000 - 1_500);
  // No CPU spin while waiting: re-sends follow the capped backoff.
  const resent = waiting.counters.offersSent - before.counters.offersSent;
  expect(resent).toBeLessThan(((Date.now() - goneAt) / 1000) * 2);

  const startAt = Date.now();
  await h.master.start();
  const backAt = Date.now();
  await expect.poll(() => firstNewFrame(backAt, oldSsrc), { timeout: 20_000 }).toBeDefined();
  const framesAt = firstNewFrame(backAt, oldSsrc)!;
  const stats = h.emulator.admin.stats();
  measured(
    `master gone ${Math.round((startAt - goneAt) / 1000)} s (TTL ${TTL_SECONDS} s, ${resent} offers sent while ` +
      `away): frames ${framesAt - backAt} ms after the master was back on signaling ` +
      `(queue: ${stats['queue.delivered'] ?? 0} delivered, ${stats['queue.expired'] ?? 0} expired, ` +
      `${stats['queue.superseded'] ?? 0} superseded)`,
  );
  expect(framesAt - backAt).toBeLessThanOrEqual(10_000);
  expect((await h.status()).state).toMatchObject({ peer: 'connected', master: 'answered' });
  expect(h.messages('log', goneAt).filter((m) => m.value.level === 'error')).toEqual([]);
});
