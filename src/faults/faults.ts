/*
 * FaultStage: fault injection for one port and direction (netem/tbf-like), reconfigurable at
 * runtime, deterministic for a given seed and input sequence.
 *
 * Input:  decide(buf, off, len, nowMs) per frame (off = Ethernet header; the 10-byte
 *         virtio_net_hdr of the arena slot sits before it, see src/engine/frame.ts).
 * Output: an action code (no allocation):
 *   PASS                  forward now
 *   DUPLICATE             forward now, twice
 *   QUEUE                 hold until `stage.releaseTime`: the caller copies the frame into a
 *                         pool slot and calls enqueue(slotOff, len, stage.releaseTime)
 *   QUEUE | DUPLICATE     as QUEUE, with two copies (two enqueue calls, same releaseTime)
 *   DROP_LOSS, DROP_NTH, DROP_FILTER, DROP_RATE_QUEUE_FULL, DROP_DOWN  (isDrop(code))
 *   Corruption is applied in place before decide returns (both copies of a duplicate share it).
 *   poll(nowMs, outSlots, outLens) returns the queued frames that are due (release order,
 *   FIFO among equal times); nextDeadline() gives the engine's next wake-up (Infinity: none).
 *   enqueue() returns false when the timer queue is full (the caller frees the slot; counted
 *   as queueFullDrops).
 * Pipeline per frame, in order: down -> dropFilter -> dropEveryNth -> loss -> duplicate ->
 *   rate (token bucket; may drop when its backlog would exceed queueLimitBytes) -> corrupt ->
 *   delay + jitter -> reorder.
 * Config (configure(spec), applied atomically; absent fields = that fault off):
 *   seed                reseeds every fault's PRNG stream (each fault has its own stream,
 *                       so e.g. adding jitter does not change which frames are lost)
 *   loss.percent        Bernoulli loss, 0..100
 *   loss.gilbertElliott {p, r, lossGood=0, lossBad=1}: probabilities 0..1 per frame;
 *                       p = P(good->bad), r = P(bad->good); mean bad burst = 1/r frames
 *   delay {ms, jitterMs=0, distribution='uniform'}: uniform ms±jitter; normal
 *                       ms+N(0,1)*jitter; pareto ms + heavy-tailed extra (shape 3) with mean
 *                       jitterMs. Clamped at 0. Release order stays FIFO (release =
 *                       max(computed, lastRelease)) for every frame not picked by reorder.
 *   reorder {percent, gapMs=10}: the picked fraction is held back an extra gapMs outside the
 *                       FIFO clamp, so later frames overtake it; the others keep their order.
 *   duplicate.percent   forward a second copy
 *   corrupt {percent, fixChecksums=false, maxBits=1}: flip 1..maxBits distinct random bits
 *                       after the 14-byte Ethernet header; fixChecksums recomputes the IPv4
 *                       header and TCP/UDP/ICMP checksums (for NEEDS_CSUM frames the
 *                       pseudo-header sum) and keeps flips out of the checksum fields
 *                       (a flip there would just be undone)
 *   rate {bitsPerSecond, burstBytes, queueLimitBytes}: token bucket; a frame that does not fit
 *                       waits (QUEUE) behind earlier ones; if the bytes already waiting plus
 *                       this frame exceed queueLimitBytes it is dropped. Defaults: burst =
 *                       max(3028, 10 ms of rate), queue limit = max(128 KiB, 100 ms of rate).
 *   dropEveryNth        drop frames N, 2N, 3N ...
 *   dropFilter          filter.ts expression: matching frames are dropped
 *   down                drop everything (link down)
 * Counters (counters() snapshot): passed (frames not dropped), lossDrops, nthDrops,
 *   filterDrops, rateDrops, downDrops, delayed (QUEUE decisions), reordered, duplicated,
 *   corrupted, enqueued, released, queueFullDrops, queued (current queue length).
 * When no fault is configured (`active` false) decide() is a counter increment; the engine may
 * skip the stage entirely when `active` is false and `queued` is 0.
 */

import { Prng } from './prng.js';
import { fixIpv4Checksums, locateChecksums } from './checksum.js';
import { compileFilter, type PacketFilter } from '../trace/filter.js';
import { VNET_HDR_LEN, VNET_F_NEEDS_CSUM, VNET_FLAGS } from '../engine/frame.js';

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

