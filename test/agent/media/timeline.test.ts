import { expect, test } from '@playwright/test';
import type { FrameCodec, TrackKind, WireFrame } from '../../../agent/bridge/wire.js';
import { MediaTimeline, type TimedFrame } from '../../../agent/media/timeline.js';

const T0 = 1_700_000_000_000;
/** Consecutive sequence numbers per track, as one frame-socket connection sends them. */
const nextSeq: Record<TrackKind, number> = { video: 0, audio: 0 };

function frame(
  kind: TrackKind,
  rtpTimestamp: number,
  receiveTimeMs: number,
  opts: { key?: boolean; ssrc?: number; codec?: FrameCodec; seq?: number; captureTimeMs?: number } = {},
): WireFrame {
  return {
    header: {
      kind,
      key: opts.key ?? kind === 'audio',
      codec: opts.codec ?? (kind === 'video' ? 'h264' : 'opus'),
      rtpTimestamp: rtpTimestamp >>> 0,
      receiveTimeMs,
      ssrc: opts.ssrc ?? (kind === 'video' ? 1111 : 2222),
      width: 0,
      height: 0,
      seq: opts.seq ?? nextSeq[kind]++,
      ...(opts.captureTimeMs !== undefined ? { captureTimeMs: opts.captureTimeMs } : {}),
    },
    payload: new Uint8Array([1]),
  };
}

test('video before the first key frame is dropped and the key frame is the origin', () => {
  const tl = new MediaTimeline();
  expect(tl.push(frame('video', 1000, T0))).toBeNull();
  expect(tl.push(frame('video', 4000, T0 + 33))).toBeNull();
  expect(tl.started).toBe(false);
  const key = tl.push(frame('video', 7000, T0 + 66, { key: true }));
  expect(tl.started).toBe(true);
  expect(key?.timestampUs).toBe(0);
  expect(tl.push(frame('video', 10000, T0 + 120))?.timestampUs).toBe(33_000);
  const s = tl.stats().video;
  expect(s.droppedBeforeKeyframe).toBe(2);
  expect(s.accepted).toBe(2);
});

test('RTP wrap-around keeps time moving forward at the RTP rate', () => {
  const tl = new MediaTimeline();
  const start = 2 ** 32 - 3 * 3000;
  const out: TimedFrame[] = [];
  for (let i = 0; i < 10; i++) {
    // Receive times jitter (every other frame 10 ms late); the output follows RTP (3000 ticks = 33.3 ms).
    const f = tl.push(frame('video', start + i * 3000, T0 + (i * 100) / 3 + (i % 2) * 10, { key: i === 0 }));
    out.push(f!);
  }
  expect(out.map((f) => f.timestampUs)).toEqual(
    [0, 33, 67, 100, 133, 167, 200, 233, 267, 300].map((ms) => ms * 1000),
  );
  expect(tl.stats().video.reanchors).toBe(0);
});

test('output is strictly monotonic per track, in whole milliseconds, when RTP times fall in the same ms', () => {
  const tl = new MediaTimeline();
  tl.push(frame('video', 0, T0, { key: true }));
  // 90 ticks = 1 ms: 270, 271, 272 all round to 3 ms and must still come out increasing.
  const rtps = [90, 180, 270, 271, 272, 360];
  let last = 0;
  for (const [i, rtp] of rtps.entries()) {
    const f = tl.push(frame('video', rtp, T0 + i));
    expect(f).not.toBeNull();
    expect(f!.timestampUs % 1000).toBe(0);
    expect(f!.timestampUs).toBeGreaterThan(last);
    last = f!.timestampUs;
  }
  expect(tl.stats().video.clampedNonMonotonic).toBeGreaterThan(0);
});

test('re-delivered frames (same or older RTP timestamp) are dropped, as Chromium repeats them after a resolution switch', () => {
  const tl = new MediaTimeline();
  expect(tl.push(frame('video', 0, T0, { key: true }))).not.toBeNull();
  expect(tl.push(frame('video', 3000, T0 + 34))).not.toBeNull();
  // Seen live: the same delta frame four more times within 10 ms, then an older one.
  for (let i = 0; i < 4; i++) expect(tl.push(frame('video', 3000, T0 + 35 + i))).toBeNull();
  expect(tl.push(frame('video', 0, T0 + 40))).toBeNull();
  expect(tl.push(frame('video', 6000, T0 + 67))?.timestampUs).toBe(67_000);
  expect(tl.push(frame('audio', 960, T0 + 20))).not.toBeNull();
  expect(tl.push(frame('audio', 960, T0 + 21))).toBeNull();
  expect(tl.stats().video.droppedDuplicate).toBe(5);
  expect(tl.stats().audio.droppedDuplicate).toBe(1);
  expect(tl.stats().video.clampedNonMonotonic).toBe(0);
});

