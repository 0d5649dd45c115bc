import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { EncodedPacketSink, FilePathSource, Input, MATROSKA, MP4, MPEG_TS } from 'mediabunny';

/**
 * The containers recordings come in (file sink segments, KVS GetMedia/GetClip). Not ALL_FORMATS: its MP3
 * sniffer took an MPEG-TS segment that starts with an audio packet for MP3 (a CI failure: 0 video frames).
 */
export const RECORDING_FORMATS = [MPEG_TS, MATROSKA, MP4];
import { BEEP_HZ } from '../../WebRTC/synthetic/clip.js';
import { sliceHash, type SentFrame } from '../../WebRTC/synthetic/syntheticMaster.js';

/**
 * Judges a recording of the synthetic master against what it sent: which frames arrived (byte-exact, by the
 * hash of their slice NAL units: the agent does not transcode video), and where each flash and beep landed on
 * the recording's own timeline — the A/V offset a player would show.
 */
const run = promisify(execFile);

export interface RecordedVideoFrame {
  /** Presentation time in the file, ms. */
  ptsMs: number;
  key: boolean;
  hash: string;
}

/** Every video packet of a recording (MPEG-TS, Matroska or MP4), in decode order. */
export async function recordedVideoFrames(file: string): Promise<RecordedVideoFrame[]> {
  const input = new Input({ source: new FilePathSource(file), formats: RECORDING_FORMATS });
  try {
    const track = await input.getPrimaryVideoTrack();
    if (!track) return [];
    const out: RecordedVideoFrame[] = [];
    for await (const p of new EncodedPacketSink(track).packets())
      out.push({ ptsMs: p.timestamp * 1000, key: p.type === 'key', hash: sliceHash(splitNalus(p.data)) });
    return out;
  } finally {
    input.dispose();
  }
}

/** NAL units of an Annex B access unit, or of a 4-byte length-prefixed one. */
export function splitNalus(data: Uint8Array): Uint8Array[] {
  const annexB = data[0] === 0 && data[1] === 0 && (data[2] === 1 || (data[2] === 0 && data[3] === 1));
  const out: Uint8Array[] = [];
  if (!annexB) {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    for (let at = 0; at + 4 <= data.length;) {
      const len = view.getUint32(at);
      out.push(data.subarray(at + 4, at + 4 + len));
      at += 4 + len;
    }
    return out;
  }
  let start = -1;
  for (let i = 0; i + 2 < data.length; i++) {
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
      if (start >= 0) out.push(trimZeros(data.subarray(start, i)));
      start = i + 3;
      i += 2;
    }
  }
  if (start >= 0) out.push(data.subarray(start));
  return out;
}

function trimZeros(nalu: Uint8Array): Uint8Array {
  let end = nalu.length;
  while (end > 0 && nalu[end - 1] === 0) end--;
  return nalu.subarray(0, end);
}

/** The file's first audio frame time (ms) and its audio decoded to mono 48 kHz PCM by ffmpeg. */
export async function decodedAudio(file: string): Promise<{ startMs: number; pcm: Int16Array } | null> {
  const { stdout: probed } = await run('ffprobe', [
    '-v',
    'error',
    '-select_streams',
    'a:0',
    '-show_entries',
    'frame=pts_time',
    '-read_intervals',
    '%+#1',
    '-of',
    'csv=p=0',
    file,
  ]);
  const first = Number(probed.trim().split('\n')[0]);
  if (!Number.isFinite(first)) return null;
  const { stdout } = await run(
    'ffmpeg',
    // aresample async: gaps in the audio timestamps become silence, so sample n is at startMs + n / 48 kHz.
    // min_hard_comp 1 ms: by default only gaps over 100 ms are filled, and a 50 ms hole (a kvssink session
    // restart) would move every later sample 50 ms early.
    [
      '-v',
      'error',
      '-i',
      file,
      '-map',
      '0:a:0',
      '-af',
      'aresample=async=1:min_hard_comp=0.001',
      '-ac',
      '1',
      '-ar',
      '48000',
      '-f',
      's16le',
      '-',
    ],
    { encoding: 'buffer', maxBuffer: 1024 * 1024 * 1024 },
  );
  const pcm = new Int16Array(stdout.buffer, stdout.byteOffset, Math.floor(stdout.byteLength / 2));
  return { startMs: first * 1000, pcm };
}

/**
 * Beep onsets (ms on the file's timeline): where a 1 kHz tone's envelope crosses half its peak after at least
 * 200 ms of quiet. The crossing is interpolated between samples and moved back by the envelope filter's delay,
 * measured on the tone itself, so lossy codecs' pre-echo does not move it.
 */
