/*
 * The frame arena: one ArrayBuffer holding every port's RX ring and a pool of spare slots
 * (see frame.ts for the slot layout). Pool slots carry a reference count so one frame can
 * sit in several TX queues (flooding) and is returned to the free list when the last
 * queue has transmitted it. Each slot also has annotations (anno.ts): per-frame metadata
 * the elements hand each other, like Click's packet annotations. Nothing here allocates
 * after construction.
 *
 * Pool accounting: every pool slot is taken for an account (a purpose, and for neighbour
 * queues and delay lines also a port or an element), each with a limit, so one tenant or one
 * experiment cannot hold the whole pool. The last RESERVE slots are for the CONTROL account
 * alone: ARP, ICMP errors, TCP resets and traces always find a slot. `accounts()` shows use
 * and limits (`ctl stats`, metrics); a refused allocation is counted by the caller
 * (no_frame_slot) and in the account's `refused`.
 */
import { Annotations } from './anno.js';
import { SLOT_SIZE } from './frame.js';

const MAX_ACCOUNTS = 4096;

/** ARP, ICMP errors, TCP resets, traces: may use the reserve. */
export const ACCOUNT_CONTROL = 0;
/** Fragments, copies of duplicated or corrupted frames. */
export const ACCOUNT_GENERAL = 1;
/** Pool slots only the control account may take. */
export const POOL_RESERVE = 64;

export interface PoolAccountInfo {
  name: string;
  used: number;
  limit: number;
  peak: number;
  refused: number;
}

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
  /** Rings given back (a port removed at runtime), by size: reused before new ones. */
  private readonly freeRings: { off: number; slots: number }[] = [];
  /** Account of each pool slot while it is taken. */
  private readonly slotAccount: Int16Array;
  private readonly accountUsed: Int32Array;
  private readonly accountLimit: Int32Array;
  private readonly accountPeak: Int32Array;
  private readonly accountRefused: Float64Array;
  private readonly accountNames: string[] = [];
  readonly reserve: number;

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
    this.reserve = Math.min(POOL_RESERVE, poolSlots >> 2);
    this.slotAccount = new Int16Array(poolSlots);
    this.accountUsed = new Int32Array(MAX_ACCOUNTS);
    this.accountLimit = new Int32Array(MAX_ACCOUNTS);
    this.accountPeak = new Int32Array(MAX_ACCOUNTS);
    this.accountRefused = new Float64Array(MAX_ACCOUNTS);
    this.newAccount('control', poolSlots);
    this.newAccount('general', poolSlots - this.reserve);
  }

  /** A new pool account with a limit (slots); returns its id. Build time only. */
  newAccount(name: string, limit: number): number {
    const id = this.accountNames.length;
    if (id >= MAX_ACCOUNTS) throw new RangeError(`arena: more than ${MAX_ACCOUNTS} pool accounts`);
    this.accountNames.push(name);
    this.accountLimit[id] = Math.max(0, Math.min(limit, this.poolSlots));
    return id;
  }

  /** Pool use by account (control plane). */
  accounts(): PoolAccountInfo[] {
    return this.accountNames.map((name, i) => ({ name, used: this.accountUsed[i], limit: this.accountLimit[i], peak: this.accountPeak[i], refused: this.accountRefused[i] }));
  }

  /** Reserve `slots` consecutive ring slots; returns the byte offset of the first. */
  reserveRing(slots: number): number {
    const again = this.freeRings.findIndex((r) => r.slots === slots);
    if (again >= 0) return this.freeRings.splice(again, 1)[0].off;
    if (this.nextRing + slots > this.ringSlotsTotal) throw new RangeError('arena: no room for another RX ring');
    const off = this.nextRing * SLOT_SIZE;
    this.nextRing += slots;
    return off;
  }

  /** Give a ring back (its device stopped reading for good). */
  releaseRing(off: number, slots: number): void {
    this.freeRings.push({ off, slots });
  }

  /** Rings that can still be reserved (new and given back) of `slots` slots each. */
  ringsLeft(slots: number): number {
    return Math.floor((this.ringSlotsTotal - this.nextRing) / slots) + this.freeRings.filter((r) => r.slots === slots).length;
  }

  /** Name an account anew (a port index reused at runtime). */
  renameAccount(id: number, name: string): void {
    this.accountNames[id] = name;
    this.accountPeak[id] = 0;
    this.accountRefused[id] = 0;
  }

  /** A pool slot with refcount 1 for `account`, or -1 when the account is at its limit or the pool is exhausted. */
  alloc(account = ACCOUNT_CONTROL): number {
    const used = this.accountUsed[account];
    if (used >= this.accountLimit[account] || this.freeTop <= (account === ACCOUNT_CONTROL ? 0 : this.reserve)) {
      this.accountRefused[account]++;
      return -1;
    }
    const idx = this.free[--this.freeTop];
    this.refs[idx] = 1;
    this.slotAccount[idx] = account;
    this.anno.port[this.ringSlotsTotal + idx] = -1;
    this.accountUsed[account] = used + 1;
    if (used + 1 > this.accountPeak[account]) this.accountPeak[account] = used + 1;
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
    if (--this.refs[idx] === 0) {
      this.free[this.freeTop++] = idx;
      this.accountUsed[this.slotAccount[idx]]--;
    }
  }

  /** Copy a frame (vnet header and annotations included) into a fresh pool slot of `account`; -1 when refused. */
  copyToPool(off: number, len: number, vnetHdrLen: number, account = ACCOUNT_GENERAL): number {
    const dst = this.alloc(account);
    if (dst < 0) return -1;
    this.u8.copyWithin(dst, off, off + vnetHdrLen + len);
    this.anno.copy(off, dst);
    return dst;
  }

  /**
   * A frame the caller keeps beyond the current push: the same pool slot retained (it stays
   * in the account it was taken for), or a copy of a ring slot taken for `account`; -1 when refused.
   */
  hold(off: number, len: number, vnetHdrLen: number, account: number): number {
    if (off >= this.poolBase) {
      this.retain(off);
      return off;
    }
    return this.copyToPool(off, len, vnetHdrLen, account);
  }

  get poolFree(): number {
    return this.freeTop;
  }
}
