/*
 * IPv6 gateway interface element (gw6/BRIDGE, gw6/uplink): the IPv6 link layer of one router
 * interface, beside gw/IF (which hands it every IPv6 frame): neighbour discovery, router
 * advertisements and the input checks of routed IPv6.
 *
 * Ports:
 *   input  `wire`         IPv6 frames from gw/IF (the gateway's MAC, or multicast)
 *   output `wire`         frames to the switch (or to the uplink device): NDP, RAs, routed packets
 *   output `ip`           IPv6 packets for router6, checked (ipv6-input.ts), annotated with this
 *                         interface as inIf
 *   input  `ip`           routed IPv6 packets to send, with anno.nextHop6: the neighbour is
 *                         resolved (NDP), the Ethernet header written, the frame sent; while
 *                         resolving, up to QUEUE_PER_NEIGHBOR6 packets wait (pool slots)
 *   output `unreachable`  packets whose next hop never answered (to ICMPv6 address unreachable)
 * Does: answers neighbour solicitations for its own addresses (global and link-local; on the
 *   uplink also for routed prefixes: NDP proxy, RFC 4861 7.2.8) and defends them against
 *   duplicate address detection; resolves next hops with NUD states (neighbors6.ts:
 *   incomplete, reachable, stale, delay, probe) and bounded per-port queues as for ARP; sends
 *   router advertisements (prefix with the autonomous flag for a /64, MTU, RDNSS when DNS is
 *   configured, router lifetime) at start, on solicitation (at most one per 3 s, RFC 4861
 *   MIN_DELAY_BETWEEN_RAS; a solicitation inside that window is answered when it ends) and
 *   every `intervalSeconds`; takes no configuration from the link (RAs and redirects are
 *   counted and dropped). On a bridge an NDP link-layer address option must be the frame's
 *   source MAC, and a known neighbour is not taken over from another port. Multicast other
 *   than NDP for us (MLD, other groups) is counted and dropped.
 * Counters (on the record): ipv6_* input reasons, ipv6_multicast_ignored, ndp_not_for_us,
 *   ndp_ignored, nd_* (lla_mismatch, takeover_refused, queue_full, failed, table_full,
 *   pending_limit), no_frame_slot; element counters nsSent, naSent, raSent, rsReceived.
 */
import {
  DROP_IPV6_BAD_DEST,
  DROP_IPV6_BAD_SOURCE,
  DROP_IPV6_MULTICAST,
  DROP_NDP_IGNORED,
  DROP_NDP_NOT_OURS,
  DROP_ND_FAILED,
  DROP_ND_LLA_MISMATCH,
  DROP_ND_PORT_LIMIT,
  DROP_ND_QUEUE_FULL,
  DROP_ND_TABLE_FULL,
  DROP_ND_TAKEOVER,
  DROP_NO_FRAME_SLOT,
  DROP_UPLINK_NOT_OURS,
} from '../core/drops.js';
import type { DataPlaneContext } from '../core/element.js';
import { VNET_HDR_LEN } from '../core/frame.js';
import { ACCOUNT_CONTROL } from '../core/arena.js';
import { slotOf } from '../core/anno.js';
import { ETH_HEADER_LEN, ETH_SRC, ETHERTYPE_IPV6, writeEthernetHeader } from '../wire/ethernet.js';
import {
  emitNeighborAdvert,
  emitNeighborSolicit,
  emitRouterAdvert,
  Icmpv6View,
  NDP_NA_FLAG_OVERRIDE,
  NDP_NA_FLAG_ROUTER,
  NDP_NA_FLAG_SOLICITED,
  NDP_NEIGHBOR_ADVERT,
  NDP_NEIGHBOR_SOLICIT,
  NDP_OPT_SOURCE_LLADDR,
  NDP_OPT_TARGET_LLADDR,
  NDP_REDIRECT,
  NDP_ROUTER_ADVERT,
  NDP_ROUTER_SOLICIT,
  NdpOptionWalker,
  type RouterAdvertFields,
} from '../wire/icmpv6.js';
import { inPrefixIp6, IP6_WORDS, ip6Equals, ip6ToString, isLinkLocalIp6, isUnspecifiedIp6, multicastMacIp6, solicitedNodeIp6 } from '../wire/ip6.js';
import { IPPROTO_ICMPV6 } from '../wire/ipv6.js';
import { macToString, readMac } from '../wire/mac.js';
import { describePacket } from '../wire/describe.js';
import type { RouterIface } from './ifaces.js';
import { Ipv6InputCheck } from './ipv6-input.js';
import {
  ND_CONFIRM_TAKEOVER,
  ND_CREATE_PORT_LIMIT,
  ND_DELAY,
  ND_FAILED,
  ND_INCOMPLETE,
  ND_PROBE,
  ND_STALE,
  ND_STATE_NAMES,
  NeighborTable6,
  type Neighbor6Info,
} from './neighbors6.js';
import { InterfaceLink, OUT_IP } from './link.js';

