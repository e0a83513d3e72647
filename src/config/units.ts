/*
 * Human-friendly quantities for the experiment CLI and config: rates ("10mbit", "1.5Gbit/s",
 * "64kbps" = kilobytes/s as in tc), sizes ("64k", "1MiB", "1500") and their display forms.
 * Pure functions; null means "not understood".
 */

const RATE_UNITS: Record<string, number> = {
  '': 1,
  bit: 1,
  kbit: 1e3,
  mbit: 1e6,
  gbit: 1e9,
  tbit: 1e12,
  // tc(8): "bps" is bytes per second
  bps: 8,
  kbps: 8e3,
  mbps: 8e6,
  gbps: 8e9,
  tbps: 8e12,
};

/** "10mbit", "10 Mbit/s", "10M" (= 10mbit), "1mbps" (tc: megabytes/s), "9600". Returns bits/s. */
export function parseRate(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Z]*)(?:\/s)?\s*$/.exec(text);
  if (m === null) return null;
  let unit = m[2].toLowerCase();
  if (unit === 'k' || unit === 'm' || unit === 'g' || unit === 't') unit += 'bit';
  if (unit.endsWith('bits')) unit = unit.slice(0, -1);
  const mult = RATE_UNITS[unit];
  if (mult === undefined) return null;
  const v = Number(m[1]) * mult;
  return Number.isFinite(v) ? v : null;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1e6,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1e9,
  gib: 1024 ** 3,
};

/** "1500", "64k" (KiB), "1MiB", "10MB" (decimal). Returns bytes (an integer). */
export function parseSize(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (m === null) return null;
  const mult = SIZE_UNITS[m[2].toLowerCase()];
  if (mult === undefined) return null;
  const v = Math.round(Number(m[1]) * mult);
  return Number.isFinite(v) ? v : null;
}

/** "1500", "12.3k", "4.5M" ... (SI, for packet counts and rates). */
export function si(n: number, digits = 1): string {
  const a = Math.abs(n);
  if (a < 1000) return Number.isInteger(n) ? String(n) : n.toFixed(digits);
  const units = ['k', 'M', 'G', 'T', 'P'];
  let v = n;
  let u = -1;
  while (Math.abs(v) >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v.toFixed(digits)}${units[u]}`;
}

/** Bits per second for display: "9.8Mbit/s". */
export function formatBps(bps: number): string {
  return `${si(Math.round(bps))}bit/s`;
}

/** Bytes for display: "1.2MiB". */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n}B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)}${units[u]}`;
}
