import type {
  IceServer,
  MasterAnswerState,
  PageCounters,
  PageToAgent,
  SignalingState,
  ViewerConfig,
} from '../agent/bridge/controlProtocol.js';
import type { TrackKind } from '../agent/bridge/wire.js';
import { RetryStreak, retryPolicy } from '../agent/policy/backoff.js';
import {
  answerHasH264Video,
  audioCodecPreferences,
  CodecUnavailableError,
  videoCodecPreferences,
} from './codecPreferences.js';
import { kvs, type SignalingClient } from './kvsSdk.js';
import type { InboundSignaling } from './signalingMessages.js';
import { expectSignalingSocket } from './signalingTap.js';
import type { ForwarderCounters, ForwarderOptions, WorkerToMain } from './workerProtocol.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface SessionState {
  signaling: SignalingState;
  peer: RTCPeerConnectionState;
  ice: RTCIceConnectionState;
  master: MasterAnswerState;
}

export interface ViewerSessionHooks {
  presign(endpoint: string, queryParams: Record<string, string>, date?: Date): Promise<string>;
  state(state: SessionState): void;
  signalingEvent(event: Extract<PageToAgent, { type: 'signaling-event' }>['event'], detail?: string): void;
  log(level: LogLevel, msg: string, data?: Record<string, unknown>): void;
  counters(counters: ForwarderCounters): void;
  count(counter: keyof PageCounters, by?: number): void;
  /** A signaling message was dropped as invalid; the owner counts it and logs rate-limited. */
  rejected(reason: string): void;
  /** Fresh ICE servers from the agent (RECONNECT_ICE_SERVER); rejects when the agent does not answer. */
  requestIceServers(reason: string): Promise<IceServer[]>;
}

export interface SessionEnd {
  reason: string;
  /** The peer reached `connected` at least once (the retry backoff starts over). */
  connected: boolean;
  /** Start the next session without any delay (nothing is wrong, the session only needs renewing). */
  immediate: boolean;
  /** It ended with an offer unanswered: that offer may still wait in the channel's queue. */
  unanswered: boolean;
}

export interface ViewerSessionOptions {
  /**
   * Offers of an earlier session may still wait in the channel's queue (it ended unanswered), so the first
   * answers may be for them: wait for the quiet period even for an offer sent once.
   */
  earlierOffersQueued?: boolean;
}

/**
 * Answers may come in a burst: a master that was away answers every offer that waited in the channel's
 * queue, each answer replacing its previous peer. The newest one, once this long has passed without
 * another, is the one whose peer is still alive. Only when more than one offer can be queued (re-sent, or
 * an earlier session's): otherwise the wait would only cost time — the master's first DTLS handshake
 * flight arrives meanwhile and is lost, and its retransmission comes a second or more later.
 */
const ANSWER_QUIET_MS = 300;
/** After an answer is applied ICE must connect within this, or the session ends (the loop starts anew). */
const ICE_CONNECT_TIMEOUT_MS = 15_000;
/** `disconnected` for this long → ICE restart (a master that reloaded is gone for good). */
const DISCONNECTED_GRACE_MS = 2_000;
/**
 * An offer unanswered this long is renewed with a new session: TURN credentials from GetIceServerConfig
 * live 5 minutes, and the offer's candidates are only as good as them.
 */
const OFFER_REFRESH_MS = 4 * 60_000;
/** Default signaling renewal age, below KVS's 1-hour connection limit. */
const DEFAULT_SIGNALING_MAX_AGE_MS = 50 * 60_000;
/** Without a call to keep, this many signaling failures in a row end the session (fresh config). */
const MAX_IDLE_SIGNALING_FAILURES = 3;
/** Remote candidates kept while no answer is applied; a flood beyond this is dropped. */
const MAX_PENDING_REMOTE_CANDIDATES = 200;

interface SignalingEntry {
  client: SignalingClient;
  state: 'connecting' | 'open';
  unbind?: () => void;
}

