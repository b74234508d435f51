// Background-load check: on a 2-core machine any other busy process skews every figure, so
// each measurement records how much CPU was used outside this benchmark's process tree.
// Linux only (/proc); elsewhere it reports nothing.
//
//   foreign = Δ(user + nice + system of all CPUs, /proc/stat) − Δ(CPU of this process tree)
//
// This process's own counters include its reaped children (wrk, curl), live descendants
// (nginx's worker too) are read from /proc/<pid>/stat. irq/softirq time is left out of both
// sides: loopback traffic lands there and is ours. Steal (the hypervisor's) is kept apart.
import { readdirSync, readFileSync } from 'node:fs';

export interface CpuSnapshot {
  at: number;
  busy: number;
  steal: number;
  ours: number;
}

/** Clock ticks per second of /proc figures (USER_HZ, 100 on Linux). */
const HZ = 100;

export function snapshot(): CpuSnapshot | undefined {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal …
    const busy = cpu[0]! + cpu[1]! + cpu[2]!;
    return { at: performance.now(), busy, steal: cpu[7] ?? 0, ours: treeTicks(process.pid) };
  } catch {
    return undefined;
  }
}

/** Other processes' CPU between two snapshots, in cores (1 = one core fully busy), and steal. */
export function foreignLoad(a: CpuSnapshot | undefined, b: CpuSnapshot | undefined): { cores: number; steal: number } | undefined {
  if (a === undefined || b === undefined) return undefined;
  const seconds = (b.at - a.at) / 1000;
  if (seconds <= 0) return undefined;
  const foreign = Math.max(0, b.busy - a.busy - (b.ours - a.ours));
  return { cores: foreign / HZ / seconds, steal: (b.steal - a.steal) / HZ / seconds };
}

interface Stat {
  ppid: number;
  ticks: number;
}

function readStat(pid: string): Stat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // f[1] = ppid (field 4); f[11..14] = utime stime cutime cstime (fields 14–17).
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) };
  } catch {
    return undefined; // exited meanwhile
  }
}

/** CPU ticks of `root` and all its live descendants, reaped children included. */
function treeTicks(root: number): number {
  const stats = new Map<number, Stat>();
  for (const name of readdirSync('/proc')) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    const s = readStat(name);
    if (s !== undefined) stats.set(Number(name), s);
  }
  const children = new Map<number, number[]>();
  for (const [pid, s] of stats) {
    const list = children.get(s.ppid);
    if (list === undefined) children.set(s.ppid, [pid]);
    else list.push(pid);
  }
  let total = 0;
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    total += stats.get(pid)?.ticks ?? 0;
    for (const c of children.get(pid) ?? []) stack.push(c);
  }
  return total;
}
