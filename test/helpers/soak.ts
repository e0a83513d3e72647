/*
 * The soak (the hardening issue, item 18, case 7), shared by test/integration/soak.test.ts
 * (about a minute in CI) and scripts/soak.js (`npm run soak`, long).
 *
 * Cycles of about 6 s, repeated for the duration, each with:
 *   traffic   red pings the wan; curl red -> wan, blue -> wan, wan -> 203.0.113.2:8000 (DNAT),
 *             blue -> 203.0.113.2:8000 (hairpin); iperf3 UDP red -> wan at 5 Mbit/s for 3 s;
 *             DNS-like UDP from blue (30 requests from new source ports, each a new flow)
 *   faults    `ctl fault set` on red or blue in turn (loss, delay with jitter, rate), the
 *             previous cycle's cleared with `ctl fault clear`
 *   captures  `ctl capture` of red, blue or bridge:br0 to a file in a temp dir, stopped with
 *             `ctl capture stop` at the end of the cycle and removed
 * while blue pings the gateway and the wan every 20 ms for the whole soak (no loss fault is
 * ever put on blue). The vitals after the warm-up cycles are the reference; at the end, once
 * the short conntrack timeouts let the flows expire: RSS within +20% of it, conntrack back
 * near the lab's baseline, the frame pool back to baseline, no crash, blue's targets met.
 */
import assert from 'node:assert/strict';
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES, NatLab, SYS_PYTHON, curl, parseIperf, type Role } from './nat-lab.js';
import { ping } from './net.js';
import { waitFor } from './sys.js';
import { tempDir } from './tapbridge.js';
import { Probe, assertAlive, describeVitals, innerPid, measured, report, stopBg, vitals, type Measured, type Vitals } from './hostile.js';

type Diag = { diagnostic(m: string): void } | null;

const WAN_ECHO = 9000;
const IPERF_PORT = 5201;
/** Short conntrack timeouts, so the flows of the soak expire within seconds of its end. */
export const SOAK_TIMEOUTS = { tcpSynSent: 5, tcpSynRecv: 5, tcpEstablished: 30, tcpFinWait: 3, tcpCloseWait: 3, tcpLastAck: 3, tcpTimeWait: 2, tcpClose: 2, udpUnreplied: 3, udpReplied: 5, icmp: 3 };
/** Most flows that may be left when "back near the baseline" (blue's probe keeps one). */
export const CONNTRACK_SLACK = 4;

export function soakLab(): NatLab {
  return new NatLab({ tag: 'soak', wanUdpEcho: WAN_ECHO, nat: { timeouts: SOAK_TIMEOUTS } });
}

/** The faults set in turn: [port, `ctl fault set` options]. Never loss on blue (its pings are measured). */
const FAULTS: [Role, string[]][] = [
  ['red', ['-d', 'both', '--loss', '5']],
  ['blue', ['-d', 'egress', '--delay', '20', '--jitter', '5']],
  ['red', ['-d', 'ingress', '--rate', '20mbit']],
  ['blue', ['-d', 'both', '--rate', '50mbit']],
  ['red', ['-d', 'egress', '--delay', '10', '--jitter', '10', '--loss', '2']],
];
const CAPTURES = ['red', 'bridge:br0', 'blue'];

export interface SoakResult {
  cycles: number;
  seconds: number;
  /** Operations by name: [succeeded, failed]. */
  ops: Record<string, [number, number]>;
  warm: Vitals;
  measured: Measured;
}

class Ops {
  readonly counts: Record<string, [number, number]> = {};
  readonly errors: string[] = [];

  /** Run one operation, counting it; a failure is noted, not thrown (faults make some slow). */
  async attempt(name: string, fn: () => Promise<unknown>): Promise<void> {
    const c = (this.counts[name] ??= [0, 0]);
    try {
      await fn();
      c[0]++;
    } catch (err) {
      c[1]++;
      if (this.errors.length < 10) this.errors.push(`${name}: ${(err instanceof Error ? err.message : String(err)).slice(0, 500)}`);
    }
  }

  failed(): number {
    return Object.values(this.counts).reduce((n, [, f]) => n + f, 0);
  }

  total(): number {
    return Object.values(this.counts).reduce((n, [s, f]) => n + s + f, 0);
  }
}

