/**
 * The reference master page: a KVS WebRTC MASTER with the camera and microphone, for trying the agent by
 * hand or from tests. Fill the form and press Start, or pass everything in the query string with
 * `autostart=1`.
 */
import { MasterSession } from './masterSession.js';
import type { MasterState } from './masterState.js';

declare global {
  interface Window {
    masterState: MasterState;
    masterLog?: (level: 'info' | 'warn' | 'error', msg: string) => void;
  }
}

const FIELDS = ['endpoint', 'region', 'channel', 'accessKeyId', 'secretAccessKey', 'sessionToken'] as const;
type Field = (typeof FIELDS)[number];

const form = document.querySelector<HTMLFormElement>('#settings')!;
const startButton = document.querySelector<HTMLButtonElement>('#start')!;
const stopButton = document.querySelector<HTMLButtonElement>('#stop')!;
const logList = document.querySelector<HTMLOListElement>('#log')!;
const viewersTable = document.querySelector<HTMLTableElement>('#viewers')!;
const signalingOut = document.querySelector<HTMLElement>('#signaling')!;
const preview = document.querySelector<HTMLVideoElement>('#preview')!;
const maintainBox = document.querySelector<HTMLInputElement>('#maintainResolution')!;

const idle: MasterState = { signaling: 'idle', viewers: {} };
window.masterState = idle;
let session: MasterSession | undefined;

function input(name: Field): HTMLInputElement {
  return form.elements.namedItem(name) as HTMLInputElement;
}

function log(level: 'info' | 'warn' | 'error', msg: string): void {
  const li = document.createElement('li');
  li.className = level;
  li.textContent = `${new Date().toISOString().slice(11, 23)} ${msg}`;
  logList.append(li);
  while (logList.childElementCount > 300) logList.firstElementChild?.remove();
  if (level === 'error') window.masterState.error = msg;
  // Set by scripts/lib/masterBrowser.ts to feed the demo/test log (no console use in product code).
  window.masterLog?.(level, msg);
}

function render(): void {
  const state = window.masterState;
  signalingOut.textContent = state.signaling;
  const rows = Object.entries(state.viewers).map(([id, v]) => {
    const tr = document.createElement('tr');
    for (const value of [id, v.connectionState, v.codec, `${v.width}x${v.height}`, String(v.framesEncoded)]) {
      const td = document.createElement('td');
      td.textContent = value;
      tr.append(td);
    }
    return tr;
  });
  viewersTable.tBodies[0]!.replaceChildren(...rows);
}

async function start(): Promise<void> {
  if (session) return;
  const value = (f: Field) => input(f).value.trim();
  if (!value('region') || !value('channel') || !value('accessKeyId') || !value('secretAccessKey')) {
    log('error', 'region, channel name, access key id and secret access key are required');
    return;
  }
  startButton.disabled = true;
  stopButton.disabled = false;
  const current = new MasterSession(
    {
      endpoint: value('endpoint'),
      region: value('region'),
      channelName: value('channel'),
      credentials: {
        accessKeyId: value('accessKeyId'),
        secretAccessKey: value('secretAccessKey'),
        ...(value('sessionToken') ? { sessionToken: value('sessionToken') } : {}),
      },
      maintainResolution: maintainBox.checked,
    },
    log,
  );
  session = current;
  window.masterState = current.state;
  try {
    await current.start();
    preview.srcObject = current.localStream ?? null;
  } catch (err) {
    current.state.signaling = 'error';
    log('error', `start failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function stop(): void {
  session?.stop();
  session = undefined;
  preview.srcObject = null;
  window.masterState = { ...idle, viewers: {} };
  startButton.disabled = false;
  stopButton.disabled = true;
  log('info', 'stopped');
}

// Query parameters fill the form (never logged: they may hold a secret key).
const params = new URLSearchParams(location.search);
for (const f of FIELDS) {
  const v = params.get(f);
  if (v !== null) input(f).value = v;
}
maintainBox.checked = params.get('maintainResolution') === '1';

form.addEventListener('submit', (event) => {
  event.preventDefault();
  void start();
});
stopButton.addEventListener('click', stop);
window.addEventListener('error', (event) => log('error', `page error: ${event.message}`));
window.addEventListener('unhandledrejection', (event: PromiseRejectionEvent) =>
  log('error', `unhandled rejection: ${String(event.reason)}`),
);
setInterval(render, 500);
if (params.get('autostart') === '1') void start();