test('audio and video with unrelated RTP offsets land where the wall clock says', () => {
  const tl = new MediaTimeline();
  const vOff = 3_123_456_789;
  const aOff = 987_654;
  // Audio starts 500 ms before video is received: those packets precede the origin and are dropped.
  const frames: WireFrame[] = [];
  for (let i = 0; i < 100; i++) frames.push(frame('audio', aOff + i * 960, T0 + i * 20 + 1));
  for (let i = 0; i < 60; i++) {
    frames.push(frame('video', vOff + i * 3000, T0 + 500 + i * (100 / 3), { key: i === 0 }));
  }
  frames.sort((a, b) => a.header.receiveTimeMs - b.header.receiveTimeMs);
  const audioOut: TimedFrame[] = [];
  const videoOut: TimedFrame[] = [];
  for (const f of frames) {
    const out = tl.push(f);
    if (out) (out.kind === 'audio' ? audioOut : videoOut).push(out);
  }
  expect(tl.stats().audio.droppedBeforeOrigin).toBe(25);
  // The audio packet received at T0+501 (RTP-derived T0+1+500) sits 1 ms after the origin at T0+500.
  expect(audioOut[0]!.timestampUs).toBe(1000);
  expect(audioOut[audioOut.length - 1]!.timestampUs).toBe((99 * 20 + 1 - 500) * 1000);
  expect(videoOut[30]!.timestampUs).toBe(1000 * 1000);
});

test('audio that arrives before any video key frame is dropped, not queued', () => {
  const tl = new MediaTimeline();
  expect(tl.push(frame('audio', 0, T0))).toBeNull();
  expect(tl.stats().audio.droppedBeforeOrigin).toBe(1);
});

test('an SSRC change re-anchors on the receive clock and waits for the next key frame', () => {
  const tl = new MediaTimeline();
  tl.push(frame('video', 1000, T0, { key: true }));
  const before = tl.push(frame('video', 1000 + 90 * 1000, T0 + 1000));
  expect(before?.timestampUs).toBe(1_000_000);
  // New peer connection: new SSRC, new random RTP base, received 3 s later.
  expect(tl.push(frame('video', 777, T0 + 4000, { ssrc: 42 }))).toBeNull();
  const key = tl.push(frame('video', 777 + 3000, T0 + 4040, { ssrc: 42, key: true }));
  expect(key?.timestampUs).toBe(4_033_000);
  const s = tl.stats().video;
  expect(s.ssrcChanges).toBe(1);
  expect(s.reanchors).toBe(1);
  expect(s.droppedBeforeKeyframe).toBe(1);
});

test('an RTP jump beyond maxRtpJumpMs re-anchors on the receive clock and stays monotonic', () => {
  const tl = new MediaTimeline({ maxRtpJumpMs: 2000 });
  tl.push(frame('video', 0, T0, { key: true }));
  tl.push(frame('audio', 0, T0));
  tl.push(frame('audio', 960, T0 + 20));
  // The sender's RTP clock leaps 60 s ahead while packets keep arriving in real time.
  const jumped = tl.push(frame('audio', 960 + 48_000 * 60, T0 + 40));
  expect(jumped?.timestampUs).toBe(40_000);
  expect(tl.push(frame('audio', 960 * 2 + 48_000 * 60, T0 + 60))?.timestampUs).toBe(60_000);
  expect(tl.stats().audio.reanchors).toBe(1);
  // Backwards on the receive clock (earlier than what was already written): clamped to previous + 1 ms.
  const back = tl.push(frame('audio', 0, T0 + 10));
  expect(back?.timestampUs).toBe(61_000);
});

test('frames with another codec are rejected and counted', () => {
  const tl = new MediaTimeline();
  expect(tl.push(frame('video', 0, T0, { key: true, codec: 'other' }))).toBeNull();
  expect(tl.push(frame('audio', 0, T0, { codec: 'h264' }))).toBeNull();
  expect(tl.started).toBe(false);
  expect(tl.stats().video.rejectedCodec).toBe(1);
  expect(tl.stats().audio.rejectedCodec).toBe(1);
});

