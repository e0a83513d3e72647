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
 *
 * Tenants: an unresolved (INCOMPLETE) entry is charged to the port whose packet created it,
 * at most `pendingPerPort` per port, so one port scanning addresses cannot fill the table for
 * the others. A resolved entry remembers the port its ARP came from (`owner`); a different
 * MAC for it from another port is refused (`confirm` answers CONFIRM_TAKEOVER) while the
 * entry is usable, so no tenant can take another's address.
 */

export const NEIGH_NONE = 0;
export const NEIGH_INCOMPLETE = 1;
export const NEIGH_REACHABLE = 2;
export const NEIGH_STALE = 3;
export const NEIGH_FAILED = 4;
export const NEIGH_PERMANENT = 5;
export const NEIGH_STATE_NAMES = ['none', 'incomplete', 'reachable', 'stale', 'failed', 'permanent'];

export const QUEUE_PER_NEIGHBOR = 3;
/** Default bound on the unresolved entries one port may create. */
export const PENDING_PER_PORT = 64;
/** confirm(): another port claims the address of a usable entry with a different MAC. */
export const CONFIRM_TAKEOVER = -2;
/** findOrCreate(): the port has too many unresolved entries. */
export const CREATE_PORT_LIMIT = -2;
const MAX_PORTS = 4096;

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
  /** Port index charged for an INCOMPLETE entry (-1: none). */
  private readonly creator: Int16Array;
  /** Port index the entry's MAC was learned from (-1: unknown, e.g. permanent). */
  readonly owner: Int16Array;
  private readonly pendingByPort = new Int32Array(MAX_PORTS);
  private used = 0;
  refused = 0;
  refusedPortLimit = 0;
  takeoversRefused = 0;

  constructor(
    capacity: number,
    readonly timing: NeighborTiming = DEFAULT_NEIGHBOR_TIMING,
    readonly pendingPerPort = PENDING_PER_PORT,
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
    this.creator = new Int16Array(size).fill(-1);
    this.owner = new Int16Array(size).fill(-1);
  }

  /** Unresolved entries charged to a port. */
  pendingOf(port: number): number {
    return port >= 0 ? this.pendingByPort[port] : 0;
  }

  /** Entry i stops being INCOMPLETE: its creating port is no longer charged. */
  private settle(i: number): void {
    const c = this.creator[i];
    if (c >= 0) this.pendingByPort[c]--;
    this.creator[i] = -1;
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

  /**
   * Index of ip's entry, creating an INCOMPLETE one charged to `port` (-1: nobody); -1 when the
   * table is full, CREATE_PORT_LIMIT when the port has too many unresolved entries.
   */
  findOrCreate(ip: number, now: number, port = -1): number {
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
    if (port >= 0 && this.pendingByPort[port] >= this.pendingPerPort) {
      this.refusedPortLimit++;
      return CREATE_PORT_LIMIT;
    }
    if (port >= 0) this.pendingByPort[port]++;
    this.creator[i] = port;
    this.owner[i] = -1;
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

  /**
   * An ARP message from ip/mac arrived through `port`. Returns the entry index if one exists
   * (or was created), -1 when there is none, CONFIRM_TAKEOVER when another port claims a
   * usable entry with a different MAC (refused: the entry keeps its MAC).
   */
  confirm(ip: number, mac: number, now: number, create: boolean, port = -1): number {
    const i = create ? this.findOrCreate(ip, now) : this.find(ip);
    if (i < 0) return -1;
    const s = this.states[i];
    if (s === NEIGH_PERMANENT) return i;
    if ((s === NEIGH_REACHABLE || s === NEIGH_STALE) && this.macs[i] !== mac && this.owner[i] >= 0 && port >= 0 && this.owner[i] !== port) {
      this.takeoversRefused++;
      return CONFIRM_TAKEOVER;
    }
    if (s === NEIGH_INCOMPLETE) this.settle(i);
    this.macs[i] = mac;
    this.owner[i] = port;
    this.states[i] = NEIGH_REACHABLE;
    this.updated[i] = now;
    this.probes[i] = 0;
    return i;
  }

  /** No answer after the probes: the entry fails (its queue is the caller's to drain). */
  fail(i: number, now: number): void {
    if (this.states[i] === NEIGH_INCOMPLETE) this.settle(i);
    this.states[i] = NEIGH_FAILED;
    this.updated[i] = now;
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
    if (this.states[i] === NEIGH_INCOMPLETE) this.settle(i);
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
    this.creator[hole] = -1;
    this.owner[hole] = -1;
  }

  private moveEntry(from: number, to: number): void {
    this.ips[to] = this.ips[from];
    this.macs[to] = this.macs[from];
    this.states[to] = this.states[from];
    this.updated[to] = this.updated[from];
    this.lastProbe[to] = this.lastProbe[from];
    this.probes[to] = this.probes[from];
    this.creator[to] = this.creator[from];
    this.owner[to] = this.owner[from];
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
