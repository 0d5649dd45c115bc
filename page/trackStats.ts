import type { TrackStats } from '../agent/bridge/controlProtocol.js';
import type { TrackKind } from '../agent/bridge/wire.js';
import type { ForwarderCounters } from './workerProtocol.js';

interface InboundRtp {
  type: 'inbound-rtp';
  kind: string;
  codecId?: string;
  bytesReceived?: number;
  framesPerSecond?: number;
  frameWidth?: number;
  frameHeight?: number;
  timestamp: number;
}

export interface PanelTrackStats extends TrackStats {
  framesSkipped: number;
  /** Video: between the last two key frames (RTP time), ms; 0 until two were seen. */
  keyFrameIntervalMs: number;
}

/**
 * Per-track numbers for the status panel and the agent's `stats` messages: receive side from getStats,
 * forwarding side from the worker's counters. Bitrate is computed between two consecutive calls.
 */
export class TrackStatsCollector {
  readonly #counters = new Map<TrackKind, ForwarderCounters>();
  readonly #lastBytes = new Map<TrackKind, { bytes: number; at: number }>();

  updateCounters(counters: ForwarderCounters): void {
    this.#counters.set(counters.kind, counters);
  }

  async collect(pc: RTCPeerConnection | undefined): Promise<Partial<Record<TrackKind, PanelTrackStats>>> {
    const out: Partial<Record<TrackKind, PanelTrackStats>> = {};
    const report = pc && pc.connectionState !== 'closed' ? await pc.getStats() : undefined;
    const codecs = new Map<string, string>();
    const inbound = new Map<TrackKind, InboundRtp>();
    report?.forEach((entry: { type: string; id: string; mimeType?: string; kind?: string }) => {
      if (entry.type === 'codec' && entry.mimeType) codecs.set(entry.id, entry.mimeType);
      if (entry.type === 'inbound-rtp' && (entry.kind === 'video' || entry.kind === 'audio'))
        inbound.set(entry.kind, entry as unknown as InboundRtp);
    });
    for (const kind of ['video', 'audio'] as const) {
      const rtp = inbound.get(kind);
      const counters = this.#counters.get(kind);
      if (!rtp && !counters) continue;
      let bitrateKbps = 0;
      if (rtp?.bytesReceived !== undefined) {
        const last = this.#lastBytes.get(kind);
        if (last && rtp.timestamp > last.at)
          bitrateKbps = ((rtp.bytesReceived - last.bytes) * 8) / (rtp.timestamp - last.at);
        this.#lastBytes.set(kind, { bytes: rtp.bytesReceived, at: rtp.timestamp });
      }
      out[kind] = {
        codec: (rtp?.codecId && codecs.get(rtp.codecId)) || counters?.mimeType || '',
        width: rtp?.frameWidth ?? counters?.width ?? 0,
        height: rtp?.frameHeight ?? counters?.height ?? 0,
        fps: rtp?.framesPerSecond ?? 0,
        bitrateKbps: Math.round(Math.max(0, bitrateKbps)),
        framesForwarded: counters?.framesForwarded ?? 0,
        keyFrames: counters?.keyFrames ?? 0,
        keyFrameRequests: counters?.keyFrameRequests ?? 0,
        framesSkipped: counters?.framesSkipped ?? 0,
        keyFrameIntervalMs: counters?.keyFrameIntervalMs ?? 0,
      };
    }
    return out;
  }

  /** New session, new workers: counters start again. */
  reset(): void {
    this.#counters.clear();
    this.#lastBytes.clear();
  }
}
