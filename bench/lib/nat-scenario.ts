/*
 * Scenarios "nat" and "nat6": a namespace behind a gateway with masquerade and published
 * ports, and a `wan` namespace outside; the same addresses for both topologies. One module for
 * both address families (`natScenario(family)`, the addresses from NAT_PLANS):
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
 * nat6 is the same shape in IPv6 (NAT66), namespaces ${prefix}-k6r/-k6h/-k6w and
 * ${prefix}-t6r/-t6w/-host6: inside 2001:db8:100::2/64, gateway 2001:db8:100::1, external
 * 2001:db8:113::2/64 (tapbridge's, or kh's eth0), wan 2001:db8:113::1/64; the host kernel has
 * no IPv6 address on the uplink (as in the default lab). Kernel reference: kh with
 * net.ipv6.conf.all.forwarding=1 and ip6tables MASQUERADE 2001:db8:100::/64 / DNAT to
 * [2001:db8:100::2]:port, inside kh only. Targets: TCP (both directions) within 10% of
 * tapbridge's own nat (IPv4) figures of the same run; UDP and conn/s as for IPv4.
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
import type { Family } from '../../src/config/addresses.js';
import { connRate, type ConnRateResult } from './conn-rate.js';
import { cpuPerGb } from './cpu.js';
import { iperfTcp, type Endpoints } from './iperf.js';
import { bridgePort, createKernelBridge, createNetns, createVeth, deleteNetns, sysctl } from './netns.js';
import { runIn } from './proc.js';
import { METRICS, type Measurement, type MeasureOptions, type Metric, type MetricId, type Scenario, type ScenarioContext, type Topology } from './scenario.js';
import { setupSlirpNat } from './slirp.js';
import { startTapbridge, type TapbridgeInstance } from './tapbridge.js';

export const PUBLISHED_PORT = 5201;
export const HTTP_PORT = 80;
export const MTU = 1500;
export const MAX_FLOWS = 262144;
export const STORM_CONCURRENCY = 32;

/** The addresses of one family: inside namespace, gateway, wan and tapbridge's (or kh's) external address. */
export interface NatPlan {
  family: Family;
  /** Scenario name (`--scenario`). */
  name: string;
  /** Inserted into namespace names, so both families' topologies can coexist. */
  tag: string;
  inside: string;
  gateway: string;
  insidePrefixLen: number;
  /** The inside subnet, masqueraded by the kernel reference. */
  insideNet: string;
  wan: string;
  external: string;
  outsidePrefixLen: number;
  /** The kernel's own address on the uplink in tapbridge's namespace (none for IPv6, as in the default lab). */
  hostKernel: string | null;
}

export const NAT_PLANS: Record<Family, NatPlan> = {
  4: {
    family: 4,
    name: 'nat',
    tag: '',
    inside: '10.100.0.2',
    gateway: '10.100.0.1',
    insidePrefixLen: 24,
    insideNet: '10.100.0.0/24',
    wan: '203.0.113.1',
    external: '203.0.113.2',
    outsidePrefixLen: 24,
    hostKernel: '203.0.113.3',
  },
  6: {
    family: 6,
    name: 'nat6',
    tag: '6',
    inside: '2001:db8:100::2',
    gateway: '2001:db8:100::1',
    insidePrefixLen: 64,
    insideNet: '2001:db8:100::/64',
    wan: '2001:db8:113::1',
    external: '2001:db8:113::2',
    outsidePrefixLen: 64,
    hostKernel: null,
  },
};

const findTool = (name: string) => [`/usr/sbin/${name}`, `/sbin/${name}`, `/usr/bin/${name}`, `/bin/${name}`].find((p) => existsSync(p)) ?? null;
const IPTABLES: Record<Family, string | null> = { 4: findTool('iptables'), 6: findTool('ip6tables') };

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
  secondary: [cpuPerGb],
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

/** Run the family's iptables (iptables / ip6tables) inside the namespace `ns`, never the root namespace. */
async function iptables(plan: NatPlan, ns: string, args: string[]): Promise<void> {
  const bin = IPTABLES[plan.family];
  if (bin === null) throw new Error(`install ${iptablesName(plan)} to run the NAT kernel reference`);
  await runIn(ns, bin, ['-w', '5', ...args], { timeoutMs: 10_000 });
}

