/*
 * Building a data plane from its spec: the state elements share (port records, the router's
 * interface and route tables, the NAT engine, the error rate limit), and the factory of each
 * element kind the plan (plan.ts) names. Factories read their plain params and look shared
 * state up by name, so the GraphSpec stays serialisable.
 */
import { ACCOUNT_CONTROL } from '../core/arena.js';
import { PortRecord, type DataPlaneContext } from '../core/element.js';
import type { ElementFactory } from '../core/graph.js';
import { ErrorBudget } from '../gateway/error-budget.js';
import { Fragmenter } from '../gateway/fragment.js';
import { IcmpError } from '../gateway/icmp-error.js';
import { Icmp6Error } from '../gateway/icmp6-error.js';
import { InterfaceTable, type RaSpec } from '../gateway/ifaces.js';
import { GatewayInterface } from '../gateway/interface.js';
import { GatewayGuard } from '../switch/gateway-guard.js';
import { GatewayInterface6, type RoutedPrefix } from '../gateway/interface6.js';
import { LocalDelivery } from '../gateway/local.js';
import { LocalDelivery6 } from '../gateway/local6.js';
import { Router } from '../gateway/router.js';
import { Router6 } from '../gateway/router6.js';
import { RouteTable } from '../gateway/routes.js';
import { RouteTable6 } from '../gateway/routes6.js';
import { DevicePort } from '../io/device.js';
import { NatEngine, NatEngine6, NatLocalOut, NatLocalOut6, NatPostrouting, NatPostrouting6, NatPrerouting, NatPrerouting6, type PortForward, type PortForward6 } from '../nat/index.js';
import { Switch } from '../switch/switch.js';
import { ServicePort } from '../services/service-port.js';
import { serviceBridges } from './service-bridges.js';
import { parseCidr, parseIp4 } from '../wire/ip4.js';
import { maskIp6, parseCidrIp6, parseIp6 } from '../wire/ip6.js';
import { parseMac } from '../wire/mac.js';
import { SocketUplink, SOCKET_UPLINK_MTU } from '../uplink/socket-uplink.js';
import { routerInterfaces } from './plan.js';
import { gatewayPortName, UPLINK_PORT, type DataPlaneSpec, type NatSpec, type PublishSpec, type RouterAdvertSpec } from './spec.js';

export interface SharedState {
  /** Every port by name, in `ctl ports` order: device ports, gateway ports, the uplink. */
  records: Map<string, PortRecord>;
  ifaces: InterfaceTable;
  routes: RouteTable;
  routes6: RouteTable6;
  nat: NatEngine | null;
  /** NAT66, when NAT is on and the uplink has an IPv6 address. */
  nat6: NatEngine6 | null;
  /** Rate limits of the errors tapbridge sends, IPv4 and IPv6. */
  budget: ErrorBudget;
  budget6: ErrorBudget;
  /** IPv6 prefixes routed through the uplink without NAT. */
  routed6: RoutedPrefix[];
  /** Pool account for frames waiting for a neighbour, by ingress port index. */
  neighbourAccounts: Int32Array;
}

/** Most ports one data plane can have (annotations keep the port index in 16 bits). */
export const MAX_PORTS = 4096;
/** Pool slots the frames of one port may hold while they wait for ARP. */
export const NEIGHBOUR_QUEUE_SLOTS_PER_PORT = 32;

export function toForward6(p: PublishSpec): PortForward6 {
  return { ...toForward({ ...p, to: '0.0.0.0' }), internalIp: must(parseIp6(p.to), `publish: bad IPv6 address ${p.to}`) };
}

export function toForward(p: PublishSpec): PortForward {
  return {
    proto: p.proto === 'tcp' ? 6 : 17,
    externalPort: p.port,
    externalPortEnd: p.portEnd ?? p.port,
    internalIp: parseIp4(p.to)!,
    internalPort: p.toPort ?? p.port,
  };
}

function must<T>(v: T | null | undefined, what: string): T {
  if (v === null || v === undefined) throw new Error(`data-plane spec: ${what}`);
  return v;
}

