/*
 * IPv6 router element (router6): the forwarding decision for IPv6, beside the IPv4 router.
 *
 * Ports:
 *   input  IFACE (one per interface)  checked IPv6 packets that entered through IFACE (after
 *                                     nat6/pre when NAT66 is on)
 *   input  `local`                    packets tapbridge itself sends (echo replies, resets,
 *                                     ICMPv6 errors, with their source chosen): routed without
 *                                     a hop-limit decrement; a link-local destination leaves
 *                                     through anno.outIf (the interface its sender named)
 *   output IFACE                      forwarded packets, anno.outIf and anno.nextHop6 set
 *   output `local`                    packets for one of tapbridge's own addresses
 *   output `hop-limit` | `no-route` | `too-big`
 *                                     packets to answer with an ICMPv6 error (too-big carries
 *                                     the egress MTU in anno.param)
 * Does: source validation (never one of tapbridge's addresses; rp_filter: reachable back
 *   through the ingress interface), link-local scope (a link-local destination that is not
 *   ours, or a link-local source, is never forwarded), longest-prefix lookup (routes6.ts),
 *   bridge isolation at L3, hop limit check and decrement (no header checksum in IPv6), and
 *   the MTU check: IPv6 routers never fragment, so anything larger than the egress MTU gets
 *   Packet Too Big; GSO super-frames are checked per segment (anno.l4 locates the TCP header).
 * Counters: drops ipv6_bad_source, ipv6_rp_filter, ipv6_beyond_scope, ipv6_no_route,
 *   hop_limit_exceeded, ipv6_too_big, bridge_isolation on the ingress interface's record;
 *   element counters forwarded, localDelivered, localSent, localUnroutable.
 */
import { slotOf } from '../core/anno.js';
import {
  DROP_BRIDGE_ISOLATION,
  DROP_HOP_LIMIT,
  DROP_IPV6_BAD_SOURCE,
  DROP_IPV6_BEYOND_SCOPE,
  DROP_IPV6_NO_ROUTE,
  DROP_IPV6_RP_FILTER,
  DROP_IPV6_TOO_BIG,
} from '../core/drops.js';
import { Element, type DataPlaneContext } from '../core/element.js';
import { VNET_GSO_NONE, VNET_GSO_SIZE, VNET_GSO_TYPE, VNET_HDR_LEN } from '../core/frame.js';
import { ETH_HEADER_LEN } from '../wire/ethernet.js';
import { IP6_WORDS, ip6ToString, isLinkLocalIp6 } from '../wire/ip6.js';
import { IPPROTO_TCP } from '../wire/ipv4.js';
import { Ipv6View } from '../wire/ipv6.js';
import type { InterfaceTable } from './ifaces.js';
import type { RouteTable6 } from './routes6.js';

export const OUT_LOCAL6_NAME = 'local';
export const ERROR6_OUTPUTS = ['hop-limit', 'no-route', 'too-big'] as const;
const UDP_HEADER_LEN = 8;

export interface Router6Params {
  ifaces: InterfaceTable;
  routes: RouteTable6;
  /** Forward between two bridges (default false: isolated, like Docker networks). */
  forwardBetweenBridges?: boolean;
  /** Reverse-path source validation (default true). */
  rpFilter?: boolean;
}

export class Router6 extends Element {
  readonly kind = 'Router6';
  override counters = { forwarded: 0, localDelivered: 0, localSent: 0, localUnroutable: 0 };
  private readonly ifaces: InterfaceTable;
  private readonly routes: RouteTable6;
  private readonly isolateBridges: boolean;
  private readonly rpFilter: boolean;
  private readonly ip = new Ipv6View();
  private readonly src = new Uint32Array(IP6_WORDS);
  private readonly dst = new Uint32Array(IP6_WORDS);
  private readonly inLocal: number;
  private readonly outLocal: number;
  private readonly outHopLimit: number;
  private readonly outNoRoute: number;
  private readonly outTooBig: number;

  constructor(name: string, ctx: DataPlaneContext, p: Router6Params) {
    const names = p.ifaces.list.map((f) => f.name);
    super(name, ctx, [...names, OUT_LOCAL6_NAME], [...names, OUT_LOCAL6_NAME, ...ERROR6_OUTPUTS]);
    this.ifaces = p.ifaces;
    this.routes = p.routes;
    this.isolateBridges = p.forwardBetweenBridges !== true;
    this.rpFilter = p.rpFilter !== false;
    this.inLocal = names.length;
    this.outLocal = names.length;
    this.outHopLimit = names.length + 1;
    this.outNoRoute = names.length + 2;
    this.outTooBig = names.length + 3;
  }

  override config(): string {
    return `${this.routes.size} routes${this.isolateBridges ? ', bridges isolated' : ''}${this.rpFilter ? ', rp_filter' : ''}`;
  }

  push(input: number, off: number, len: number): void {
    if (input === this.inLocal) this.sendLocal(off, len);
    else this.forward(input, off, len);
  }

