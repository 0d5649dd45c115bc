import { expect, test } from '@playwright/test';
import { channelHourCost, FARGATE_PRICES } from '../../../scripts/lib/fargateCost.js';

test('cost per channel-hour: proportional to the measured load, and the smallest Fargate size with headroom', () => {
  const p = FARGATE_PRICES['ap-northeast-1']!.arm64;
  // 4 channels using 0.9 vCPU and 1500 MiB together.
  const c = channelHourCost({ channels: 4, vcpu: 0.9, memoryMiB: 1500 });
  expect(c.proportionalUsd).toBeCloseTo((0.9 * p.vcpuHour + (1500 / 1024) * p.gbHour) / 4, 10);
  // 0.9 vCPU needs 2 vCPU at 70 % headroom; 1500 MiB fits 4 GB, the least memory 2 vCPU allows.
  expect(c.task).toEqual({ cpuUnits: 2048, memoryMiB: 4096, usdPerHour: 2 * p.vcpuHour + 4 * p.gbHour });
  expect(c.packedUsd).toBeCloseTo(c.task!.usdPerHour / 4, 10);
  // A small load: 0.25 vCPU / 1 GB (0.15 ≤ 0.175, 700 MiB ≤ 819).
  expect(channelHourCost({ channels: 1, vcpu: 0.15, memoryMiB: 700 }).task).toMatchObject({
    cpuUnits: 256,
    memoryMiB: 1024,
  });
  // Beyond the largest size: no task, the proportional figure still stands.
  const huge = channelHourCost({ channels: 100, vcpu: 40, memoryMiB: 1000 });
  expect(huge.task).toBeUndefined();
  expect(huge.packedUsd).toBeUndefined();
  expect(() => channelHourCost({ channels: 1, vcpu: 1, memoryMiB: 1, region: 'mars-1' })).toThrow(
    /no Fargate price/,
  );
  expect(() => channelHourCost({ channels: 0, vcpu: 1, memoryMiB: 1 })).toThrow(/channels/);
});
