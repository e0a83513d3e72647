/*
 * The rootless comparison (`--compare rootless`): how a namespace reaches "the host" through
 * slirp4netns, pasta and tapbridge's socket uplink (`uplink: { type: socket }`), measured on
 * the same rows in one run, with the ratios against slirp4netns.
 *
 *   ${prefix}-rh   "the host": eth0 (one end of a veth pair whose other end stays here too)
 *                  198.51.100.1/24 (servers) and 198.51.100.2 (clients of the published ports),
 *                  a default route on eth0 (pasta copies the host's routing); the iperf3, RR
 *                  and HTTP servers run here. Each system runs here too.
 *   ${prefix}-rs   behind slirp4netns (tap0 10.0.2.100, its defaults), ports by add_hostfwd
 *   ${prefix}-rp   behind pasta (10.0.2.100/24 via 10.0.2.2), ports by -t
 *   ${prefix}-rt   behind tapbridge (port g 10.0.2.100/24 via 10.0.2.1), ports by nat.publish
 *
 * Rows: TCP out (ns -> host iperf3), TCP in (host -> the ns's iperf3 through a published port),
 * whether the ns-side server sees the client's own address (198.51.100.2), TCP_RR-like
 * latency ns -> host (tcp-rr.ts, median and p99), new connections/s ns -> host
 * (connect-storm.ts). MTU 1500 everywhere. All three run as root in namespaces made with
 * `ip netns add` (the same for each, so the comparison is fair; none of them needs more
 * than a user namespace would give it; pasta with --runas 0). A system that does not start
 * stays in the table as "not available: <reason>".
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onCleanup } from './cleanup.js';
import { connRate } from './conn-rate.js';
import { iperfTcp, type Endpoints } from './iperf.js';
import { createNetns, deleteNetns, ipCmd } from './netns.js';
import { IP, runIn, sleep, startBackground, type Background } from './proc.js';
import { evaluateTarget } from './scenario.js';
import { slirpApi } from './slirp.js';
import { fileStamp, fmt, median, table } from './stats.js';
import { REPO_ROOT, startTapbridge } from './tapbridge.js';
import type { ScenarioContext } from './scenario.js';

const TCP_RR_JS = fileURLToPath(new URL('./tcp-rr.js', import.meta.url));
const SLIRP = ['/usr/bin/slirp4netns', '/usr/local/bin/slirp4netns'].find((p) => existsSync(p)) ?? null;
const PASTA = ['/usr/bin/pasta', '/usr/local/bin/pasta'].find((p) => existsSync(p)) ?? null;

const HOST = '198.51.100.1';
const HOST_CLIENT = '198.51.100.2';
const GUEST = '10.0.2.100';
const MTU = 1500;
const IPERF_PORT = 5201;
/** tcp-rr.ts server: echo on RR_PORT, "who am I" on RR_PORT + 1 (in the host and in each ns). */
const RR_PORT = 7000;
const HTTP_PORT = 8080;
const RR_COUNT = 2000;

type SystemId = 'slirp4netns' | 'pasta' | 'tapbridge';

/** One system standing: its namespace and the host ports that reach the ns's servers. */
interface Guest {
  ns: string;
  /** Host port -> the ns's iperf3 (5201), and -> its "who am I" server (7001). */
  iperfPort: number;
  whoamiPort: number;
  cpuPid?: number;
  info: Record<string, unknown>;
  teardown(): Promise<void>;
}

interface System {
  id: SystemId;
  column: string;
  setup(ctx: ScenarioContext, host: string, ports: { iperf: number; whoami: number }): Promise<Guest>;
}

async function waitUntil(what: string, timeoutMs: number, fn: () => Promise<boolean>, why: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`${what} in ${timeoutMs / 1000} s: ${why()}`);
    await sleep(100);
  }
}

const hasAddress = (ns: string, addr: string) => async () => {
  const a = await ipCmd(['-4', '-o', 'addr', 'show'], ns).catch(() => null);
  return a !== null && a.stdout.includes(` ${addr}/`);
};

/** A background process stopped with SIGTERM at teardown (and by the cleanup registry). */
function daemon(name: string, args: string[]): { proc: Background; stop: () => Promise<void> } {
  const proc = startBackground(name, IP, args, 30 * 60_000);
  const stop = () => proc.stop('SIGTERM', 3000);
  onCleanup(`stop ${name}`, stop);
  return { proc, stop };
}

