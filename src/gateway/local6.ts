/*
 * IPv6 local delivery element (local6): packets for one of tapbridge's own IPv6 addresses.
 *
 * Ports:
 *   input  `in`                 packets router6 found addressed to tapbridge
 *   output `reply`              echo replies (built in place) and TCP resets (built in a pool
 *                               slot), to router6's `local` input
 *   output `port-unreachable`   UDP to a tapbridge address (nothing listens)
 *   output `unknown-header`     an upper layer nothing here speaks (parameter problem code 1)
 *   output `bad-header`         a routing header with segments left (parameter problem code
 *                               0); for both anno.param holds the pointer
 * Does: answers ICMPv6 echo requests (extension headers are not echoed); answers TCP to
 *   closed ports with RST (never a reset to a reset), rate-limited with the ICMPv6 errors;
 *   drops fragments (no reassembly) and anything whose checksum is wrong (a partial, not yet
 *   summed one is taken). A reply to a link-local address leaves through the interface the
 *   request came in on (anno.outIf).
 * Counters: drops icmpv6_*, tcp_bad_csum, udp_bad_csum, local_icmp_ignored,
 *   local_proto_unreachable, ipv6_local_bad_header on the ingress interface's record; element
 *   counters echoReplies, resetsSent.
 */
import { slotOf } from '../core/anno.js';
import { ACCOUNT_CONTROL } from '../core/arena.js';
import { DROP_IPV6_LOCAL_HEADER, DROP_LOCAL_ICMP, DROP_LOCAL_UNSUPPORTED, DROP_NO_FRAME_SLOT } from '../core/drops.js';
import { DROP_TCP_BAD_CSUM, DROP_UDP_BAD_CSUM } from '../wire/drop.js';
import { Element, type DataPlaneContext } from '../core/element.js';
import { VNET_F_NEEDS_CSUM, VNET_FLAGS, VNET_HDR_LEN } from '../core/frame.js';
import { fillL4Checksum6, verifyL4Checksum6 } from '../wire/checksum.js';
import { ETH_HEADER_LEN } from '../wire/ethernet.js';
import { emitEchoReply, ICMPV6_ECHO_REQUEST, Icmpv6View } from '../wire/icmpv6.js';
import { IP6_WORDS } from '../wire/ip6.js';
import { IPPROTO_TCP, IPPROTO_UDP } from '../wire/ipv4.js';
import {
  IPPROTO_FRAGMENT,
  IPPROTO_ICMPV6,
  IPPROTO_NONE,
  IPPROTO_ROUTING,
  IPV6_EXT_LEN,
  IPV6_EXT_UNIT,
  IPV6_FRAG_HEADER_LEN,
  IPV6_HEADER_LEN,
  IPV6_NEXT_HEADER,
  IPV6_RH_SEGMENTS_LEFT,
  Ipv6ExtWalker,
  Ipv6View,
  writeIpv6Header,
} from '../wire/ipv6.js';
import { TCP_FLAG_RST, TCP_MIN_HEADER_LEN, TcpView } from '../wire/tcp.js';
import type { ErrorBudget } from './error-budget.js';
import type { InterfaceTable } from './ifaces.js';
import { fillTcpReset } from './tcp-reset.js';

const OUT_REPLY = 0;
const OUT_PORT_UNREACHABLE = 1;
const OUT_UNKNOWN_HEADER = 2;
const OUT_BAD_HEADER = 3;

export class LocalDelivery6 extends Element {
  readonly kind = 'LocalDelivery6';
  override counters = { echoReplies: 0, resetsSent: 0 };
  private readonly ip = new Ipv6View();
  private readonly walker = new Ipv6ExtWalker();
  private readonly icmp = new Icmpv6View();
  private readonly tcp = new TcpView();
  private readonly rstTcp = new TcpView();
  private readonly ours = new Uint32Array(IP6_WORDS);
  private readonly peer = new Uint32Array(IP6_WORDS);

  constructor(
    name: string,
    ctx: DataPlaneContext,
    private readonly p: { ifaces: InterfaceTable; budget: ErrorBudget },
  ) {
    super(name, ctx, ['in'], ['reply', 'port-unreachable', 'unknown-header', 'bad-header']);
  }

  private drop(off: number, reason: number): void {
    const inIf = this.ctx.arena.anno.inIf[slotOf(off)];
    if (inIf >= 0) this.p.ifaces.list[inIf].record.countDrop(reason);
  }

