/*
 * Neighbour cache of one router interface (ARP, RFC 826 / Linux neigh states, simplified).
 *
 * States: INCOMPLETE (resolving: ARP requests sent, packets queued), REACHABLE (confirmed
 * within `reachableMs`), STALE (older: still used, re-confirmed by the next ARP seen or by a
 * unicast probe when used), FAILED (no answer after `maxProbes`: packets are answered with
 * ICMP host-unreachable by the caller, new ones rejected until `failedHoldMs` passes).
 *
 * Storage: open addressing over typed arrays, fixed capacity; each entry has a small FIFO
 * of queued pool slots (at most QUEUE_PER_NEIGHBOR). ARP requests are rate limited per
 * entry (one per `retransMs`). All times are the engine's ms clock. No allocation after
 * construction except `entries()` for the control plane.
 */

export const NEIGH_NONE = 0;
export const NEIGH_INCOMPLETE = 1;
export const NEIGH_REACHABLE = 2;
export const NEIGH_STALE = 3;
export const NEIGH_FAILED = 4;
export const NEIGH_PERMANENT = 5;
export const NEIGH_STATE_NAMES = ['none', 'incomplete', 'reachable', 'stale', 'failed', 'permanent'];

export const QUEUE_PER_NEIGHBOR = 3;

export interface NeighborTiming {
  reachableMs: number;
  staleMs: number; // a STALE entry unused this long is removed
  retransMs: number;
  maxProbes: number;
  failedHoldMs: number;
}

export const DEFAULT_NEIGHBOR_TIMING: NeighborTiming = {
  reachableMs: 30_000,
  staleMs: 300_000,
  retransMs: 1000,
  maxProbes: 3,
  failedHoldMs: 3000,
};

export interface NeighborInfo {
  ip: number;
  mac: number;
  state: string;
  ageSeconds: number;
  queued: number;
  probes: number;
}

function hashIp(ip: number, mask: number): number {
  let h = Math.imul(ip, 0x9e3779b1);
  h ^= h >>> 16;
  return h & mask;
}

export class NeighborTable {
  readonly capacity: number;
  private readonly mask: number;
  readonly ips: Uint32Array;
  readonly macs: Float64Array;
  readonly states: Uint8Array;
  /** Last confirmation (REACHABLE) or state change time. */
  readonly updated: Float64Array;
  /** Last time an ARP request was sent for this entry. */
  readonly lastProbe: Float64Array;
  readonly probes: Uint8Array;
  /** Queued packets: slot offset and frame length, QUEUE_PER_NEIGHBOR per entry. */
  readonly queueOff: Int32Array;
  readonly queueLen: Int32Array;
  readonly queueCount: Uint8Array;
  private used = 0;
  refused = 0;

  constructor(
    capacity: number,
    readonly timing: NeighborTiming = DEFAULT_NEIGHBOR_TIMING,
  ) {
    let size = 16;
    while (size < capacity * 2) size *= 2;
    this.capacity = capacity;
    this.mask = size - 1;
    this.ips = new Uint32Array(size);
    this.macs = new Float64Array(size);
    this.states = new Uint8Array(size);
    this.updated = new Float64Array(size);
    this.lastProbe = new Float64Array(size);
    this.probes = new Uint8Array(size);
    this.queueOff = new Int32Array(size * QUEUE_PER_NEIGHBOR);
    this.queueLen = new Int32Array(size * QUEUE_PER_NEIGHBOR);
    this.queueCount = new Uint8Array(size);
  }

  get size(): number {
    return this.used;
  }

  /** Index of ip's entry, or -1. */
  find(ip: number): number {
    const mask = this.mask;
    let i = hashIp(ip, mask);
    while (this.states[i] !== NEIGH_NONE) {
      if (this.ips[i] === ip) return i;
      i = (i + 1) & mask;
    }
    return -1;
  }

