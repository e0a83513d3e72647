/*
 * ICMPv6 (RFC 4443) and Neighbor Discovery (RFC 4861, RDNSS from RFC 8106). Bytes 4..7 of
 * the header are the echo id/seq, the packet-too-big MTU or the parameter-problem pointer;
 * errors quote the offending packet from ICMPV6_ERR_IP on, as much as fits in
 * IPV6_MIN_MTU. The checksum covers the IPv6 pseudo header (checksum.ts), so checksum
 * methods take the offset of the enclosing IPv6 header.
 *
 * NDP messages share Icmpv6View (their fixed fields are accessors on it); checkNdp() is RFC
 * 4861's validation (hop limit 255, code 0, length, addresses, options of non-zero length
 * within the message). NdpOptionWalker steps over the options (bounded by the message: each
 * is at least 8 bytes). The emit* builders write a complete IPv6 packet (header, message,
 * checksum) at an offset and return its length; NS, NA, echo reply and errors take
 * positional arguments and allocate nothing, the RA takes a fields object built once.
 */

import { copyBytes, readU16, readU32, writeU16, writeU32 } from './bytes.js';
import { fillL4Checksum6, verifyL4Checksum6 } from './checksum.js';
import { DROP_ICMPV6_BAD_CSUM, DROP_ICMPV6_TOO_SHORT, DROP_NDP_BAD, DROP_NDP_BAD_OPTION, DROP_NDP_TOO_SHORT } from './drop.js';
import {
  IP6_LEN, IP6_WORDS, isLinkLocalIp6, isMulticastIp6, isSolicitedNodeIp6, isUnspecifiedIp6, readIp6, writeIp6,
} from './ip6.js';
import { IPPROTO_ICMPV6, IPV6_HEADER_LEN, IPV6_MIN_MTU, IPV6_SRC, type Ipv6ExtWalker, type Ipv6View, writeIpv6Header } from './ipv6.js';
import { readMac, writeMac } from './mac.js';
import { WireView } from './view.js';

export const ICMPV6_TYPE = 0;
export const ICMPV6_CODE = 1;
export const ICMPV6_CSUM = 2;
export const ICMPV6_REST = 4; // 32-bit "message body" start
export const ICMPV6_ID = 4;
export const ICMPV6_SEQ = 6;
export const ICMPV6_MTU = 4; // packet too big (32 bits)
export const ICMPV6_POINTER = 4; // parameter problem (32 bits)
export const ICMPV6_HEADER_LEN = 8;
/** Offset of the quoted packet in an error message. */
export const ICMPV6_ERR_IP = 8;
/** Most of the offending packet an error quotes: the error must fit in IPV6_MIN_MTU. */
export const ICMPV6_ERR_MAX_QUOTE = IPV6_MIN_MTU - IPV6_HEADER_LEN - ICMPV6_HEADER_LEN;

export const ICMPV6_DEST_UNREACH = 1;
export const ICMPV6_PACKET_TOO_BIG = 2;
export const ICMPV6_TIME_EXCEEDED = 3;
export const ICMPV6_PARAM_PROBLEM = 4;
export const ICMPV6_ECHO_REQUEST = 128;
export const ICMPV6_ECHO_REPLY = 129;
export const NDP_ROUTER_SOLICIT = 133;
export const NDP_ROUTER_ADVERT = 134;
export const NDP_NEIGHBOR_SOLICIT = 135;
export const NDP_NEIGHBOR_ADVERT = 136;
export const NDP_REDIRECT = 137;

// DEST_UNREACH codes
export const ICMPV6_NO_ROUTE = 0;
export const ICMPV6_ADMIN_PROHIBITED = 1;
export const ICMPV6_BEYOND_SCOPE = 2;
export const ICMPV6_ADDR_UNREACH = 3;
export const ICMPV6_PORT_UNREACH = 4;
export const ICMPV6_POLICY_FAIL = 5;
export const ICMPV6_REJECT_ROUTE = 6;
// TIME_EXCEEDED codes
export const ICMPV6_HOP_LIMIT_EXCEEDED = 0;
export const ICMPV6_FRAG_TIME_EXCEEDED = 1;
// PARAM_PROBLEM codes
export const ICMPV6_ERRONEOUS_HEADER = 0;
export const ICMPV6_UNKNOWN_NEXT_HEADER = 1;
export const ICMPV6_UNKNOWN_OPTION = 2;
export const ICMPV6_INCOMPLETE_CHAIN = 3; // RFC 7112: first fragment without the whole chain

/** Types below 128 are errors (they quote the offending packet). */
export const ICMPV6_INFO_MIN = 128;

