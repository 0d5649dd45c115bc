import { readdir, readFile } from 'node:fs/promises';

/** Clock ticks per second for /proc/<pid>/stat (Linux uses 100 everywhere we run). */
const CLK_TCK = 100;

interface ProcInfo {
  pid: number;
  ppid: number;
  comm: string;
  cpuSeconds: number;
}

async function readProc(pid: number): Promise<ProcInfo | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces and parentheses: split after the last ')'.
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const fields = stat.slice(close + 2).split(' ');
    const ppid = Number(fields[1]);
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    const cutime = Number(fields[13]);
    const cstime = Number(fields[14]);
    return { pid, ppid, comm, cpuSeconds: (utime + stime + cutime + cstime) / CLK_TCK };
  } catch {
    return undefined;
  }
}

/** CPU seconds used so far by `root` and each group of its descendants, grouped by `classify(comm)`. */
export async function cpuByGroup(
  root: number,
  classify: (comm: string) => string,
): Promise<Record<string, number>> {
  const procs: ProcInfo[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const info = await readProc(Number(name));
    if (info) procs.push(info);
  }
  const children = new Map<number, ProcInfo[]>();
  for (const p of procs) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const out: Record<string, number> = {};
  const visit = (p: ProcInfo, group: string) => {
    out[group] = (out[group] ?? 0) + p.cpuSeconds;
    for (const c of children.get(p.pid) ?? []) visit(c, group === 'node' ? classify(c.comm) : group);
  };
  const rootInfo = procs.find((p) => p.pid === root);
  if (rootInfo) visit(rootInfo, 'node');
  return out;
}
