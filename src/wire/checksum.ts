/*
 * Internet checksum (RFC 1071) and its incremental forms.
 *
 * Sums are kept "unfolded": plain non-negative integers below 2^32 that callers may add
 * together (a few thousand of them stay exact below 2^53) and fold once at the end.
 * Complete checksums (what is on the wire) are updated with RFC 1624 eqn. 3,
 * HC' = ~(~HC + ~m + m'). Partial checksums (virtio NEEDS_CSUM / CHECKSUM_PARTIAL: the field
 * holds the folded, uncomplemented pseudo-header sum and the data is still to be summed in)
 * are updated as a sum: HC' = fold(HC + ~m + m').
 *
 * Over IPv6 (RFC 8200 section 8.1) the pseudo header is the source and destination address,
 * the upper-layer length (32 bits) and the next header; ICMPv6 is covered by it too, and UDP
 * must carry a checksum: a computed 0 is sent as 0xffff and a received 0 is invalid.
 * Addresses are 128 bits (four uint32 words, ip6.ts) in the incremental forms.
 */

import { readU32, writeU16 } from './bytes.js';
import { IP6_LEN } from './ip6.js';
import { IPPROTO_ICMPV6, IPV6_SRC } from './ipv6.js';
import { TCP_CSUM } from './tcp.js';
import { UDP_CSUM } from './udp.js';

// As in ipv4.ts and icmpv6.ts, which import this module.
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const ICMPV6_CSUM = 2;

