/*
 * FaultStage: the fault-injection decisions for one port and direction (netem/tbf-like),
 * reconfigurable at runtime, deterministic for a given seed and input sequence. The fault
 * element (element.ts) wraps it onto a link.
 *
 * decide(buf, off, len, nowMs) per frame (off = Ethernet header; the virtio header of the
 * arena slot sits before it) returns an action code (no allocation):
 *   PASS                  forward now
 *   DUPLICATE             forward now, twice
 *   QUEUE                 hold until `releaseTime`: the caller puts the frame into a pool
 *                         slot and calls enqueue(slotOff, len, releaseTime)
 *   QUEUE | DUPLICATE     as QUEUE, with two copies (two enqueue calls, same releaseTime)
 *   DROP_LOSS, DROP_NTH, DROP_FILTER, DROP_RATE_QUEUE_FULL, DROP_DOWN  (isDrop(code))
 * Corruption is applied in place before decide returns (both copies of a duplicate share it).
 * poll(nowMs, outSlots, outLens) returns the held frames that are due (release order, FIFO
 * among equal times); nextDeadline() gives the next wake-up (Infinity: none).
 *
 * Pipeline per frame, in order: down -> dropFilter -> dropEveryNth -> loss -> duplicate ->
 *   rate (token-bucket.ts) -> corrupt (corrupt.ts) -> delay + jitter -> reorder.
 * Config: configure(spec) with a FaultSpec (spec.ts), validated first and applied
 *   atomically; absent fields = that fault off. `seed` reseeds every fault's PRNG stream
 *   (each fault has its own stream, so e.g. adding jitter does not change which frames are
 *   lost). Delay: uniform ms±jitter; normal ms+N(0,1)*jitter; pareto ms + heavy-tailed extra
 *   (shape 3) with mean jitterMs; clamped at 0; release order stays FIFO except for frames
 *   picked by reorder, which are held back an extra gapMs.
 * Counters (counters()): passed, lossDrops, nthDrops, filterDrops, rateDrops, downDrops,
 *   delayed, reordered, duplicated, corrupted, enqueued, released, queueFullDrops, queued.
 * With no fault configured (`active` false) decide() is a counter increment.
 */
import { compileFilter, type PacketFilter } from '../trace/filter.js';
import { Corrupter } from './corrupt.js';
import { CLASS_FIFO, CLASS_HELD, DelayLine } from './delay-line.js';
import { LOSS_NONE, LossModel } from './loss.js';
import { Prng } from './prng.js';
import { validateFaultSpec, type FaultCounters, type FaultSpec } from './spec.js';
import { TokenBucket } from './token-bucket.js';

export * from './spec.js';

export const PASS = 0;
export const QUEUE = 1;
export const DUPLICATE = 2;
export const QUEUE_DUPLICATE = 3;
export const DROP_LOSS = 16;
export const DROP_NTH = 17;
export const DROP_FILTER = 18;
export const DROP_RATE_QUEUE_FULL = 19;
export const DROP_DOWN = 20;

export function isDrop(action: number): boolean {
  return action >= 16;
}

export interface FaultStageOptions {
  /** Delay line capacity (frames). Default 8192. */
  queueCapacity?: number;
  /** Initial seed when a spec has none. Default 1. */
  seed?: number;
  /** Frames are preceded by a virtio_net_hdr (arena layout). Default true. */
  vnetHdr?: boolean;
}

const DIST_UNIFORM = 0;
const DIST_NORMAL = 1;
const DIST_PARETO = 2;
const DISTRIBUTIONS: Record<string, number> = { uniform: DIST_UNIFORM, normal: DIST_NORMAL, pareto: DIST_PARETO };

/** One PRNG stream per fault (mixed from the seed), in this order. */
const STREAM_LOSS = 1;
const STREAM_DELAY = 2;
const STREAM_REORDER = 3;
const STREAM_DUPLICATE = 4;
const STREAM_CORRUPT = 5;