export function buildShared(spec: DataPlaneSpec, ctx: DataPlaneContext): SharedState {
  const records = new Map<string, PortRecord>();
  const addRecord = (r: PortRecord) => {
    if (records.has(r.name)) throw new Error(`data-plane spec: port '${r.name}' exists twice`);
    r.index = records.size;
    records.set(r.name, r);
    return r;
  };
  for (const p of spec.ports) addRecord(new PortRecord(p.name, p.kind, p.ifname, must(parseMac(p.mac), `port ${p.name}: bad MAC ${p.mac}`), p.vnetHdr, p.bridge)).isolated = p.isolated === true;
  const ifaces = new InterfaceTable();
  const routes = new RouteTable(ifaces);
  const routes6 = new RouteTable6(ifaces);
  for (const b of spec.bridges) {
    const g = b.gateway;
    if (g === undefined) continue;
    const mac = must(parseMac(g.mac), `bridge ${b.name}: bad gateway MAC`);
    const shown = [g.address, g.address6].filter((a) => a !== undefined).join(' ');
    const record = addRecord(new PortRecord(gatewayPortName(b.name), 'internal', `gateway ${shown}`, mac, true, b.name));
    ifaces.add({ name: b.name, kind: 'bridge', mac, mtu: g.mtu, ...v4(g.address, `bridge ${b.name}: bad gateway address`), ...v6(g.address6, `bridge ${b.name}: bad gateway IPv6 address`), ra: g.ra === undefined ? undefined : raSpec(g.ra) }, record);
  }
  if (spec.uplink !== undefined) {
    const u = spec.uplink;
    const mac = must(parseMac(u.mac), 'uplink: bad MAC');
    const record = addRecord(new PortRecord(UPLINK_PORT, 'uplink', u.ifname, mac, u.vnetHdr, null));
    ifaces.add({ name: UPLINK_PORT, kind: 'uplink', mac, mtu: u.mtu, ...v4(u.address, 'uplink: bad address'), ...v6(u.address6, 'uplink: bad IPv6 address') }, record);
  }
  if (spec.socketUplink !== undefined) {
    // No address, no MAC, no next hop: what the router sends out of it goes to host sockets.
    const record = addRecord(new PortRecord(UPLINK_PORT, 'uplink', 'host sockets', 0, false, null));
    ifaces.add({ name: UPLINK_PORT, kind: 'uplink', mac: 0, mtu: SOCKET_UPLINK_MTU, address: 0, prefixLen: 0 }, record);
  }
  for (const f of ifaces.list) {
    if (f.hasV4) routes.add({ net: f.net, prefixLen: f.prefixLen, iface: f.id, via: 0, origin: 'connected' });
    if (f.address6 !== null) routes6.add({ net: f.net6, prefixLen: f.prefixLen6, iface: f.id, via: null, origin: 'connected' });
  }
  const uplinkIf = ifaces.byName(UPLINK_PORT);
  if (spec.uplink?.gateway !== undefined) routes.add({ net: 0, prefixLen: 0, iface: uplinkIf!.id, via: must(parseIp4(spec.uplink.gateway), 'uplink: bad gateway'), origin: 'default' });
  if (spec.socketUplink !== undefined) routes.add({ net: 0, prefixLen: 0, iface: uplinkIf!.id, via: 0, origin: 'default' });
  if (spec.uplink?.gateway6 !== undefined) routes6.add({ net: new Uint32Array(4), prefixLen: 0, iface: uplinkIf!.id, via: must(parseIp6(spec.uplink.gateway6), 'uplink: bad IPv6 gateway'), origin: 'default' });
  for (const r of spec.routes) {
    if (r.to.includes(':')) {
      const to = must(parseCidrIp6(r.to), `route ${r.to}: bad destination`);
      const via = must(parseIp6(r.via), `route ${r.to}: bad next hop`);
      const out = routes6.egress(via);
      if (out < 0) throw new Error(`route to ${r.to}: next hop ${r.via} is not directly connected`);
      routes6.add({ net: to.addr, prefixLen: to.prefixLen, iface: out, via, origin: 'static' });
      continue;
    }
    const to = must(parseCidr(r.to), `route ${r.to}: bad destination`);
    const via = must(parseIp4(r.via), `route ${r.to}: bad next hop`);
    const out = routes.lookup(via);
    if (out < 0) throw new Error(`route to ${r.to}: next hop ${r.via} is not directly connected`);
    routes.add({ net: to.addr, prefixLen: to.prefixLen, iface: out, via, origin: 'static' });
  }
  const routed6 = routedPrefixes(spec);
  const nat = spec.nat !== undefined && spec.uplink !== undefined ? buildNat(spec.nat, ifaces) : null;
  const nat6 = spec.nat !== undefined && spec.uplink?.address6 !== undefined ? buildNat6(spec.nat, ifaces, routed6) : null;
  // Frames waiting for a neighbour are held in pool slots charged to the port they came in
  // on: one tenant resolving many addresses cannot take the slots of the others.
  const neighbourAccounts = new Int32Array(MAX_PORTS).fill(ACCOUNT_CONTROL);
  for (const r of records.values()) neighbourAccounts[r.index] = ctx.arena.newAccount(`neighbour-queue/${r.name}`, NEIGHBOUR_QUEUE_SLOTS_PER_PORT);
  return { records, ifaces, routes, routes6, nat, nat6, budget: new ErrorBudget(ctx), budget6: new ErrorBudget(ctx), neighbourAccounts, routed6 };
}

