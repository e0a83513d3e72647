/*
 * Helpers for the NAT / conntrack unit tests: the default lab's addresses, an engine with the
 * lab's config, packet builders and from-scratch checksum checks (independent of src/wire).
 * Packets are placed in buffers pre-filled with 0xa5 so stray writes show.
 */

import assert from 'node:assert/strict';
import { NatEngine, type NatConfig } from '../../src/nat/index.js';

export function ip(s: string): number {
  const p = s.split('.').map(Number);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}

export const BR = 0; // bridge interface id (gateway 10.100.0.1)
export const UP = 1; // uplink interface id (203.0.113.2)
export const GW = ip('10.100.0.1');
export const RED = ip('10.100.0.2');
export const BLUE = ip('10.100.0.3');
export const EXT = ip('203.0.113.2');
export const WAN = ip('203.0.113.1');
export const FAR = ip('198.51.100.7'); // a router somewhere beyond wan

export function labEngine(over: Partial<NatConfig> = {}): NatEngine {
  return new NatEngine({
    uplinkIf: UP,
    ifAddr: Uint32Array.of(GW, EXT),
    masqueradeSources: [{ net: ip('10.100.0.0'), prefixLen: 24 }],
    portRange: [32768, 60999],
    maxFlows: 1024,
    forwards: [
      { proto: 6, externalPort: 8000, externalPortEnd: 8000, internalIp: RED, internalPort: 8000 },
      { proto: 17, externalPort: 8000, externalPortEnd: 8000, internalIp: RED, internalPort: 8000 },
    ],
    seed: 12345,
    ...over,
  });
}

export function hex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

export const PAD = 34; // an odd-ish offset: Ethernet header + vnet header style

/** A packet at PAD inside a 0xa5-filled buffer with `tail` spare bytes. */
export class Pkt {
  readonly buf: Uint8Array;
  readonly off = PAD;
  readonly len: number;
  constructor(bytes: Uint8Array, tail = 16) {
    this.buf = new Uint8Array(PAD + bytes.length + tail).fill(0xa5);
    this.buf.set(bytes, PAD);
    this.len = bytes.length;
  }
  bytes(): Uint8Array {
    return this.buf.slice(this.off, this.off + this.len);
  }
  /** Nothing outside the packet was touched. */
  assertPadIntact(): void {
    for (let i = 0; i < this.off; i++) assert.equal(this.buf[i], 0xa5, `byte ${i} before the packet changed`);
    for (let i = this.off + this.len; i < this.buf.length; i++) assert.equal(this.buf[i], 0xa5, `byte ${i} after the packet changed`);
  }
  get ihl(): number {
    return (this.buf[this.off] & 15) * 4;
  }
  get l4(): number {
    return this.off + this.ihl;
  }
  u16(at: number): number {
    return (this.buf[at] << 8) | this.buf[at + 1];
  }
  u32(at: number): number {
    return ((this.buf[at] << 24) | (this.buf[at + 1] << 16) | (this.buf[at + 2] << 8) | this.buf[at + 3]) >>> 0;
  }
  get src(): number {
    return this.u32(this.off + 12);
  }
  get dst(): number {
    return this.u32(this.off + 16);
  }
  get sport(): number {
    return this.u16(this.l4);
  }
  get dport(): number {
    return this.u16(this.l4 + 2);
  }
  get icmpId(): number {
    return this.u16(this.l4 + 4);
  }
}

/* ---------------------------------------------------------- checksums from scratch */

