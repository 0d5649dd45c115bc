import { cp } from 'node:fs/promises';
import { expect, test } from '@playwright/test';
import { createLogger } from '../../agent/log.js';
import { DEFAULT_EMULATOR_CREDENTIALS, startEmulator, type Emulator } from '../../emulator/server.js';
import { decodeErrors, probeFrames, segmentsIn } from '../../scripts/lib/mediaProbe.js';
import {
  beepOnsets,
  decodedAudio,
  matchFrames,
  recordedVideoFrames,
  summarizeSync,
  syncEvents,
} from '../../scripts/lib/syncProbe.js';
import { clipSpec, loadClip } from '../../WebRTC/synthetic/clip.js';
import { SyntheticMaster, type SentFrame } from '../../WebRTC/synthetic/syntheticMaster.js';
import {
  metricValue,
  report,
  startRecoveryAgent,
  waitForVideoFrames,
  type RecoveryAgent,
} from '../support/recoveryHarness.js';

/**
 * The agent records a master that is not Chromium: the synthetic master (werift + the KVS JS SDK's signaling,
 * pre-encoded H.264 + Opus with flashes and beeps) against the emulator, the real agent with the file sink.
 * Every recorded frame is matched byte for byte to the frame sent; the flashes and beeps give the A/V offset.
 */
test.describe.configure({ mode: 'serial' });

const logger = createLogger({ level: 'warn' });
let emulator: Emulator;
let agent: RecoveryAgent | undefined;
let master: SyntheticMaster | undefined;

test.beforeAll(async () => {
  emulator = await startEmulator({ port: 0, logger: logger.child({ component: 'emulator' }) });
});

test.afterAll(async () => {
  await emulator?.stop();
});

test.afterEach(async () => {
  // A failed run keeps what was recorded, for a look with ffprobe.
  if (agent && test.info().status !== test.info().expectedStatus)
    await cp(agent.dir, test.info().outputPath('recording'), { recursive: true }).catch(() => undefined);
  await agent?.dispose(test.info());
  await master?.stop();
  agent = undefined;
  master = undefined;
});

test('records the synthetic master: every frame sent after the first key frame, a resolution change, A/V offsets measured', async () => {
  test.setTimeout(240_000);
  const clips = [await loadClip(clipSpec(640, 360)), await loadClip(clipSpec(1280, 720))];
  const sent: SentFrame[] = [];
  master = new SyntheticMaster({
    region: emulator.region,
    channelName: 'webrtc-kvs-agent-channel',
    endpoint: emulator.url,
    credentials: { ...DEFAULT_EMULATOR_CREDENTIALS },
    clips,
    logger: logger.child({ component: 'synthetic-master' }),
    onSent: (f) => sent.push(f),
  });
  await master.start();
  agent = await startRecoveryAgent({
    emulator,
    agentEnv: {
      AWS_ACCESS_KEY_ID: DEFAULT_EMULATOR_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: DEFAULT_EMULATOR_CREDENTIALS.secretAccessKey,
      AWS_REGION: emulator.region,
    },
  });
  const answeredAt = Date.now();
  await agent.agent.waitForLog((l) => l.msg === 'recording', 90_000);
  const ops = await agent.opsUrl();
  await waitForVideoFrames(ops, 0, 240, 60_000);
  master.setClip(1);
  const before = await metricValue(ops, 'kvs_agent_frames_total', { kind: 'video' });
  await waitForVideoFrames(ops, before, 240, 60_000);
  const exit = await agent.stop();
  expect(exit.code, agent.agent.stderr.slice(-20).join('\n')).toBe(0);
  report(test.info(), 'master', { ...master.stats, answeredToStopS: (Date.now() - answeredAt) / 1000 });

  const files = await segmentsIn(agent.dir);
  expect(files.length).toBeGreaterThan(0);
  const recorded = [];
  const onsets = [];
  const sizes = new Set<string>();
  for (const file of files) {
    expect(await decodeErrors(file), file).toBe('');
    for (const f of await probeFrames(file, 'v')) if (f.width) sizes.add(`${f.width}x${f.height}`);
    recorded.push(await recordedVideoFrames(file));
    const audio = await decodedAudio(file);
    onsets.push(audio ? beepOnsets(audio) : []);
  }
  expect([...sizes]).toEqual(['640x360', '1280x720']);
  const match = matchFrames(sent, recorded, clips[0]!.spec.frames);
  const total = recorded.reduce((n, r) => n + r.length, 0);
  report(test.info(), 'frames', {
    sent: sent.filter((f) => f.kind === 'video').length,
    recorded: total,
    matched: match.matched.length,
    lost: match.lost.length,
    unknown: match.unknown,
    files: files.length,
  });
  expect(match.unknown, 'recorded frames that were never sent').toBe(0);
  expect(match.matched[0]?.sent.key, 'the recording starts at a key frame').toBe(true);
  // The master stops after the agent: frames sent after the agent's last one are not "lost".
  const lastSeq = match.matched.at(-1)!.sent.seq;
  expect(match.lost.filter((s) => s < lastSeq)).toEqual([]);
  const events = syncEvents(match, onsets);
  const sync = summarizeSync(events);
  report(test.info(), 'A/V offset (audio − video, ms)', {
    ...sync,
    offsets: events.map((e) => Math.round(e.offsetMs * 10) / 10),
  });
  expect(sync?.events ?? 0, 'flashes matched with beeps').toBeGreaterThan(10);
});
