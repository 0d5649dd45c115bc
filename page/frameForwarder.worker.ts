/**
 * The receiver-side encoded transform, one worker per track kind. Every frame is copied onto the agent's
 * frame WebSocket (opened here, in the worker, so frames never cross the main thread) and then handed back
 * to the decoder: a transform that drops frames makes Chromium send a PLI every ~0.4 s.
 */
import {
  codecFromMimeType,
  encodeFrameInto,
  FRAME_HEADER_BYTES,
  type TrackKind,
} from '../agent/bridge/wire.js';
import { RetryStreak, retryPolicy } from '../agent/policy/backoff.js';
import { KeyFrameRequester } from './keyFrameRequester.js';
import type { ForwarderCounters, ForwarderOptions, WorkerToMain } from './workerProtocol.js';

/** Above this much unsent data the agent is not keeping up: skip frames rather than grow memory. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
const COUNTERS_INTERVAL_MS = 1_000;
/** Longer messages from the agent are not even parsed (it only sends `{"type":"request-keyframe"}`). */
const MAX_AGENT_MESSAGE_CHARS = 1024;

interface FrameMetadata {
  mimeType?: string;
  rtpTimestamp?: number;
  synchronizationSource?: number;
  width?: number;
  height?: number;
  /** ms relative to this worker's performance.timeOrigin (Chromium; not yet in lib.dom). */
  receiveTime?: number;
  /** From abs-capture-time when the master sends it, on the same time origin as receiveTime. */
  captureTime?: number;
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
  /** See `seq` in agent/bridge/wire.ts: every frame after the first socket opened, sent or skipped. */
  #seq = 0;
  /** Where each message is assembled: WebSocket.send copies it (see encodeFrameInto). */
  #scratch = new ArrayBuffer(0);
  #numbering = false;
  /** Frames were skipped since the last one sent: the next key frame is needed at once. */
  #skipping = false;
  readonly #retries = new RetryStreak(retryPolicy('frameSocket'));
  readonly #counters: ForwarderCounters;
  #lastKeyRtp: number | undefined;

  constructor(options: ForwarderOptions, transformer: RTCRtpScriptTransformer) {
    this.#kind = options.kind;
    this.#url = `${options.frameUrl}&kind=${options.kind}`;
    this.#counters = {
      kind: options.kind,
      framesSeen: 0,
      framesForwarded: 0,
      framesSkipped: 0,
      frameSocketInvalid: 0,
      bytesForwarded: 0,
      keyFrames: 0,
      keyFrameIntervalMs: 0,
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
      this.#retries.succeeded();
      // Numbering starts with the first connection and then never restarts: the agent sees every frame
      // skipped while a socket was down or backed up as a gap in `seq`, across reconnects too.
      this.#numbering = true;
      this.#counters.socketOpen = true;
      log('info', 'frame socket open', { kind: this.#kind });
      // Recording starts now: it has to begin with a key frame.
      this.#keyFrames?.request();
    };
    ws.onmessage = (event: MessageEvent) => this.#onAgentMessage(event.data);
    ws.onclose = (event: CloseEvent) => {
      if (this.#socket !== ws) return;
      this.#counters.socketOpen = false;
      this.#socket = undefined;
      const retryMs = this.#retries.failed() ?? retryPolicy('frameSocket').options.maxMs;
      log('warn', 'frame socket closed, reconnecting', {
        kind: this.#kind,
        code: event.code,
        retryMs,
        attempt: this.#retries.attempts,
      });
      setTimeout(() => this.#connect(), retryMs);
    };
  }

  /** The agent only ever sends `{"type":"request-keyframe"}`; anything else is counted and dropped. */
  #onAgentMessage(data: unknown): void {
    let type: unknown;
    if (typeof data === 'string' && data.length <= MAX_AGENT_MESSAGE_CHARS) {
      try {
        const msg: unknown = JSON.parse(data);
        if (typeof msg === 'object' && msg !== null) type = (msg as { type?: unknown }).type;
      } catch {
        // Counted below.
      }
    }
    if (type === 'request-keyframe') {
      this.#keyFrames?.request();
      return;
    }
    const n = ++this.#counters.frameSocketInvalid;
    if (n <= 5 || n % 100 === 0)
      log('warn', 'invalid message from the agent on the frame socket', { kind: this.#kind, count: n });
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
      if (key) {
        c.keyFrames++;
        // RTP time, not arrival time: what the master's encoder did, whatever the network did to it.
        const rtp = meta.rtpTimestamp ?? frame.timestamp;
        if (this.#lastKeyRtp !== undefined)
          c.keyFrameIntervalMs = Math.round(((rtp - this.#lastKeyRtp) >>> 0) / 90);
        this.#lastKeyRtp = rtp;
      }
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
      // Numbered all the same, so the agent sees the gap.
      if (this.#numbering) this.#seq++;
      this.#skipping = true;
      return;
    }
    if (this.#skipping) {
      // What follows a gap cannot be decoded until the next key frame: ask for one now (the agent will too).
      this.#skipping = false;
      if (!key) this.#keyFrames?.request();
    }
    // receiveTime is relative to this context's time origin: convert here, not in the main thread.
    const receiveTimeMs = performance.timeOrigin + (meta.receiveTime ?? performance.now());
    const data = frame.data;
    const needed = FRAME_HEADER_BYTES + data.byteLength;
    // Grown by half again, so a key frame now and then does not reallocate it every time.
    if (this.#scratch.byteLength < needed) this.#scratch = new ArrayBuffer(Math.ceil(needed * 1.5));
    const message = encodeFrameInto(
      this.#scratch,
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
        ...(meta.captureTime ? { captureTimeMs: performance.timeOrigin + meta.captureTime } : {}),
      },
      data,
    );
    ws.send(message);
    c.framesForwarded++;
    c.bytesForwarded += data.byteLength;
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
