/*
 * Flows per source address (connlimit): an open-addressing table of IPv4 source -> number of
 * confirmed flows, sized for maxFlows (every flow has one source), with backward-shift
 * deletion when a count drops to zero. No allocation after construction.
 */
export class SourceCounts {
  private readonly keys: Uint32Array;
  private readonly counts: Int32Array;
  private readonly mask: number;

  constructor(maxFlows: number) {
    let cap = 16;
    while (cap < maxFlows * 2) cap *= 2;
    this.keys = new Uint32Array(cap);
    this.counts = new Int32Array(cap);
    this.mask = cap - 1;
  }

  get memoryBytes(): number {
    return this.keys.byteLength + this.counts.byteLength;
  }

  private home(src: number): number {
    let h = Math.imul(src, 0x9e3779b1);
    h ^= h >>> 16;
    return h & this.mask;
  }

  /** Flows of `src` now. */
  get(src: number): number {
    const mask = this.mask;
    for (let i = this.home(src); this.counts[i] !== 0; i = (i + 1) & mask) if (this.keys[i] === src) return this.counts[i];
    return 0;
  }

  add(src: number): void {
    const mask = this.mask;
    let i = this.home(src);
    while (this.counts[i] !== 0 && this.keys[i] !== src) i = (i + 1) & mask;
    this.keys[i] = src;
    this.counts[i]++;
  }

  remove(src: number): void {
    const mask = this.mask;
    let i = this.home(src);
    while (this.counts[i] !== 0 && this.keys[i] !== src) i = (i + 1) & mask;
    if (this.counts[i] === 0) return;
    if (--this.counts[i] !== 0) return;
    // backward-shift the rest of the cluster into the hole
    for (let j = (i + 1) & mask; this.counts[j] !== 0; j = (j + 1) & mask) {
      const h = this.home(this.keys[j]);
      if (((j - h) & mask) >= ((j - i) & mask)) {
        this.keys[i] = this.keys[j];
        this.counts[i] = this.counts[j];
        this.counts[j] = 0;
        i = j;
      }
    }
  }

  clear(): void {
    this.counts.fill(0);
  }
}
