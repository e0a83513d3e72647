/*
 * What the ARP and NDP neighbour caches (neighbors.ts, neighbors6.ts) share: open-addressed
 * typed-array storage of fixed capacity, entry fields (MAC, state, times, probes), a FIFO of
 * at most QUEUE_PER_NEIGHBOR pool slots per unresolved entry, per-entry probe rate limiting,
 * and the tenant rules:
 *   - an unresolved (INCOMPLETE) entry is charged to the port whose packet created it, at
 *     most `pendingPerPort` per port, so one port scanning addresses cannot fill the table;
 *   - a resolved entry remembers the port its MAC came from (`owner`), so the caller can
 *     refuse another port's claim (CONFIRM_TAKEOVER).
 * A subclass owns the key (an IPv4 address, or four IPv6 words), its hash and the state
 * machine above INCOMPLETE. No allocation after construction except `entries()` in the
 * subclasses for the control plane.
 */
import type { Arena } from '../core/arena.js';
import { VNET_HDR_LEN } from '../core/frame.js';

/** State 0 (free slot) and 1 (resolving) mean the same in both caches. */
export const NEIGH_NONE = 0;
export const NEIGH_INCOMPLETE = 1;
export const QUEUE_PER_NEIGHBOR = 3;
/** Default bound on the unresolved entries one port may create. */
export const PENDING_PER_PORT = 64;
/** confirm(): another port claims the address of a usable entry with a different MAC. */
export const CONFIRM_TAKEOVER = -2;
/** findOrCreate(): the port has too many unresolved entries. */
export const CREATE_PORT_LIMIT = -2;
/** park(): the entry's queue is full / no pool slot for the copy. */
export const PARK_QUEUE_FULL = -1;
export const PARK_NO_SLOT = -2;
const MAX_PORTS = 4096;

export abstract class NeighborCache<Timing extends { retransMs: number }> {
  protected readonly mask: number;
  readonly macs: Float64Array;
  readonly states: Uint8Array;
  /** Last confirmation or state change time. */
  readonly updated: Float64Array;
  /** Last time a request (ARP, NS) was sent for the entry. */
  readonly lastProbe: Float64Array;
  readonly probes: Uint8Array;
  /** Queued packets: slot offset and frame length, QUEUE_PER_NEIGHBOR per entry. */
  readonly queueOff: Int32Array;
  readonly queueLen: Int32Array;
  readonly queueCount: Uint8Array;
  /** Port index charged for an INCOMPLETE entry (-1: none). */
  private readonly creator: Int16Array;
  /** Port index the entry's MAC was learned from (-1: unknown, e.g. permanent). */
  readonly owner: Int16Array;
  private readonly pendingByPort = new Int32Array(MAX_PORTS);
  protected used = 0;
  refused = 0;
  refusedPortLimit = 0;
  takeoversRefused = 0;

  constructor(
    readonly capacity: number,
    readonly timing: Timing,
    readonly pendingPerPort: number,
  ) {
    let size = 16;
    while (size < capacity * 2) size *= 2;
    this.mask = size - 1;
    this.macs = new Float64Array(size);
    this.states = new Uint8Array(size);
    this.updated = new Float64Array(size);
    this.lastProbe = new Float64Array(size);
    this.probes = new Uint8Array(size);
    this.queueOff = new Int32Array(size * QUEUE_PER_NEIGHBOR);
    this.queueLen = new Int32Array(size * QUEUE_PER_NEIGHBOR);
    this.queueCount = new Uint8Array(size);
    this.creator = new Int16Array(size).fill(-1);
    this.owner = new Int16Array(size).fill(-1);
  }

  get size(): number {
    return this.used;
  }

  /** Slot range scanned by the owner's timer: indices 0..slots-1. */
  get slots(): number {
    return this.mask + 1;
  }

  /** Unresolved entries charged to a port. */
  pendingOf(port: number): number {
    return port >= 0 ? this.pendingByPort[port] : 0;
  }

  /** Home slot of the entry now in slot j (its key's hash). */
  protected abstract homeOf(j: number): number;
  /** Move the key of slot `from` to slot `to`. */
  protected abstract moveKey(from: number, to: number): void;
  /** No answer after the probes: entry i fails (its queue is the caller's to drain). */
  abstract fail(i: number, now: number): void;

