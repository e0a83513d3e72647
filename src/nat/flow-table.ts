/*
 * The connection table: one record per flow with both of its directions (entries 2f and
 * 2f+1 in the tuple index), a free-id stack, expiry on a timer wheel (no timer per flow) and
 * a FIFO of non-assured flows as early-drop victims when the table is full (netfilter's
 * early_drop). Everything is preallocated for maxFlows; nothing here allocates per packet.
 *
 * One more record than maxFlows exists: `scratch`, the flow a decision trace works in (it is
 * never indexed, timed or counted), so a dry run needs no free id and evicts nobody.
 *
 * RECORD: 64 bytes (one cache line) per flow at f * 64, seen through four typed views:
 *   f64[0] deadline (ms)   f64[1] packets ORIG   f64[2] bytes ORIG   f64[3] packets REPLY
 *   f64[4] bytes REPLY     f64[5] timer-wheel second (owned by TimerWheel)
 *   u32[12] generation (bumped on every allocation; validates fragment-cache entries)
 *   u8[56] proto   u8[57] state   u8[58] flags   u16[30] (bytes 60..61) ingress interface
 *   u16[31] (bytes 62..63) ingress port + 1 (0: unknown)
 *
 * Tenants (connlimit): confirmed flows are counted per ingress port and per original source
 * address, so the owner can refuse a new flow to a port or a source over its share.
 *
 * Address values: with `refs` (IPv6: interned address ids, addr-table.ts) every flow but the
 * scratch one holds the values of its ORIGINAL source and destination and its REPLY source
 * from init() until it is destroyed (the REPLY destination is the ORIGINAL source or one of
 * the engine's own addresses, which the engine holds itself).
 */
import type { AddrRefs } from './family.js';
import { SourceCounts } from './source-counts.js';
import { FlowIndex } from './flow-index.js';
import { TimerWheel, WHEEL_SLOTS } from './timer-wheel.js';

export const F_USED = 1;
export const F_CONFIRMED = 2;
export const F_SEEN_REPLY = 4;
export const F_ASSURED = 8;
export const F_SNAT = 16;
export const F_DNAT = 32;
export const F_HAIRPIN = 64;
const F_IN_UNREPLIED = 128;

const RECORD = 64;
const Q_WHEEL = 5;
const W_GEN = 12;
const B_PROTO = 56;
const B_STATE = 57;
const B_FLAGS = 58;
const H_INIF = 30;
const H_PORT = 31;
/** Ports the per-port flow counts cover. */
export const MAX_PORTS = 4096;

/** f64 index of entry e's packet counter (bytes at + 1). */
function pktsAt(e: number): number {
  return ((e >>> 1) << 3) + 1 + ((e & 1) << 1);
}

export interface TableCounters {
  expired: number;
  earlyDropped: number;
}

export class FlowTable {
  readonly maxFlows: number;
  readonly idx: FlowIndex;
  private readonly m64: Float64Array;
  private readonly m32: Uint32Array;
  private readonly m16: Uint16Array;
  private readonly m8: Uint8Array;
  private readonly wheel: TimerWheel;
  private readonly freeStack: Int32Array;
  private freeTop: number;
  /* FIFO of non-assured flows (early-drop victims), touched only on confirm/assure/destroy. */
  private readonly uNext: Int32Array;
  private readonly uPrev: Int32Array;
  private uHead = -1;
  private uTail = -1;
  /** Confirmed flows. */
  size = 0;
  /** Confirmed flows by ingress port index. */
  readonly perPort = new Int32Array(MAX_PORTS);
  /** Confirmed flows by original source address. */
  readonly perSource: SourceCounts;
  /** The record a dry run (decision trace) uses instead of a free one. */
  readonly scratch: number;

  constructor(
    maxFlows: number,
    seed: number,
    private readonly counters: TableCounters,
    private readonly refs: AddrRefs | null = null,
  ) {
    this.maxFlows = maxFlows;
    this.scratch = maxFlows;
    const rec = new ArrayBuffer((maxFlows + 1) * RECORD);
    this.m64 = new Float64Array(rec);
    this.m32 = new Uint32Array(rec);
    this.m16 = new Uint16Array(rec);
    this.m8 = new Uint8Array(rec);
    this.uNext = new Int32Array(maxFlows).fill(-1);
    this.uPrev = new Int32Array(maxFlows).fill(-1);
    this.idx = new FlowIndex(maxFlows + 1, seed ^ 0x5bd1e995);
    this.wheel = new TimerWheel(maxFlows + 1, this.m64, RECORD / 8, Q_WHEEL);
    this.perSource = new SourceCounts(maxFlows);
    this.freeStack = new Int32Array(maxFlows);
    for (let i = 0; i < maxFlows; i++) this.freeStack[i] = maxFlows - 1 - i; // pop gives 0, 1, 2, ...
    this.freeTop = maxFlows;
  }