  /** Index of ip's entry, creating an INCOMPLETE one; -1 when the table is full. */
  findOrCreate(ip: number, now: number): number {
    const mask = this.mask;
    let i = hashIp(ip, mask);
    while (this.states[i] !== NEIGH_NONE) {
      if (this.ips[i] === ip) return i;
      i = (i + 1) & mask;
    }
    if (this.used >= this.capacity) {
      this.refused++;
      return -1;
    }
    this.used++;
    this.ips[i] = ip;
    this.macs[i] = 0;
    this.states[i] = NEIGH_INCOMPLETE;
    this.updated[i] = now;
    this.lastProbe[i] = -Infinity;
    this.probes[i] = 0;
    this.queueCount[i] = 0;
    return i;
  }

  /** An ARP message from ip/mac was seen. Returns the entry index if one exists (or was created). */
  confirm(ip: number, mac: number, now: number, create: boolean): number {
    const i = create ? this.findOrCreate(ip, now) : this.find(ip);
    if (i < 0) return -1;
    if (this.states[i] === NEIGH_PERMANENT) return i;
    this.macs[i] = mac;
    this.states[i] = NEIGH_REACHABLE;
    this.updated[i] = now;
    this.probes[i] = 0;
    return i;
  }

  setPermanent(ip: number, mac: number): void {
    const i = this.findOrCreate(ip, 0);
    if (i < 0) throw new RangeError('neighbour table full');
    this.macs[i] = mac;
    this.states[i] = NEIGH_PERMANENT;
  }

  /** Usable MAC for ip now (REACHABLE/STALE/PERMANENT), else -1. Ages REACHABLE to STALE. */
  resolved(i: number, now: number): number {
    const s = this.states[i];
    if (s === NEIGH_REACHABLE) {
      if (now - this.updated[i] > this.timing.reachableMs) {
        this.states[i] = NEIGH_STALE;
        this.updated[i] = now;
      }
      return this.macs[i];
    }
    if (s === NEIGH_STALE || s === NEIGH_PERMANENT) return this.macs[i];
    return -1;
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

  /** Whether an ARP request for entry i is due now (rate limit); records the probe. */
  probeDue(i: number, now: number): boolean {
    if (now - this.lastProbe[i] < this.timing.retransMs) return false;
    this.lastProbe[i] = now;
    this.probes[i]++;
    return true;
  }

  remove(i: number): void {
    const mask = this.mask;
    this.used--;
    let hole = i;
    let j = (i + 1) & mask;
    while (this.states[j] !== NEIGH_NONE) {
      const home = hashIp(this.ips[j], mask);
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        this.moveEntry(j, hole);
        hole = j;
      }
      j = (j + 1) & mask;
    }
    this.states[hole] = NEIGH_NONE;
    this.queueCount[hole] = 0;
  }

  private moveEntry(from: number, to: number): void {
    this.ips[to] = this.ips[from];
    this.macs[to] = this.macs[from];
    this.states[to] = this.states[from];
    this.updated[to] = this.updated[from];
    this.lastProbe[to] = this.lastProbe[from];
    this.probes[to] = this.probes[from];
    const n = this.queueCount[from];
    this.queueCount[to] = n;
    for (let k = 0; k < n; k++) {
      this.queueOff[to * QUEUE_PER_NEIGHBOR + k] = this.queueOff[from * QUEUE_PER_NEIGHBOR + k];
      this.queueLen[to * QUEUE_PER_NEIGHBOR + k] = this.queueLen[from * QUEUE_PER_NEIGHBOR + k];
    }
  }

  /** Slot range scanned by the owner's timer: indices 0..slots-1. */
  get slots(): number {
    return this.mask + 1;
  }

  entries(now: number): NeighborInfo[] {
    const out: NeighborInfo[] = [];
    for (let i = 0; i <= this.mask; i++) {
      const s = this.states[i];
      if (s === NEIGH_NONE) continue;
      out.push({
        ip: this.ips[i],
        mac: this.macs[i],
        state: NEIGH_STATE_NAMES[s],
        ageSeconds: s === NEIGH_PERMANENT ? 0 : Math.round((now - this.updated[i]) / 100) / 10,
        queued: this.queueCount[i],
        probes: this.probes[i],
      });
    }
    return out;
  }
}