async function setupSlirp(ctx: ScenarioContext, host: string, ports: { iperf: number; whoami: number }): Promise<Guest> {
  if (SLIRP === null) throw new Error('slirp4netns not found (apt-get install slirp4netns)');
  const ns = await createNetns(`${ctx.prefix}-rs`);
  const api = `/tmp/${ctx.prefix}-rootless-slirp.sock`;
  const d = daemon(`slirp4netns for ${ns}`, ['netns', 'exec', host, SLIRP, '--configure', `--mtu=${MTU}`, '--disable-host-loopback', `--api-socket=${api}`, '--netns-type=path', `/run/netns/${ns}`, 'tap0']);
  const teardown = async () => {
    await d.stop();
    await deleteNetns(ns);
    rmSync(api, { force: true });
  };
  try {
    await waitUntil('slirp4netns did not configure tap0', 10_000, async () => (await hasAddress(ns, GUEST)()) && existsSync(api), () => d.proc.stderr.trim().slice(-300));
    for (const [hostPort, guestPort] of [[ports.iperf, IPERF_PORT], [ports.whoami, RR_PORT + 1]])
      await slirpApi(api, { execute: 'add_hostfwd', arguments: { proto: 'tcp', host_addr: HOST, host_port: hostPort, guest_port: guestPort } });
  } catch (err) {
    await teardown();
    throw err;
  }
  return { ns, iperfPort: ports.iperf, whoamiPort: ports.whoami, cpuPid: d.proc.child.pid, info: { slirp4netns: SLIRP, api }, teardown };
}

async function setupPasta(ctx: ScenarioContext, host: string, ports: { iperf: number; whoami: number }): Promise<Guest> {
  if (PASTA === null) throw new Error('pasta not found (apt-get install passt)');
  const ns = await createNetns(`${ctx.prefix}-rp`);
  // -f: foreground (stopped by SIGTERM); --runas 0: as root pasta would switch to nobody, which
  // cannot enter a namespace made by ip netns add; -T/-U none: no automatic loopback forwards.
  const args = ['netns', 'exec', host, PASTA, '-f', '-q', '--runas', '0', '--config-net', '--mtu', String(MTU), '-a', GUEST, '-n', '24', '-g', '10.0.2.2', '-I', 'eth0',
    '-t', `${HOST}/${ports.iperf}:${IPERF_PORT}`, '-t', `${HOST}/${ports.whoami}:${RR_PORT + 1}`, '-u', 'none', '-T', 'none', '-U', 'none', '--netns', `/run/netns/${ns}`];
  const d = daemon(`pasta for ${ns}`, args);
  const teardown = async () => {
    await d.stop();
    await deleteNetns(ns);
  };
  try {
    await waitUntil('pasta did not configure eth0', 10_000, hasAddress(ns, GUEST), () => `${d.proc.running ? '' : 'exited; '}${(d.proc.stderr + d.proc.stdout).trim().slice(-300)}`);
  } catch (err) {
    await teardown();
    throw err;
  }
  return { ns, iperfPort: ports.iperf, whoamiPort: ports.whoami, cpuPid: d.proc.child.pid, info: { pasta: PASTA, args: args.slice(3) }, teardown };
}

async function setupTapbridge(ctx: ScenarioContext, host: string, ports: { iperf: number; whoami: number }): Promise<Guest> {
  const ns = `${ctx.prefix}-rt`;
  const publish = (port: number, toPort: number) => ({ proto: 'tcp', port, to: GUEST, toPort, hostAddress: HOST });
  const config = {
    instance: `${ctx.prefix}-rootless`,
    namespace: { name: host, create: false },
    bridges: [
      {
        name: 'br0',
        gateway: { address: '10.0.2.1/24' },
        ports: [{ type: 'namespace', name: 'g', namespace: ns, addresses: [`${GUEST}/24`], defaultRoute: '10.0.2.1', mtu: MTU, offload: true }],
      },
    ],
    uplink: { type: 'socket' },
    nat: { publish: [publish(ports.iperf, IPERF_PORT), publish(ports.whoami, RR_PORT + 1)] },
  };
  const tb = await startTapbridge({ config, namespaces: [ns], onLog: ctx.verbose ? (l) => ctx.log(`  tapbridge: ${l}`) : undefined });
  return {
    ns,
    iperfPort: ports.iperf,
    whoamiPort: ports.whoami,
    cpuPid: tb.proc.child.pid,
    info: { config },
    teardown: async () => {
      await tb.stop();
    },
  };
}