/** The conntrack settings both families share. */
function natCommon(n: NatSpec) {
  return { portRange: n.portRange, maxFlows: n.maxFlows, maxFlowsPerPort: n.maxFlowsPerPort, maxFlowsPerSource: n.maxFlowsPerSource, timeouts: n.timeouts };
}

const isV6 = (text: string) => text.includes(':');

function buildNat(n: NatSpec, ifaces: InterfaceTable): NatEngine {
  return new NatEngine({
    ...natCommon(n),
    uplinkIf: ifaces.byName(UPLINK_PORT)!.id,
    ifAddr: Uint32Array.from(ifaces.list, (f) => f.address),
    masqueradeSources: n.masquerade.filter((c) => !isV6(c)).map((c) => {
      const x = must(parseCidr(c), `nat: bad masquerade subnet ${c}`);
      return { net: x.addr, prefixLen: x.prefixLen };
    }),
    forwards: n.publish.filter((p) => !isV6(p.to)).map(toForward),
  });
}

/** NAT66 (as Docker does with ip6tables): masquerade to the uplink's IPv6 address, published ports, routed prefixes left alone. */
function buildNat6(n: NatSpec, ifaces: InterfaceTable, routed6: RoutedPrefix[]): NatEngine6 {
  return new NatEngine6({
    ...natCommon(n),
    uplinkIf: ifaces.byName(UPLINK_PORT)!.id,
    ifAddr6: ifaces.list.map((f) => f.address6),
    masqueradeSources6: n.masquerade.filter(isV6).map((c) => {
      const x = must(parseCidrIp6(c), `nat: bad masquerade prefix ${c}`);
      return { net: maskIp6(x.addr, x.prefixLen), prefixLen: x.prefixLen };
    }),
    routed6,
    forwards6: n.publish.filter((p) => isV6(p.to)).map(toForward6),
  });
}

/** The IPv4 part of an interface spec (none: address 0). */
function v4(cidr: string | undefined, what: string): { address: number; prefixLen: number } {
  if (cidr === undefined) return { address: 0, prefixLen: 0 };
  const c = must(parseCidr(cidr), what);
  return { address: c.addr, prefixLen: c.prefixLen };
}

function v6(cidr: string | undefined, what: string): { address6: Uint32Array | null; prefixLen6: number } {
  if (cidr === undefined) return { address6: null, prefixLen6: 0 };
  const c = must(parseCidrIp6(cidr), what);
  return { address6: c.addr, prefixLen6: c.prefixLen };
}

function raSpec(r: RouterAdvertSpec): RaSpec {
  return { ...r, dns: r.dns.map((d) => must(parseIp6(d), `router advertisement: bad DNS server ${d}`)) };
}

/** IPv6 prefixes the uplink routes without NAT: the configured ones under NAT, every bridge's without it. */
function routedPrefixes(spec: DataPlaneSpec): RoutedPrefix[] {
  const text = spec.nat !== undefined ? (spec.nat.routed ?? []) : spec.bridges.flatMap((b) => (b.gateway?.address6 !== undefined ? [b.gateway.address6] : []));
  return text.map((t) => {
    const c = must(parseCidrIp6(t), `routed prefix ${t}`);
    return { net: maskIp6(c.addr, c.prefixLen), prefixLen: c.prefixLen };
  });
}

