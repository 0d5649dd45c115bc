import { expect, test } from '@playwright/test';
import type { RecordingStatus } from '../../agent/bridge/controlProtocol.js';
import { RecordingStatusReporter } from '../../agent/unit/recordingStatus.js';
import { describeRecording, parseRecordingStatus } from '../../page/recordingStatus.js';
import { redact } from '../../page/redact.js';

/** The `recording` control message: built by the agent's reporter, validated and described by the page. */
const T0 = Date.UTC(2026, 0, 2, 3, 4, 5);

function kvssinkReporter(sent: RecordingStatus[], clock: { now: number }) {
  return new RecordingStatusReporter({
    sink: 'kvssink',
    streamName: 'camera-1',
    send: (s) => sent.push(s),
    throttleMs: 0,
    now: () => clock.now,
  });
}

test('a kvssink session and its fragment acks reach the page as a valid status, described with number and time', () => {
  const sent: RecordingStatus[] = [];
  const clock = { now: T0 };
  const r = kvssinkReporter(sent, clock);
  r.recorder({ state: 'running', runs: 1, restarts: 0, lastWrittenAtMs: null, droppedWithoutRun: 0 });
  r.runStarted({ number: 1, size: '1280x720', startedAtMs: T0 });
  clock.now = T0 + 2_500;
  r.fragmentAck('buffering', T0);
  r.fragmentAck('received', T0);
  r.fragmentAck('persisted', T0);
  const status = sent.at(-1)!;
  expect(status).toEqual({
    sink: 'kvssink',
    state: 'running',
    runs: 1,
    restarts: 0,
    current: { number: 1, name: 'camera-1', size: '1280x720', startedAtMs: T0 },
    fragments: {
      received: 1,
      persisted: 1,
      errors: 0,
      last: { ack: 'persisted', timecode: T0, atMs: T0 + 2_500 },
    },
  });
  const parsed = parseRecordingStatus({ type: 'recording', ...status });
  expect(parsed).toEqual(status);
  const lines = describeRecording(parsed!, T0 + 3_000);
  expect(lines.map((l) => l.field)).toEqual(['recorder', 'run', 'fragment']);
  expect(lines[1]!.text).toBe('kvssink session #1 camera-1 · 1280x720 · since 3 s');
  expect(lines[2]!.text).toBe(
    '#1 persisted, 1 received, 0 errors · last persisted ack for 03:04:05.000 (1 s ago)',
  );

  // A renewal: the next session starts before the previous one finished closing; both are shown.
  r.runStarted({ number: 2, size: '640x360', startedAtMs: T0 + 4_000 });
  r.runEnded({ number: 1, videoFrames: 120 });
  const after = sent.at(-1)!;
  expect(after.current?.number).toBe(2);
  expect(after.last).toEqual({ number: 1, name: 'camera-1', endedAtMs: T0 + 2_500, videoFrames: 120 });
  expect(after.runs).toBe(2);
  expect(describeRecording(after, T0 + 2_500).find((l) => l.field === 'last')?.text).toBe(
    'kvssink session #1 camera-1 ended 0 s ago · 120 video frames',
  );
});

test('file runs show the base name only, never the output directory', () => {
  const sent: RecordingStatus[] = [];
  const r = new RecordingStatusReporter({
    sink: 'file',
    streamName: 's',
    send: (s) => sent.push(s),
    throttleMs: 0,
  });
  r.runStarted({ number: 1, path: '/srv/secret-dir/s_20260102T030405.ts', size: '640x480', startedAtMs: T0 });
  r.runEnded({ number: 1, path: '/srv/secret-dir/s_20260102T030405.ts', videoFrames: 3 });
  expect(JSON.stringify(sent)).not.toContain('secret-dir');
  expect(sent.at(-1)!.last?.name).toBe('s_20260102T030405.ts');
  expect(sent.at(-1)!.current).toBeUndefined();
  expect(sent.at(-1)!.fragments).toBeUndefined();
  expect(parseRecordingStatus({ type: 'recording', ...sent.at(-1)! })).toEqual(sent.at(-1));
});