  push(_input: number, off: number, len: number): void {
    const b = this.ctx.u8;
    const ipOff = off + VNET_HDR_LEN + ETH_HEADER_LEN;
    const v = this.ip.reset(b, ipOff, len - ETH_HEADER_LEN);
    const w = this.walker;
    if (w.walk(b, ipOff, v.packetLength) !== 0 || w.isFragment) return this.drop(off, DROP_LOCAL_UNSUPPORTED);
    const tracer = this.ctx.tracer;
    const anno = this.ctx.arena.anno;
    if (w.routingType >= 0 && w.segmentsLeft > 0) {
      // RFC 8200 4.4: we are the destination with segments left and route nothing further.
      this.drop(off, DROP_IPV6_LOCAL_HEADER);
      anno.param[slotOf(off)] = this.routingHeaderPointer(ipOff);
      return this.out[OUT_BAD_HEADER].push(off, len);
    }
    const proto = w.protocol;
    const l4len = ipOff + v.packetLength - w.offset;
    const partial = (b[off + VNET_FLAGS] & VNET_F_NEEDS_CSUM) !== 0;
    if (proto === IPPROTO_ICMPV6) return this.icmpInput(off, ipOff, w.offset, l4len, partial);
    if ((proto === IPPROTO_TCP || proto === IPPROTO_UDP) && !partial && !verifyL4Checksum6(b, ipOff, proto, w.offset, l4len))
      return this.drop(off, proto === IPPROTO_TCP ? DROP_TCP_BAD_CSUM : DROP_UDP_BAD_CSUM);
    if (proto === IPPROTO_NONE) return this.drop(off, DROP_LOCAL_UNSUPPORTED);
    if (tracer.active) tracer.note(this.name, `protocol ${proto} to a tapbridge address: not served (${proto === IPPROTO_UDP ? 'ICMPv6 port unreachable' : proto === IPPROTO_TCP ? 'TCP reset' : 'ICMPv6 parameter problem'})`);
    this.drop(off, DROP_LOCAL_UNSUPPORTED);
    if (proto === IPPROTO_TCP) return this.sendReset(off, ipOff, w.offset, l4len);
    if (proto === IPPROTO_UDP) return this.out[OUT_PORT_UNREACHABLE].push(off, len);
    anno.param[slotOf(off)] = w.nextHeaderAt - ipOff;
    this.out[OUT_UNKNOWN_HEADER].push(off, len);
  }

  /** Offset (from the IPv6 header) of the Segments Left field of the routing header. */
  private routingHeaderPointer(ipOff: number): number {
    // The walker keeps the routing header's fields, not its place: step to it again (the
    // chain walked cleanly, so this stays inside the packet).
    const b = this.ctx.u8;
    let nh = b[ipOff + IPV6_NEXT_HEADER];
    let at = ipOff + IPV6_HEADER_LEN;
    while (nh !== IPPROTO_ROUTING) {
      const here = at;
      at += nh === IPPROTO_FRAGMENT ? IPV6_FRAG_HEADER_LEN : (b[here + IPV6_EXT_LEN] + 1) * IPV6_EXT_UNIT;
      nh = b[here];
    }
    return at - ipOff + IPV6_RH_SEGMENTS_LEFT;
  }

  /** Echo reply in place: the request's destination (ours) becomes the source. */
  private icmpInput(off: number, ipOff: number, icmpOff: number, icmpLen: number, partial: boolean): void {
    const b = this.ctx.u8;
    const c = this.icmp.reset(b, icmpOff, icmpLen);
    const bad = c.checkLen() || (partial ? 0 : c.checkChecksum(ipOff));
    if (bad !== 0) return this.drop(off, bad);
    if (c.type !== ICMPV6_ECHO_REQUEST) return this.drop(off, DROP_LOCAL_ICMP);
    this.ip.getDst(this.ours);
    const n = emitEchoReply(b, ipOff, this.ours, b, ipOff, icmpOff, icmpLen);
    this.toSender(off);
    if (this.ctx.tracer.active) this.ctx.tracer.note(this.name, 'ICMPv6 echo request: reply');
    this.counters.echoReplies++;
    this.out[OUT_REPLY].push(off, ETH_HEADER_LEN + n);
  }

  /** A reply in the request's slot: no offload metadata; a link-local answer leaves where the request came in. */
  private toSender(off: number): void {
    const anno = this.ctx.arena.anno;
    const s = slotOf(off);
    const inIf = anno.inIf[s];
    this.ctx.u8.fill(0, off, off + VNET_HDR_LEN);
    anno.begin(off, -1);
    anno.outIf[s] = inIf;
  }

  /** RFC 793 reset for a TCP segment to one of our addresses where nothing listens. */
  private sendReset(off: number, ipOff: number, l4Off: number, l4len: number): void {
    const b = this.ctx.u8;
    const t = this.tcp.reset(b, l4Off, l4len);
    if ((t.flags & TCP_FLAG_RST) !== 0 || !this.p.budget.take()) return; // never answer a reset
    const arena = this.ctx.arena;
    const slot = arena.alloc(ACCOUNT_CONTROL);
    if (slot < 0) return this.drop(off, DROP_NO_FRAME_SLOT);
    b.fill(0, slot, slot + VNET_HDR_LEN + ETH_HEADER_LEN + IPV6_HEADER_LEN + TCP_MIN_HEADER_LEN);
    const s = arena.anno.begin(slot, -1);
    arena.anno.outIf[s] = arena.anno.inIf[slotOf(off)];
    const nip = slot + VNET_HDR_LEN + ETH_HEADER_LEN;
    writeIpv6Header(b, nip, TCP_MIN_HEADER_LEN, IPPROTO_TCP, 64, this.ip.getDst(this.ours), this.ip.getSrc(this.peer));
    fillTcpReset(t, this.rstTcp.reset(b, nip + IPV6_HEADER_LEN, TCP_MIN_HEADER_LEN));
    fillL4Checksum6(b, nip, IPPROTO_TCP, nip + IPV6_HEADER_LEN, TCP_MIN_HEADER_LEN);
    this.counters.resetsSent++;
    this.out[OUT_REPLY].push(slot, ETH_HEADER_LEN + IPV6_HEADER_LEN + TCP_MIN_HEADER_LEN);
    arena.release(slot);
  }
}