export class FaultStage {
  /** Release time (ms) chosen by the last decide(); meaningful when the action has QUEUE. */
  releaseTime = 0;

  private isActive = false;
  private spec: FaultSpec = {};
  private readonly vnetHdr: boolean;

  private readonly lossRng = new Prng(0);
  private readonly delayRng = new Prng(0);
  private readonly reorderRng = new Prng(0);
  private readonly duplicateRng = new Prng(0);
  private readonly corruptRng = new Prng(0);
  private readonly loss = new LossModel(this.lossRng);
  private readonly bucket = new TokenBucket();
  private readonly corrupter = new Corrupter(this.corruptRng);
  private readonly line: DelayLine;

  private down = false;
  private dropFilter: PacketFilter | null = null;
  private everyNth = 0;
  private nthCount = 0;
  private duplicateP = 0;
  private delayOn = false;
  private delayMs = 0;
  private jitterMs = 0;
  private distribution = DIST_UNIFORM;
  private reorderP = 0;
  private reorderGapMs = 10;
  private lastRelease = -Infinity;
  private lastClass = CLASS_FIFO;

  private readonly count = { passed: 0, lossDrops: 0, nthDrops: 0, filterDrops: 0, rateDrops: 0, downDrops: 0, delayed: 0, reordered: 0, duplicated: 0, corrupted: 0 };

  constructor(opts: FaultStageOptions = {}) {
    this.vnetHdr = opts.vnetHdr ?? true;
    this.reseed(opts.seed ?? 1);
    this.line = new DelayLine(opts.queueCapacity ?? 8192);
  }

  private reseed(seed: number): void {
    this.lossRng.reseed(seed * 8 + STREAM_LOSS);
    this.delayRng.reseed(seed * 8 + STREAM_DELAY);
    this.reorderRng.reseed(seed * 8 + STREAM_REORDER);
    this.duplicateRng.reseed(seed * 8 + STREAM_DUPLICATE);
    this.corruptRng.reseed(seed * 8 + STREAM_CORRUPT);
  }

  /** Any fault configured? */
  get active(): boolean {
    return this.isActive;
  }

  /** Frames currently held in the delay line. */
  get queued(): number {
    return this.line.size;
  }

  /** The spec currently applied (as given). */
  get config(): FaultSpec {
    return this.spec;
  }

  /** Delay line capacity (frames). */
  get capacity(): number {
    return this.line.capacity;
  }

  /**
   * Replace the whole configuration. Validates first (RangeError / FilterSyntaxError naming
   * the field) and changes nothing on error. Held frames keep their release times.
   */
  configure(spec: FaultSpec): void {
    const s = spec ?? {};
    const v = validateFaultSpec(s);
    const filter = v.dropFilter !== '' ? compileFilter(v.dropFilter) : null; // throws FilterSyntaxError

    this.spec = s;
    if (v.seed !== null) this.reseed(v.seed);
    this.down = v.down;
    this.dropFilter = filter;
    if (v.everyNth !== this.everyNth) this.nthCount = 0;
    this.everyNth = v.everyNth;
    if (v.ge !== null) this.loss.gilbertElliott(v.ge.p, v.ge.r, v.ge.lossGood, v.ge.lossBad);
    else this.loss.bernoulli(v.lossP);
    this.duplicateP = v.duplicateP;
    this.corrupter.percent = v.corruptP;
    this.corrupter.fixChecksums = v.corruptFix;
    this.corrupter.maxBits = v.corruptMaxBits;
    this.bucket.configure(v.rateBitsPerSecond, v.rateBurst, v.rateQueueLimit);
    this.delayOn = v.delayMs > 0 || v.jitterMs > 0;
    this.delayMs = v.delayMs;
    this.jitterMs = v.jitterMs;
    this.distribution = DISTRIBUTIONS[v.distribution];
    this.reorderP = v.reorderP;
    this.reorderGapMs = v.reorderGapMs;
    this.isActive =
      this.down || filter !== null || this.everyNth > 0 || this.loss.mode !== LOSS_NONE || this.duplicateP > 0 || this.corrupter.percent > 0 ||
      this.bucket.on || this.delayOn || this.reorderP > 0;
  }

