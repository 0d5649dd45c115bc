import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { expect, test } from '@playwright/test';
import { pssBytes, usageByGroup } from '../../../scripts/lib/processCpu.js';

test('usage by group: CPU, RSS and PSS of a process tree, children grouped by name', async () => {
  // A child that burns CPU for a moment, then sleeps: its group must show both.
  const child = spawn('sh', ['-c', 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; exec sleep 30']);
  try {
    await new Promise((r) => setTimeout(r, 1500));
    const usage = await usageByGroup(
      process.pid,
      (comm) => (comm === 'sleep' || comm === 'sh' ? 'sh' : comm),
      {
        pss: true,
      },
    );
    const own = usage.node!;
    const sh = usage.sh!;
    expect(own.processes).toBeGreaterThanOrEqual(1);
    expect(own.cpuSeconds).toBeGreaterThan(0);
    expect(sh.processes).toBe(1);
    expect(sh.cpuSeconds).toBeGreaterThan(0);
    // PSS counts shared pages in part: never more than RSS, and not nothing.
    for (const g of [own, sh]) {
      expect(g.pssBytes).toBeGreaterThan(0);
      expect(g.pssBytes).toBeLessThanOrEqual(g.rssBytes);
    }
    // Without the option PSS is not read.
    expect((await usageByGroup(process.pid, (c) => c)).node!.pssBytes).toBe(0);
    expect(await pssBytes(2 ** 30)).toBe(0);
  } finally {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
});
