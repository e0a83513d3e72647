/*
 * IPv4 header (RFC 791), options aware. Ipv4View.checkLen() validates version, IHL and
 * total length against the available bytes (trailing Ethernet padding is allowed);
 * checkHeader() only the header itself, for the truncated original packet quoted in an ICMP
 * error. The header checksum is checked separately (verifyChecksum).
 */

import { readU16, readU32, writeU16, writeU32 } from './bytes.js';
import { csumReplace16, fold16, ipv4HeaderChecksum, sum16 } from './checksum.js';
import { DROP_IPV4_BAD_IHL, DROP_IPV4_BAD_LEN, DROP_IPV4_BAD_VERSION, DROP_IPV4_TOO_SHORT } from './drop.js';
import { WireView } from './view.js';

export const IPV4_VER_IHL = 0;
export const IPV4_TOS = 1; // DSCP (6 bits) + ECN (2 bits)
export const IPV4_TOTAL_LEN = 2;
export const IPV4_ID = 4;
export const IPV4_FLAGS_FRAG = 6; // flags (3 bits) + fragment offset (13 bits, 8-byte units)
export const IPV4_TTL = 8;
export const IPV4_PROTO = 9;
export const IPV4_CSUM = 10;
export const IPV4_SRC = 12;
export const IPV4_DST = 16;
export const IPV4_MIN_HEADER_LEN = 20;
export const IPV4_MAX_HEADER_LEN = 60;

export const IPV4_FLAG_DF = 0x4000; // in the 16-bit flags+offset word
export const IPV4_FLAG_MF = 0x2000;
export const IPV4_FRAG_OFF_MASK = 0x1fff;

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

/** len: bytes available from off (e.g. the Ethernet payload length). */
export class Ipv4View extends WireView {
  /** 0 if version, IHL and total length are sound and within len, else a DROP_* code. */
  checkLen(): number {
    const e = this.checkHeader();
    if (e !== 0) return e;
    const tl = readU16(this.buf, this.off + IPV4_TOTAL_LEN);
    return tl < this.headerLen || tl > this.len ? DROP_IPV4_BAD_LEN : 0;
  }

  /** Like checkLen but ignores the total length: only the header must be in bounds. */
  checkHeader(): number {
    if (this.len < IPV4_MIN_HEADER_LEN) return DROP_IPV4_TOO_SHORT;
    const vi = this.buf[this.off];
    if (vi >>> 4 !== 4) return DROP_IPV4_BAD_VERSION;
    const hl = (vi & 0x0f) << 2;
    return hl < IPV4_MIN_HEADER_LEN || hl > this.len ? DROP_IPV4_BAD_IHL : 0;
  }

  get version(): number {
    return this.buf[this.off] >>> 4;
  }
  /** Header length in bytes (IHL * 4). */
  get headerLen(): number {
    return (this.buf[this.off] & 0x0f) << 2;
  }
  get tos(): number {
    return this.buf[this.off + IPV4_TOS];
  }
  set tos(v: number) {
    this.buf[this.off + IPV4_TOS] = v;
  }
  get totalLength(): number {
    return readU16(this.buf, this.off + IPV4_TOTAL_LEN);
  }
  set totalLength(v: number) {
    writeU16(this.buf, this.off + IPV4_TOTAL_LEN, v);
  }
  get id(): number {
    return readU16(this.buf, this.off + IPV4_ID);
  }
  set id(v: number) {
    writeU16(this.buf, this.off + IPV4_ID, v);
  }
  /** The raw flags + fragment offset word. */
  get flagsFrag(): number {
    return readU16(this.buf, this.off + IPV4_FLAGS_FRAG);
  }
  set flagsFrag(v: number) {
    writeU16(this.buf, this.off + IPV4_FLAGS_FRAG, v);
  }
  get dontFragment(): boolean {
    return (this.buf[this.off + IPV4_FLAGS_FRAG] & 0x40) !== 0;
  }
  get moreFragments(): boolean {
    return (this.buf[this.off + IPV4_FLAGS_FRAG] & 0x20) !== 0;
  }
  /** Fragment offset in 8-byte units (the field value). */
  get fragOffset(): number {
    return this.flagsFrag & IPV4_FRAG_OFF_MASK;
  }
  /** MF set or a non-zero offset: part of a fragmented datagram. */
  get isFragment(): boolean {
    return (this.flagsFrag & (IPV4_FLAG_MF | IPV4_FRAG_OFF_MASK)) !== 0;
  }
  /** A fragment other than the first: carries no L4 header. */
  get isLaterFragment(): boolean {
    return (this.flagsFrag & IPV4_FRAG_OFF_MASK) !== 0;
  }
  get ttl(): number {
    return this.buf[this.off + IPV4_TTL];
  }
  set ttl(v: number) {
    this.buf[this.off + IPV4_TTL] = v;
  }
  get protocol(): number {
    return this.buf[this.off + IPV4_PROTO];
  }
  set protocol(v: number) {
    this.buf[this.off + IPV4_PROTO] = v;
  }
  get checksum(): number {
    return readU16(this.buf, this.off + IPV4_CSUM);
  }
  set checksum(v: number) {
    writeU16(this.buf, this.off + IPV4_CSUM, v);
  }
  get src(): number {
    return readU32(this.buf, this.off + IPV4_SRC);
  }
  set src(addr: number) {
    writeU32(this.buf, this.off + IPV4_SRC, addr);
  }
  get dst(): number {
    return readU32(this.buf, this.off + IPV4_DST);
  }
  set dst(addr: number) {
    writeU32(this.buf, this.off + IPV4_DST, addr);
  }
  /** Absolute offset of the L4 header. */
  get payloadOffset(): number {
    return this.off + this.headerLen;
  }
  /** totalLength - headerLen (valid after checkLen). */
  get payloadLength(): number {
    return this.totalLength - this.headerLen;
  }

