/*
 * Expiry timer wheel over flow ids: WHEEL_SLOTS one-second slots, each a doubly linked list
 * (Int32Array links, no allocation). A flow sits in the slot of second s with
 * s * 1000 >= its deadline, clamped to the wheel's horizon; deadlines further out are
 * re-filed when their slot comes round (a 5-day TCP flow is looked at every ~68 minutes).
 *
 * Refreshing a deadline (every packet) is lazy: only the deadline number changes. The slot is
 * only moved when the deadline gets *earlier* than the slot (a state change to a shorter
 * timeout). The owner's tick pops due slots and, per flow, either expires it (deadline
 * passed) or re-files it: amortised O(expired + re-filed), never a timer per flow.
 */

export const WHEEL_SLOTS = 4096; // seconds of horizon

export class TimerWheel {
  readonly heads: Int32Array;
  readonly next: Int32Array;
  readonly prev: Int32Array;
  /** Second whose slot holds flow f, at sec[f * stride + off] (-1: not in the wheel). */
  private readonly sec: Float64Array;
  private readonly stride: number;
  private readonly off: number;
  /** Next second to process; -1 until the clock is first seen. */
  cursor = -1;

  /** store/stride/off: where the per-flow slot second lives (e.g. inside the owner's flow record). */
  constructor(maxFlows: number, store?: Float64Array, stride = 1, off = 0) {
    this.heads = new Int32Array(WHEEL_SLOTS).fill(-1);
    this.next = new Int32Array(maxFlows).fill(-1);
    this.prev = new Int32Array(maxFlows).fill(-1);
    this.sec = store ?? new Float64Array(maxFlows);
    this.stride = store ? stride : 1;
    this.off = store ? off : 0;
    for (let f = 0; f < maxFlows; f++) this.sec[f * this.stride + this.off] = -1;
  }

  slotSec(f: number): number {
    return this.sec[f * this.stride + this.off];
  }

  start(nowMs: number): void {
    if (this.cursor < 0) this.cursor = Math.floor(nowMs / 1000);
  }

  /** File flow f (not in the wheel) for deadlineMs. */
  insert(f: number, deadlineMs: number): void {
    let s = Math.ceil(deadlineMs / 1000);
    const c = this.cursor;
    if (s < c) s = c;
    else if (s > c + WHEEL_SLOTS - 1) s = c + WHEEL_SLOTS - 1;
    const slot = s % WHEEL_SLOTS;
    const h = this.heads[slot];
    this.next[f] = h;
    this.prev[f] = -1;
    if (h >= 0) this.prev[h] = f;
    this.heads[slot] = f;
    this.sec[f * this.stride + this.off] = s;
  }

  /** Remove flow f from its slot (no-op when not filed). */
  unlink(f: number): void {
    const at = f * this.stride + this.off;
    const s = this.sec[at];
    if (s < 0) return;
    const n = this.next[f];
    const p = this.prev[f];
    if (p >= 0) this.next[p] = n;
    else this.heads[s % WHEEL_SLOTS] = n;
    if (n >= 0) this.prev[n] = p;
    this.next[f] = -1;
    this.prev[f] = -1;
    this.sec[at] = -1;
  }

  /** The deadline of filed flow f changed: move it only if it now falls before its slot. */
  update(f: number, deadlineMs: number): void {
    if (Math.ceil(deadlineMs / 1000) < this.sec[f * this.stride + this.off]) {
      this.unlink(f);
      this.insert(f, deadlineMs);
    }
  }

  /** Pop one flow from the slot of second `sec`, or -1 when empty. */
  pop(sec: number): number {
    const slot = sec % WHEEL_SLOTS;
    const f = this.heads[slot];
    if (f >= 0) this.unlink(f);
    return f;
  }

  clear(): void {
    this.heads.fill(-1);
    this.next.fill(-1);
    this.prev.fill(-1);
    const n = this.next.length;
    for (let f = 0; f < n; f++) this.sec[f * this.stride + this.off] = -1;
  }
}