const SYSTEMS: System[] = [
  { id: 'slirp4netns', column: 'slirp4netns', setup: setupSlirp },
  { id: 'pasta', column: 'pasta', setup: setupPasta },
  { id: 'tapbridge', column: 'tapbridge (socket uplink)', setup: setupTapbridge },
];

/** "The host": dummy0 with the server and client addresses, a default route on it, servers. */
async function setupHost(ctx: ScenarioContext): Promise<string> {
  const host = await createNetns(`${ctx.prefix}-rh`);
  // A veth pair with both ends here stands in for the host's NIC (no dummy module on every kernel).
  await ipCmd(['link', 'add', 'eth0', 'mtu', String(MTU), 'type', 'veth', 'peer', 'name', 'eth0p', 'mtu', String(MTU)], host);
  for (const a of [HOST, HOST_CLIENT]) await ipCmd(['addr', 'add', `${a}/24`, 'dev', 'eth0'], host);
  for (const dev of ['eth0', 'eth0p']) await ipCmd(['link', 'set', dev, 'up'], host);
  await ipCmd(['route', 'add', 'default', 'dev', 'eth0'], host);
  return host;
}

async function startRrServer(ns: string): Promise<Background> {
  const srv = startBackground(`tcp-rr server in ${ns}`, IP, ['netns', 'exec', ns, process.execPath, TCP_RR_JS, 'server', '--port', String(RR_PORT)], 30 * 60_000);
  onCleanup(`stop tcp-rr server in ${ns}`, () => srv.stop('SIGTERM', 1000));
  await srv.waitForLine(/^listening/, 10_000);
  return srv;
}

async function tcpRrClient(ns: string, mode: 'rr' | 'whoami', args: string[]): Promise<Record<string, unknown>> {
  const r = await runIn(ns, process.execPath, [TCP_RR_JS, mode, ...args], { timeoutMs: 30_000, check: false });
  if (r.code !== 0) throw new Error(`tcp-rr ${mode}: exit ${r.code}: ${r.stderr.trim().slice(-300)}`);
  return JSON.parse(r.stdout.trim()) as Record<string, unknown>;
}

/** One row of the comparison: how to measure it on a standing system. */
interface RowSpec {
  id: string;
  label: string;
  unit: string;
  decimals: number;
  /** The issue's target for tapbridge, and its description. */
  target?: { judge(tb: number, slirp: number | null, pasta: number | null): 'pass' | 'FAIL' | '?'; text: string };
  measure(host: string, g: Guest, durationS: number): Promise<{ value: number; detail: Record<string, unknown> }>;
  /** Rows computed from another row's measurement (RR p99 from the RR run). */
  from?: string;
  pick?(detail: Record<string, unknown>): number;
}

const atLeast = (k: number) => (tb: number, slirp: number | null) => evaluateTarget({ kind: 'ratio', min: k }, { kernel: slirp, tapbridge: tb }) === 'FAIL' ? 'FAIL' : slirp === null ? '?' : 'pass';

async function gbps(ep: Endpoints, durationS: number): Promise<{ value: number; detail: Record<string, unknown> }> {
  const r = await iperfTcp(ep, durationS);
  return { value: r.gbps, detail: { ...r } };
}