  verifyChecksum(): boolean {
    return fold16(sum16(this.buf, this.off, this.headerLen)) === 0xffff;
  }
  fillChecksum(): void {
    this.checksum = ipv4HeaderChecksum(this.buf, this.off, this.headerLen);
  }
  /** Decrement TTL (caller checked it is > 1), updating the checksum; returns the new TTL. */
  decrementTtl(): number {
    const o = this.off + IPV4_TTL;
    const old = readU16(this.buf, o);
    this.buf[o]--;
    this.checksum = csumReplace16(this.checksum, old, readU16(this.buf, o));
    return this.buf[o];
  }
}

export interface Ipv4Fields {
  tos: number;
  totalLength: number;
  id: number;
  dontFragment: boolean;
  moreFragments: boolean;
  fragOffset: number; // 8-byte units
  ttl: number;
  protocol: number;
  src: number;
  dst: number;
  /** Parse: as found. Emit: written as given, or computed when absent. */
  checksum?: number;
  /** Raw option bytes (length a multiple of 4, at most 40); parse always fills it. */
  options?: Uint8Array;
}

export function parseIpv4(buf: Uint8Array, off: number, len: number): Ipv4Fields | null {
  const v = new Ipv4View().reset(buf, off, len);
  if (v.checkLen() !== 0) return null;
  return {
    tos: v.tos,
    totalLength: v.totalLength,
    id: v.id,
    dontFragment: v.dontFragment,
    moreFragments: v.moreFragments,
    fragOffset: v.fragOffset,
    ttl: v.ttl,
    protocol: v.protocol,
    src: v.src,
    dst: v.dst,
    checksum: v.checksum,
    options: buf.slice(off + IPV4_MIN_HEADER_LEN, off + v.headerLen),
  };
}

/** Write the header (with options); returns the header length. */
export function emitIpv4(f: Ipv4Fields, buf: Uint8Array, off: number): number {
  const optLen = f.options?.length ?? 0;
  const hl = IPV4_MIN_HEADER_LEN + optLen;
  buf[off] = 0x40 | (hl >>> 2);
  buf[off + IPV4_TOS] = f.tos;
  writeU16(buf, off + IPV4_TOTAL_LEN, f.totalLength);
  writeU16(buf, off + IPV4_ID, f.id);
  writeU16(buf, off + IPV4_FLAGS_FRAG,
    (f.dontFragment ? IPV4_FLAG_DF : 0) | (f.moreFragments ? IPV4_FLAG_MF : 0) | (f.fragOffset & IPV4_FRAG_OFF_MASK));
  buf[off + IPV4_TTL] = f.ttl;
  buf[off + IPV4_PROTO] = f.protocol;
  writeU32(buf, off + IPV4_SRC, f.src);
  writeU32(buf, off + IPV4_DST, f.dst);
  if (f.options) buf.set(f.options, off + IPV4_MIN_HEADER_LEN);
  writeU16(buf, off + IPV4_CSUM, f.checksum ?? ipv4HeaderChecksum(buf, off, hl));
  return hl;
}

/**
 * Write a 20-byte IPv4 header (no options) with its checksum at off: the scalar form of
 * emitIpv4 for packets the data plane builds (no allocation). Returns the header length.
 */
export function writeIpv4Header(
  buf: Uint8Array, off: number, totalLength: number, id: number, flagsFrag: number, ttl: number, protocol: number, src: number, dst: number, tos = 0,
): number {
  buf[off] = 0x45;
  buf[off + IPV4_TOS] = tos;
  writeU16(buf, off + IPV4_TOTAL_LEN, totalLength);
  writeU16(buf, off + IPV4_ID, id);
  writeU16(buf, off + IPV4_FLAGS_FRAG, flagsFrag);
  buf[off + IPV4_TTL] = ttl;
  buf[off + IPV4_PROTO] = protocol;
  writeU16(buf, off + IPV4_CSUM, 0);
  writeU32(buf, off + IPV4_SRC, src);
  writeU32(buf, off + IPV4_DST, dst);
  writeU16(buf, off + IPV4_CSUM, ipv4HeaderChecksum(buf, off, IPV4_MIN_HEADER_LEN));
  return IPV4_MIN_HEADER_LEN;
}
