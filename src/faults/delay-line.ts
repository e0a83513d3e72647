/*
 * The delay line of a fault stage: frames held until their release time, in a binary
 * min-heap of entry ids ordered by (release time, arrival sequence), so frames with equal
 * release times leave in arrival order. Each entry has a class: FIFO frames (their release
 * times never go backwards) and held-back frames picked by `reorder`, which later frames may
 * overtake. Fixed capacity, typed arrays, no allocation after construction.
 */

export const CLASS_FIFO = 0;
export const CLASS_HELD = 1;

export class DelayLine {
  readonly capacity: number;
  private readonly release: Float64Array;
  private readonly seqOf: Float64Array;
  private readonly slot: Int32Array;
  private readonly length: Int32Array;
  private readonly cls: Uint8Array;
  private readonly heap: Int32Array;
  private readonly freeIds: Int32Array;
  private nFree: number;
  private seq = 0;
  /** Frames held now. */
  size = 0;
  /** FIFO-class frames held now. */
  fifoHeld = 0;
  enqueued = 0;
  released = 0;
  full = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('queueCapacity: expected a positive integer');
    this.capacity = capacity;
    this.release = new Float64Array(capacity);
    this.seqOf = new Float64Array(capacity);
    this.slot = new Int32Array(capacity);
    this.length = new Int32Array(capacity);
    this.cls = new Uint8Array(capacity);
    this.heap = new Int32Array(capacity);
    this.freeIds = new Int32Array(capacity);
    for (let i = 0; i < capacity; i++) this.freeIds[i] = capacity - 1 - i;
    this.nFree = capacity;
  }

  /** Hold frame (slotOff, len) until releaseMs; false when full (the caller frees the slot). */
  add(slotOff: number, len: number, releaseMs: number, cls: number): boolean {
    if (this.nFree === 0) {
      this.full++;
      return false;
    }
    const id = this.freeIds[--this.nFree];
    this.release[id] = releaseMs;
    this.seqOf[id] = this.seq++;
    this.slot[id] = slotOff;
    this.length[id] = len;
    this.cls[id] = cls;
    if (cls === CLASS_FIFO) this.fifoHeld++;
    const heap = this.heap;
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pid = heap[parent];
      if (!this.less(id, pid)) break;
      heap[i] = pid;
      i = parent;
    }
    heap[i] = id;
    this.enqueued++;
    return true;
  }

  private less(a: number, b: number): boolean {
    const ra = this.release[a];
    const rb = this.release[b];
    return ra < rb || (ra === rb && this.seqOf[a] < this.seqOf[b]);
  }

  private popTop(): number {
    const heap = this.heap;
    const top = heap[0];
    const last = heap[--this.size];
    if (this.size > 0) {
      let i = 0;
      const n = this.size;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        let c = l;
        if (r < n && this.less(heap[r], heap[l])) c = r;
        if (!this.less(heap[c], last)) break;
        heap[i] = heap[c];
        i = c;
      }
      heap[i] = last;
    }
    this.freeIds[this.nFree++] = top;
    if (this.cls[top] === CLASS_FIFO) this.fifoHeld--;
    return top;
  }

  /** Move frames due at nowMs (all of them with `all`) into outSlots/outLens; returns how many. */
  take(nowMs: number, outSlots: Int32Array, outLens: Int32Array, all = false): number {
    let n = 0;
    const max = outSlots.length < outLens.length ? outSlots.length : outLens.length;
    while (this.size > 0 && n < max && (all || this.release[this.heap[0]] <= nowMs)) {
      const id = this.popTop();
      outSlots[n] = this.slot[id];
      outLens[n] = this.length[id];
      n++;
    }
    if (!all) this.released += n;
    return n;
  }

  /** Earliest release time (ms), or Infinity when empty. */
  nextDeadline(): number {
    return this.size > 0 ? this.release[this.heap[0]] : Infinity;
  }
}
