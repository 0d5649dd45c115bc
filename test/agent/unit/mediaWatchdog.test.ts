import { expect, test } from '@playwright/test';
import { MediaWatchdog, type WatchdogAction, type WatchdogInput } from '../../../agent/unit/mediaWatchdog.js';

/** Drives the watchdog tick by tick (250 ms) over a scripted timeline; returns [time, action] pairs. */
function run(
  durationMs: number,
  at: (t: number) => Partial<WatchdogInput> & { videoFlowing?: boolean; audioFlowing?: boolean },
): Array<[number, WatchdogAction]> {
  const dog = new MediaWatchdog();
  const out: Array<[number, WatchdogAction]> = [];
  const last = { video: null as number | null, audio: null as number | null };
  for (let t = 0; t <= durationMs; t += 250) {
    const s = at(t);
    if (s.videoFlowing) last.video = t;
    if (s.audioFlowing) last.audio = t;
    const actions = dog.tick({
      nowMs: t,
      pageUp: s.pageUp ?? true,
      lastHeartbeatMs: s.lastHeartbeatMs ?? t,
      peerConnected: s.peerConnected ?? true,
      lastFrameMs: { ...last },
    });
    for (const a of actions) out.push([t, a]);
  }
  return out;
}

test('a connected call whose video stops climbs the ladder, then cools down instead of spinning', () => {
  const actions = run(60_000, (t) => ({ videoFlowing: t < 10_000, audioFlowing: t < 10_000 }));
  expect(actions.slice(0, 4)).toEqual([
    [11_250, 'request-keyframe'],
    [13_250, 'new-peer-connection'],
    [19_750, 'reload-page'],
    [24_750, 'relaunch-browser'],
  ]);
  // 30 s of cool-down, then the next episode starts at once (video is still missing).
  expect(actions[4]?.[0]).toBe(24_750 + 30_000);
});

test('flowing media, or a master that is gone (peer not connected), escalates nothing', () => {
  expect(run(30_000, () => ({ videoFlowing: true, audioFlowing: true }))).toEqual([]);
  // Connected for 5 s, then the master vanishes for good: the page keeps offering on its own.
  const actions = run(120_000, (t) => ({ videoFlowing: t < 5_000, peerConnected: t < 5_000 }));
  expect(actions.map(([, a]) => a)).toEqual([]);
});

test('after a new peer connection the ladder waits for the connection to settle before reloading', () => {
  // Video stops at 10 s; the new connection comes up at 19 s (master rebooting) and media flows at 19.75 s.
  const actions = run(40_000, (t) => ({
    videoFlowing: t < 10_000 || t >= 19_750,
    peerConnected: t < 14_000 || t >= 19_000,
  }));
  expect(actions.map(([, a]) => a)).toEqual(['request-keyframe', 'new-peer-connection']);
});

test('a page whose heartbeat stops is reported hung once', () => {
  const actions = run(20_000, (t) => ({ videoFlowing: true, lastHeartbeatMs: Math.min(t, 5_000) }));
  expect(actions).toEqual([[9_250, 'page-hung']]);
});

test('audio that stops while video flows is reported, then one new peer connection per episode', () => {
  const actions = run(40_000, (t) => ({ videoFlowing: true, audioFlowing: t < 5_000 }));
  expect(actions).toEqual([
    [9_750, 'audio-stalled'],
    [19_750, 'new-peer-connection'],
  ]);
});
