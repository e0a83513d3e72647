/*
 * IPv6 header (RFC 8200) and its extension-header chain. Ipv6View.checkLen() validates the
 * version and the payload length against the available bytes (trailing Ethernet padding is
 * allowed; jumbograms are not supported: payload length 0 is an empty payload);
 * checkHeader() only the fixed header, for the truncated packet quoted in an ICMPv6 error.
 * Addresses are four uint32 words (ip6.ts). There is no header checksum: L4 checksums cover
 * the IPv6 pseudo header (checksum.ts pseudoHeaderSum6).
 *
 * Ipv6ExtWalker walks hop-by-hop, routing, fragment and destination-options headers up to
 * the upper-layer header, bounded by IPV6_EXT_MAX_HEADERS headers and IPV6_EXT_MAX_BYTES
 * bytes; its results are fields of the (reused) walker. Anything else, AH and ESP included,
 * counts as the upper layer; IPPROTO_NONE (59) ends the chain.
 */

import { readU16, readU32, writeU16, writeU32 } from './bytes.js';
import {
  DROP_IPV6_BAD_LEN, DROP_IPV6_BAD_VERSION, DROP_IPV6_EXT_BAD, DROP_IPV6_EXT_BAD_LEN, DROP_IPV6_EXT_HBH_NOT_FIRST,
  DROP_IPV6_EXT_TOO_LONG, DROP_IPV6_EXT_TOO_MANY, DROP_IPV6_EXT_TRUNCATED, DROP_IPV6_TOO_SHORT,
} from './drop.js';
import { IP6_WORDS, ip6EqualsAt, readIp6, writeIp6 } from './ip6.js';
import { WireView } from './view.js';

export const IPV6_VER_TC_FLOW = 0; // version (4 bits), traffic class (8 bits), flow label (20 bits)
export const IPV6_PAYLOAD_LEN = 4;
export const IPV6_NEXT_HEADER = 6;
export const IPV6_HOP_LIMIT = 7;
export const IPV6_SRC = 8;
export const IPV6_DST = 24;
export const IPV6_HEADER_LEN = 40;
/** Every IPv6 link carries at least this (RFC 8200 section 5). */
export const IPV6_MIN_MTU = 1280;
export const IPV6_FLOW_LABEL_MASK = 0xfffff;

export const IPPROTO_HOPOPTS = 0;
export const IPPROTO_ROUTING = 43;
export const IPPROTO_FRAGMENT = 44;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_NONE = 59;
export const IPPROTO_DSTOPTS = 60;

// Extension headers: next header, then Hdr Ext Len in 8-byte units not counting the first 8.
export const IPV6_EXT_NEXT_HEADER = 0;
export const IPV6_EXT_LEN = 1;
export const IPV6_EXT_UNIT = 8;
export const IPV6_EXT_OPTIONS = 2; // first TLV option of hop-by-hop / destination options
export const IPV6_RH_TYPE = 2;
export const IPV6_RH_SEGMENTS_LEFT = 3;
export const IPV6_FRAG_OFF_FLAGS = 2; // offset (13 bits, 8-byte units) << 3 | M
export const IPV6_FRAG_ID = 4;
export const IPV6_FRAG_HEADER_LEN = 8;
export const IPV6_FRAG_MF = 0x0001;
export const IPV6_FRAG_OFF_SHIFT = 3;

// TLV options of hop-by-hop / destination options (type, length, data)
export const IPV6_OPT_PAD1 = 0;
export const IPV6_OPT_PADN = 1;
export const IPV6_OPT_ROUTER_ALERT = 5;

/** Bounds of the chain walk: headers, and bytes from the end of the fixed header. */
export const IPV6_EXT_MAX_HEADERS = 8;
export const IPV6_EXT_MAX_BYTES = 1024;

const VERSION_6 = 6;
const MAX_DATAGRAM = 0xffff; // fragment offset + length limit (RFC 8200 section 4.5)

/** Next-header values the chain walk steps over. */
export function isIpv6ExtHeader(nh: number): boolean {
  return nh === IPPROTO_HOPOPTS || nh === IPPROTO_ROUTING || nh === IPPROTO_FRAGMENT || nh === IPPROTO_DSTOPTS;
}

/** len: bytes available from off (e.g. the Ethernet payload length). */
export class Ipv6View extends WireView {
  /** 0 if the version is 6 and 40 + payload length fits in len, else a DROP_* code. */
  checkLen(): number {
    const e = this.checkHeader();
    if (e !== 0) return e;
    return this.packetLength > this.len ? DROP_IPV6_BAD_LEN : 0;
  }

