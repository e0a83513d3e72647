/*
 * From the validated config and the opened devices to the data-plane spec the worker
 * builds its graph from (src/dataplane/spec.ts): addresses stay text, devices are fds,
 * defaults are resolved here (gateway MACs, the bridge MTU, masqueraded subnets), so the
 * data plane never reads the config.
 */
import type { Config } from '../config/schema.js';
import { toFaultSpec } from '../config/experiment.js';
import { readFileSync } from 'node:fs';
import type { BridgeSpec, CaptureStartSpec, DataPlaneSpec, DhcpSpec, DnsSpec, PortSpec } from '../dataplane/spec.js';
import type { SetupResult } from '../lab/setup.js';
import { addressOf, byFamily, inSubnet, subnetOf } from '../config/addresses.js';
import { parseIp4 } from '../wire/ip4.js';
import { parseIp6 } from '../wire/ip6.js';

/** 02:74:62 ("tb") + the low 24 bits of the address (IPv4 if there is one): a stable, locally administered MAC. */
export function ownMacFor(addresses: string | string[]): string {
  const f = byFamily(Array.isArray(addresses) ? addresses : [addresses]);
  const a = f.v4 !== undefined ? parseIp4(addressOf(f.v4))! : parseIp6(addressOf(f.v6!))![3];
  const h = (n: number) => n.toString(16).padStart(2, '0');
  return `02:74:62:${h((a >>> 16) & 255)}:${h((a >>> 8) & 255)}:${h(a & 255)}`;
}

/** Default share of the MAC table one port may fill: a quarter (at least 16). */
export function defaultMacLimitPerPort(macTableSize: number): number {
  return Math.max(16, Math.floor(macTableSize / 4));
}

/** A device port's isolation and security from its config (defaults: the bridge's isolatePorts; its own MAC and addresses). */
function portPolicy(cfg: Config, p: PortSpec): PortSpec {
  const bridge = cfg.bridges.find((b) => b.name === p.bridge);
  const pc = bridge?.ports.find((x) => x.name === p.name);
  if (bridge === undefined || pc === undefined) return p;
  return withPolicy(p, pc, bridge.isolatePorts);
}

/** Isolation and port security of a port spec from the port's settings (config or runtime request). */
export function withPolicy(p: PortSpec, pc: { isolated?: boolean; security?: Config['bridges'][number]['ports'][number]['security'] }, isolateDefault: boolean): PortSpec {
  const out: PortSpec = { ...p, isolated: pc.isolated ?? isolateDefault };
  const sec = pc.security;
  if (sec !== undefined && sec !== false) {
    const o = sec === true ? {} : sec;
    out.security = {
      macs: o.macs === undefined ? [p.mac] : o.macs === 'learn' ? [] : o.macs,
      learn: o.macs === 'learn',
      ipv4: o.ipv4 ?? p.addresses.filter((a) => !a.includes(':')).map(addressOf),
      ipv6: o.ipv6 ?? p.addresses.filter((a) => a.includes(':')).map(addressOf),
    };
  }
  return out;
}

/** Default conntrack share of one port (1/4) or one source (1/16); none for tables under 1024 flows. */
export function defaultFlowShare(maxFlows: number, parts: number): number {
  return maxFlows >= 1024 ? Math.floor(maxFlows / parts) : 0;
}

/** IPv4 nameservers of a resolv.conf (the default DNS upstreams), as tapbridge's namespace sees it. */
export function resolvConfUpstreams(file = '/etc/resolv.conf'): string[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((l) => /^\s*nameserver\s+(\d{1,3}(?:\.\d{1,3}){3})\s*$/.exec(l)?.[1])
    .filter((a): a is string => a !== undefined)
    .slice(0, 3);
}

type GatewayConfig = NonNullable<Config['bridges'][number]['gateway']>;

/** The DNS resolver of a bridge: its zone, upstreams and the names of its ports. */
function dnsSpec(g: GatewayConfig, bridge: string, ports: PortSpec[]): DnsSpec | undefined {
  const d = g.dns;
  if (d === undefined || !d.enabled) return undefined;
  const mine = ports.filter((p) => p.bridge === bridge);
  return {
    domain: d.domain,
    upstreams: d.upstreams ?? resolvConfUpstreams(),
    cacheSize: d.cacheSize,
    timeoutMs: d.timeoutMs,
    hosts: mine.filter((p) => p.addresses.length > 0).map((p) => ({ name: p.name, addresses: p.addresses.map(addressOf) })),
    portMacs: mine.map((p) => ({ mac: p.mac, name: p.name })),
  };
}