test('a gap in the sequence numbers holds video until the next key frame, counts the loss and reports it', () => {
  const gaps: Array<{ kind: TrackKind; lost: number }> = [];
  const tl = new MediaTimeline({ onGap: (g) => gaps.push(g) });
  let seq = 100;
  expect(tl.push(frame('video', 0, T0, { key: true, seq: seq++ }))).not.toBeNull();
  expect(tl.push(frame('video', 3000, T0 + 33, { seq: seq++ }))).not.toBeNull();
  // Three frames never reached the agent (the worker skipped them: socket backed up).
  seq += 3;
  expect(tl.push(frame('video', 15000, T0 + 166, { seq: seq++ }))).toBeNull();
  expect(tl.push(frame('video', 18000, T0 + 200, { seq: seq++ }))).toBeNull();
  const key = tl.push(frame('video', 21000, T0 + 233, { key: true, seq: seq++ }));
  expect(key?.key).toBe(true);
  expect(key?.timestampUs).toBe(233_000);
  expect(tl.push(frame('video', 24000, T0 + 266, { seq }))).not.toBeNull();
  expect(gaps).toEqual([{ kind: 'video', lost: 3 }]);
  const s = tl.stats().video;
  expect(s.seqGaps).toBe(1);
  expect(s.framesLostUpstream).toBe(3);
  expect(s.droppedAfterGap).toBe(2);
  expect(s.droppedBeforeKeyframe).toBe(0);
});

test('audio gaps are counted but do not hold audio back; a reconnected socket restarts the sequence', () => {
  const gaps: Array<{ kind: TrackKind; lost: number }> = [];
  const tl = new MediaTimeline({ onGap: (g) => gaps.push(g) });
  tl.push(frame('video', 0, T0, { key: true, seq: 0 }));
  expect(tl.push(frame('audio', 0, T0 + 5, { seq: 0 }))).not.toBeNull();
  expect(tl.push(frame('audio', 1920, T0 + 45, { seq: 2 }))).not.toBeNull();
  expect(gaps).toEqual([{ kind: 'audio', lost: 1 }]);
  // The video socket reconnected: its sequence starts at 0 again, and in-flight frames may be lost.
  tl.connectionReset('video');
  expect(tl.push(frame('video', 3000, T0 + 34, { seq: 0 }))).toBeNull();
  expect(tl.push(frame('video', 6000, T0 + 67, { key: true, seq: 1 }))).not.toBeNull();
  expect(gaps).toHaveLength(1);
  const wall = tl.push(frame('video', 9000, T0 + 100, { seq: 2 }));
  // The wall clock follows the media timeline: origin (first key frame's receive time) + timestamp.
  expect(wall?.wallClockMs).toBe(T0 + 100);
});

test('frames skipped while the frame socket was down are a counted gap: the numbering spans reconnects', () => {
  const gaps: Array<{ kind: TrackKind; lost: number }> = [];
  const tl = new MediaTimeline({ onGap: (g) => gaps.push(g) });
  expect(tl.push(frame('video', 0, T0, { key: true, seq: 0 }))).not.toBeNull();
  expect(tl.push(frame('video', 3000, T0 + 33, { seq: 1 }))).not.toBeNull();
  // Socket down for frames 2–9 (the worker skipped and numbered them), then open again.
  tl.connectionReset('video');
  expect(tl.push(frame('video', 30000, T0 + 333, { seq: 10 }))).toBeNull();
  expect(gaps).toEqual([{ kind: 'video', lost: 8 }]);
  expect(tl.push(frame('video', 33000, T0 + 366, { key: true, seq: 11 }))).not.toBeNull();
  const s = tl.stats().video;
  expect(s.seqGaps).toBe(1);
  expect(s.framesLostUpstream).toBe(8);
  expect(s.droppedAfterGap).toBe(1);
  // A new viewer session's workers number from 0 again: not a loss.
  tl.connectionReset('video');
  expect(tl.push(frame('video', 36000, T0 + 400, { key: true, seq: 0 }))).not.toBeNull();
  expect(gaps).toHaveLength(1);
});