// NDP fixed fields, offsets from the ICMPv6 header
export const NDP_RA_CUR_HOP_LIMIT = 4;
export const NDP_RA_FLAGS = 5;
export const NDP_RA_ROUTER_LIFETIME = 6;
export const NDP_RA_REACHABLE_TIME = 8;
export const NDP_RA_RETRANS_TIMER = 12;
export const NDP_NA_FLAGS = 4;
export const NDP_TARGET = 8; // NS, NA, redirect
export const NDP_REDIRECT_DST = 24;
// Fixed part of each message = offset of its options
export const NDP_RS_LEN = 8;
export const NDP_RA_LEN = 16;
export const NDP_NS_LEN = 24;
export const NDP_NA_LEN = 24;
export const NDP_REDIRECT_LEN = 40;
/** IPv6 hop limit of every NDP message (a router would have decremented it). */
export const NDP_HOP_LIMIT = 255;

export const NDP_RA_FLAG_MANAGED = 0x80;
export const NDP_RA_FLAG_OTHER = 0x40;
export const NDP_NA_FLAG_ROUTER = 0x80;
export const NDP_NA_FLAG_SOLICITED = 0x40;
export const NDP_NA_FLAG_OVERRIDE = 0x20;

// NDP options: type, length in 8-byte units (0 is invalid), data
export const NDP_OPT_TYPE = 0;
export const NDP_OPT_LEN = 1;
export const NDP_OPT_UNIT = 8;
export const NDP_OPT_SOURCE_LLADDR = 1;
export const NDP_OPT_TARGET_LLADDR = 2;
export const NDP_OPT_PREFIX_INFO = 3;
export const NDP_OPT_REDIRECTED_HEADER = 4;
export const NDP_OPT_MTU = 5;
export const NDP_OPT_RDNSS = 25;
export const NDP_OPT_LLADDR = 2; // MAC inside a source/target link-layer address option
export const NDP_OPT_LLADDR_LEN = 8; // Ethernet
export const NDP_PI_PREFIX_LEN = 2;
export const NDP_PI_FLAGS = 3;
export const NDP_PI_VALID_LIFETIME = 4;
export const NDP_PI_PREFERRED_LIFETIME = 8;
export const NDP_PI_RESERVED2 = 12;
export const NDP_PI_PREFIX = 16;
export const NDP_PI_LEN = 32;
export const NDP_PI_FLAG_ONLINK = 0x80;
export const NDP_PI_FLAG_AUTO = 0x40;
export const NDP_MTU_VALUE = 4;
export const NDP_MTU_LEN = 8;
export const NDP_RDNSS_LIFETIME = 4;
export const NDP_RDNSS_ADDRS = 8;
export const NDP_RDNSS_MIN_LEN = NDP_RDNSS_ADDRS + IP6_LEN;

export function isIcmpv6Error(type: number): boolean {
  return type < ICMPV6_INFO_MIN;
}

/** Fixed length (= options offset) of an NDP message type; 0 for other types. */
export function ndpFixedLength(type: number): number {
  switch (type) {
    case NDP_ROUTER_SOLICIT:
      return NDP_RS_LEN;
    case NDP_ROUTER_ADVERT:
      return NDP_RA_LEN;
    case NDP_NEIGHBOR_SOLICIT:
      return NDP_NS_LEN;
    case NDP_NEIGHBOR_ADVERT:
      return NDP_NA_LEN;
    case NDP_REDIRECT:
      return NDP_REDIRECT_LEN;
    default:
      return 0;
  }
}

/** Scratch for checkNdp (module-level: nothing allocated per packet). */
const scratchAddr = new Uint32Array(IP6_WORDS);

/** len: the ICMPv6 message length (the upper-layer length of the IPv6 packet). */
export class Icmpv6View extends WireView {
  /** 0 if the 8-byte header fits, else DROP_ICMPV6_TOO_SHORT. NDP: see checkNdp. */
  checkLen(): number {
    return this.len < ICMPV6_HEADER_LEN ? DROP_ICMPV6_TOO_SHORT : 0;
  }

