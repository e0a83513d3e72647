/*
 * IPv6 addresses interned as small integer ids: the "address values" of the NAT66 engine
 * (family.ts), so the conntrack tables (FlowTable, FlowIndex, PortPicker, SourceCounts,
 * FragmentCache) keep working on 32-bit values.
 *
 * An open-addressing table (linear probing, [id, hash] pairs, backward-shift deletion) maps
 * a 128-bit address to its id; the id's four words live in `words`. Every id has a reference
 * count: a flow holds the addresses of its tuples (FlowTable, from init to destroy), the
 * engine holds its own addresses and the internal addresses of published ports (pin). An id
 * whose count drops to 0 is removed and its number reused.
 *
 *   findAt / find     lookup only, never inserts (NO_ADDR: no flow has that address, so no
 *                     tuple can match it)
 *   internAt / intern the id, inserted with no reference when absent; hold() it at once
 *   scratchAt         for a dry run: an id past the capacity holding the address, known to no
 *                     lookup, so a decision trace leaves the table as it was
 *
 * Bounded: a flow holds at most two addresses that are not the engine's own (see
 * engine6.ts), so 2 x maxFlows + own addresses + published internal addresses ids suffice;
 * running out is a bug and throws. Nothing allocates after construction.
 */
import type { AddrRefs } from './family.js';
import { deleteSlot, hash4 } from './flow-index.js';

export const NO_ADDR = -1;
/** Ids after the capacity that a dry run uses (scratchAt). */
export const SCRATCH_IDS = 2;

export class AddrTable6 implements AddrRefs {
  /** Ids that can be interned at once. */
  readonly capacity: number;
  /** Four uint32 words per id, most significant first (the scratch ids too). */
  readonly words: Uint32Array;
  private readonly w32: Int32Array;
  private readonly refs: Int32Array;
  /** 2 words per slot: id (-1 empty), hash. */
  private readonly slots: Int32Array;
  private readonly mask: number;
  private readonly free: Int32Array;
  private freeTop: number;
  private readonly seed: number;
  /** The address being looked up, as int32 words (kept in a typed array: never boxed). */
  private readonly q = new Int32Array(4);
  private qHash = 0;
  /** Ids in use. */
  size = 0;

  constructor(capacity: number, seed: number) {
    this.capacity = capacity;
    const mem = new ArrayBuffer((capacity + SCRATCH_IDS) * 16);
    this.words = new Uint32Array(mem);
    this.w32 = new Int32Array(mem);
    this.refs = new Int32Array(capacity);
    let cap = 16;
    while (cap < capacity * 2) cap *= 2;
    this.slots = new Int32Array(cap * 2).fill(-1);
    this.mask = cap - 1;
    this.free = new Int32Array(capacity);
    for (let i = 0; i < capacity; i++) this.free[i] = capacity - 1 - i; // pop gives 0, 1, 2, ...
    this.freeTop = capacity;
    this.seed = seed | 0;
  }

  get memoryBytes(): number {
    return this.words.byteLength + this.refs.byteLength + this.slots.byteLength + this.free.byteLength;
  }

  /** References held on id (0 for a free or scratch id). */
  refCount(id: number): number {
    return id >= 0 && id < this.capacity ? this.refs[id] : 0;
  }

  /** Id of the address at buf[off, off+16), or NO_ADDR. */
  findAt(buf: Uint8Array, off: number): number {
    this.loadAt(buf, off);
    const s = this.probe();
    return s < 0 ? NO_ADDR : this.slots[s << 1];
  }

  /** Id of address a (four words), or NO_ADDR. */
  find(a: ArrayLike<number>): number {
    this.load(a);
    const s = this.probe();
    return s < 0 ? NO_ADDR : this.slots[s << 1];
  }

  /** Id of the address at buf[off, off+16), inserted (with no reference) when absent. */
  internAt(buf: Uint8Array, off: number): number {
    this.loadAt(buf, off);
    return this.insert();
  }

  intern(a: ArrayLike<number>): number {
    this.load(a);
    return this.insert();
  }

  /** Intern and hold a (the engine's own addresses, published internal addresses). */
  pin(a: ArrayLike<number>): number {
    const id = this.intern(a);
    this.hold(id);
    return id;
  }

  hold(id: number): void {
    if (id < this.capacity) this.refs[id]++;
  }

  release(id: number): void {
    if (id >= this.capacity || this.refs[id] <= 0) return;
    if (--this.refs[id] === 0) this.remove(id);
  }

  /** Scratch id i (0..SCRATCH_IDS-1) holding the address at buf[off, off+16), for a dry run. */
  scratchAt(i: number, buf: Uint8Array, off: number): number {
    const id = this.capacity + i;
    this.loadAt(buf, off);
    this.w32.set(this.q, id << 2);
    return id;
  }

  /** A copy of id's address (control plane). */
  address(id: number): Uint32Array {
    return this.words.slice(id << 2, (id << 2) + 4);
  }

  private loadAt(buf: Uint8Array, off: number): void {
    const q = this.q;
    for (let i = 0, o = off; i < 4; i++, o += 4) q[i] = (buf[o] << 24) | (buf[o + 1] << 16) | (buf[o + 2] << 8) | buf[o + 3];
  }

  private load(a: ArrayLike<number>): void {
    const q = this.q;
    for (let i = 0; i < 4; i++) q[i] = a[i] | 0;
  }

  /** Slot of the address in q, or ~(the empty slot where it would go); leaves its hash in qHash. */
  private probe(): number {
    const q = this.q;
    const a = q[0];
    const b = q[1];
    const c = q[2];
    const d = q[3];
    const h = (this.qHash = hash4(a, b, c, d, this.seed));
    const slots = this.slots;
    const w = this.w32;
    const mask = this.mask;
    let i = h & mask;
    for (;;) {
      const id = slots[i << 1];
      if (id < 0) return ~i;
      if (slots[(i << 1) + 1] === h) {
        const o = id << 2;
        if (w[o] === a && w[o + 1] === b && w[o + 2] === c && w[o + 3] === d) return i;
      }
      i = (i + 1) & mask;
    }
  }

  private insert(): number {
    const s = this.probe();
    if (s >= 0) return this.slots[s << 1];
    if (this.freeTop === 0) throw new Error(`nat6: address table full (${this.capacity} ids): the bound on addresses per flow was broken`);
    const id = this.free[--this.freeTop];
    this.w32.set(this.q, id << 2);
    const i = ~s;
    this.slots[i << 1] = id;
    this.slots[(i << 1) + 1] = this.qHash;
    this.refs[id] = 0;
    this.size++;
    return id;
  }

  /** Remove id from the index (backward-shift deletion) and free it. */
  private remove(id: number): void {
    const q = this.q;
    const o = id << 2;
    for (let k = 0; k < 4; k++) q[k] = this.w32[o + k];
    const i = this.probe();
    if (i < 0) return;
    deleteSlot(this.slots, this.mask, i);
    this.free[this.freeTop++] = id;
    this.size--;
  }
}
