import type { AgentToPage, IceServer, PageToAgent, ViewerConfig } from '../agent/bridge/controlProtocol.js';

type Listener = (message: AgentToPage) => void;

/**
 * The page's JSON channel to the agent (`/control?token=…`). It also presigns signaling URLs: the agent
 * holds the AWS credentials and the page never sees them.
 */
export class ControlChannel {
  readonly #ws: WebSocket;
  readonly #listeners = new Set<Listener>();
  readonly #pendingPresigns = new Map<number, { resolve(url: string): void; reject(err: Error): void }>();
  #nextId = 1;
  readonly opened: Promise<void>;
  readonly closed: Promise<void>;

  constructor(url: string) {
    this.#ws = new WebSocket(url);
    this.opened = new Promise((resolve, reject) => {
      this.#ws.addEventListener('open', () => resolve(), { once: true });
      this.#ws.addEventListener('close', () => reject(new Error('control channel closed before it opened')), {
        once: true,
      });
    });
    this.opened.catch(() => undefined);
    this.closed = new Promise((resolve) => {
      this.#ws.addEventListener('close', () => {
        for (const p of this.#pendingPresigns.values()) p.reject(new Error('control channel closed'));
        this.#pendingPresigns.clear();
        resolve();
      });
    });
    this.#ws.addEventListener('message', (event: MessageEvent) => this.#onMessage(event));
  }

  get isOpen(): boolean {
    return this.#ws.readyState === WebSocket.OPEN;
  }

  send(message: PageToAgent): boolean {
    if (!this.isOpen) return false;
    this.#ws.send(JSON.stringify(message));
    return true;
  }

  onMessage(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Says hello and resolves with the agent's answer; sent again for every (re)connection (fresh ICE servers). */
  requestConfig(timeoutMs = 30_000): Promise<ViewerConfig> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`no config from the agent within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.onMessage((msg) => {
        if (msg.type !== 'config') return;
        clearTimeout(timer);
        off();
        const { type: _type, ...config } = msg;
        resolve(config);
      });
      if (!this.send({ type: 'hello', userAgent: navigator.userAgent })) {
        clearTimeout(timer);
        off();
        reject(new Error('control channel is not open'));
      }
    });
  }

  /**
   * Fresh ICE servers for an ICE restart (RECONNECT_ICE_SERVER): the agent answers `ice-servers` with a
   * `config` message, whose `iceServers` are taken.
   */
  requestIceServers(reason: string, timeoutMs = 5_000): Promise<IceServer[]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`no ICE servers from the agent within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.onMessage((msg) => {
        if (msg.type !== 'config') return;
        clearTimeout(timer);
        off();
        resolve(msg.iceServers);
      });
      if (!this.send({ type: 'ice-servers', reason })) {
        clearTimeout(timer);
        off();
        reject(new Error('control channel is not open'));
      }
    });
  }

  /** The SDK's `requestSigner.getSignedURL`, answered by the agent. */
  presign(endpoint: string, queryParams: Record<string, string>, date?: Date): Promise<string> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pendingPresigns.set(id, { resolve, reject });
      const sent = this.send({
        type: 'presign',
        id,
        endpoint,
        queryParams,
        ...(date ? { date: date.getTime() } : {}),
      });
      if (!sent) {
        this.#pendingPresigns.delete(id);
        reject(new Error('control channel is not open'));
      }
    });
  }

  close(): void {
    this.#ws.close();
  }

  #onMessage(event: MessageEvent): void {
    if (typeof event.data !== 'string') return;
    let msg: AgentToPage;
    try {
      msg = JSON.parse(event.data) as AgentToPage;
    } catch {
      return;
    }
    // The agent is trusted, but a broken message must not throw in here.
    if (typeof msg !== 'object' || msg === null) return;
    if (msg.type === 'presigned' || msg.type === 'presign-failed') {
      const pending = this.#pendingPresigns.get(msg.id);
      if (!pending) return;
      this.#pendingPresigns.delete(msg.id);
      if (msg.type === 'presigned') pending.resolve(msg.url);
      else pending.reject(new Error(`the agent refused to presign: ${msg.message}`));
      return;
    }
    for (const listener of this.#listeners) listener(msg);
  }
}