  get type(): number {
    return this.buf[this.off + ICMPV6_TYPE];
  }
  set type(v: number) {
    this.buf[this.off + ICMPV6_TYPE] = v;
  }
  get code(): number {
    return this.buf[this.off + ICMPV6_CODE];
  }
  set code(v: number) {
    this.buf[this.off + ICMPV6_CODE] = v;
  }
  get checksum(): number {
    return readU16(this.buf, this.off + ICMPV6_CSUM);
  }
  set checksum(v: number) {
    writeU16(this.buf, this.off + ICMPV6_CSUM, v);
  }
  get rest(): number {
    return readU32(this.buf, this.off + ICMPV6_REST);
  }
  set rest(v: number) {
    writeU32(this.buf, this.off + ICMPV6_REST, v);
  }
  get id(): number {
    return readU16(this.buf, this.off + ICMPV6_ID);
  }
  set id(v: number) {
    writeU16(this.buf, this.off + ICMPV6_ID, v);
  }
  get seq(): number {
    return readU16(this.buf, this.off + ICMPV6_SEQ);
  }
  set seq(v: number) {
    writeU16(this.buf, this.off + ICMPV6_SEQ, v);
  }
  /** Packet too big: the next-hop MTU. */
  get mtu(): number {
    return readU32(this.buf, this.off + ICMPV6_MTU);
  }
  set mtu(v: number) {
    writeU32(this.buf, this.off + ICMPV6_MTU, v);
  }
  /** Parameter problem: offset of the offending byte in the quoted packet. */
  get pointer(): number {
    return readU32(this.buf, this.off + ICMPV6_POINTER);
  }
  set pointer(v: number) {
    writeU32(this.buf, this.off + ICMPV6_POINTER, v);
  }
  get isError(): boolean {
    return isIcmpv6Error(this.type);
  }
  /** Absolute offset of the quoted packet (errors) or of the echo data. */
  get payloadOffset(): number {
    return this.off + ICMPV6_HEADER_LEN;
  }
  get payloadLength(): number {
    return this.len - ICMPV6_HEADER_LEN;
  }

  /** ipOff: the enclosing IPv6 header (its addresses are in the pseudo header). */
  verifyChecksum(ipOff: number): boolean {
    return verifyL4Checksum6(this.buf, ipOff, IPPROTO_ICMPV6, this.off, this.len);
  }
  /** 0 when the checksum (with the pseudo-header of the IPv6 header at ipOff) is right, else DROP_ICMPV6_BAD_CSUM. */
  checkChecksum(ipOff: number): number {
    return this.verifyChecksum(ipOff) ? 0 : DROP_ICMPV6_BAD_CSUM;
  }
  fillChecksum(ipOff: number): void {
    fillL4Checksum6(this.buf, ipOff, IPPROTO_ICMPV6, this.off, this.len);
  }

  // --- Router advertisement ---
  get curHopLimit(): number {
    return this.buf[this.off + NDP_RA_CUR_HOP_LIMIT];
  }
  set curHopLimit(v: number) {
    this.buf[this.off + NDP_RA_CUR_HOP_LIMIT] = v;
  }
  /** RA flags byte (M, O, and RFC 4191/5175 bits). */
  get raFlags(): number {
    return this.buf[this.off + NDP_RA_FLAGS];
  }
  set raFlags(v: number) {
    this.buf[this.off + NDP_RA_FLAGS] = v;
  }
  /** M: addresses via DHCPv6. */
  get managed(): boolean {
    return (this.raFlags & NDP_RA_FLAG_MANAGED) !== 0;
  }
  /** O: other configuration via DHCPv6. */
  get other(): boolean {
    return (this.raFlags & NDP_RA_FLAG_OTHER) !== 0;
  }
  /** Seconds; 0: not a default router. */
  get routerLifetime(): number {
    return readU16(this.buf, this.off + NDP_RA_ROUTER_LIFETIME);
  }
  set routerLifetime(v: number) {
    writeU16(this.buf, this.off + NDP_RA_ROUTER_LIFETIME, v);
  }
  /** Milliseconds; 0: unspecified. */
  get reachableTime(): number {
    return readU32(this.buf, this.off + NDP_RA_REACHABLE_TIME);
  }
  set reachableTime(v: number) {
    writeU32(this.buf, this.off + NDP_RA_REACHABLE_TIME, v);
  }
  /** Milliseconds; 0: unspecified. */
  get retransTimer(): number {
    return readU32(this.buf, this.off + NDP_RA_RETRANS_TIMER);
  }
  set retransTimer(v: number) {
    writeU32(this.buf, this.off + NDP_RA_RETRANS_TIMER, v);
  }

  // --- Neighbor advertisement ---
  /** NA flags byte: NDP_NA_FLAG_ROUTER | _SOLICITED | _OVERRIDE. */
  get naFlags(): number {
    return this.buf[this.off + NDP_NA_FLAGS];
  }
  set naFlags(v: number) {
    this.buf[this.off + NDP_NA_FLAGS] = v;
  }
  get isRouter(): boolean {
    return (this.naFlags & NDP_NA_FLAG_ROUTER) !== 0;
  }
  get solicited(): boolean {
    return (this.naFlags & NDP_NA_FLAG_SOLICITED) !== 0;
  }
  get override(): boolean {
    return (this.naFlags & NDP_NA_FLAG_OVERRIDE) !== 0;
  }

