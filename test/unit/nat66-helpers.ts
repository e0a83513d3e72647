/*
 * Helpers for the NAT66 unit tests: the default lab's IPv6 addresses, an engine with the lab's
 * config, running packets through both hooks like the router, and checksum checks from
 * scratch (an extension-header walk and the IPv6 pseudo header of their own, independent of
 * src/wire). Packets sit in buffers pre-filled with 0xa5 (Pkt of nat-helpers.ts).
 */
import assert from 'node:assert/strict';
import { NatEngine6, type Nat6Config } from '../../src/nat/index.js';
import { ip6ToString, parseIp6 } from '../../src/wire/ip6.js';
import { icmpMsg, onesSum, Pkt, tcpPkt, udpPkt } from './nat-helpers.js';

export function ip6(s: string): Uint32Array {
  const a = parseIp6(s);
  assert.ok(a !== null, s);
  return a;
}

export const BR = 0; // bridge interface id (gateway 2001:db8:100::1)
export const UP = 1; // uplink interface id (2001:db8:113::2)
export const GW6 = ip6('2001:db8:100::1');
export const RED6 = ip6('2001:db8:100::2');
export const BLUE6 = ip6('2001:db8:100::3');
export const WAN6 = ip6('2001:db8:113::1');
export const EXT6 = ip6('2001:db8:113::2');
export const FAR6 = ip6('2001:db8:51::7');

export function lab6Config(over: Partial<Nat6Config> = {}): Nat6Config {
  return {
    uplinkIf: UP,
    ifAddr6: [GW6, EXT6],
    masqueradeSources6: [{ net: ip6('2001:db8:100::'), prefixLen: 64 }],
    portRange: [32768, 60999],
    maxFlows: 1024,
    // [2001:db8:113::2]:8000 -> [2001:db8:100::2]:8000, TCP and UDP
    forwards6: ([6, 17] as const).map((proto) => ({ proto, externalPort: 8000, externalPortEnd: 8000, internalIp: RED6, internalPort: 8000 })),
    seed: 12345,
    ...over,
  };
}

export function lab6Engine(over: Partial<Nat6Config> = {}): NatEngine6 {
  return new NatEngine6(lab6Config(over));
}

const EXT_HEADERS = new Set([0, 43, 60]);

/** Upper layer of the IPv6 packet at off: [protocol, offset, later fragment] (a walk of its own). */
export function upper(b: Uint8Array, off: number): [number, number, boolean] {
  let nh = b[off + 6];
  let at = off + 40;
  for (;;) {
    if (EXT_HEADERS.has(nh)) {
      const next = b[at];
      at += (b[at + 1] + 1) * 8;
      nh = next;
    } else if (nh === 44) {
      const later = (((b[at + 2] << 8) | b[at + 3]) >>> 3) !== 0;
      const next = b[at];
      at += 8;
      if (later) return [next, at, true];
      nh = next;
    } else return [nh, at, false];
  }
}

/** The packet's own length (40 + payload length). */
export function len6(b: Uint8Array, off: number): number {
  return 40 + ((b[off + 4] << 8) | b[off + 5]);
}

/** Unfolded pseudo-header sum: addresses of the header at off, upper-layer length, next header. */
export function pseudo6(b: Uint8Array, off: number, proto: number, l4len: number): number {
  let s = 0;
  for (let i = 8; i < 40; i += 2) s += (b[off + i] << 8) | b[off + i + 1];
  return s + (l4len >>> 16) + (l4len & 0xffff) + proto;
}

/** The (complete) TCP / UDP / ICMPv6 checksum of the IPv6 packet at off is valid; UDP's is not 0. */
export function assertChecksums6(b: Uint8Array, off: number, what = 'packet', avail = len6(b, off)): void {
  const [proto, l4, later] = upper(b, off);
  assert.ok(!later, `${what}: not a later fragment`);
  const l4len = off + avail - l4;
  const name = proto === 6 ? 'TCP' : proto === 17 ? 'UDP' : proto === 58 ? 'ICMPv6' : `proto ${proto}`;
  if (proto === 17) assert.notEqual((b[l4 + 6] << 8) | b[l4 + 7], 0, `${what}: UDP checksum 0 over IPv6`);
  assert.equal(onesSum(b, l4, l4len, pseudo6(b, off, proto, l4len)), 0xffff, `${what}: ${name} checksum`);
}

/** Read the address at buf[at, at+16) as RFC 5952 text. */
export function addrAt(b: Uint8Array, at: number): string {
  const w = new Uint32Array(4);
  for (let i = 0; i < 4; i++) w[i] = ((b[at + 4 * i] << 24) | (b[at + 4 * i + 1] << 16) | (b[at + 4 * i + 2] << 8) | b[at + 4 * i + 3]) >>> 0;
  return ip6ToString(w);
}

/** Field readers of an IPv6 packet in a Pkt (upper layer found by the walk above). */
export function src6(p: Pkt): string {
  return addrAt(p.buf, p.off + 8);
}
export function dst6(p: Pkt): string {
  return addrAt(p.buf, p.off + 24);
}
export function l4of(p: Pkt): number {
  return upper(p.buf, p.off)[1];
}
export function sport6(p: Pkt): number {
  return p.u16(l4of(p));
}
export function dport6(p: Pkt): number {
  return p.u16(l4of(p) + 2);
}
export function echoId6(p: Pkt): number {
  return p.u16(l4of(p) + 4);
}

/** Route like the lab: 2001:db8:100::/64 -> bridge, the rest -> uplink. */
export function routeOf6(p: Pkt): number {
  return dst6(p).startsWith('2001:db8:100:') ? BR : UP;
}

