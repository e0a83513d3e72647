/*
 * Tuple storage and hash index of the connection table.
 *
 * Every flow f owns two "entries" e = 2f + dir (dir 0 = ORIGINAL, 1 = REPLY), each a tuple
 * (key proto, src, dst, sport, dport) stored struct-of-arrays. The index is open addressing
 * with linear probing over entry ids (Int32Array, -1 = empty) plus the 32-bit hash of each
 * slot's tuple (fast reject, and the home slot for backward-shift deletion). Capacity is a
 * power of two >= 4 x maxFlows, so the load stays <= 0.5 with every flow in twice.
 *
 * The key proto is the IP protocol number, except for ICMP echo, where requests and replies
 * are different keys (KP_ICMP_REQ / KP_ICMP_REP), like netfilter's type in the ICMP tuple.
 * Nothing here allocates after construction.
 */

export const KP_ICMP_REQ = 1;
export const KP_ICMP_REP = 0x101;

export class FlowIndex {
  readonly kp: Uint16Array;
  readonly src: Uint32Array;
  readonly dst: Uint32Array;
  readonly sport: Uint16Array;
  readonly dport: Uint16Array;
  readonly slots: Int32Array;
  readonly slotHash: Uint32Array;
  readonly mask: number;
  /** Entries currently in the index. */
  entries = 0;
  private readonly seed: number;

  constructor(maxFlows: number, seed: number) {
    const n = maxFlows * 2;
    this.kp = new Uint16Array(n);
    this.src = new Uint32Array(n);
    this.dst = new Uint32Array(n);
    this.sport = new Uint16Array(n);
    this.dport = new Uint16Array(n);
    let cap = 16;
    while (cap < n * 2) cap *= 2;
    this.slots = new Int32Array(cap).fill(-1);
    this.slotHash = new Uint32Array(cap);
    this.mask = cap - 1;
    this.seed = seed >>> 0;
  }

  hash(kp: number, src: number, dst: number, sport: number, dport: number): number {
    let h = Math.imul(src ^ this.seed, 0x9e3779b1);
    h ^= h >>> 15;
    h = Math.imul(h ^ dst, 0x85ebca77);
    h ^= h >>> 13;
    h = Math.imul(h ^ ((sport << 16) | dport), 0xc2b2ae3d);
    h ^= h >>> 16;
    h = Math.imul(h ^ kp, 0x27d4eb2f);
    h ^= h >>> 15;
    return h >>> 0;
  }

  /** Entry id matching the tuple, or -1. */
  lookup(kp: number, src: number, dst: number, sport: number, dport: number): number {
    const h = this.hash(kp, src, dst, sport, dport);
    const slots = this.slots;
    const hashes = this.slotHash;
    const mask = this.mask;
    let i = h & mask;
    for (;;) {
      const e = slots[i];
      if (e < 0) return -1;
      if (
        hashes[i] === h &&
        this.src[e] === src &&
        this.dst[e] === dst &&
        this.sport[e] === sport &&
        this.dport[e] === dport &&
        this.kp[e] === kp
      ) {
        return e;
      }
      i = (i + 1) & mask;
    }
  }

  /** Set entry e's tuple (does not index it). */
  setTuple(e: number, kp: number, src: number, dst: number, sport: number, dport: number): void {
    this.kp[e] = kp;
    this.src[e] = src;
    this.dst[e] = dst;
    this.sport[e] = sport;
    this.dport[e] = dport;
  }

  /** Index entry e under its current tuple (the caller made sure it is not present). */
  insert(e: number): void {
    const h = this.hash(this.kp[e], this.src[e], this.dst[e], this.sport[e], this.dport[e]);
    const slots = this.slots;
    const mask = this.mask;
    let i = h & mask;
    while (slots[i] >= 0) i = (i + 1) & mask;
    slots[i] = e;
    this.slotHash[i] = h;
    this.entries++;
  }

  /** Remove entry e (indexed under its current tuple); backward-shift deletion. */
  remove(e: number): boolean {
    const h = this.hash(this.kp[e], this.src[e], this.dst[e], this.sport[e], this.dport[e]);
    const slots = this.slots;
    const hashes = this.slotHash;
    const mask = this.mask;
    let i = h & mask;
    for (;;) {
      const x = slots[i];
      if (x < 0) return false;
      if (x === e) break;
      i = (i + 1) & mask;
    }
    // Shift later members of the cluster back into the hole when their home allows it.
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const x = slots[j];
      if (x < 0) break;
      const home = hashes[j] & mask;
      // Can x move to i? Only if its home is not in the cyclic range (i, j].
      const inRange = i <= j ? home > i && home <= j : home > i || home <= j;
      if (!inRange) {
        slots[i] = x;
        hashes[i] = hashes[j];
        i = j;
      }
    }
    slots[i] = -1;
    this.entries--;
    return true;
  }

  clear(): void {
    this.slots.fill(-1);
    this.entries = 0;
  }
}