  // --- NS, NA, redirect ---
  /** Word i of the target address (NS, NA, redirect). */
  targetWord(i: number): number {
    return readU32(this.buf, this.off + NDP_TARGET + 4 * i);
  }
  getTarget(out: Uint32Array): Uint32Array {
    return readIp6(this.buf, this.off + NDP_TARGET, out);
  }
  setTarget(a: ArrayLike<number>): void {
    writeIp6(this.buf, this.off + NDP_TARGET, a);
  }
  /** Redirect: the destination being redirected. */
  getRedirectDst(out: Uint32Array): Uint32Array {
    return readIp6(this.buf, this.off + NDP_REDIRECT_DST, out);
  }

  /** Absolute offset of the NDP options (the end of the fixed part); meaningful for NDP types. */
  get optionsOffset(): number {
    return this.off + ndpFixedLength(this.type);
  }

  /**
   * RFC 4861 validation of an NDP message inside ip (sections 6.1, 7.1, 8.1), except the
   * checksum (verifyChecksum): 0, or DROP_NDP_TOO_SHORT / DROP_NDP_BAD / DROP_NDP_BAD_OPTION.
   * Not an NDP type: DROP_NDP_BAD.
   */
  checkNdp(ip: Ipv6View): number {
    if (this.len < NDP_RS_LEN) return DROP_NDP_TOO_SHORT; // the shortest NDP message
    const t = this.type;
    const fixed = ndpFixedLength(t);
    if (fixed === 0) return DROP_NDP_BAD;
    if (this.len < fixed) return DROP_NDP_TOO_SHORT;
    if (ip.hopLimit !== NDP_HOP_LIMIT || this.code !== 0) return DROP_NDP_BAD;
    const fromUnspecified = isUnspecifiedIp6(ip.getSrc(scratchAddr));
    if (t === NDP_ROUTER_ADVERT || t === NDP_REDIRECT) {
      if (!isLinkLocalIp6(scratchAddr)) return DROP_NDP_BAD;
    }
    if (t === NDP_NEIGHBOR_SOLICIT || t === NDP_NEIGHBOR_ADVERT || t === NDP_REDIRECT) {
      if (this.buf[this.off + NDP_TARGET] === 0xff) return DROP_NDP_BAD; // multicast target
    }
    if (t === NDP_NEIGHBOR_SOLICIT && fromUnspecified && !isSolicitedNodeIp6(ip.getDst(scratchAddr))) return DROP_NDP_BAD;
    if (t === NDP_NEIGHBOR_ADVERT && ip.dstIsMulticast && this.solicited) return DROP_NDP_BAD;
    if (t === NDP_REDIRECT && isMulticastIp6(this.getRedirectDst(scratchAddr))) return DROP_NDP_BAD;
    const w = checkWalker.resetFrom(this);
    while (w.next()) {
      // A solicitation from :: carries no source link-layer address option.
      if (fromUnspecified && w.type === NDP_OPT_SOURCE_LLADDR) return DROP_NDP_BAD;
    }
    return w.error;
  }
}

/**
 * Steps over the options of an NDP message, reused per packet: reset, then
 * `while (w.next()) { switch (w.type) ... }`, then w.error (0, or DROP_NDP_BAD_OPTION for an
 * option of length 0 or one running past the message; RFC 4861 section 4.6 says discard the
 * packet). The typed getters read the current option; check `wellFormed` first (a known
 * option whose length does not fit its format is ignored, as Linux does).
 */
export class NdpOptionWalker {
  buf: Uint8Array = new Uint8Array(0);
  /** Absolute offset of the current option (its type byte), -1 before the first. */
  offset = -1;
  type = 0;
  /** Bytes of the current option (length field * 8). */
  length = 0;
  error = 0;
  private at = 0;
  private end = 0;

  /** off, len: the option area. */
  reset(buf: Uint8Array, off: number, len: number): this {
    this.buf = buf;
    this.at = off;
    this.end = off + len;
    this.offset = -1;
    this.type = 0;
    this.length = 0;
    this.error = 0;
    return this;
  }

  /** The options of an NDP message (after its checkLen and a length check against its type). */
  resetFrom(v: Icmpv6View): this {
    const o = v.optionsOffset;
    return this.reset(v.buf, o, v.off + v.len - o);
  }

