import { FARGATE_MEMORY } from '../../infra/lib/config.js';

/** On-demand Fargate (Linux) list prices, USD per hour: the ones the README's cost table uses. */
export const FARGATE_PRICES: Readonly<
  Record<string, Readonly<Record<'arm64' | 'x86_64', { vcpuHour: number; gbHour: number }>>>
> = {
  'ap-northeast-1': {
    arm64: { vcpuHour: 0.04045, gbHour: 0.00442 },
    x86_64: { vcpuHour: 0.05056, gbHour: 0.00553 },
  },
  'us-east-1': {
    arm64: { vcpuHour: 0.03238, gbHour: 0.00356 },
    x86_64: { vcpuHour: 0.04048, gbHour: 0.004445 },
  },
};

/** A task is sized so that the measured load uses at most this share of its CPU and memory. */
export const CPU_HEADROOM = 0.7;
export const MEMORY_HEADROOM = 0.8;

export interface ChannelHourCost {
  region: string;
  architecture: 'arm64' | 'x86_64';
  channels: number;
  /** What the measured vCPU and GB cost if Fargate billed exactly them, per channel-hour. */
  proportionalUsd: number;
  /** The smallest Fargate size that holds the load with headroom, and its price per channel-hour. */
  task: { cpuUnits: number; memoryMiB: number; usdPerHour: number } | undefined;
  packedUsd: number | undefined;
}

/**
 * Cost per channel-hour for `channels` channels using `vcpu` (CPU-s/s, all processes) and `memoryMiB` (PSS)
 * together in one task.
 */
export function channelHourCost(options: {
  channels: number;
  vcpu: number;
  memoryMiB: number;
  region?: string;
  architecture?: 'arm64' | 'x86_64';
}): ChannelHourCost {
  const region = options.region ?? 'ap-northeast-1';
  const architecture = options.architecture ?? 'arm64';
  const price = FARGATE_PRICES[region]?.[architecture];
  if (!price) throw new Error(`no Fargate price for ${region} ${architecture}`);
  if (!(options.channels > 0)) throw new Error('channels must be > 0');
  const hourly = (vcpu: number, mib: number) => vcpu * price.vcpuHour + (mib / 1024) * price.gbHour;
  let task: ChannelHourCost['task'];
  for (const [cpu, memories] of Object.entries(FARGATE_MEMORY).sort((a, b) => Number(a[0]) - Number(b[0]))) {
    const cpuUnits = Number(cpu);
    if (options.vcpu > (cpuUnits / 1024) * CPU_HEADROOM) continue;
    const memoryMiB = memories.find((m) => options.memoryMiB <= m * MEMORY_HEADROOM);
    if (memoryMiB === undefined) continue;
    const usdPerHour = hourly(cpuUnits / 1024, memoryMiB);
    if (!task || usdPerHour < task.usdPerHour) task = { cpuUnits, memoryMiB, usdPerHour };
  }
  return {
    region,
    architecture,
    channels: options.channels,
    proportionalUsd: hourly(options.vcpu, options.memoryMiB) / options.channels,
    task,
    packedUsd: task ? task.usdPerHour / options.channels : undefined,
  };
}
