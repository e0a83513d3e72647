/*
 * End-to-end benchmark structure: a Scenario builds the same topology several times — with
 * the kernel (reference), with tapbridge and, where it makes sense (L2), with the C ceiling
 * (bench/cfwd: a bare C TAP-to-TAP loop, with and without VNET_HDR) — and names the metrics
 * to measure on each. A Metric measures one number on a Topology's endpoints (client ns ->
 * server address). e2e.ts runs every scenario's metrics on all selected topologies ("peers",
 * `--compare`) in one run and prints metric | kernel | tapbridge | C loop ... | ratios with
 * the targets. To add a scenario (e.g. NAT with a
 * `wan` namespace): write a module exporting a Scenario (see l2-scenario.ts), reuse
 * netns.ts / tapbridge.ts for the setup, and list it in e2e.ts's SCENARIOS.
 */
import { iperfTcp, iperfUdp, type Endpoints } from './iperf.js';
import { ping } from './ping.js';
import { median } from './stats.js';
import type { TapbridgeInstance } from './tapbridge.js';

export interface ScenarioContext {
  /** Unique run id; every namespace is named `${prefix}-...` with prefix = `tbb-${id}`. */
  id: string;
  prefix: string;
  verbose: boolean;
  log(msg: string): void;
}

export interface Topology {
  endpoints: Endpoints;
  /** Set for tapbridge topologies: counters are read from it after each metric. */
  tapbridge?: TapbridgeInstance;
  /** Anything worth keeping in the JSON (names, addresses, config). */
  info: Record<string, unknown>;
  /** Remove everything (also registered with the cleanup registry, so idempotent). */
  teardown(): Promise<TeardownReport | void>;
}

/** What a topology with a process of its own (tapbridge, cfwd) reports when torn down. */
export interface TeardownReport {
  exitCode: number | null;
  signal: string | null;
  cleanExit: boolean;
  /** Things left behind that had to be removed for it (a bug if non-empty). */
  leftovers: string[];
}

export type MetricId = 'tcp' | 'udp' | 'ping';

export interface MeasureOptions {
  durationS: number;
  pingCount: number;
  pingIntervalS: number;
}

export interface Measurement {
  value: number;
  detail: Record<string, unknown>;
}

export interface Metric {
  id: MetricId;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  decimals: number;
  measure(ep: Endpoints, o: MeasureOptions): Promise<Measurement>;
  /** More numbers from the same measurement, reported as rows of their own (no target). */
  secondary?: { id: string; label: string; pick(m: Measurement): number | null }[];
}

/**
 * A target on the tapbridge value, either relative to the kernel (ratio = tapbridge/kernel)
 * or absolute. `aim` is the stretch goal.
 */
export type Target =
  | { kind: 'ratio'; min: number; aim?: number }
  | { kind: 'max'; max: number; unit: string };

export interface Scenario {
  name: string;
  description: string;
  setupKernel(ctx: ScenarioContext): Promise<Topology>;
  setupTapbridge(ctx: ScenarioContext): Promise<Topology>;
  /**
   * The same topology with bench/cfwd (the C ceiling) forwarding between TAPs instead of
   * tapbridge; only for scenarios a dumb TAP-to-TAP loop can carry (no gateway, no NAT).
   */
  setupCloop?(ctx: ScenarioContext, o: { vnetHdr: boolean }): Promise<Topology>;
  metrics: MetricId[];
  /** Overrides of DEFAULT_TARGETS for this scenario. */
  targets?: Partial<Record<MetricId, Target>>;
}

export const METRICS: Record<MetricId, Metric> = {
  tcp: {
    id: 'tcp',
    label: 'TCP throughput (iperf3, 1 stream)',
    unit: 'Gbit/s',
    better: 'higher',
    decimals: 2,
    async measure(ep, o) {
      const r = await iperfTcp(ep, o.durationS);
      return { value: r.gbps, detail: { ...r } };
    },
  },
  udp: {
    id: 'udp',
    label: 'UDP 64 B delivered (iperf3 -b 0)',
    unit: 'kpps',
    better: 'higher',
    decimals: 1,
    async measure(ep, o) {
      const r = await iperfUdp(ep, o.durationS, { len: 64, bandwidth: '0' });
      return { value: r.deliveredPps / 1000, detail: { ...r } };
    },
  },
  ping: {
    id: 'ping',
    label: 'ping RTT median',
    unit: 'µs',
    better: 'lower',
    decimals: 1,
    async measure(ep, o) {
      // Warm-up: ARP and the first-packet paths are not what is measured.
      await ping(ep.clientNs, ep.serverAddr, { count: 5, intervalS: 0.01 });
      const r = await ping(ep.clientNs, ep.serverAddr, { count: o.pingCount, intervalS: o.pingIntervalS });
      return { value: r.medianUs, detail: { ...r } };
    },
    secondary: [{ id: 'p99', label: 'ping RTT p99', pick: (m) => (typeof m.detail.p99Us === 'number' ? m.detail.p99Us : null) }],
  },
};

/** The targets from the issue. */
export const DEFAULT_TARGETS: Record<MetricId, Target> = {
  tcp: { kind: 'ratio', min: 0.25, aim: 0.6 },
  udp: { kind: 'ratio', min: 0.5, aim: 1.0 },
  ping: { kind: 'max', max: 150, unit: 'µs' },
};

export function describeTarget(t: Target): string {
  if (t.kind === 'ratio') return `>= ${Math.round(t.min * 100)}% of kernel${t.aim !== undefined ? ` (aim ${Math.round(t.aim * 100)}%)` : ''}`;
  return `< ${t.max} ${t.unit}`;
}

/** 'aim' (stretch goal met), 'pass', 'FAIL', or '?' when a value is missing. */
export function evaluateTarget(t: Target, kernel: number | null, tb: number | null): 'aim' | 'pass' | 'FAIL' | '?' {
  if (tb === null) return '?';
  if (t.kind === 'max') return tb < t.max ? 'pass' : 'FAIL';
  if (kernel === null || kernel === 0) return '?';
  const r = tb / kernel;
  if (t.aim !== undefined && r >= t.aim) return 'aim';
  return r >= t.min ? 'pass' : 'FAIL';
}

/** Several runs of one metric on one side -> the median (and the detail of the run nearest it). */
export function summarize(runs: Measurement[]): Measurement & { values: number[] } {
  const values = runs.map((r) => r.value);
  const med = median(values);
  let best = runs[0];
  for (const r of runs) if (Math.abs(r.value - med) < Math.abs(best.value - med)) best = r;
  return { value: med, values, detail: best.detail };
}
