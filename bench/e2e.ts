/*
 * End-to-end benchmark (root): the kernel's bridge vs tapbridge vs the C ceiling, in one run,
 * on the same machine, with the same tools. For each scenario every selected topology
 * ("peer") is built (in namespaces named tbb-<id>-*), every metric is measured on the peers
 * in turn, then everything is torn down — also on failure or Ctrl-C.
 *
 *   node dist/bench/e2e.js [--duration S] [--quick] [--only tcp,udp,ping] [--repeat N]
 *                          [--scenario NAME[,NAME...]] [--compare kernel,tapbridge,cloop] [--verbose]
 *
 * Scenarios (in this order; `--help` lists them with their addresses):
 *   switch   ns -> ns through one bridge, IPv4: TCP, UDP 64 B, ping (median and p99)
 *   switch6  the same in IPv6 (2001:db8:100::2 -> ::3): kernel bridge and tapbridge
 *   nat      masquerade out to a wan namespace, a published port in, conn/s (iptables in kh)
 *   nat6     the same through NAT66 (2001:db8:100::2 -> wan 2001:db8:113::1, published
 *            [2001:db8:113::2]:5201; kernel: ip6tables MASQUERADE/DNAT in kh)
 *   cni      container attach time: CNI ADD to the first ping reply (tapbridge-cni vs the
 *            reference bridge plugin, both with host-local IPAM)
 * One module builds both families of a scenario (l2-scenario.ts, nat-scenario.ts). An IPv6
 * scenario is built and measured together with its IPv4 twin: both topologies stand at once
 * and, metric by metric, the runs alternate (switch kernel, switch tapbridge, ..., switch6
 * kernel, switch6 tapbridge, then the next repeat), so noise hits both families alike.
 *
 * Targets (the "target" and "result" columns): relative to the kernel (ratio), absolute (ping
 * < 150 µs), or, for the IPv6 rows, relative to tapbridge's own IPv4 figure of the same metric
 * in the same run ("of tapbridge in switch"): switch6 and nat6 TCP >= 90% of it, switch6 ping
 * median <= 110% of it; the result then shows that ratio, and the kernel ratio stays in its
 * column. Such a target needs its IPv4 scenario in the run (`--scenario switch,switch6`), else
 * it is "?". IPv6 UDP and nat6 conn/s keep the kernel-relative targets of IPv4.
 *
 * Peers: kernel (the reference), tapbridge, tapbridge with `poll: { busyMicros: 50 }` (the
 * IPv4 switch scenario only: what the adaptive busy poll buys in latency), and the C loop
 * (bench/cfwd/cfwd.c, built here with cc -O2: a bare TAP-to-TAP read/write loop, once with VNET_HDR and once plain; the
 * IPv4 switch scenario only), Open vSwitch's userspace datapath (bench/lib/ovs.ts; the IPv4
 * switch scenario only), and slirp4netns (bench/lib/slirp.ts; the IPv4 NAT scenario only).
 * `--compare` takes kernel, tapbridge, tapbridge-busy, ovs, slirp4netns, cloop (both C variants),
 * cloop-vnet, cloop-plain; default all. `--compare rootless` (alone) runs the rootless comparison
 * instead: slirp4netns, pasta and tapbridge's socket uplink behind a simulated host
 * (bench/lib/rootless.ts, its own table). A peer that fails to build or start stays in the table
 * as "failed: <reason>"; one a scenario cannot have shows "n/a".
 *
 * Output: progress on stderr, a table (metric | kernel | tapbridge | C loop ... | ratio |
 * tapbridge / C loop | target) on stdout, bench/results/e2e-<timestamp>.json and the same as a
 * chart, e2e-<timestamp>.svg (bench/lib/chart.ts). Numbers
 * are noisy on a 2-core machine: compare the ratios, measured in the same run, not absolute
 * values across runs.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { join } from 'node:path';
import { installSignalHandlers, runCleanups } from './lib/cleanup.js';
import { l2Scenario } from './lib/l2-scenario.js';
import { natScenario } from './lib/nat-scenario.js';
import { cniScenario } from './lib/cni-scenario.js';
import { runRootless } from './lib/rootless.js';
import { benchRunId, deleteNetns, listNetns, removeDeadRunLeftovers } from './lib/netns.js';
import { sleep } from './lib/proc.js';
import {
  DEFAULT_TARGETS,
  METRICS,
  describeTarget,
  evaluateTarget,
  summarize,
  targetRatio,
  type MeasureOptions,
  type Measurement,
  type Metric,
  type MetricId,
  type Scenario,
  type ScenarioContext,
  type Target,
  type Topology,
} from './lib/scenario.js';
import { fileStamp, fmt, median, table } from './lib/stats.js';
import { REPO_ROOT } from './lib/tapbridge.js';
import { portCounters, portDropsDelta, portTrafficDelta } from './lib/counters.js';
import { processTreeCpuSeconds } from './lib/cpu.js';
import { renderChart, type ChartRow } from './lib/chart.js';

/**
 * Every scenario the benchmark knows, in the order they run; add new ones here. Each IPv6
 * scenario runs right after its IPv4 twin, whose tapbridge figures its 'family' targets use.
 */
