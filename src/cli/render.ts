/*
 * Text views for `ctl` and `top` (pure functions of API answers): tables, the experiment
 * features (faults, captures, stats, top) and the IPv6 neighbour cache.
 */
import type { LiveStats } from '../control/live.js';
import type { FaultRow } from '../dataplane/faults.js';
import type { CaptureInfo } from '../dataplane/captures.js';
import { formatBytes, si } from '../config/units.js';

const NUMERIC = /^-?\d+(\.\d+)?[kMGTP]?(B|KiB|MiB|GiB|TiB)?$/;

/** Aligned text table; columns whose cells all look like numbers (incl. 1.2k, 3.4MiB) are right-aligned. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const isNum = (c: string | number) => typeof c === 'number' || NUMERIC.test(c);
  const right = headers.map((_h, i) => rows.some((r) => isNum(r[i])) && rows.every((r) => isNum(r[i]) || r[i] === '-'));
  const line = (cells: (string | number)[]) =>
    cells
      .map((c, i) => (right[i] ? String(c).padStart(widths[i]) : String(c).padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** A row of GET /v1/neigh: the data plane's IPv6 neighbour entry with its interface (src/gateway/neighbors6.ts; cli may not import gateway). */
export interface Neighbor6Row {
  iface: string;
  ip: string;
  macText: string;
  state: string;
  ageSeconds: number;
  router: boolean;
  queued: number;
  probes: number;
}

/** `ctl neigh`: like `ip -6 neigh`, by interface and address; AGE '-' for permanent entries. */
export function renderNeighbors6(rows: Neighbor6Row[]): string {
  const sorted = [...rows].sort((a, b) => a.iface.localeCompare(b.iface) || a.ip.localeCompare(b.ip, 'en', { numeric: true }));
  return table(
    ['IFACE', 'ADDRESS', 'MAC', 'STATE', 'AGE', 'ROUTER', 'QUEUED', 'PROBES'],
    sorted.map((r) => [r.iface, r.ip, r.macText, r.state, r.state === 'permanent' ? '-' : `${r.ageSeconds}s`, r.router ? 'yes' : 'no', r.queued, r.probes]),
  );
}

const FAULT_EVENTS: [keyof FaultRow['counters'], string][] = [
  ['lossDrops', 'lost'],
  ['nthDrops', 'nth'],
  ['filterDrops', 'filtered'],
  ['rateDrops', 'rate-dropped'],
  ['downDrops', 'down-dropped'],
  ['queueFullDrops', 'queue-full'],
  ['delayed', 'delayed'],
  ['reordered', 'reordered'],
  ['duplicated', 'duplicated'],
  ['corrupted', 'corrupted'],
  ['queued', 'queued now'],
];

export function faultCounterText(c: FaultRow['counters']): string {
  const parts = [`passed ${c.passed}`];
  for (const [k, label] of FAULT_EVENTS) if (c[k] > 0) parts.push(`${label} ${c[k]}`);
  return parts.join(', ');
}

export function renderFaults(rows: FaultRow[]): string {
  if (rows.length === 0) return 'no faults configured';
  return table(
    ['PORT', 'DIRECTION', 'STATE', 'FAULTS', 'COUNTERS'],
    rows.map((r) => [r.port, r.direction, r.active ? 'on' : 'off', r.summary, faultCounterText(r.counters)]),
  );
}

export function captureOutput(c: CaptureInfo): string {
  return c.stream ? '(stream)' : (c.file ?? '-');
}

export function renderCaptures(rows: CaptureInfo[]): string {
  if (rows.length === 0) return 'no captures';
  return table(
    ['ID', 'TARGET', 'DIRECTION', 'FILTER', 'FORMAT', 'OUTPUT', 'PACKETS', 'BYTES', 'DROPPED', 'STATE', 'REASON'],
    rows.map((c) => [
      c.id,
      c.target,
      c.direction,
      c.filter ?? '-',
      c.format,
      captureOutput(c),
      c.packets,
      formatBytes(c.bytes),
      c.droppedBackpressure,
      c.state,
      c.stopReason ?? '-',
    ]),
  );
}

export function captureSummary(c: CaptureInfo): string {
  return `capture ${c.id} (${c.target} ${c.direction}${c.filter ? ` '${c.filter}'` : ''} -> ${captureOutput(c)}): ${c.packets} packets, ${formatBytes(c.bytes)}${c.droppedBackpressure > 0 ? `, ${c.droppedBackpressure} dropped (reader too slow)` : ''}${c.stopReason !== null ? `; stopped: ${c.stopReason}` : '; running'}`;
}

function dropsText(d: Record<string, number>): string {
  const e = Object.entries(d);
  return e.length === 0 ? '-' : e.map(([k, v]) => `${k}=${v}`).join(',');
}

/** Neighbour-cache sizes: "3" (ARP only, as before IPv6), or "3 ARP, 2 NDP" when the data plane answers for IPv6. */
function neighborsText(s: LiveStats): string {
  const arp = s.neighbors ?? 'n/a';
  return typeof s.neighbors6 === 'number' ? `${arp} ARP, ${s.neighbors6} NDP` : String(arp);
}