function iptablesName(plan: NatPlan): string {
  return plan.family === 4 ? 'iptables' : 'ip6tables';
}

/** iptables' DNAT destination: a.b.c.d:port, [v6]:port. */
function dnatTo(plan: NatPlan, port: number): string {
  return plan.family === 4 ? `${plan.inside}:${port}` : `[${plan.inside}]:${port}`;
}

async function setupKernel(ctx: ScenarioContext, plan: NatPlan): Promise<Topology> {
  const tool = iptablesName(plan);
  if (IPTABLES[plan.family] === null) {
    const msg = `install ${tool} to run the NAT kernel reference: ${tool} not found (looked in /usr/sbin, /sbin, /usr/bin, /bin); ${plan.name} kernel reference SKIPPED`;
    ctx.log(`\n!!! ${msg}\n`);
    throw new Error(msg);
  }
  const kr = `${ctx.prefix}-k${plan.tag}r`;
  const kh = `${ctx.prefix}-k${plan.tag}h`;
  const kw = `${ctx.prefix}-k${plan.tag}w`;
  const made: string[] = [];
  const teardown = async () => {
    for (const ns of made.reverse()) await deleteNetns(ns);
    made.length = 0;
  };
  const inside = plan.insidePrefixLen;
  const outside = plan.outsidePrefixLen;
  try {
    for (const ns of [kh, kr, kw]) made.push(await createNetns(ns));
    await createKernelBridge(kh, 'br0', { mtu: MTU, addresses: [`${plan.gateway}/${inside}`] });
    await createVeth({ ns: kh, ifname: 'vr', mtu: MTU }, { ns: kr, ifname: 'eth0', mtu: MTU, addresses: [`${plan.inside}/${inside}`], gateway: plan.gateway });
    await bridgePort(kh, 'br0', 'vr');
    await createVeth({ ns: kh, ifname: 'eth0', mtu: MTU, addresses: [`${plan.external}/${outside}`] }, { ns: kw, ifname: 'eth0', mtu: MTU, addresses: [`${plan.wan}/${outside}`] });
    // Forwarding inside kh only (its own sysctls: the root namespace's stay as they are).
    await sysctl(kh, plan.family === 4 ? 'net.ipv4.ip_forward' : 'net.ipv6.conf.all.forwarding', '1');
    // Every rule lives in kh's own tables (`ip netns exec kh iptables ...`), never the root namespace's.
    try {
      await iptables(plan, kh, ['-t', 'nat', '-A', 'POSTROUTING', '-s', plan.insideNet, '-o', 'eth0', '-j', 'MASQUERADE']);
      for (const port of [8000, PUBLISHED_PORT])
        for (const proto of ['tcp', 'udp'])
          await iptables(plan, kh, ['-t', 'nat', '-A', 'PREROUTING', '-d', plan.external, '-p', proto, '--dport', String(port), '-j', 'DNAT', '--to-destination', dnatTo(plan, port)]);
    } catch (err) {
      throw new Error(`NAT kernel reference: ${tool} failed inside ${kh} (install ${tool} / the nf_tables or nf_nat modules to run it): ${(err as Error).message}`);
    }
  } catch (err) {
    await teardown();
    throw err;
  }
  const endpoints: NatEndpoints = {
    clientNs: kr,
    serverNs: kw,
    serverAddr: plan.wan,
    inbound: { clientNs: kw, serverNs: kr, serverAddr: plan.external, serverPort: PUBLISHED_PORT },
    http: { serverNs: kw, addr: plan.wan, port: HTTP_PORT },
    conntrack: { kernelNs: kh },
    log: ctx.log,
  };
  return {
    endpoints,
    info: { namespaces: [kr, kh, kw], iptables: IPTABLES[plan.family], family: plan.family, mtu: MTU },
    teardown,
  };
}