/** One SDP offer and what belongs to it, re-sent until answered. */
interface OfferRound {
  description: RTCSessionDescriptionInit;
  candidates: RTCIceCandidateInit[];
  since: number;
  answered: boolean;
  resends: RetryStreak;
  iceRestart: boolean;
}

/**
 * One viewer connection: signaling clients, one peer connection, two transform workers. It heals what can
 * be healed without a new peer connection — signaling sockets (renewed before their maximum age, replaced
 * on GO_AWAY, reconnected when dropped), unanswered offers (re-sent so one always waits in the channel's
 * queue), ICE (restarted on RECONNECT_ICE_SERVER and after `disconnected`). When it ends, `ended` resolves
 * and the owner starts a new one.
 */
export class ViewerSession {
  readonly ended: Promise<SessionEnd>;
  readonly #config: ViewerConfig;
  readonly #hooks: ViewerSessionHooks;
  readonly #pc: RTCPeerConnection;
  readonly #workers: Worker[] = [];
  readonly #workerInvalid = new Map<TrackKind, number>();
  /** Oldest first; the newest open one sends. More than one only while a replacement opens. */
  readonly #clients: SignalingEntry[] = [];
  readonly #signalingStreak = new RetryStreak(retryPolicy('signaling'));
  #offer: OfferRound | undefined;
  #firstRound: OfferRound | undefined;
  #negotiating = false;
  #pendingAnswer: string | undefined;
  #applyingAnswer = false;
  #remoteSet = false;
  #remoteCandidates: RTCIceCandidateInit[] = [];
  /** Candidates that could not be sent (no open socket); sent when one opens. */
  readonly #unsentCandidates: RTCIceCandidateInit[] = [];
  readonly #timers = {
    resend: undefined as ReturnType<typeof setTimeout> | undefined,
    answer: undefined as ReturnType<typeof setTimeout> | undefined,
    iceConnect: undefined as ReturnType<typeof setTimeout> | undefined,
    disconnected: undefined as ReturnType<typeof setTimeout> | undefined,
    renew: undefined as ReturnType<typeof setTimeout> | undefined,
    reconnect: undefined as ReturnType<typeof setTimeout> | undefined,
    offerRefresh: undefined as ReturnType<typeof setTimeout> | undefined,
  };
  readonly #dtlsWatched = new WeakSet<RTCDtlsTransport>();
  #connected = false;
  #closed = false;
  #resolveEnded!: (end: SessionEnd) => void;

  readonly #earlierOffersQueued: boolean;

  constructor(config: ViewerConfig, hooks: ViewerSessionHooks, options: ViewerSessionOptions = {}) {
    this.#config = config;
    this.#hooks = hooks;
    this.#earlierOffersQueued = options.earlierOffersQueued ?? false;
    this.ended = new Promise((resolve) => (this.#resolveEnded = resolve));
    this.#pc = new RTCPeerConnection({ iceServers: config.iceServers });
  }

  get peerConnection(): RTCPeerConnection {
    return this.#pc;
  }

  get master(): MasterAnswerState {
    if (!this.#offer) return 'none';
    return this.#offer.answered ? 'answered' : 'waiting';
  }

  start(): void {
    try {
      this.#setUpMedia();
    } catch (err) {
      // No H.264 receiver means nothing could ever be recorded: say so loudly.
      const what = err instanceof CodecUnavailableError ? 'no usable codec' : 'setup failed';
      this.#hooks.log('error', `viewer ${what}: ${String(err)}`);
      this.close(`setup failed: ${String(err)}`);
      return;
    }
    this.#pc.addEventListener('connectionstatechange', () => this.#onPeerState());
    this.#pc.addEventListener('iceconnectionstatechange', () => this.#report());
    this.#pc.addEventListener('connectionstatechange', () => this.#watchDtls());
    this.#pc.addEventListener('icecandidate', (event) => {
      if (!event.candidate || !this.#offer) return;
      const candidate = event.candidate.toJSON();
      // Kept with its offer: a re-sent offer goes out with every candidate gathered for it.
      this.#offer.candidates.push(candidate);
      this.#sendCandidate(candidate);
    });
    this.#openSignaling();
  }

  /** Idempotent. */
  close(reason: string, immediate = false): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of Object.values(this.#timers)) clearTimeout(timer);
    for (const entry of [...this.#clients]) this.#dropClient(entry);
    this.#pc.close();
    for (const w of this.#workers) w.terminate();
    this.#report();
    this.#hooks.log('info', 'viewer session ended', { reason });
    this.#resolveEnded({
      reason,
      connected: this.#connected,
      immediate,
      unanswered: this.#offer !== undefined && !this.#offer.answered,
    });
  }

  #setUpMedia(): void {
    const video = this.#pc.addTransceiver('video', { direction: 'recvonly' });
    const audio = this.#pc.addTransceiver('audio', { direction: 'recvonly' });
    video.setCodecPreferences(videoCodecPreferences(RTCRtpReceiver.getCapabilities('video')?.codecs ?? []));
    audio.setCodecPreferences(audioCodecPreferences(RTCRtpReceiver.getCapabilities('audio')?.codecs ?? []));
    for (const t of [video, audio]) negotiateAbsCaptureTime(t);
    // Attached before any media flows so the very first frame goes through the transform.
    this.#attachTransform(video.receiver, 'video');
    this.#attachTransform(audio.receiver, 'audio');
  }

  #attachTransform(receiver: RTCRtpReceiver, kind: TrackKind): void {
    const worker = new Worker(new URL('./frameForwarder.worker.ts', import.meta.url), {
      type: 'module',
      name: `frames-${kind}`,
    });
    worker.addEventListener('message', (event: MessageEvent<WorkerToMain>) => {
      const msg = event.data;
      if (msg.type === 'counters') {
        const before = this.#workerInvalid.get(kind) ?? 0;
        if (msg.counters.frameSocketInvalid > before) {
          this.#hooks.count('frameSocketInvalid', msg.counters.frameSocketInvalid - before);
          this.#workerInvalid.set(kind, msg.counters.frameSocketInvalid);
        }
        this.#hooks.counters(msg.counters);
      } else this.#hooks.log(msg.level, `[${kind} worker] ${msg.msg}`, msg.data);
    });
    worker.addEventListener('error', (event: ErrorEvent) =>
      this.#hooks.log('error', `${kind} worker error: ${event.message}`),
    );
    this.#workers.push(worker);
    const options: ForwarderOptions = {
      kind,
      frameUrl: this.#config.frameUrl,
      keyframeIntervalMs: this.#config.keyframeIntervalMs,
    };
    receiver.transform = new RTCRtpScriptTransform(worker, options);
  }

  // ── signaling sockets ────────────────────────────────────────────────────────────────────────────────

  #openSignaling(): void {
    // `entry.client` is set right below; the signer only runs once `open()` is called.
    const entry = { state: 'connecting' } as SignalingEntry;
    const getSignedURL = async (endpoint: string, query: Record<string, string>, date?: Date) => {
      let url: string;
      try {
        url = await this.#hooks.presign(endpoint, query, date);
      } catch (err) {
        // The SDK only emits `error` for this, never `close`: treat it as a lost socket here.
        this.#onSignalingLost(entry, `presign failed: ${describe(err)}`);
        throw err;
      }
      if (this.#clients.includes(entry)) {
        entry.unbind = expectSignalingSocket(url, {
          message: (m) => {
            if (this.#clients.includes(entry)) this.#onSignalingMessage(m);
          },
          invalid: (reason) => this.#hooks.rejected(reason),
        });
      }
      return url;
    };
    entry.client = new kvs.SignalingClient({
      channelARN: this.#config.channelARN,
      channelEndpoint: this.#config.channelEndpoint,
      region: this.#config.region,
      role: kvs.Role.VIEWER,
      clientId: this.#config.clientId,
      requestSigner: { getSignedURL },
    });
    this.#clients.push(entry);
    entry.client.on('open', () => this.#onSignalingOpen(entry));
    entry.client.on('error', (err) => {
      if (this.#clients.includes(entry)) this.#hooks.log('warn', `signaling error: ${describe(err)}`);
    });
    entry.client.on('close', () => this.#onSignalingLost(entry, 'signaling closed'));
    this.#report();
    entry.client.open();
  }

  /** Closes a client we no longer want; its late events and messages are ignored. */
  #dropClient(entry: SignalingEntry): void {
    const i = this.#clients.indexOf(entry);
    if (i >= 0) this.#clients.splice(i, 1);
    entry.unbind?.();
    entry.client.removeAllListeners();
    // Closing a socket that is still connecting fires `error`: an EventEmitter without listener would throw.
    entry.client.on('error', () => undefined);
    entry.client.close();
  }

  #onSignalingOpen(entry: SignalingEntry): void {
    if (this.#closed || !this.#clients.includes(entry)) return;
    entry.state = 'open';
    this.#signalingStreak.succeeded();
    // Older sockets go only now that this one is up, so the master can always reach us.
    for (const old of this.#clients.slice(0, this.#clients.indexOf(entry))) this.#dropClient(old);
    clearTimeout(this.#timers.renew);
    const maxAge = this.#config.signalingMaxAgeMs ?? DEFAULT_SIGNALING_MAX_AGE_MS;
    this.#timers.renew = setTimeout(() => this.#renewSignaling('maximum age'), maxAge);
    this.#report();
    this.#hooks.log('info', 'signaling open');
    for (const c of this.#unsentCandidates.splice(0)) this.#sendCandidate(c);
    if (!this.#offer) {
      if (!this.#negotiating) void this.#negotiate(false);
    } else if (!this.#offer.answered) {
      // The unanswered offer may have gone down with the previous socket.
      this.#sendOffer();
    }
  }

  /** A planned replacement (maximum age, GO_AWAY): the new socket opens before the old one closes. */
  #renewSignaling(reason: string): void {
    if (this.#closed) return;
    clearTimeout(this.#timers.renew);
    if (this.#clients.some((e) => e.state === 'connecting')) return;
    this.#hooks.count('signalingRenewals');
    this.#hooks.log('info', `renewing signaling (${reason})`);
    this.#openSignaling();
  }

  #onSignalingLost(entry: SignalingEntry, reason: string): void {
    if (this.#closed || !this.#clients.includes(entry)) return;
    const wasRenewal = this.#clients.some((e) => e !== entry && e.state === 'open');
    this.#dropClient(entry);
    this.#report();
    // The old socket closing while its replacement connects is the normal end of a renewal.
    if (!wasRenewal && this.#clients.length > 0) return;
    const delay = this.#signalingStreak.failed() ?? retryPolicy('signaling').options.maxMs;
    if (wasRenewal) {
      // The old socket still works; try the replacement again later.
      this.#hooks.log('warn', `${reason} (replacement socket); retrying in ${delay} ms`);
      this.#timers.renew = setTimeout(() => this.#renewSignaling('retry'), delay);
      return;
    }
    const callUp = this.#pc.connectionState === 'connected';
    if (!callUp && this.#signalingStreak.attempts >= MAX_IDLE_SIGNALING_FAILURES) {
      this.close(`signaling unavailable (${reason})`);
      return;
    }
    this.#hooks.count('signalingReconnects');
    this.#hooks.log(
      'warn',
      `${reason}; reconnecting signaling in ${delay} ms${callUp ? ', the call continues' : ''}`,
      { attempt: this.#signalingStreak.attempts },
    );
    clearTimeout(this.#timers.reconnect);
    this.#timers.reconnect = setTimeout(() => {
      if (!this.#closed && this.#clients.length === 0) this.#openSignaling();
    }, delay);
  }

  #sender(): SignalingClient | undefined {
    return this.#clients.findLast((e) => e.state === 'open')?.client;
  }

  #onSignalingMessage(msg: InboundSignaling): void {
    if (this.#closed) return;
    switch (msg.messageType) {
      case 'GO_AWAY':
        this.#hooks.signalingEvent('go-away');
        this.#hooks.log('warn', 'GO_AWAY: renewing signaling');
        this.#renewSignaling('GO_AWAY');
        return;
      case 'RECONNECT_ICE_SERVER':
        this.#hooks.signalingEvent('reconnect-ice-server');
        void this.#onReconnectIceServer();
        return;
      case 'STATUS_RESPONSE':
        this.#hooks.signalingEvent('status-response', JSON.stringify(msg.statusResponse).slice(0, 2000));
        return;
      case 'SDP_ANSWER':
        this.#onAnswer(msg.sdp);
        return;
      case 'ICE_CANDIDATE':
        this.#onRemoteCandidate(msg.candidate);
        return;
    }
  }

  // ── offer / answer ───────────────────────────────────────────────────────────────────────────────────

  /** A new offer round: the first offer of the session, or an ICE restart on the same peer connection. */
  async #negotiate(iceRestart: boolean): Promise<void> {
    if (this.#closed) return;
    this.#negotiating = true;
    clearTimeout(this.#timers.resend);
    clearTimeout(this.#timers.answer);
    clearTimeout(this.#timers.iceConnect);
    clearTimeout(this.#timers.offerRefresh);
    this.#pendingAnswer = undefined;
    try {
      if (iceRestart) this.#pc.restartIce();
      const offer = await this.#pc.createOffer(iceRestart ? { iceRestart: true } : {});
      if (this.#closed) return;
      // The round exists before gathering starts, so that every candidate of it is kept with it.
      const round: OfferRound = {
        description: { type: offer.type, ...(offer.sdp !== undefined ? { sdp: offer.sdp } : {}) },
        candidates: [],
        since: performance.now(),
        answered: false,
        resends: new RetryStreak(retryPolicy('offerResend')),
        iceRestart,
      };
      this.#offer = round;
      this.#firstRound ??= round;
      // Candidates of the previous round belong to ICE credentials that are gone.
      this.#remoteSet = false;
      this.#remoteCandidates = [];
      await this.#pc.setLocalDescription(offer);
      if (this.#closed || this.#offer !== round) return;
      this.#timers.offerRefresh = setTimeout(
        () => this.close('no answer for 4 minutes: a new session with fresh ICE servers', true),
        OFFER_REFRESH_MS,
      );
      this.#report();
      this.#sendOffer();
    } catch (err) {
      this.#hooks.log('error', `could not create the offer: ${describe(err)}`);
      this.close('offer failed');
    } finally {
      this.#negotiating = false;
    }
  }

  /** Sends the current offer and its candidates, and schedules the next re-send while it is unanswered. */
  #sendOffer(): void {
    const offer = this.#offer;
    clearTimeout(this.#timers.resend);
    if (this.#closed || !offer || offer.answered || this.#pendingAnswer !== undefined) return;
    const client = this.#sender();
    if (client) {
      try {
        client.sendSdpOffer(offer.description);
        for (const c of offer.candidates) client.sendIceCandidate(c);
        this.#hooks.count('offersSent');
        const first = offer.resends.attempts === 0;
        this.#hooks.log(first ? 'info' : 'debug', first ? 'SDP offer sent' : 'SDP offer re-sent', {
          attempt: offer.resends.attempts,
          candidates: offer.candidates.length,
          iceRestart: offer.iceRestart,
        });
      } catch (err) {
        this.#hooks.log('warn', `could not send the offer: ${describe(err)}`);
      }
    }
    // Keeps an offer waiting in the channel's message queue (TTL ≥ 5 s, 60 s by default) for a master that
    // is away, however long it stays away.
    const delay = offer.resends.failed() ?? retryPolicy('offerResend').options.maxMs;
    this.#timers.resend = setTimeout(() => this.#sendOffer(), delay);
  }

  #onAnswer(sdp: string): void {
    const offer = this.#offer;
    // While a new round is being set up, an answer can only be for an older one.
    if (!offer || offer.answered || this.#applyingAnswer || this.#negotiating) {
      this.#hooks.count('answersIgnored');
      this.#hooks.log('debug', 'SDP answer ignored: no offer is waiting for one');
      // Only a master that replaced its peer answers again: the applied answer's peer is gone.
      if (offer?.answered && !this.#negotiating && this.#pc.connectionState !== 'connected')
        this.#restartIce('a newer answer arrived after the applied one');
      return;
    }
    if (this.#pendingAnswer !== undefined) {
      this.#hooks.count('answersIgnored');
      this.#hooks.log('debug', 'SDP answer superseded by a newer one');
    }
    this.#pendingAnswer = sdp;
    // The master is there: no more re-sends, they would only make it replace its peer again.
    clearTimeout(this.#timers.resend);
    clearTimeout(this.#timers.answer);
    const burstPossible =
      offer.resends.attempts > 1 || (this.#earlierOffersQueued && this.#firstRound === offer);
    if (burstPossible) this.#timers.answer = setTimeout(() => void this.#applyAnswer(), ANSWER_QUIET_MS);
    else void this.#applyAnswer();
  }

  async #applyAnswer(): Promise<void> {
    const offer = this.#offer;
    const sdp = this.#pendingAnswer;
    this.#pendingAnswer = undefined;
    if (this.#closed || !offer || offer.answered || sdp === undefined) return;
    this.#applyingAnswer = true;
    try {
      await this.#pc.setRemoteDescription({ type: 'answer', sdp });
    } catch (err) {
      // Not an answer to our offer (or not an answer at all): keep waiting for a real one.
      this.#hooks.rejected('SDP answer refused by the peer connection');
      this.#hooks.log('warn', `could not apply an answer: ${describe(err)}`);
      if (this.#offer === offer && !this.#closed) this.#sendOffer();
      return;
    } finally {
      this.#applyingAnswer = false;
    }
    if (this.#closed || this.#offer !== offer) return;
    offer.answered = true;
    clearTimeout(this.#timers.offerRefresh);
    this.#remoteSet = true;
    for (const c of this.#remoteCandidates.splice(0)) this.#addRemoteCandidate(c);
    this.#report();
    this.#hooks.log('info', 'SDP answer applied', {
      waitedMs: Math.round(performance.now() - offer.since),
      iceRestart: offer.iceRestart,
    });
    if (!answerHasH264Video(sdp)) {
      this.#hooks.log('error', 'the master did not accept H.264 video: nothing can be recorded', {
        answer: sdp.slice(0, 3000),
      });
      this.close('master cannot send H.264');
      return;
    }
    clearTimeout(this.#timers.iceConnect);
    this.#timers.iceConnect = setTimeout(() => {
      if (this.#pc.connectionState !== 'connected')
        this.close(`ICE did not connect within ${ICE_CONNECT_TIMEOUT_MS / 1000} s of the answer`);
    }, ICE_CONNECT_TIMEOUT_MS);
  }

  #onRemoteCandidate(candidate: RTCIceCandidateInit): void {
    if (this.#remoteSet) {
      this.#addRemoteCandidate(candidate);
    } else if (this.#remoteCandidates.length < MAX_PENDING_REMOTE_CANDIDATES) {
      this.#remoteCandidates.push(candidate);
    } else {
      this.#hooks.rejected('too many ICE candidates before an answer');
    }
  }

  #addRemoteCandidate(candidate: RTCIceCandidateInit): void {
    this.#pc.addIceCandidate(candidate).catch((err: unknown) => {
      // Usual for candidates of a master peer that an answer replaced (other ICE credentials).
      this.#hooks.log('debug', `remote ICE candidate refused: ${describe(err)}`);
    });
  }

  #sendCandidate(candidate: RTCIceCandidateInit): void {
    const client = this.#sender();
    if (!client) {
      this.#unsentCandidates.push(candidate);
      return;
    }
    try {
      client.sendIceCandidate(candidate);
    } catch (err) {
      this.#unsentCandidates.push(candidate);
      this.#hooks.log('warn', `could not send an ICE candidate: ${describe(err)}`);
    }
  }

  // ── ICE ──────────────────────────────────────────────────────────────────────────────────────────────

  #restartIce(reason: string): void {
    if (this.#closed || this.#negotiating) return;
    this.#hooks.count('iceRestarts');
    this.#hooks.log('warn', `ICE restart: ${reason}`);
    void this.#negotiate(true);
  }

  /** TURN relays are going away: fresh ICE servers and an ICE restart, the call goes on. */
  async #onReconnectIceServer(): Promise<void> {
    this.#hooks.log('warn', 'RECONNECT_ICE_SERVER: fetching fresh ICE servers for an ICE restart');
    try {
      const iceServers = await this.#hooks.requestIceServers('RECONNECT_ICE_SERVER');
      if (this.#closed) return;
      this.#pc.setConfiguration({ ...this.#pc.getConfiguration(), iceServers });
    } catch (err) {
      this.close(`RECONNECT_ICE_SERVER: no fresh ICE servers (${describe(err)})`, true);
      return;
    }
    this.#restartIce('RECONNECT_ICE_SERVER');
  }

  /**
   * A master that reloads or closes its peer sends a DTLS close_notify: our transport turns `closed` at
   * once, seconds before ICE would report `disconnected`. Restart ICE right away then.
   */
  #watchDtls(): void {
    const transport = this.#pc.getTransceivers()[0]?.receiver.transport;
    if (!transport || this.#dtlsWatched.has(transport)) return;
    this.#dtlsWatched.add(transport);
    transport.addEventListener('statechange', () => {
      if (this.#closed || (transport.state !== 'closed' && transport.state !== 'failed')) return;
      this.#hooks.log('info', `DTLS ${transport.state}: the master closed its peer`);
      if (this.#offer?.answered) this.#restartIce(`the master closed DTLS (${transport.state})`);
    });
  }

  #onPeerState(): void {
    const state = this.#pc.connectionState;
    this.#report();
    if (state === 'connected') {
      this.#connected = true;
      clearTimeout(this.#timers.iceConnect);
      clearTimeout(this.#timers.disconnected);
      this.#timers.disconnected = undefined;
    } else if (state === 'failed') {
      this.close('peer connection failed');
    } else if (state === 'disconnected' && this.#timers.disconnected === undefined) {
      this.#timers.disconnected = setTimeout(() => {
        this.#timers.disconnected = undefined;
        // A round already waiting for its answer is a restart in progress.
        if (this.#pc.connectionState !== 'disconnected' || !this.#offer?.answered) return;
        this.#restartIce(`disconnected for ${DISCONNECTED_GRACE_MS / 1000} s`);
      }, DISCONNECTED_GRACE_MS);
    }
  }

  #report(): void {
    const signaling: SignalingState = this.#clients.some((e) => e.state === 'open')
      ? 'open'
      : this.#clients.length > 0
        ? 'connecting'
        : 'closed';
    this.#hooks.state({
      signaling,
      peer: this.#pc.connectionState,
      ice: this.#pc.iceConnectionState,
      master: this.master,
    });
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err instanceof Event) return `${err.type} event`;
  return String(err);
}

const ABS_CAPTURE_TIME = 'http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time';

interface HeaderExtensionCapability {
  uri: string;
  direction: RTCRtpTransceiverDirection | 'stopped';
}

/**
 * Offers abs-capture-time (Chromium supports it but does not offer it by default): a master that sends it
 * stamps every audio and video frame on its one capture clock, which the worker hands to the agent, so the two
 * tracks line up as they were captured instead of as they happened to arrive. Where the API is missing the
 * offer is unchanged and the agent falls back to receive times.
 */
function negotiateAbsCaptureTime(transceiver: RTCRtpTransceiver): void {
  const t = transceiver as RTCRtpTransceiver & {
    getHeaderExtensionsToNegotiate?: () => HeaderExtensionCapability[];
    setHeaderExtensionsToNegotiate?: (extensions: HeaderExtensionCapability[]) => void;
  };
  if (!t.getHeaderExtensionsToNegotiate || !t.setHeaderExtensionsToNegotiate) return;
  const extensions = t.getHeaderExtensionsToNegotiate();
  if (!extensions.some((e) => e.uri === ABS_CAPTURE_TIME)) return;
  t.setHeaderExtensionsToNegotiate(
    extensions.map((e) => (e.uri === ABS_CAPTURE_TIME ? { ...e, direction: 'recvonly' } : e)),
  );
}
