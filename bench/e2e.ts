/*
 * End-to-end benchmark (root): the kernel's bridge vs tapbridge vs the C ceiling, in one run,
 * on the same machine, with the same tools. For each scenario every selected topology
 * ("peer") is built (in namespaces named tbb-<id>-*), every metric is measured on the peers
 * in turn, then everything is torn down — also on failure or Ctrl-C.
 *
 *   node dist/bench/e2e.js [--duration S] [--quick] [--only tcp,udp,ping] [--repeat N]
 *                          [--scenario NAME] [--compare kernel,tapbridge,cloop] [--verbose]
 *
 * Peers: kernel (the reference), tapbridge, and the C loop (bench/cfwd/cfwd.c, built here
 * with cc -O2: a bare TAP-to-TAP read/write loop, once with VNET_HDR and once plain; L2
 * scenarios only). `--compare` takes kernel, tapbridge, cloop (both C variants), cloop-vnet,
 * cloop-plain; default all. A peer that fails to build or start stays in the table as
 * "failed: <reason>"; one a scenario cannot have shows "n/a".
 *
 * Output: progress on stderr, a table (metric | kernel | tapbridge | C loop ... | ratio |
 * tapbridge / C loop | target) on stdout, and bench/results/e2e-<timestamp>.json. Numbers
 * are noisy on a 2-core machine: compare the ratios, measured in the same run, not absolute
 * values across runs.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { join } from 'node:path';
import { installSignalHandlers, runCleanups } from './lib/cleanup.js';
import { l2Scenario } from './lib/l2-scenario.js';
import { natScenario } from './lib/nat-scenario.js';
import { deleteNetns, listNetns } from './lib/netns.js';
import { sleep } from './lib/proc.js';
import {
  DEFAULT_TARGETS,
  METRICS,
  describeTarget,
  evaluateTarget,
  summarize,
  type MeasureOptions,
  type Measurement,
  type MetricId,
  type Scenario,
  type ScenarioContext,
  type Topology,
} from './lib/scenario.js';
import { fileStamp, fmt, median, table } from './lib/stats.js';
import { REPO_ROOT } from './lib/tapbridge.js';
import { portCounters, portDropsDelta, portTrafficDelta } from './lib/counters.js';

/** Every scenario the benchmark knows; add new ones (e.g. NAT) here. */
const SCENARIOS: Scenario[] = [l2Scenario, natScenario];

/** The systems compared; each is a topology a scenario may or may not offer. */
type PeerId = 'kernel' | 'tapbridge' | 'cloopVnet' | 'cloopPlain';

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
  { id: 'cloopVnet', column: 'C loop, VNET_HDR', setup: (s) => (s.setupCloop ? (ctx) => s.setupCloop!(ctx, { vnetHdr: true }) : null) },
  { id: 'cloopPlain', column: 'C loop, plain', setup: (s) => (s.setupCloop ? (ctx) => s.setupCloop!(ctx, { vnetHdr: false }) : null) },
];

/** Names accepted by --compare. */
const COMPARE_NAMES: Record<string, PeerId[]> = {
  kernel: ['kernel'],
  tapbridge: ['tapbridge'],
  cloop: ['cloopVnet', 'cloopPlain'],
  'cloop-vnet': ['cloopVnet'],
  'cloop-plain': ['cloopPlain'],
};

interface Options {
  durationS: number;
  only: MetricId[] | null;
  repeat: number;
  scenario: string | null;
  compare: PeerId[];
  verbose: boolean;
  quick: boolean;
}

function usage(): never {
  process.stderr.write(
    'usage: node dist/bench/e2e.js [--duration S] [--quick] [--only tcp,udp,ping] [--repeat N] [--scenario NAME]\n' +
      '                              [--compare kernel,tapbridge,cloop] [--verbose]\n' +
      `scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}\n` +
      `--compare names: ${Object.keys(COMPARE_NAMES).join(', ')} (cloop = both C loop variants; default: all)\n`,
  );
  process.exit(2);
}

function parseArgs(argv: string[]): Options {
  const o: Options = { durationS: 5, only: null, repeat: 1, scenario: null, compare: PEERS.map((p) => p.id), verbose: false, quick: false };
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
    } else if (a === '--scenario') o.scenario = val();
    else if (a === '--compare') {
      const names = val().split(',').map((s) => s.trim()).filter(Boolean);
      if (names.length === 0) usage();
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
  if (o.scenario !== null && !SCENARIOS.some((s) => s.name === o.scenario)) usage();
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
  /** tapbridge / kernel. */
  ratio: number | null;
  /** tapbridge / the C loop named by ratioCloopPeer. */
  ratioCloop: number | null;
  ratioCloopPeer: PeerId | null;
  target: string;
  verdict: string;
} & Record<PeerId, SideResult>;

