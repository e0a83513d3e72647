/*
 * Hostile-input and load tests (test/integration/hostile*.test.ts, fuzz.test.ts, soak.test.ts,
 * scripts/fuzz.js, scripts/soak.js): what they measure and how.
 *
 *   const before = await vitals(lab);                 // RSS of the inner tapbridge, pool, conntrack
 *   const probe = Probe.start(lab, 8);                // blue pings 10.100.0.1 and 203.0.113.1 every 20 ms
 *   await hostile(lab, 'red', ['storm', gwMac, ...]); // test/integration/fixtures/hostile.py
 *   const m = await measured(t, lab, 'storm', before, probe);  // prints the numbers, asserts the targets
 *
 * Targets (the hardening issue, item 18): blue's pings lose < 1% (or at most 1), no reply gap
 * of 1 s or more (a stall), tapbridge alive with no data-plane crash in its log, its RSS within
 * +20% of the baseline, and the frame pool back near its baseline within a few seconds.
 * The control API is called over the unix socket directly (GET /v1/stats, /v1/stats/live):
 * spawning `tapbridge ctl` costs a node start-up, too much on 2 vCPUs under a flood.
 */
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { FIXTURES, SYS_PYTHON, curl, type BgProcess, type NatLab, type PortJson, type Role } from './nat-lab.js';
import { ping } from './net.js';
import { PING, announceSkip, describeRun, integrationSkipReason, sleep } from './sys.js';
import { cleanupAll, pidAlive, statePid } from './tapbridge.js';

export const HOSTILE_PY = join(FIXTURES, 'hostile.py');
export const GATEWAY_MAC = '02:74:62:00:00:01';
/** Targets of the hardening issue. */
export const RSS_GROWTH_MAX = 0.2;
export const STALL_MS = 1000;
/** Pool slots that may still be held (a neighbour queue, a delay line) and count as "back to baseline". */
export const POOL_SLACK = 8;

/** Why these tests cannot run here, announced loudly, or null; tools: name -> path (scapy's python always). */
export function hostileSkip(what: string, tools: Record<string, string> = {}): string | null {
  const missing = Object.entries({ 'python3 with scapy': SYS_PYTHON, ...tools }).find(([, path]) => !existsSync(path));
  const why = integrationSkipReason() ?? (missing === undefined ? null : `${missing[0]} not installed (${missing[1]})`);
  if (why !== null) announceSkip(what, why);
  return why;
}

/* ---- the control API ---------------------------------------------------------------- */

/** One request on the lab's control socket; the parsed JSON answer (throws on a non-2xx). */
export function api<T>(lab: NatLab, method: string, path: string, body?: unknown): Promise<T> {
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: lab.tapbridge.socket, method, path, headers: data === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => {
        if ((res.statusCode ?? 0) >= 300) return reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`));
        try {
          resolve(JSON.parse(text) as T);
        } catch {
          reject(new Error(`${method} ${path}: not JSON: ${text.slice(0, 200)}`));
        }
      });
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${path}: no answer within 10 s`)));
    req.end(data);
  });
}

/* ---- vitals: memory, pool, tables --------------------------------------------------- */

export interface Vitals {
  rssKb: number;
  /** GET /v1/stats */
  pool: { free: number; total: number };
  /** GET /v1/stats/live (the same pool, seen by the live statistics) */
  livePool: { free: number; total: number };
  conntrack: { flows: number; max?: number };
  neighbors: number;
  ports: PortJson[];
}

/** The inner tapbridge process (the one in the lab's host namespace, from the state file). */
export function innerPid(lab: NatLab): number {
  const pid = statePid(lab.instance, 'inner') ?? lab.tapbridge.child.pid;
  if (pid === undefined) throw new Error(`${lab.instance}: no pid`);
  return pid;
}

/** VmRSS of a process in KiB (/proc/PID/status). */
export function rssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

interface LiveJson {
  pool: { free: number; total: number };
  neighbors: number | null;
  conntrack: { flows: number; max?: number } | null;
  ports: PortJson[];
}

export async function vitals(lab: NatLab): Promise<Vitals> {
  const [stats, live] = await Promise.all([api<{ pool: { free: number; total: number } }>(lab, 'GET', '/v1/stats'), api<LiveJson>(lab, 'GET', '/v1/stats/live')]);
  return { rssKb: rssKb(innerPid(lab)), pool: stats.pool, livePool: live.pool, conntrack: live.conntrack ?? { flows: 0 }, neighbors: live.neighbors ?? 0, ports: live.ports };
}

export interface VitalsExtremes {
  samples: number;
  maxConntrack: number;
  maxRssKb: number;
  minPoolFree: number;
}