  private forward(inIf: number, off: number, len: number): void {
    const b = this.ctx.u8;
    const v = this.ip.reset(b, off + VNET_HDR_LEN + ETH_HEADER_LEN, len - ETH_HEADER_LEN);
    const ifaces = this.ifaces;
    const ingress = ifaces.list[inIf];
    const tracer = this.ctx.tracer;
    const src = v.getSrc(this.src);
    const dst = v.getDst(this.dst);
    if (ifaces.local6(dst) >= 0) {
      // A link-local address is ours only on the interface it belongs to.
      if (isLinkLocalIp6(dst) && !ingress.isOwn6(dst)) return ingress.record.countDrop(DROP_IPV6_BEYOND_SCOPE);
      if (tracer.active) tracer.note(this.name, `${ip6ToString(dst)} is an address of tapbridge: local delivery`);
      this.counters.localDelivered++;
      return this.out[this.outLocal].push(off, len);
    }
    if (ifaces.local6(src) >= 0) return ingress.record.countDrop(DROP_IPV6_BAD_SOURCE);
    if (isLinkLocalIp6(dst) || isLinkLocalIp6(src)) {
      if (tracer.active) tracer.note(this.name, 'link-local address: never forwarded');
      return ingress.record.countDrop(DROP_IPV6_BEYOND_SCOPE);
    }
    if (this.rpFilter && this.routes.egress(src) !== inIf) {
      if (tracer.active) tracer.note(this.name, `source ${ip6ToString(src)} is not reachable back through ${ingress.name}: dropped (rp_filter)`);
      return ingress.record.countDrop(DROP_IPV6_RP_FILTER);
    }
    const out = this.routes.lookup(dst);
    if (tracer.active) tracer.note(this.name, out < 0 ? `no route to ${ip6ToString(dst)}: ICMPv6 no route` : this.routes.describe(dst));
    if (out < 0) {
      ingress.record.countDrop(DROP_IPV6_NO_ROUTE);
      return this.out[this.outNoRoute].push(off, len);
    }
    const egress = ifaces.list[out];
    if (this.isolateBridges && out !== inIf && egress.kind === 'bridge' && ingress.kind === 'bridge') {
      if (tracer.active) tracer.note(this.name, `${ingress.name} -> ${egress.name}: bridges are isolated at L3`);
      return ingress.record.countDrop(DROP_BRIDGE_ISOLATION);
    }
    const hopLimit = v.hopLimit;
    if (hopLimit <= 1) {
      if (tracer.active) tracer.note(this.name, `hop limit ${hopLimit} expires here: ICMPv6 time exceeded to the source`);
      ingress.record.countDrop(DROP_HOP_LIMIT);
      return this.out[this.outHopLimit].push(off, len);
    }
    const total = v.packetLength;
    const s = slotOf(off);
    const anno = this.ctx.arena.anno;
    const onWire = b[off + VNET_GSO_TYPE] !== VNET_GSO_NONE ? this.gsoSegmentLen(off, s, total) : total;
    if (onWire > egress.mtu) {
      if (tracer.active) tracer.note(this.name, `${onWire} bytes > MTU ${egress.mtu}: ICMPv6 packet too big (IPv6 routers never fragment)`);
      ingress.record.countDrop(DROP_IPV6_TOO_BIG);
      anno.param[s] = egress.mtu;
      return this.out[this.outTooBig].push(off, len);
    }
    v.decrementHopLimit();
    anno.outIf[s] = out;
    anno.nextHop6.set(this.routes.nextHop, s * IP6_WORDS);
    if (tracer.active) tracer.note(this.name, `hop limit ${hopLimit} -> ${hopLimit - 1}; out of ${egress.name} (MTU ${egress.mtu}) to next hop ${ip6ToString(this.routes.nextHop)}`);
    this.counters.forwarded++;
    this.out[out].push(off, ETH_HEADER_LEN + total); // without Ethernet padding
  }

  /** IPv6 length of each segment a GSO frame becomes: headers up to L4 + L4 header + gso_size. */
  private gsoSegmentLen(off: number, s: number, total: number): number {
    const b = this.ctx.u8;
    const anno = this.ctx.arena.anno;
    const l4 = anno.l4[s];
    const ip = off + VNET_HDR_LEN + ETH_HEADER_LEN;
    const l4hl = anno.l4proto[s] === IPPROTO_TCP ? (b[ip + l4 + 12] >>> 4) << 2 : UDP_HEADER_LEN;
    const gsoSize = b[off + VNET_GSO_SIZE] | (b[off + VNET_GSO_SIZE + 1] << 8);
    return Math.min(total, l4 + l4hl + gsoSize);
  }

  /** A packet tapbridge sends itself (source already chosen): route it. */
  private sendLocal(off: number, len: number): void {
    const v = this.ip.reset(this.ctx.u8, off + VNET_HDR_LEN + ETH_HEADER_LEN, len - ETH_HEADER_LEN);
    const dst = v.getDst(this.dst);
    const s = slotOf(off);
    const anno = this.ctx.arena.anno;
    let out: number;
    if (isLinkLocalIp6(dst)) {
      out = anno.outIf[s];
      anno.nextHop6.set(dst, s * IP6_WORDS);
    } else {
      out = this.routes.lookup(dst);
      if (out >= 0) anno.nextHop6.set(this.routes.nextHop, s * IP6_WORDS);
    }
    if (out < 0) {
      this.counters.localUnroutable++;
      return;
    }
    anno.outIf[s] = out;
    this.counters.localSent++;
    this.out[out].push(off, len);
  }
}