const IN_WIRE = 0; // input 1: ip

export const NEIGHBOR6_CAPACITY = 1024;
/** RFC 4861 10: MIN_DELAY_BETWEEN_RAS, MAX_INITIAL_RTR_ADVERTISEMENTS, MAX_INITIAL_RTR_ADVERT_INTERVAL. */
const MIN_DELAY_BETWEEN_RAS_MS = 3000;
const INITIAL_RAS = 3;
const INITIAL_RA_INTERVAL_MS = 16_000;
const ALL_NODES = Uint32Array.of(0xff020000, 0, 0, 1);
const ALL_ROUTERS = Uint32Array.of(0xff020000, 0, 0, 2);

/** A prefix routed without NAT: the uplink takes its traffic and answers NDP for it. */
export interface RoutedPrefix {
  net: Uint32Array;
  prefixLen: number;
}

export interface GatewayInterface6Params {
  iface: RouterIface;
  /** Pool account of frames waiting for a neighbour, by ingress port (src/dataplane/build.ts). */
  queueAccounts: Int32Array;
  /** On the uplink: prefixes routed to the bridges without NAT (NDP proxy). */
  routed?: RoutedPrefix[];
}

export class GatewayInterface6 extends InterfaceLink {
  readonly kind = 'GatewayInterface6';
  readonly neigh: NeighborTable6;
  override counters = { nsSent: 0, naSent: 0, raSent: 0, rsReceived: 0 };
  private readonly routed: RoutedPrefix[];
  private readonly check = new Ipv6InputCheck();
  private readonly icmp = new Icmpv6View();
  private readonly options = new NdpOptionWalker();
  private readonly src = new Uint32Array(IP6_WORDS);
  private readonly dst = new Uint32Array(IP6_WORDS);
  private readonly target = new Uint32Array(IP6_WORDS);
  private readonly group = new Uint32Array(IP6_WORDS);
  private readonly ra: RouterAdvertFields | null;
  private lastRa = -Infinity;
  private nextRa = Infinity;
  private rasSent = 0;

  constructor(name: string, ctx: DataPlaneContext, p: GatewayInterface6Params) {
    super(name, ctx, ['wire', 'ip'], ['wire', 'ip', 'unreachable'], p.iface, p.queueAccounts, { failed: DROP_ND_FAILED, queueFull: DROP_ND_QUEUE_FULL });
    this.routed = p.iface.kind === 'uplink' ? (p.routed ?? []) : [];
    this.neigh = new NeighborTable6(NEIGHBOR6_CAPACITY);
    this.ra = this.raFields();
  }

  override config(): string {
    const f = this.iface;
    const a = f.address6 !== null ? `${ip6ToString(f.address6)}/${f.prefixLen6} ` : '';
    return `${a}${ip6ToString(f.linkLocal)} ${macToString(f.mac)} mtu ${f.mtu}${this.ra !== null ? `, RA every ${f.ra!.intervalSeconds} s` : ''}${this.routed.length > 0 ? `, NDP proxy for ${this.routed.map((r) => `${ip6ToString(r.net)}/${r.prefixLen}`).join(' ')}` : ''}`;
  }

  /** The router advertisement this interface sends (built once; only the destination changes). */
  private raFields(): RouterAdvertFields | null {
    const f = this.iface;
    if (f.ra === null || f.address6 === null || f.kind !== 'bridge') return null;
    const r = f.ra;
    return {
      src: f.linkLocal,
      dst: ALL_NODES,
      curHopLimit: 64,
      managed: false,
      other: false,
      routerLifetime: r.routerLifetime,
      reachableTime: 0,
      retransTimer: 0,
      sourceMac: f.mac,
      mtu: f.mtu,
      prefixes: [{ prefix: f.net6, prefixLength: f.prefixLen6, onLink: true, autonomous: f.prefixLen6 === 64, validLifetime: r.validLifetime, preferredLifetime: r.preferredLifetime }],
      rdnss: r.dns.length > 0 ? [{ lifetime: Math.max(3 * r.intervalSeconds, 600), servers: r.dns }] : [],
    };
  }