  /** Bytes of preallocated table memory (records, tuples, index, timers, lists). */
  get memoryBytes(): number {
    const w = this.wheel;
    return (
      this.m8.byteLength + this.idx.tup.byteLength + this.idx.slots.byteLength +
      w.heads.byteLength + w.next.byteLength + w.prev.byteLength +
      this.uNext.byteLength + this.uPrev.byteLength + this.freeStack.byteLength +
      this.perPort.byteLength + this.perSource.memoryBytes
    );
  }

  /* ------------------------------------------------------------ record fields */

  deadline(f: number): number {
    return this.m64[f << 3];
  }
  flags(f: number): number {
    return this.m8[(f << 6) + B_FLAGS];
  }
  setFlags(f: number, v: number): void {
    this.m8[(f << 6) + B_FLAGS] = v;
  }
  proto(f: number): number {
    return this.m8[(f << 6) + B_PROTO];
  }
  state(f: number): number {
    return this.m8[(f << 6) + B_STATE];
  }
  setState(f: number, v: number): void {
    this.m8[(f << 6) + B_STATE] = v;
  }
  ingressIf(f: number): number {
    return this.m16[(f << 5) + H_INIF];
  }
  /** Ingress port index of the flow's first packet (-1: unknown). */
  ingressPort(f: number): number {
    return this.m16[(f << 5) + H_PORT] - 1;
  }
  generation(f: number): number {
    return this.m32[(f << 4) + W_GEN];
  }
  /** A live flow (used, confirmed, not past its deadline at `now`)? */
  isLive(f: number, now: number): boolean {
    return (this.m8[(f << 6) + B_FLAGS] & F_CONFIRMED) !== 0 && this.m64[f << 3] > now;
  }

  /** Count one packet of `bytes` on entry e. */
  count(e: number, bytes: number): void {
    const p = pktsAt(e);
    this.m64[p]++;
    this.m64[p + 1] += bytes;
  }

  packets(e: number): number {
    return this.m64[pktsAt(e)];
  }
  bytes(e: number): number {
    return this.m64[pktsAt(e) + 1];
  }

  /* ------------------------------------------------------------ lifecycle */

  /** A free flow id (early-dropping the oldest non-assured flow when full), or -1. */
  alloc(): number {
    if (this.freeTop === 0) {
      const victim = this.uHead;
      if (victim < 0) return -1;
      this.counters.earlyDropped++;
      this.destroy(victim);
    }
    const f = this.freeStack[--this.freeTop];
    this.m32[(f << 4) + W_GEN]++;
    return f;
  }

  /** Fill a new (not yet confirmed) flow's record; its tuples are set by the caller. */
  init(f: number, proto: number, state: number, flags: number, ingressIf: number, ingressPort: number, deadline: number, firstBytes: number): void {
    this.m8[(f << 6) + B_PROTO] = proto;
    this.m8[(f << 6) + B_STATE] = state;
    this.m8[(f << 6) + B_FLAGS] = flags | F_USED;
    this.m16[(f << 5) + H_INIF] = ingressIf;
    this.m16[(f << 5) + H_PORT] = ingressPort + 1;
    this.m64[f << 3] = deadline;
    const eo = f << 1;
    this.m64[pktsAt(eo)] = 1;
    this.m64[pktsAt(eo) + 1] = firstBytes;
    this.m64[pktsAt(eo | 1)] = 0;
    this.m64[pktsAt(eo | 1) + 1] = 0;
    if (this.refs !== null && f !== this.scratch) this.holdAddrs(f, true);
  }

  /** Hold (or release) the address values flow f keeps (see the header). */
  private holdAddrs(f: number, hold: boolean): void {
    const r = this.refs!;
    const idx = this.idx;
    const eo = f << 1;
    if (hold) {
      r.hold(idx.src(eo));
      r.hold(idx.dst(eo));
      r.hold(idx.src(eo | 1));
    } else {
      r.release(idx.src(eo));
      r.release(idx.dst(eo));
      r.release(idx.src(eo | 1));
    }
  }