/** `ctl stats`: everything in one screenful. */
export function renderStats(s: LiveStats): string {
  const out: string[] = [];
  out.push(`tapbridge statistics at ${s.time} (rates over the last ${s.rateWindowSeconds || '-'} s)`);
  out.push('');
  out.push(
    table(
      ['PORT', 'BRIDGE', 'STATE', 'MACS', 'RX_PKTS', 'RX_BYTES', 'TX_PKTS', 'TX_BYTES', 'RX_PPS', 'RX_BIT/S', 'TX_PPS', 'TX_BIT/S', 'DROPS'],
      s.ports.map((p) => [
        p.name,
        p.bridge ?? '-',
        p.up ? 'up' : 'down',
        p.macs,
        p.counters.rx_packets,
        p.counters.rx_bytes,
        p.counters.tx_packets,
        p.counters.tx_bytes,
        si(p.rates.rx_pps),
        si(p.rates.rx_bps),
        si(p.rates.tx_pps),
        si(p.rates.tx_bps),
        p.counters.dropped,
      ]),
    ),
  );
  const withDrops = s.ports.filter((p) => p.counters.dropped > 0);
  if (withDrops.length > 0) {
    out.push('');
    out.push('drops by reason:');
    for (const p of withDrops) out.push(`  ${p.name}: ${dropsText(p.counters.drops)}`);
  }
  out.push('');
  out.push(
    table(
      ['BRIDGE', 'PORTS', 'MACS', 'TABLE_SIZE', 'FORWARDED', 'FLOODED', 'FWD_PPS', 'FLOOD_PPS'],
      s.bridges.map((b) => [b.name, b.ports.length, b.macs, b.macTableSize, b.forwarded, b.flooded, si(b.rates.forwarded_pps), si(b.rates.flooded_pps)]),
    ),
  );
  out.push('');
  out.push(
    [
      `frame pool: ${s.pool.free}/${s.pool.total} free`,
      `neighbours: ${neighborsText(s)}`,
      `conntrack: ${s.conntrack === null ? 'n/a' : `${s.conntrack.flows}${s.conntrack.max !== undefined ? `/${s.conntrack.max}` : ''} flows`}`,
    ].join('   '),
  );
  if (s.router !== null) {
    const r = Object.entries(s.router).filter(([, v]) => typeof v === 'number' && v > 0);
    if (r.length > 0) out.push(`router: ${r.map(([k, v]) => `${k}=${String(v)}`).join(' ')}`);
  }
  out.push('');
  out.push('faults:');
  out.push(indent(renderFaults(s.faults)));
  out.push('');
  out.push('captures:');
  out.push(indent(renderCaptures(s.captures)));
  return out.join('\n');
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

function fit(line: string, width: number): string {
  return line.length > width ? line.slice(0, Math.max(0, width - 1)) + '…' : line;
}

export interface TopOptions {
  width: number;
  height: number;
  /** 5: rates over ~5 s; 1: the last second. */
  window: 1 | 5;
  socket: string;
}

/** One `top` frame: header, ports sorted by traffic, bridges, faults, captures. */
export function renderTop(s: LiveStats, o: TopOptions): string[] {
  const rateOf = (p: LiveStats['ports'][number]) => (o.window === 1 ? p.rates1s : p.rates);
  const ports = [...s.ports].sort((a, b) => {
    const ra = rateOf(a);
    const rb = rateOf(b);
    const d = rb.rx_bps + rb.tx_bps - (ra.rx_bps + ra.tx_bps);
    if (d !== 0) return d;
    return b.counters.rx_bytes + b.counters.tx_bytes - (a.counters.rx_bytes + a.counters.tx_bytes);
  });
  const lines: string[] = [];
  const running = s.captures.filter((c) => c.state === 'running').length;
  const activeFaults = s.faults.filter((f) => f.active).length;
  lines.push(
    `tapbridge top — ${o.socket} — ${s.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}   rates: last ${o.window === 1 ? '1' : s.rateWindowSeconds || '-'} s   (q quit, w window)`,
  );
  lines.push(
    `pool ${s.pool.free}/${s.pool.total} free   neighbours ${neighborsText(s)}   conntrack ${s.conntrack === null ? 'n/a' : s.conntrack.flows}   faults ${activeFaults}   captures ${running}`,
  );
  lines.push('');
  const faultBy = new Map<string, string[]>();
  for (const f of s.faults) if (f.active) faultBy.set(f.port, [...(faultBy.get(f.port) ?? []), `${f.direction === 'ingress' ? 'in' : 'out'}: ${f.summary}`]);
  const t = table(
    ['PORT', 'STATE', 'RX_PPS', 'RX_BIT/S', 'TX_PPS', 'TX_BIT/S', 'DROP/S', 'DROPS', 'MACS', 'FAULTS'],
    ports.map((p) => {
      const r = rateOf(p);
      return [p.name, p.up ? 'up' : 'DOWN', si(r.rx_pps), si(r.rx_bps), si(r.tx_pps), si(r.tx_bps), si(r.drop_pps), si(p.counters.dropped), p.macs, (faultBy.get(p.name) ?? ['-']).join('; ')];
    }),
  );
  lines.push(...t.split('\n'));
  lines.push('');
  lines.push(
    ...table(
      ['BRIDGE', 'MACS', 'TABLE', 'FWD_PPS', 'FLOOD_PPS', 'FORWARDED', 'FLOODED'],
      s.bridges.map((b) => [b.name, b.macs, b.macTableSize, si(b.rates.forwarded_pps), si(b.rates.flooded_pps), si(b.forwarded), si(b.flooded)]),
    ).split('\n'),
  );
  const drops = ports.filter((p) => p.counters.dropped > 0);
  if (drops.length > 0) {
    lines.push('');
    lines.push('drops by reason:');
    for (const p of drops) lines.push(`  ${p.name}: ${dropsText(p.counters.drops)}`);
  }
  const caps = s.captures.filter((c) => c.state === 'running');
  if (caps.length > 0) {
    lines.push('');
    for (const c of caps) lines.push(captureSummary(c));
  }
  return lines.slice(0, Math.max(1, o.height - 1)).map((l) => fit(l, o.width));
}
