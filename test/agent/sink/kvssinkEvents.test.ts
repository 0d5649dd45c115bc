import { expect, test } from '@playwright/test';
import { describeKvsStatus, parseKvssinkLine } from '../../../agent/sink/kvssinkEvents.js';

test('stream errors carry the PutMedia ErrorId and an explanation', () => {
  // The exact line kvssink v3.5.0 logs (KvsSinkStreamCallbackProvider::streamErrorReportHandler).
  const event = parseKvssinkLine(
    'ERROR Reported stream error. Errored timecode: 920000 Status: 0x5200007d for webrtc-kvs-agent-stream',
  );
  expect(event).toMatchObject({
    type: 'stream-error',
    status: 0x5200007d,
    statusHex: '0x5200007d',
    timecode: 920000,
    errorId: 4011,
    name: 'FRAMES_MISSING_FOR_TRACK',
  });
  for (const [status, errorId] of [
    [0x5200005e, 4002],
    [0x52000060, 4004],
    [0x52000062, 4006],
    [0x5200007c, 4010],
    [0x5200007e, 4012],
  ] as const) {
    expect(describeKvsStatus(status).errorId).toBe(errorId);
  }
});

test('Annex B, credential and endpoint failures are explained', () => {
  expect(describeKvsStatus(0x3200000d).explanation).toContain('stream-format=avc');
  expect(describeKvsStatus(0x52000010).credentials).toBe(true);
  expect(describeKvsStatus(0x52000011).explanation).toContain('unreachable');
  expect(describeKvsStatus(0x1234).name).toBe('0x1234');
});

test('bus errors and dropped frames are recognised; ordinary lines are not events', () => {
  expect(
    parseKvssinkLine(
      'ERROR: from element /GstPipeline:pipeline0/GstKvsSink:sink: Could not open resource for writing.',
    ),
  ).toEqual({
    type: 'bus-error',
    element: '/GstPipeline:pipeline0/GstKvsSink:sink',
    message: 'Could not open resource for writing.',
  });
  expect(parseKvssinkLine('DEBUG Dropping frame with flag: 1600 for s')).toEqual({
    type: 'dropped-frame',
    detail: 'Dropping frame with flag: 1600',
  });
  expect(parseKvssinkLine('INFO  Getting URL from env for webrtc-kvs-agent-stream')).toBeUndefined();
  expect(parseKvssinkLine('Setting pipeline to PLAYING ...')).toBeUndefined();
});

test('fragment acks (kvssink TRACE) are events with their type and timecode', () => {
  expect(
    parseKvssinkLine('TRACE [webrtc-kvs-agent-stream] Ack timestamp for 3 is 17961795832240000'),
  ).toEqual({ type: 'fragment-ack', ack: 'persisted', timecode: 17961795832240000 });
  expect(parseKvssinkLine('TRACE [s] Ack timestamp for 2 is 10')).toMatchObject({ ack: 'received' });
  expect(parseKvssinkLine('TRACE [s] Ack timestamp for 1 is 10')).toMatchObject({ ack: 'buffering' });
  expect(parseKvssinkLine('TRACE [s] Ack timestamp for 9 is 10')).toMatchObject({ ack: 'undefined' });
});