const ROWS: RowSpec[] = [
  {
    id: 'tcp_out',
    label: 'TCP out, ns -> host (iperf3, 1 stream)',
    unit: 'Gbit/s',
    decimals: 2,
    target: {
      text: '>= 5x slirp4netns, > pasta',
      judge: (tb, slirp, pasta) => {
        const r = atLeast(5)(tb, slirp);
        if (r !== 'pass') return r;
        return pasta === null ? '?' : tb > pasta ? 'pass' : 'FAIL';
      },
    },
    measure: (host, g, d) => gbps({ clientNs: g.ns, serverNs: host, serverAddr: HOST, serverPort: IPERF_PORT }, d),
  },
  {
    id: 'tcp_in',
    label: 'TCP in, host -> ns (published port)',
    unit: 'Gbit/s',
    decimals: 2,
    target: { text: '>= 5x slirp4netns', judge: atLeast(5) },
    measure: (host, g, d) => gbps({ clientNs: host, serverNs: g.ns, serverAddr: HOST, serverPort: IPERF_PORT, connectPort: g.iperfPort }, d),
  },
  {
    id: 'client_addr',
    label: 'published port keeps the client address',
    unit: 'yes/no',
    decimals: 0,
    async measure(host, g) {
      const srv = await startRrServer(g.ns);
      try {
        const j = await tcpRrClient(host, 'whoami', ['--host', HOST, '--port', String(g.whoamiPort), '--bind', HOST_CLIENT]);
        const peer = String(j.peer);
        return { value: peer.startsWith(`${HOST_CLIENT}:`) ? 1 : 0, detail: { clientAddress: HOST_CLIENT, serverSaw: peer } };
      } finally {
        await srv.stop('SIGTERM', 1000);
      }
    },
  },
  {
    id: 'rr',
    label: `TCP RR ns -> host median (${RR_COUNT} x 1 B)`,
    unit: 'µs',
    decimals: 1,
    target: { text: '< 100 µs', judge: (tb) => (tb < 100 ? 'pass' : 'FAIL') },
    async measure(_host, g) {
      const j = await tcpRrClient(g.ns, 'rr', ['--host', HOST, '--port', String(RR_PORT), '--count', String(RR_COUNT)]);
      return { value: Number(j.medianUs), detail: j };
    },
  },
  { id: 'rr_p99', label: 'TCP RR ns -> host p99', unit: 'µs', decimals: 1, from: 'rr', pick: (d) => Number(d.p99Us), measure: () => Promise.reject(new Error('derived row')) },
  {
    id: 'conn',
    label: 'new connections/s ns -> host (HTTP, close)',
    unit: 'conn/s',
    decimals: 0,
    target: { text: '>= slirp4netns', judge: atLeast(1) },
    async measure(host, g, d) {
      const r = await connRate(g.ns, host, HOST, HTTP_PORT, { durationS: d });
      return { value: r.ratePerS, detail: { ...r } };
    },
  },
];

type Side = { status: 'ok'; value: number; detail: Record<string, unknown> } | { status: 'failed' | 'not available'; error: string };