export function factories(spec: DataPlaneSpec, ctx: DataPlaneContext, s: SharedState): Record<string, ElementFactory> {
  const record = (name: string) => must(s.records.get(name), `no port '${name}'`);
  const iface = (name: string) => must(s.ifaces.byName(name), `no router interface '${name}'`);
  const nat = () => must(s.nat, 'NAT elements without NAT');
  const nat6 = () => must(s.nat6, 'NAT66 elements without NAT66');
  const str = (p: Record<string, unknown>, k: string) => must(typeof p[k] === 'string' ? (p[k] as string) : null, `param '${k}' missing`);
  return {
    Device: (name, p) => {
      const port = str(p, 'port');
      if (port === UPLINK_PORT && spec.uplink !== undefined) return new DevicePort(name, ctx, { fd: spec.uplink.fd, kind: 'packet', vnetHdr: spec.uplink.vnetHdr, record: record(port) });
      const ps = must(spec.ports.find((x) => x.name === port), `no port '${port}'`);
      return new DevicePort(name, ctx, { fd: ps.fd, kind: ps.kind === 'packet' ? 'packet' : 'tap', vnetHdr: ps.vnetHdr, record: record(port) });
    },
    Switch: (name, p) => {
      const b = must(spec.bridges.find((x) => x.name === str(p, 'bridge')), 'no such bridge');
      const ports = spec.ports.filter((x) => x.bridge === b.name).map((x) => record(x.name));
      if (b.gateway !== undefined) ports.push(record(gatewayPortName(b.name)));
      const gw = b.gateway !== undefined ? s.ifaces.byName(b.name) : undefined;
      const guard = gw === undefined ? undefined : new GatewayGuard(gw.hasV4 ? [gw.address] : [], gw.address6 !== null ? [gw.address6, gw.linkLocal] : []);
      const sw = new Switch(name, ctx, { agingSeconds: b.agingSeconds, macTableSize: b.macTableSize, macLimitPerPort: b.macLimitPerPort, whenFull: b.whenFull, ports, guard, gatewayPort: gatewayPortName(b.name) });
      sw.fdb.denyMoves = b.macMoves === 'deny';
      return sw;
    },
    GatewayInterface: (name, p) => {
      const g = new GatewayInterface(name, ctx, iface(str(p, 'iface')), s.neighbourAccounts);
      g.dhcpOn = spec.bridges.some((b) => b.name === str(p, 'iface') && b.gateway?.dhcp !== undefined);
      return g;
    },
    ServicePort: (name) => new ServicePort(name, ctx, serviceBridges(spec, s.ifaces)),
    Fragmenter: (name, p) => new Fragmenter(name, ctx, { iface: iface(str(p, 'iface')), ifaces: s.ifaces }),
    Router: (name) => new Router(name, ctx, { ifaces: s.ifaces, routes: s.routes, rpFilter: spec.rpFilter }),
    LocalDelivery: (name) => new LocalDelivery(name, ctx, { ifaces: s.ifaces, budget: s.budget }),
    IcmpError: (name, p) => new IcmpError(name, ctx, { type: Number(p.type), code: Number(p.code), ifaces: s.ifaces, budget: s.budget }),
    GatewayInterface6: (name, p) => new GatewayInterface6(name, ctx, { iface: iface(str(p, 'iface')), queueAccounts: s.neighbourAccounts, routed: s.routed6 }),
    Router6: (name) => new Router6(name, ctx, { ifaces: s.ifaces, routes: s.routes6, rpFilter: spec.rpFilter }),
    LocalDelivery6: (name) => new LocalDelivery6(name, ctx, { ifaces: s.ifaces, budget: s.budget6 }),
    Icmp6Error: (name, p) => new Icmp6Error(name, ctx, { type: Number(p.type), code: Number(p.code), ifaces: s.ifaces, routes: s.routes6, budget: s.budget6 }),
    NatPrerouting: (name) => new NatPrerouting(name, ctx, { nat: nat(), ifaces: s.ifaces }),
    NatPostrouting: (name) => new NatPostrouting(name, ctx, { nat: nat(), ifaces: s.ifaces }),
    NatLocalOut: (name) => new NatLocalOut(name, ctx, nat()),
    NatPrerouting6: (name) => new NatPrerouting6(name, ctx, { nat: nat6(), ifaces: s.ifaces }),
    NatPostrouting6: (name) => new NatPostrouting6(name, ctx, { nat: nat6(), ifaces: s.ifaces }),
    NatLocalOut6: (name) => new NatLocalOut6(name, ctx, nat6()),
    SocketUplink: (name) => {
      const u = must(spec.socketUplink, 'SocketUplink without a socket uplink');
      return new SocketUplink(name, ctx, { ...u, hostLoopback: must(parseIp4(u.hostLoopback), `socket uplink: bad hostLoopback ${u.hostLoopback}`), uplinkIf: iface(UPLINK_PORT).id, records: s.records });
    },
  };
}

export { routerInterfaces };
