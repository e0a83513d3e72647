/*
 * Scenario "nat": a namespace behind a gateway with masquerade and published ports, and a
 * `wan` namespace outside; the same addresses for both topologies.
 *
 *   kernel:    ${prefix}-kr eth0 10.100.0.2 <veth> vr [br0 10.100.0.1 in ${prefix}-kh] eth0 203.0.113.2
 *                <veth> eth0 203.0.113.1 ${prefix}-kw
 *              kh: ip_forward=1; iptables (inside kh only) MASQUERADE 10.100.0.0/24 out of eth0,
 *              DNAT 203.0.113.2 tcp+udp 8000 -> 10.100.0.2:8000 and tcp+udp 5201 -> 10.100.0.2:5201
 *   tapbridge: ${prefix}-tr eth0 10.100.0.2 (TAP, offload) <- tapbridge in ${prefix}-host: br0 with
 *              gateway 10.100.0.1, uplink eth0 (tapbridge owns 203.0.113.2; the host kernel has
 *              .3), NAT publishing tcp+udp 5201 -> 10.100.0.2, maxFlows 262144
 *                -> veth -> eth0 203.0.113.1 ${prefix}-tw (created by tapbridge's lab section)
 *
 * Rows (kernel vs tapbridge, same run):
 *   tcp     TCP ns -> wan (iperf3 server in wan, client in the inside namespace to 203.0.113.1)
 *   tcp_in  TCP wan -> published port (server in the inside namespace on 5201, client in wan
 *           to 203.0.113.2:5201)
 *   udp     UDP 64-byte datagrams ns -> wan, delivered pps
 *   conn    new connections per second: connect-storm.js's client (32 parallel loops of
 *           connect / GET / close) in the inside namespace against its HTTP server in wan :80.
 *           After each storm the conntrack size and the refusals during it are logged and
 *           kept in the JSON detail (tapbridge: `ctl conntrack` size and counters refusedFull,
 *           earlyDropped, noPort, clash, invalid; kernel: kh's nf_conntrack_count and
 *           /proc/net/stat/nf_conntrack drop, early_drop, insert_failed, invalid). TIME_WAIT
 *           flows (120 s) accumulate, and the client's ports come round again within a run
 *           (tapbridge counts those as `reopened`), hence maxFlows 262144.
 *
 * `tcp_in` and `conn` are metrics of their own; they are added to the shared METRICS table
 * when this module is loaded (scenario.ts's MetricId does not list them yet, hence the casts).
 * They need the NatEndpoints below; on another scenario's endpoints they fail with a message.
 */
import { existsSync } from 'node:fs';
import { connRate, type ConnRateResult } from './conn-rate.js';
import { iperfTcp, type Endpoints } from './iperf.js';
import { bridgePort, createKernelBridge, createNetns, createVeth, deleteNetns, sysctl } from './netns.js';
import { runIn } from './proc.js';
import { METRICS, type Measurement, type MeasureOptions, type Metric, type MetricId, type Scenario, type ScenarioContext, type Topology } from './scenario.js';
import { startTapbridge, type TapbridgeInstance } from './tapbridge.js';

export const INSIDE_ADDR = '10.100.0.2';
export const GATEWAY_ADDR = '10.100.0.1';
export const WAN_ADDR = '203.0.113.1';
export const EXTERNAL_ADDR = '203.0.113.2';
export const HOST_KERNEL_ADDR = '203.0.113.3';
export const PUBLISHED_PORT = 5201;
export const HTTP_PORT = 80;
export const MTU = 1500;
export const MAX_FLOWS = 262144;
export const STORM_CONCURRENCY = 32;

const IPTABLES = ['/usr/sbin/iptables', '/sbin/iptables', '/usr/bin/iptables', '/bin/iptables'].find((p) => existsSync(p)) ?? null;

/** Endpoints of a NAT topology: the default direction (ns -> wan) plus what the NAT metrics need. */
export interface NatEndpoints extends Endpoints {
  /** wan -> published port on the external address, DNATed to the inside namespace. */
  inbound: Endpoints;
  /** HTTP server namespace/address for the connection-rate storm (client: clientNs). */
  http: { serverNs: string; addr: string; port: number };
  /** Conntrack size after a storm: the tapbridge instance, or the kernel namespace doing NAT. */
  conntrack: { tapbridge: TapbridgeInstance } | { kernelNs: string };
  log(msg: string): void;
}