  /** Advance to the next option: false at the end or on a malformed option (error set). */
  next(): boolean {
    const o = this.at;
    if (o >= this.end) return false;
    const units = o + NDP_OPT_LEN < this.end ? this.buf[o + NDP_OPT_LEN] : 0;
    if (units === 0 || o + units * NDP_OPT_UNIT > this.end) {
      this.error = DROP_NDP_BAD_OPTION;
      this.at = this.end;
      return false;
    }
    this.offset = o;
    this.type = this.buf[o + NDP_OPT_TYPE];
    this.length = units * NDP_OPT_UNIT;
    this.at = o + this.length;
    return true;
  }

  /** The current option's length fits its type (unknown types: true). */
  get wellFormed(): boolean {
    const n = this.length;
    switch (this.type) {
      case NDP_OPT_SOURCE_LLADDR:
      case NDP_OPT_TARGET_LLADDR:
        return n === NDP_OPT_LLADDR_LEN;
      case NDP_OPT_PREFIX_INFO:
        return n === NDP_PI_LEN;
      case NDP_OPT_MTU:
        return n === NDP_MTU_LEN;
      case NDP_OPT_RDNSS:
        return n >= NDP_RDNSS_MIN_LEN && (n - NDP_RDNSS_ADDRS) % IP6_LEN === 0;
      default:
        return true;
    }
  }

  /** Source/target link-layer address option: the MAC (mac.ts number). */
  get linkLayerAddress(): number {
    return readMac(this.buf, this.offset + NDP_OPT_LLADDR);
  }

  // Prefix information
  get prefixLength(): number {
    return this.buf[this.offset + NDP_PI_PREFIX_LEN];
  }
  /** L: the prefix is on-link. */
  get onLink(): boolean {
    return (this.buf[this.offset + NDP_PI_FLAGS] & NDP_PI_FLAG_ONLINK) !== 0;
  }
  /** A: usable for stateless address autoconfiguration. */
  get autonomous(): boolean {
    return (this.buf[this.offset + NDP_PI_FLAGS] & NDP_PI_FLAG_AUTO) !== 0;
  }
  /** Seconds; 0xffffffff: infinity. */
  get validLifetime(): number {
    return readU32(this.buf, this.offset + NDP_PI_VALID_LIFETIME);
  }
  get preferredLifetime(): number {
    return readU32(this.buf, this.offset + NDP_PI_PREFERRED_LIFETIME);
  }
  getPrefix(out: Uint32Array): Uint32Array {
    return readIp6(this.buf, this.offset + NDP_PI_PREFIX, out);
  }

  // MTU
  get mtu(): number {
    return readU32(this.buf, this.offset + NDP_MTU_VALUE);
  }

  // RDNSS (RFC 8106)
  /** Seconds; 0xffffffff: infinity. */
  get rdnssLifetime(): number {
    return readU32(this.buf, this.offset + NDP_RDNSS_LIFETIME);
  }
  get rdnssCount(): number {
    return (this.length - NDP_RDNSS_ADDRS) / IP6_LEN;
  }
  /** Server i (0 .. rdnssCount-1) into out. */
  getRdnss(i: number, out: Uint32Array): Uint32Array {
    return readIp6(this.buf, this.offset + NDP_RDNSS_ADDRS + i * IP6_LEN, out);
  }
}

const checkWalker = new NdpOptionWalker();

/**
 * May an error of this type/code be sent about the IPv6 packet ip, whose chain w has walked?
 * RFC 4443 section 2.4 (e): not about an ICMPv6 error, nor about a packet from an
 * unspecified or multicast source, nor to a multicast destination (except packet too big
 * and parameter problem code 2). Link-layer multicast is the caller's to check.
 */
export function icmpv6ErrorAllowed(ip: Ipv6View, w: Ipv6ExtWalker, type: number, code: number): boolean {
  const src = ip.getSrc(scratchAddr);
  if (isUnspecifiedIp6(src) || isMulticastIp6(src)) return false;
  if (ip.dstIsMulticast && type !== ICMPV6_PACKET_TOO_BIG && !(type === ICMPV6_PARAM_PROBLEM && code === ICMPV6_UNKNOWN_OPTION)) {
    return false;
  }
  if (w.protocol === IPPROTO_ICMPV6 && !w.isLaterFragment && w.offset < ip.off + ip.len) {
    return !isIcmpv6Error(ip.buf[w.offset + ICMPV6_TYPE]);
  }
  return true;
}

