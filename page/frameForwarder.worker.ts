/**
 * The receiver-side encoded transform, one worker per track kind. Every frame is copied onto the agent's
 * frame WebSocket (opened here, in the worker, so frames never cross the main thread) and then handed back
 * to the decoder: a transform that drops frames makes Chromium send a PLI every ~0.4 s.
 */
import { codecFromMimeType, encodeFrame, type TrackKind } from '../agent/bridge/wire.js';
import { KeyFrameRequester } from './keyFrameRequester.js';
import type { ForwarderCounters, ForwarderOptions, WorkerToMain } from './workerProtocol.js';

/** Above this much unsent data the agent is not keeping up: skip frames rather than grow memory. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
const COUNTERS_INTERVAL_MS = 1_000;
const SOCKET_RETRY_MAX_MS = 5_000;

interface FrameMetadata {
  mimeType?: string;
  rtpTimestamp?: number;
  synchronizationSource?: number;
  width?: number;
  height?: number;
  /** ms relative to this worker's performance.timeOrigin (Chromium; not yet in lib.dom). */
  receiveTime?: number;
}

type EncodedFrame = (RTCEncodedVideoFrame | RTCEncodedAudioFrame) & { type?: RTCEncodedVideoFrameType };

const scope = self as unknown as DedicatedWorkerGlobalScope;

function post(message: WorkerToMain): void {
  scope.postMessage(message);
}

function log(level: 'debug' | 'info' | 'warn' | 'error', msg: string, data?: Record<string, unknown>): void {
  post({ type: 'log', level, msg, ...(data ? { data } : {}) });
}

function isForwarderOptions(value: unknown): value is ForwarderOptions {
  if (typeof value !== 'object' || value === null) return false;
  const o = value as Record<string, unknown>;
  return (
    (o.kind === 'video' || o.kind === 'audio') &&
    typeof o.frameUrl === 'string' &&
    typeof o.keyframeIntervalMs === 'number'
  );
}

class FrameForwarder {
  readonly #kind: TrackKind;
  readonly #url: string;
  readonly #keyFrames: KeyFrameRequester | undefined;
  #socket: WebSocket | undefined;
  #seq = 0;
  #retryMs = 250;
  readonly #counters: ForwarderCounters;

  constructor(options: ForwarderOptions, transformer: RTCRtpScriptTransformer) {
    this.#kind = options.kind;
    this.#url = `${options.frameUrl}&kind=${options.kind}`;
    this.#counters = {
      kind: options.kind,
      framesSeen: 0,
      framesForwarded: 0,
      framesSkipped: 0,
      bytesForwarded: 0,
      keyFrames: 0,
      keyFrameRequests: 0,
      keyFrameRequestFailures: 0,
      mimeType: '',
      width: 0,
      height: 0,
      socketOpen: false,
    };
    if (options.kind === 'video') {
      this.#keyFrames = new KeyFrameRequester(
        () => transformer.sendKeyFrameRequest(),
        options.keyframeIntervalMs,
        (err) => log('warn', 'key frame request failed', { err: String(err) }),
      );
    }
    this.#connect();
    setInterval(() => this.#postCounters(), COUNTERS_INTERVAL_MS);
    void this.#pump(transformer);
  }

  #connect(): void {
    const ws = new WebSocket(this.#url);
    ws.binaryType = 'arraybuffer';
    this.#socket = ws;
    ws.onopen = () => {
      this.#retryMs = 250;
      this.#seq = 0;
      this.#counters.socketOpen = true;
      log('info', 'frame socket open', { kind: this.#kind });
      // Recording starts now: it has to begin with a key frame.
      this.#keyFrames?.request();
    };
    ws.onmessage = (event: MessageEvent) => {
      if (typeof event.data !== 'string') return;
      try {
        const msg = JSON.parse(event.data) as { type?: unknown };
        if (msg.type === 'request-keyframe') this.#keyFrames?.request();
      } catch {
        log('warn', 'unparseable message on the frame socket', { kind: this.#kind });
      }
    };
    ws.onclose = (event: CloseEvent) => {
      if (this.#socket !== ws) return;
      this.#counters.socketOpen = false;
      this.#socket = undefined;
      log('warn', 'frame socket closed, reconnecting', {
        kind: this.#kind,
        code: event.code,
        retryMs: this.#retryMs,
      });
      setTimeout(() => this.#connect(), this.#retryMs);
      this.#retryMs = Math.min(this.#retryMs * 2, SOCKET_RETRY_MAX_MS);
    };
  }

  async #pump(transformer: RTCRtpScriptTransformer): Promise<void> {
    const reader = transformer.readable.getReader() as ReadableStreamDefaultReader<EncodedFrame>;
    const writer = transformer.writable.getWriter() as WritableStreamDefaultWriter<EncodedFrame>;
    for (;;) {
      const { done, value: frame } = await reader.read();
      if (done) break;
      try {
        this.#forward(frame);
      } catch (err) {
        log('error', 'could not forward a frame', { kind: this.#kind, err: String(err) });
      }
      // Always, whatever happened above: the decoder must see every frame.
      await writer.write(frame);
    }
    log('info', 'transform stream ended', { kind: this.#kind });
  }

  #forward(frame: EncodedFrame): void {
    const c = this.#counters;
    c.framesSeen++;
    const meta = frame.getMetadata() as FrameMetadata;
    const key = this.#kind === 'video' ? frame.type === 'key' : true;
    if (this.#kind === 'video') {
      if (key) c.keyFrames++;
      this.#keyFrames?.onFrame(key);
      c.keyFrameRequests = this.#keyFrames?.requests ?? 0;
      c.keyFrameRequestFailures = this.#keyFrames?.failures ?? 0;
    }
    if (meta.mimeType) c.mimeType = meta.mimeType;
    if (meta.width) c.width = meta.width;
    if (meta.height) c.height = meta.height;

    const ws = this.#socket;
    if (ws?.readyState !== WebSocket.OPEN || ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      c.framesSkipped++;
      // Counted in the sequence so the agent sees the gap.
      if (ws?.readyState === WebSocket.OPEN) this.#seq++;
      return;
    }
    // receiveTime is relative to this context's time origin: convert here, not in the main thread.
    const receiveTimeMs = performance.timeOrigin + (meta.receiveTime ?? performance.now());
    const message = encodeFrame(
      {
        kind: this.#kind,
        key,
        codec: codecFromMimeType(meta.mimeType),
        rtpTimestamp: meta.rtpTimestamp ?? frame.timestamp,
        receiveTimeMs,
        ssrc: meta.synchronizationSource ?? 0,
        width: meta.width ?? 0,
        height: meta.height ?? 0,
        seq: this.#seq++,
      },
      frame.data,
    );
    ws.send(message);
    c.framesForwarded++;
    c.bytesForwarded += frame.data.byteLength;
  }

  #postCounters(): void {
    post({ type: 'counters', counters: { ...this.#counters } });
  }
}

scope.addEventListener('rtctransform', (event: Event) => {
  const transformer = (event as RTCTransformEvent).transformer;
  const options: unknown = transformer.options;
  if (!isForwarderOptions(options)) {
    log('error', 'transform started without valid options; frames pass through unrecorded');
    void transformer.readable.pipeTo(transformer.writable);
    return;
  }
  new FrameForwarder(options, transformer);
});