/** Run the comparison; prints the table and writes bench/results/rootless-<stamp>.json. Returns the problems. */
export async function runRootless(ctx: ScenarioContext, o: { durationS: number; repeat: number }): Promise<string[]> {
  const errors: string[] = [];
  const started = new Date();
  const results: Record<string, Partial<Record<SystemId, Side>>> = Object.fromEntries(ROWS.map((r) => [r.id, {}]));
  const guests: Partial<Record<SystemId, Guest>> = {};
  const setupError: Partial<Record<SystemId, string>> = {};
  const host = await setupHost(ctx);
  let rrServer: Background | null = null;
  try {
    rrServer = await startRrServer(host);
    for (const [i, s] of SYSTEMS.entries()) {
      ctx.log(`rootless: ${s.column} setup ...`);
      try {
        guests[s.id] = await s.setup(ctx, host, { iperf: 10_001 + 10 * i, whoami: 10_002 + 10 * i });
      } catch (err) {
        setupError[s.id] = (err as Error).message;
        ctx.log(`      ${s.column}: not available: ${setupError[s.id]}`);
      }
    }
    // Row by row, the systems take turns, so a burst of noise hits them alike.
    for (const row of ROWS) {
      if (row.from !== undefined) continue;
      for (const s of SYSTEMS) {
        const g = guests[s.id];
        if (g === undefined) continue;
        const runs: { value: number; detail: Record<string, unknown> }[] = [];
        try {
          for (let k = 0; k < (row.id === 'client_addr' ? 1 : o.repeat); k++) {
            ctx.log(`rootless: ${s.column} ${row.id}${o.repeat > 1 ? ` (run ${k + 1})` : ''} ...`);
            runs.push(await row.measure(host, g, o.durationS));
            await sleep(300);
          }
          const med = median(runs.map((r) => r.value));
          const near = runs.reduce((a, b) => (Math.abs(b.value - med) < Math.abs(a.value - med) ? b : a));
          results[row.id][s.id] = { status: 'ok', value: med, detail: { ...near.detail, values: runs.map((r) => r.value) } };
          ctx.log(`      ${s.column} ${row.id}: ${fmt(med, row.decimals)} ${row.unit}`);
        } catch (err) {
          results[row.id][s.id] = { status: 'failed', error: (err as Error).message };
          errors.push(`rootless ${s.id} ${row.id}: ${(err as Error).message}`);
          ctx.log(`      ${s.column} ${row.id} FAILED: ${(err as Error).message}`);
        }
      }
    }
    for (const row of ROWS) {
      if (row.from === undefined || row.pick === undefined) continue;
      for (const s of SYSTEMS) {
        const src = results[row.from][s.id];
        if (src?.status === 'ok') results[row.id][s.id] = { status: 'ok', value: row.pick(src.detail), detail: {} };
        else if (src !== undefined) results[row.id][s.id] = src;
      }
    }
  } finally {
    for (const s of [...SYSTEMS].reverse()) await guests[s.id]?.teardown().catch((e: Error) => errors.push(`rootless ${s.id} teardown: ${e.message}`));
    await rrServer?.stop('SIGTERM', 1000);
    await deleteNetns(host);
  }
  for (const s of SYSTEMS)
    if (setupError[s.id] !== undefined) for (const row of ROWS) results[row.id][s.id] = { status: 'not available', error: setupError[s.id]! };

  // ---- report ----
  const value = (row: string, id: SystemId) => {
    const x = results[row][id];
    return x?.status === 'ok' ? x.value : null;
  };
  const ratio = (a: number | null, b: number | null) => (a === null || b === null || b === 0 ? '-' : `${(a / b).toFixed(2)}x`);
  const cell = (x: Side | undefined, r: RowSpec) => {
    if (x === undefined) return '-';
    if (x.status !== 'ok') return `${x.status}: ${x.error.split('\n')[0].slice(0, 60)}`;
    return r.unit === 'yes/no' ? (x.value === 1 ? 'yes' : 'no') : fmt(x.value, r.decimals);
  };
  const body = ROWS.map((r) => {
    const tb = value(r.id, 'tapbridge');
    const verdict = r.target === undefined ? '' : tb === null ? '?' : r.target.judge(tb, value(r.id, 'slirp4netns'), value(r.id, 'pasta'));
    const ratios = r.unit === 'yes/no' ? ['', ''] : [ratio(tb, value(r.id, 'slirp4netns')), ratio(value(r.id, 'pasta'), value(r.id, 'slirp4netns'))];
    return [r.label, r.unit, ...SYSTEMS.map((s) => cell(results[r.id][s.id], r)), ...ratios, r.target?.text ?? '', verdict];
  });
  process.stdout.write('\n' + table([['rootless: metric', 'unit', ...SYSTEMS.map((s) => s.column), 'tapbridge / slirp', 'pasta / slirp', 'target (tapbridge)', 'result'], ...body]) + '\n');
  const seen = SYSTEMS.map((s) => {
    const x = results.client_addr[s.id];
    return `${s.column} ${x?.status === 'ok' ? String(x.detail.serverSaw) : '-'}`;
  });
  process.stdout.write(`client address ${HOST_CLIENT}, as the ns-side server saw it: ${seen.join('; ')}\n`);
  process.stdout.write(`all three run as root in namespaces made by ip netns add (not a user namespace; pasta --runas 0); MTU ${MTU}; ${o.durationS} s per iperf3/conn run\n`);

  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `rootless-${fileStamp(started)}.json`);
  writeFileSync(file, JSON.stringify({ kind: 'tapbridge-rootless', startedAt: started.toISOString(), finishedAt: new Date().toISOString(), runId: ctx.prefix, options: o, rows: ROWS.map((r) => ({ id: r.id, label: r.label, unit: r.unit, target: r.target?.text ?? null, results: results[r.id] })), guests: Object.fromEntries(Object.entries(guests).map(([k, g]) => [k, g.info])), errors }, null, 2) + '\n');
  ctx.log(`\nresults written to ${file}`);
  return errors;
}