  /** Index both tuples of f, arm its timer, count it. */
  confirm(f: number, extraFlags: number): void {
    this.idx.insert(f << 1);
    this.idx.insert((f << 1) | 1);
    this.m8[(f << 6) + B_FLAGS] |= extraFlags | F_CONFIRMED;
    this.wheel.insert(f, this.m64[f << 3]);
    this.unrepliedPush(f);
    this.size++;
    const port = this.m16[(f << 5) + H_PORT] - 1;
    if (port >= 0) this.perPort[port]++;
    this.perSource.add(this.idx.src(f << 1));
  }

  /** Lazy: the wheel is only touched when the deadline moves earlier (a shorter timeout). */
  setDeadline(f: number, d: number): void {
    const old = this.m64[f << 3];
    this.m64[f << 3] = d;
    if (d < old && (this.m8[(f << 6) + B_FLAGS] & F_CONFIRMED) !== 0) this.wheel.update(f, d);
  }

  assure(f: number): void {
    this.m8[(f << 6) + B_FLAGS] |= F_ASSURED;
    this.unrepliedUnlink(f);
  }

  /** Remove flow f from everything and free its id. */
  destroy(f: number): void {
    const fl = this.m8[(f << 6) + B_FLAGS];
    if ((fl & F_USED) === 0) return;
    if (f === this.scratch) {
      this.m8[(f << 6) + B_FLAGS] = 0;
      return;
    }
    if ((fl & F_CONFIRMED) !== 0) {
      this.idx.remove(f << 1);
      this.idx.remove((f << 1) | 1);
      this.wheel.unlink(f);
      this.unrepliedUnlink(f);
      this.size--;
      const port = this.m16[(f << 5) + H_PORT] - 1;
      if (port >= 0) this.perPort[port]--;
      this.perSource.remove(this.idx.src(f << 1));
    }
    if (this.refs !== null) this.holdAddrs(f, false);
    this.m8[(f << 6) + B_FLAGS] = 0;
    this.freeStack[this.freeTop++] = f;
  }

  /** Expire flows whose deadline passed. Amortised O(expired + re-filed far deadlines). */
  expire(nowMs: number): void {
    const w = this.wheel;
    if (w.cursor < 0) {
      w.start(nowMs);
      return;
    }
    const nowSec = Math.floor(nowMs / 1000);
    if (nowSec - w.cursor >= WHEEL_SLOTS) w.cursor = nowSec - WHEEL_SLOTS + 1;
    const m64 = this.m64;
    while (w.cursor <= nowSec) {
      const sec = w.cursor;
      let f: number;
      while ((f = w.pop(sec)) >= 0) {
        if (m64[f << 3] <= nowMs) {
          this.counters.expired++;
          this.destroy(f);
        } else {
          w.insert(f, m64[f << 3]);
        }
      }
      w.cursor = sec + 1;
    }
  }

  /** Start the wheel's clock at the first packet. */
  startClock(nowMs: number): void {
    if (this.wheel.cursor < 0) this.wheel.start(nowMs);
  }

  /** Remove every flow. */
  clear(): void {
    this.idx.clear();
    this.wheel.clear();
    for (let f = 0; f < this.maxFlows; f++) {
      if (this.refs !== null && (this.m8[(f << 6) + B_FLAGS] & F_USED) !== 0) this.holdAddrs(f, false);
      this.m8[(f << 6) + B_FLAGS] = 0;
    }
    this.uNext.fill(-1);
    this.uPrev.fill(-1);
    this.uHead = this.uTail = -1;
    for (let i = 0; i < this.maxFlows; i++) this.freeStack[i] = this.maxFlows - 1 - i;
    this.freeTop = this.maxFlows;
    this.size = 0;
    this.perPort.fill(0);
    this.perSource.clear();
  }

  private unrepliedPush(f: number): void {
    if ((this.m8[(f << 6) + B_FLAGS] & F_ASSURED) !== 0) return;
    this.uNext[f] = -1;
    this.uPrev[f] = this.uTail;
    if (this.uTail >= 0) this.uNext[this.uTail] = f;
    else this.uHead = f;
    this.uTail = f;
    this.m8[(f << 6) + B_FLAGS] |= F_IN_UNREPLIED;
  }

  private unrepliedUnlink(f: number): void {
    if ((this.m8[(f << 6) + B_FLAGS] & F_IN_UNREPLIED) === 0) return;
    const n = this.uNext[f];
    const p = this.uPrev[f];
    if (p >= 0) this.uNext[p] = n;
    else this.uHead = n;
    if (n >= 0) this.uPrev[n] = p;
    else this.uTail = p;
    this.uNext[f] = -1;
    this.uPrev[f] = -1;
    this.m8[(f << 6) + B_FLAGS] &= ~F_IN_UNREPLIED;
  }
}
