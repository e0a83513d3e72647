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
import { InterfaceTable } from '../gateway/ifaces.js';
import { GatewayInterface } from '../gateway/interface.js';
import { LocalDelivery } from '../gateway/local.js';
import { Router } from '../gateway/router.js';
import { RouteTable } from '../gateway/routes.js';
import { DevicePort } from '../io/device.js';
import { NatEngine, NatLocalOut, NatPostrouting, NatPrerouting, type PortForward } from '../nat/index.js';
import { Switch } from '../switch/switch.js';
import { parseCidr, parseIp4 } from '../wire/ip4.js';
import { parseMac } from '../wire/mac.js';
import { routerInterfaces } from './plan.js';
import { gatewayPortName, UPLINK_PORT, type DataPlaneSpec, type PublishSpec } from './spec.js';

export interface SharedState {
  /** Every port by name, in `ctl ports` order: device ports, gateway ports, the uplink. */
  records: Map<string, PortRecord>;
  ifaces: InterfaceTable;
  routes: RouteTable;
  nat: NatEngine | null;
  budget: ErrorBudget;
  /** Pool account for frames waiting for a neighbour, by ingress port index. */
  neighbourAccounts: Int32Array;
}

/** Most ports one data plane can have (annotations keep the port index in 16 bits). */
export const MAX_PORTS = 4096;
/** Pool slots the frames of one port may hold while they wait for ARP. */
export const NEIGHBOUR_QUEUE_SLOTS_PER_PORT = 32;

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
  for (const b of spec.bridges) {
    if (b.gateway === undefined) continue;
    const cidr = must(parseCidr(b.gateway.address), `bridge ${b.name}: bad gateway address`);
    const mac = must(parseMac(b.gateway.mac), `bridge ${b.name}: bad gateway MAC`);
    const record = addRecord(new PortRecord(gatewayPortName(b.name), 'internal', `gateway ${b.gateway.address}`, mac, true, b.name));
    ifaces.add({ name: b.name, kind: 'bridge', address: cidr.addr, prefixLen: cidr.prefixLen, mac, mtu: b.gateway.mtu }, record);
  }
  if (spec.uplink !== undefined) {
    const u = spec.uplink;
    const cidr = must(parseCidr(u.address), 'uplink: bad address');
    const mac = must(parseMac(u.mac), 'uplink: bad MAC');
    const record = addRecord(new PortRecord(UPLINK_PORT, 'uplink', u.ifname, mac, u.vnetHdr, null));
    ifaces.add({ name: UPLINK_PORT, kind: 'uplink', address: cidr.addr, prefixLen: cidr.prefixLen, mac, mtu: u.mtu }, record);
  }
  for (const f of ifaces.list) routes.add({ net: f.net, prefixLen: f.prefixLen, iface: f.id, via: 0, origin: 'connected' });
  if (spec.uplink !== undefined) routes.add({ net: 0, prefixLen: 0, iface: ifaces.byName(UPLINK_PORT)!.id, via: must(parseIp4(spec.uplink.gateway), 'uplink: bad gateway'), origin: 'default' });
  for (const r of spec.routes) {
    const to = must(parseCidr(r.to), `route ${r.to}: bad destination`);
    const via = must(parseIp4(r.via), `route ${r.to}: bad next hop`);
    const out = routes.lookup(via);
    if (out < 0) throw new Error(`route to ${r.to}: next hop ${r.via} is not directly connected`);
    routes.add({ net: to.addr, prefixLen: to.prefixLen, iface: out, via, origin: 'static' });
  }
  let nat: NatEngine | null = null;
  if (spec.nat !== undefined && spec.uplink !== undefined) {
    const n = spec.nat;
    nat = new NatEngine({
      uplinkIf: ifaces.byName(UPLINK_PORT)!.id,
      ifAddr: Uint32Array.from(ifaces.list, (f) => f.address),
      masqueradeSources: n.masquerade.map((c) => {
        const x = must(parseCidr(c), `nat: bad masquerade subnet ${c}`);
        return { net: x.addr, prefixLen: x.prefixLen };
      }),
      portRange: n.portRange,
      maxFlows: n.maxFlows,
      maxFlowsPerPort: n.maxFlowsPerPort,
      maxFlowsPerSource: n.maxFlowsPerSource,
      timeouts: n.timeouts,
      forwards: n.publish.map(toForward),
    });
  }
  // Frames waiting for a neighbour are held in pool slots charged to the port they came in
  // on: one tenant resolving many addresses cannot take the slots of the others.
  const neighbourAccounts = new Int32Array(MAX_PORTS).fill(ACCOUNT_CONTROL);
  for (const r of records.values()) neighbourAccounts[r.index] = ctx.arena.newAccount(`neighbour-queue/${r.name}`, NEIGHBOUR_QUEUE_SLOTS_PER_PORT);
  return { records, ifaces, routes, nat, budget: new ErrorBudget(ctx), neighbourAccounts };
}

export function factories(spec: DataPlaneSpec, ctx: DataPlaneContext, s: SharedState): Record<string, ElementFactory> {
  const record = (name: string) => must(s.records.get(name), `no port '${name}'`);
  const iface = (name: string) => must(s.ifaces.byName(name), `no router interface '${name}'`);
  const nat = () => must(s.nat, 'NAT elements without NAT');
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
      const sw = new Switch(name, ctx, { agingSeconds: b.agingSeconds, macTableSize: b.macTableSize, macLimitPerPort: b.macLimitPerPort, whenFull: b.whenFull, ports });
      sw.fdb.denyMoves = b.macMoves === 'deny';
      return sw;
    },
    GatewayInterface: (name, p) => new GatewayInterface(name, ctx, iface(str(p, 'iface')), s.neighbourAccounts),
    Fragmenter: (name, p) => new Fragmenter(name, ctx, { iface: iface(str(p, 'iface')), ifaces: s.ifaces }),
    Router: (name) => new Router(name, ctx, { ifaces: s.ifaces, routes: s.routes, rpFilter: spec.rpFilter }),
    LocalDelivery: (name) => new LocalDelivery(name, ctx, { ifaces: s.ifaces, budget: s.budget }),
    IcmpError: (name, p) => new IcmpError(name, ctx, { type: Number(p.type), code: Number(p.code), ifaces: s.ifaces, budget: s.budget }),
    NatPrerouting: (name) => new NatPrerouting(name, ctx, { nat: nat(), ifaces: s.ifaces }),
    NatPostrouting: (name) => new NatPostrouting(name, ctx, { nat: nat(), ifaces: s.ifaces }),
    NatLocalOut: (name) => new NatLocalOut(name, ctx, nat()),
  };
}

export { routerInterfaces };
