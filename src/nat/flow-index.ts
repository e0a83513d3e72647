/*
 * Tuple storage and hash index of the connection table.
 *
 * Every flow f owns two "entries" e = 2f + dir (dir 0 = ORIGINAL, 1 = REPLY), each a tuple
 * (key proto, src, dst, sport, dport) stored as 4 uint32 words [src, dst, sport<<16|dport, kp]
 * in one Uint32Array: both directions of a flow share one 32-byte block (one cache line),
 * so a lookup hit also brings in the tuple needed for the rewrite.
 *
 * The index is open addressing with linear probing: an Int32Array of [entry, hash] pairs
 * (-1 = empty); the hash is a fast reject and gives the home slot for backward-shift
 * deletion. Capacity is a power of two >= 4 x maxFlows, so the load stays <= 0.5 with every
 * flow in twice.
 *
 * The key proto is the IP protocol number, except for ICMP echo, where requests and replies
 * are different keys (KP_ICMP_REQ / KP_ICMP_REP), like netfilter's type in the ICMP tuple.
 * Nothing here allocates after construction.
 */

export const KP_ICMP_REQ = 1;
export const KP_ICMP_REP = 0x101;

/** Hash (int32) of four 32-bit words and a seed (murmur3-style mixing). */
export function hash4(a: number, b: number, c: number, d: number, seed: number): number {
  let h = Math.imul(a ^ seed, 0x9e3779b1);
  h ^= h >>> 15;
  h = Math.imul(h ^ b, 0x85ebca77);
  h ^= h >>> 13;
  h = Math.imul(h ^ c, 0xc2b2ae3d);
  h ^= h >>> 16;
  h = Math.imul(h ^ d, 0x27d4eb2f);
  return h ^ (h >>> 15);
}

/**
 * Empty slot i of an open-addressing table of [value, hash] pairs (-1: empty; the hash's low
 * bits are the home slot) by backward-shift deletion: later members of the cluster move back
 * into the hole when their home allows it.
 */
export function deleteSlot(slots: Int32Array, mask: number, i: number): void {
  let j = i;
  for (;;) {
    j = (j + 1) & mask;
    const x = slots[j << 1];
    if (x < 0) break;
    const home = slots[(j << 1) + 1] & mask;
    // x may move to i only if its home is not in the cyclic range (i, j].
    const inRange = i <= j ? home > i && home <= j : home > i || home <= j;
    if (!inRange) {
      slots[i << 1] = x;
      slots[(i << 1) + 1] = slots[(j << 1) + 1];
      i = j;
    }
  }
  slots[i << 1] = -1;
}

export class FlowIndex {
  /** 4 words per entry: src, dst, ports (sport << 16 | dport), key proto. */
  readonly tup: Uint32Array;
  /** 2 words per slot: entry id (-1 empty), hash. */
  readonly slots: Int32Array;
  /** Slot count - 1. */
  readonly mask: number;
  /** Entries currently in the index. */
  entries = 0;
  private readonly seed: number;

  constructor(maxFlows: number, seed: number) {
    this.tup = new Uint32Array(maxFlows * 8);
    let cap = 16;
    while (cap < maxFlows * 4) cap *= 2;
    this.slots = new Int32Array(cap * 2).fill(-1);
    this.mask = cap - 1;
    this.seed = seed >>> 0;
  }

  src(e: number): number {
    return this.tup[e << 2];
  }
  dst(e: number): number {
    return this.tup[(e << 2) + 1];
  }
  sport(e: number): number {
    return this.tup[(e << 2) + 2] >>> 16;
  }
  dport(e: number): number {
    return this.tup[(e << 2) + 2] & 0xffff;
  }
  kp(e: number): number {
    return this.tup[(e << 2) + 3];
  }

  /** Set entry e's tuple (does not index it). */
  setTuple(e: number, kp: number, src: number, dst: number, sport: number, dport: number): void {
    const b = e << 2;
    const t = this.tup;
    t[b] = src;
    t[b + 1] = dst;
    t[b + 2] = (sport << 16) | dport;
    t[b + 3] = kp;
  }
  setDst(e: number, v: number): void {
    this.tup[(e << 2) + 1] = v;
  }
  setPorts(e: number, sport: number, dport: number): void {
    this.tup[(e << 2) + 2] = (sport << 16) | dport;
  }

  /** Entry id matching the tuple, or -1. */
  lookup(kp: number, src: number, dst: number, sport: number, dport: number): number {
    const ports = ((sport << 16) | dport) >>> 0;
    const h = hash4(src, dst, ports, kp, this.seed); // called directly: one level less of the inlining budget on the hot path
    const slots = this.slots;
    const t = this.tup;
    const mask = this.mask;
    let i = h & mask;
    for (;;) {
      const e = slots[i << 1];
      if (e < 0) return -1;
      if (slots[(i << 1) + 1] === h) {
        const b = e << 2;
        if (t[b] === src && t[b + 1] === dst && t[b + 2] === ports && t[b + 3] === kp) return e;
      }
      i = (i + 1) & mask;
    }
  }

  private entryHash(e: number): number {
    const b = e << 2;
    const t = this.tup;
    return hash4(t[b], t[b + 1], t[b + 2], t[b + 3], this.seed);
  }

  /** Index entry e under its current tuple (the caller made sure it is not present). */
  insert(e: number): void {
    const h = this.entryHash(e);
    const slots = this.slots;
    const mask = this.mask;
    let i = h & mask;
    while (slots[i << 1] >= 0) i = (i + 1) & mask;
    slots[i << 1] = e;
    slots[(i << 1) + 1] = h;
    this.entries++;
  }

  /** Remove entry e (indexed under its current tuple); backward-shift deletion. */
  remove(e: number): boolean {
    const h = this.entryHash(e);
    const slots = this.slots;
    const mask = this.mask;
    let i = h & mask;
    for (;;) {
      const x = slots[i << 1];
      if (x < 0) return false;
      if (x === e) break;
      i = (i + 1) & mask;
    }
    deleteSlot(slots, mask, i);
    this.entries--;
    return true;
  }

  clear(): void {
    this.slots.fill(-1);
    this.entries = 0;
  }
}
