import { readdir, readFile } from 'node:fs/promises';

/** Clock ticks per second for /proc/<pid>/stat (100 on every Linux we run on). */
const CLK_TCK = 100;
const PAGE_BYTES = 4096;

interface ProcInfo {
  pid: number;
  ppid: number;
  comm: string;
  cpuSeconds: number;
  rssBytes: number;
  pssBytes: number;
}

/**
 * Proportional set size: each shared page counted once, split between the processes that map it. Summed RSS
 * counts Chromium's shared pages (its binary, V8 heaps mapped by several processes) once per process.
 */
export async function pssBytes(pid: number): Promise<number> {
  try {
    const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
    const m = /^Pss:\s+(\d+) kB$/m.exec(rollup);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

async function readProc(pid: number): Promise<ProcInfo | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces and parentheses: split after the last ')'.
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const f = stat.slice(close + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]);
    return {
      pid,
      ppid: Number(f[1]),
      comm,
      cpuSeconds: ticks / CLK_TCK,
      rssBytes: Number(f[21]) * PAGE_BYTES,
      pssBytes: 0,
    };
  } catch {
    return undefined;
  }
}

export interface GroupUsage {
  cpuSeconds: number;
  rssBytes: number;
  /** Summed PSS; 0 unless asked for (reading smaps_rollup walks every mapping). */
  pssBytes: number;
  processes: number;
}

/**
 * CPU seconds used so far and resident memory of `root` and its descendants, grouped: the root is `node`,
 * each direct child starts a group named by `classify(comm)`, and grandchildren stay in their parent's group.
 */
export async function usageByGroup(
  root: number,
  classify: (comm: string) => string,
  options: { pss?: boolean } = {},
): Promise<Record<string, GroupUsage>> {
  const procs: ProcInfo[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const info = await readProc(Number(name));
    if (info) procs.push(info);
  }
  const children = new Map<number, ProcInfo[]>();
  for (const p of procs) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const out: Record<string, GroupUsage> = {};
  const members: Array<[ProcInfo, GroupUsage]> = [];
  const visit = (p: ProcInfo, group: string) => {
    const g = (out[group] ??= { cpuSeconds: 0, rssBytes: 0, pssBytes: 0, processes: 0 });
    g.cpuSeconds += p.cpuSeconds;
    g.rssBytes += p.rssBytes;
    g.processes++;
    members.push([p, g]);
    for (const c of children.get(p.pid) ?? []) visit(c, group === 'node' ? classify(c.comm) : group);
  };
  const rootInfo = procs.find((p) => p.pid === root);
  if (rootInfo) visit(rootInfo, 'node');
  if (options.pss) {
    const pss = await Promise.all(members.map(([p]) => pssBytes(p.pid)));
    members.forEach(([, g], i) => (g.pssBytes += pss[i]!));
  }
  return out;
}