test('a late first frame (a paced key frame) is corrected by slewing towards the least receive delay, without a jump', () => {
  const tl = new MediaTimeline();
  // The key frame arrives 300 ms late; every later frame arrives on time (RTP 3000 ticks = 33.3 ms).
  const out: TimedFrame[] = [];
  for (let i = 0; i < 900; i++) {
    const onTime = T0 + (i * 100) / 3;
    const f = tl.push(frame('video', i * 3000, i === 0 ? onTime + 300 : onTime, { key: i === 0 }));
    out.push(f!);
  }
  // Never a step: consecutive frames stay within 2 % of their RTP spacing.
  for (let i = 1; i < out.length; i++) {
    const spacing = out[i]!.timestampUs - out[i - 1]!.timestampUs;
    expect(spacing).toBeGreaterThanOrEqual(32_000);
    expect(spacing).toBeLessThanOrEqual(34_000);
  }
  // After 30 s the stamped wall-clock time is back to the receive time of frames that were on time.
  const last = out.at(-1)!;
  expect(Math.abs(last.wallClockMs - last.receiveTimeMs)).toBeLessThan(2);
  // Early on it was still the late anchor's 300 ms ahead.
  expect(out[1]!.wallClockMs - out[1]!.receiveTimeMs).toBeGreaterThan(290);
});

/** Frames of both tracks with capture times and per-track receive delays, in receive order. */
function capturedCall(
  seconds: number,
  delays: { video: (i: number) => number; audio: (i: number) => number },
  captureOf: (kind: TrackKind, ms: number) => number | undefined = (_k, ms) => ms,
): WireFrame[] {
  const out: { f: WireFrame; at: number }[] = [];
  for (let i = 0; i < seconds * 30; i++) {
    const c = T0 + (i * 1000) / 30;
    const at = c + delays.video(i);
    const cap = captureOf('video', c);
    out.push({
      f: frame('video', i * 3000, at, {
        key: i % 60 === 0,
        ...(cap !== undefined ? { captureTimeMs: cap } : {}),
      }),
      at,
    });
  }
  for (let i = 0; i < seconds * 50; i++) {
    const c = T0 + i * 20;
    const at = c + delays.audio(i);
    const cap = captureOf('audio', c);
    out.push({ f: frame('audio', 5000 + i * 960, at, cap !== undefined ? { captureTimeMs: cap } : {}), at });
  }
  return out.sort((a, b) => a.at - b.at).map((x) => x.f);
}

test('capture times place both tracks on the master clock: different receive delays, A/V stays as captured', () => {
  const tl = new MediaTimeline();
  // Audio arrives 25 ms after capture (20 ms packetisation + network), video 5–20 ms (encode, 64 Hz tick).
  const frames = capturedCall(4, { video: (i) => 5 + ((i * 7) % 16), audio: () => 25 });
  const out = frames.map((f) => ({ f, t: tl.push(f) })).filter((x) => x.t);
  // Capture instant → recording time, per track: one and the same mapping for both.
  const offset = (kind: TrackKind) =>
    out.filter((x) => x.f.header.kind === kind).map((x) => x.t!.wallClockMs - x.f.header.captureTimeMs!);
  const video = offset('video');
  const audio = offset('audio');
  const spread = (xs: number[]) => Math.max(...xs) - Math.min(...xs);
  // Whole-ms output: within 1 ms of one common offset (after the shared delay settled on the minimum).
  const late = (xs: number[]) => xs.slice(Math.floor(xs.length / 2));
  expect(spread([...late(video), ...late(audio)])).toBeLessThanOrEqual(1);
  expect(tl.stats().video.captureTimed).toBe(120);
  expect(tl.stats().audio.captureTimed).toBeGreaterThan(190);
  // Without capture times the same call is placed by receive times: audio ends up ~20 ms late.
  const plain = new MediaTimeline();
  const rx = capturedCall(4, { video: (i) => 5 + ((i * 7) % 16), audio: () => 25 }, () => undefined);
  const placed = rx.map((f) => ({ f, t: plain.push(f) })).filter((x) => x.t);
  const lateBy = (kind: TrackKind) => {
    const xs = placed.filter((x) => x.f.header.kind === kind);
    const x = xs[xs.length - 1]!;
    const capture =
      kind === 'video'
        ? T0 + (x.f.header.rtpTimestamp / 3000) * (1000 / 30)
        : T0 + ((x.f.header.rtpTimestamp - 5000) / 960) * 20;
    return x.t!.wallClockMs - capture;
  };
  expect(lateBy('audio') - lateBy('video')).toBeGreaterThan(15);
});