/** Write the IPv6 header for an ICMPv6 message of n bytes at off + 40, fill its checksum; returns 40 + n. */
function finishIcmpv6(buf: Uint8Array, off: number, n: number, hopLimit: number, src: ArrayLike<number>, dst: ArrayLike<number>): number {
  writeIpv6Header(buf, off, n, IPPROTO_ICMPV6, hopLimit, src, dst);
  fillL4Checksum6(buf, off, IPPROTO_ICMPV6, off + IPV6_HEADER_LEN, n);
  return IPV6_HEADER_LEN + n;
}

/** ICMPv6 type, code, zero checksum and 32-bit rest at m. */
function writeIcmpv6Header(buf: Uint8Array, m: number, type: number, code: number, rest: number): void {
  buf[m + ICMPV6_TYPE] = type;
  buf[m + ICMPV6_CODE] = code;
  writeU16(buf, m + ICMPV6_CSUM, 0);
  writeU32(buf, m + ICMPV6_REST, rest);
}

/** A link-layer address option at o; returns its length. */
function writeLlaOption(buf: Uint8Array, o: number, type: number, mac: number): number {
  writeOptionHeader(buf, o, type, NDP_OPT_LLADDR_LEN);
  writeMac(buf, o + NDP_OPT_LLADDR, mac);
  return NDP_OPT_LLADDR_LEN;
}

/** NS or NA (same layout: rest, target, one optional link-layer address option). */
function emitNeighbor(
  buf: Uint8Array, off: number, type: number, rest: number, src: ArrayLike<number>, dst: ArrayLike<number>,
  target: ArrayLike<number>, optType: number, mac: number,
): number {
  const m = off + IPV6_HEADER_LEN;
  writeIcmpv6Header(buf, m, type, 0, rest);
  writeIp6(buf, m + NDP_TARGET, target);
  let n = NDP_NS_LEN;
  if (mac >= 0) n += writeLlaOption(buf, m + n, optType, mac);
  return finishIcmpv6(buf, off, n, NDP_HOP_LIMIT, src, dst);
}

/**
 * Neighbor solicitation for target from src to dst (the target's solicited-node address, or
 * the target for unicast reachability probes), with a source link-layer address option
 * unless srcMac < 0 (required for duplicate address detection from ::). Returns bytes written.
 */
export function emitNeighborSolicit(
  buf: Uint8Array, off: number, src: ArrayLike<number>, dst: ArrayLike<number>, target: ArrayLike<number>, srcMac: number,
): number {
  return emitNeighbor(buf, off, NDP_NEIGHBOR_SOLICIT, 0, src, dst, target, NDP_OPT_SOURCE_LLADDR, srcMac);
}

/**
 * Neighbor advertisement for target (flags: NDP_NA_FLAG_*) from src to dst, with a target
 * link-layer address option unless targetMac < 0. Returns bytes written.
 */
export function emitNeighborAdvert(
  buf: Uint8Array, off: number, src: ArrayLike<number>, dst: ArrayLike<number>, target: ArrayLike<number>,
  flags: number, targetMac: number,
): number {
  return emitNeighbor(buf, off, NDP_NEIGHBOR_ADVERT, (flags & 0xff) << 24, src, dst, target, NDP_OPT_TARGET_LLADDR, targetMac);
}

/**
 * Echo reply from src to the source of the echo request whose IPv6 header is at
 * req[reqIpOff] and whose ICMPv6 message is req[reqIcmpOff, +reqIcmpLen): same id, seq and
 * data. buf may be req with off = reqIpOff (reply in place; extension headers are dropped).
 */
export function emitEchoReply(
  buf: Uint8Array, off: number, src: ArrayLike<number>, req: Uint8Array, reqIpOff: number, reqIcmpOff: number,
  reqIcmpLen: number, hopLimit = 64,
): number {
  const m = off + IPV6_HEADER_LEN;
  copyBytes(buf, m, req, reqIcmpOff, reqIcmpLen); // first: in place, this only moves the message down
  const dst = readIp6(req, reqIpOff + IPV6_SRC, scratchAddr);
  buf[m + ICMPV6_TYPE] = ICMPV6_ECHO_REPLY;
  buf[m + ICMPV6_CODE] = 0;
  return finishIcmpv6(buf, off, reqIcmpLen, hopLimit, src, dst);
}

/**
 * ICMPv6 error (type, code, rest = MTU for packet too big, pointer for parameter problem, else
 * 0) from src to the source of the offending packet orig[origOff, +origLen), quoting as much
 * of it as fits in IPV6_MIN_MTU. buf may be orig (the quote is moved with copyWithin). Check
 * icmpv6ErrorAllowed first. Returns bytes written.
 */