  push(input: number, off: number, len: number): void {
    if (input === IN_WIRE) this.fromWire(off, len);
    else this.sendIp(off, len);
  }

  /* ------------------------------------------------------------------ input */

  private fromWire(off: number, len: number): void {
    const b = this.ctx.u8;
    const e = off + VNET_HDR_LEN;
    const ip = e + ETH_HEADER_LEN;
    const bad = this.check.check(b, ip, len - ETH_HEADER_LEN);
    if (bad !== 0) return this.drop(bad);
    const v = this.check.ip;
    const w = this.check.walker;
    const multicastMac = (b[e] & 1) !== 0;
    const ndp = w.protocol === IPPROTO_ICMPV6 && !w.isFragment && w.offset + 1 <= ip + v.packetLength && isNdpType(b[w.offset]);
    if (v.dstIsMulticast) {
      if (!ndp || !this.groupIsOurs(v.getDst(this.dst))) return this.drop(DROP_IPV6_MULTICAST);
      return this.ndpInput(off, len);
    }
    if (multicastMac) return this.drop(DROP_IPV6_BAD_DEST);
    if (ndp) return this.ndpInput(off, len);
    if (isUnspecifiedIp6(v.getSrc(this.src))) return this.drop(DROP_IPV6_BAD_SOURCE);
    // On the uplink only our own addresses (and routed prefixes) are ours: the kernel shares the wire.
    if (this.iface.kind === 'uplink' && !this.acceptsOnUplink(v.getDst(this.dst))) return this.drop(DROP_UPLINK_NOT_OURS);
    const tracer = this.ctx.tracer;
    if (tracer.active) tracer.note(this.name, `IPv6 ${describePacket(b, ip)} hop limit ${v.hopLimit}${(b[off] & 1) !== 0 ? ' (partial checksum)' : ''}`);
    const anno = this.ctx.arena.anno;
    const slot = anno.begin(off, this.iface.id);
    anno.l4[slot] = w.offset - ip;
    anno.l4proto[slot] = w.protocol;
    this.out[OUT_IP].push(off, len);
  }

  /** Multicast groups the gateway listens to: all-nodes, all-routers (bridges), and the solicited-node groups of its addresses. */
  private groupIsOurs(g: Uint32Array): boolean {
    if (ip6Equals(g, ALL_NODES)) return true;
    if (ip6Equals(g, ALL_ROUTERS)) return this.iface.kind === 'bridge';
    const f = this.iface;
    if (ip6Equals(g, solicitedNodeIp6(f.linkLocal, this.group))) return true;
    if (f.address6 !== null && ip6Equals(g, solicitedNodeIp6(f.address6, this.group))) return true;
    // Routed prefixes on the uplink: any solicited-node group may be one of theirs (the target decides).
    return this.routed.length > 0 && g[0] === 0xff020000 && g[2] === 1 && g[3] >>> 24 === 0xff;
  }

  private acceptsOnUplink(a: Uint32Array): boolean {
    return this.iface.isOwn6(a) || this.isRouted(a);
  }

  private isRouted(a: ArrayLike<number>): boolean {
    const r = this.routed;
    for (let i = 0; i < r.length; i++) if (inPrefixIp6(a, r[i].net, r[i].prefixLen)) return true;
    return false;
  }