  /** Like checkLen but ignores the payload length: only the fixed header must be in bounds. */
  checkHeader(): number {
    if (this.len < IPV6_HEADER_LEN) return DROP_IPV6_TOO_SHORT;
    return this.buf[this.off] >>> 4 !== VERSION_6 ? DROP_IPV6_BAD_VERSION : 0;
  }

  get version(): number {
    return this.buf[this.off] >>> 4;
  }
  get trafficClass(): number {
    return (readU16(this.buf, this.off + IPV6_VER_TC_FLOW) >>> 4) & 0xff;
  }
  set trafficClass(v: number) {
    const o = this.off + IPV6_VER_TC_FLOW;
    writeU16(this.buf, o, (readU16(this.buf, o) & 0xf00f) | ((v & 0xff) << 4));
  }
  get flowLabel(): number {
    return readU32(this.buf, this.off + IPV6_VER_TC_FLOW) & IPV6_FLOW_LABEL_MASK;
  }
  set flowLabel(v: number) {
    const o = this.off + IPV6_VER_TC_FLOW;
    writeU32(this.buf, o, (readU32(this.buf, o) & ~IPV6_FLOW_LABEL_MASK) | (v & IPV6_FLOW_LABEL_MASK));
  }
  /** Bytes after the fixed header (extension headers included). */
  get payloadLength(): number {
    return readU16(this.buf, this.off + IPV6_PAYLOAD_LEN);
  }
  set payloadLength(v: number) {
    writeU16(this.buf, this.off + IPV6_PAYLOAD_LEN, v);
  }
  /** The first next-header value (an extension header or the upper layer). */
  get nextHeader(): number {
    return this.buf[this.off + IPV6_NEXT_HEADER];
  }
  set nextHeader(v: number) {
    this.buf[this.off + IPV6_NEXT_HEADER] = v;
  }
  get hopLimit(): number {
    return this.buf[this.off + IPV6_HOP_LIMIT];
  }
  set hopLimit(v: number) {
    this.buf[this.off + IPV6_HOP_LIMIT] = v;
  }

  /**
   * Word i (0 = most significant) of the source address. A word above 2^31 is boxed by V8
   * when this call is not inlined: per-packet code that needs all four words reads them with
   * getSrc into a scratch Uint32Array, or compares in place (srcEquals).
   */
  srcWord(i: number): number {
    return readU32(this.buf, this.off + IPV6_SRC + 4 * i);
  }
  /** Word i of the destination address (see srcWord). */
  dstWord(i: number): number {
    return readU32(this.buf, this.off + IPV6_DST + 4 * i);
  }
  /** Source address into out (a Uint32Array(4)); returns out. */
  getSrc(out: Uint32Array): Uint32Array {
    return readIp6(this.buf, this.off + IPV6_SRC, out);
  }
  getDst(out: Uint32Array): Uint32Array {
    return readIp6(this.buf, this.off + IPV6_DST, out);
  }
  setSrc(a: ArrayLike<number>): void {
    writeIp6(this.buf, this.off + IPV6_SRC, a);
  }
  setDst(a: ArrayLike<number>): void {
    writeIp6(this.buf, this.off + IPV6_DST, a);
  }
  srcEquals(a: ArrayLike<number>): boolean {
    return ip6EqualsAt(this.buf, this.off + IPV6_SRC, a);
  }
  dstEquals(a: ArrayLike<number>): boolean {
    return ip6EqualsAt(this.buf, this.off + IPV6_DST, a);
  }
  /** The destination is multicast (ff00::/8), tested in place. */
  get dstIsMulticast(): boolean {
    return this.buf[this.off + IPV6_DST] === 0xff;
  }

  /** Absolute offset of the first header after the fixed one. */
  get payloadOffset(): number {
    return this.off + IPV6_HEADER_LEN;
  }
  /** 40 + payload length: the packet without link padding (valid after checkLen). */
  get packetLength(): number {
    return IPV6_HEADER_LEN + this.payloadLength;
  }

  /** Decrement the hop limit (caller checked it is > 1; no header checksum); returns the new value. */
  decrementHopLimit(): number {
    const o = this.off + IPV6_HOP_LIMIT;
    this.buf[o]--;
    return this.buf[o];
  }
}