function natEndpoints(ep: Endpoints, metric: string): NatEndpoints {
  const n = ep as Partial<NatEndpoints>;
  if (n.inbound === undefined || n.http === undefined || n.conntrack === undefined) throw new Error(`metric ${metric} needs a NAT topology (scenario nat)`);
  return n as NatEndpoints;
}

interface ConntrackReply {
  size: number;
  max: number;
  counters: Record<string, number>;
}

interface ConntrackSnapshot {
  size: number;
  max: number;
  counters: Record<string, number>;
}

async function conntrackSnapshot(ep: NatEndpoints): Promise<ConntrackSnapshot> {
  const c = ep.conntrack;
  if ('tapbridge' in c) {
    const r = (await c.tapbridge.ctl(['conntrack', '--limit', '1'])) as ConntrackReply;
    return { size: r.size, max: r.max, counters: r.counters };
  }
  // The kernel's conntrack of the NAT namespace: its count, the (global) limit, and the
  // per-namespace statistics (/proc/net/stat/nf_conntrack: one hex row per CPU, summed).
  const r = await runIn(c.kernelNs, 'sh', ['-c', 'cat /proc/sys/net/netfilter/nf_conntrack_count /proc/sys/net/netfilter/nf_conntrack_max; cat /proc/net/stat/nf_conntrack'], { timeoutMs: 5000 });
  const lines = r.stdout.trim().split('\n');
  const counters: Record<string, number> = {};
  const names = (lines[2] ?? '').trim().split(/\s+/);
  for (const row of lines.slice(3)) {
    const vals = row.trim().split(/\s+/);
    // `entries` is the table size repeated on every row; the others are per-CPU event counts.
    names.forEach((n, i) => (counters[n] = n === 'entries' && counters[n] !== undefined ? counters[n] : (counters[n] ?? 0) + parseInt(vals[i] ?? '0', 16)));
  }
  return { size: Number(lines[0]), max: Number(lines[1]), counters };
}

/** Counters that mean a new flow was refused or evicted (or could not be tracked/translated). */
const REFUSAL_COUNTERS = {
  tapbridge: ['refusedFull', 'earlyDropped', 'noPort', 'clash', 'invalid'],
  kernel: ['drop', 'early_drop', 'insert_failed', 'invalid'],
};
/**
 * Counters worth showing: flows the storm created, and how many of them reused the tuple of a
 * flow still in TIME_WAIT (the client's ephemeral ports come round again). The kernel's
 * statistics have no creation counter any more (`new` stays 0).
 */
const FLOW_COUNTERS = { tapbridge: ['created', 'reopened'], kernel: [] as string[] };

function counterDelta(before: ConntrackSnapshot | null, after: ConntrackSnapshot, keys: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of keys) {
    const d = (after.counters?.[k] ?? 0) - (before?.counters?.[k] ?? 0);
    if (d > 0) out[k] = d;
  }
  return out;
}

const tcpIn: Metric = {
  id: 'tcp_in' as MetricId,
  label: 'TCP wan -> published port (iperf3, 1 stream)',
  unit: 'Gbit/s',
  better: 'higher',
  decimals: 2,
  async measure(ep, o) {
    const r = await iperfTcp(natEndpoints(ep, 'tcp_in').inbound, o.durationS);
    return { value: r.gbps, detail: { ...r } };
  },
};