export function emitIcmpv6Error(
  buf: Uint8Array, off: number, src: ArrayLike<number>, type: number, code: number, rest: number,
  orig: Uint8Array, origOff: number, origLen: number, hopLimit = 64,
): number {
  const m = off + IPV6_HEADER_LEN;
  const q = Math.min(origLen, ICMPV6_ERR_MAX_QUOTE);
  copyBytes(buf, m + ICMPV6_ERR_IP, orig, origOff, q);
  const dst = readIp6(buf, m + ICMPV6_ERR_IP + IPV6_SRC, scratchAddr); // from the quote: orig may be overwritten
  writeIcmpv6Header(buf, m, type, code, rest);
  return finishIcmpv6(buf, off, ICMPV6_HEADER_LEN + q, hopLimit, src, dst);
}

// --- Plain-object forms (control plane, tests) ---

export interface NdpPrefix {
  prefix: Uint32Array;
  prefixLength: number;
  onLink: boolean;
  autonomous: boolean;
  validLifetime: number;
  preferredLifetime: number;
}

export interface NdpRdnss {
  lifetime: number;
  servers: Uint32Array[];
}

/** The NDP options this layer knows; parse fills `prefixes` and `rdnss` always (maybe empty). */
export interface NdpOptions {
  sourceMac?: number;
  targetMac?: number;
  mtu?: number;
  prefixes?: NdpPrefix[];
  rdnss?: NdpRdnss[];
}

export interface RouterAdvertHeader {
  curHopLimit: number;
  managed: boolean;
  other: boolean;
  routerLifetime: number;
  reachableTime: number;
  retransTimer: number;
}

/** An RA to emit: IPv6 addresses, fixed fields, options (written as SLLA, MTU, prefixes, RDNSS). */
export interface RouterAdvertFields extends RouterAdvertHeader, NdpOptions {
  src: Uint32Array;
  dst: Uint32Array;
}

export interface NdpFields extends NdpOptions {
  type: number;
  code: number;
  checksum: number;
  /** RA only. */
  ra?: RouterAdvertHeader;
  /** NA only: NDP_NA_FLAG_* bits. */
  naFlags?: number;
  /** NS, NA, redirect. */
  target?: Uint32Array;
  /** Redirect only. */
  destination?: Uint32Array;
}

export interface Icmpv6Fields {
  type: number;
  code: number;
  /** Parse: as found. Emit: written as given (default 0); fill it with checksum.ts fillL4Checksum6. */
  checksum?: number;
  /** Bytes 4..7: echo id << 16 | seq, the MTU, the pointer, or NDP flags. */
  rest: number;
  /** Everything after the 8-byte header; parse always fills it (a copy). */
  payload?: Uint8Array;
}

export function parseIcmpv6(buf: Uint8Array, off: number, len: number): Icmpv6Fields | null {
  const v = new Icmpv6View().reset(buf, off, len);
  if (v.checkLen() !== 0) return null;
  return { type: v.type, code: v.code, checksum: v.checksum, rest: v.rest, payload: buf.slice(v.payloadOffset, off + len) };
}

/** Write header + payload; returns bytes written. */
export function emitIcmpv6(f: Icmpv6Fields, buf: Uint8Array, off: number): number {
  writeIcmpv6Header(buf, off, f.type, f.code, f.rest);
  writeU16(buf, off + ICMPV6_CSUM, f.checksum ?? 0);
  if (f.payload) buf.set(f.payload, off + ICMPV6_HEADER_LEN);
  return ICMPV6_HEADER_LEN + (f.payload?.length ?? 0);
}

/**
 * Parse an NDP message (the ICMPv6 message at off, len bytes) with its known options; null
 * if too short for its type, not NDP, or an option is malformed. Ill-sized known options
 * are skipped. Validation against the IPv6 header is Icmpv6View.checkNdp's.
 */
