/**
 * The receive floor: a plain KVS WebRTC VIEWER per channel that receives the call and plays it in a <video>
 * element (Chromium decodes both tracks), with no transform, no worker and no bridge. `npm run bench` runs it
 * in the same Chromium build with the agent's flags, so "what receiving alone costs" is measured in the same
 * run as the agent. Everything comes from the query string: endpoint, region, channels (comma-separated),
 * accessKeyId, secretAccessKey, sessionToken. A reference page like the master page: it signs in the page.
 */
import { kvs, type KvsCredentials, type SignalingClient } from '../page/kvsSdk.js';
import { discoverMasterChannel } from './channelDiscovery.js';
import { requestSignerFor } from './emulatorSigner.js';
import type { FloorChannelState } from './floorState.js';

declare global {
  interface Window {
    floorState: Record<string, FloorChannelState>;
  }
}

const params = new URLSearchParams(location.search);
const credentials: KvsCredentials = {
  accessKeyId: params.get('accessKeyId') ?? '',
  secretAccessKey: params.get('secretAccessKey') ?? '',
  ...(params.get('sessionToken') ? { sessionToken: params.get('sessionToken')! } : {}),
};
const region = params.get('region') ?? 'ap-northeast-1';
const endpoint = params.get('endpoint') ?? '';
const channels = (params.get('channels') ?? '').split(',').filter(Boolean);
window.floorState = {};

async function receive(channelName: string, index: number): Promise<void> {
  const state: FloorChannelState = {
    connectionState: 'new',
    framesDecoded: 0,
    audioSamples: 0,
    width: 0,
    height: 0,
  };
  window.floorState[channelName] = state;
  const channel = await discoverMasterChannel({ region, channelName, credentials, endpoint, role: 'VIEWER' });
  const pc = new RTCPeerConnection({ iceServers: channel.iceServers });
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  video.width = 160;
  document.body.append(video);
  pc.addEventListener('track', (event) => {
    video.srcObject = event.streams[0] ?? new MediaStream([event.track]);
  });
  pc.addEventListener('connectionstatechange', () => (state.connectionState = pc.connectionState));
  const client: SignalingClient = new kvs.SignalingClient({
    channelARN: channel.channelARN,
    channelEndpoint: channel.wssEndpoint,
    region,
    role: kvs.Role.VIEWER,
    clientId: `floor-${Date.now()}-${index}`,
    requestSigner: requestSignerFor(region, credentials),
  });
  client.on('error', (err) => (state.error = err instanceof Error ? err.message : String(err)));
  client.on('sdpAnswer', (answer) => void pc.setRemoteDescription(answer));
  client.on('iceCandidate', (candidate) => void pc.addIceCandidate(candidate).catch(() => undefined));
  pc.addEventListener('icecandidate', (event) => {
    if (event.candidate) client.sendIceCandidate(event.candidate.toJSON());
  });
  client.on('open', () => {
    void (async () => {
      await pc.setLocalDescription(await pc.createOffer());
      client.sendSdpOffer(pc.localDescription!.toJSON());
    })();
  });
  client.open();
  setInterval(() => {
    void pc.getStats().then((report) => {
      report.forEach(
        (s: {
          type: string;
          kind?: string;
          framesDecoded?: number;
          totalSamplesReceived?: number;
          frameWidth?: number;
          frameHeight?: number;
        }) => {
          if (s.type !== 'inbound-rtp') return;
          if (s.kind === 'video') {
            state.framesDecoded = s.framesDecoded ?? 0;
            state.width = s.frameWidth ?? 0;
            state.height = s.frameHeight ?? 0;
          } else if (s.kind === 'audio') state.audioSamples = s.totalSamplesReceived ?? 0;
        },
      );
    });
  }, 1000);
}

channels.forEach((name, i) => {
  receive(name, i).catch((err: unknown) => {
    window.floorState[name] = {
      ...(window.floorState[name] ?? {
        connectionState: 'failed',
        framesDecoded: 0,
        audioSamples: 0,
        width: 0,
        height: 0,
      }),
      error: err instanceof Error ? err.message : String(err),
    };
  });
});