const SCENARIOS: Scenario[] = [l2Scenario(4), l2Scenario(6), natScenario(4), natScenario(6), cniScenario()];

/** The systems compared; each is a topology a scenario may or may not offer. */
type PeerId = 'kernel' | 'tapbridge' | 'tapbridgeBusy' | 'ovs' | 'slirp4netns' | 'cloopVnet' | 'cloopPlain';

/** The busy-poll window of the `tapbridge, busy poll` peer (config poll.busyMicros). */
const BUSY_MICROS = 50;

interface Peer {
  id: PeerId;
  /** Column header in the table. */
  column: string;
  /** The scenario's setup for this peer, or null when the scenario has none. */
  setup(s: Scenario): ((ctx: ScenarioContext) => Promise<Topology>) | null;
}

const PEERS: Peer[] = [
  { id: 'kernel', column: 'kernel', setup: (s) => (ctx) => s.setupKernel(ctx) },
  { id: 'tapbridge', column: 'tapbridge', setup: (s) => (ctx) => s.setupTapbridge(ctx) },
  // the same with the opt-in adaptive busy poll, in the IPv4 switch scenario (latency)
  { id: 'tapbridgeBusy', column: `tapbridge, busy poll ${BUSY_MICROS} µs`, setup: (s) => (s.name === 'switch' ? (ctx) => s.setupTapbridge({ ...ctx, prefix: `${ctx.prefix}-b` }, { poll: { busyMicros: BUSY_MICROS } }) : null) },
  { id: 'ovs', column: 'OVS userspace', setup: (s) => (s.setupOvs ? (ctx) => s.setupOvs!(ctx) : null) },
  { id: 'slirp4netns', column: 'slirp4netns', setup: (s) => (s.setupSlirp ? (ctx) => s.setupSlirp!(ctx) : null) },
  { id: 'cloopVnet', column: 'C loop, VNET_HDR', setup: (s) => (s.setupCloop ? (ctx) => s.setupCloop!(ctx, { vnetHdr: true }) : null) },
  { id: 'cloopPlain', column: 'C loop, plain', setup: (s) => (s.setupCloop ? (ctx) => s.setupCloop!(ctx, { vnetHdr: false }) : null) },
];

/** Names accepted by --compare. */
const COMPARE_NAMES: Record<string, PeerId[]> = {
  kernel: ['kernel'],
  tapbridge: ['tapbridge'],
  'tapbridge-busy': ['tapbridgeBusy'],
  slirp4netns: ['slirp4netns'],
  ovs: ['ovs'],
  cloop: ['cloopVnet', 'cloopPlain'],
  'cloop-vnet': ['cloopVnet'],
  'cloop-plain': ['cloopPlain'],
};

interface Options {
  durationS: number;
  only: MetricId[] | null;
  repeat: number;
  /** Scenario names (--scenario a,b), or null for all. */
  scenarios: string[] | null;
  compare: PeerId[];
  /** `--compare rootless`: only the rootless comparison (bench/lib/rootless.ts). */
  rootless: boolean;
  verbose: boolean;
  quick: boolean;
}