export function parseNdp(buf: Uint8Array, off: number, len: number): NdpFields | null {
  const v = new Icmpv6View().reset(buf, off, len);
  if (v.checkLen() !== 0) return null;
  const t = v.type;
  const fixed = ndpFixedLength(t);
  if (fixed === 0 || len < fixed) return null;
  const f: NdpFields = { type: t, code: v.code, checksum: v.checksum, prefixes: [], rdnss: [] };
  if (t === NDP_ROUTER_ADVERT) {
    f.ra = {
      curHopLimit: v.curHopLimit, managed: v.managed, other: v.other, routerLifetime: v.routerLifetime,
      reachableTime: v.reachableTime, retransTimer: v.retransTimer,
    };
  }
  if (t === NDP_NEIGHBOR_ADVERT) f.naFlags = v.naFlags;
  if (t === NDP_NEIGHBOR_SOLICIT || t === NDP_NEIGHBOR_ADVERT || t === NDP_REDIRECT) f.target = v.getTarget(new Uint32Array(IP6_WORDS));
  if (t === NDP_REDIRECT) f.destination = v.getRedirectDst(new Uint32Array(IP6_WORDS));
  const w = new NdpOptionWalker().resetFrom(v);
  while (w.next()) {
    if (!w.wellFormed) continue;
    if (w.type === NDP_OPT_SOURCE_LLADDR) f.sourceMac = w.linkLayerAddress;
    else if (w.type === NDP_OPT_TARGET_LLADDR) f.targetMac = w.linkLayerAddress;
    else if (w.type === NDP_OPT_MTU) f.mtu = w.mtu;
    else if (w.type === NDP_OPT_PREFIX_INFO) {
      f.prefixes!.push({
        prefix: w.getPrefix(new Uint32Array(IP6_WORDS)), prefixLength: w.prefixLength, onLink: w.onLink,
        autonomous: w.autonomous, validLifetime: w.validLifetime, preferredLifetime: w.preferredLifetime,
      });
    } else if (w.type === NDP_OPT_RDNSS) {
      const servers: Uint32Array[] = [];
      for (let i = 0; i < w.rdnssCount; i++) servers.push(w.getRdnss(i, new Uint32Array(IP6_WORDS)));
      f.rdnss!.push({ lifetime: w.rdnssLifetime, servers });
    }
  }
  return w.error === 0 ? f : null;
}

/** Write a complete router advertisement (IPv6 header, RA, options, checksum); returns bytes written. */
export function emitRouterAdvert(f: RouterAdvertFields, buf: Uint8Array, off: number): number {
  const m = off + IPV6_HEADER_LEN;
  const flags = (f.managed ? NDP_RA_FLAG_MANAGED : 0) | (f.other ? NDP_RA_FLAG_OTHER : 0);
  writeIcmpv6Header(buf, m, NDP_ROUTER_ADVERT, 0, (((f.curHopLimit & 0xff) << 24) | (flags << 16) | (f.routerLifetime & 0xffff)) >>> 0);
  writeU32(buf, m + NDP_RA_REACHABLE_TIME, f.reachableTime);
  writeU32(buf, m + NDP_RA_RETRANS_TIMER, f.retransTimer);
  let o = m + NDP_RA_LEN;
  if (f.sourceMac !== undefined) o += writeLlaOption(buf, o, NDP_OPT_SOURCE_LLADDR, f.sourceMac);
  if (f.mtu !== undefined) {
    writeOptionHeader(buf, o, NDP_OPT_MTU, NDP_MTU_LEN);
    writeU32(buf, o + NDP_MTU_VALUE, f.mtu);
    o += NDP_MTU_LEN;
  }
  for (const p of f.prefixes ?? []) {
    writeOptionHeader(buf, o, NDP_OPT_PREFIX_INFO, NDP_PI_LEN);
    buf[o + NDP_PI_PREFIX_LEN] = p.prefixLength;
    buf[o + NDP_PI_FLAGS] = (p.onLink ? NDP_PI_FLAG_ONLINK : 0) | (p.autonomous ? NDP_PI_FLAG_AUTO : 0);
    writeU32(buf, o + NDP_PI_VALID_LIFETIME, p.validLifetime);
    writeU32(buf, o + NDP_PI_PREFERRED_LIFETIME, p.preferredLifetime);
    writeU32(buf, o + NDP_PI_RESERVED2, 0);
    writeIp6(buf, o + NDP_PI_PREFIX, p.prefix);
    o += NDP_PI_LEN;
  }
  for (const r of f.rdnss ?? []) {
    const n = NDP_RDNSS_ADDRS + r.servers.length * IP6_LEN;
    writeOptionHeader(buf, o, NDP_OPT_RDNSS, n);
    writeU32(buf, o + NDP_RDNSS_LIFETIME, r.lifetime);
    for (let i = 0; i < r.servers.length; i++) writeIp6(buf, o + NDP_RDNSS_ADDRS + i * IP6_LEN, r.servers[i]);
    o += n;
  }
  return finishIcmpv6(buf, off, o - m, NDP_HOP_LIMIT, f.src, f.dst);
}

/** Option type, length (bytes, a multiple of 8) and two zero bytes (reserved in MTU and RDNSS). */
function writeOptionHeader(buf: Uint8Array, o: number, type: number, len: number): void {
  buf[o + NDP_OPT_TYPE] = type;
  buf[o + NDP_OPT_LEN] = len / NDP_OPT_UNIT;
  writeU16(buf, o + 2, 0);
}