/** `tapbridge ctl ARGS` that must work (throws with its output). */
async function ctl(lab: NatLab, ...args: string[]): Promise<string> {
  const r = await lab.tapbridge.ctl(...args);
  if (r.code !== 0) throw new Error(`ctl ${args.join(' ')}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

async function cycleTraffic(lab: NatLab, ops: Ops, i: number): Promise<void> {
  const curls = async (role: Role, url: string, n: number) => {
    for (let k = 0; k < n; k++) await ops.attempt(`curl ${role} ${url}`, () => curl(lab, role, url));
  };
  await Promise.all([
    ops.attempt('ping red -> wan', async () => {
      const p = await ping(lab.ns('red'), '203.0.113.1', { count: 20, intervalS: 0.05 });
      if (p.received === 0) throw new Error('no reply');
    }),
    curls('red', 'http://203.0.113.1/', 3),
    curls('blue', 'http://203.0.113.1/', 3),
    curls('wan', 'http://203.0.113.2:8000/', 3),
    curls('blue', 'http://203.0.113.2:8000/', 1),
    ops.attempt('iperf3 UDP red -> wan', async () => {
      const r = await lab.exec('red', 'iperf3', ['-u', '-b', '5M', '-t', '3', '-c', '203.0.113.1', '-p', String(IPERF_PORT), '-J'], 10_000);
      const j = parseIperf(r, 'iperf3 UDP in the soak');
      if (r.code !== 0 || j.error !== undefined) throw new Error(j.error ?? `exit ${r.code}`);
    }),
    ops.attempt('DNS-like UDP blue -> wan', async () => {
      const first = 20000 + ((i * 30) % 20000);
      const r = await lab.exec('blue', SYS_PYTHON, [join(FIXTURES, 'nat-udp-flows.py'), '203.0.113.1', String(WAN_ECHO), String(first), '30', '0.5'], 30_000);
      const j = JSON.parse(r.stdout) as { replied: number[]; silent: number[] };
      if (j.replied.length < 27) throw new Error(`only ${j.replied.length} of 30 answered`);
    }),
  ]);
}

/** Run the soak on a started lab; `baseline` is its vitals after warmUp() (test/helpers/hostile.ts). */
export async function soak(t: Diag, lab: NatLab, o: { seconds: number; baseline: Vitals; warmupCycles?: number }): Promise<SoakResult> {
  const pid = innerPid(lab);
  const dir = tempDir();
  const ops = new Ops();
  const t0 = Date.now();
  const server = lab.bg('wan', 'iperf3', ['-s', '-p', String(IPERF_PORT)], o.seconds + 120);
  await lab.waitListening('wan', 'tcp', IPERF_PORT);
  // stopped in finally: killed with the lab instead, an orphaned iperf3 would hold this process open
  let probe: Probe;
  let warm: Vitals | null = null;
  let cycle = 0;
  try {
    probe = Probe.start(lab, o.seconds + 10);
    let faulted: Role | null = null;
    while (Date.now() - t0 < o.seconds * 1000) {
      const [port, fault] = FAULTS[cycle % FAULTS.length];
      if (faulted !== null) await ops.attempt('ctl fault clear', () => ctl(lab, 'fault', 'clear', faulted!));
      await ops.attempt('ctl fault set', () => ctl(lab, 'fault', 'set', port, ...fault, '--seed', String(cycle)));
      faulted = port;
      const file = join(dir, `cycle-${cycle}.pcapng`);
      let capId: number | null = null;
      await ops.attempt('ctl capture', async () => {
        capId = (JSON.parse(await ctl(lab, '--json', 'capture', CAPTURES[cycle % CAPTURES.length], file, '-c', '20000')) as { id: number }).id;
      });
      await cycleTraffic(lab, ops, cycle);
      if (capId !== null) {
        const id = capId;
        await ops.attempt('ctl capture stop', async () => {
          await ctl(lab, 'capture', 'stop', String(id));
          if (statSync(file).size === 0) throw new Error(`${file} is empty`);
        });
      }
      rmSync(file, { force: true });
      assertAlive(lab, pid, `soak cycle ${cycle}`);
      const v = await vitals(lab);
      report(t, 'soak', `cycle ${cycle} at ${Math.round((Date.now() - t0) / 1000)} s (fault ${port} ${fault.join(' ')}): ${describeVitals(o.baseline, v)}`);
      cycle++;
      if (cycle === (o.warmupCycles ?? 2)) warm = v;
    }
    if (faulted !== null) await ops.attempt('ctl fault clear', () => ctl(lab, 'fault', 'clear', faulted!));
  } finally {
    await stopBg(server);
  }
  const seconds = (Date.now() - t0) / 1000;
  warm ??= await vitals(lab);
  // the flows expire (short timeouts): back near the lab's baseline
  const drained = await waitFor(
    'conntrack to come back near its baseline',
    async () => {
      const v = await vitals(lab);
      return v.conntrack.flows <= o.baseline.conntrack.flows + CONNTRACK_SLACK ? v : undefined;
    },
    { timeoutMs: 45_000, intervalMs: 500 },
  ).catch(() => null);
  const opsLine = Object.entries(ops.counts)
    .map(([n, [s, f]]) => `${n} ${s}${f > 0 ? `/${s + f}` : ''}`)
    .join(', ');
  report(t, 'soak', `${cycle} cycles in ${seconds.toFixed(0)} s; operations ok: ${opsLine}${ops.errors.length > 0 ? `; first errors: ${ops.errors.join(' | ')}` : ''}`);
  const m = await measured(t, lab, 'soak', warm, probe, { baseline: { ...warm, pool: o.baseline.pool, livePool: o.baseline.livePool }, extra: `RSS reference after ${o.warmupCycles ?? 2} warm-up cycles` });
  assert.ok(drained !== null, `conntrack did not come back near its baseline (${o.baseline.conntrack.flows} + ${CONNTRACK_SLACK}): ${describeVitals(o.baseline, m.after)}`);
  assert.ok(cycle >= (o.warmupCycles ?? 2) + 1, `the soak ran past its warm-up (${cycle} cycles)`);
  assert.ok(ops.failed() <= ops.total() * 0.05, `at most 5% of the operations failed: ${ops.failed()} of ${ops.total()}: ${ops.errors.join(' | ')}`);
  return { cycles: cycle, seconds, ops: ops.counts, warm, measured: m };
}
