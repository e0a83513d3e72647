/*
 * The IPv6 family of the NAT engine (family.ts): address values are interned ids
 * (addr-table.ts) that flows hold while they live; keys and rewrites through packet-key6.ts
 * and rewrite6.ts; masquerade by source prefix, except for the routed prefixes (no NAT).
 */
import { ip6ToString, readIp6 } from '../wire/ip6.js';
import { maskOf } from '../wire/ip4.js';
import { IPV6_HEADER_LEN, IPV6_SRC } from '../wire/ipv6.js';
import { AddrTable6, NO_ADDR } from './addr-table.js';
import { FAMILY6, type NatFamily } from './family.js';
import { PacketKey6 } from './packet-key6.js';
import { PacketRewriter6, QuoteRewriter6 } from './rewrite6.js';
import type { Prefix6 } from './types.js';

/** Throws unless a is an IPv6 address as four uint32 words. */
export function checkAddr6(a: unknown, field: string): asserts a is Uint32Array {
  if (!(a instanceof Uint32Array) || a.length !== 4) throw new Error(`${field}: must be a Uint32Array of 4 words`);
}

/** A set of IPv6 prefixes, tested on four words in place. */
export class PrefixSet6 {
  private readonly net: Uint32Array;
  private readonly mask: Uint32Array;
  readonly size: number;

  constructor(prefixes: Prefix6[], field: string) {
    this.size = prefixes.length;
    this.net = new Uint32Array(4 * prefixes.length);
    this.mask = new Uint32Array(4 * prefixes.length);
    prefixes.forEach((p, i) => {
      checkAddr6(p.net, `${field}[${i}].net`);
      if (!Number.isInteger(p.prefixLen) || p.prefixLen < 0 || p.prefixLen > 128) throw new Error(`${field}[${i}].prefixLen: must be 0..128, got ${p.prefixLen}`);
      for (let j = 0; j < 4; j++) {
        const m = maskOf(p.prefixLen - 32 * j);
        this.mask[4 * i + j] = m;
        this.net[4 * i + j] = (p.net[j] & m) >>> 0;
      }
    });
  }

  /** The address words[at..at+4) lies in one of the prefixes. */
  has(words: Uint32Array, at: number): boolean {
    const n = this.net;
    const m = this.mask;
    for (let i = 0; i < n.length; i += 4) {
      if (((words[at] & m[i]) >>> 0) === n[i] && ((words[at + 1] & m[i + 1]) >>> 0) === n[i + 1] && ((words[at + 2] & m[i + 2]) >>> 0) === n[i + 2] && ((words[at + 3] & m[i + 3]) >>> 0) === n[i + 3]) {
        return true;
      }
    }
    return false;
  }
}

export class Family6 implements NatFamily {
  readonly addrs: AddrTable6;
  readonly key: PacketKey6;
  readonly rw: PacketRewriter6;
  readonly quotedKey: PacketKey6;
  readonly quote: QuoteRewriter6;
  readonly outer: PacketRewriter6;
  readonly info = FAMILY6;
  readonly refs: AddrTable6;
  private readonly masq: PrefixSet6;
  private readonly routed: PrefixSet6;
  /** The source of a packet the leak guard looks at. */
  private readonly src = new Uint32Array(4);

  constructor(addressCapacity: number, seed: number, masqueradeSources6: Prefix6[], routed6: Prefix6[]) {
    this.masq = new PrefixSet6(masqueradeSources6, 'nat6.masqueradeSources6');
    this.routed = new PrefixSet6(routed6, 'nat6.routed6');
    const a = (this.addrs = this.refs = new AddrTable6(addressCapacity, seed));
    this.key = new PacketKey6(a);
    this.rw = new PacketRewriter6(a);
    this.quotedKey = new PacketKey6(a);
    this.quote = new QuoteRewriter6(a);
    this.outer = new PacketRewriter6(a);
  }

  get memoryBytes(): number {
    return this.addrs.memoryBytes;
  }

  /** Intern the key's addresses for the new flow (FlowTable.init holds them); a dry run uses scratch ids. */
  bindKey(readOnly: boolean): void {
    const k = this.key;
    const a = this.addrs;
    if (readOnly) {
      k.src = a.findAt(k.buf, k.srcAt);
      if (k.src === NO_ADDR) k.src = a.scratchAt(0, k.buf, k.srcAt);
      k.dst = a.findAt(k.buf, k.dstAt);
      if (k.dst === NO_ADDR) k.dst = a.scratchAt(1, k.buf, k.dstAt);
    } else {
      k.src = a.internAt(k.buf, k.srcAt);
      k.dst = a.internAt(k.buf, k.dstAt);
    }
  }

  isMasqSource(v: number): boolean {
    return this.inMasq(this.addrs.words, v << 2);
  }

  /** Masqueraded: in a masquerade prefix and not in a routed one. */
  inMasq(words: Uint32Array, at: number): boolean {
    return this.masq.has(words, at) && !this.routed.has(words, at);
  }

  leaks(buf: Uint8Array, ipOff: number, ipLen: number): boolean {
    if (ipLen < IPV6_HEADER_LEN) return false;
    return this.inMasq(readIp6(buf, ipOff + IPV6_SRC, this.src), 0);
  }

  addrText(v: number): string {
    return ip6ToString(this.addrs.address(v));
  }
}
