/*
 * ICMPv6 error element (icmp6/NAME, one per kind of error): builds the error about the
 * packet it receives and sends it back toward that packet's source (RFC 4443).
 *
 * Ports:  input `in`: the offending packet (lent; whoever sent it here counted its drop);
 *         output `out`: the error, to router6's `local` input (through nat6/local when NAT66
 *         is on, which puts back the addresses the quoted packet had before translation).
 * Config: type, code (3/0 hop limit exceeded, 1/0 no route, 1/3 address unreachable, 1/4
 *         port unreachable, 2/0 packet too big with the MTU from anno.param, 4/0 and 4/1
 *         parameter problem with the pointer from anno.param).
 * Does:   quotes as much of the packet as fits in the minimum MTU (1280 bytes); never
 *         answers an ICMPv6 error, a packet from an unspecified or multicast source, or one
 *         to a multicast destination (except packet too big; RFC 4443 2.4 e); rate-limited
 *         (error-budget.ts, its own budget beside IPv4's). The source is the address of the
 *         interface the route back leaves through (its link-local address toward a
 *         link-local source, which is answered through the interface the packet came in on).
 * Counters: sent, suppressed, rateLimited, noSlot (also no_frame_slot on the ingress
 *         interface's record).
 */
import { slotOf } from '../core/anno.js';
import { ACCOUNT_CONTROL } from '../core/arena.js';
import { DROP_NO_FRAME_SLOT } from '../core/drops.js';
import { Element, type DataPlaneContext } from '../core/element.js';
import { VNET_HDR_LEN } from '../core/frame.js';
import { ETH_HEADER_LEN } from '../wire/ethernet.js';
import { emitIcmpv6Error, ICMPV6_PACKET_TOO_BIG, ICMPV6_PARAM_PROBLEM, icmpv6ErrorAllowed } from '../wire/icmpv6.js';
import { IP6_WORDS, ip6ToString, isLinkLocalIp6 } from '../wire/ip6.js';
import { Ipv6ExtWalker, Ipv6View } from '../wire/ipv6.js';
import type { ErrorBudget } from './error-budget.js';
import type { InterfaceTable } from './ifaces.js';
import type { RouteTable6 } from './routes6.js';

export interface Icmp6ErrorParams {
  type: number;
  code: number;
  ifaces: InterfaceTable;
  routes: RouteTable6;
  budget: ErrorBudget;
}

export class Icmp6Error extends Element {
  readonly kind = 'Icmp6Error';
  override counters = { sent: 0, suppressed: 0, rateLimited: 0, noSlot: 0 };
  private readonly ip = new Ipv6View();
  private readonly walker = new Ipv6ExtWalker();
  private readonly peer = new Uint32Array(IP6_WORDS);

  constructor(
    name: string,
    ctx: DataPlaneContext,
    private readonly p: Icmp6ErrorParams,
  ) {
    super(name, ctx, ['in'], ['out']);
  }

  override config(): string {
    return `type ${this.p.type} code ${this.p.code}`;
  }

  push(_input: number, off: number, len: number): void {
    const b = this.ctx.u8;
    const ipOff = off + VNET_HDR_LEN + ETH_HEADER_LEN;
    const v = this.ip.reset(b, ipOff, len - ETH_HEADER_LEN);
    const { type, code } = this.p;
    const quoted = Math.min(v.packetLength, len - ETH_HEADER_LEN);
    this.walker.walk(b, ipOff, quoted);
    if (!icmpv6ErrorAllowed(v, this.walker, type, code)) {
      this.counters.suppressed++;
      return;
    }
    if (!this.p.budget.take()) {
      this.counters.rateLimited++;
      return;
    }
    const arena = this.ctx.arena;
    const anno = arena.anno;
    const s0 = slotOf(off);
    const inIf = anno.inIf[s0];
    const slot = arena.alloc(ACCOUNT_CONTROL);
    if (slot < 0) {
      this.counters.noSlot++;
      if (inIf >= 0) this.p.ifaces.list[inIf].record.countDrop(DROP_NO_FRAME_SLOT);
      return;
    }
    // The way back: toward a link-local source, the interface the packet came in on.
    const peer = v.getSrc(this.peer);
    const back = isLinkLocalIp6(peer) ? inIf : this.p.routes.egress(peer);
    const via = this.p.ifaces.list[back >= 0 ? back : Math.max(inIf, 0)];
    const src = via.address6 !== null && !isLinkLocalIp6(peer) ? via.address6 : via.linkLocal;
    const rest = type === ICMPV6_PACKET_TOO_BIG || type === ICMPV6_PARAM_PROBLEM ? anno.param[s0] >>> 0 : 0;
    b.fill(0, slot, slot + VNET_HDR_LEN + ETH_HEADER_LEN);
    const n = emitIcmpv6Error(b, slot + VNET_HDR_LEN + ETH_HEADER_LEN, src, type, code, rest, b, ipOff, quoted);
    const s = anno.begin(slot, inIf);
    anno.outIf[s] = back >= 0 ? back : inIf;
    anno.related[s] = anno.flow[s0];
    this.counters.sent++;
    if (this.ctx.tracer.active) this.ctx.tracer.note(this.name, `ICMPv6 type ${type} code ${code} to ${ip6ToString(peer)}`);
    this.out[0].push(slot, ETH_HEADER_LEN + n);
    arena.release(slot);
  }
}