/** Sample the vitals every `everyMs` in the background until stop(): the extremes seen. */
export function sampleVitals(lab: NatLab, everyMs = 200): { stop(): Promise<VitalsExtremes> } {
  const x: VitalsExtremes = { samples: 0, maxConntrack: 0, maxRssKb: 0, minPoolFree: Infinity };
  let running = true;
  const loop = (async () => {
    while (running) {
      const v = await vitals(lab).catch(() => null);
      if (v !== null) {
        x.samples++;
        x.maxConntrack = Math.max(x.maxConntrack, v.conntrack.flows);
        x.maxRssKb = Math.max(x.maxRssKb, v.rssKb);
        x.minPoolFree = Math.min(x.minPoolFree, v.pool.free);
      }
      await sleep(everyMs);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return x;
    },
  };
}

/** Poll until the pool (both views) is back to `base`'s, at most `timeoutMs`; the last vitals either way. */
export async function settle(lab: NatLab, base: Vitals, timeoutMs = 5000): Promise<Vitals> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await vitals(lab);
    if ((v.pool.free >= base.pool.free && v.livePool.free >= base.pool.free) || Date.now() >= deadline) return v;
    await sleep(200);
  }
}

/**
 * Warm-up before a baseline: every tenant pings the gateway and the wan, blue and the host
 * ping each other, blue fetches from the wan and the wan from the published port. Returns the
 * vitals after it (the baseline of RSS and pool), and prints them.
 */
export async function warmUp(lab: NatLab, label: string): Promise<Vitals> {
  const plan: [Role, string[]][] = [
    ['blue', ['10.100.0.1', '203.0.113.1', '10.100.0.254']],
    ['host', ['10.100.0.1', '10.100.0.3']],
    ['red', ['10.100.0.1', '203.0.113.1']],
  ];
  for (const [role, dsts] of plan)
    for (const dst of dsts) {
      const p = await ping(lab.ns(role), dst, { count: 5, intervalS: 0.05 });
      assert.ok(p.received > 0, `warm-up ping ${role} -> ${dst}\n${describeRun(p)}`);
    }
  await curl(lab, 'blue', 'http://203.0.113.1/');
  await curl(lab, 'wan', 'http://203.0.113.2:8000/');
  const v = await vitals(lab);
  report(null, label, `baseline after warm-up: RSS ${mib(v.rssKb)} MiB, pool ${v.pool.free}/${v.pool.total} free, conntrack ${v.conntrack.flows}`);
  return v;
}

/**
 * The hooks of a suite on one lab: before() starts it and warms it up, after() stops it and
 * removes whatever is left (also when a test failed). Returns the baseline once before() ran.
 */
export function useLab(lab: NatLab, label: string): () => Vitals {
  let baseline: Vitals | undefined;
  before(async () => {
    await lab.start();
    baseline = await warmUp(lab, label);
  });
  after(async () => {
    try {
      await lab.stop();
    } finally {
      await cleanupAll();
    }
  });
  return () => {
    if (baseline === undefined) throw new Error(`${label}: the lab did not start`);
    return baseline;
  };
}

/* ---- the probe: blue's pings -------------------------------------------------------- */

export interface ProbeResult {
  from: Role;
  target: string;
  sent: number;
  received: number;
  lossPct: number;
  /** Longest time between two consecutive replies (a stall shows here). */
  worstGapMs: number;
  maxRttMs: number;
}

/** Background pings every `intervalMs` from one namespace to each target, for `seconds`. */
export class Probe {
  private constructor(
    private readonly runs: { target: string; bg: BgProcess }[],
    readonly from: Role,
    readonly endsAt: number,
  ) {}

  static start(lab: NatLab, seconds: number, opts: { from?: Role; targets?: string[]; intervalMs?: number } = {}): Probe {
    const from = opts.from ?? 'blue';
    const interval = opts.intervalMs ?? 20;
    const count = Math.ceil((seconds * 1000) / interval);
    const runs = (opts.targets ?? ['10.100.0.1', '203.0.113.1']).map((target) => ({
      target,
      bg: lab.bg(from, PING, ['-n', '-D', '-c', String(count), '-i', String(interval / 1000), '-W', '1', '-w', String(Math.ceil(seconds) + 3), target], seconds + 8),
    }));
    return new Probe(runs, from, Date.now() + seconds * 1000);
  }