const conn: Metric = {
  id: 'conn' as MetricId,
  label: `new connections through NAT (connect/GET/close, ${STORM_CONCURRENCY} parallel)`,
  unit: 'conn/s',
  better: 'higher',
  decimals: 0,
  async measure(ep, o: MeasureOptions): Promise<Measurement> {
    const n = natEndpoints(ep, 'conn');
    const side = 'tapbridge' in n.conntrack ? 'tapbridge' : 'kernel';
    const before = await conntrackSnapshot(n).catch(() => null);
    const r: ConnRateResult = await connRate(n.clientNs, n.http.serverNs, n.http.addr, n.http.port, {
      durationS: o.durationS,
      concurrency: STORM_CONCURRENCY,
    });
    const after = await conntrackSnapshot(n).catch((e: Error) => ({ error: e.message }));
    const ok = 'size' in after;
    const refusals = ok ? counterDelta(before, after, REFUSAL_COUNTERS[side]) : {};
    const flows = ok ? counterDelta(before, after, FLOW_COUNTERS[side]) : {};
    const failures = Object.entries(r.failReasons).map(([k, v]) => `${k} ${v}`).join(', ');
    const kv = (o: Record<string, number>) => Object.entries(o).map(([k, v]) => `${k} +${v}`).join(', ');
    n.log(
      `      ${side} conntrack after the storm: ` +
        (ok ? `${after.size} of ${after.max} flows${Object.keys(flows).length > 0 ? ` (${kv(flows)})` : ''}; refusals during the storm: ${Object.keys(refusals).length === 0 ? 'none' : kv(refusals)}` : `? (${after.error})`) +
        `; client: ${r.completed} completed, ${r.failed} failed${failures ? ` (${failures})` : ''}, latency p50/p99 ${fmtUs(r.latencyUs.p50)}/${fmtUs(r.latencyUs.p99)} µs`,
    );
    return { value: r.ratePerS, detail: { ...r, conntrackBefore: before, conntrackAfter: after, refusals, flowCounters: flows } };
  },
};

function fmtUs(v: number | null): string {
  return v === null ? '-' : v.toFixed(0);
}

// Register the NAT-only metrics in the shared table (so --only tcp_in,conn works too).
(METRICS as Record<string, Metric>).tcp_in ??= tcpIn;
(METRICS as Record<string, Metric>).conn ??= conn;

async function iptables(ns: string, args: string[]): Promise<void> {
  if (IPTABLES === null) throw new Error('install iptables to run the NAT kernel reference');
  await runIn(ns, IPTABLES, ['-w', '5', ...args], { timeoutMs: 10_000 });
}

async function setupKernel(ctx: ScenarioContext): Promise<Topology> {
  if (IPTABLES === null) {
    const msg = 'install iptables to run the NAT kernel reference: iptables not found (looked in /usr/sbin, /sbin, /usr/bin, /bin); NAT scenario SKIPPED';
    ctx.log(`\n!!! ${msg}\n`);
    throw new Error(msg);
  }
  const kr = `${ctx.prefix}-kr`;
  const kh = `${ctx.prefix}-kh`;
  const kw = `${ctx.prefix}-kw`;
  const made: string[] = [];
  const teardown = async () => {
    for (const ns of made.reverse()) await deleteNetns(ns);
    made.length = 0;
  };
  try {
    for (const ns of [kh, kr, kw]) made.push(await createNetns(ns));
    await createKernelBridge(kh, 'br0', { mtu: MTU, addresses: [`${GATEWAY_ADDR}/24`] });
    await createVeth({ ns: kh, ifname: 'vr', mtu: MTU }, { ns: kr, ifname: 'eth0', mtu: MTU, addresses: [`${INSIDE_ADDR}/24`], gateway: GATEWAY_ADDR });
    await bridgePort(kh, 'br0', 'vr');
    await createVeth({ ns: kh, ifname: 'eth0', mtu: MTU, addresses: [`${EXTERNAL_ADDR}/24`] }, { ns: kw, ifname: 'eth0', mtu: MTU, addresses: [`${WAN_ADDR}/24`] });
    await sysctl(kh, 'net.ipv4.ip_forward', '1');
    // Every rule lives in kh's own tables (`ip netns exec kh iptables ...`), never the root namespace's.
    try {
      await iptables(kh, ['-t', 'nat', '-A', 'POSTROUTING', '-s', '10.100.0.0/24', '-o', 'eth0', '-j', 'MASQUERADE']);
      for (const port of [8000, PUBLISHED_PORT])
        for (const proto of ['tcp', 'udp'])
          await iptables(kh, ['-t', 'nat', '-A', 'PREROUTING', '-d', EXTERNAL_ADDR, '-p', proto, '--dport', String(port), '-j', 'DNAT', '--to-destination', `${INSIDE_ADDR}:${port}`]);
    } catch (err) {
      throw new Error(`NAT kernel reference: iptables failed inside ${kh} (install iptables / the nf_tables or nf_nat modules to run it): ${(err as Error).message}`);
    }
  } catch (err) {
    await teardown();
    throw err;
  }
  const endpoints: NatEndpoints = {
    clientNs: kr,
    serverNs: kw,
    serverAddr: WAN_ADDR,
    inbound: { clientNs: kw, serverNs: kr, serverAddr: EXTERNAL_ADDR, serverPort: PUBLISHED_PORT },
    http: { serverNs: kw, addr: WAN_ADDR, port: HTTP_PORT },
    conntrack: { kernelNs: kh },
    log: ctx.log,
  };
  return {
    endpoints,
    info: { namespaces: [kr, kh, kw], iptables: IPTABLES, mtu: MTU },
    teardown,
  };
}

