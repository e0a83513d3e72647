/*
 * Header rewriting for NAT over IPv4 (family.ts HeaderRewriter, QuoteEditor), through the
 * wire views, with incremental checksums:
 *
 *   PacketRewriter  the packet's own addresses, ports and ICMP echo id. The IPv4 header
 *                   checksum is complete (RFC 1624); the TCP/UDP checksum is either complete
 *                   or, for frames marked virtio NEEDS_CSUM, a partial pseudo-header sum
 *                   that is updated as a sum (ports are not part of it: they are data).
 *   QuoteRewriter   the header quoted inside an ICMP error: its addresses (and its IP
 *                   header checksum), its ports or echo id (and its TCP/UDP/ICMP checksum
 *                   when the quote holds it), keeping the outer ICMP checksum right, word by
 *                   word.
 * No allocation: views are reset per packet.
 */
import { readU16, readU32, writeU16 } from '../wire/bytes.js';
import { csumReplace16, csumReplace32, partialReplace32, udpCsumReplace16, udpCsumReplace32 } from '../wire/checksum.js';
import { ICMP_CSUM, ICMP_HEADER_LEN, ICMP_ID, IcmpView } from '../wire/icmp.js';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPV4_CSUM, IPV4_DST, IPV4_SRC, Ipv4View } from '../wire/ipv4.js';
import { TCP_CSUM, TCP_DST_PORT, TCP_SRC_PORT, TcpView } from '../wire/tcp.js';
import { UDP_CSUM, UdpView } from '../wire/udp.js';
import { Q_ECHO, Q_OTHER, Q_PORTS, type HeaderRewriter, type QuoteEditor } from './family.js';

export class PacketRewriter implements HeaderRewriter {
  readonly ip = new Ipv4View();
  private readonly tcp = new TcpView();
  private readonly udp = new UdpView();
  private readonly icmp = new IcmpView();
  proto = 0;
  l4 = 0;
  private partial = false;

  /** Bytes of the upper layer by the header's total length (read only when asked). */
  get l4len(): number {
    return this.ip.payloadLength;
  }

  /** Make the IPv4 packet at buf[ipOff, ipOff+len) the current one (header already checked). */
  reset(buf: Uint8Array, ipOff: number, len: number, partialCsum: boolean): this {
    const v = this.ip.reset(buf, ipOff, len);
    this.proto = v.protocol;
    this.partial = partialCsum;
    const l4 = (this.l4 = v.payloadOffset);
    const l4len = len - v.headerLen;
    if (this.proto === IPPROTO_TCP) this.tcp.reset(buf, l4, l4len);
    else if (this.proto === IPPROTO_UDP) this.udp.reset(buf, l4, l4len);
    else if (this.proto === IPPROTO_ICMP) this.icmp.reset(buf, l4, l4len);
    return this;
  }

  /** Source address (and the TCP/UDP pseudo-header part of its checksum unless `headerOnly`, e.g. a later fragment). */
  setSrc(v: number, headerOnly = false): void {
    const old = this.ip.src;
    if (old === v) return;
    this.ip.src = v;
    this.afterAddr(old, v, headerOnly);
  }

  setDst(v: number, headerOnly = false): void {
    const old = this.ip.dst;
    if (old === v) return;
    this.ip.dst = v;
    this.afterAddr(old, v, headerOnly);
  }

  private afterAddr(old: number, v: number, headerOnly: boolean): void {
    this.ip.checksum = csumReplace32(this.ip.checksum, old, v);
    if (headerOnly) return;
    if (this.proto === IPPROTO_TCP) {
      const t = this.tcp;
      t.checksum = this.partial ? partialReplace32(t.checksum, old, v) : csumReplace32(t.checksum, old, v);
    } else if (this.proto === IPPROTO_UDP) {
      const u = this.udp;
      u.checksum = this.partial ? partialReplace32(u.checksum, old, v) : udpCsumReplace32(u.checksum, old, v);
    }
  }

  setSrcPort(v: number): void {
    this.setPort(TCP_SRC_PORT, v);
  }

  setDstPort(v: number): void {
    this.setPort(TCP_DST_PORT, v);
  }

  /** TCP and UDP keep their ports at the same offsets (0 source, 2 destination). */
  private setPort(at: number, v: number): void {
    const l4 = this.proto === IPPROTO_TCP ? this.tcp : this.udp;
    const pos = l4.off + at;
    const b = l4.buf;
    const old = readU16(b, pos);
    if (old === v) return;
    writeU16(b, pos, v);
    this.afterPort(old, v);
  }

