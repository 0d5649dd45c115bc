import { expect, test } from '@playwright/test';
import { WebSocket } from 'ws';
import { CLIENT_ID, measured, ViewerHarness } from './viewerHarness.js';

/**
 * The viewer page (`page/`) with real parts around it (see viewerHarness.ts). This proves the page's side
 * of the protocols; the agent's own wiring is proven by the e2e tests.
 */
test.describe.configure({ mode: 'serial' });

let h: ViewerHarness;

test.beforeAll(async () => {
  test.setTimeout(90_000);
  h = await ViewerHarness.start();
});

test.afterAll(async () => {
  await h?.close();
});

test('receives H.264 and Opus from the master and forwards every frame to the agent', async () => {
  const viewer = await h.master.waitForViewerConnected(30_000);
  expect(viewer).toBe(CLIENT_ID);
  await expect.poll(() => h.framesOf('video'), { timeout: 20_000 }).toBeGreaterThan(90);
  await expect.poll(() => h.framesOf('audio')).toBeGreaterThan(100);

  const video = h.frames.filter((f) => f.value.header.kind === 'video').map((f) => f.value);
  const audio = h.frames.filter((f) => f.value.header.kind === 'audio').map((f) => f.value);
  expect(new Set(video.map((f) => f.header.codec))).toEqual(new Set(['h264']));
  expect(new Set(audio.map((f) => f.header.codec))).toEqual(new Set(['opus']));
  // The call starts with a key frame at the camera's size. Not always the very first frame handed to the
  // transform: under CPU load loopback UDP drops packets, and Chromium passes on complete delta frames while
  // the key frame waits for a retransmission (the agent's timeline starts at the first key frame).
  const firstKey = video.findIndex((f) => f.header.key);
  expect(firstKey).toBeGreaterThanOrEqual(0);
  expect(firstKey).toBeLessThan(10);
  expect(video[firstKey]!.header).toMatchObject({ width: 1280, height: 720 });
  // Annex B with in-band SPS (NAL type 7) on the key frame.
  const first = video[firstKey]!.payload;
  expect([...first.subarray(0, 4)]).toEqual([0, 0, 0, 1]);
  expect(first[4]! & 0x1f).toBe(7);
  // Sequence numbers from 0 without gaps: nothing skipped between worker and agent.
  expect(video.map((f) => f.header.seq)).toEqual(video.map((_, i) => i));
  expect(audio.map((f) => f.header.seq)).toEqual(audio.map((_, i) => i));
  // Receive times are wall clock (converted in the worker), not page-relative.
  expect(Math.abs(video.at(-1)!.header.receiveTimeMs - Date.now())).toBeLessThan(5_000);
  // Opus: 20 ms packets on a 48 kHz clock.
  expect(audio[1]!.header.rtpTimestamp - audio[0]!.header.rtpTimestamp).toBe(960);

  const states = h.messages('state').map((m) => m.value);
  expect(
    states.some((s) => s.signaling === 'open' && s.peer === 'connected' && s.master === 'answered'),
  ).toBe(true);
  expect(
    states.some((s) => s.master === 'waiting'),
    'waiting for the answer was reported',
  ).toBe(true);
  await expect
    .poll(() => h.messages('stats').some((m) => (m.value.video?.framesForwarded ?? 0) > 0))
    .toBe(true);
  expect(h.messages('log').filter((m) => m.value.level === 'error')).toEqual([]);
  // The bridge validated every control message the page sent (strict schema).
  expect(h.bridge.stats().controlRejected).toBe(0);
});

test('a heartbeat about once per second from the main thread, with the page counters', async () => {
  const since = Date.now();
  await expect
    .poll(() => h.messages('heartbeat', since).length, { timeout: 10_000 })
    .toBeGreaterThanOrEqual(6);
  const beats = h.messages('heartbeat', since);
  const gaps = beats.slice(1).map((b, i) => b.at - beats[i]!.at);
  measured(`heartbeat intervals: min ${Math.min(...gaps)} ms, max ${Math.max(...gaps)} ms`);
  for (const gap of gaps) {
    expect(gap).toBeGreaterThan(500);
    expect(gap).toBeLessThan(1_600);
  }
  const last = beats.at(-1)!.value;
  expect(last.sessions).toBe(1);
  expect(last.master).toBe('answered');
  expect(last.masterWaitingMs).toBe(0);
  expect(last.counters.offersSent).toBeGreaterThanOrEqual(1);
  // Uptime is the page's: it grows with the heartbeats.
  expect(last.uptimeMs).toBeGreaterThan(beats[0]!.value.uptimeMs + 3_000);
});

test('a key frame request from the agent produces a new key frame', async () => {
  const before = h.framesOf('video', (f) => f.header.key);
  expect(h.bridge.requestKeyFrame()).toBe(true);
  await expect
    .poll(() => h.framesOf('video', (f) => f.header.key), { timeout: 10_000 })
    .toBeGreaterThan(before);
});

