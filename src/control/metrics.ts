/*
 * Prometheus exposition (prom-client) of the live statistics: port and bridge counters,
 * drops by reason (every reason of the registry, IPv6 ones included), fault events, captures,
 * frame pool, router events of both families (IPv6 ones named forwarded6, icmp6ErrorsSent,
 * neighborSolicitsSent, routerAdvertsSent, ...), neighbour caches (tapbridge_neighbors: ARP,
 * tapbridge_neighbors6: IPv6 NDP) and conntrack sizes.
 * Values mirror the data plane's own counters: on each scrape the registry is refilled from
 * one snapshot (reset + set), so label sets of removed faults/captures disappear.
 * Served at GET /metrics on the control socket and, with `experiment.metrics.listen`, on a
 * loopback TCP port (routes.ts).
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { LiveStats } from './live.js';

type Labels = Record<string, string>;

export class MetricsExporter {
  readonly registry = new Registry();
  private readonly counters = new Map<string, Counter<string>>();
  private readonly gauges = new Map<string, Gauge<string>>();

  private counter(name: string, help: string, labelNames: string[]): Counter<string> {
    let c = this.counters.get(name);
    if (c === undefined) {
      c = new Counter({ name, help, labelNames, registers: [this.registry] });
      this.counters.set(name, c);
    }
    return c;
  }

  private gauge(name: string, help: string, labelNames: string[]): Gauge<string> {
    let g = this.gauges.get(name);
    if (g === undefined) {
      g = new Gauge({ name, help, labelNames, registers: [this.registry] });
      this.gauges.set(name, g);
    }
    return g;
  }

  /** Refill every metric from one statistics snapshot and render the text format. */
  async render(s: LiveStats): Promise<string> {
    for (const c of this.counters.values()) c.reset();
    for (const g of this.gauges.values()) g.reset();
    const pc = (name: string, help: string, extra: string[] = []) => this.counter(`tapbridge_port_${name}`, help, ['port', 'bridge', ...extra]);
    const rxP = pc('rx_packets_total', 'Frames received on the port');
    const rxB = pc('rx_bytes_total', 'Bytes received on the port');
    const txP = pc('tx_packets_total', 'Frames sent out of the port');
    const txB = pc('tx_bytes_total', 'Bytes sent out of the port');
    const fl = pc('flooded_total', 'Frames received on the port that were flooded');
    const drops = pc('drops_total', 'Frames dropped, by reason (fault_* = fault injection)', ['reason']);
    const up = this.gauge('tapbridge_port_up', 'Port carrier: 1 up, 0 down', ['port', 'bridge']);
    const macs = this.gauge('tapbridge_port_macs', 'MAC addresses learned on the port', ['port', 'bridge']);
    for (const p of s.ports) {
      const l: Labels = { port: p.name, bridge: p.bridge ?? '' };
      rxP.inc(l, p.counters.rx_packets);
      rxB.inc(l, p.counters.rx_bytes);
      txP.inc(l, p.counters.tx_packets);
      txB.inc(l, p.counters.tx_bytes);
      fl.inc(l, p.counters.flooded);
      for (const [reason, v] of Object.entries(p.counters.drops)) drops.inc({ ...l, reason }, v);
      up.set(l, p.up ? 1 : 0);
      macs.set(l, p.macs);
    }
    const bm = this.gauge('tapbridge_bridge_macs', 'Entries in the MAC table', ['bridge']);
    const bs = this.gauge('tapbridge_bridge_mac_table_size', 'Capacity of the MAC table', ['bridge']);
    const bc = this.counter('tapbridge_bridge_events_total', 'Bridge events: forwarded, flooded, learned, moved, aged, learn_refused, evicted, move_refused', ['bridge', 'event']);
    for (const b of s.bridges) {
      bm.set({ bridge: b.name }, b.macs);
      bs.set({ bridge: b.name }, b.macTableSize);
      for (const [event, v] of [
        ['forwarded', b.forwarded],
        ['flooded', b.flooded],
        ['learned', b.learned],
        ['moved', b.moved],
        ['aged', b.aged],
        ['learn_refused', b.learnRefused],
        ['evicted', b.evicted],
        ['move_refused', b.moveRefused],
      ] as const)
        if (typeof v === 'number') bc.inc({ bridge: b.name, event }, v);
    }
    const fe = this.counter('tapbridge_fault_events_total', 'Fault stage events per port and direction (passed, lossDrops, delayed, ...)', ['port', 'direction', 'event']);
    const fa = this.gauge('tapbridge_fault_active', 'A fault is configured on the port and direction', ['port', 'direction']);
    const fq = this.gauge('tapbridge_fault_queued', 'Frames held in the fault timer queue (delay, rate, reorder)', ['port', 'direction']);
    for (const f of s.faults) {
      const l = { port: f.port, direction: f.direction };
      fa.set(l, f.active ? 1 : 0);
      fq.set(l, f.counters.queued);
      for (const [event, v] of Object.entries(f.counters)) if (event !== 'queued') fe.inc({ ...l, event }, v);
    }
    const cp = this.counter('tapbridge_capture_packets_total', 'Packets written by a capture', ['id', 'target']);
    const cd = this.counter('tapbridge_capture_dropped_total', 'Packets a capture dropped because its reader was too slow', ['id', 'target']);
    const ca = this.gauge('tapbridge_captures_running', 'Captures running', []);
    let running = 0;
    for (const c of s.captures) {
      const l = { id: String(c.id), target: c.target };
      cp.inc(l, c.packets);
      cd.inc(l, c.droppedBackpressure);
      if (c.state === 'running') running++;
    }
    ca.set(running);
    const pf = this.gauge('tapbridge_frame_pool_free', 'Free slots in the frame pool', []);
    const pt = this.gauge('tapbridge_frame_pool_slots', 'Slots in the frame pool', []);
    pf.set(s.pool.free);
    pt.set(s.pool.total);
    const pu = this.gauge('tapbridge_frame_pool_account_used', 'Pool slots held, by account (control, general, neighbour queues per port, delay lines)', ['account']);
    const pr = this.counter('tapbridge_frame_pool_account_refused_total', 'Pool allocations refused by account (at its limit, or only the control reserve left)', ['account']);
    for (const a of s.pool.accounts ?? []) {
      pu.set({ account: a.name }, a.used);
      if (a.refused > 0) pr.inc({ account: a.name }, a.refused);
    }
    if (s.router !== null) {
      const rc = this.counter('tapbridge_router_events_total', 'Router events: IPv4 (forwarded, ARP, ICMP, ...) and IPv6 (forwarded6, icmp6ErrorsSent, neighborSolicitsSent, routerAdvertsSent, ...)', ['event']);
      for (const [event, v] of Object.entries(s.router)) if (typeof v === 'number') rc.inc({ event }, v);
    }
    if (s.neighbors !== null) this.gauge('tapbridge_neighbors', 'Entries in the neighbour (ARP) cache', []).set(s.neighbors);
    if (typeof s.neighbors6 === 'number') this.gauge('tapbridge_neighbors6', 'Entries in the IPv6 neighbour (NDP) cache', []).set(s.neighbors6);
    if (s.conntrack !== null) this.gauge('tapbridge_conntrack_flows', 'Connection-tracking entries', []).set(s.conntrack.flows);
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
