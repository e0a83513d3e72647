/*
 * End-to-end benchmark structure: a Scenario builds the same topology several times — with
 * the kernel (reference), with tapbridge and, where it makes sense (L2), with the C ceiling
 * (bench/cfwd: a bare C TAP-to-TAP loop, with and without VNET_HDR) — and names the metrics
 * to measure on each. A Metric measures one number on a Topology's endpoints (client ns ->
 * server address). e2e.ts runs every scenario's metrics on all selected topologies ("peers",
 * `--compare`) in one run and prints metric | kernel | tapbridge | C loop ... | ratios with
 * the targets. To add a scenario (e.g. NAT with a
 * `wan` namespace): write a module exporting a Scenario (see l2-scenario.ts), reuse
 * netns.ts / tapbridge.ts for the setup, and list it in e2e.ts's SCENARIOS. A scenario of
 * another address family is the same module with other addresses (l2Scenario(6) next to
 * l2Scenario(4)); its targets may compare with the first family's tapbridge figures of the
 * same run (Target kind 'family').
 */
import { iperfTcp, iperfUdp, type Endpoints } from './iperf.js';
import { cpuPerGb, cpuPerMpkt } from './cpu.js';
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
  /** The data-plane process (tree) whose CPU time each measurement records (none for the kernel). */
  cpuPid?: number;
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
  secondary?: { id: string; label: string; pick(m: Measurement): number | null; unit?: string; decimals?: number; better?: 'higher' | 'lower' }[];
}

/**
 * A target on the tapbridge value: relative to the kernel (ratio = tapbridge/kernel), absolute,
 * or relative to tapbridge's own value of the same metric in another scenario of the same run
 * ('family': IPv6 against IPv4, at least `min` times it where higher is better, at most `max`
 * times it where lower is better). `aim` is the stretch goal.
 */
export type Target =
  | { kind: 'ratio'; min: number; aim?: number }
  | { kind: 'max'; max: number; unit: string }
  | { kind: 'family'; scenario: string; min: number }
  | { kind: 'family'; scenario: string; max: number };

/** What a target is evaluated on: this row's values, and for 'family' the other scenario's tapbridge value. */
export interface TargetInputs {
  kernel: number | null;
  tapbridge: number | null;
  /** tapbridge's value of the same metric in the target's scenario (null: not run or failed). */
  reference?: number | null;
}

export interface Scenario {
  name: string;
  description: string;
  setupKernel(ctx: ScenarioContext): Promise<Topology>;
  /** `extra` is merged into tapbridge's config (top-level keys, e.g. `poll`). */
  setupTapbridge(ctx: ScenarioContext, extra?: Record<string, unknown>): Promise<Topology>;
  /**
   * The same topology with bench/cfwd (the C ceiling) forwarding between TAPs instead of
   * tapbridge; only for scenarios a dumb TAP-to-TAP loop can carry (no gateway, no NAT).
   */
  setupCloop?(ctx: ScenarioContext, o: { vnetHdr: boolean }): Promise<Topology>;
  /** The same rows through slirp4netns (bench/lib/slirp.ts); only the IPv4 NAT scenario. */
  setupSlirp?(ctx: ScenarioContext): Promise<Topology>;
  /** The same rows through Open vSwitch's userspace datapath (bench/lib/ovs.ts); only the IPv4 switch scenario. */
  setupOvs?(ctx: ScenarioContext): Promise<Topology>;
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
    secondary: [cpuPerGb],
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
    secondary: [cpuPerMpkt],
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
  const pct = (x: number) => `${Math.round(x * 100)}%`;
  if (t.kind === 'ratio') return `>= ${pct(t.min)} of kernel${t.aim !== undefined ? ` (aim ${pct(t.aim)})` : ''}`;
  if (t.kind === 'family') return 'min' in t ? `>= ${pct(t.min)} of tapbridge in ${t.scenario}` : `<= ${pct(t.max)} of tapbridge in ${t.scenario}`;
  return `< ${t.max} ${t.unit}`;
}

/** tapbridge / the value the target measures against (kernel or reference scenario); null for 'max' or a missing value. */
export function targetRatio(t: Target, v: TargetInputs): number | null {
  const base = t.kind === 'ratio' ? v.kernel : t.kind === 'family' ? (v.reference ?? null) : null;
  return v.tapbridge === null || base === null || base === 0 ? null : v.tapbridge / base;
}

/** 'aim' (stretch goal met), 'pass', 'FAIL', or '?' when a value is missing. */
export function evaluateTarget(t: Target, v: TargetInputs): 'aim' | 'pass' | 'FAIL' | '?' {
  if (v.tapbridge === null) return '?';
  if (t.kind === 'max') return v.tapbridge < t.max ? 'pass' : 'FAIL';
  const r = targetRatio(t, v);
  if (r === null) return '?';
  if (t.kind === 'family') return ('min' in t ? r >= t.min : r <= t.max) ? 'pass' : 'FAIL';
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
