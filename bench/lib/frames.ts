/*
 * Real frames for micro benchmarks: Ethernet + IPv4 + UDP/TCP with correct IPv4 and L4
 * checksums, built with the wire layer's emit functions (so they are what the parsers
 * expect from a kernel), and a deterministic PRNG for MAC addresses and index sequences.
 */
import { emitEthernet, ETHERTYPE_IPV4 } from '../../src/wire/ethernet.js';
import { emitIpv4, IPPROTO_TCP, IPPROTO_UDP } from '../../src/wire/ipv4.js';
import { emitTcp, TCP_FLAG_ACK, TCP_FLAG_PSH } from '../../src/wire/tcp.js';
import { emitUdp } from '../../src/wire/udp.js';
import { fillL4Checksum } from '../../src/wire/checksum.js';

export const IP_A = 0x0a640002; // 10.100.0.2
export const IP_B = 0x0a640003; // 10.100.0.3

/** xorshift32: reproducible "random" numbers for benchmark inputs. */
export class Prng {
  constructor(private s = 0x12345678) {}
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  /** Integer in [0, n). */
  below(n: number): number {
    return this.next() % n;
  }
}

/** A unicast, locally administered MAC (02:xx:...) as a number, from the PRNG. */
export function randomMac(r: Prng): number {
  const hi = ((r.next() & 0xfcff) | 0x0200) & 0xffff; // first octet: U/L set, I/G clear
  return hi * 0x100000000 + r.next();
}

export interface FrameSpec {
  dst: number;
  src: number;
  proto: 'udp' | 'tcp';
  srcIp?: number;
  dstIp?: number;
  srcPort?: number;
  dstPort?: number;
  /** L4 payload bytes. */
  payload: number;
}

/** Write one frame at `off` (no vnet header); returns its length. */
export function writeFrame(buf: Uint8Array, off: number, f: FrameSpec): number {
  const l2 = emitEthernet({ dst: f.dst, src: f.src, etherType: ETHERTYPE_IPV4 }, buf, off);
  const ipOff = off + l2;
  const payload = new Uint8Array(f.payload).map((_, i) => (i * 7 + 3) & 0xff);
  const l4Len = f.proto === 'udp' ? 8 + f.payload : 32 + f.payload; // TCP with 12 B of options (timestamps)
  const hl = emitIpv4(
    {
      tos: 0,
      totalLength: 20 + l4Len,
      id: 0x1234,
      dontFragment: true,
      moreFragments: false,
      fragOffset: 0,
      ttl: 64,
      protocol: f.proto === 'udp' ? IPPROTO_UDP : IPPROTO_TCP,
      src: f.srcIp ?? IP_A,
      dst: f.dstIp ?? IP_B,
    },
    buf,
    ipOff,
  );
  const l4Off = ipOff + hl;
  if (f.proto === 'udp') emitUdp({ srcPort: f.srcPort ?? 40000, dstPort: f.dstPort ?? 5201, payload }, buf, l4Off);
  else
    emitTcp(
      {
        srcPort: f.srcPort ?? 40000,
        dstPort: f.dstPort ?? 5201,
        seq: 0x01020304,
        ack: 0x0a0b0c0d,
        flags: TCP_FLAG_ACK | (f.payload > 0 ? TCP_FLAG_PSH : 0),
        window: 502,
        options: Uint8Array.of(1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2),
        payload,
      },
      buf,
      l4Off,
    );
  fillL4Checksum(buf, ipOff);
  return l2 + hl + l4Len;
}

/**
 * The traffic mix used for a 64-frame batch: mostly small UDP (64 B datagrams), TCP ACKs
 * and full-size TCP segments, like a loaded bridge sees. Returns the payload size per index.
 */
export function mixFor(i: number): { proto: 'udp' | 'tcp'; payload: number } {
  switch (i % 4) {
    case 0:
      return { proto: 'udp', payload: 64 };
    case 1:
      return { proto: 'tcp', payload: 0 };
    case 2:
      return { proto: 'tcp', payload: 1448 };
    default:
      return { proto: 'udp', payload: 18 };
  }
}