/** Drop reason names (for counters / traces), indexed by action code. */
export const ACTION_NAMES: Readonly<Record<number, string>> = {
  [PASS]: 'pass',
  [QUEUE]: 'queue',
  [DUPLICATE]: 'duplicate',
  [QUEUE_DUPLICATE]: 'queue_duplicate',
  [DROP_LOSS]: 'fault_loss',
  [DROP_NTH]: 'fault_nth',
  [DROP_FILTER]: 'fault_filter',
  [DROP_RATE_QUEUE_FULL]: 'fault_rate_queue_full',
  [DROP_DOWN]: 'fault_down',
};

export interface FaultSpec {
  seed?: number;
  loss?: { percent: number } | { gilbertElliott: { p: number; r: number; lossGood?: number; lossBad?: number } };
  delay?: { ms: number; jitterMs?: number; distribution?: 'uniform' | 'normal' | 'pareto' };
  reorder?: { percent: number; gapMs?: number };
  duplicate?: { percent: number };
  corrupt?: { percent: number; fixChecksums?: boolean; maxBits?: number };
  rate?: { bitsPerSecond: number; burstBytes?: number; queueLimitBytes?: number };
  dropEveryNth?: number;
  dropFilter?: string;
  down?: boolean;
}

export interface FaultCounters {
  passed: number;
  lossDrops: number;
  nthDrops: number;
  filterDrops: number;
  rateDrops: number;
  downDrops: number;
  delayed: number;
  reordered: number;
  duplicated: number;
  corrupted: number;
  enqueued: number;
  released: number;
  queueFullDrops: number;
  queued: number;
}

export interface FaultStageOptions {
  /** Timer queue capacity (entries). Default 8192. */
  queueCapacity?: number;
  /** Initial seed when a spec has none. Default 1. */
  seed?: number;
  /** Frames are preceded by a virtio_net_hdr (arena layout). Default true. */
  vnetHdr?: boolean;
}

const DIST_UNIFORM = 0;
const DIST_NORMAL = 1;
const DIST_PARETO = 2;

const LOSS_NONE = 0;
const LOSS_BERNOULLI = 1;
const LOSS_GE = 2;

/* entry classes: FIFO frames vs reorder-held frames */
const CLASS_FIFO = 0;
const CLASS_HELD = 1;

