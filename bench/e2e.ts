/*
 * End-to-end benchmark (root): the kernel's bridge vs tapbridge, in one run, on the same
 * machine, with the same tools. For each scenario both topologies are built (in namespaces
 * named tbb-<id>-*), every metric is measured on the kernel and on tapbridge alternately,
 * then everything is torn down — also on failure or Ctrl-C.
 *
 *   node dist/bench/e2e.js [--duration S] [--quick] [--only tcp,udp,ping] [--repeat N]
 *                          [--scenario NAME] [--verbose]
 *
 * Output: progress on stderr, a table (metric | kernel | tapbridge | ratio | target) on
 * stdout, and bench/results/e2e-<timestamp>.json. Numbers are noisy on a 2-core machine:
 * compare the ratio, measured in the same run, not absolute values across runs.
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
import { fileStamp, fmt, table } from './lib/stats.js';
import { REPO_ROOT } from './lib/tapbridge.js';
import { portCounters, portDropsDelta, portTrafficDelta } from './lib/counters.js';

/** Every scenario the benchmark knows; add new ones (e.g. NAT) here. */
const SCENARIOS: Scenario[] = [l2Scenario, natScenario];

interface Options {
  durationS: number;
  only: MetricId[] | null;
  repeat: number;
  scenario: string | null;
  verbose: boolean;
  quick: boolean;
}

function usage(): never {
  process.stderr.write(
    'usage: node dist/bench/e2e.js [--duration S] [--quick] [--only tcp,udp,ping] [--repeat N] [--scenario NAME] [--verbose]\n' +
      `scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}\n`,
  );
  process.exit(2);
}

function parseArgs(argv: string[]): Options {
  const o: Options = { durationS: 5, only: null, repeat: 1, scenario: null, verbose: false, quick: false };
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
    else if (a === '--verbose' || a === '-v') o.verbose = true;
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
  value: number | null;
  values?: number[];
  detail?: Record<string, unknown>;
  /** tapbridge only: per-port drop counters that rose during the measurement. */
  drops?: Record<string, Record<string, number>>;
  /** tapbridge only: per-port rx/tx packets during the measurement. */
  traffic?: Record<string, { rx: number; tx: number }>;
  error?: string;
}

interface Row {
  scenario: string;
  metric: MetricId;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  kernel: SideResult;
  tapbridge: SideResult;
  ratio: number | null;
  target: string;
  verdict: string;
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
  const scenarios = SCENARIOS.filter((s) => opts.scenario === null || s.name === opts.scenario);
  const plan = scenarios.map((s) => ({ s, metrics: s.metrics.filter((m) => opts.only === null || opts.only.includes(m)) }));
  const totalSteps = plan.reduce((n, p) => n + 2 + 2 * p.metrics.length * opts.repeat, 0);
  let step = 0;
  const progress = (what: string) => log(`[${++step}/${totalSteps}] ${what} ...`);

  const started = new Date();
  const loadBefore = loadavg();
  const rows: Row[] = [];
  const teardownReports: Record<string, unknown> = {};
  const errors: string[] = [];
  log(`tapbridge e2e benchmark: run ${ctx.prefix}, ${opts.durationS} s per measurement, repeat ${opts.repeat}`);

