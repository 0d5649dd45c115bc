import { expect, test } from '@playwright/test';
import { MAX_SIGNALING_MESSAGE_CHARS, parseSignalingMessage } from '../../page/signalingMessages.js';

/** The viewer page's parser for what arrives on the signaling socket (untrusted: KVS relays any master). */
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64');
const sdp = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n';

test('answers, candidates and service messages parse to their shapes', () => {
  expect(
    parseSignalingMessage(
      JSON.stringify({
        messageType: 'SDP_ANSWER',
        senderClientId: 'MASTER',
        messagePayload: b64({ type: 'answer', sdp }),
      }),
    ),
  ).toEqual({ ok: true, message: { messageType: 'SDP_ANSWER', sdp, senderClientId: 'MASTER' } });
  const candidate = {
    candidate: 'candidate:1 1 udp 1 127.0.0.1 5000 typ host',
    sdpMid: '0',
    sdpMLineIndex: 0,
  };
  expect(
    parseSignalingMessage(JSON.stringify({ messageType: 'ICE_CANDIDATE', messagePayload: b64(candidate) })),
  ).toEqual({ ok: true, message: { messageType: 'ICE_CANDIDATE', candidate } });
  expect(parseSignalingMessage(JSON.stringify({ messageType: 'GO_AWAY', messagePayload: '' }))).toEqual({
    ok: true,
    message: { messageType: 'GO_AWAY' },
  });
  expect(parseSignalingMessage(JSON.stringify({ messageType: 'RECONNECT_ICE_SERVER' }))).toEqual({
    ok: true,
    message: { messageType: 'RECONNECT_ICE_SERVER' },
  });
  const statusResponse = { correlationId: 'c1', errorType: 'InvalidArgumentException', statusCode: '400' };
  expect(parseSignalingMessage(JSON.stringify({ messageType: 'STATUS_RESPONSE', statusResponse }))).toEqual({
    ok: true,
    message: { messageType: 'STATUS_RESPONSE', statusResponse },
  });
});

test('invalid, unexpected and oversized messages are rejected with a reason, never thrown', () => {
  const cases: Array<[unknown, string]> = [
    [new ArrayBuffer(4), 'binary message'],
    ['x'.repeat(MAX_SIGNALING_MESSAGE_CHARS + 1), 'oversized message'],
    ['{', 'not JSON'],
    ['null', 'not a JSON object'],
    ['[]', 'not a JSON object'],
    ['"text"', 'not a JSON object'],
    [JSON.stringify({ messagePayload: 'e30=' }), 'no messageType'],
    [JSON.stringify({ messageType: 'GO_AWAY', senderClientId: 7 }), 'bad senderClientId'],
    [JSON.stringify({ messageType: 'NEW_THING' }), 'unknown messageType'],
    [
      JSON.stringify({ messageType: 'SDP_OFFER', messagePayload: b64({ type: 'offer', sdp }) }),
      'unexpected SDP_OFFER',
    ],
    [JSON.stringify({ messageType: 'SDP_ANSWER' }), 'SDP_ANSWER without payload'],
    [
      JSON.stringify({ messageType: 'SDP_ANSWER', messagePayload: '%%%' }),
      'SDP_ANSWER payload is not an answer',
    ],
    [
      JSON.stringify({ messageType: 'SDP_ANSWER', messagePayload: b64({ type: 'offer', sdp }) }),
      'SDP_ANSWER payload is not an answer',
    ],
    [
      JSON.stringify({ messageType: 'SDP_ANSWER', messagePayload: b64({ type: 'answer', sdp: 'hello' }) }),
      'SDP_ANSWER without a usable sdp',
    ],
    [
      JSON.stringify({ messageType: 'ICE_CANDIDATE', messagePayload: b64({ candidate: 1 }) }),
      'ICE_CANDIDATE payload is not a candidate',
    ],
    [
      JSON.stringify({
        messageType: 'ICE_CANDIDATE',
        messagePayload: b64({ candidate: 'c', sdpMLineIndex: -1 }),
      }),
      'ICE_CANDIDATE payload is not a candidate',
    ],
    [
      JSON.stringify({ messageType: 'STATUS_RESPONSE', statusResponse: 'x' }),
      'STATUS_RESPONSE without statusResponse',
    ],
  ];
  for (const [data, reason] of cases)
    expect(parseSignalingMessage(data), String(data).slice(0, 60)).toEqual({ ok: false, reason });
});

test('random bytes and mutated messages never throw', () => {
  const valid = JSON.stringify({ messageType: 'SDP_ANSWER', messagePayload: b64({ type: 'answer', sdp }) });
  let seed = 42;
  const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < 2_000; i++) {
    const chars = [...valid];
    for (let k = 0; k < 1 + Math.floor(random() * 5); k++)
      chars[Math.floor(random() * chars.length)] = String.fromCharCode(Math.floor(random() * 128));
    expect(() => parseSignalingMessage(chars.join(''))).not.toThrow();
  }
});
