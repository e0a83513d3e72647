/*
 * The IPv4 family of the NAT engine (family.ts): address values are the addresses
 * themselves, so nothing is interned (no AddrRefs); keys and rewrites through packet-key.ts
 * and rewrite.ts; masquerade by source prefix.
 */
import { readU32 } from '../wire/bytes.js';
import { ip4ToString, maskOf } from '../wire/ip4.js';
import { IPV4_MIN_HEADER_LEN, IPV4_SRC } from '../wire/ipv4.js';
import { FAMILY4, type NatFamily } from './family.js';
import { PacketKey } from './packet-key.js';
import { PacketRewriter, QuoteRewriter } from './rewrite.js';

export class Family4 implements NatFamily {
  readonly key = new PacketKey();
  readonly rw = new PacketRewriter();
  readonly quotedKey = new PacketKey();
  readonly quote = new QuoteRewriter();
  readonly outer = new PacketRewriter();
  readonly info = FAMILY4;
  readonly refs = null;
  readonly memoryBytes = 0;
  private readonly masqNet: Uint32Array;
  private readonly masqMask: Uint32Array;

  constructor(masqueradeSources: { net: number; prefixLen: number }[]) {
    const ms = masqueradeSources;
    this.masqNet = new Uint32Array(ms.length);
    this.masqMask = new Uint32Array(ms.length);
    ms.forEach((m, i) => {
      if (!Number.isInteger(m.prefixLen) || m.prefixLen < 0 || m.prefixLen > 32) {
        throw new Error(`nat.masqueradeSources[${i}].prefixLen: must be 0..32, got ${m.prefixLen}`);
      }
      const mask = maskOf(m.prefixLen);
      this.masqMask[i] = mask;
      this.masqNet[i] = (m.net & mask) >>> 0;
    });
  }

  bindKey(): void {}

  isMasqSource(a: number): boolean {
    const n = this.masqNet;
    const m = this.masqMask;
    for (let i = 0; i < n.length; i++) if (((a & m[i]) >>> 0) === n[i]) return true;
    return false;
  }

  leaks(buf: Uint8Array, ipOff: number, ipLen: number): boolean {
    return ipLen >= IPV4_MIN_HEADER_LEN && this.isMasqSource(readU32(buf, ipOff + IPV4_SRC));
  }

  addrText(v: number): string {
    return ip4ToString(v);
  }
}