/**
 * Write a fixed IPv6 header with traffic class and flow label 0 (the data-plane form of
 * emitIpv6); returns IPV6_HEADER_LEN.
 */
export function writeIpv6Header(
  buf: Uint8Array, off: number, payloadLength: number, nextHeader: number, hopLimit: number,
  src: ArrayLike<number>, dst: ArrayLike<number>,
): number {
  writeU32(buf, off + IPV6_VER_TC_FLOW, VERSION_6 << 28);
  writeU16(buf, off + IPV6_PAYLOAD_LEN, payloadLength);
  buf[off + IPV6_NEXT_HEADER] = nextHeader;
  buf[off + IPV6_HOP_LIMIT] = hopLimit;
  writeIp6(buf, off + IPV6_SRC, src);
  writeIp6(buf, off + IPV6_DST, dst);
  return IPV6_HEADER_LEN;
}

export interface Ipv6Fields {
  trafficClass: number;
  flowLabel: number;
  payloadLength: number;
  nextHeader: number;
  hopLimit: number;
  src: Uint32Array;
  dst: Uint32Array;
}

export function parseIpv6(buf: Uint8Array, off: number, len: number): Ipv6Fields | null {
  const v = new Ipv6View().reset(buf, off, len);
  if (v.checkLen() !== 0) return null;
  return {
    trafficClass: v.trafficClass,
    flowLabel: v.flowLabel,
    payloadLength: v.payloadLength,
    nextHeader: v.nextHeader,
    hopLimit: v.hopLimit,
    src: v.getSrc(new Uint32Array(IP6_WORDS)),
    dst: v.getDst(new Uint32Array(IP6_WORDS)),
  };
}

/** Write the fixed header; returns IPV6_HEADER_LEN. */
export function emitIpv6(f: Ipv6Fields, buf: Uint8Array, off: number): number {
  writeIpv6Header(buf, off, f.payloadLength, f.nextHeader, f.hopLimit, f.src, f.dst);
  writeU32(buf, off + IPV6_VER_TC_FLOW,
    (VERSION_6 << 28) | ((f.trafficClass & 0xff) << 20) | (f.flowLabel & IPV6_FLOW_LABEL_MASK));
  return IPV6_HEADER_LEN;
}

/**
 * Offset of the first TLV option in buf[o, end) whose length runs past end, or -1 if they
 * all fit (Pad1 is a single byte; every other option is type, length, data).
 */
function badTlvOption(buf: Uint8Array, o: number, end: number): number {
  while (o < end) {
    if (buf[o] === IPV6_OPT_PAD1) {
      o++;
      continue;
    }
    if (o + 2 > end || o + 2 + buf[o + 1] > end) return o;
    o += 2 + buf[o + 1];
  }
  return -1;
}

/**
 * Extension-header chain walker, reused per packet. walk() fills the fields below and
 * returns 0, or a DROP_* code with errorOffset naming the field at fault (an ICMPv6
 * parameter-problem pointer is errorOffset minus the IPv6 header's offset).
 */
export class Ipv6ExtWalker {
  /** Upper-layer protocol (IPPROTO_NONE for 59); in a later fragment the fragment's next header. */
  protocol = IPPROTO_NONE;
  /** Absolute offset of the upper-layer header (in a later fragment: of the fragment data). */
  offset = 0;
  /** Absolute offset of the byte that holds `protocol` (fixed header or last extension header). */
  nextHeaderAt = 0;
  /** Extension headers walked. */
  headerCount = 0;
  /** Absolute offset of the fragment header, -1 without one. */
  fragHeaderOffset = -1;
  /** Fragment offset in 8-byte units (0 without a fragment header). */
  fragOffset = 0;
  moreFragments = false;
  fragId = 0;
  /** Routing type of the (last) routing header, -1 without one. */
  routingType = -1;
  segmentsLeft = 0;
  /** Absolute offset of the field at fault when walk() failed (protocol is then IPPROTO_NONE), else -1. */
  errorOffset = -1;

  /** The packet is part of a fragmented datagram (an atomic fragment, RFC 6946, is not). */
  get isFragment(): boolean {
    return this.fragOffset !== 0 || this.moreFragments;
  }
  /** A fragment other than the first: the upper-layer header is not in this packet. */
  get isLaterFragment(): boolean {
    return this.fragOffset !== 0;
  }
  /** Bytes of extension headers (from the end of the fixed header to `offset`). */
  extLength(ipOff: number): number {
    return this.offset - ipOff - IPV6_HEADER_LEN;
  }