test('audioLeadMs stamps audio earlier by the chain delay; video is untouched', () => {
  const lead = new MediaTimeline({ audioLeadMs: 27.8 });
  const none = new MediaTimeline();
  const frames = capturedCall(2, { video: () => 10, audio: () => 10 });
  const a = frames.map((f) => lead.push(f));
  const b = frames.map((f) => none.push(f));
  const diffs = frames.flatMap((f, i) =>
    a[i] && b[i] ? [{ kind: f.header.kind, d: b[i].wallClockMs - a[i].wallClockMs }] : [],
  );
  expect(new Set(diffs.filter((x) => x.kind === 'video').map((x) => x.d))).toEqual(new Set([0]));
  for (const x of diffs.filter((x) => x.kind === 'audio'))
    expect(Math.abs(x.d - 27.8)).toBeLessThanOrEqual(1);
});

test('a frame without a capture time in a capture-timed track is placed from the last one by RTP', () => {
  const tl = new MediaTimeline();
  const k = tl.push(frame('video', 0, T0 + 10, { key: true, captureTimeMs: T0 }))!;
  const missing = tl.push(frame('video', 3000, T0 + 60))!;
  expect(missing.wallClockMs - k.wallClockMs).toBe(33);
  expect(tl.stats().video.captureTimed).toBe(2);
});

test('a capture clock that steps by more than maxRtpJumpMs starts the shared delay over (no stuck clamping)', () => {
  const tl = new MediaTimeline({ maxRtpJumpMs: 5000 });
  for (let i = 0; i < 30; i++)
    tl.push(frame('video', i * 3000, T0 + i * 33.33 + 10, { key: i === 0, captureTimeMs: T0 + i * 33.33 }));
  // The master's clock jumps back a minute: frames keep their receive pace, no clamping.
  const after: TimedFrame[] = [];
  for (let i = 30; i < 60; i++)
    after.push(
      tl.push(frame('video', i * 3000, T0 + i * 33.33 + 10, { captureTimeMs: T0 - 60_000 + i * 33.33 }))!,
    );
  expect(tl.stats().video.reanchors).toBe(1);
  expect(tl.stats().video.clampedNonMonotonic).toBe(0);
  const steps = after.slice(1).map((f, i) => f.timestampUs - after[i]!.timestampUs);
  for (const s of steps) expect(Math.abs(s - 33_333)).toBeLessThanOrEqual(1000);
});

test('the capture delay is the least one seen until the recording starts: a late first key frame does not set it', () => {
  const tl = new MediaTimeline();
  // Audio flows first (20 ms after capture); the first key frame is paced out 120 ms late; deltas 10 ms.
  for (let i = 0; i < 10; i++)
    tl.push(frame('audio', i * 960, T0 + i * 20 + 20, { captureTimeMs: T0 + i * 20 }));
  const key = tl.push(frame('video', 0, T0 + 200 + 120, { key: true, captureTimeMs: T0 + 200 }))!;
  const next = tl.push(frame('video', 3000, T0 + 233 + 10, { captureTimeMs: T0 + 233.3 }))!;
  expect(key.wallClockMs - (T0 + 200)).toBe(20);
  expect(Math.round(next.wallClockMs - (T0 + 233.3))).toBe(20);
  // Once recording, a smaller delay no longer moves anything (the audio already encoded would not follow).
  const later = tl.push(frame('video', 6000, T0 + 266.7 + 1, { captureTimeMs: T0 + 266.7 }))!;
  expect(Math.round(later.wallClockMs - (T0 + 266.7))).toBe(20);
});

test('a first key frame at x.5 ms or later (the whole-ms origin rounds up) is the origin, not before it', () => {
  for (const fraction of [0.5, 0.7, 0.99, 0.2]) {
    const tl = new MediaTimeline();
    const at = T0 + 100 + fraction;
    const key = tl.push(frame('video', 9000, at, { key: true, captureTimeMs: at - 30 }));
    expect(key, `key frame at +${fraction} ms`).not.toBeNull();
    expect(key!.timestampUs).toBe(0);
    expect(tl.push(frame('video', 12000, at + 33, { captureTimeMs: at + 3 }))?.timestampUs).toBe(33_000);
    expect(tl.stats().video.droppedBeforeOrigin).toBe(0);
    // Without capture times too (placed by the receive time).
    const plain = new MediaTimeline();
    expect(plain.push(frame('video', 9000, at, { key: true }))?.timestampUs, `plain +${fraction}`).toBe(0);
  }
});
