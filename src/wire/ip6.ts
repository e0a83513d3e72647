/*
 * IPv6 addresses as four uint32 words, most significant first (a Uint32Array(4); inputs may
 * be any ArrayLike of four numbers), so the fast path compares and hashes them without
 * strings or BigInt. Text conversion (RFC 4291 in, RFC 5952 out) is for config, logs and
 * tests only.
 */

import { Address6 } from 'ip-address';
import { maskOf } from './ip4.js';

/** Bytes of an address. */
export const IP6_LEN = 16;
/** uint32 words of an address. */
export const IP6_WORDS = 4;

const TWO32 = 0x100000000;
const MULTICAST_MAC_PREFIX = 0x3333; // RFC 2464 section 7: 33:33 + the low 32 bits
const SOLICITED_NODE_W0 = 0xff020000; // ff02::1:ffXX:XXXX (RFC 4291 section 2.7.1)
const SOLICITED_NODE_W2 = 0x00000001;
const SOLICITED_NODE_W3 = 0xff000000;
const LOW24 = 0x00ffffff;
const LINK_LOCAL_PREFIX = 0xfe800000; // fe80::/10
const LINK_LOCAL_MASK = 0xffc00000;
const V4_MAPPED_W2 = 0x0000ffff; // ::ffff:0:0/96

/*
 * The buffer helpers move bytes themselves rather than call readU32/writeU32: a word above
 * 2^31 passed to or returned from a call V8 did not inline is boxed (a heap number).
 */

/** Read the address at buf[off, off+16) into out; returns out. */
export function readIp6(buf: Uint8Array, off: number, out: Uint32Array): Uint32Array {
  for (let i = 0, o = off; i < IP6_WORDS; i++, o += 4) {
    out[i] = (buf[o] << 24) | (buf[o + 1] << 16) | (buf[o + 2] << 8) | buf[o + 3];
  }
  return out;
}

export function writeIp6(buf: Uint8Array, off: number, a: ArrayLike<number>): void {
  for (let i = 0, o = off; i < IP6_WORDS; i++, o += 4) {
    const w = a[i];
    buf[o] = w >>> 24;
    buf[o + 1] = w >>> 16;
    buf[o + 2] = w >>> 8;
    buf[o + 3] = w;
  }
}

export function ip6Equals(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3];
}

/** The address at buf[off, off+16) equals a (compared in place, nothing read out). */
export function ip6EqualsAt(buf: Uint8Array, off: number, a: ArrayLike<number>): boolean {
  for (let i = 0, o = off; i < IP6_WORDS; i++, o += 4) {
    if ((((buf[o] << 24) | (buf[o + 1] << 16) | (buf[o + 2] << 8) | buf[o + 3]) >>> 0) !== a[i]) return false;
  }
  return true;
}

/** addr lies in net/prefixLen (0..128). */
export function inPrefixIp6(addr: ArrayLike<number>, net: ArrayLike<number>, prefixLen: number): boolean {
  for (let i = 0; i < IP6_WORDS; i++) {
    if (((addr[i] ^ net[i]) & maskOf(prefixLen - 32 * i)) !== 0) return false;
  }
  return true;
}

/** ff00::/8 */
export function isMulticastIp6(a: ArrayLike<number>): boolean {
  return a[0] >>> 24 === 0xff;
}

/** fe80::/10 */
export function isLinkLocalIp6(a: ArrayLike<number>): boolean {
  return ((a[0] & LINK_LOCAL_MASK) >>> 0) === LINK_LOCAL_PREFIX;
}

/** :: */
export function isUnspecifiedIp6(a: ArrayLike<number>): boolean {
  return (a[0] | a[1] | a[2] | a[3]) === 0;
}

/** ::1 */
export function isLoopbackIp6(a: ArrayLike<number>): boolean {
  return (a[0] | a[1] | a[2]) === 0 && a[3] === 1;
}

/** Write the solicited-node multicast address of a (ff02::1:ff + its low 24 bits) into out; returns out. */
export function solicitedNodeIp6(a: ArrayLike<number>, out: Uint32Array): Uint32Array {
  out[0] = SOLICITED_NODE_W0;
  out[1] = 0;
  out[2] = SOLICITED_NODE_W2;
  out[3] = (SOLICITED_NODE_W3 | (a[3] & LOW24)) >>> 0;
  return out;
}