test('frame socket lost under the worker: seq counts the skipped frames, a key frame follows at once', async () => {
  const since = Date.now();
  const ssrc = h.frames.findLast((f) => f.value.header.kind === 'video')!.value.header.ssrc;
  // The bridge keeps one socket per track: this one replaces the worker's, which reconnects (frameSocket
  // backoff) and replaces it in turn.
  const intruder = new WebSocket(`${h.bridge.frameUrl}&kind=video`);
  const closed = new Promise<void>((resolve) => intruder.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    intruder.once('open', () => resolve());
    intruder.once('error', reject);
  });
  await closed;
  const resumedAt = Date.now();
  await expect
    .poll(() => h.frames.filter((f) => f.at >= resumedAt && f.value.header.kind === 'video').length)
    .toBeGreaterThan(60);
  const video = h.frames
    .filter((f) => f.at >= since - 1_000 && f.value.header.kind === 'video' && f.value.header.ssrc === ssrc)
    .map((f) => f.value.header);
  const steps = video.slice(1).map((f, i) => f.seq - video[i]!.seq);
  const jumps = steps.filter((d) => d !== 1);
  expect(jumps, 'one gap, and the numbering went on across the reconnect').toHaveLength(1);
  expect(jumps[0]).toBeGreaterThan(1);
  const afterGap = video.slice(steps.findIndex((d) => d !== 1) + 1);
  const keyIndex = afterGap.findIndex((f) => f.key);
  expect(keyIndex).toBeGreaterThanOrEqual(0);
  const keyDelayMs = afterGap[keyIndex]!.receiveTimeMs - afterGap[0]!.receiveTimeMs;
  measured(
    `frame socket reconnect: ${jumps[0]! - 1} frames skipped, key frame ${keyDelayMs.toFixed(0)} ms after the gap`,
  );
  expect(keyDelayMs).toBeLessThan(1_000);
  // Every frame the worker skipped while it had no socket is numbered, so it is in the gap. The gap may hold
  // more: frames sent into the old socket while the bridge was replacing it are lost, not skipped (CI: 3
  // skipped, a gap of 4).
  const skipped = (await h.status()).tracks.video?.framesSkipped ?? 0;
  expect(skipped).toBeGreaterThan(0);
  expect(skipped).toBeLessThanOrEqual(jumps[0]! - 1);
});

test('GO_AWAY: signaling reconnects while the call and the frames go on', async () => {
  const { sessions } = await h.status();
  const since = Date.now();
  expect(h.emulator.admin.send(h.channelName, CLIENT_ID, 'GO_AWAY')).toBe(true);
  await expect
    .poll(() => h.messages('signaling-event').filter((m) => m.value.event === 'go-away').length)
    .toBe(1);
  await expect.poll(async () => (await h.status()).counters.signalingRenewals).toBe(1);
  const count = h.frames.length;
  await expect.poll(() => h.emulator.admin.connections(h.channelName).viewers).toContain(CLIENT_ID);
  await expect.poll(() => h.frames.length).toBeGreaterThan(count + 60);
  measured(`GO_AWAY: max video gap ${h.maxVideoGapMs(since, Date.now())} ms`);
  expect(h.maxVideoGapMs(since, Date.now())).toBeLessThan(1_000);
  expect((await h.status()).sessions).toBe(sessions);
  await expect(h.page.locator('dd[data-field="signaling"]')).toHaveText('open');
});

test('RECONNECT_ICE_SERVER: fresh ICE servers and an ICE restart, no new session, frames go on', async () => {
  const before = await h.status();
  const since = Date.now();
  expect(h.emulator.admin.send(h.channelName, CLIENT_ID, 'RECONNECT_ICE_SERVER')).toBe(true);
  await expect
    .poll(() => h.messages('signaling-event').filter((m) => m.value.event === 'reconnect-ice-server').length)
    .toBe(1);
  await expect.poll(() => h.messages('ice-servers', since).length).toBe(1);
  await expect
    .poll(async () => (await h.status()).counters.iceRestarts, { timeout: 10_000 })
    .toBe(before.counters.iceRestarts + 1);
  // The restarted call carries frames again, on the same peer connection (no hello, same session count).
  await expect.poll(() => h.logs('SDP answer applied', since).length, { timeout: 15_000 }).toBe(1);
  const restartedAt = h.logs('SDP answer applied', since)[0]!.at;
  const framesAt = (t: number) => h.frames.filter((f) => f.at >= t && f.value.header.kind === 'video').length;
  await expect.poll(() => framesAt(restartedAt), { timeout: 20_000 }).toBeGreaterThan(60);
  const gap = h.maxVideoGapMs(since, Date.now());
  measured(`RECONNECT_ICE_SERVER: max video gap ${gap} ms`);
  expect(gap).toBeLessThan(5_000);
  const after = await h.status();
  expect(after.sessions, 'no session teardown').toBe(before.sessions);
  expect(h.messages('hello', since)).toEqual([]);
  expect(after.state.peer).toBe('connected');
});