/** prerouting, the lab's route lookup on the (possibly DNATed) destination, postrouting. */
export function route6(nat: NatEngine6, bytes: Uint8Array, ingressIf: number, now: number, partial = false): { v: number; p: Pkt; egress: number } {
  const p = new Pkt(bytes);
  let v = nat.prerouting(p.buf, p.off, p.len, partial, ingressIf, now);
  if (v !== 0) return { v, p, egress: -1 };
  const egress = routeOf6(p);
  v = nat.postrouting(p.buf, p.off, p.len, partial, egress, now);
  p.assertPadIntact();
  return { v, p, egress };
}

/** Put the partial (virtio NEEDS_CSUM) form in the TCP/UDP checksum field: the folded pseudo-header sum over `l4lenInPseudo` bytes. */
export function makePartial6(bytes: Uint8Array, l4lenInPseudo?: number): Uint8Array {
  const b = bytes.slice();
  const [proto, l4] = upper(b, 0);
  const field = l4 + (proto === 6 ? 16 : 6);
  const v = onesSum(new Uint8Array(0), 0, 0, pseudo6(b, 0, proto, l4lenInPseudo ?? b.length - l4));
  b[field] = v >>> 8;
  b[field + 1] = v & 0xff;
  return b;
}

/** The checksum field holds the folded pseudo-header sum (over l4lenInPseudo bytes, default the real length). */
export function assertPartial6(b: Uint8Array, off: number, what = 'packet', l4lenInPseudo?: number): void {
  const [proto, l4] = upper(b, off);
  const field = l4 + (proto === 6 ? 16 : 6);
  const want = onesSum(new Uint8Array(0), 0, 0, pseudo6(b, off, proto, l4lenInPseudo ?? off + len6(b, off) - l4));
  assert.equal((b[field] << 8) | b[field + 1], want, `${what}: partial (pseudo-header) checksum`);
}

/** Complete a partial checksum as the receiver's "hardware" would: the sum of the data with the field in it. */
export function completePartial6(b: Uint8Array, off: number): void {
  const [proto, l4] = upper(b, off);
  const field = l4 + (proto === 6 ? 16 : 6);
  let c = ~onesSum(b, l4, off + len6(b, off) - l4) & 0xffff;
  if (c === 0 && proto === 17) c = 0xffff;
  b[field] = c >>> 8;
  b[field + 1] = c & 0xff;
}

export function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const r = new Uint8Array(a.length + b.length);
  r.set(a);
  r.set(b, a.length);
  return r;
}

/* ---------------------------------------------------------- builders (checksums from scratch) */

/** An IPv6 packet src -> dst carrying `l4` (protocol nh); the L4 checksum at `field` of it is computed again (-1: none). */
export function ipv6Pkt(src: Uint32Array, dst: Uint32Array, nh: number, l4: Uint8Array, field: number, hlim = 64): Uint8Array {
  const b = new Uint8Array(40 + l4.length);
  const words = Uint8Array.from(Buffer.from([...src, ...dst].map((w) => w.toString(16).padStart(8, '0')).join(''), 'hex'));
  b.set([0x60, 0, 0, 0, l4.length >>> 8, l4.length & 0xff, nh, hlim]);
  b.set(words, 8);
  b.set(l4, 40);
  if (field >= 0) {
    b[40 + field] = b[41 + field] = 0;
    let c = ~onesSum(b, 40, l4.length, pseudo6(b, 0, nh, l4.length)) & 0xffff;
    if (c === 0 && nh === 17) c = 0xffff;
    b[40 + field] = c >>> 8;
    b[41 + field] = c & 0xff;
  }
  return b;
}

/* The L4 parts come from nat-helpers.ts's IPv4 builders; the checksum is computed again over the IPv6 pseudo header. */

export function tcp6(src: Uint32Array, sport: number, dst: Uint32Array, dport: number, flags: number, payload = new Uint8Array(0)): Uint8Array {
  return ipv6Pkt(src, dst, 6, tcpPkt(0, sport, 0, dport, flags, payload).slice(20), 16);
}

export function udp6(src: Uint32Array, sport: number, dst: Uint32Array, dport: number, payload: string | Uint8Array = 'x'): Uint8Array {
  return ipv6Pkt(src, dst, 17, udpPkt(0, sport, 0, dport, payload).slice(20), 6);
}

/** ICMPv6 echo request (128) or reply (129) with 16 bytes of data. */
export function echo6(src: Uint32Array, dst: Uint32Array, type: 128 | 129, id: number, seq = 1): Uint8Array {
  return ipv6Pkt(src, dst, 58, icmpMsg(type, 0, ((id << 16) | seq) >>> 0, Uint8Array.from({ length: 16 }, (_, i) => i)), 2);
}

/** An ICMPv6 error (type, code, 32-bit rest) from src to dst quoting `quoted`. */
export function icmp6Err(src: Uint32Array, dst: Uint32Array, type: number, code: number, rest: number, quoted: Uint8Array): Uint8Array {
  return ipv6Pkt(src, dst, 58, icmpMsg(type, code, rest, quoted), 2);
}

/** route6, expecting acceptance, the egress interface and exactly the bytes `expected`. */
export function expect6(nat: NatEngine6, bytes: Uint8Array, ingressIf: number, now: number, expected: Uint8Array, egress?: number): Pkt {
  const r = route6(nat, bytes, ingressIf, now);
  assert.equal(r.v, 0, 'accepted');
  if (egress !== undefined) assert.equal(r.egress, egress, 'egress interface');
  assert.equal(Buffer.from(r.p.bytes()).toString('hex'), Buffer.from(expected).toString('hex'));
  assertChecksums6(r.p.buf, r.p.off);
  return r.p;
}
