/*
 * Assembles the router from the config: one interface per bridge gateway (an internal
 * port on the bridge with a static FDB entry for the gateway MAC), the uplink interface
 * (AF_PACKET port, tapbridge's own external address and MAC), connected and static routes
 * and the default route via the uplink's gateway.
 */
import type { Config } from '../config/schema.js';
import type { Engine } from '../engine/engine.js';
import type { Port } from '../engine/port.js';
import type { SetupResult } from '../lab/setup.js';
import { parseCidr, parseIp4 } from '../wire/ip4.js';
import { parseMac } from '../wire/mac.js';
import { Router, type RouterIface } from './router.js';
import { native } from '../io/native.js';
import { NatEngine, NAT_DROP_REASON_NAMES, type PortForward } from '../nat/index.js';
import { dropReason } from '../engine/counters.js';

export interface RouterBuild {
  router: Router;
  nat: NatEngine | null;
  uplinkIface: RouterIface | null;
  uplinkPort: Port | null;
}

export function toForward(p: { proto: 'tcp' | 'udp'; port: number; portEnd?: number; to: string; toPort?: number }): PortForward {
  return {
    proto: p.proto === 'tcp' ? 6 : 17,
    externalPort: p.port,
    externalPortEnd: p.portEnd ?? p.port,
    internalIp: parseIp4(p.to)!,
    internalPort: p.toPort ?? p.port,
  };
}

/** 02:74:62 ("tb") + the low 24 bits of the address: a stable, locally administered MAC. */
export function ownMacFor(address: number): string {
  const h = (n: number) => n.toString(16).padStart(2, '0');
  return `02:74:62:${h((address >>> 16) & 255)}:${h((address >>> 8) & 255)}:${h(address & 255)}`;
}

export function buildRouter(cfg: Config, engine: Engine, setup: Pick<SetupResult, 'uplink'>): RouterBuild | null {
  const gwBridges = cfg.bridges.filter((b) => b.gateway !== undefined);
  if (gwBridges.length === 0 && cfg.uplink === undefined) return null;
  const router = new Router(engine.arena, engine);
  for (const b of gwBridges) {
    const gw = b.gateway!;
    const cidr = parseCidr(gw.address)!;
    const mac = gw.mac ?? ownMacFor(cidr.addr);
    const bridge = engine.bridge(b.name)!;
    let iface: RouterIface | null = null;
    const port = engine.addPort(
      { name: `gw-${b.name}`, kind: 'internal', bridge: b.name, fd: -1, vnetHdr: true, ifname: `gateway ${gw.address}`, mac },
      { receive: (_p, off, len) => router.receiveFrom(iface!, off, len) },
    );
    bridge.fdb.addStatic(parseMac(mac)!, port.bridgePort);
    const mtu = Math.min(...b.ports.map((p) => p.mtu));
    iface = router.addIface({ name: b.name, kind: 'bridge', address: cidr.addr, prefixLen: cidr.prefixLen, mac: parseMac(mac)!, mtu, port, bridge });
  }
  let uplinkIface: RouterIface | null = null;
  let uplinkPort: Port | null = null;
  if (cfg.uplink !== undefined && setup.uplink !== null) {
    const u = cfg.uplink;
    const up = setup.uplink;
    const cidr = parseCidr(u.address)!;
    const mac = u.mac === 'own' ? ownMacFor(cidr.addr) : u.mac === 'nic' ? up.mac : u.mac;
    uplinkPort = engine.addPort({ name: 'uplink', kind: 'uplink', bridge: '', fd: up.fd, vnetHdr: up.vnetHdr, ifname: up.ifname, mac }, null);
    const iface = router.addIface({ name: 'uplink', kind: 'uplink', address: cidr.addr, prefixLen: cidr.prefixLen, mac: parseMac(mac)!, mtu: up.mtu, port: uplinkPort, bridge: null });
    uplinkIface = iface;
    engine.startRx(uplinkPort, (_p, off, len) => router.receiveUplink(iface, off, len));
    router.addRoute({ net: 0, prefixLen: 0, iface: iface.id, via: parseIp4(u.gateway)!, origin: 'default' });
    // Follow MTU changes of the uplink NIC (PMTU experiments lower it at runtime).
    const ifname = up.ifname;
    let lastCheck = 0;
    engine.stages.push({
      tick(now) {
        if (now - lastCheck < 1000) return;
        lastCheck = now;
        try {
          iface.mtu = native.ifInfo(ifname).mtu;
        } catch {
          /* interface gone: the reader reports it */
        }
      },
    });
  }
  for (const r of cfg.routes) {
    const to = parseCidr(r.to)!;
    const via = parseIp4(r.via)!;
    const out = router.lookupRoute(via);
    if (out < 0) throw new Error(`route to ${r.to}: next hop ${r.via} is not directly connected`);
    router.addRoute({ net: to.addr, prefixLen: to.prefixLen, iface: out, via, origin: 'static' });
  }
  let nat: NatEngine | null = null;
  if (cfg.nat !== undefined && uplinkIface !== null) {
    const n = cfg.nat;
    const ifAddr = new Uint32Array(router.ifaces.length);
    router.ifaces.forEach((f, i) => (ifAddr[i] = f.address));
    const masq = n.masquerade ?? gwBridges.map((b) => b.gateway!.address);
    nat = new NatEngine({
      uplinkIf: uplinkIface.id,
      ifAddr,
      masqueradeSources: masq.map((c) => {
        const x = parseCidr(c)!;
        return { net: x.addr, prefixLen: x.prefixLen };
      }),
      portRange: n.portRange,
      maxFlows: n.maxFlows,
      timeouts: n.timeouts,
      forwards: n.publish.map(toForward),
    });
    router.nat = nat;
    router.natDropMap = Int32Array.from(NAT_DROP_REASON_NAMES, (name, i) => (i === 0 ? 0 : dropReason(name)));
  }
  engine.stages.push(router);
  return { router, nat, uplinkIface, uplinkPort };
}