async function setupTapbridge(ctx: ScenarioContext, plan: NatPlan, extra: Record<string, unknown> = {}): Promise<Topology> {
  const host = `${ctx.prefix}-host${plan.tag}`;
  const tr = `${ctx.prefix}-t${plan.tag}r`;
  const tw = `${ctx.prefix}-t${plan.tag}w`;
  const config = {
    ...extra,
    instance: `${ctx.prefix}-${plan.name}`,
    namespace: { name: host, create: true },
    bridges: [
      {
        name: 'br0',
        gateway: { address: `${plan.gateway}/${plan.insidePrefixLen}` },
        ports: [{ type: 'namespace', name: 'tr', namespace: tr, addresses: [`${plan.inside}/${plan.insidePrefixLen}`], defaultRoute: plan.gateway, mtu: MTU, offload: true }],
      },
    ],
    uplink: { interface: 'eth0', address: `${plan.external}/${plan.outsidePrefixLen}`, gateway: plan.wan },
    nat: {
      publish: [
        { proto: 'tcp', port: PUBLISHED_PORT, to: plan.inside },
        { proto: 'udp', port: PUBLISHED_PORT, to: plan.inside },
      ],
      maxFlows: MAX_FLOWS,
    },
    lab: {
      veths: [
        {
          namespace: tw,
          ifname: 'eth0',
          addresses: [`${plan.wan}/${plan.outsidePrefixLen}`],
          peer: 'eth0',
          peerAddresses: plan.hostKernel === null ? [] : [`${plan.hostKernel}/${plan.outsidePrefixLen}`],
          mtu: MTU,
        },
      ],
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
    serverAddr: plan.wan,
    inbound: { clientNs: tw, serverNs: tr, serverAddr: plan.external, serverPort: PUBLISHED_PORT },
    http: { serverNs: tw, addr: plan.wan, port: HTTP_PORT },
    conntrack: { tapbridge: tb },
    log: ctx.log,
  };
  return {
    endpoints,
    tapbridge: tb,
    cpuPid: tb.proc.child.pid,
    info: { namespaces: [tr, tw, host], config, family: plan.family, mtu: MTU },
    teardown: () => tb.stop(),
  };
}

const IPV4_TARGETS: Scenario['targets'] = {
  tcp: { kind: 'ratio', min: 0.25, aim: 0.6 },
  ['tcp_in' as MetricId]: { kind: 'ratio', min: 0.25, aim: 0.6 },
  ['conn' as MetricId]: { kind: 'ratio', min: 0.25, aim: 0.5 },
};

/** NAT66 against tapbridge's own NAT (IPv4) figures of the same run (issue 9); UDP and conn/s as for IPv4. */
const IPV6_TARGETS: Scenario['targets'] = {
  tcp: { kind: 'family', scenario: NAT_PLANS[4].name, min: 0.9 },
  ['tcp_in' as MetricId]: { kind: 'family', scenario: NAT_PLANS[4].name, min: 0.9 },
  ['conn' as MetricId]: IPV4_TARGETS['conn' as MetricId],
};

/**
 * The NAT scenario of one address family. Without iptables (ip6tables) setupKernel fails
 * loudly ("install iptables to run the NAT kernel reference"); e2e.ts reports that peer as
 * "setup failed" in every row and measures the others.
 */
export function natScenario(family: Family): Scenario {
  const plan = NAT_PLANS[family];
  const kernel = `bridge + ${iptablesName(plan)} MASQUERADE/DNAT`;
  return {
    name: plan.name,
    description: `masquerade ${plan.inside} -> wan ${plan.wan} and a published port ${family === 4 ? plan.external : `[${plan.external}]`}:${PUBLISHED_PORT} -> ${plan.inside} (MTU ${MTU}); kernel: ${kernel}`,
    setupKernel: (ctx) => setupKernel(ctx, plan),
    setupTapbridge: (ctx, extra) => setupTapbridge(ctx, plan, extra),
    ...(family === 4
      ? { setupSlirp: (ctx: ScenarioContext) => setupSlirpNat(ctx, { wan: plan.wan, external: plan.external, prefixLen: plan.outsidePrefixLen, mtu: MTU, publishedPort: PUBLISHED_PORT, httpPort: HTTP_PORT }) }
      : {}),
    metrics: ['tcp', 'tcp_in' as MetricId, 'udp', 'conn' as MetricId],
    targets: family === 4 ? IPV4_TARGETS : IPV6_TARGETS,
  };
}