function dhcpSpec(g: GatewayConfig, gw4: string, mtu: number): DhcpSpec | undefined {
  const d = g.dhcp;
  if (d === undefined) return undefined;
  const dnsOn = g.dns !== undefined && g.dns.enabled;
  return {
    poolStart: d.pool.start,
    poolEnd: d.pool.end,
    leaseTime: d.leaseTime,
    static: d.static.map((s) => ({ mac: s.mac.toLowerCase(), address: s.address, ...(s.hostName !== undefined ? { hostName: s.hostName } : {}) })),
    router: d.router === undefined ? addressOf(gw4) : d.router,
    dns: d.dns ?? (dnsOn ? [addressOf(gw4)] : []),
    domain: d.domain ?? (dnsOn ? g.dns!.domain : undefined),
    mtu: d.mtu ?? mtu,
    leaseFile: d.leaseFile,
    maxClients: d.maxClients,
  };
}

/** RDNSS of the router advertisements: as configured, else the gateway itself when it serves DNS. */
function raDns(g: GatewayConfig, v6: string): string[] {
  if (g.ra.dns.length > 0) return g.ra.dns;
  return g.dns !== undefined && g.dns.enabled ? [addressOf(v6)] : [];
}

/** A bridge gateway's addresses split by family, its MAC, MTU, router advertisements, DHCP and DNS. */
function gatewaySpec(g: GatewayConfig, mtu: number, bridge: string, ports: PortSpec[]): NonNullable<BridgeSpec['gateway']> {
  const f = byFamily(g.address);
  const ra = g.ra;
  return {
    dhcp: f.v4 === undefined ? undefined : dhcpSpec(g, f.v4, mtu),
    dns: dnsSpec(g, bridge, ports),
    address: f.v4,
    address6: f.v6,
    mac: g.mac ?? ownMacFor(g.address),
    mtu,
    ra: f.v6 !== undefined && ra.enabled ? { routerLifetime: ra.routerLifetime, validLifetime: ra.validLifetime, preferredLifetime: ra.preferredLifetime, intervalSeconds: ra.interval, dns: raDns(g, f.v6) } : undefined,
  };
}

/** Is the gateway address `a` (addr/len) inside the routed prefix r? */
function sameSubnet(r: string, a: string): boolean {
  return inSubnet(a, subnetOf(r));
}

export function dataPlaneSpec(cfg: Config, setup: Pick<SetupResult, 'ports' | 'uplink'>, captures: CaptureStartSpec[] = []): DataPlaneSpec {
  const spec: DataPlaneSpec = {
    bridges: cfg.bridges.map((b) => ({
      name: b.name,
      agingSeconds: b.agingSeconds,
      macTableSize: b.macTableSize,
      macLimitPerPort: b.macLimitPerPort ?? defaultMacLimitPerPort(b.macTableSize),
      whenFull: b.macTableFull,
      macMoves: b.macMoves,
      static: b.static,
      gateway: b.gateway === undefined ? undefined : gatewaySpec(b.gateway, Math.min(...b.ports.map((p) => p.mtu)), b.name, setup.ports),
    })),
    ports: setup.ports.map((p) => portPolicy(cfg, p)),
    routes: cfg.routes,
    rpFilter: cfg.routing.rpFilter,
    poll: cfg.poll,
    runtimePorts: cfg.runtimePorts,
  };
  if (cfg.uplink?.type === 'socket') {
    const u = cfg.uplink;
    spec.socketUplink = {
      hostLoopback: u.hostLoopback, maxSockets: u.maxSockets, maxSocketsPerTenant: u.maxSocketsPerTenant,
      tcpIdleTimeout: u.tcpIdleTimeout, udpTimeout: u.udpTimeout, udpRepliedTimeout: u.udpRepliedTimeout,
      publish: cfg.nat?.publish ?? [],
    };
  }
  if (cfg.uplink?.type === 'packet' && setup.uplink !== null) {
    const u = cfg.uplink;
    const up = setup.uplink;
    const addr = byFamily(u.address);
    const gw = byFamily(u.gateway);
    spec.uplink = {
      fd: up.fd, vnetHdr: up.vnetHdr, ifname: up.ifname, mtu: up.mtu,
      mac: u.mac === 'own' ? ownMacFor(u.address) : u.mac === 'nic' ? up.mac : u.mac,
      address: addr.v4, address6: addr.v6, gateway: gw.v4, gateway6: gw.v6,
    };
  }
  if (cfg.nat !== undefined && spec.uplink !== undefined) {
    const n = cfg.nat;
    spec.nat = {
      masquerade: n.masquerade ?? cfg.bridges.flatMap((b) => b.gateway?.address ?? []).filter((a) => !n.routed.some((r) => sameSubnet(r, a))),
      routed: n.routed,
      portRange: n.portRange,
      maxFlows: n.maxFlows,
      timeouts: n.timeouts as Record<string, number>,
      publish: n.publish,
      maxFlowsPerPort: n.maxFlowsPerPort ?? defaultFlowShare(n.maxFlows, 4),
      maxFlowsPerSource: n.maxFlowsPerSource ?? defaultFlowShare(n.maxFlows, 16),
    };
  }
  const ex = cfg.experiment;
  if (ex !== undefined) {
    spec.experiment = {
      faults: ex.faults.map(({ port, direction, ...rest }) => ({ port, direction, spec: toFaultSpec(rest) })),
      captures,
    };
  }
  return spec;
}