  /** Wait for the pings to end; one result per target. */
  async result(): Promise<ProbeResult[]> {
    return Promise.all(
      this.runs.map(async ({ target, bg }) => {
        const r = await bg.done;
        const sum = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
        if (sum === null) throw new Error(`ping ${target} from ${this.from} printed no summary\n${r.stdout.slice(-2000)}\n${r.stderr}`);
        const times: number[] = [];
        let maxRtt = 0;
        for (const m of r.stdout.matchAll(/^\[(\d+\.\d+)\] .* time=([\d.]+) ms/gm)) {
          times.push(Number(m[1]) * 1000);
          maxRtt = Math.max(maxRtt, Number(m[2]));
        }
        let gap = 0;
        for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i] - times[i - 1]);
        const sent = Number(sum[1]);
        const received = Number(sum[2]);
        return { from: this.from, target, sent, received, lossPct: sent === 0 ? 100 : (100 * (sent - received)) / sent, worstGapMs: Math.round(gap), maxRttMs: maxRtt };
      }),
    );
  }
}

/** Lost < 1% of what was sent, or at most one. */
export function lossOk(p: ProbeResult): boolean {
  const lost = p.sent - p.received;
  return p.sent > 0 && (lost * 100 < p.sent || lost <= 1);
}

/* ---- crash check -------------------------------------------------------------------- */

/** What tapbridge logs when its data plane dies (src/control/dataplane-client.ts), pino's fatal level, or the runtime's last words. */
const CRASH_RE = /data-plane crash|data-plane worker (failed|exited)|"level":60|[Uu]ncaught (exception|Error)|Segmentation fault|Aborted \(core/;

/** Why tapbridge is not healthy (exited, inner process gone, a crash in its log), or null. */
export function crashReason(lab: NatLab, pid: number): string | null {
  if (!lab.alive()) return `tapbridge exited: ${JSON.stringify(lab.tapbridge.exitInfo)}`;
  if (!pidAlive(pid)) return `the inner tapbridge process ${pid} is gone`;
  const line = lab.log().split('\n').find((l) => CRASH_RE.test(l));
  return line === undefined ? null : `tapbridge logged: ${line.slice(0, 2000)}`;
}

export function assertAlive(lab: NatLab, pid: number, what: string): void {
  const why = crashReason(lab, pid);
  assert.equal(why, null, `${what}: ${why}\n--- tapbridge output (tail) ---\n${lab.log().slice(-4000)}`);
}

/* ---- hostile.py ----------------------------------------------------------------------- */

export interface HostileResult {
  mode: string;
  sent: number;
  refused: number;
  seconds: number;
  [k: string]: unknown;
}

/** JSON lines printed by hostile.py (progress lines and the final result). */
export function jsonLines(out: string): Record<string, unknown>[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Run hostile.py in a namespace (bounded); its final JSON line, or throws with the run. */
export async function hostile(lab: NatLab, role: Role, args: (string | number)[], opts: { timeoutS?: number; iface?: string } = {}): Promise<HostileResult> {
  const r = await lab.exec(role, 'env', [`HOSTILE_IFACE=${opts.iface ?? 'eth0'}`, SYS_PYTHON, HOSTILE_PY, ...args.map(String)], (opts.timeoutS ?? 60) * 1000);
  const last = r.code === 0 ? jsonLines(r.stdout).pop() : undefined;
  if (last === undefined || typeof last.sent !== 'number') throw new Error(`hostile.py ${args[0]} failed:\n${describeRun(r)}`);
  return last as HostileResult;
}

/** hostile.py in the background (fuzz, replay): read its progress with jsonLines(bg.output()). */
export function hostileBg(lab: NatLab, role: Role, args: (string | number)[], seconds: number): BgProcess {
  return lab.bg(role, SYS_PYTHON, [HOSTILE_PY, ...args.map(String)], seconds);
}

/** A process and all its descendants (from the children files under /proc/PID/task), deepest last. */
function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      for (const task of readdirSync(`/proc/${out[i]}/task`))
        for (const c of readFileSync(`/proc/${out[i]}/task/${task}/children`, 'utf8').split(' ')) if (c.trim() !== '') out.push(Number(c));
    } catch {
      /* gone */
    }
  }
  return out;
}

/**
 * Stop a background command: SIGTERM to its `timeout` wrapper, which passes it on; after
 * `graceMs` SIGKILL to the wrapper and everything below it. (Killing only the wrapper would
 * orphan the command, and its open stdout would keep this process alive.)
 */
export async function stopBg(bg: BgProcess, graceMs = 3000): Promise<{ stdout: string; stderr: string }> {
  const tree = bg.child.pid === undefined ? [] : processTree(bg.child.pid);
  bg.child.kill('SIGTERM');
  const t = setTimeout(() => {
    for (const pid of tree) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }, graceMs);
  const r = await bg.done;
  clearTimeout(t);
  return r;
}

/* ---- counters --------------------------------------------------------------------------- */