/** One's complement sum of big-endian 16-bit words of buf[off, off+len); odd tail padded. */
export function sum16(buf: Uint8Array, off: number, len: number, initial = 0): number {
  let hi = 0; // sum of the high bytes of each word
  let lo = 0; // sum of the low bytes
  let i = off;
  const end = off + len;
  const end8 = end - 7;
  while (i < end8) {
    hi += buf[i] + buf[i + 2] + buf[i + 4] + buf[i + 6];
    lo += buf[i + 1] + buf[i + 3] + buf[i + 5] + buf[i + 7];
    i += 8;
  }
  while (i + 1 < end) {
    hi += buf[i];
    lo += buf[i + 1];
    i += 2;
  }
  if (i < end) hi += buf[i];
  let s = initial + hi * 256 + lo;
  while (s > 0xffffffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
  return s;
}

/** Fold an unfolded sum (any non-negative integer < 2^53) to 16 bits with end-around carry. */
export function fold16(sum: number): number {
  while (sum > 0xffffffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** The checksum to store for data whose unfolded sum is `sum`. */
export function finishChecksum(sum: number): number {
  return ~fold16(sum) & 0xffff;
}

/** Unfolded sum of the IPv4 pseudo header (src, dst, zero+proto, L4 length). */
export function pseudoHeaderSum(src: number, dst: number, proto: number, l4len: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + l4len;
}

/** Header checksum to store for the IPv4 header at off (the current field is ignored). */
export function ipv4HeaderChecksum(buf: Uint8Array, off: number, ihlBytes: number): number {
  return finishChecksum(sum16(buf, off + 12, ihlBytes - 12, sum16(buf, off, 10)));
}

/** Offset of the checksum field inside the L4 header for proto (TCP, UDP, ICMP), else -1. */
export function l4CsumFieldOffset(proto: number): number {
  return proto === 6 ? 16 : proto === 17 ? 6 : proto === 1 ? 2 : -1;
}

/**
 * Full L4 checksum to store for the TCP/UDP/ICMP payload of the IPv4 packet at ipOff
 * (the current field is ignored; UDP's computed 0 is returned as 0xffff). -1 for other
 * protocols. The caller has validated the IPv4 header and total length.
 */
export function l4Checksum(buf: Uint8Array, ipOff: number): number {
  const hl = (buf[ipOff] & 0x0f) << 2;
  const proto = buf[ipOff + 9];
  const field = l4CsumFieldOffset(proto);
  if (field < 0) return -1;
  const l4len = ((buf[ipOff + 2] << 8) | buf[ipOff + 3]) - hl;
  const l4 = ipOff + hl;
  let s = 0;
  if (proto !== 1) {
    s = pseudoHeaderSum(readU32(buf, ipOff + 12), readU32(buf, ipOff + 16), proto, l4len);
  }
  return finishL4Checksum(buf, l4, l4len, field, proto, s);
}

/** Add the L4 message (without its checksum field) to s and finish; UDP's 0 becomes 0xffff. */
function finishL4Checksum(buf: Uint8Array, l4: number, l4len: number, field: number, proto: number, s: number): number {
  s = sum16(buf, l4, field, s);
  s = sum16(buf, l4 + field + 2, l4len - field - 2, s);
  const c = finishChecksum(s);
  return c === 0 && proto === IPPROTO_UDP ? 0xffff : c;
}

/** Compute and store the L4 checksum of the IPv4 packet at ipOff; returns it (-1: not TCP/UDP/ICMP). */
export function fillL4Checksum(buf: Uint8Array, ipOff: number): number {
  const c = l4Checksum(buf, ipOff);
  if (c >= 0) {
    const at = ipOff + ((buf[ipOff] & 0x0f) << 2) + l4CsumFieldOffset(buf[ipOff + 9]);
    buf[at] = c >>> 8;
    buf[at + 1] = c;
  }
  return c;
}

/**
 * True if the stored L4 checksum of the IPv4 packet at ipOff is correct (UDP checksum 0 =
 * "none" counts as correct). False for protocols other than TCP/UDP/ICMP.
 */
export function verifyL4Checksum(buf: Uint8Array, ipOff: number): boolean {
  const hl = (buf[ipOff] & 0x0f) << 2;
  const proto = buf[ipOff + 9];
  if (l4CsumFieldOffset(proto) < 0) return false;
  const l4 = ipOff + hl;
  if (proto === 17 && buf[l4 + 6] === 0 && buf[l4 + 7] === 0) return true;
  const l4len = ((buf[ipOff + 2] << 8) | buf[ipOff + 3]) - hl;
  let s = 0;
  if (proto !== 1) {
    s = pseudoHeaderSum(readU32(buf, ipOff + 12), readU32(buf, ipOff + 16), proto, l4len);
  }
  return fold16(sum16(buf, l4, l4len, s)) === 0xffff;
}

/**
 * Complete a partial checksum (virtio NEEDS_CSUM): sum buf[start, end) -- which includes
 * the field at start+fieldOff holding the pseudo-header sum -- and store the result there
 * (0 is stored as 0xffff, as the kernel does). Returns the stored value.
 */
export function completePartialChecksum(buf: Uint8Array, start: number, end: number, fieldOff: number): number {
  let c = finishChecksum(sum16(buf, start, end - start));
  if (c === 0) c = 0xffff;
  buf[start + fieldOff] = c >>> 8;
  buf[start + fieldOff + 1] = c;
  return c;
}

/** RFC 1624: complete checksum `check` after a 16-bit word changed from old16 to new16. */
export function csumReplace16(check: number, old16: number, new16: number): number {
  return ~fold16((~check & 0xffff) + (~old16 & 0xffff) + (new16 & 0xffff)) & 0xffff;
}

/** RFC 1624: complete checksum `check` after a 32-bit field changed from old32 to new32. */
export function csumReplace32(check: number, old32: number, new32: number): number {
  return (
    ~fold16(
      (~check & 0xffff) +
        (~old32 >>> 16) + (~old32 & 0xffff) +
        (new32 >>> 16) + (new32 & 0xffff),
    ) & 0xffff
  );
}

/** Partial (pseudo-header sum) checksum `check` after a 16-bit word changed. */
export function partialReplace16(check: number, old16: number, new16: number): number {
  return fold16(check + (~old16 & 0xffff) + (new16 & 0xffff));
}

/** Partial (pseudo-header sum) checksum `check` after a 32-bit field changed. */
export function partialReplace32(check: number, old32: number, new32: number): number {
  return fold16(check + (~old32 >>> 16) + (~old32 & 0xffff) + (new32 >>> 16) + (new32 & 0xffff));
}

/** Complete UDP checksum after a 16-bit change: 0 ("no checksum") stays 0; a result of 0 becomes 0xffff. */
export function udpCsumReplace16(check: number, old16: number, new16: number): number {
  if (check === 0) return 0;
  return csumReplace16(check, old16, new16) || 0xffff;
}

/** Complete UDP checksum after a 32-bit change: 0 stays 0; a result of 0 becomes 0xffff. */
export function udpCsumReplace32(check: number, old32: number, new32: number): number {
  if (check === 0) return 0;
  return csumReplace32(check, old32, new32) || 0xffff;
}

/** Unfolded sum of the IPv6 pseudo header of the packet at ipOff: its addresses, l4len, proto. */
export function pseudoHeaderSum6(buf: Uint8Array, ipOff: number, proto: number, l4len: number): number {
  return sum16(buf, ipOff + IPV6_SRC, 2 * IP6_LEN, (l4len >>> 16) + (l4len & 0xffff) + proto);
}

/** Offset of the checksum field inside the L4 header for proto over IPv6 (TCP, UDP, ICMPv6), else -1. */
export function l4CsumFieldOffset6(proto: number): number {
  return proto === IPPROTO_TCP ? TCP_CSUM : proto === IPPROTO_UDP ? UDP_CSUM : proto === IPPROTO_ICMPV6 ? ICMPV6_CSUM : -1;
}

/**
 * Full checksum to store for the TCP/UDP/ICMPv6 message of l4len bytes at l4Off (for UDP the
 * length field's value) inside the IPv6 packet at ipOff; proto and l4Off as found by
 * Ipv6ExtWalker. The current field is ignored; UDP's computed 0 is returned as 0xffff; -1
 * for other protocols. With a routing header that still has segments left the pseudo header
 * should name the final destination: this uses the header's destination address.
 */
export function l4Checksum6(buf: Uint8Array, ipOff: number, proto: number, l4Off: number, l4len: number): number {
  const field = l4CsumFieldOffset6(proto);
  if (field < 0) return -1;
  return finishL4Checksum(buf, l4Off, l4len, field, proto, pseudoHeaderSum6(buf, ipOff, proto, l4len));
}

/** Compute and store the checksum of l4Checksum6; returns it (-1: not TCP/UDP/ICMPv6). */
export function fillL4Checksum6(buf: Uint8Array, ipOff: number, proto: number, l4Off: number, l4len: number): number {
  const c = l4Checksum6(buf, ipOff, proto, l4Off, l4len);
  if (c >= 0) writeU16(buf, l4Off + l4CsumFieldOffset6(proto), c);
  return c;
}

/**
 * True if the stored checksum of the TCP/UDP/ICMPv6 message at l4Off is correct. A UDP
 * checksum of 0 is invalid over IPv6. False for other protocols.
 */
export function verifyL4Checksum6(buf: Uint8Array, ipOff: number, proto: number, l4Off: number, l4len: number): boolean {
  if (l4CsumFieldOffset6(proto) < 0) return false;
  if (proto === IPPROTO_UDP && buf[l4Off + UDP_CSUM] === 0 && buf[l4Off + UDP_CSUM + 1] === 0) return false;
  return fold16(sum16(buf, l4Off, l4len, pseudoHeaderSum6(buf, ipOff, proto, l4len))) === 0xffff;
}

/**
 * Partial checksum (virtio NEEDS_CSUM) for an L4 message of l4len bytes in the IPv6 packet at
 * ipOff: the folded, uncomplemented pseudo-header sum; completePartialChecksum finishes it.
 */
export function partialChecksum6(buf: Uint8Array, ipOff: number, proto: number, l4len: number): number {
  return fold16(pseudoHeaderSum6(buf, ipOff, proto, l4len));
}

/** Sum of ~old + new over the eight 16-bit words of two addresses. */
function replaceSum128(old: ArrayLike<number>, now: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < 4; i++) s += (~old[i] >>> 16) + (~old[i] & 0xffff) + (now[i] >>> 16) + (now[i] & 0xffff);
  return s;
}

/** RFC 1624: complete checksum `check` after a 128-bit address changed from old to now. */
export function csumReplace128(check: number, old: ArrayLike<number>, now: ArrayLike<number>): number {
  return ~fold16((~check & 0xffff) + replaceSum128(old, now)) & 0xffff;
}

/** Partial (pseudo-header sum) checksum `check` after a 128-bit address changed. */
export function partialReplace128(check: number, old: ArrayLike<number>, now: ArrayLike<number>): number {
  return fold16(check + replaceSum128(old, now));
}

/** Complete UDP-over-IPv6 checksum after a 16-bit change: a result of 0 becomes 0xffff. */
export function udp6CsumReplace16(check: number, old16: number, new16: number): number {
  return csumReplace16(check, old16, new16) || 0xffff;
}

/** Complete UDP-over-IPv6 checksum after an address change: a result of 0 becomes 0xffff. */
export function udp6CsumReplace128(check: number, old: ArrayLike<number>, now: ArrayLike<number>): number {
  return csumReplace128(check, old, now) || 0xffff;
}
