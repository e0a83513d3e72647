/*
 * Router element (router): the IPv4 forwarding decision for every router interface.
 *
 * Ports:
 *   input  IFACE (one per interface)  checked IPv4 packets that entered through IFACE (after
 *                                     nat/pre when NAT is on)
 *   input  `local`                    packets tapbridge itself sends (echo replies, resets,
 *                                     ICMP errors): routed without a TTL decrement; a source
 *                                     of 0.0.0.0 becomes the egress interface's address
 *   output IFACE                      forwarded packets, anno.outIf and anno.nextHop set
 *   output `local`                    packets for one of tapbridge's own addresses
 *   output `ttl-expired` | `no-route` | `too-big`
 *                                     packets to answer with an ICMP error (too-big carries
 *                                     the egress MTU in anno.param)
 * Does: source validation (no source that is tapbridge's own, rp_filter: the source must be
 *   reachable back through the ingress interface), longest-prefix route lookup (routes.ts),
 *   bridge isolation at L3 (like Docker
 *   networks, no forwarding between two bridges), TTL check and decrement, the DF/MTU check
 *   (GSO super-frames are checked per segment; non-DF packets larger than the MTU are
 *   fragmented after nat/post by frag/IFACE).
 * Counters: drops ipv4_bad_source, ipv4_rp_filter, no_route, ttl_exceeded, mtu_exceeded, bridge_isolation on the ingress
 *   interface's record; element counters forwarded, localDelivered, localSent,
 *   localUnroutable.
 */
import { DROP_BAD_SOURCE, DROP_BRIDGE_ISOLATION, DROP_MTU_EXCEEDED, DROP_NO_ROUTE, DROP_RP_FILTER, DROP_TTL_EXCEEDED } from '../core/drops.js';
import { Element, type DataPlaneContext } from '../core/element.js';
import { VNET_GSO_NONE, VNET_GSO_SIZE, VNET_GSO_TYPE, VNET_HDR_LEN } from '../core/frame.js';
import { slotOf } from '../core/anno.js';
import { ETH_HEADER_LEN } from '../wire/ethernet.js';
import { ip4ToString } from '../wire/ip4.js';
import { IPPROTO_TCP, Ipv4View } from '../wire/ipv4.js';
import type { InterfaceTable } from './ifaces.js';
import type { RouteTable } from './routes.js';

export const OUT_LOCAL_NAME = 'local';
export const ERROR_OUTPUTS = ['ttl-expired', 'no-route', 'too-big'] as const;

export interface RouterParams {
  ifaces: InterfaceTable;
  routes: RouteTable;
  /** Forward between two bridges (default false: isolated, like Docker networks). */
  forwardBetweenBridges?: boolean;
  /** Reverse-path source validation (default true). */
  rpFilter?: boolean;
}

export class Router extends Element {
  readonly kind = 'Router';
  override counters = { forwarded: 0, localDelivered: 0, localSent: 0, localUnroutable: 0 };
  private readonly ifaces: InterfaceTable;
  private readonly routes: RouteTable;
  private readonly isolateBridges: boolean;
  private readonly rpFilter: boolean;
  private readonly ip = new Ipv4View();
  private readonly inLocal: number;
  private readonly outLocal: number;
  private readonly outTtl: number;
  private readonly outNoRoute: number;
  private readonly outTooBig: number;

  constructor(name: string, ctx: DataPlaneContext, p: RouterParams) {
    const names = p.ifaces.list.map((f) => f.name);
    super(name, ctx, [...names, OUT_LOCAL_NAME], [...names, OUT_LOCAL_NAME, ...ERROR_OUTPUTS]);
    this.ifaces = p.ifaces;
    this.routes = p.routes;
    this.isolateBridges = p.forwardBetweenBridges !== true;
    this.rpFilter = p.rpFilter !== false;
    this.inLocal = names.length;
    this.outLocal = names.length;
    this.outTtl = names.length + 1;
    this.outNoRoute = names.length + 2;
    this.outTooBig = names.length + 3;
  }

  override config(): string {
    return `${this.ifaces.list.length} interfaces${this.isolateBridges ? ', bridges isolated' : ''}${this.rpFilter ? ', rp_filter' : ''}`;
  }

  push(input: number, off: number, len: number): void {
    if (input === this.inLocal) this.sendLocal(off, len);
    else this.forward(input, off, len);
  }

