/*
 * ICMP error element (icmp/NAME, one per kind of error, like Click's ICMPError): builds the
 * error about the packet it receives and sends it back toward that packet's source.
 *
 * Ports:  input `in`: the offending packet (lent; the element that sent it here counted its
 *         drop); output `out`: the ICMP error, to the router's `local` input (through
 *         nat/local when NAT is on, which puts back the addresses the quoted header had
 *         before translation, using anno.related).
 * Config: type, code (e.g. 11/0 time exceeded, 3/0 net, 3/1 host, 3/3 port, 3/2 protocol
 *         unreachable, 3/4 fragmentation needed with the MTU from anno.param).
 * Does:   quotes the IP header and as much of the packet as fits in 576 bytes (RFC 1812);
 *         never answers ICMP errors, later fragments or non-unicast sources; rate-limited
 *         with the TCP resets (error-budget.ts). The source address is left 0.0.0.0 for the
 *         router to fill with the egress interface's address.
 * Counters: sent, suppressed (RFC 1812 rules), rateLimited, noSlot (also counted as
 *         no_frame_slot on the ingress interface's record).
 */
import { slotOf } from '../core/anno.js';
import { ACCOUNT_CONTROL } from '../core/arena.js';
import { DROP_NO_FRAME_SLOT } from '../core/drops.js';
import { Element, type DataPlaneContext } from '../core/element.js';
import { VNET_HDR_LEN } from '../core/frame.js';
import { ETH_HEADER_LEN } from '../wire/ethernet.js';
import { ICMP_HEADER_LEN, IcmpView, isIcmpQuery } from '../wire/icmp.js';
import { IPPROTO_ICMP, IPV4_MIN_HEADER_LEN, Ipv4View, writeIpv4Header } from '../wire/ipv4.js';
import type { ErrorBudget } from './error-budget.js';
import type { InterfaceTable } from './ifaces.js';

/** RFC 1812 4.3.2.3: the error, IP header included, stays within 576 bytes. */
const MAX_QUOTE = 576 - IPV4_MIN_HEADER_LEN - ICMP_HEADER_LEN - 28;
const TOS_INTERNETWORK_CONTROL = 0xc0;

export interface IcmpErrorParams {
  type: number;
  code: number;
  ifaces: InterfaceTable;
  budget: ErrorBudget;
}

export class IcmpError extends Element {
  readonly kind = 'IcmpError';
  override counters = { sent: 0, suppressed: 0, rateLimited: 0, noSlot: 0 };
  private readonly ip = new Ipv4View();
  private readonly quotedIcmp = new IcmpView();
  private readonly icmp = new IcmpView();
  private ipId = 1;

  constructor(
    name: string,
    ctx: DataPlaneContext,
    private readonly p: IcmpErrorParams,
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
    const src = v.src;
    if (src === 0 || src >>> 28 === 14 || src === 0xffffffff || v.isLaterFragment || this.quotesAnError(v)) {
      this.counters.suppressed++;
      return;
    }
    if (!this.p.budget.take()) {
      this.counters.rateLimited++;
      return;
    }
    const arena = this.ctx.arena;
    const anno = arena.anno;
    const slot = arena.alloc(ACCOUNT_CONTROL);
    if (slot < 0) {
      this.counters.noSlot++;
      const inIf = anno.inIf[slotOf(off)];
      if (inIf >= 0) this.p.ifaces.list[inIf].record.countDrop(DROP_NO_FRAME_SLOT);
      return;
    }
    const quote = Math.min(v.totalLength, MAX_QUOTE);
    const errLen = IPV4_MIN_HEADER_LEN + ICMP_HEADER_LEN + quote;
    b.fill(0, slot, slot + VNET_HDR_LEN + ETH_HEADER_LEN);
    const nip = slot + VNET_HDR_LEN + ETH_HEADER_LEN;
    const icmpOff = nip + IPV4_MIN_HEADER_LEN;
    b.copyWithin(icmpOff + ICMP_HEADER_LEN, ipOff, ipOff + quote);
    writeIpv4Header(b, nip, errLen, this.ipId++ & 0xffff, 0, 64, IPPROTO_ICMP, 0, src, TOS_INTERNETWORK_CONTROL);
    const c = this.icmp.reset(b, icmpOff, ICMP_HEADER_LEN + quote);
    c.type = this.p.type;
    c.code = this.p.code;
    c.rest = this.p.code === 4 && this.p.type === 3 ? anno.param[slotOf(off)] & 0xffff : 0;
    c.fillChecksum();
    const s = anno.begin(slot, anno.inIf[slotOf(off)]);
    anno.related[s] = anno.flow[slotOf(off)];
    this.counters.sent++;
    if (this.ctx.tracer.active) this.ctx.tracer.note(this.name, `ICMP type ${this.p.type} code ${this.p.code} to ${src >>> 24}.${(src >>> 16) & 255}.${(src >>> 8) & 255}.${src & 255}`);
    this.out[0].push(slot, ETH_HEADER_LEN + errLen);
    arena.release(slot);
  }

  /** Is the offending packet itself an ICMP error (or an unknown ICMP type)? */
  private quotesAnError(v: Ipv4View): boolean {
    if (v.protocol !== IPPROTO_ICMP) return false;
    const q = this.quotedIcmp.reset(this.ctx.u8, v.payloadOffset, v.payloadLength);
    return q.checkLen() !== 0 || !isIcmpQuery(q.type);
  }
}