export function onesSum(b: Uint8Array, off: number, len: number, init = 0): number {
  let s = init;
  for (let i = 0; i + 1 < len; i += 2) s += (b[off + i] << 8) | b[off + i + 1];
  if (len & 1) s += b[off + len - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

function pseudo(b: Uint8Array, ipOff: number, proto: number, l4len: number): number {
  let s = 0;
  for (let i = 12; i < 20; i += 2) s += (b[ipOff + i] << 8) | b[ipOff + i + 1];
  return s + proto + l4len;
}

/** IP header checksum and (complete) L4 checksum of the IPv4 packet at off are valid. */
export function assertChecksums(b: Uint8Array, off: number, what = 'packet'): void {
  const ihl = (b[off] & 15) * 4;
  assert.equal(onesSum(b, off, ihl), 0xffff, `${what}: IPv4 header checksum`);
  const tot = (b[off + 2] << 8) | b[off + 3];
  const proto = b[off + 9];
  const l4 = off + ihl;
  const l4len = tot - ihl;
  if (proto === 6) assert.equal(onesSum(b, l4, l4len, pseudo(b, off, 6, l4len)), 0xffff, `${what}: TCP checksum`);
  else if (proto === 17) {
    if (b[l4 + 6] === 0 && b[l4 + 7] === 0) return; // no checksum
    assert.equal(onesSum(b, l4, l4len, pseudo(b, off, 17, l4len)), 0xffff, `${what}: UDP checksum`);
  } else if (proto === 1) assert.equal(onesSum(b, l4, l4len), 0xffff, `${what}: ICMP checksum`);
}

/** IP header checksum valid and the L4 field holds the folded pseudo-header sum (virtio NEEDS_CSUM). */
export function assertPartial(b: Uint8Array, off: number, what = 'packet'): void {
  const ihl = (b[off] & 15) * 4;
  assert.equal(onesSum(b, off, ihl), 0xffff, `${what}: IPv4 header checksum`);
  const tot = (b[off + 2] << 8) | b[off + 3];
  const proto = b[off + 9];
  const field = off + ihl + (proto === 6 ? 16 : 6);
  const want = onesSum(new Uint8Array(0), 0, 0, pseudo(b, off, proto, tot - ihl));
  assert.equal((b[field] << 8) | b[field + 1], want, `${what}: partial (pseudo-header) checksum`);
}

/** Turn a complete TCP/UDP packet into its NEEDS_CSUM form (field = folded pseudo sum). */
export function makePartial(bytes: Uint8Array): Uint8Array {
  const b = bytes.slice();
  const ihl = (b[0] & 15) * 4;
  const tot = (b[2] << 8) | b[3];
  const proto = b[9];
  const field = ihl + (proto === 6 ? 16 : 6);
  const v = onesSum(new Uint8Array(0), 0, 0, pseudo(b, 0, proto, tot - ihl));
  b[field] = v >>> 8;
  b[field + 1] = v & 0xff;
  return b;
}

/** Complete a partial checksum as the receiver's "hardware" would (sum of pseudo field + data). */
export function completePartial(b: Uint8Array, off: number): void {
  const ihl = (b[off] & 15) * 4;
  const tot = (b[off + 2] << 8) | b[off + 3];
  const proto = b[off + 9];
  const l4 = off + ihl;
  const field = l4 + (proto === 6 ? 16 : 6);
  let c = ~onesSum(b, l4, tot - ihl) & 0xffff;
  if (c === 0 && proto === 17) c = 0xffff;
  b[field] = c >>> 8;
  b[field + 1] = c & 0xff;
}

/* ---------------------------------------------------------- builders */

function ipv4(src: number, dst: number, proto: number, payload: Uint8Array, id = 1, ttl = 64, fragWord = 0x4000): Uint8Array {
  const b = new Uint8Array(20 + payload.length);
  b[0] = 0x45;
  b[2] = b.length >>> 8;
  b[3] = b.length & 0xff;
  b[4] = id >>> 8;
  b[5] = id & 0xff;
  b[6] = fragWord >>> 8;
  b[7] = fragWord & 0xff;
  b[8] = ttl;
  b[9] = proto;
  put32(b, 12, src);
  put32(b, 16, dst);
  const c = ~onesSum(b, 0, 20) & 0xffff;
  b[10] = c >>> 8;
  b[11] = c & 0xff;
  b.set(payload, 20);
  return b;
}

function put32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

function l4csum(src: number, dst: number, proto: number, seg: Uint8Array, field: number): void {
  let s = (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + seg.length;
  s = onesSum(seg, 0, seg.length, s);
  let c = ~s & 0xffff;
  if (c === 0 && proto === 17) c = 0xffff;
  seg[field] = c >>> 8;
  seg[field + 1] = c & 0xff;
}

export const SYN = 0x02;
export const ACK = 0x10;
export const FIN = 0x01;
export const RST = 0x04;
export const PSH = 0x08;

export function tcpPkt(src: number, sport: number, dst: number, dport: number, flags: number, payload = new Uint8Array(0), seq = 1000, ack = 0): Uint8Array {
  const seg = new Uint8Array(20 + payload.length);
  seg[0] = sport >>> 8;
  seg[1] = sport & 0xff;
  seg[2] = dport >>> 8;
  seg[3] = dport & 0xff;
  put32(seg, 4, seq);
  put32(seg, 8, ack);
  seg[12] = 0x50;
  seg[13] = flags;
  seg[14] = 0xfa;
  seg[15] = 0xf0;
  seg.set(payload, 20);
  l4csum(src, dst, 6, seg, 16);
  return ipv4(src, dst, 6, seg);
}

export function udpPkt(src: number, sport: number, dst: number, dport: number, payload: Uint8Array | string = 'x', noCsum = false): Uint8Array {
  const p = typeof payload === 'string' ? new TextEncoder().encode(payload) : payload;
  const seg = new Uint8Array(8 + p.length);
  seg[0] = sport >>> 8;
  seg[1] = sport & 0xff;
  seg[2] = dport >>> 8;
  seg[3] = dport & 0xff;
  seg[4] = seg.length >>> 8;
  seg[5] = seg.length & 0xff;
  seg.set(p, 8);
  if (!noCsum) l4csum(src, dst, 17, seg, 6);
  return ipv4(src, dst, 17, seg, 2, 64, 0);
}

export function icmpMsg(type: number, code: number, rest: number, data: Uint8Array): Uint8Array {
  const m = new Uint8Array(8 + data.length);
  m[0] = type;
  m[1] = code;
  put32(m, 4, rest);
  m.set(data, 8);
  const c = ~onesSum(m, 0, m.length) & 0xffff;
  m[2] = c >>> 8;
  m[3] = c & 0xff;
  return m;
}

export function pingPkt(src: number, dst: number, type: 8 | 0, id: number, seq = 1): Uint8Array {
  return ipv4(src, dst, 1, icmpMsg(type, 0, ((id << 16) | seq) >>> 0, Uint8Array.from({ length: 24 }, (_, i) => i)), 3);
}

/** An ICMP error from src to dst quoting `quoted` (a whole packet; cut to `quoteLen` bytes). */
export function icmpErrPkt(src: number, dst: number, type: number, code: number, quoted: Uint8Array, quoteLen = quoted.length, mtu = 0): Uint8Array {
  return ipv4(src, dst, 1, icmpMsg(type, code, mtu & 0xffff, quoted.slice(0, quoteLen)), 4, 64, 0);
}

/** A raw IPv4 packet of another protocol (e.g. 47 GRE). */
export function rawPkt(src: number, dst: number, proto: number, payload: Uint8Array): Uint8Array {
  return ipv4(src, dst, proto, payload, 5);
}

/** An IPv4 fragment: payload slice at byte offset fragOff (multiple of 8), MF flag. */
export function fragPkt(src: number, dst: number, proto: number, id: number, fragOff: number, mf: boolean, payload: Uint8Array): Uint8Array {
  return ipv4(src, dst, proto, payload, id, 64, (mf ? 0x2000 : 0) | (fragOff >>> 3));
}

/* ---------------------------------------------------------- running packets through the engine */

/** prerouting + postrouting like the router does (without TTL handling); returns the verdict. */
export function forward(nat: NatEngine, p: Pkt, ingressIf: number, egressIf: number, now: number, partial = false): number {
  const v = nat.prerouting(p.buf, p.off, p.len, partial, ingressIf, now);
  if (v !== 0) return v;
  return nat.postrouting(p.buf, p.off, p.len, partial, egressIf, now);
}

/** Route like the lab: 10.100.0.0/24 -> bridge, the rest -> uplink. */
export function routeOf(dst: number): number {
  return dst >>> 8 === ip('10.100.0.0') >>> 8 ? BR : UP;
}

/** prerouting, lab route lookup on the (possibly DNATed) destination, postrouting. */
export function route(nat: NatEngine, bytes: Uint8Array, ingressIf: number, now: number, partial = false): { v: number; p: Pkt; egress: number } {
  const p = new Pkt(bytes);
  let v = nat.prerouting(p.buf, p.off, p.len, partial, ingressIf, now);
  if (v !== 0) return { v, p, egress: -1 };
  const egress = routeOf(p.dst);
  v = nat.postrouting(p.buf, p.off, p.len, partial, egress, now);
  p.assertPadIntact();
  return { v, p, egress };
}