/** a is a solicited-node multicast address (ff02::1:ff00:0/104). */
export function isSolicitedNodeIp6(a: ArrayLike<number>): boolean {
  return a[0] === SOLICITED_NODE_W0 && a[1] === 0 && a[2] === SOLICITED_NODE_W2 && a[3] >>> 24 === 0xff;
}

/** Ethernet multicast MAC (mac.ts number) of the multicast address a: 33:33 + its low 32 bits. */
export function multicastMacIp6(a: ArrayLike<number>): number {
  return MULTICAST_MAC_PREFIX * TWO32 + (a[3] >>> 0);
}

/**
 * RFC 5952 text: lower case, no leading zeros, the longest run (the first of equal ones) of
 * two or more zero groups as "::", IPv4-mapped addresses as ::ffff:a.b.c.d.
 */
export function ip6ToString(a: ArrayLike<number>): string {
  if (a[0] === 0 && a[1] === 0 && a[2] === V4_MAPPED_W2) {
    const v4 = a[3] >>> 0;
    return `::ffff:${v4 >>> 24}.${(v4 >>> 16) & 0xff}.${(v4 >>> 8) & 0xff}.${v4 & 0xff}`;
  }
  const g: number[] = [];
  for (let i = 0; i < IP6_WORDS; i++) g.push(a[i] >>> 16, a[i] & 0xffff);
  let best = -1;
  let bestLen = 1; // a single zero group is not shortened
  for (let i = 0; i < g.length; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < g.length && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hexes = g.map((x) => x.toString(16));
  if (best < 0) return hexes.join(':');
  return `${hexes.slice(0, best).join(':')}::${hexes.slice(best + bestLen).join(':')}`;
}

/**
 * Parse an address in any RFC 4291 text form (also with an embedded dotted quad); null if
 * malformed or if it carries a prefix length or a zone ("/64", "%eth0").
 */
export function parseIp6(s: string): Uint32Array | null {
  if (s.includes('/') || s.includes('%') || !Address6.isValid(s)) return null;
  return readIp6(Uint8Array.from(new Address6(s).toByteArray()), 0, new Uint32Array(IP6_WORDS));
}

/** Parse "addr/len" (len 0..128, no leading zeros); null if malformed. The address keeps its host bits. */
export function parseCidrIp6(s: string): { addr: Uint32Array; prefixLen: number } | null {
  const slash = s.indexOf('/');
  if (slash < 0) return null;
  const addr = parseIp6(s.slice(0, slash));
  const lenStr = s.slice(slash + 1);
  if (addr === null || !/^(\d|[1-9]\d|1[01]\d|12[0-8])$/.test(lenStr)) return null;
  return { addr, prefixLen: Number(lenStr) };
}

/** The EUI-64 link-local address fe80::/64 of a MAC (RFC 4291 appendix A: U/L bit flipped, ff:fe in the middle). */
export function linkLocalFromMac(mac: number, out: Uint32Array = new Uint32Array(IP6_WORDS)): Uint32Array {
  const hi = Math.floor(mac / TWO32); // first 2 bytes
  const lo = mac >>> 0; // last 4 bytes
  const b0 = ((hi >>> 8) & 0xff) ^ 0x02;
  const b1 = hi & 0xff;
  const b2 = lo >>> 24;
  out[0] = LINK_LOCAL_PREFIX;
  out[1] = 0;
  out[2] = ((b0 << 24) | (b1 << 16) | (b2 << 8) | 0xff) >>> 0;
  out[3] = ((0xfe << 24) | (lo & LOW24)) >>> 0;
  return out;
}

/** net := addr masked to prefixLen. */
export function maskIp6(addr: ArrayLike<number>, prefixLen: number, out: Uint32Array = new Uint32Array(IP6_WORDS)): Uint32Array {
  for (let i = 0; i < IP6_WORDS; i++) {
    const bits = Math.max(0, Math.min(32, prefixLen - 32 * i));
    out[i] = (addr[i] & maskOf(bits)) >>> 0;
  }
  return out;
}