async function setupTapbridge(ctx: ScenarioContext): Promise<Topology> {
  const host = `${ctx.prefix}-host`;
  const tr = `${ctx.prefix}-tr`;
  const tw = `${ctx.prefix}-tw`;
  const config = {
    instance: `${ctx.prefix}-nat`,
    namespace: { name: host, create: true },
    bridges: [
      {
        name: 'br0',
        gateway: { address: `${GATEWAY_ADDR}/24` },
        ports: [{ type: 'namespace', name: 'tr', namespace: tr, addresses: [`${INSIDE_ADDR}/24`], defaultRoute: GATEWAY_ADDR, mtu: MTU, offload: true }],
      },
    ],
    uplink: { interface: 'eth0', address: `${EXTERNAL_ADDR}/24`, gateway: WAN_ADDR },
    nat: {
      publish: [
        { proto: 'tcp', port: PUBLISHED_PORT, to: INSIDE_ADDR },
        { proto: 'udp', port: PUBLISHED_PORT, to: INSIDE_ADDR },
      ],
      maxFlows: MAX_FLOWS,
    },
    lab: {
      veths: [{ namespace: tw, ifname: 'eth0', addresses: [`${WAN_ADDR}/24`], peer: 'eth0', peerAddresses: [`${HOST_KERNEL_ADDR}/24`], mtu: MTU }],
    },
  };
  const tb = await startTapbridge({
    config,
    namespaces: [tr, tw, host],
    onLog: ctx.verbose ? (l) => ctx.log(`  tapbridge: ${l}`) : undefined,
  });
  const endpoints: NatEndpoints = {
    clientNs: tr,
    serverNs: tw,
    serverAddr: WAN_ADDR,
    inbound: { clientNs: tw, serverNs: tr, serverAddr: EXTERNAL_ADDR, serverPort: PUBLISHED_PORT },
    http: { serverNs: tw, addr: WAN_ADDR, port: HTTP_PORT },
    conntrack: { tapbridge: tb },
    log: ctx.log,
  };
  return {
    endpoints,
    tapbridge: tb,
    info: { namespaces: [tr, tw, host], config, mtu: MTU },
    teardown: () => tb.stop(),
  };
}

/**
 * Without iptables, setupKernel fails loudly ("install iptables to run the NAT kernel
 * reference"); e2e.ts ends the run at a failing setup, so this scenario is listed last.
 */
export const natScenario: Scenario = {
  name: 'nat',
  description: `masquerade ${INSIDE_ADDR} -> wan ${WAN_ADDR} and a published port ${EXTERNAL_ADDR}:${PUBLISHED_PORT} -> ${INSIDE_ADDR} (MTU ${MTU}); kernel: bridge + iptables MASQUERADE/DNAT`,
  setupKernel,
  setupTapbridge,
  metrics: ['tcp', 'tcp_in' as MetricId, 'udp', 'conn' as MetricId],
  targets: {
    tcp: { kind: 'ratio', min: 0.25, aim: 0.6 },
    ['tcp_in' as MetricId]: { kind: 'ratio', min: 0.25, aim: 0.6 },
    ['conn' as MetricId]: { kind: 'ratio', min: 0.25, aim: 0.5 },
  },
};