  /** An NDP message (checked chain; the upper layer at walker.offset). */
  private ndpInput(off: number, len: number): void {
    const b = this.ctx.u8;
    const ip = off + VNET_HDR_LEN + ETH_HEADER_LEN;
    const v = this.check.ip;
    const w = this.check.walker;
    const m = this.icmp.reset(b, w.offset, ip + v.packetLength - w.offset);
    let bad = m.checkLen();
    if (bad === 0) bad = m.checkNdp(v);
    if (bad === 0) bad = m.checkChecksum(ip);
    if (bad !== 0) return this.drop(bad);
    const type = m.type;
    if (type === NDP_ROUTER_ADVERT || type === NDP_REDIRECT) return this.drop(DROP_NDP_IGNORED);
    // Link-layer address options: on a bridge they must name the frame's source.
    const frameSrc = readMac(b, off + VNET_HDR_LEN + ETH_SRC);
    let lla = -1;
    const o = this.options.resetFrom(m);
    while (o.next()) {
      if (o.wellFormed && (o.type === NDP_OPT_SOURCE_LLADDR || o.type === NDP_OPT_TARGET_LLADDR)) lla = o.linkLayerAddress;
    }
    if (lla >= 0 && lla !== frameSrc && this.iface.kind === 'bridge') return this.drop(DROP_ND_LLA_MISMATCH);
    v.getSrc(this.src);
    if (type === NDP_ROUTER_SOLICIT) return this.routerSolicit(off, lla);
    if (type === NDP_NEIGHBOR_SOLICIT) return this.neighborSolicit(off, m, lla, frameSrc);
    if (type === NDP_NEIGHBOR_ADVERT) return this.neighborAdvert(off, m, lla);
  }

  private routerSolicit(off: number, lla: number): void {
    if (this.ra === null) return this.drop(DROP_NDP_IGNORED);
    this.counters.rsReceived++;
    const tracer = this.ctx.tracer;
    if (tracer.active) return tracer.note(this.name, 'router solicitation: router advertisement to ff02::1');
    if (lla >= 0 && !isUnspecifiedIp6(this.src)) this.learn(this.src, lla, false, off);
    const now = this.ctx.clock.now;
    if (now - this.lastRa >= MIN_DELAY_BETWEEN_RAS_MS) this.sendRa(now);
    else this.nextRa = Math.min(this.nextRa, this.lastRa + MIN_DELAY_BETWEEN_RAS_MS);
  }

  private neighborSolicit(off: number, m: Icmpv6View, lla: number, frameSrc: number): void {
    const t = m.getTarget(this.target);
    const f = this.iface;
    const own = f.isOwn6(t);
    const proxied = !own && this.isRouted(t);
    const tracer = this.ctx.tracer;
    if (!own && !proxied) {
      if (tracer.active) tracer.note(this.name, `neighbour solicitation for ${ip6ToString(t)}: not an address of this interface`);
      return this.drop(DROP_NDP_NOT_OURS);
    }
    const dad = isUnspecifiedIp6(this.src);
    if (tracer.active) return tracer.note(this.name, `neighbour solicitation for ${ip6ToString(t)}${proxied ? ' (NDP proxy)' : ''}: advertisement${dad ? ' to ff02::1 (address in use)' : ''}`);
    if (dad) {
      // Duplicate address detection for one of our addresses: defend it (RFC 4862 5.4.3).
      if (proxied) return;
      return this.sendNa(ALL_NODES, multicastMacIp6(ALL_NODES), t, NDP_NA_FLAG_ROUTER | NDP_NA_FLAG_OVERRIDE);
    }
    if (lla >= 0) {
      const i = this.learn(this.src, lla, false, off);
      if (i === ND_CONFIRM_TAKEOVER) return this.drop(DROP_ND_TAKEOVER);
    }
    // A proxy's advertisement never overrides the owner's (RFC 4861 7.2.8).
    const flags = NDP_NA_FLAG_ROUTER | NDP_NA_FLAG_SOLICITED | (proxied ? 0 : NDP_NA_FLAG_OVERRIDE);
    this.sendNa(this.src, lla >= 0 ? lla : frameSrc, t, flags);
  }

  private neighborAdvert(off: number, m: Icmpv6View, lla: number): void {
    const t = m.getTarget(this.target);
    const n = this.neigh;
    const tracer = this.ctx.tracer;
    const i = this.iface.isOwn6(t) ? -1 : n.find(t);
    if (i < 0) {
      if (tracer.active) tracer.note(this.name, `neighbour advertisement for ${ip6ToString(t)}: not asked for`);
      return this.drop(DROP_NDP_NOT_OURS);
    }
    if (tracer.active) return tracer.note(this.name, `neighbour advertisement for ${ip6ToString(t)}: ${ND_STATE_NAMES[n.states[i]]} entry confirmed`);
    // Without a target link-layer address only the reachability is confirmed.
    const mac = lla >= 0 ? lla : n.states[i] === ND_INCOMPLETE ? -1 : n.macs[i];
    if (mac < 0) return;
    const port = this.ctx.arena.anno.port[slotOf(off)];
    const r = n.confirm(t, mac, this.ctx.clock.now, m.solicited, m.override || lla < 0, m.isRouter, false, port);
    if (r === ND_CONFIRM_TAKEOVER) return this.drop(DROP_ND_TAKEOVER);
    if (r >= 0 && n.queueCount[r] > 0) this.flushNeighborQueue(r, n.macs[r]);
  }

