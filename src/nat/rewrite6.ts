/*
 * Header rewriting for NAT66 (family.ts HeaderRewriter, QuoteEditor) with incremental
 * checksums. Address values are interned ids (addr-table.ts): the new address is read from
 * the table's words.
 *
 *   PacketRewriter6  the packet's addresses, ports and ICMPv6 echo id. IPv6 has no header
 *                    checksum; the TCP, UDP and ICMPv6 checksums all cover the pseudo header,
 *                    so an address change updates them: complete ones with RFC 1624
 *                    (csumReplace128; UDP never becomes 0), partial ones (virtio NEEDS_CSUM,
 *                    e.g. a TSO6 super-frame: the field holds the uncomplemented pseudo-header
 *                    sum) as a sum (partialReplace128), where ports and ids are data and
 *                    change nothing. With a routing header that still has segments left the
 *                    destination is not in the pseudo header (the final one is).
 *   QuoteRewriter6   the packet quoted inside an ICMPv6 error: its addresses and ports or echo
 *                    id, its own checksum when the quote holds it (also over the quoted
 *                    pseudo header), and the outer ICMPv6 checksum (which covers the quote).
 * The upper layer is found with Ipv6ExtWalker (bounded). No allocation: views and scratch
 * words are reused.
 */
import { readU16, writeU16 } from '../wire/bytes.js';
import { csumReplace128, csumReplace16, partialReplace128, udp6CsumReplace128, udp6CsumReplace16 } from '../wire/checksum.js';
import { ICMPV6_CSUM, ICMPV6_ID } from '../wire/icmpv6.js';
import { readIp6, writeIp6 } from '../wire/ip6.js';
import { IPPROTO_ICMPV6, IPPROTO_NONE, IPV6_DST, IPV6_HEADER_LEN, IPV6_SRC, Ipv6ExtWalker, Ipv6View } from '../wire/ipv6.js';
import { TCP_CSUM, TCP_MIN_HEADER_LEN } from '../wire/tcp.js';
import { UDP_CSUM, UDP_HEADER_LEN } from '../wire/udp.js';
import type { AddrTable6 } from './addr-table.js';
import { putCovered16 } from './rewrite.js';
import { ERR_QUOTE_AT, Q_ECHO, Q_OTHER, Q_PORTS, type HeaderRewriter, type QuoteEditor } from './family.js';

const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const ICMPV6_MIN = 4; // type, code, checksum

/** Absolute offset of the checksum of `proto`'s header at l4 when `avail` bytes of it are there, else -1. */
function csumAt(proto: number, l4: number, avail: number): number {
  if (proto === IPPROTO_TCP) return avail >= TCP_MIN_HEADER_LEN ? l4 + TCP_CSUM : -1;
  if (proto === IPPROTO_UDP) return avail >= UDP_HEADER_LEN ? l4 + UDP_CSUM : -1;
  if (proto === IPPROTO_ICMPV6) return avail >= ICMPV6_MIN ? l4 + ICMPV6_CSUM : -1;
  return -1;
}

/** The 128-bit address words[at..at+4) equals the one at buf[pos, pos+16)? */
function sameAddr(buf: Uint8Array, pos: number, words: Uint32Array, at: number): boolean {
  for (let i = 0, o = pos; i < 4; i++, o += 4) {
    if ((((buf[o] << 24) | (buf[o + 1] << 16) | (buf[o + 2] << 8) | buf[o + 3]) >>> 0) !== words[at + i]) return false;
  }
  return true;
}

/** Scratch words of an address change (old, new): nothing allocated per packet. */
class AddrChange {
  readonly old = new Uint32Array(4);
  readonly now = new Uint32Array(4);

  constructor(private readonly addrs: AddrTable6) {}

  /** Write address value v at buf[pos]; false when it was there already (then old/now are stale). */
  write(buf: Uint8Array, pos: number, v: number): boolean {
    const w = this.addrs.words;
    const at = v << 2;
    if (sameAddr(buf, pos, w, at)) return false;
    readIp6(buf, pos, this.old);
    const n = this.now;
    n[0] = w[at];
    n[1] = w[at + 1];
    n[2] = w[at + 2];
    n[3] = w[at + 3];
    writeIp6(buf, pos, n);
    return true;
  }
}

export class PacketRewriter6 implements HeaderRewriter {
  readonly ip = new Ipv6View();
  private readonly walker = new Ipv6ExtWalker();
  private readonly change: AddrChange;
  proto = IPPROTO_NONE;
  l4 = 0;
  l4len = 0;
  private buf: Uint8Array = new Uint8Array(0);
  private partial = false;
  /** Absolute offset of the L4 checksum, -1 when there is none to keep. */
  private csum = -1;
  private dstInPseudo = true;

  constructor(addrs: AddrTable6) {
    this.change = new AddrChange(addrs);
  }

  /** Make the IPv6 packet at buf[ipOff, ipOff+len) the current one (fixed header checked). */
  reset(buf: Uint8Array, ipOff: number, len: number, partialCsum: boolean): this {
    const v = this.ip.reset(buf, ipOff, len);
    this.buf = buf;
    this.partial = partialCsum;
    this.proto = IPPROTO_NONE;
    this.l4 = ipOff + IPV6_HEADER_LEN;
    this.l4len = 0;
    this.csum = -1;
    this.dstInPseudo = true;
    if (v.checkHeader() !== 0) return this;
    const total = v.packetLength < len ? v.packetLength : len;
    const w = this.walker;
    if (w.walk(buf, ipOff, total) !== 0 || w.isLaterFragment) return this;
    const p = (this.proto = w.protocol);
    const l4 = (this.l4 = w.offset);
    const l4len = (this.l4len = ipOff + total - l4);
    this.csum = csumAt(p, l4, l4len);
    this.dstInPseudo = w.segmentsLeft === 0;
    return this;
  }