  private forward(inIf: number, off: number, len: number): void {
    const b = this.ctx.u8;
    const ipOff = off + VNET_HDR_LEN + ETH_HEADER_LEN;
    const v = this.ip.reset(b, ipOff, len - ETH_HEADER_LEN);
    const ingress = this.ifaces.list[inIf];
    const tracer = this.ctx.tracer;
    // Source validation (martians, rp_filter): never our own address, and reachable back
    // through the interface it came in on (another bridge's subnet is not).
    const src = v.src;
    if (this.ifaces.local(src) >= 0) return ingress.record.countDrop(DROP_BAD_SOURCE);
    if (this.rpFilter && this.routes.lookup(src) !== inIf) {
      if (tracer.active) tracer.note(this.name, `source ${ip4ToString(src)} is not reachable back through ${ingress.name}: dropped (rp_filter)`);
      return ingress.record.countDrop(DROP_RP_FILTER);
    }
    const dst = v.dst;
    if (this.ifaces.local(dst) >= 0) {
      if (tracer.active) tracer.note(this.name, `${ip4ToString(dst)} is an address of tapbridge: local delivery`);
      this.counters.localDelivered++;
      return this.out[this.outLocal].push(off, len);
    }
    const out = this.routes.lookup(dst);
    if (tracer.active) tracer.note(this.name, out < 0 ? `no route to ${ip4ToString(dst)}: ICMP net unreachable` : this.routes.describe(dst, out));
    if (out < 0) {
      ingress.record.countDrop(DROP_NO_ROUTE);
      return this.out[this.outNoRoute].push(off, len);
    }
    const egress = this.ifaces.list[out];
    if (this.isolateBridges && out !== inIf && egress.kind === 'bridge' && ingress.kind === 'bridge') {
      if (tracer.active) tracer.note(this.name, `${ingress.name} -> ${egress.name}: bridges are isolated at L3`);
      return ingress.record.countDrop(DROP_BRIDGE_ISOLATION);
    }
    const ttl = v.ttl;
    if (ttl <= 1) {
      if (tracer.active) tracer.note(this.name, `TTL ${ttl} expires here: ICMP time exceeded to the source`);
      ingress.record.countDrop(DROP_TTL_EXCEEDED);
      return this.out[this.outTtl].push(off, len);
    }
    const total = v.totalLength;
    const gso = b[off + VNET_GSO_TYPE] !== VNET_GSO_NONE;
    const onWire = gso ? this.gsoSegmentLen(off, v) : total;
    if (onWire > egress.mtu && (v.dontFragment || gso)) {
      if (tracer.active) tracer.note(this.name, `${onWire} bytes > MTU ${egress.mtu} with DF: ICMP fragmentation needed`);
      ingress.record.countDrop(DROP_MTU_EXCEEDED);
      this.ctx.arena.anno.param[slotOf(off)] = egress.mtu;
      return this.out[this.outTooBig].push(off, len);
    }
    v.decrementTtl();
    const s = slotOf(off);
    const anno = this.ctx.arena.anno;
    anno.outIf[s] = out;
    anno.nextHop[s] = this.routes.nextHop;
    if (tracer.active) tracer.note(this.name, `TTL ${ttl} -> ${ttl - 1}; out of ${egress.name} (MTU ${egress.mtu}) to next hop ${ip4ToString(this.routes.nextHop)}`);
    this.counters.forwarded++;
    this.out[out].push(off, ETH_HEADER_LEN + total); // without Ethernet padding
  }

  /**
   * IP length of each segment a GSO frame becomes: IP header + L4 header + gso_size.
   * (virtio's hdr_len is not used: TAPs report the skb's linear length there.)
   */
  private gsoSegmentLen(off: number, v: Ipv4View): number {
    const b = this.ctx.u8;
    const l4 = v.payloadOffset;
    const l4hl = v.protocol === IPPROTO_TCP ? (b[l4 + 12] >>> 4) << 2 : 8;
    const gsoSize = b[off + VNET_GSO_SIZE] | (b[off + VNET_GSO_SIZE + 1] << 8);
    return Math.min(v.totalLength, v.headerLen + l4hl + gsoSize);
  }

  /** A packet tapbridge sends itself: route it; pick its source address when it has none. */
  private sendLocal(off: number, len: number): void {
    const v = this.ip.reset(this.ctx.u8, off + VNET_HDR_LEN + ETH_HEADER_LEN, len - ETH_HEADER_LEN);
    const out = this.routes.lookup(v.dst);
    if (out < 0) {
      this.counters.localUnroutable++;
      return;
    }
    if (v.src === 0) {
      v.src = this.ifaces.list[out].address;
      v.fillChecksum();
    }
    const s = slotOf(off);
    const anno = this.ctx.arena.anno;
    anno.outIf[s] = out;
    anno.nextHop[s] = this.routes.nextHop;
    this.counters.localSent++;
    this.out[out].push(off, len);
  }
}
