import puppeteer from 'puppeteer-core';
const b = await puppeteer.launch({ executablePath: '/usr/lib/chromium/chromium', headless: true, args: ['--no-sandbox','--disable-gpu','--headless=new','--use-fake-ui-for-media-stream','--use-fake-device-for-media-stream=fps=30'] });
const p = await b.newPage();
await p.goto('about:blank');
const r = await p.evaluate(async (negotiate) => {
  const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 }, audio: true });
  const sender = new RTCPeerConnection();
  const viewer = new RTCPeerConnection({ encodedInsertableStreams: true });
  sender.onicecandidate = (e) => e.candidate && viewer.addIceCandidate(e.candidate);
  viewer.onicecandidate = (e) => e.candidate && sender.addIceCandidate(e.candidate);
  const tv = viewer.addTransceiver('video', { direction: 'recvonly' });
  const ta = viewer.addTransceiver('audio', { direction: 'recvonly' });
  if (negotiate) for (const t of [tv, ta]) t.setHeaderExtensionsToNegotiate(t.getHeaderExtensionsToNegotiate().map(e => e.uri.includes('abs-capture-time') ? { ...e, direction: 'recvonly' } : e));
  const samples = { video: [], audio: [] };
  for (const [kind, t] of [['video', tv], ['audio', ta]]) {
    const { readable, writable } = t.receiver.createEncodedStreams();
    readable.pipeThrough(new TransformStream({ transform(frame, c) {
      if (samples[kind].length < 400) samples[kind].push({ m: frame.getMetadata(), now: performance.now(), ts: frame.timestamp });
      c.enqueue(frame);
    } })).pipeTo(writable);
  }
  const offer = await viewer.createOffer();
  await viewer.setLocalDescription(offer);
  await sender.setRemoteDescription(offer);
  for (const track of stream.getTracks()) {
    const tr = sender.getTransceivers().find(x => x.receiver.track.kind === track.kind);
    tr.direction = 'sendonly';
    await tr.sender.replaceTrack(track);
  }
  const answer = await sender.createAnswer();
  await sender.setLocalDescription(answer);
  await viewer.setRemoteDescription(answer);
  await new Promise(r => setTimeout(r, 8000));
  const ssrc = { video: tv.receiver.getSynchronizationSources(), audio: ta.receiver.getSynchronizationSources() };
  const stats = [];
  (await viewer.getStats()).forEach(s => { if (s.type === 'remote-outbound-rtp' || s.type === 'inbound-rtp') stats.push(s); });
  const pick = (arr) => [arr[5], arr[arr.length - 1]];
  return { answerExt: answer.sdp.split('\r\n').filter(l => l.includes('abs-capture')), video: pick(samples.video), audio: pick(samples.audio), ssrc, timeOrigin: performance.timeOrigin, stats: stats.map(s => ({ type: s.type, kind: s.kind, remoteTimestamp: s.remoteTimestamp, estimatedPlayoutTimestamp: s.estimatedPlayoutTimestamp, timestamp: s.timestamp })) };
}, process.argv[2] !== 'off');
console.log(JSON.stringify(r, null, 1));
await b.close();