function usage(): never {
  const width = Math.max(...SCENARIOS.map((s) => s.name.length));
  process.stderr.write(
    'usage: node dist/bench/e2e.js [--duration S] [--quick] [--only tcp,udp,ping] [--repeat N] [--scenario NAME[,NAME...]]\n' +
      '                              [--compare kernel,tapbridge,cloop] [--verbose]\n' +
      `scenarios (default: all, in this order):\n${SCENARIOS.map((s) => `  ${s.name.padEnd(width)}  ${s.description}\n`).join('')}` +
      `  (switch6 and nat6 have targets relative to tapbridge's switch and nat figures: run those too, e.g. --scenario switch,switch6)\n` +
      `--compare names: ${Object.keys(COMPARE_NAMES).join(', ')} (cloop = both C loop variants; default: all)\n` +
      `--compare rootless: alone, the rootless comparison instead (slirp4netns, pasta, tapbridge's socket uplink; bench/lib/rootless.ts)\n`,
  );
  process.exit(2);
}

function parseArgs(argv: string[]): Options {
  const o: Options = { durationS: 5, only: null, repeat: 1, scenarios: null, compare: PEERS.map((p) => p.id), rootless: false, verbose: false, quick: false };
  let durationSet = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) usage();
      return v;
    };
    if (a === '--duration') {
      o.durationS = Number(val());
      durationSet = true;
      if (!(o.durationS >= 1 && o.durationS <= 600 && Number.isInteger(o.durationS))) usage();
    } else if (a === '--quick') o.quick = true;
    else if (a === '--only') {
      const ids = val().split(',').map((s) => s.trim()).filter(Boolean);
      for (const id of ids) if (!Object.hasOwn(METRICS, id)) usage();
      o.only = ids as MetricId[];
    } else if (a === '--repeat') {
      o.repeat = Number(val());
      if (!(Number.isInteger(o.repeat) && o.repeat >= 1 && o.repeat <= 20)) usage();
    } else if (a === '--scenario') {
      const names = val().split(',').map((s) => s.trim()).filter(Boolean);
      if (names.length === 0 || names.some((n) => !SCENARIOS.some((s) => s.name === n))) usage();
      o.scenarios = names;
    }
    else if (a === '--compare') {
      const names = val().split(',').map((s) => s.trim()).filter(Boolean);
      if (names.length === 0) usage();
      if (names.includes('rootless')) {
        if (names.length > 1) usage();
        o.rootless = true;
        continue;
      }
      const want = new Set<PeerId>();
      for (const n of names) {
        if (!Object.hasOwn(COMPARE_NAMES, n)) usage();
        for (const id of COMPARE_NAMES[n]) want.add(id);
      }
      o.compare = PEERS.map((p) => p.id).filter((id) => want.has(id));
    } else if (a === '--verbose' || a === '-v') o.verbose = true;
    else usage();
  }
  if (o.quick && !durationSet) o.durationS = 1;
  return o;
}

function log(msg: string): void {
  process.stderr.write(msg + '\n');
}