/** Which C loop "tapbridge / C loop" divides by: VNET_HDR (same offloads as tapbridge) unless left out. */
function cloopBase(compare: PeerId[]): PeerId | null {
  if (compare.includes('cloopVnet')) return 'cloopVnet';
  if (compare.includes('cloopPlain')) return 'cloopPlain';
  return null;
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

  const id = randomBytes(3).toString('hex');
  const ctx: ScenarioContext = { id, prefix: `tbb-${id}`, verbose: opts.verbose, log };
  const mo: MeasureOptions = {
    durationS: opts.durationS,
    pingCount: Math.min(1000, opts.durationS * 200),
    pingIntervalS: 0.005,
  };
  const active = PEERS.filter((p) => opts.compare.includes(p.id));
  const base = cloopBase(opts.compare);
  const scenarios = SCENARIOS.filter((s) => opts.scenario === null || s.name === opts.scenario);
  const plan = scenarios.map((s) => ({
    s,
    metrics: s.metrics.filter((m) => opts.only === null || opts.only.includes(m)),
    peers: active.map((p) => ({ peer: p, setup: p.setup(s) })),
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
    for (const { s, metrics, peers } of plan) {
      const topo: Partial<Record<PeerId, Topology>> = {};
      const setupError: Partial<Record<PeerId, string>> = {};
      try {
        for (const { peer, setup } of peers) {
          if (setup === null) continue;
          progress(`${s.name}: ${peer.column} setup`);
          try {
            const t = await setup(ctx);
            topo[peer.id] = t;
            topologies[`${s.name}/${peer.id}`] = t.info;
          } catch (err) {
            // Reported in every row of this scenario, never dropped; the others still run.
            setupError[peer.id] = (err as Error).message;
            errors.push(`${s.name} ${peer.id} setup: ${setupError[peer.id]}`);
            log(`      ${peer.column} setup FAILED: ${setupError[peer.id]}`);
            step += metrics.length * opts.repeat;
          }
        }
        const measured = active.filter((p) => topo[p.id] !== undefined);
        for (const mid of metrics) {
          const m = METRICS[mid];
          // The peers take turns run by run, so a burst of noise hits all of them alike.
          const runs: Partial<Record<PeerId, Measurement[]>> = {};
          const failed: Partial<Record<PeerId, string>> = {};
          const drops: Record<string, Record<string, number>> = {};
          const traffic: Record<string, { rx: number; tx: number }> = {};
          for (let rep = 0; rep < opts.repeat; rep++) {
            for (const peer of measured) {
              const t = topo[peer.id]!;
              if (failed[peer.id] !== undefined) continue;
              progress(`${s.name}: ${peer.column} ${mid.toUpperCase()}${opts.repeat > 1 ? ` (run ${rep + 1}/${opts.repeat})` : ''}`);
              const before = t.tapbridge ? await portCounters(t.tapbridge).catch(() => null) : null;
              try {
                const r = await m.measure(t.endpoints, mo);
                (runs[peer.id] ??= []).push(r);
                log(`      ${peer.column} ${m.label}: ${fmt(r.value, m.decimals)} ${m.unit}`);
              } catch (err) {
                failed[peer.id] = (err as Error).message;
                log(`      ${peer.column} ${mid} FAILED: ${failed[peer.id]}`);
              }
              if (t.tapbridge && before !== null) {
                const after = await portCounters(t.tapbridge).catch(() => null);
                if (after !== null) {
                  for (const [port, d] of Object.entries(portTrafficDelta(before, after))) {
                    const acc = (traffic[port] ??= { rx: 0, tx: 0 });
                    acc.rx += d.rx;
                    acc.tx += d.tx;
                  }
                  const d = portDropsDelta(before, after);
                  for (const [port, reasons] of Object.entries(d))
                    for (const [reason, n] of Object.entries(reasons)) (drops[port] ??= {})[reason] = (drops[port]?.[reason] ?? 0) + n;
                  if (Object.keys(d).length > 0) log(`      tapbridge drops during ${mid}: ${JSON.stringify(d)}`);
                }
              }
              await sleep(300);
            }
          }

          // One row for the metric, one per secondary number of the same measurements.
          const variants: { stat?: string; label: string; pick: (r: Measurement) => number | null }[] = [
            { label: m.label, pick: (r) => r.value },
            ...(m.secondary ?? []).map((x) => ({ stat: x.id, label: x.label, pick: x.pick })),
          ];
          for (const v of variants) {
            const row = {
              scenario: s.name,
              metric: mid,
              ...(v.stat !== undefined ? { stat: v.stat } : {}),
              label: v.label,
              unit: m.unit,
              better: m.better,
              ratio: null,
              ratioCloop: null,
              ratioCloopPeer: null,
              target: '',
              verdict: '',
            } as unknown as Row;
            for (const peer of PEERS) {
              const pr = runs[peer.id] ?? [];
              let side: SideResult;
              if (!opts.compare.includes(peer.id)) side = { status: 'not selected', value: null };
              else if (peer.setup(s) === null) side = { status: 'not applicable', value: null, error: `scenario ${s.name} has no ${peer.column} topology` };
              else if (setupError[peer.id] !== undefined) side = { status: 'setup failed', value: null, error: setupError[peer.id] };
              else if (failed[peer.id] !== undefined || pr.length === 0) {
                side = { status: 'failed', value: null, error: failed[peer.id] ?? 'no run' };
                if (v.stat === undefined) errors.push(`${s.name} ${peer.id} ${mid}: ${side.error}`);
              } else if (v.stat === undefined) {
                const r = summarize(pr);
                side = { status: 'ok', value: r.value, values: r.values, detail: r.detail };
              } else {
                const vals = pr.map(v.pick).filter((x): x is number => x !== null);
                side = vals.length === pr.length ? { status: 'ok', value: median(vals), values: vals } : { status: 'failed', value: null, error: `no ${v.stat} in the measurement` };
              }
              row[peer.id] = side;
            }
            if (v.stat === undefined) {
              if (Object.keys(traffic).length > 0) row.tapbridge.traffic = traffic;
              if (Object.keys(drops).length > 0) row.tapbridge.drops = drops;
            }
            const k = row.kernel.value;
            const t = row.tapbridge.value;
            const c = base === null ? null : row[base].value;
            row.ratio = k !== null && t !== null && k !== 0 ? t / k : null;
            row.ratioCloopPeer = base;
            row.ratioCloop = c !== null && t !== null && c !== 0 ? t / c : null;
            if (v.stat === undefined) {
              const target = s.targets?.[mid] ?? DEFAULT_TARGETS[mid];
              row.target = describeTarget(target);
              row.verdict = evaluateTarget(target, k, t);
            }
            rows.push(row);
          }
          if (opts.repeat > 1)
            log(`      median of ${opts.repeat}: ${measured.map((p) => `${p.column} ${fmt(rows[rows.length - variants.length][p.id].value, m.decimals)}`).join(', ')} ${m.unit}`);
        }
      } finally {
        // Newest first: the C loops and tapbridge before the kernel reference.
        for (const peer of [...active].reverse()) {
          const t = topo[peer.id];
          if (t === undefined) continue;
          const rep = await t.teardown().catch((e: Error) => ({ error: e.message }));
          teardownReports[`${s.name}/${peer.id}`] = rep ?? null;
          if (rep && 'error' in rep) errors.push(`${s.name}: ${peer.id} teardown: ${rep.error}`);
          if (rep && 'leftovers' in rep && rep.leftovers.length > 0) errors.push(`${s.name}: ${peer.id} left behind: ${rep.leftovers.join(', ')}`);
          if (rep && 'cleanExit' in rep && !rep.cleanExit) errors.push(`${s.name}: ${peer.id} did not exit cleanly (exit ${rep.exitCode ?? rep.signal})`);
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
  const has = (id: PeerId) => opts.compare.includes(id);
  const withRatio = has('kernel') && has('tapbridge');
  const withCloopRatio = has('tapbridge') && base !== null;
  const pct = (r: number | null) => (r === null ? '-' : `${(r * 100).toFixed(r < 0.1 ? 1 : 0)}%`);
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
    const d = METRICS[r.metric].decimals;
    return [
      `${r.scenario}: ${r.label}`,
      r.unit,
      ...active.map((p) => cell(r[p.id], d)),
      ...(withRatio ? [pct(r.ratio)] : []),
      ...(withCloopRatio ? [pct(r.ratioCloop)] : []),
      r.target,
      r.verdict,
    ];
  });
  process.stdout.write('\n' + table([header, ...body]) + '\n');
  if (withRatio) process.stdout.write('ratio = tapbridge / kernel (for ping RTT, > 100% means slower than the kernel)\n');
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
  log(`\nresults written to ${file}`);
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