  /** A partial checksum needs no update for a port: ports are data, not pseudo-header. */
  private afterPort(old: number, v: number): void {
    if (this.partial) return;
    if (this.proto === IPPROTO_TCP) this.tcp.checksum = csumReplace16(this.tcp.checksum, old, v);
    else this.udp.checksum = udpCsumReplace16(this.udp.checksum, old, v);
  }

  setIcmpId(v: number): void {
    const c = this.icmp;
    const old = c.id;
    if (old === v) return;
    c.id = v;
    if (!this.partial) c.checksum = csumReplace16(c.checksum, old, v);
  }
}

/** Write the 16-bit word at buf[pos] inside a message whose (complete) checksum is at csumAt, keeping that checksum right. */
export function putCovered16(buf: Uint8Array, pos: number, v: number, csumAt: number): void {
  const old = readU16(buf, pos);
  if (old === v) return;
  writeU16(buf, pos, v);
  writeU16(buf, csumAt, csumReplace16(readU16(buf, csumAt), old, v));
}

/** Rewrites the packet quoted in an ICMP error (outer ICMP message at icmp, `len` bytes). */
export class QuoteRewriter implements QuoteEditor {
  private buf: Uint8Array = new Uint8Array(0);
  private icmp = 0;
  private len = 0;
  /** Offset of the quoted IPv4 header. */
  inner = 0;
  /** Offset of the quoted L4 header. */
  innerL4 = 0;
  /** Protocol of the quoted packet. */
  innerProto = 0;
  kind = Q_OTHER;

  reset(buf: Uint8Array, icmp: number, len: number): this {
    this.buf = buf;
    this.icmp = icmp;
    this.len = len;
    this.inner = icmp + ICMP_HEADER_LEN;
    this.innerL4 = this.inner + ((buf[this.inner] & 15) << 2);
    const p = (this.innerProto = buf[this.inner + 9]);
    this.kind = p === IPPROTO_TCP || p === IPPROTO_UDP ? Q_PORTS : p === IPPROTO_ICMP ? Q_ECHO : Q_OTHER;
    return this;
  }

  /** Write a 16-bit word inside the ICMP message, keeping the ICMP checksum right. */
  private put16(pos: number, v: number): void {
    putCovered16(this.buf, pos, v, this.icmp + ICMP_CSUM);
  }

  setSrcAddr(v: number): void {
    this.setAddr(IPV4_SRC, v);
  }

  setDstAddr(v: number): void {
    this.setAddr(IPV4_DST, v);
  }

  /** The quoted header's source (`IPV4_SRC`) or destination (`IPV4_DST`) address. */
  private setAddr(at: typeof IPV4_SRC | typeof IPV4_DST, v: number): void {
    const b = this.buf;
    const pos = this.inner + at;
    const old = readU32(b, pos);
    if (old === v) return;
    this.put16(pos, v >>> 16);
    this.put16(pos + 2, v & 0xffff);
    this.put16(this.inner + IPV4_CSUM, csumReplace32(readU16(b, this.inner + IPV4_CSUM), old, v));
    const il4 = this.innerL4;
    if (this.innerProto === IPPROTO_TCP) {
      if (il4 + TCP_CSUM + 2 <= this.icmp + this.len) this.put16(il4 + TCP_CSUM, csumReplace32(readU16(b, il4 + TCP_CSUM), old, v));
    } else if (this.innerProto === IPPROTO_UDP) {
      const c = readU16(b, il4 + UDP_CSUM);
      if (c !== 0) this.put16(il4 + UDP_CSUM, udpCsumReplace32(c, old, v));
    }
  }

  /** The quoted TCP/UDP source (0) or destination (2) port. */
  setPort(at: 0 | 2, v: number): void {
    const b = this.buf;
    const il4 = this.innerL4;
    const old = readU16(b, il4 + at);
    if (old === v) return;
    this.put16(il4 + at, v);
    if (this.innerProto === IPPROTO_TCP) {
      if (il4 + TCP_CSUM + 2 <= this.icmp + this.len) this.put16(il4 + TCP_CSUM, csumReplace16(readU16(b, il4 + TCP_CSUM), old, v));
    } else {
      const c = readU16(b, il4 + UDP_CSUM);
      if (c !== 0) this.put16(il4 + UDP_CSUM, udpCsumReplace16(c, old, v));
    }
  }

  /** The quoted ICMP echo identifier. */
  setIcmpId(v: number): void {
    const b = this.buf;
    const il4 = this.innerL4;
    const old = readU16(b, il4 + ICMP_ID);
    if (old === v) return;
    this.put16(il4 + ICMP_ID, v);
    this.put16(il4 + ICMP_CSUM, csumReplace16(readU16(b, il4 + ICMP_CSUM), old, v));
  }
}