  try {
    for (const { s, metrics } of plan) {
      let kernel: Topology | null = null;
      let tb: Topology | null = null;
      try {
        progress(`${s.name}: kernel setup`);
        kernel = await s.setupKernel(ctx);
        progress(`${s.name}: tapbridge setup`);
        tb = await s.setupTapbridge(ctx);
        for (const id of metrics) {
          const m = METRICS[id];
          const row: Row = {
            scenario: s.name,
            metric: id,
            label: m.label,
            unit: m.unit,
            better: m.better,
            kernel: { value: null },
            tapbridge: { value: null },
            ratio: null,
            target: '',
            verdict: '?',
          };
          // Kernel and tapbridge alternate run by run, so a burst of noise hits both alike.
          const runs = { kernel: [] as Measurement[], tapbridge: [] as Measurement[] };
          const failed = { kernel: null as string | null, tapbridge: null as string | null };
          const drops: Record<string, Record<string, number>> = {};
          const traffic: Record<string, { rx: number; tx: number }> = {};
          for (let rep = 0; rep < opts.repeat; rep++) {
            for (const [side, topo] of [['kernel', kernel], ['tapbridge', tb]] as const) {
              if (failed[side] !== null) continue;
              progress(`${s.name}: ${side} ${id.toUpperCase()}${opts.repeat > 1 ? ` (run ${rep + 1}/${opts.repeat})` : ''}`);
              const before = topo.tapbridge ? await portCounters(topo.tapbridge).catch(() => null) : null;
              try {
                const r = await m.measure(topo.endpoints, mo);
                runs[side].push(r);
                log(`      ${side} ${m.label}: ${fmt(r.value, m.decimals)} ${m.unit}`);
              } catch (err) {
                failed[side] = (err as Error).message;
                log(`      ${side} ${id} FAILED: ${failed[side]}`);
              }
              if (topo.tapbridge && before !== null) {
                const after = await portCounters(topo.tapbridge).catch(() => null);
                if (after !== null) {
                  for (const [port, t] of Object.entries(portTrafficDelta(before, after))) {
                    const acc = (traffic[port] ??= { rx: 0, tx: 0 });
                    acc.rx += t.rx;
                    acc.tx += t.tx;
                  }
                  const d = portDropsDelta(before, after);
                  for (const [port, reasons] of Object.entries(d))
                    for (const [reason, n] of Object.entries(reasons)) (drops[port] ??= {})[reason] = (drops[port]?.[reason] ?? 0) + n;
                  if (Object.keys(d).length > 0) log(`      tapbridge drops during ${id}: ${JSON.stringify(d)}`);
                }
              }
              await sleep(300);
            }
          }
          for (const side of ['kernel', 'tapbridge'] as const) {
            if (runs[side].length > 0 && failed[side] === null) {
              const r = summarize(runs[side]);
              row[side] = { value: r.value, values: r.values, detail: r.detail };
            } else {
              row[side] = { value: null, error: failed[side] ?? 'no run' };
              errors.push(`${s.name} ${side} ${id}: ${failed[side]}`);
            }
          }
          if (Object.keys(traffic).length > 0) row.tapbridge.traffic = traffic;
          if (Object.keys(drops).length > 0) row.tapbridge.drops = drops;
          if (opts.repeat > 1)
            log(`      median of ${opts.repeat}: kernel ${fmt(row.kernel.value, m.decimals)}, tapbridge ${fmt(row.tapbridge.value, m.decimals)} ${m.unit}`);
          const k = row.kernel.value;
          const t = row.tapbridge.value;
          row.ratio = k !== null && t !== null && k !== 0 ? t / k : null;
          const target = s.targets?.[id] ?? DEFAULT_TARGETS[id];
          row.target = describeTarget(target);
          row.verdict = evaluateTarget(target, k, t);
          rows.push(row);
        }
      } finally {
        if (tb !== null) {
          const rep = await tb.teardown().catch((e: Error) => ({ error: e.message }));
          teardownReports[`${s.name}/tapbridge`] = rep;
          if (rep && 'leftovers' in rep && rep.leftovers.length > 0) errors.push(`${s.name}: tapbridge left behind: ${rep.leftovers.join(', ')}`);
          if (rep && 'cleanExit' in rep && !rep.cleanExit) errors.push(`${s.name}: tapbridge did not exit cleanly (exit ${rep.exitCode ?? rep.signal})`);
        }
        if (kernel !== null) await kernel.teardown().catch((e: Error) => errors.push(`${s.name}: kernel teardown: ${e.message}`));
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
  const header = ['metric', 'unit', 'kernel', 'tapbridge', 'ratio', 'target (tapbridge)', 'result'];
  const body = rows.map((r) => {
    const d = METRICS[r.metric].decimals;
    return [
      `${r.scenario}: ${r.label}`,
      r.unit,
      r.kernel.value === null ? 'error' : fmt(r.kernel.value, d),
      r.tapbridge.value === null ? 'error' : fmt(r.tapbridge.value, d),
      r.ratio === null ? '-' : `${(r.ratio * 100).toFixed(r.ratio < 0.1 ? 1 : 0)}%`,
      r.target,
      r.verdict,
    ];
  });
  process.stdout.write('\n' + table([header, ...body]) + '\n');
  process.stdout.write('ratio = tapbridge / kernel (for ping RTT, > 100% means slower than the kernel)\n');
  process.stdout.write(`load average before/after: ${loadBefore.map((x) => x.toFixed(2)).join(' ')} / ${loadavg().map((x) => x.toFixed(2)).join(' ')} on ${cpus().length} CPUs\n`);
  for (const r of rows) {
    const d = r.tapbridge.detail as { medianUs?: number; p99Us?: number; avgUs?: number } | undefined;
    const k = r.kernel.detail as { medianUs?: number; p99Us?: number; avgUs?: number } | undefined;
    if (r.metric === 'ping' && d && k)
      process.stdout.write(`ping detail: kernel median/avg/p99 ${fmt(k.medianUs, 0)}/${fmt(k.avgUs, 0)}/${fmt(k.p99Us, 0)} µs, tapbridge ${fmt(d.medianUs, 0)}/${fmt(d.avgUs, 0)}/${fmt(d.p99Us, 0)} µs\n`);
    if (r.metric === 'udp') {
      type U = { offeredPps?: number; seconds?: number; receiverUdp?: { RcvbufErrors: number } } | undefined;
      const desc = (d: U) => {
        const full = d?.receiverUdp && d.seconds ? `, receiver socket full: ${fmt(d.receiverUdp.RcvbufErrors / d.seconds / 1000, 0)} kpps` : '';
        return `offered ${fmt((d?.offeredPps ?? NaN) / 1000, 0)} kpps${full}`;
      };
      process.stdout.write(`udp detail: kernel ${desc(r.kernel.detail as U)}; tapbridge ${desc(r.tapbridge.detail as U)}\n`);
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