  setSrc(v: number, headerOnly = false): void {
    this.setAddr(this.ip.off + IPV6_SRC, v, headerOnly);
  }

  setDst(v: number, headerOnly = false): void {
    this.setAddr(this.ip.off + IPV6_DST, v, headerOnly || !this.dstInPseudo);
  }

  private setAddr(pos: number, v: number, headerOnly: boolean): void {
    const c = this.change;
    if (!c.write(this.buf, pos, v) || headerOnly || this.csum < 0) return;
    const b = this.buf;
    const at = this.csum;
    const old = readU16(b, at);
    let sum: number;
    if (this.partial) sum = partialReplace128(old, c.old, c.now);
    else if (this.proto === IPPROTO_UDP) sum = udp6CsumReplace128(old, c.old, c.now);
    else sum = csumReplace128(old, c.old, c.now);
    writeU16(b, at, sum);
  }

  setSrcPort(v: number): void {
    this.setWord(this.l4, v);
  }

  setDstPort(v: number): void {
    this.setWord(this.l4 + 2, v);
  }

  setIcmpId(v: number): void {
    this.setWord(this.l4 + ICMPV6_ID, v);
  }

  /** A 16-bit word of the upper-layer header; a partial checksum does not cover it yet. */
  private setWord(pos: number, v: number): void {
    const b = this.buf;
    const old = readU16(b, pos);
    if (old === v) return;
    writeU16(b, pos, v);
    const at = this.csum;
    if (this.partial || at < 0) return;
    const c = readU16(b, at);
    writeU16(b, at, this.proto === IPPROTO_UDP ? udp6CsumReplace16(c, old, v) : csumReplace16(c, old, v));
  }
}

/** Rewrites the packet quoted in an ICMPv6 error (the error's message at icmp, `len` bytes). */
export class QuoteRewriter6 implements QuoteEditor {
  private readonly ip = new Ipv6View();
  private readonly walker = new Ipv6ExtWalker();
  private readonly change: AddrChange;
  kind = Q_OTHER;
  private buf: Uint8Array = new Uint8Array(0);
  private icmp = 0;
  /** Offset of the quoted IPv6 header (-1: not even that fits), its upper layer, its protocol. */
  private inner = -1;
  private innerL4 = 0;
  private innerProto = IPPROTO_NONE;
  /** The quoted upper layer's checksum when the quote holds it, else -1. */
  private innerCsum = -1;
  private dstInPseudo = true;

  constructor(addrs: AddrTable6) {
    this.change = new AddrChange(addrs);
  }

  reset(buf: Uint8Array, icmp: number, len: number): this {
    this.buf = buf;
    this.icmp = icmp;
    this.kind = Q_OTHER;
    this.inner = -1;
    this.innerCsum = -1;
    this.innerProto = IPPROTO_NONE;
    this.dstInPseudo = true;
    const inner = icmp + ERR_QUOTE_AT;
    const avail = len - ERR_QUOTE_AT;
    if (this.ip.reset(buf, inner, avail).checkHeader() !== 0) return this;
    this.inner = inner;
    const w = this.walker;
    if (w.walk(buf, inner, avail) !== 0 || w.isLaterFragment) return this;
    const p = (this.innerProto = w.protocol);
    const l4 = (this.innerL4 = w.offset);
    const have = inner + avail - l4;
    this.dstInPseudo = w.segmentsLeft === 0;
    if (have < 8) return this;
    this.kind = p === IPPROTO_TCP || p === IPPROTO_UDP ? Q_PORTS : p === IPPROTO_ICMPV6 ? Q_ECHO : Q_OTHER;
    this.innerCsum = csumAt(p, l4, have);
    return this;
  }

  /** Write a 16-bit word inside the ICMPv6 message, keeping its checksum right. */
  private put16(pos: number, v: number): void {
    putCovered16(this.buf, pos, v, this.icmp + ICMPV6_CSUM);
  }

  setSrcAddr(v: number): void {
    this.setAddr(IPV6_SRC, v, true);
  }

  setDstAddr(v: number): void {
    this.setAddr(IPV6_DST, v, this.dstInPseudo);
  }

  private setAddr(at: number, v: number, inPseudo: boolean): void {
    if (this.inner < 0) return;
    const c = this.change;
    const b = this.buf;
    if (!c.write(b, this.inner + at, v)) return;
    const oc = this.icmp + ICMPV6_CSUM;
    writeU16(b, oc, csumReplace128(readU16(b, oc), c.old, c.now));
    const ic = this.innerCsum;
    if (ic < 0 || !inPseudo) return;
    const s = readU16(b, ic);
    this.put16(ic, this.innerProto === IPPROTO_UDP ? udp6CsumReplace128(s, c.old, c.now) : csumReplace128(s, c.old, c.now));
  }

  setPort(at: 0 | 2, v: number): void {
    this.setWord(this.innerL4 + at, v);
  }

  setIcmpId(v: number): void {
    this.setWord(this.innerL4 + ICMPV6_ID, v);
  }

  private setWord(pos: number, v: number): void {
    if (this.kind === Q_OTHER) return;
    const b = this.buf;
    const old = readU16(b, pos);
    if (old === v) return;
    this.put16(pos, v);
    const ic = this.innerCsum;
    if (ic >= 0) this.put16(ic, this.innerProto === IPPROTO_UDP ? udp6CsumReplace16(readU16(b, ic), old, v) : csumReplace16(readU16(b, ic), old, v));
  }
}