/** Drops by "port:reason". */
export function dropCounts(ports: PortJson[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of ports) for (const [reason, n] of Object.entries(p.counters.drops)) out.set(`${p.name}:${reason}`, n);
  return out;
}

/** Drops that grew between two port listings, by "port:reason" (sorted by name). */
export function dropDelta(before: PortJson[], after: PortJson[]): Record<string, number> {
  const b = dropCounts(before);
  const out: Record<string, number> = {};
  for (const [k, n] of [...dropCounts(after)].sort(([x], [y]) => x.localeCompare(y))) if (n > (b.get(k) ?? 0)) out[k] = n - (b.get(k) ?? 0);
  return out;
}

/** The reasons of a delta (without the port). */
export const reasonsOf = (delta: Record<string, number>): Set<string> => new Set(Object.keys(delta).map((k) => k.slice(k.indexOf(':') + 1)));

/* ---- reporting and the common assertions ------------------------------------------------ */

const mib = (kb: number) => (kb / 1024).toFixed(1);

export function describeProbe(p: ProbeResult): string {
  return `${p.from}->${p.target} loss ${p.lossPct.toFixed(2)}% (${p.sent - p.received}/${p.sent}) worst gap ${p.worstGapMs} ms max rtt ${p.maxRttMs.toFixed(1)} ms`;
}

export function describeVitals(before: Vitals, after: Vitals): string {
  const growth = ((after.rssKb / before.rssKb - 1) * 100).toFixed(1);
  return (
    `RSS ${mib(before.rssKb)} -> ${mib(after.rssKb)} MiB (${growth}%); pool ${before.pool.free}/${before.pool.total} -> ${after.pool.free}/${after.pool.total} free ` +
    `(live ${after.livePool.free}/${after.livePool.total}); conntrack ${before.conntrack.flows} -> ${after.conntrack.flows}; neighbours ${before.neighbors} -> ${after.neighbors}`
  );
}

/** Print a line of measured numbers so CI logs show them (a test's diagnostic, else stdout). */
export function report(t: { diagnostic(m: string): void } | null, label: string, line: string): void {
  const text = `[hostile] ${label}: ${line}`;
  if (t !== null) t.diagnostic(text);
  else console.log(text);
}

/** RSS within +20% of the baseline's, the pool (both views) within POOL_SLACK of its free slots. */
export function assertBounded(label: string, base: Vitals, after: Vitals): void {
  assert.ok(after.rssKb <= base.rssKb * (1 + RSS_GROWTH_MAX), `${label}: RSS ${mib(after.rssKb)} MiB is more than ${RSS_GROWTH_MAX * 100}% above the baseline ${mib(base.rssKb)} MiB: ${describeVitals(base, after)}`);
  for (const [name, pool] of [['GET /v1/stats', after.pool], ['GET /v1/stats/live', after.livePool]] as const)
    assert.ok(pool.free >= base.pool.free - POOL_SLACK, `${label}: the frame pool (${name}) did not come back: ${describeVitals(base, after)}`);
}

export interface Measured {
  probe: ProbeResult[];
  before: Vitals;
  after: Vitals;
}

/**
 * After an attack: wait for the probe, check tapbridge is alive, let the pool settle, print
 * loss / worst gap / RSS / pool, then assert the targets (loss, stall, RSS, pool).
 */
export async function measured(
  t: { diagnostic(m: string): void } | null,
  lab: NatLab,
  label: string,
  before: Vitals,
  probe: Probe,
  /** baseline: RSS and pool to come back to (default: `before`), e.g. the vitals after warmUp(). */
  opts: { settleMs?: number; extra?: string; baseline?: Vitals } = {},
): Promise<Measured> {
  const pid = innerPid(lab);
  const results = await probe.result();
  assertAlive(lab, pid, label);
  const base = opts.baseline ?? before;
  const after = await settle(lab, base, opts.settleMs ?? 5000);
  for (const p of results) report(t, label, describeProbe(p));
  const baseNote = opts.baseline === undefined ? '' : ` (baseline RSS ${mib(base.rssKb)} MiB, pool ${base.pool.free})`;
  report(t, label, describeVitals(before, after) + baseNote + (opts.extra !== undefined ? `; ${opts.extra}` : ''));
  for (const p of results) {
    assert.ok(lossOk(p), `${label}: ${describeProbe(p)} — more than 1% lost`);
    assert.ok(p.worstGapMs < STALL_MS, `${label}: ${describeProbe(p)} — tapbridge stalled (a gap of ${STALL_MS} ms or more)`);
  }
  assertBounded(label, base, after);
  assertAlive(lab, pid, label);
  return { probe: results, before, after };
}