test('a dropped signaling socket under a live call: only signaling reconnects, frames go on', async () => {
  const since = Date.now();
  const { sessions } = await h.status();
  expect(h.emulator.admin.drop(h.channelName, CLIENT_ID)).toBe(true);
  const statesSince = () => h.messages('state', since).map((m) => m.value);
  await expect
    .poll(() => statesSince().some((m) => m.signaling === 'closed'), { timeout: 15_000 })
    .toBe(true);
  await expect.poll(() => statesSince().at(-1)?.signaling, { timeout: 15_000 }).toBe('open');
  expect(h.emulator.admin.connections(h.channelName).viewers).toContain(CLIENT_ID);
  const count = h.frames.length;
  await expect.poll(() => h.frames.length).toBeGreaterThan(count + 60);
  measured(`signaling dropped: max video gap ${h.maxVideoGapMs(since, Date.now())} ms`);
  expect(h.maxVideoGapMs(since, Date.now())).toBeLessThan(1_000);
  expect(h.messages('hello', since), 'no new session').toEqual([]);
  expect((await h.status()).sessions).toBe(sessions);
  expect((await h.status()).counters.signalingReconnects).toBeGreaterThanOrEqual(1);
});

test('invalid, unexpected and oversized signaling messages are counted and dropped; the call goes on', async () => {
  const since = Date.now();
  const before = await h.status();
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64');
  const garbage = [
    'not json at all',
    'null',
    '[1,2,3]',
    JSON.stringify({ messageType: 42 }),
    JSON.stringify({ messageType: 'SOMETHING_NEW', messagePayload: b64({}) }),
    // An offer to a viewer: only masters are offered to.
    JSON.stringify({
      messageType: 'SDP_OFFER',
      senderClientId: 'MASTER',
      messagePayload: b64({ type: 'offer', sdp: 'v=0' }),
    }),
    JSON.stringify({ messageType: 'SDP_ANSWER', messagePayload: 'not base64 !!' }),
    JSON.stringify({ messageType: 'SDP_ANSWER', messagePayload: b64({ type: 'answer', sdp: 42 }) }),
    JSON.stringify({ messageType: 'SDP_ANSWER', messagePayload: b64('a string') }),
    JSON.stringify({ messageType: 'ICE_CANDIDATE', messagePayload: b64({ candidate: { nested: true } }) }),
    JSON.stringify({ messageType: 'STATUS_RESPONSE' }),
    JSON.stringify({ messageType: 'ICE_CANDIDATE', messagePayload: b64({ candidate: 'x'.repeat(70_000) }) }),
    'x'.repeat(65 * 1024),
  ];
  for (const g of garbage) expect(h.emulator.admin.inject(h.channelName, CLIENT_ID, g)).toBe(true);
  // A well-formed answer nobody asked for: ignored (counted as such), the applied one stays.
  const lateAnswer = JSON.stringify({
    messageType: 'SDP_ANSWER',
    senderClientId: 'MASTER',
    messagePayload: b64({ type: 'answer', sdp: 'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n' }),
  });
  expect(h.emulator.admin.inject(h.channelName, CLIENT_ID, lateAnswer)).toBe(true);
  await expect
    .poll(async () => (await h.status()).counters.signalingInvalid - before.counters.signalingInvalid)
    .toBe(garbage.length);
  await expect
    .poll(async () => (await h.status()).counters.answersIgnored - before.counters.answersIgnored)
    .toBe(1);
  // Logged, but rate-limited; and none of it threw in the page.
  expect(h.logs('signaling message dropped', since).length).toBeGreaterThan(0);
  expect(h.logs('page error', since)).toEqual([]);
  expect(h.messages('log', since).filter((m) => m.value.level === 'error')).toEqual([]);
  const count = h.framesOf('video');
  await expect.poll(() => h.framesOf('video')).toBeGreaterThan(count + 60);
  const after = await h.status();
  expect(after.sessions).toBe(before.sessions);
  expect(after.state).toMatchObject({ signaling: 'open', peer: 'connected', master: 'answered' });
  // Surfaced to the agent too.
  await expect
    .poll(() => h.messages('heartbeat', since).at(-1)?.value.counters.signalingInvalid)
    .toBe(after.counters.signalingInvalid);
});

test('the agent asks for a new session: it starts at once with a fresh config', async () => {
  const since = Date.now();
  const { sessions } = await h.status();
  expect(h.bridge.sendControl({ type: 'reconnect', reason: 'media watchdog (test)' })).toBe(true);
  await expect.poll(() => h.messages('hello', since).length).toBe(1);
  const hello = h.messages('hello', since)[0]!.at;
  expect(hello - since, 'no backoff before the new session').toBeLessThan(1_000);
  await expect.poll(async () => (await h.status()).sessions).toBe(sessions + 1);
  await expect.poll(() => h.firstVideoFrameAfter(hello + 500), { timeout: 20_000 }).toBeTruthy();
  measured(
    `agent reconnect: frames again ${h.firstVideoFrameAfter(hello + 500)!.at - since} ms after the request`,
  );
});