export function beepOnsets(audio: { startMs: number; pcm: Int16Array }, rate = 48_000): number[] {
  const { pcm } = audio;
  // Rectified signal through a one-period moving average: the tone's envelope without its ripple.
  const period = Math.round(rate / BEEP_HZ);
  const env = new Float64Array(pcm.length);
  let acc = 0;
  for (let i = 0; i < pcm.length; i++) {
    acc += Math.abs(pcm[i]!);
    if (i >= period) acc -= Math.abs(pcm[i - period]!);
    env[i] = acc / period;
  }
  let peak = 0;
  for (const v of env) peak = Math.max(peak, v);
  if (peak < 500) return [];
  const threshold = peak / 2;
  const quiet = peak / 20;
  const onsets: number[] = [];
  /** Where the previous burst fell back below `quiet`. */
  let lastBurstEnd = Number.NEGATIVE_INFINITY;
  let inBurst = false;
  for (let i = 1; i < env.length; i++) {
    if (!inBurst && env[i]! >= threshold && env[i - 1]! < threshold) {
      inBurst = true;
      if ((i - lastBurstEnd) / rate >= 0.2) {
        const frac = (threshold - env[i - 1]!) / (env[i]! - env[i - 1]!);
        // The moving average reaches half of a steady tone half a period after the tone starts.
        const sample = i - 1 + frac - period / 2;
        onsets.push(audio.startMs + (sample / rate) * 1000);
      }
    } else if (inBurst && env[i]! < quiet) {
      inBurst = false;
      lastBurstEnd = i;
    }
  }
  return onsets;
}

export interface FrameMatch {
  /** Sent frames after the first recorded one that never showed up, by master clock seq. */
  lost: number[];
  /** Recorded frames that match nothing sent (corrupt, or not from this master). */
  unknown: number;
  /** For each recorded frame that matched: the sent frame and where it landed. */
  matched: { sent: SentFrame; ptsMs: number; file: number }[];
}

/**
 * Walks the recorded frames (files in order) against the sent ones in order: each recorded frame is the next
 * sent frame with its hash (content repeats once per clip loop, so the search stays within one loop).
 */
export function matchFrames(
  sent: SentFrame[],
  recorded: RecordedVideoFrame[][],
  loopFrames: number,
): FrameMatch {
  const video = sent.filter((f) => f.kind === 'video').sort((a, b) => a.seq - b.seq);
  const out: FrameMatch = { lost: [], unknown: 0, matched: [] };
  let at = -1;
  recorded.forEach((frames, file) => {
    for (const r of frames) {
      const from = at + 1;
      let found = -1;
      const limit = at < 0 ? video.length : Math.min(video.length, from + loopFrames - 1);
      for (let i = from; i < limit; i++) {
        if (video[i]!.hash === r.hash) {
          found = i;
          break;
        }
      }
      if (found < 0) {
        out.unknown++;
        continue;
      }
      if (at >= 0) for (let i = from; i < found; i++) out.lost.push(video[i]!.seq);
      out.matched.push({ sent: video[found]!, ptsMs: r.ptsMs, file });
      at = found;
    }
  });
  return out;
}

export interface SyncEvent {
  /** The flash's capture time on the master's clock (epoch ms); the beep was captured at the same instant. */
  captureMs: number;
  flashMs: number;
  beepMs: number;
  /** Beep minus flash on the recording's timeline: > 0 means audio late. */
  offsetMs: number;
}

/** Pairs each recorded flash frame with the beep onset nearest to it (within 150 ms) in the same file. */
export function syncEvents(matches: FrameMatch, onsetsByFile: number[][]): SyncEvent[] {
  const events: SyncEvent[] = [];
  for (const m of matches.matched) {
    if (!m.sent.event) continue;
    const onsets = onsetsByFile[m.file] ?? [];
    let best: number | undefined;
    for (const o of onsets)
      if (best === undefined || Math.abs(o - m.ptsMs) < Math.abs(best - m.ptsMs)) best = o;
    if (best === undefined || Math.abs(best - m.ptsMs) > 150) continue;
    events.push({ captureMs: m.sent.captureMs, flashMs: m.ptsMs, beepMs: best, offsetMs: best - m.ptsMs });
  }
  return events;
}

export interface SyncSummary {
  events: number;
  medianMs: number;
  /** max − min of the per-event offsets. */
  spreadMs: number;
  /** Least-squares slope of offset over capture time. */
  driftMsPerMin: number;
}

export function summarizeSync(events: SyncEvent[]): SyncSummary | null {
  if (events.length === 0) return null;
  const offsets = events.map((e) => e.offsetMs).sort((a, b) => a - b);
  const median = offsets[Math.floor(offsets.length / 2)]!;
  const t = events.map((e) => (e.captureMs - events[0]!.captureMs) / 60_000);
  const y = events.map((e) => e.offsetMs);
  const n = events.length;
  const mt = t.reduce((a, b) => a + b, 0) / n;
  const my = y.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (t[i]! - mt) * (y[i]! - my);
    den += (t[i]! - mt) ** 2;
  }
  const round = (v: number) => Math.round(v * 100) / 100;
  return {
    events: n,
    medianMs: round(median),
    spreadMs: round(offsets[n - 1]! - offsets[0]!),
    driftMsPerMin: round(den > 0 ? num / den : 0),
  };
}
