/*
 * ping runner: individual replies are parsed (time=X ms) so the median and percentiles are
 * exact, and ping's own summary line (rtt min/avg/max/mdev) is kept for comparison.
 * Intervals below 0.2 s need root, which the e2e benchmark has. The family follows the
 * address (ping -4 / ping -6).
 */
import { runIn } from './proc.js';
import { percentile } from './stats.js';

export interface PingResult {
  sent: number;
  received: number;
  /** Round-trip times in microseconds. */
  medianUs: number;
  p90Us: number;
  p99Us: number;
  minUs: number;
  avgUs: number;
  maxUs: number;
  mdevUs: number;
}

export async function ping(ns: string, addr: string, opts: { count: number; intervalS: number; size?: number }): Promise<PingResult> {
  const args = [addr.includes(':') ? '-6' : '-4', '-n', '-c', String(opts.count), '-i', String(opts.intervalS), '-W', '1'];
  if (opts.size !== undefined) args.push('-s', String(opts.size));
  const r = await runIn(ns, 'ping', [...args, addr], { timeoutMs: Math.ceil(opts.count * opts.intervalS * 1000 + 15_000), check: false });
  const rtts: number[] = [];
  for (const m of r.stdout.matchAll(/time=([\d.]+) ms/g)) rtts.push(Number(m[1]) * 1000);
  const tx = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  const sum = /rtt min\/avg\/max\/mdev = ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(r.stdout);
  if (rtts.length === 0 || sum === null) throw new Error(`ping ${addr} in ${ns}: no replies (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(-400)}`);
  rtts.sort((a, b) => a - b);
  return {
    sent: tx ? Number(tx[1]) : opts.count,
    received: tx ? Number(tx[2]) : rtts.length,
    medianUs: percentile(rtts, 50),
    p90Us: percentile(rtts, 90),
    p99Us: percentile(rtts, 99),
    minUs: Number(sum[1]) * 1000,
    avgUs: Number(sum[2]) * 1000,
    maxUs: Number(sum[3]) * 1000,
    mdevUs: Number(sum[4]) * 1000,
  };
}