  /** A link-layer address from an NS or RS: the neighbour is STALE until confirmed (RFC 4861 7.2.3). */
  private learn(a: Uint32Array, mac: number, solicited: boolean, off: number): number {
    if (!this.iface.onLink6(a)) return -1;
    const n = this.neigh;
    const i = n.confirm(a, mac, this.ctx.clock.now, solicited, true, false, true, this.ctx.arena.anno.port[slotOf(off)]);
    if (i >= 0 && n.queueCount[i] > 0) this.flushNeighborQueue(i, n.macs[i]);
    return i;
  }

  /* ----------------------------------------------------------------- output */

  /** Our source address toward an on-link address: link-local for link-local, else the global one. */
  private sourceFor(a: ArrayLike<number>): Uint32Array {
    const f = this.iface;
    return f.address6 !== null && !isLinkLocalIp6(a) ? f.address6 : f.linkLocal;
  }

  /** An IPv6 packet (frame at off, Ethernet header to be written) to anno.nextHop6. */
  private sendIp(off: number, len: number): void {
    const s = slotOf(off);
    const anno = this.ctx.arena.anno;
    const hops = anno.nextHop6;
    const at = s * IP6_WORDS;
    const e = off + VNET_HDR_LEN;
    const neigh = this.neigh;
    const now = this.ctx.clock.now;
    const tracer = this.ctx.tracer;
    const existed = tracer.active ? neigh.find(hops, at) >= 0 : true;
    const port = anno.port[s];
    const i = neigh.findOrCreate(hops, now, port, at);
    if (i < 0) return this.drop(i === ND_CREATE_PORT_LIMIT ? DROP_ND_PORT_LIMIT : DROP_ND_TABLE_FULL);
    const stateBefore = neigh.states[i];
    const updatedBefore = neigh.updated[i];
    const mac = neigh.resolved(i, now);
    if (tracer.active) {
      const after = neigh.states[i] !== stateBefore ? ` -> ${ND_STATE_NAMES[neigh.states[i]]}` : '';
      neigh.states[i] = stateBefore; // a trace leaves the NUD state as it found it (a use moves stale to delay)
      neigh.updated[i] = updatedBefore;
      tracer.note(this.name, `NDP ${ip6ToString(neigh.key(i))}: ${mac >= 0 ? `${macToString(mac)} (${ND_STATE_NAMES[stateBefore]}${after})` : `${ND_STATE_NAMES[stateBefore]}: ${stateBefore === ND_FAILED ? 'ICMPv6 address unreachable' : 'the packet would wait for a neighbour advertisement'}`}`);
      if (mac < 0 && stateBefore !== ND_FAILED) {
        if (!existed) neigh.remove(i); // leave no trace of the trace
        return;
      }
    }
    if (mac >= 0) {
      writeEthernetHeader(this.ctx.u8, e, mac, this.iface.mac, ETHERTYPE_IPV6);
      return this.transmit(off, len);
    }
    if (neigh.states[i] === ND_FAILED) return this.unreachable(off, len);
    // INCOMPLETE: a copy waits for the neighbour's answer, in a slot of its port's account.
    const slot = this.park(i, off, len, port);
    if (slot >= 0) writeEthernetHeader(this.ctx.u8, slot + VNET_HDR_LEN, 0, this.iface.mac, ETHERTYPE_IPV6);
    if (neigh.probeDue(i, now)) this.solicit(i, false);
  }


  /** A pool slot for a frame tapbridge builds (no offload metadata), or -1 (counted). */
  private newFrame(): number {
    const off = this.ctx.arena.alloc(ACCOUNT_CONTROL);
    if (off < 0) {
      this.drop(DROP_NO_FRAME_SLOT);
      return -1;
    }
    this.ctx.u8.fill(0, off, off + VNET_HDR_LEN);
    return off;
  }

  private finish(off: number, ethDst: number, ipLen: number): void {
    writeEthernetHeader(this.ctx.u8, off + VNET_HDR_LEN, ethDst, this.iface.mac, ETHERTYPE_IPV6);
    this.transmit(off, ETH_HEADER_LEN + ipLen);
    this.ctx.arena.release(off);
  }

