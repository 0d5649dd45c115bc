import type { ChannelHourCost } from '../fargateCost.js';
import type { TranscodeCost } from './transcodeReference.js';

/** One process group's figures in a scenario (chromium, node, gst). */
export interface GroupFigures {
  /** CPU-seconds per second of the measured window (= per media-second of all channels together). */
  cpuPerSecond: number;
  /** Median of the 1 s PSS samples over the window, MiB. */
  pssSteadyMiB: number;
  pssPeakMiB: number;
  /** Summed RSS at the PSS peak sample, MiB: for comparison with PSS (shared pages counted per process). */
  rssPeakMiB: number;
  processes: number;
}

export interface Latency {
  p50: number | null;
  p99: number | null;
  max: number | null;
}

export interface ChannelFigures {
  channel: string;
  videoFramesRecorded: number;
  /** Sent between the first and the last recorded frame but not in the recording. */
  framesLost: number;
  /** Recorded frames that match nothing sent (must be 0). */
  framesUnknown: number;
  droppedByAgent: number;
  keyFrameIntervalMaxMs: number | null;
  /**
   * The master's (last) answer → the receive time of the key frame the recording starts with (the 'recording'
   * line's firstFrameReceivedMs): media before it is not in the recording.
   */
  answerToFirstKeyFrameMs: number | null;
  /** The answer → the 'recording' line: gst is up and writing (it starts at that key frame; nothing waits lost). */
  answerToRecordingMs?: number | null;
  receiveToMuxerMs: Latency;
  receiveToStdinMs: Latency;
  decodeErrors: number;
}

export interface ScenarioResult {
  name: string;
  kind: 'agent' | 'floor';
  resolution: string;
  channels: number;
  measuredSeconds: number;
  groups: Record<string, GroupFigures>;
  totalCpuPerSecond: number;
  totalPssSteadyMiB: number;
  totalPssPeakMiB: number;
  /** agent: per channel; floor: decoded frames per second per channel. */
  perChannel?: ChannelFigures[];
  floorFps?: number[];
  /** Why the scenario could not be measured (it is reported, and the scaling stops there). */
  error?: string;
}

export interface Target {
  name: string;
  target: string;
  measured: string;
  met: boolean | null;
}

export interface BenchResults {
  startedAt: string;
  machine: { cpus: number; model: string; memoryGiB: number; node: string; chromium: string };
  options: { seconds: number; warmupSeconds: number; maxChannels: number; sink: string };
  scenarios: ScenarioResult[];
  transcode: Record<string, TranscodeCost>;
  ratios: {
    agentOverFloor720p: number | null;
    transcodeOverAgent720p: number | null;
  };
  densestPassingChannels: number;
  memory: { firstChannelMiB: number | null; perAddedChannelMiB: number | null };
  cost: ChannelHourCost | null;
  targets: Target[];
}
