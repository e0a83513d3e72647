/*
 * The frame arena: one ArrayBuffer holding every port's RX ring and a pool of spare slots
 * (see frame.ts for the slot layout). Pool slots carry a reference count so one frame can
 * sit in several TX queues (flooding) and is returned to the free list when the last
 * queue has transmitted it. Each slot also has annotations (anno.ts): per-frame metadata
 * the elements hand each other, like Click's packet annotations. Nothing here allocates
 * after construction.
 */
import { Annotations } from './anno.js';
import { SLOT_SIZE } from './frame.js';

export class Arena {
  readonly buffer: ArrayBuffer;
  readonly u8: Uint8Array;
  readonly poolBase: number;
  readonly poolSlots: number;
  readonly anno: Annotations;
  private readonly refs: Int32Array;
  private readonly free: Int32Array;
  private freeTop: number;
  private nextRing = 0;

  constructor(
    readonly ringSlotsTotal: number,
    poolSlots: number,
  ) {
    if ((ringSlotsTotal + poolSlots) * SLOT_SIZE > 2 ** 30) throw new RangeError(`arena: ${ringSlotsTotal + poolSlots} slots do not fit in 1 GiB (offsets must stay small integers)`);
    this.poolSlots = poolSlots;
    this.poolBase = ringSlotsTotal * SLOT_SIZE;
    this.buffer = new ArrayBuffer((ringSlotsTotal + poolSlots) * SLOT_SIZE);
    this.u8 = new Uint8Array(this.buffer);
    this.anno = new Annotations(ringSlotsTotal + poolSlots);
    this.refs = new Int32Array(poolSlots);
    this.free = new Int32Array(poolSlots);
    for (let i = 0; i < poolSlots; i++) this.free[i] = poolSlots - 1 - i;
    this.freeTop = poolSlots;
  }

  /** Reserve `slots` consecutive ring slots; returns the byte offset of the first. */
  reserveRing(slots: number): number {
    if (this.nextRing + slots > this.ringSlotsTotal) throw new RangeError('arena: no room for another RX ring');
    const off = this.nextRing * SLOT_SIZE;
    this.nextRing += slots;
    return off;
  }

  /** A pool slot with refcount 1, or -1 when the pool is exhausted. */
  alloc(): number {
    if (this.freeTop === 0) return -1;
    const idx = this.free[--this.freeTop];
    this.refs[idx] = 1;
    return this.poolBase + idx * SLOT_SIZE;
  }

  isPooled(off: number): boolean {
    return off >= this.poolBase;
  }

  retain(off: number): void {
    this.refs[((off - this.poolBase) / SLOT_SIZE) | 0]++;
  }

  release(off: number): void {
    const idx = ((off - this.poolBase) / SLOT_SIZE) | 0;
    if (--this.refs[idx] === 0) this.free[this.freeTop++] = idx;
  }

  /** Copy a frame (vnet header and annotations included) into a fresh pool slot; -1 when exhausted. */
  copyToPool(off: number, len: number, vnetHdrLen: number): number {
    const dst = this.alloc();
    if (dst < 0) return -1;
    this.u8.copyWithin(dst, off, off + vnetHdrLen + len);
    this.anno.copy(off, dst);
    return dst;
  }

  /** A frame the caller keeps beyond the current push: the same pool slot retained, or a copy of a ring slot; -1 when exhausted. */
  hold(off: number, len: number, vnetHdrLen: number): number {
    if (off >= this.poolBase) {
      this.retain(off);
      return off;
    }
    return this.copyToPool(off, len, vnetHdrLen);
  }

  get poolFree(): number {
    return this.freeTop;
  }
}
