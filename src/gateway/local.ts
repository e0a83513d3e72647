/*
 * Local delivery element (local): packets for one of tapbridge's own addresses.
 *
 * Ports:
 *   input  `in`                 packets the router found addressed to tapbridge
 *   output `reply`              echo replies (built in place) and TCP resets (built in a pool
 *                               slot), to the router's `local` input
 *   output `port-unreachable`   UDP to a tapbridge address (nothing listens): ICMP port
 *                               unreachable
 *   output `proto-unreachable`  other protocols: ICMP protocol unreachable
 * Does: answers ICMP echo requests; answers TCP to closed ports with RST (RFC 793; never a
 *   reset to a reset), rate-limited with the ICMP errors (error-budget.ts); drops fragments.
 * Counters: drops icmp_too_short, icmp_bad_csum, tcp_bad_csum, udp_bad_csum, local_icmp_ignored,
 *   local_proto_unreachable on the ingress
 *   interface's record; element counters echoReplies, resetsSent. Like a host, it answers
 *   nothing about a segment whose checksum is wrong (a partial, not yet summed one is taken).
 */
import { slotOf } from '../core/anno.js';
import { ACCOUNT_CONTROL } from '../core/arena.js';
import { DROP_LOCAL_ICMP, DROP_LOCAL_UNSUPPORTED, DROP_NO_FRAME_SLOT } from '../core/drops.js';
import { DROP_ICMP_BAD_CSUM, DROP_TCP_BAD_CSUM, DROP_UDP_BAD_CSUM } from '../wire/drop.js';
import { Element, type DataPlaneContext } from '../core/element.js';
import { VNET_F_NEEDS_CSUM, VNET_FLAGS, VNET_HDR_LEN } from '../core/frame.js';
import { csumReplace16, fillL4Checksum, verifyL4Checksum } from '../wire/checksum.js';
import { ETH_HEADER_LEN } from '../wire/ethernet.js';
import { ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, IcmpView } from '../wire/icmp.js';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, Ipv4View, writeIpv4Header } from '../wire/ipv4.js';
import { TCP_FLAG_RST, TCP_MIN_HEADER_LEN, TcpView } from '../wire/tcp.js';
import { fillTcpReset } from './tcp-reset.js';
import type { ErrorBudget } from './error-budget.js';
import type { InterfaceTable } from './ifaces.js';

const OUT_REPLY = 0;
const OUT_PORT_UNREACHABLE = 1;
const OUT_PROTO_UNREACHABLE = 2;

export class LocalDelivery extends Element {
  readonly kind = 'LocalDelivery';
  override counters = { echoReplies: 0, resetsSent: 0 };
  private readonly ip = new Ipv4View();
  private readonly icmp = new IcmpView();
  private readonly tcp = new TcpView();
  private readonly rstTcp = new TcpView();
  private ipId = 1;

  constructor(
    name: string,
    ctx: DataPlaneContext,
    private readonly p: { ifaces: InterfaceTable; budget: ErrorBudget },
  ) {
    super(name, ctx, ['in'], ['reply', 'port-unreachable', 'proto-unreachable']);
  }

  private drop(off: number, reason: number): void {
    const inIf = this.ctx.arena.anno.inIf[slotOf(off)];
    if (inIf >= 0) this.p.ifaces.list[inIf].record.countDrop(reason);
  }

  push(_input: number, off: number, len: number): void {
    const b = this.ctx.u8;
    const v = this.ip.reset(b, off + VNET_HDR_LEN + ETH_HEADER_LEN, len - ETH_HEADER_LEN);
    const tracer = this.ctx.tracer;
    if (v.isFragment) return this.drop(off, DROP_LOCAL_UNSUPPORTED);
    const proto = v.protocol;
    if (proto === IPPROTO_ICMP) return this.icmpInput(off, len, v);
    if ((proto === IPPROTO_TCP || proto === IPPROTO_UDP) && (b[off + VNET_FLAGS] & VNET_F_NEEDS_CSUM) === 0 && !verifyL4Checksum(b, v.off))
      return this.drop(off, proto === IPPROTO_TCP ? DROP_TCP_BAD_CSUM : DROP_UDP_BAD_CSUM);
    if (tracer.active) tracer.note(this.name, `protocol ${proto} to a tapbridge address: not served (${proto === IPPROTO_UDP ? 'ICMP port unreachable' : proto === IPPROTO_TCP ? 'TCP reset' : 'ICMP protocol unreachable'})`);
    this.drop(off, DROP_LOCAL_UNSUPPORTED);
    if (proto === IPPROTO_TCP) this.sendReset(off, v);
    else if (proto === IPPROTO_UDP) this.out[OUT_PORT_UNREACHABLE].push(off, len);
    else this.out[OUT_PROTO_UNREACHABLE].push(off, len);
  }

  /** Echo reply in place: addresses swapped, type 8 -> 0, fresh TTL, checksums updated. */
  private icmpInput(off: number, len: number, v: Ipv4View): void {
    const c = this.icmp.reset(this.ctx.u8, v.payloadOffset, v.payloadLength);
    const bad = c.checkLen();
    if (bad !== 0) return this.drop(off, bad);
    if (!c.verifyChecksum()) return this.drop(off, DROP_ICMP_BAD_CSUM);
    if (c.type !== ICMP_ECHO_REQUEST) return this.drop(off, DROP_LOCAL_ICMP);
    const src = v.src;
    v.src = v.dst;
    v.dst = src;
    v.ttl = 64;
    v.fillChecksum();
    c.type = ICMP_ECHO_REPLY;
    c.checksum = csumReplace16(c.checksum, ICMP_ECHO_REQUEST << 8, ICMP_ECHO_REPLY << 8);
    this.ctx.u8.fill(0, off, off + VNET_HDR_LEN);
    this.ctx.arena.anno.begin(off, -1);
    if (this.ctx.tracer.active) this.ctx.tracer.note(this.name, 'ICMP echo request: reply');
    this.counters.echoReplies++;
    this.out[OUT_REPLY].push(off, ETH_HEADER_LEN + v.totalLength);
  }

  /** RFC 793 reset for a TCP segment to one of our addresses where nothing listens. */
  private sendReset(off: number, v: Ipv4View): void {
    const b = this.ctx.u8;
    const t = this.tcp.reset(b, v.payloadOffset, v.payloadLength);
    if ((t.flags & TCP_FLAG_RST) !== 0 || !this.p.budget.take()) return; // never answer a reset
    const arena = this.ctx.arena;
    const slot = arena.alloc(ACCOUNT_CONTROL);
    if (slot < 0) return this.drop(off, DROP_NO_FRAME_SLOT);
    const rstLen = 20 + TCP_MIN_HEADER_LEN;
    b.fill(0, slot, slot + VNET_HDR_LEN + ETH_HEADER_LEN + rstLen);
    arena.anno.begin(slot, -1);
    const nip = slot + VNET_HDR_LEN + ETH_HEADER_LEN;
    writeIpv4Header(b, nip, rstLen, this.ipId++ & 0xffff, 0, 64, IPPROTO_TCP, v.dst, v.src);
    fillTcpReset(t, this.rstTcp.reset(b, nip + 20, TCP_MIN_HEADER_LEN));
    fillL4Checksum(b, nip);
    this.counters.resetsSent++;
    this.out[OUT_REPLY].push(slot, ETH_HEADER_LEN + rstLen);
    arena.release(slot);
  }
}