  /**
   * Take free slot i for a new INCOMPLETE entry charged to `port` (the subclass writes the
   * key after): i, or -1 when the table is full, CREATE_PORT_LIMIT over the port's share.
   */
  protected claim(i: number, now: number, port: number): number {
    if (this.used >= this.capacity) {
      this.refused++;
      return -1;
    }
    if (port >= 0 && this.pendingByPort[port] >= this.pendingPerPort) {
      this.refusedPortLimit++;
      return CREATE_PORT_LIMIT;
    }
    if (port >= 0) this.pendingByPort[port]++;
    this.creator[i] = port;
    this.owner[i] = -1;
    this.used++;
    this.macs[i] = 0;
    this.states[i] = NEIGH_INCOMPLETE;
    this.updated[i] = now;
    this.lastProbe[i] = -Infinity;
    this.probes[i] = 0;
    this.queueCount[i] = 0;
    return i;
  }

  /** Entry i stops being INCOMPLETE: its creating port is no longer charged. */
  protected settle(i: number): void {
    const c = this.creator[i];
    if (c >= 0) this.pendingByPort[c]--;
    this.creator[i] = -1;
  }

  /** No answer after the probes: entry i enters `failedState` (its queue is the caller's to drain). */
  protected failAs(i: number, now: number, failedState: number): void {
    if (this.states[i] === NEIGH_INCOMPLETE) this.settle(i);
    this.states[i] = failedState;
    this.updated[i] = now;
  }

  /** Queue a packet (pool slot) on an unresolved entry. False when its queue is full. */
  enqueue(i: number, slotOff: number, len: number): boolean {
    const n = this.queueCount[i];
    if (n >= QUEUE_PER_NEIGHBOR) return false;
    this.queueOff[i * QUEUE_PER_NEIGHBOR + n] = slotOff;
    this.queueLen[i * QUEUE_PER_NEIGHBOR + n] = len;
    this.queueCount[i] = n + 1;
    return true;
  }

  /**
   * Keep a copy of the frame at off (borrowed) on entry i until it resolves, in a pool slot of
   * `account`: the slot, or PARK_QUEUE_FULL / PARK_NO_SLOT.
   */
  park(i: number, arena: Arena, off: number, len: number, account: number): number {
    if (this.queueCount[i] >= QUEUE_PER_NEIGHBOR) return PARK_QUEUE_FULL;
    const slot = arena.hold(off, len, VNET_HDR_LEN, account);
    if (slot < 0) return PARK_NO_SLOT;
    this.enqueue(i, slot, len);
    return slot;
  }

  /** Hand entry i's queued frames to `send` in order (each slot released after), emptying the queue. */
  drain(i: number, arena: Arena, send: (off: number, len: number) => void): void {
    const n = this.queueCount[i];
    this.queueCount[i] = 0;
    for (let k = 0; k < n; k++) {
      const off = this.queueOff[i * QUEUE_PER_NEIGHBOR + k];
      send(off, this.queueLen[i * QUEUE_PER_NEIGHBOR + k]);
      arena.release(off);
    }
  }

  /** Whether a request for entry i is due now (rate limit); records the probe. */
  probeDue(i: number, now: number): boolean {
    if (now - this.lastProbe[i] < this.timing.retransMs) return false;
    this.lastProbe[i] = now;
    this.probes[i]++;
    return true;
  }

  /** Free entry i (its queue must be empty), shifting later entries of its run back. */
  remove(i: number): void {
    const mask = this.mask;
    if (this.states[i] === NEIGH_INCOMPLETE) this.settle(i);
    this.used--;
    let hole = i;
    for (let j = (i + 1) & mask; this.states[j] !== NEIGH_NONE; j = (j + 1) & mask) {
      const home = this.homeOf(j);
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        this.move(j, hole);
        hole = j;
      }
    }
    this.states[hole] = NEIGH_NONE;
    this.queueCount[hole] = 0;
    this.creator[hole] = -1;
    this.owner[hole] = -1;
  }

  protected move(from: number, to: number): void {
    this.moveKey(from, to);
    this.macs[to] = this.macs[from];
    this.states[to] = this.states[from];
    this.updated[to] = this.updated[from];
    this.lastProbe[to] = this.lastProbe[from];
    this.probes[to] = this.probes[from];
    this.creator[to] = this.creator[from];
    this.owner[to] = this.owner[from];
    const n = (this.queueCount[to] = this.queueCount[from]);
    for (let k = 0; k < n; k++) {
      this.queueOff[to * QUEUE_PER_NEIGHBOR + k] = this.queueOff[from * QUEUE_PER_NEIGHBOR + k];
      this.queueLen[to * QUEUE_PER_NEIGHBOR + k] = this.queueLen[from * QUEUE_PER_NEIGHBOR + k];
    }
  }

  /** Age in seconds (one decimal) of entry i. */
  protected ageSeconds(i: number, now: number): number {
    return Math.round((now - this.updated[i]) / 100) / 10;
  }
}
