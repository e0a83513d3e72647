/*
 * The conntrack key of one IPv6 packet (family.ts KeyParser): the extension-header chain is
 * walked (Ipv6ExtWalker, bounded) to the upper layer; addresses become their interned ids
 * (addr-table.ts; looked up only, never inserted: NO_ADDR when no flow holds one), ports (the
 * echo id for ICMPv6 echo), TCP flags, fragment fields. Nothing is allocated.
 *
 * Not tracked (PK_UNTRACKED): ICMPv6 other than echo and the four error types -- NDP (133-137)
 * and MLD among them --, and packets from :: or a link-local source or to a link-local or
 * multicast destination (never routed, never translated).
 */
import { IPV6_DST, IPV6_SRC, IPPROTO_ICMPV6, Ipv6ExtWalker, Ipv6View } from '../wire/ipv6.js';
import {
  ICMPV6_DEST_UNREACH,
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_HEADER_LEN,
  ICMPV6_ID,
  ICMPV6_PACKET_TOO_BIG,
  ICMPV6_PARAM_PROBLEM,
  ICMPV6_TIME_EXCEEDED,
  ICMPV6_TYPE,
} from '../wire/icmpv6.js';
import { readU16 } from '../wire/bytes.js';
import { TCP_DST_PORT, TCP_FLAGS, TCP_MIN_HEADER_LEN, TCP_SRC_PORT } from '../wire/tcp.js';
import { UDP_HEADER_LEN } from '../wire/udp.js';
import type { AddrTable6 } from './addr-table.js';
import { FlowKeyFields, PK_FLOW, PK_ICMP_ERROR, PK_LATER_FRAGMENT, PK_MALFORMED, PK_UNTRACKED, type KeyParser } from './family.js';
import { KP_ICMP_REP, KP_ICMP_REQ } from './flow-index.js';

const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
/** Bytes of the upper layer a quoted packet must carry: ports, or the echo header. */
const QUOTED_L4 = 8;

/** Not routed: from :: or fe80::/10, to fe80::/10 or ff00::/8 (tested on the packet's bytes). */
function unrouted(buf: Uint8Array, ipOff: number): boolean {
  const s = ipOff + IPV6_SRC;
  const d = ipOff + IPV6_DST;
  if (buf[d] === 0xff) return true;
  if (buf[d] === 0xfe && (buf[d + 1] & 0xc0) === 0x80) return true;
  if (buf[s] === 0xfe && (buf[s + 1] & 0xc0) === 0x80) return true;
  for (let i = 0; i < 16; i++) if (buf[s + i] !== 0) return false;
  return true;
}

export class PacketKey6 extends FlowKeyFields implements KeyParser {
  readonly ip = new Ipv6View();
  readonly walker = new Ipv6ExtWalker();
  /** The packet the key was read from and where its addresses are (bindKey interns them). */
  buf: Uint8Array = new Uint8Array(0);
  srcAt = 0;
  dstAt = 0;

  constructor(private readonly addrs: AddrTable6) {
    super();
  }

  parse(buf: Uint8Array, ipOff: number, ipLen: number): number {
    const v = this.ip.reset(buf, ipOff, ipLen);
    if (v.checkLen() !== 0) return PK_MALFORMED;
    const total = (this.total = v.packetLength);
    const w = this.walker;
    if (w.walk(buf, ipOff, total) !== 0) return PK_MALFORMED;
    this.readAddrs(buf, ipOff);
    const proto = (this.proto = w.protocol);
    const l4 = (this.l4 = w.offset);
    const l4len = (this.l4len = ipOff + total - l4);
    this.more = w.moreFragments;
    this.fragId = w.fragId;
    this.fragProto = 0; // RFC 8200: fragments' next headers may differ; (src, dst, id) is the datagram
    this.sport = 0;
    this.dport = 0;
    this.tcpFlags = 0;
    if (unrouted(buf, ipOff)) return PK_UNTRACKED;
    if (w.isLaterFragment) return PK_LATER_FRAGMENT;
    if (proto === IPPROTO_TCP) {
      if (l4len < TCP_MIN_HEADER_LEN) return PK_MALFORMED;
      this.sport = readU16(buf, l4 + TCP_SRC_PORT);
      this.dport = readU16(buf, l4 + TCP_DST_PORT);
      this.tcpFlags = buf[l4 + TCP_FLAGS];
      this.kp = IPPROTO_TCP;
    } else if (proto === IPPROTO_UDP) {
      if (l4len < UDP_HEADER_LEN) return PK_MALFORMED;
      this.sport = readU16(buf, l4);
      this.dport = readU16(buf, l4 + 2);
      this.kp = IPPROTO_UDP;
    } else if (proto === IPPROTO_ICMPV6) {
      if (l4len < ICMPV6_HEADER_LEN) return PK_MALFORMED;
      const type = buf[l4 + ICMPV6_TYPE];
      if (type === ICMPV6_ECHO_REQUEST) this.kp = KP_ICMP_REQ;
      else if (type === ICMPV6_ECHO_REPLY) this.kp = KP_ICMP_REP;
      else if (type === ICMPV6_DEST_UNREACH || type === ICMPV6_PACKET_TOO_BIG || type === ICMPV6_TIME_EXCEEDED || type === ICMPV6_PARAM_PROBLEM) return PK_ICMP_ERROR;
      else return PK_UNTRACKED;
      this.sport = this.dport = readU16(buf, l4 + ICMPV6_ID);
    } else {
      this.kp = proto;
    }
    return PK_FLOW;
  }

  /** The key of the packet quoted in an ICMPv6 error (at `inner`, `avail` bytes), inverted for the lookup as in packet-key.ts. */
  parseQuoted(buf: Uint8Array, inner: number, avail: number): boolean {
    const v = this.ip.reset(buf, inner, avail);
    if (v.checkHeader() !== 0) return false;
    const w = this.walker;
    if (w.walk(buf, inner, avail) !== 0 || w.isLaterFragment) return false;
    const l4 = (this.l4 = w.offset);
    if (l4 + QUOTED_L4 > inner + avail) return false;
    this.readAddrs(buf, inner);
    const proto = (this.proto = w.protocol);
    this.sport = 0;
    this.dport = 0;
    if (proto === IPPROTO_TCP || proto === IPPROTO_UDP) {
      this.sport = readU16(buf, l4);
      this.dport = readU16(buf, l4 + 2);
      this.kp = proto;
    } else if (proto === IPPROTO_ICMPV6) {
      const type = buf[l4 + ICMPV6_TYPE];
      // the quoted packet, inverted, is the tuple we look up: a quoted request is a reply key
      if (type === ICMPV6_ECHO_REQUEST) this.kp = KP_ICMP_REP;
      else if (type === ICMPV6_ECHO_REPLY) this.kp = KP_ICMP_REQ;
      else return false;
      this.sport = this.dport = readU16(buf, l4 + ICMPV6_ID);
    } else {
      this.kp = proto;
    }
    return true;
  }

  private readAddrs(buf: Uint8Array, ipOff: number): void {
    this.buf = buf;
    this.srcAt = ipOff + IPV6_SRC;
    this.dstAt = ipOff + IPV6_DST;
    this.src = this.addrs.findAt(buf, this.srcAt);
    this.dst = this.addrs.findAt(buf, this.dstAt);
  }
}