  /** Neighbour solicitation for entry i: to its solicited-node group, or unicast (a NUD probe). */
  private solicit(i: number, unicast: boolean): void {
    const off = this.newFrame();
    if (off < 0) return;
    const n = this.neigh;
    const t = this.target;
    t.set(n.key(i));
    const ip = off + VNET_HDR_LEN + ETH_HEADER_LEN;
    const dst = unicast ? t : solicitedNodeIp6(t, this.group);
    const len = emitNeighborSolicit(this.ctx.u8, ip, this.sourceFor(t), dst, t, this.iface.mac);
    this.counters.nsSent++;
    this.finish(off, unicast ? n.macs[i] : multicastMacIp6(dst), len);
  }

  /** An advertisement for target: from the target itself when it is ours (as Linux does; some tools match on it), else from our address toward dst. */
  private sendNa(dst: ArrayLike<number>, ethDst: number, target: ArrayLike<number>, flags: number): void {
    const off = this.newFrame();
    if (off < 0) return;
    const ip = off + VNET_HDR_LEN + ETH_HEADER_LEN;
    const src = this.iface.isOwn6(target) ? target : this.sourceFor(dst);
    const len = emitNeighborAdvert(this.ctx.u8, ip, src, dst, target, flags, this.iface.mac);
    this.counters.naSent++;
    this.finish(off, ethDst, len);
  }

  private sendRa(now: number): void {
    const ra = this.ra;
    if (ra === null) return;
    const off = this.newFrame();
    if (off < 0) return;
    ra.mtu = this.iface.mtu;
    const len = emitRouterAdvert(ra, this.ctx.u8, off + VNET_HDR_LEN + ETH_HEADER_LEN);
    this.counters.raSent++;
    this.rasSent++;
    this.lastRa = now;
    const r = this.iface.ra!;
    this.nextRa = now + (this.rasSent < INITIAL_RAS ? Math.min(INITIAL_RA_INTERVAL_MS, r.intervalSeconds * 1000) : r.intervalSeconds * 1000);
    this.finish(off, multicastMacIp6(ALL_NODES), len);
  }

  /** At start: an unsolicited advertisement of each address, and the first router advertisement. */
  announce(): void {
    const f = this.iface;
    const all = multicastMacIp6(ALL_NODES);
    this.sendNa(ALL_NODES, all, f.linkLocal, NDP_NA_FLAG_ROUTER | NDP_NA_FLAG_OVERRIDE);
    if (f.address6 !== null) this.sendNa(ALL_NODES, all, f.address6, NDP_NA_FLAG_ROUTER | NDP_NA_FLAG_OVERRIDE);
    this.sendRa(this.ctx.clock.now);
  }

  /* ------------------------------------------------------------------ timers */

  override tick(now: number): void {
    if (now >= this.nextRa) this.sendRa(now);
    const n = this.neigh;
    const t = n.timing;
    for (let i = 0; i < n.slots; i++) {
      const s = n.states[i];
      if (s === ND_INCOMPLETE || s === ND_PROBE) {
        if (now - n.lastProbe[i] < t.retransMs) continue;
        if (n.probes[i] >= t.maxProbes) this.failNeighbor(i, now);
        else if (n.probeDue(i, now)) this.solicit(i, s === ND_PROBE);
      } else if (s === ND_DELAY) {
        if (now - n.updated[i] >= t.delayMs) {
          n.startProbe(i, now);
          n.probeDue(i, now);
          this.solicit(i, true);
        }
      } else if ((s === ND_FAILED && now - n.updated[i] > t.failedHoldMs) || (s === ND_STALE && now - n.updated[i] > t.staleMs)) {
        n.remove(i);
        i--; // backward shift may have moved an entry into i
      }
    }
  }


  /* -------------------------------------------------------- control plane */

  neighbors(): (Neighbor6Info & { iface: string; macText: string })[] {
    return this.neigh.entries(this.ctx.clock.now).map((e) => ({ ...e, iface: this.iface.name, macText: e.mac === 0 && e.state === 'incomplete' ? '-' : macToString(e.mac) }));
  }
}

function isNdpType(t: number): boolean {
  return t >= NDP_ROUTER_SOLICIT && t <= NDP_REDIRECT;
}