  /**
   * Walk the chain of the IPv6 packet at off (its fixed header checked by Ipv6View), of
   * which len bytes are available (at most Ipv6View.packetLength; fewer for a quoted packet).
   */
  walk(buf: Uint8Array, off: number, len: number): number {
    this.headerCount = 0;
    this.fragHeaderOffset = -1;
    this.fragOffset = 0;
    this.moreFragments = false;
    this.fragId = 0;
    this.routingType = -1;
    this.segmentsLeft = 0;
    this.errorOffset = -1;
    const start = off + IPV6_HEADER_LEN;
    const end = off + len;
    let nhAt = off + IPV6_NEXT_HEADER;
    let nh = buf[nhAt];
    let at = start;
    // What a failed walk leaves: no upper layer.
    this.protocol = IPPROTO_NONE;
    this.offset = start;
    this.nextHeaderAt = nhAt;
    while (isIpv6ExtHeader(nh)) {
      if (nh === IPPROTO_HOPOPTS && at !== start) return this.fail(DROP_IPV6_EXT_HBH_NOT_FIRST, nhAt);
      if (this.headerCount === IPV6_EXT_MAX_HEADERS) return this.fail(DROP_IPV6_EXT_TOO_MANY, nhAt);
      if (at + IPV6_EXT_UNIT > end) return this.fail(DROP_IPV6_EXT_TRUNCATED, at);
      const hl = nh === IPPROTO_FRAGMENT ? IPV6_FRAG_HEADER_LEN : (buf[at + IPV6_EXT_LEN] + 1) * IPV6_EXT_UNIT;
      if (at + hl - start > IPV6_EXT_MAX_BYTES) return this.fail(DROP_IPV6_EXT_TOO_LONG, at + IPV6_EXT_LEN);
      if (at + hl > end) return this.fail(DROP_IPV6_EXT_TRUNCATED, at + IPV6_EXT_LEN);
      if (nh === IPPROTO_FRAGMENT) {
        const e = this.fragment(buf, off, at);
        if (e !== 0) return e;
      } else if (nh === IPPROTO_ROUTING) {
        this.routingType = buf[at + IPV6_RH_TYPE];
        this.segmentsLeft = buf[at + IPV6_RH_SEGMENTS_LEFT];
      } else {
        const bad = badTlvOption(buf, at + IPV6_EXT_OPTIONS, at + hl);
        if (bad >= 0) return this.fail(DROP_IPV6_EXT_BAD_LEN, bad);
      }
      this.headerCount++;
      nhAt = at + IPV6_EXT_NEXT_HEADER;
      nh = buf[nhAt];
      at += hl;
      if (this.fragOffset !== 0) break; // a later fragment: what follows is data
    }
    this.protocol = nh;
    this.offset = at;
    this.nextHeaderAt = nhAt;
    return 0;
  }

  /** Record the fragment header at `at`; checks RFC 8200 section 4.5's length rules. */
  private fragment(buf: Uint8Array, off: number, at: number): number {
    if (this.fragHeaderOffset >= 0) return this.fail(DROP_IPV6_EXT_BAD, at);
    const w = readU16(buf, at + IPV6_FRAG_OFF_FLAGS);
    this.fragHeaderOffset = at;
    this.fragOffset = w >>> IPV6_FRAG_OFF_SHIFT;
    this.moreFragments = (w & IPV6_FRAG_MF) !== 0;
    this.fragId = readU32(buf, at + IPV6_FRAG_ID);
    // Fragment data length from the payload length field (also right in a truncated quote).
    const dataLen = off + IPV6_HEADER_LEN + readU16(buf, off + IPV6_PAYLOAD_LEN) - (at + IPV6_FRAG_HEADER_LEN);
    if (this.moreFragments && dataLen % IPV6_EXT_UNIT !== 0) return this.fail(DROP_IPV6_EXT_BAD_LEN, off + IPV6_PAYLOAD_LEN);
    if (this.fragOffset * IPV6_EXT_UNIT + dataLen > MAX_DATAGRAM) return this.fail(DROP_IPV6_EXT_BAD_LEN, at + IPV6_FRAG_OFF_FLAGS);
    return 0;
  }

  private fail(code: number, at: number): number {
    this.errorOffset = at;
    return code;
  }
}
