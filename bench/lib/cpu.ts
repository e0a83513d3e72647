/*
 * CPU time of a data-plane process and its descendants (user + system, from /proc/PID/stat),
 * for the bench's "CPU per GB moved" and "CPU per million packets" rows. The kernel bridge
 * has no such process (its work runs in softirq context of whoever sends), so its rows say
 * n/a; tapbridge's is its process tree (the supervisor and the process inside tb-host with
 * the data-plane thread), the C loop's and slirp4netns's their own process.
 */
import { readFileSync, readdirSync } from 'node:fs';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

function statOf(pid: number): { ppid: number; ticks: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return null; // gone meanwhile
  }
}

/** CPU seconds used so far by `root` and every process below it; null when root is gone. */
export function processTreeCpuSeconds(root: number): number | null {
  const all = new Map<number, { ppid: number; ticks: number }>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const st = statOf(pid);
    if (st !== null) all.set(pid, st);
  }
  if (!all.has(root)) return null;
  const children = new Map<number, number[]>();
  for (const [pid, st] of all) (children.get(st.ppid) ?? children.set(st.ppid, []).get(st.ppid)!).push(pid);
  let ticks = 0;
  const todo = [root];
  while (todo.length > 0) {
    const pid = todo.pop()!;
    ticks += all.get(pid)!.ticks;
    todo.push(...(children.get(pid) ?? []));
  }
  return ticks / TICKS_PER_SECOND;
}

/** Secondary rows for a throughput metric: CPU seconds per GB moved (value in Gbit/s). */
export const cpuPerGb = { id: 'cpu_gb', label: 'CPU seconds per GB moved', unit: 'CPU s/GB', decimals: 2, better: 'lower' as const, pick: (m: { value: number; detail: Record<string, unknown> }) => perUnit(m, (v, s) => (v * s) / 8) };
/** Secondary rows for a packet-rate metric: CPU seconds per million packets (value in kpps). */
export const cpuPerMpkt = { id: 'cpu_mpkt', label: 'CPU seconds per million packets delivered', unit: 'CPU s/Mpkt', decimals: 2, better: 'lower' as const, pick: (m: { value: number; detail: Record<string, unknown> }) => perUnit(m, (v, s) => (v * s) / 1000) };

function perUnit(m: { value: number; detail: Record<string, unknown> }, amount: (value: number, seconds: number) => number): number | null {
  const cpu = m.detail.cpuSeconds;
  const seconds = m.detail.seconds;
  if (typeof cpu !== 'number' || typeof seconds !== 'number') return null;
  const n = amount(m.value, seconds);
  return n > 0 ? cpu / n : null;
}
