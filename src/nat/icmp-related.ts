/*
 * ICMP errors related to tracked flows, translated like netfilter's nf_nat_icmp_reply_
 * translation: the outer destination (and source, when the flow translates it in that
 * direction), the quoted header's addresses and ports, its checksums when present, and the
 * outer ICMP checksum, all incrementally. They do not refresh the flow. One implementation
 * for both families: the family's QuoteEditor and HeaderRewriter know the headers (over IPv6
 * the ICMPv6 checksum also covers the pseudo header, which the outer rewriter keeps right).
 *
 *   find, pre   an error arriving from either side: find the flow whose tuple the quoted
 *               packet (inverted) is, translate the destination half
 *   post(...)   the same error after routing: the source half
 *   local(...)  an error tapbridge generated itself about a packet it had already
 *               translated (anno.related: that packet's flow entry): the quote is put back to
 *               the tuple the sender used, and the error goes to that sender
 */
import { ERR_QUOTE_AT, Q_ECHO, Q_PORTS, type HeaderRewriter, type KeyParser, type QuoteEditor } from './family.js';
import type { FlowTable } from './flow-table.js';

export class IcmpRelated {
  constructor(
    private readonly table: FlowTable,
    private readonly quoted: KeyParser,
    private readonly quote: QuoteEditor,
    private readonly outer: HeaderRewriter,
  ) {}

  /** The entry (flow f, direction of the error) whose tuple the quoted packet, inverted, is; -1 when none. */
  find(buf: Uint8Array, icmp: number, len: number): number {
    if (!this.quoted.parseQuoted(buf, icmp + ERR_QUOTE_AT, len - ERR_QUOTE_AT)) return -1;
    const q = this.quoted;
    return this.table.idx.lookup(q.kp, q.dst, q.src, q.dport, q.sport);
  }

  /** Destination half for related entry e (from find); the ICMP message is at icmp (len bytes) inside the packet at ipOff. */
  pre(buf: Uint8Array, ipOff: number, icmp: number, len: number, e: number): void {
    const idx = this.table.idx;
    const o = e ^ 1;
    // Outer destination, when the flow translates destinations in this direction.
    if (idx.src(o) !== idx.dst(e)) this.outer.reset(buf, ipOff, len + (icmp - ipOff), false).setDst(idx.src(o));
    // Quoted header: it went out in the other direction; restore its source half.
    const r = this.quote.reset(buf, icmp, len);
    r.setSrcAddr(idx.src(o));
    if (r.kind === Q_PORTS) r.setPort(0, idx.sport(o));
    else if (r.kind === Q_ECHO && (e & 1) === 1) r.setIcmpId(idx.sport(o));
  }

  /** Source half for related entry e (from pre) after routing. */
  post(buf: Uint8Array, ipOff: number, icmp: number, len: number, e: number): void {
    const idx = this.table.idx;
    const o = e ^ 1;
    if (idx.dst(o) !== idx.src(e)) this.outer.reset(buf, ipOff, len + (icmp - ipOff), false).setSrc(idx.dst(o));
    const r = this.quote.reset(buf, icmp, len);
    r.setDstAddr(idx.dst(o));
    if (r.kind === Q_PORTS) r.setPort(2, idx.dport(o));
    else if (r.kind === Q_ECHO && (e & 1) === 0) r.setIcmpId(idx.dport(o));
  }

  /**
   * An error tapbridge built about a packet of entry e (flow f, direction d), which NAT had
   * translated already (in full or only its destination half): put the quote back to the
   * tuple the sender used, and send the error to that sender.
   */
  local(buf: Uint8Array, ipOff: number, icmp: number, len: number, e: number): void {
    const idx = this.table.idx;
    const r = this.quote.reset(buf, icmp, len);
    r.setSrcAddr(idx.src(e));
    r.setDstAddr(idx.dst(e));
    if (r.kind === Q_PORTS) {
      r.setPort(0, idx.sport(e));
      r.setPort(2, idx.dport(e));
    } else if (r.kind === Q_ECHO) r.setIcmpId(idx.sport(e));
    this.outer.reset(buf, ipOff, len + (icmp - ipOff), false).setDst(idx.src(e));
  }
}