function which(cmd: string): boolean {
  try {
    execFileSync('which', [cmd], { stdio: 'ignore', timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', timeout: 5000 }).trim();
  } catch {
    return null;
  }
}

interface SideResult {
  /**
   * ok: measured; failed: the measurement failed; setup failed: the topology could not be
   * built or started (e.g. cfwd did not compile); not applicable: the scenario has no such
   * topology; not selected: left out by --compare.
   */
  status: 'ok' | 'failed' | 'setup failed' | 'not applicable' | 'not selected';
  value: number | null;
  values?: number[];
  detail?: Record<string, unknown>;
  /** tapbridge only: per-port drop counters that rose during the measurement. */
  drops?: Record<string, Record<string, number>>;
  /** tapbridge only: per-port rx/tx packets during the measurement. */
  traffic?: Record<string, { rx: number; tx: number }>;
  error?: string;
}

type Row = {
  scenario: string;
  metric: MetricId;
  /** Set for a secondary number of the metric's measurement (e.g. 'p99' of ping). */
  stat?: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  /** Decimals of a secondary row with a unit of its own (else the metric's). */
  decimals?: number;
  /** tapbridge / kernel. */
  ratio: number | null;
  /** tapbridge / the C loop named by ratioCloopPeer. */
  ratioCloop: number | null;
  ratioCloopPeer: PeerId | null;
  /** The target of the metric's main row (none on secondary rows). */
  targetSpec?: Target;
  target: string;
  verdict: string;
  /** 'family' targets: tapbridge / tapbridge's value of the same metric in `reference.scenario`. */
  targetRatio?: number | null;
  reference?: { scenario: string; tapbridge: number | null; run: boolean };
} & Record<PeerId, SideResult>;

/**
 * Judge every row's target once all scenarios ran: a 'family' target (switch6 vs switch) needs
 * another scenario's tapbridge value of the same run. Returns the scenarios that such a target
 * referred to but this run did not measure.
 */
function judgeTargets(rows: Row[]): string[] {
  const missing = new Set<string>();
  for (const row of rows) {
    const t = row.targetSpec;
    if (t === undefined) continue;
    const ref = t.kind === 'family' ? rows.find((r) => r.scenario === t.scenario && r.metric === row.metric && r.stat === undefined) : undefined;
    const inputs = { kernel: row.kernel.value, tapbridge: row.tapbridge.value, reference: ref?.tapbridge.value ?? null };
    row.target = describeTarget(t);
    row.verdict = evaluateTarget(t, inputs);
    if (t.kind === 'family') {
      row.targetRatio = targetRatio(t, inputs);
      row.reference = { scenario: t.scenario, tapbridge: inputs.reference, run: ref !== undefined };
      if (ref === undefined) missing.add(t.scenario);
    }
  }
  return [...missing];
}

/** Which C loop "tapbridge / C loop" divides by: VNET_HDR (same offloads as tapbridge) unless left out. */
function cloopBase(compare: PeerId[]): PeerId | null {
  if (compare.includes('cloopVnet')) return 'cloopVnet';
  if (compare.includes('cloopPlain')) return 'cloopPlain';
  return null;
}

/** A scenario of this run: what it measures, its peers' setups, and (while it runs) their topologies. */
interface PlannedScenario {
  s: Scenario;
  metrics: MetricId[];
  peers: { peer: Peer; setup: ((ctx: ScenarioContext) => Promise<Topology>) | null }[];
  topo: Partial<Record<PeerId, Topology>>;
  setupError: Partial<Record<PeerId, string>>;
}

/**
 * Scenarios built and measured together: an IPv6 scenario joins the IPv4 one its 'family'
 * targets name (when both run), so the runs of the two interleave like the peers' do.
 */
function groupScenarios(plan: PlannedScenario[]): PlannedScenario[][] {
  const groups: PlannedScenario[][] = [];
  for (const p of plan) {
    const refs = Object.values(p.s.targets ?? {}).flatMap((t) => (t?.kind === 'family' ? [t.scenario] : []));
    const twin = groups.find((g) => g.some((x) => refs.includes(x.s.name)));
    if (twin !== undefined) twin.push(p);
    else groups.push([p]);
  }
  return groups;
}

/** One scenario's runs of one metric, per peer, with tapbridge's port counters over them. */
interface MetricRuns {
  runs: Partial<Record<PeerId, Measurement[]>>;
  failed: Partial<Record<PeerId, string>>;
  drops: Record<string, Record<string, number>>;
  traffic: Record<string, { rx: number; tx: number }>;
}

function newMetricRuns(): MetricRuns {
  return { runs: {}, failed: {}, drops: {}, traffic: {} };
}

/** Measure `m` once on one peer's topology; a failure is kept (that peer is not measured again). */
async function measureOnce(m: Metric, peer: Peer, t: Topology, mo: MeasureOptions, a: MetricRuns): Promise<void> {
  const before = t.tapbridge ? await portCounters(t.tapbridge).catch(() => null) : null;
  const cpu0 = t.cpuPid !== undefined ? processTreeCpuSeconds(t.cpuPid) : null;
  try {
    const r = await m.measure(t.endpoints, mo);
    const cpu1 = t.cpuPid !== undefined ? processTreeCpuSeconds(t.cpuPid) : null;
    if (cpu0 !== null && cpu1 !== null) r.detail.cpuSeconds = Math.round((cpu1 - cpu0) * 100) / 100;
    (a.runs[peer.id] ??= []).push(r);
    log(`      ${peer.column} ${m.label}: ${fmt(r.value, m.decimals)} ${m.unit}`);
  } catch (err) {
    a.failed[peer.id] = (err as Error).message;
    log(`      ${peer.column} ${m.id} FAILED: ${a.failed[peer.id]}`);
  }
  if (!t.tapbridge || before === null) return;
  const after = await portCounters(t.tapbridge).catch(() => null);
  if (after === null) return;
  for (const [port, d] of Object.entries(portTrafficDelta(before, after))) {
    const acc = (a.traffic[port] ??= { rx: 0, tx: 0 });
    acc.rx += d.rx;
    acc.tx += d.tx;
  }
  const d = portDropsDelta(before, after);
  for (const [port, reasons] of Object.entries(d))
    for (const [reason, n] of Object.entries(reasons)) (a.drops[port] ??= {})[reason] = (a.drops[port]?.[reason] ?? 0) + n;
  if (Object.keys(d).length > 0) log(`      tapbridge drops during ${m.id}: ${JSON.stringify(d)}`);
}

/** The rows of one metric of one scenario: the metric's own, then one per secondary number (e.g. ping p99). */
function metricRows(p: PlannedScenario, mid: MetricId, a: MetricRuns, compare: PeerId[], base: PeerId | null): Row[] {
  const m = METRICS[mid];
  const variants: { stat?: string; label: string; pick: (r: Measurement) => number | null; unit?: string; decimals?: number; better?: 'higher' | 'lower' }[] = [
    { label: m.label, pick: (r) => r.value },
    ...(m.secondary ?? []).map((x) => ({ stat: x.id, label: x.label, pick: x.pick, unit: x.unit, decimals: x.decimals, better: x.better })),
  ];
  return variants.map((v) => {
    const row = {
      scenario: p.s.name,
      metric: mid,
      ...(v.stat !== undefined ? { stat: v.stat } : {}),
      label: v.label,
      unit: v.unit ?? m.unit,
      better: v.better ?? m.better,
      ...(v.decimals !== undefined ? { decimals: v.decimals } : {}),
      ratio: null,
      ratioCloop: null,
      ratioCloopPeer: null,
      target: '',
      verdict: '',
    } as unknown as Row;
    for (const peer of PEERS) {
      const pr = a.runs[peer.id] ?? [];
      let side: SideResult;
      if (!compare.includes(peer.id)) side = { status: 'not selected', value: null };
      else if (peer.setup(p.s) === null) side = { status: 'not applicable', value: null, error: `scenario ${p.s.name} has no ${peer.column} topology` };
      else if (p.setupError[peer.id] !== undefined) side = { status: 'setup failed', value: null, error: p.setupError[peer.id] };
      else if (a.failed[peer.id] !== undefined || pr.length === 0) side = { status: 'failed', value: null, error: a.failed[peer.id] ?? 'no run' };
      else if (v.stat === undefined) {
        const r = summarize(pr);
        side = { status: 'ok', value: r.value, values: r.values, detail: r.detail };
      } else {
        const vals = pr.map(v.pick).filter((x): x is number => x !== null);
        side = vals.length === 0 && v.stat.startsWith('cpu_') ? { status: 'not applicable', value: null, error: 'no data-plane process (in-kernel)' } : vals.length === pr.length ? { status: 'ok', value: median(vals), values: vals } : { status: 'failed', value: null, error: `no ${v.stat} in the measurement` };
      }
      row[peer.id] = side;
    }
    if (v.stat === undefined) {
      if (Object.keys(a.traffic).length > 0) row.tapbridge.traffic = a.traffic;
      if (Object.keys(a.drops).length > 0) row.tapbridge.drops = a.drops;
      row.targetSpec = p.s.targets?.[mid] ?? DEFAULT_TARGETS[mid];
    }
    const k = row.kernel.value;
    const t = row.tapbridge.value;
    const c = base === null ? null : row[base].value;
    row.ratio = k !== null && t !== null && k !== 0 ? t / k : null;
    row.ratioCloopPeer = base;
    row.ratioCloop = c !== null && t !== null && c !== 0 ? t / c : null;
    return row;
  });
}

function shortReason(msg: string, max = 48): string {
  const line = msg.split('\n')[0].trim();
  return line.length > max ? line.slice(0, max - 1) + '…' : line;
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) {
    log('e2e benchmark needs root (namespaces, TAPs, ping intervals < 0.2 s)');
    return 2;
  }
  for (const tool of ['iperf3', 'ping', 'ip']) if (!which(tool)) {
    log(`missing tool: ${tool}`);
    return 2;
  }
  installSignalHandlers(log);
  for (const r of await removeDeadRunLeftovers()) log(`removed a leftover of a benchmark run that died: ${r}`);

  const id = benchRunId();
  const ctx: ScenarioContext = { id, prefix: `tbb-${id}`, verbose: opts.verbose, log };
  if (opts.rootless) {
    const problems = await runRootless(ctx, { durationS: opts.durationS, repeat: opts.repeat }).catch((e: Error) => [e.stack ?? e.message]);
    for (const p of await runCleanups()) problems.push(`cleanup: ${p}`);
    for (const ns of listNetns(ctx.prefix)) {
      problems.push(`leftover namespace ${ns} (removed)`);
      await deleteNetns(ns).catch(() => {});
    }
    if (problems.length > 0) process.stdout.write(`\nproblems:\n  ${problems.join('\n  ')}\n`);
    return problems.length > 0 ? 1 : 0;
  }
  const mo: MeasureOptions = {
    durationS: opts.durationS,
    pingCount: Math.min(1000, opts.durationS * 200),
    pingIntervalS: 0.005,
  };
  const active = PEERS.filter((p) => opts.compare.includes(p.id));
  const base = cloopBase(opts.compare);
  const scenarios = SCENARIOS.filter((s) => opts.scenarios === null || opts.scenarios.includes(s.name));
  const plan: PlannedScenario[] = scenarios.map((s) => ({
    s,
    metrics: s.metrics.filter((m) => opts.only === null || opts.only.includes(m)),
    peers: active.map((p) => ({ peer: p, setup: p.setup(s) })),
    topo: {},
    setupError: {},
  }));
  const totalSteps = plan.reduce((n, p) => {
    const k = p.peers.filter((x) => x.setup !== null).length;
    return n + k + k * p.metrics.length * opts.repeat;
  }, 0);
  let step = 0;
  const progress = (what: string) => log(`[${++step}/${totalSteps}] ${what} ...`);

  const started = new Date();
  const loadBefore = loadavg();
  const rows: Row[] = [];
  const teardownReports: Record<string, unknown> = {};
  const topologies: Record<string, unknown> = {};
  const errors: string[] = [];
  log(`tapbridge e2e benchmark: run ${ctx.prefix}, ${opts.durationS} s per measurement, repeat ${opts.repeat}, peers ${active.map((p) => p.id).join(',')}`);

  try {
    for (const group of groupScenarios(plan)) {
      try {
        for (const member of group) {
          for (const { peer, setup } of member.peers) {
            if (setup === null) continue;
            progress(`${member.s.name}: ${peer.column} setup`);
            try {
              const t = await setup(ctx);
              member.topo[peer.id] = t;
              topologies[`${member.s.name}/${peer.id}`] = t.info;
            } catch (err) {
              // Reported in every row of this scenario, never dropped; the others still run.
              member.setupError[peer.id] = (err as Error).message;
              errors.push(`${member.s.name} ${peer.id} setup: ${member.setupError[peer.id]}`);
              log(`      ${peer.column} setup FAILED: ${member.setupError[peer.id]}`);
              step += member.metrics.length * opts.repeat;
            }
          }
        }
        const metricIds = [...new Set(group.flatMap((g) => g.metrics))];
        for (const mid of metricIds) {
          const m = METRICS[mid];
          const members = group.filter((g) => g.metrics.includes(mid));
          const acc = new Map(members.map((g) => [g, newMetricRuns()]));
          // The peers (and twin scenarios) take turns run by run, so a burst of noise hits all of them alike.
          for (let rep = 0; rep < opts.repeat; rep++) {
            for (const member of members) {
              const a = acc.get(member)!;
              for (const peer of active) {
                const t = member.topo[peer.id];
                if (t === undefined || a.failed[peer.id] !== undefined) continue;
                progress(`${member.s.name}: ${peer.column} ${mid.toUpperCase()}${opts.repeat > 1 ? ` (run ${rep + 1}/${opts.repeat})` : ''}`);
                await measureOnce(m, peer, t, mo, a);
                await sleep(300);
              }
            }
          }
          for (const member of members) {
            const made = metricRows(member, mid, acc.get(member)!, opts.compare, base);
            for (const peer of PEERS) {
              const side = made[0][peer.id];
              if (side.status === 'failed') errors.push(`${member.s.name} ${peer.id} ${mid}: ${side.error}`);
            }
            rows.push(...made);
            const measured = active.filter((p) => member.topo[p.id] !== undefined);
            if (opts.repeat > 1) log(`      ${member.s.name} median of ${opts.repeat}: ${measured.map((p) => `${p.column} ${fmt(made[0][p.id].value, m.decimals)}`).join(', ')} ${m.unit}`);
          }
        }
      } finally {
        // Newest first: the C loops and tapbridge before the kernel reference, the IPv6 twin before IPv4.
        for (const member of [...group].reverse()) {
          for (const peer of [...active].reverse()) {
            const t = member.topo[peer.id];
            if (t === undefined) continue;
            const name = member.s.name;
            const rep = await t.teardown().catch((e: Error) => ({ error: e.message }));
            teardownReports[`${name}/${peer.id}`] = rep ?? null;
            if (rep && 'error' in rep) errors.push(`${name}: ${peer.id} teardown: ${rep.error}`);
            if (rep && 'leftovers' in rep && rep.leftovers.length > 0) errors.push(`${name}: ${peer.id} left behind: ${rep.leftovers.join(', ')}`);
            if (rep && 'cleanExit' in rep && !rep.cleanExit) errors.push(`${name}: ${peer.id} did not exit cleanly (exit ${rep.exitCode ?? rep.signal})`);
          }
        }
      }
    }
  } catch (err) {
    errors.push((err as Error).message);
    log(`error: ${(err as Error).stack ?? (err as Error).message}`);
  } finally {
    const problems = await runCleanups();
    for (const p of problems) errors.push(`cleanup: ${p}`);
    for (const ns of listNetns(ctx.prefix)) {
      errors.push(`leftover namespace ${ns} (removed)`);
      await deleteNetns(ns).catch(() => {});
    }
  }

  // ---- report ----
  // The table in scenario order (twins were measured interleaved, metric by metric).
  const order = (r: Row) => SCENARIOS.findIndex((s) => s.name === r.scenario);
  rows.sort((x, y) => order(x) - order(y));
  const unmeasuredReferences = judgeTargets(rows);
  const has = (id: PeerId) => opts.compare.includes(id);
  const withRatio = has('kernel') && has('tapbridge');
  const withCloopRatio = has('tapbridge') && base !== null;
  const pct = (r: number | null) => (r === null ? '-' : `${(r * 100).toFixed(r < 0.1 ? 1 : 0)}%`);
  /** The verdict; for a 'family' target with the ratio it was judged on (or why there was none). */
  const result = (r: Row) => {
    if (r.reference === undefined) return r.verdict;
    if (!r.reference.run) return `${r.verdict} (${r.reference.scenario} not run)`;
    return r.targetRatio == null ? r.verdict : `${r.verdict} (${pct(r.targetRatio)})`;
  };
  const cell = (x: SideResult, d: number) => {
    if (x.status === 'ok') return fmt(x.value, d);
    if (x.status === 'not applicable') return 'n/a';
    if (x.status === 'not selected') return '';
    return `failed: ${shortReason(x.error ?? x.status)}`;
  };
  const header = [
    'metric',
    'unit',
    ...active.map((p) => p.column),
    ...(withRatio ? ['ratio'] : []),
    ...(withCloopRatio ? ['tapbridge / C loop'] : []),
    'target (tapbridge)',
    'result',
  ];
  const body = rows.map((r) => {
    const d = r.decimals ?? METRICS[r.metric].decimals;
    return [
      `${r.scenario}: ${r.label}`,
      r.unit,
      ...active.map((p) => cell(r[p.id], d)),
      ...(withRatio ? [pct(r.ratio)] : []),
      ...(withCloopRatio ? [pct(r.ratioCloop)] : []),
      r.target,
      result(r),
    ];
  });
  process.stdout.write('\n' + table([header, ...body]) + '\n');
  if (withRatio) process.stdout.write('ratio = tapbridge / kernel (for ping RTT, > 100% means slower than the kernel)\n');
  if (rows.some((r) => r.reference !== undefined))
    process.stdout.write(`"of tapbridge in S": tapbridge's value of the same metric in scenario S of this run (IPv6 vs IPv4); the result shows that ratio\n`);
  if (unmeasuredReferences.length > 0)
    process.stdout.write(`targets relative to ${unmeasuredReferences.join(', ')} could not be judged: add ${unmeasuredReferences.join(',')} to --scenario\n`);
  if (withCloopRatio)
    process.stdout.write(
      `tapbridge / C loop = tapbridge / ${PEERS.find((p) => p.id === base)!.column}${base === 'cloopVnet' ? ' (the same offloads as tapbridge\'s ports)' : ''}; a bare copy loop (bench/cfwd/cfwd.c) as the ceiling for a TAP forwarder (for ping RTT, > 100% means slower than it)\n`,
    );
  process.stdout.write(`load average before/after: ${loadBefore.map((x) => x.toFixed(2)).join(' ')} / ${loadavg().map((x) => x.toFixed(2)).join(' ')} on ${cpus().length} CPUs\n`);
  for (const r of rows) {
    if (r.stat !== undefined) continue;
    const ok = active.filter((p) => r[p.id].status === 'ok');
    if (r.metric === 'ping' && ok.length > 0) {
      type P = { medianUs?: number; p99Us?: number; avgUs?: number } | undefined;
      const desc = (x: P) => `${fmt(x?.medianUs, 0)}/${fmt(x?.avgUs, 0)}/${fmt(x?.p99Us, 0)}`;
      process.stdout.write(`ping detail (median/avg/p99 µs): ${ok.map((p) => `${p.column} ${desc(r[p.id].detail as P)}`).join('; ')}\n`);
    }
    if (r.metric === 'udp' && ok.length > 0) {
      type U = { offeredPps?: number; seconds?: number; receiverUdp?: { RcvbufErrors: number } } | undefined;
      const desc = (x: U) => {
        const full = x?.receiverUdp && x.seconds ? `, receiver socket full: ${fmt(x.receiverUdp.RcvbufErrors / x.seconds / 1000, 0)} kpps` : '';
        return `offered ${fmt((x?.offeredPps ?? NaN) / 1000, 0)} kpps${full}`;
      };
      process.stdout.write(`udp detail (${r.scenario}): ${ok.map((p) => `${p.column} ${desc(r[p.id].detail as U)}`).join('; ')}\n`);
    }
  }
  if (errors.length > 0) process.stdout.write(`\nproblems:\n  ${errors.join('\n  ')}\n`);

  const leftover = listNetns('tbb-' + id);
  const out = {
    kind: 'tapbridge-e2e',
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    runId: ctx.prefix,
    options: opts,
    measure: mo,
    peers: active.map((p) => ({ id: p.id, column: p.column })),
    ratioCloopPeer: base,
    environment: {
      node: process.version,
      kernel: release(),
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? null,
      commit: gitCommit(),
      loadavgBefore: loadBefore,
      loadavgAfter: loadavg(),
    },
    targets: DEFAULT_TARGETS,
    scenarios: scenarios.map((s) => ({ name: s.name, description: s.description, metrics: s.metrics, targets: s.targets ?? {} })),
    results: rows,
    topologies,
    teardown: teardownReports,
    leftoverNamespaces: leftover,
    errors,
  };
  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `e2e-${fileStamp(started)}.json`);
  writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  const svg = file.replace(/\.json$/, '.svg');
  const chartRows: ChartRow[] = rows
    .filter((r) => active.some((p) => r[p.id].status !== 'not selected'))
    .map((r) => ({ title: `${r.scenario}: ${r.label}`, unit: r.unit, better: r.better, decimals: r.decimals ?? METRICS[r.metric].decimals, sides: active.map((p) => r[p.id]) }));
  writeFileSync(svg, renderChart(`tapbridge e2e benchmark, ${started.toISOString().slice(0, 16)}Z, ${cpus().length} CPUs, kernel ${release()}`, active.map((p) => p.column), chartRows));
  log(`\nresults written to ${file} (chart: ${svg})`);
  return errors.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  async (err: Error) => {
    log(`fatal: ${err.stack ?? err.message}`);
    await runCleanups();
    process.exit(1);
  },
);