  /** Decide what happens to one frame. See the header comment for the action codes. */
  decide(buf: Uint8Array, off: number, len: number, nowMs: number): number {
    this.releaseTime = nowMs;
    const c = this.count;
    if (!this.isActive) {
      c.passed++;
      return PASS;
    }
    if (this.down) {
      c.downDrops++;
      return DROP_DOWN;
    }
    if (this.dropFilter !== null && this.dropFilter.match(buf, off, len)) {
      c.filterDrops++;
      return DROP_FILTER;
    }
    if (this.everyNth > 0 && ++this.nthCount >= this.everyNth) {
      this.nthCount = 0;
      c.nthDrops++;
      return DROP_NTH;
    }
    if (this.loss.lose()) {
      c.lossDrops++;
      return DROP_LOSS;
    }
    const dup = this.duplicateP > 0 && this.duplicateRng.nextFloat() < this.duplicateP;
    let t = nowMs;
    if (this.bucket.on) {
      t = this.bucket.admit(dup ? 2 * len : len, nowMs);
      if (t < 0) {
        c.rateDrops++;
        return DROP_RATE_QUEUE_FULL;
      }
    }
    if (this.corrupter.percent > 0 && this.corrupter.maybe(buf, off, len, this.vnetHdr)) c.corrupted++;
    if (this.delayOn) t += this.delay();
    let cls = CLASS_FIFO;
    if (this.reorderP > 0 && this.reorderRng.nextFloat() < this.reorderP) {
      t += this.reorderGapMs;
      cls = CLASS_HELD;
      c.reordered++;
    } else {
      if (t < this.lastRelease) t = this.lastRelease;
      this.lastRelease = t;
    }
    this.lastClass = cls;
    this.releaseTime = t;
    c.passed++;
    if (dup) c.duplicated++;
    // A FIFO frame may only bypass the delay line when no earlier FIFO frame is still held.
    if (t > nowMs || cls === CLASS_HELD || this.line.fifoHeld > 0) {
      c.delayed++;
      return dup ? QUEUE_DUPLICATE : QUEUE;
    }
    return dup ? DUPLICATE : PASS;
  }

  /** Delay plus jitter for one frame (ms, >= 0). */
  private delay(): number {
    let d = this.delayMs;
    const j = this.jitterMs;
    if (j > 0) {
      const rng = this.delayRng;
      if (this.distribution === DIST_UNIFORM) d += (2 * rng.nextFloat() - 1) * j;
      else if (this.distribution === DIST_NORMAL) d += rng.nextNormal() * j;
      else d += j * 2 * (rng.nextPareto(3, 1) - 1); // shape 3: mean of is 1/2
    }
    return d > 0 ? d : 0;
  }

  /**
   * Hold a copied frame (slot offset, frame length) until releaseMs. Call right after a
   * QUEUE decision (the entry inherits that decision's reorder class). Returns false when
   * the delay line is full: the caller frees the slot.
   */
  enqueue(slotOff: number, len: number, releaseMs: number): boolean {
    return this.line.add(slotOff, len, releaseMs, this.lastClass);
  }

  /** Frames due at nowMs into outSlots/outLens (up to their length), in release order; call again while it fills them. */
  poll(nowMs: number, outSlots: Int32Array, outLens: Int32Array): number {
    return this.line.take(nowMs, outSlots, outLens);
  }

  /** Remove held frames regardless of time (shutdown / port removal), so slots can be freed. */
  drainAll(outSlots: Int32Array, outLens: Int32Array): number {
    return this.line.take(0, outSlots, outLens, true);
  }

  nextDeadline(): number {
    return this.line.nextDeadline();
  }

  counters(): FaultCounters {
    const l = this.line;
    return { ...this.count, enqueued: l.enqueued, released: l.released, queueFullDrops: l.full, queued: l.size };
  }
}