test('throttled: one message at once, then the newest state once the interval is over; unchanged is not sent', async () => {
  const sent: RecordingStatus[] = [];
  const real = new RecordingStatusReporter({
    sink: 'kvssink',
    streamName: 'x',
    send: (s) => sent.push(s),
    throttleMs: 100,
  });
  real.fragmentAck('buffering', 1);
  real.fragmentAck('received', 1);
  real.fragmentAck('persisted', 1);
  expect(sent).toHaveLength(1);
  await new Promise((resolve) => setTimeout(resolve, 150));
  expect(sent).toHaveLength(2);
  expect(sent[1]!.fragments).toMatchObject({ received: 1, persisted: 1 });
  real.recorder({
    state: 'waiting-for-key-frame',
    runs: 0,
    restarts: 0,
    lastWrittenAtMs: null,
    droppedWithoutRun: 0,
  });
  await new Promise((resolve) => setTimeout(resolve, 150));
  expect(sent).toHaveLength(2);
  // A page that just said hello gets the current state even though it did not change.
  real.resend();
  expect(sent).toHaveLength(3);
  real.close();
});

test('the page refuses malformed recording messages', () => {
  const good = {
    type: 'recording',
    sink: 'file',
    state: 'running',
    runs: 1,
    restarts: 0,
    current: { number: 1, name: 'a.ts', size: '640x480', startedAtMs: T0 },
  };
  expect(parseRecordingStatus(good)).toBeDefined();
  const bad: unknown[] = [
    null,
    'recording',
    [good],
    { ...good, type: 'config' },
    { ...good, extra: 1 },
    { ...good, sink: 'ftp' },
    { ...good, state: 'exploding' },
    { ...good, runs: -1 },
    { ...good, runs: 1.5 },
    { ...good, restarts: '0' },
    { ...good, current: { ...good.current, size: '<b>' } },
    { ...good, current: { ...good.current, name: 'x'.repeat(300) } },
    { ...good, current: { ...good.current, startedAtMs: Number.NaN } },
    { ...good, current: { ...good.current, url: 'wss://x' } },
    { ...good, last: { number: 1, name: 'a', endedAtMs: T0 } },
    {
      ...good,
      fragments: { received: 0, persisted: 0, errors: 0, last: { ack: 'maybe', timecode: 1, atMs: 1 } },
    },
    { ...good, fragments: { received: 0, persisted: 0 } },
  ];
  for (const msg of bad) expect(parseRecordingStatus(msg), JSON.stringify(msg)).toBeUndefined();
});

test('redact: presigned URLs, tokens and passwords never reach the panel', () => {
  const presigned =
    'wss://v-1234.kinesisvideo.ap-northeast-1.amazonaws.com/?X-Amz-ChannelARN=arn&X-Amz-Credential=AKIAEXAMPLE%2F20260102%2Fap-northeast-1%2Fkinesisvideo%2Faws4_request&X-Amz-Signature=abcdef';
  const shown = redact(`signaling error: could not connect to ${presigned} (1006)`);
  expect(shown).toBe(
    'signaling error: could not connect to wss://v-1234.kinesisvideo.ap-northeast-1.amazonaws.com/?… (1006)',
  );
  expect(redact('control ws://127.0.0.1:4000/control?token=deadbeef closed')).toBe(
    'control ws://127.0.0.1:4000/control?… closed',
  );
  expect(redact('params X-Amz-Signature=abc&X-Amz-Date=1')).not.toMatch(/abc|=1/);
  expect(redact('{"username":"u","credential":"turn-secret"}')).not.toContain('turn-secret');
  expect(redact('password=hunter2; next')).not.toContain('hunter2');
  expect(redact('token: abc123')).not.toContain('abc123');
  expect(redact('frames 120 at 1280x720')).toBe('frames 120 at 1280x720');
});