function num(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new RangeError(`${field}: expected a number in ${min}..${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

export class FaultStage {
  /** Release time (ms) chosen by the last decide(); meaningful when the action has QUEUE. */
  releaseTime = 0;

  private _active = false;
  private spec: FaultSpec = {};
  private readonly vnetHdr: boolean;

  // streams
  private readonly rngLoss: Prng;
  private readonly rngDelay: Prng;
  private readonly rngReorder: Prng;
  private readonly rngDup: Prng;
  private readonly rngCorrupt: Prng;

  // config (flattened numbers for the hot path)
  private down = false;
  private filter: PacketFilter | null = null;
  private nth = 0;
  private nthCount = 0;
  private lossMode = LOSS_NONE;
  private lossP = 0;
  private geP = 0;
  private geR = 0;
  private geLossGood = 0;
  private geLossBad = 1;
  private geBad = false;
  private dupP = 0;
  private corruptP = 0;
  private corruptFix = false;
  private corruptMaxBits = 1;
  private rateOn = false;
  private rateBpms = 0; // bytes per ms
  private burst = 0;
  private qlimit = 0;
  private tokens = 0;
  private tbTime = 0;
  private rateLastDepart = -Infinity;
  private delayOn = false;
  private delayMs = 0;
  private jitterMs = 0;
  private dist = DIST_UNIFORM;
  private reorderP = 0;
  private reorderGap = 10;
  private lastRelease = -Infinity;
  private lastClass = CLASS_FIFO;
  private readonly flipScratch = new Int32Array(64);
  private readonly csumPos = new Int32Array(3);

  // counters
  private cPassed = 0;
  private cLoss = 0;
  private cNth = 0;
  private cFilter = 0;
  private cRate = 0;
  private cDown = 0;
  private cDelayed = 0;
  private cReordered = 0;
  private cDup = 0;
  private cCorrupt = 0;
  private cEnq = 0;
  private cRel = 0;
  private cQFull = 0;

  // timer queue: binary min-heap of entry ids ordered by (release, seq)
  private readonly cap: number;
  private readonly relT: Float64Array;
  private readonly seqT: Float64Array;
  private readonly slotT: Int32Array;
  private readonly lenT: Int32Array;
  private readonly classT: Uint8Array;
  private readonly heap: Int32Array;
  private readonly freeIds: Int32Array;
  private nFree: number;
  private size = 0;
  private seq = 0;
  private fifoQueued = 0;

  constructor(opts: FaultStageOptions = {}) {
    const seed = opts.seed ?? 1;
    this.vnetHdr = opts.vnetHdr ?? true;
    this.rngLoss = new Prng(0);
    this.rngDelay = new Prng(0);
    this.rngReorder = new Prng(0);
    this.rngDup = new Prng(0);
    this.rngCorrupt = new Prng(0);
    this.reseed(seed);
    const cap = opts.queueCapacity ?? 8192;
    if (!Number.isInteger(cap) || cap < 1) throw new RangeError('queueCapacity: expected a positive integer');
    this.cap = cap;
    this.relT = new Float64Array(cap);
    this.seqT = new Float64Array(cap);
    this.slotT = new Int32Array(cap);
    this.lenT = new Int32Array(cap);
    this.classT = new Uint8Array(cap);
    this.heap = new Int32Array(cap);
    this.freeIds = new Int32Array(cap);
    for (let i = 0; i < cap; i++) this.freeIds[i] = cap - 1 - i;
    this.nFree = cap;
  }

  private reseed(seed: number): void {
    // independent streams per fault: mix the seed with a per-fault constant
    this.rngLoss.reseed(seed * 8 + 1);
    this.rngDelay.reseed(seed * 8 + 2);
    this.rngReorder.reseed(seed * 8 + 3);
    this.rngDup.reseed(seed * 8 + 4);
    this.rngCorrupt.reseed(seed * 8 + 5);
  }

  /** Any fault configured? */
  get active(): boolean {
    return this._active;
  }

  /** Frames currently held in the timer queue. */
  get queued(): number {
    return this.size;
  }

  /** The spec currently applied (as given). */
  get config(): FaultSpec {
    return this.spec;
  }

  /**
   * Replace the whole configuration. Validates first (RangeError / FilterSyntaxError naming
   * the field) and changes nothing on error. Queued frames keep their release times.
   */
  configure(spec: FaultSpec): void {
    const s = spec ?? {};
    // ---- validate into locals ----
    let seed: number | null = null;
    if (s.seed !== undefined) seed = num(s.seed, 'seed', 0, Number.MAX_SAFE_INTEGER);
    let lossMode = LOSS_NONE;
    let lossP = 0;
    let ge = { p: 0, r: 0, lossGood: 0, lossBad: 1 };
    if (s.loss !== undefined) {
      if ('percent' in s.loss) {
        lossP = num(s.loss.percent, 'loss.percent', 0, 100) / 100;
        lossMode = lossP > 0 ? LOSS_BERNOULLI : LOSS_NONE;
      } else if ('gilbertElliott' in s.loss && s.loss.gilbertElliott) {
        const g = s.loss.gilbertElliott;
        ge = {
          p: num(g.p, 'loss.gilbertElliott.p', 0, 1),
          r: num(g.r, 'loss.gilbertElliott.r', 0, 1),
          lossGood: num(g.lossGood ?? 0, 'loss.gilbertElliott.lossGood', 0, 1),
          lossBad: num(g.lossBad ?? 1, 'loss.gilbertElliott.lossBad', 0, 1),
        };
        lossMode = LOSS_GE;
      } else throw new RangeError("loss: expected { percent } or { gilbertElliott: { p, r } }");
    }
    let delayMs = 0;
    let jitterMs = 0;
    let dist = DIST_UNIFORM;
    if (s.delay !== undefined) {
      delayMs = num(s.delay.ms, 'delay.ms', 0, 3_600_000);
      jitterMs = num(s.delay.jitterMs ?? 0, 'delay.jitterMs', 0, 3_600_000);
      const d = s.delay.distribution ?? 'uniform';
      if (d === 'uniform') dist = DIST_UNIFORM;
      else if (d === 'normal') dist = DIST_NORMAL;
      else if (d === 'pareto') dist = DIST_PARETO;
      else throw new RangeError(`delay.distribution: expected 'uniform', 'normal' or 'pareto', got ${JSON.stringify(d)}`);
    }
    let reorderP = 0;
    let reorderGap = 10;
    if (s.reorder !== undefined) {
      reorderP = num(s.reorder.percent, 'reorder.percent', 0, 100) / 100;
      reorderGap = num(s.reorder.gapMs ?? 10, 'reorder.gapMs', 0, 3_600_000);
    }
    const dupP = s.duplicate !== undefined ? num(s.duplicate.percent, 'duplicate.percent', 0, 100) / 100 : 0;
    let corruptP = 0;
    let corruptFix = false;
    let corruptMaxBits = 1;
    if (s.corrupt !== undefined) {
      corruptP = num(s.corrupt.percent, 'corrupt.percent', 0, 100) / 100;
      corruptFix = s.corrupt.fixChecksums === true;
      corruptMaxBits = Math.floor(num(s.corrupt.maxBits ?? 1, 'corrupt.maxBits', 1, 64));
    }
    let rateBpms = 0;
    let burst = 0;
    let qlimit = 0;
    if (s.rate !== undefined) {
      const bps = num(s.rate.bitsPerSecond, 'rate.bitsPerSecond', 1, 1e13);
      rateBpms = bps / 8 / 1000;
      burst = num(s.rate.burstBytes ?? Math.max(3028, rateBpms * 10), 'rate.burstBytes', 1, 2 ** 40);
      qlimit = num(s.rate.queueLimitBytes ?? Math.max(131072, rateBpms * 100), 'rate.queueLimitBytes', 0, 2 ** 40);
    }
    const nth = s.dropEveryNth !== undefined ? Math.floor(num(s.dropEveryNth, 'dropEveryNth', 0, 2 ** 31)) : 0;
    let filter: PacketFilter | null = null;
    if (s.dropFilter !== undefined) {
      if (typeof s.dropFilter !== 'string') throw new RangeError('dropFilter: expected a filter expression string');
      if (s.dropFilter.trim() !== '') filter = compileFilter(s.dropFilter); // throws FilterSyntaxError
    }
    const down = s.down === true;

    // ---- apply ----
    this.spec = s;
    if (seed !== null) this.reseed(seed);
    this.down = down;
    this.filter = filter;
    if (nth !== this.nth) this.nthCount = 0;
    this.nth = nth;
    if (lossMode !== this.lossMode || lossMode === LOSS_GE) this.geBad = false;
    this.lossMode = lossMode;
    this.lossP = lossP;
    this.geP = ge.p;
    this.geR = ge.r;
    this.geLossGood = ge.lossGood;
    this.geLossBad = ge.lossBad;
    this.dupP = dupP;
    this.corruptP = corruptP;
    this.corruptFix = corruptFix;
    this.corruptMaxBits = corruptMaxBits;
    const rateOn = rateBpms > 0;
    if (rateOn && (!this.rateOn || rateBpms !== this.rateBpms || burst !== this.burst)) {
      this.tokens = burst;
      this.tbTime = -Infinity; // first frame: bucket full
      this.rateLastDepart = -Infinity;
    }
    this.rateOn = rateOn;
    this.rateBpms = rateBpms;
    this.burst = burst;
    this.qlimit = qlimit;
    this.delayOn = delayMs > 0 || jitterMs > 0;
    this.delayMs = delayMs;
    this.jitterMs = jitterMs;
    this.dist = dist;
    this.reorderP = reorderP;
    this.reorderGap = reorderGap;
    this._active =
      down || filter !== null || nth > 0 || lossMode !== LOSS_NONE || dupP > 0 || corruptP > 0 || rateOn || this.delayOn || reorderP > 0;
  }

  /** Decide what happens to one frame. See the header comment for the action codes. */
  decide(buf: Uint8Array, off: number, len: number, nowMs: number): number {
    this.releaseTime = nowMs;
    if (!this._active) {
      this.cPassed++;
      return PASS;
    }
    if (this.down) {
      this.cDown++;
      return DROP_DOWN;
    }
    if (this.filter !== null && this.filter.match(buf, off, len)) {
      this.cFilter++;
      return DROP_FILTER;
    }
    if (this.nth > 0 && ++this.nthCount >= this.nth) {
      this.nthCount = 0;
      this.cNth++;
      return DROP_NTH;
    }
    if (this.lossMode === LOSS_BERNOULLI) {
      if (this.rngLoss.nextFloat() < this.lossP) {
        this.cLoss++;
        return DROP_LOSS;
      }
    } else if (this.lossMode === LOSS_GE) {
      const pl = this.geBad ? this.geLossBad : this.geLossGood;
      const lost = pl >= 1 || (pl > 0 && this.rngLoss.nextFloat() < pl);
      if (this.geBad) {
        if (this.rngLoss.nextFloat() < this.geR) this.geBad = false;
      } else if (this.rngLoss.nextFloat() < this.geP) this.geBad = true;
      if (lost) {
        this.cLoss++;
        return DROP_LOSS;
      }
    }
    const dup = this.dupP > 0 && this.rngDup.nextFloat() < this.dupP;

    let t = nowMs;
    if (this.rateOn) {
      const bytes = dup ? 2 * len : len;
      const bpms = this.rateBpms;
      const t0 = nowMs > this.rateLastDepart ? nowMs : this.rateLastDepart;
      let tok = this.tbTime === -Infinity ? this.burst : this.tokens + (t0 - this.tbTime) * bpms;
      if (tok > this.burst) tok = this.burst;
      let depart = t0;
      if (tok < bytes) depart = t0 + (bytes - tok) / bpms;
      if (depart > nowMs && (t0 - nowMs) * bpms + bytes > this.qlimit) {
        this.cRate++;
        return DROP_RATE_QUEUE_FULL;
      }
      if (tok >= bytes) {
        this.tokens = tok - bytes;
        this.tbTime = t0;
      } else {
        this.tokens = 0;
        this.tbTime = depart;
      }
      this.rateLastDepart = depart;
      t = depart;
    }

    if (this.corruptP > 0 && len > 14 && this.rngCorrupt.nextFloat() < this.corruptP) {
      const rng = this.rngCorrupt;
      const flips = this.corruptMaxBits > 1 ? 1 + rng.nextBelow(this.corruptMaxBits) : 1;
      const span = (len - 14) * 8;
      const picked = this.flipScratch;
      const cs = this.csumPos;
      // with fixChecksums, flips inside the checksum fields would be undone: avoid them
      if (this.corruptFix) locateChecksums(buf, off, len, cs);
      else cs[0] = cs[1] = -1;
      let nPicked = 0;
      for (let i = 0; i < flips; i++) {
        let bitIdx = 0;
        let pos = 0;
        for (let attempt = 0; attempt < 16; attempt++) {
          bitIdx = rng.nextBelow(span);
          pos = off + 14 + (bitIdx >> 3);
          let clash = pos === cs[0] || pos === cs[0]! + 1 || pos === cs[1] || pos === cs[1]! + 1;
          for (let k = 0; k < nPicked && !clash; k++) clash = picked[k] === bitIdx;
          if (!clash) break;
        }
        picked[nPicked++] = bitIdx;
        buf[pos] = buf[pos]! ^ (1 << (bitIdx & 7));
      }
      if (this.corruptFix) {
        const partial = this.vnetHdr && off >= VNET_HDR_LEN && (buf[off - VNET_HDR_LEN + VNET_FLAGS]! & VNET_F_NEEDS_CSUM) !== 0;
        fixIpv4Checksums(buf, off, len, partial);
      }
      this.cCorrupt++;
    }

    if (this.delayOn) {
      let d = this.delayMs;
      const j = this.jitterMs;
      if (j > 0) {
        const rng = this.rngDelay;
        if (this.dist === DIST_UNIFORM) d += (2 * rng.nextFloat() - 1) * j;
        else if (this.dist === DIST_NORMAL) d += rng.nextNormal() * j;
        else d += j * 2 * (rng.nextPareto(3, 1) - 1); // shape 3: mean of is 1/2
      }
      if (d > 0) t += d;
    }

    let cls = CLASS_FIFO;
    if (this.reorderP > 0 && this.rngReorder.nextFloat() < this.reorderP) {
      t += this.reorderGap;
      cls = CLASS_HELD;
      this.cReordered++;
    } else {
      if (t < this.lastRelease) t = this.lastRelease;
      this.lastRelease = t;
    }
    this.lastClass = cls;
    this.releaseTime = t;
    this.cPassed++;
    if (dup) this.cDup++;
    // A FIFO frame may only bypass the queue when no earlier FIFO frame is still held.
    if (t > nowMs || cls === CLASS_HELD || this.fifoQueued > 0) {
      this.cDelayed++;
      return dup ? QUEUE_DUPLICATE : QUEUE;
    }
    return dup ? DUPLICATE : PASS;
  }

  /**
   * Hold a copied frame (slot offset, frame length) until releaseMs. Call right after a
   * QUEUE decision (the entry inherits that decision's reorder class). Returns false when
   * the queue is full: the caller frees the slot.
   */
  enqueue(slotOff: number, len: number, releaseMs: number): boolean {
    if (this.nFree === 0) {
      this.cQFull++;
      return false;
    }
    const id = this.freeIds[--this.nFree]!;
    this.relT[id] = releaseMs;
    this.seqT[id] = this.seq++;
    this.slotT[id] = slotOff;
    this.lenT[id] = len;
    this.classT[id] = this.lastClass;
    if (this.lastClass === CLASS_FIFO) this.fifoQueued++;
    // sift up
    const heap = this.heap;
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pid = heap[parent]!;
      if (!this.less(id, pid)) break;
      heap[i] = pid;
      i = parent;
    }
    heap[i] = id;
    this.cEnq++;
    return true;
  }

  private less(a: number, b: number): boolean {
    const ra = this.relT[a]!;
    const rb = this.relT[b]!;
    return ra < rb || (ra === rb && this.seqT[a]! < this.seqT[b]!);
  }

  private popTop(): number {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap[--this.size]!;
    if (this.size > 0) {
      let i = 0;
      const n = this.size;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        let c = l;
        if (r < n && this.less(heap[r]!, heap[l]!)) c = r;
        if (!this.less(heap[c]!, last)) break;
        heap[i] = heap[c]!;
        i = c;
      }
      heap[i] = last;
    }
    this.freeIds[this.nFree++] = top;
    if (this.classT[top] === CLASS_FIFO) this.fifoQueued--;
    return top;
  }

  /**
   * Move frames due at nowMs into outSlots/outLens (up to outSlots.length), in release order.
   * Returns how many; call again if it returned outSlots.length.
   */
  poll(nowMs: number, outSlots: Int32Array, outLens: Int32Array): number {
    let n = 0;
    const max = outSlots.length < outLens.length ? outSlots.length : outLens.length;
    while (this.size > 0 && n < max && this.relT[this.heap[0]!]! <= nowMs) {
      const id = this.popTop();
      outSlots[n] = this.slotT[id]!;
      outLens[n] = this.lenT[id]!;
      n++;
    }
    this.cRel += n;
    return n;
  }

  /** Remove queued frames regardless of time (shutdown / port removal), so slots can be freed. */
  drainAll(outSlots: Int32Array, outLens: Int32Array): number {
    let n = 0;
    const max = outSlots.length < outLens.length ? outSlots.length : outLens.length;
    while (this.size > 0 && n < max) {
      const id = this.popTop();
      outSlots[n] = this.slotT[id]!;
      outLens[n] = this.lenT[id]!;
      n++;
    }
    return n;
  }

  /** Earliest release time in the queue (ms), or Infinity when empty. */
  nextDeadline(): number {
    return this.size > 0 ? this.relT[this.heap[0]!]! : Infinity;
  }

  /** Timer queue capacity (entries). */
  get capacity(): number {
    return this.cap;
  }

  counters(): FaultCounters {
    return {
      passed: this.cPassed,
      lossDrops: this.cLoss,
      nthDrops: this.cNth,
      filterDrops: this.cFilter,
      rateDrops: this.cRate,
      downDrops: this.cDown,
      delayed: this.cDelayed,
      reordered: this.cReordered,
      duplicated: this.cDup,
      corrupted: this.cCorrupt,
      enqueued: this.cEnq,
      released: this.cRel,
      queueFullDrops: this.cQFull,
      queued: this.size,
    };
  }
}
