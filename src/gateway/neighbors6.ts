/*
 * IPv6 neighbour cache of one router interface (RFC 4861 section 7.3, neighbour
 * unreachability detection), the NDP counterpart of neighbors.ts.
 *
 * States: INCOMPLETE (resolving: multicast NS to the solicited-node address, packets queued),
 * REACHABLE (confirmed by a solicited NA within `reachableMs`), STALE (older or learned
 * unsolicited: still used; the first use starts DELAY), DELAY (used while stale: wait
 * `delayMs` for a confirmation from above), PROBE (unicast NS every `retransMs`), FAILED (no
 * answer after `maxProbes`: queued packets get ICMPv6 address unreachable), PERMANENT.
 * Tenants, as for ARP: an unresolved entry is charged to the port whose packet created it (at
 * most `pendingPerPort`), and a usable entry's MAC is only changed from the port it was
 * learned on (CONFIRM_TAKEOVER otherwise).
 *
 * Storage: open addressing over typed arrays (four key words per entry), fixed capacity, a
 * FIFO of at most QUEUE_PER_NEIGHBOR6 pool slots per entry. No allocation after construction
 * except `entries()` for the control plane.
 */
import { ip6ToString } from '../wire/ip6.js';

export const ND_NONE = 0;
export const ND_INCOMPLETE = 1;
export const ND_REACHABLE = 2;
export const ND_STALE = 3;
export const ND_DELAY = 4;
export const ND_PROBE = 5;
export const ND_FAILED = 6;
export const ND_PERMANENT = 7;
export const ND_STATE_NAMES = ['none', 'incomplete', 'reachable', 'stale', 'delay', 'probe', 'failed', 'permanent'];

export const QUEUE_PER_NEIGHBOR6 = 3;
export const ND_CONFIRM_TAKEOVER = -2;
export const ND_CREATE_PORT_LIMIT = -2;
const MAX_PORTS = 4096;

export interface Neighbor6Timing {
  reachableMs: number;
  retransMs: number;
  delayMs: number;
  maxProbes: number;
  failedHoldMs: number;
  staleMs: number;
}

export const DEFAULT_NEIGHBOR6_TIMING: Neighbor6Timing = {
  reachableMs: 30_000,
  retransMs: 1000,
  delayMs: 5000,
  maxProbes: 3,
  failedHoldMs: 3000,
  staleMs: 300_000,
};

export interface Neighbor6Info {
  ip: string;
  mac: number;
  state: string;
  ageSeconds: number;
  queued: number;
  probes: number;
  router: boolean;
}

export class NeighborTable6 {
  private readonly mask: number;
  readonly keys: Uint32Array;
  readonly macs: Float64Array;
  readonly states: Uint8Array;
  readonly updated: Float64Array;
  readonly lastProbe: Float64Array;
  readonly probes: Uint8Array;
  readonly isRouter: Uint8Array;
  readonly queueOff: Int32Array;
  readonly queueLen: Int32Array;
  readonly queueCount: Uint8Array;
  private readonly creator: Int16Array;
  readonly owner: Int16Array;
  private readonly pendingByPort = new Int32Array(MAX_PORTS);
  private used = 0;
  refused = 0;
  refusedPortLimit = 0;
  takeoversRefused = 0;

  constructor(
    readonly capacity: number,
    readonly timing: Neighbor6Timing = DEFAULT_NEIGHBOR6_TIMING,
    readonly pendingPerPort = 64,
  ) {
    let size = 16;
    while (size < capacity * 2) size *= 2;
    this.mask = size - 1;
    this.keys = new Uint32Array(size * 4);
    this.macs = new Float64Array(size);
    this.states = new Uint8Array(size);
    this.updated = new Float64Array(size);
    this.lastProbe = new Float64Array(size);
    this.probes = new Uint8Array(size);
    this.isRouter = new Uint8Array(size);
    this.queueOff = new Int32Array(size * QUEUE_PER_NEIGHBOR6);
    this.queueLen = new Int32Array(size * QUEUE_PER_NEIGHBOR6);
    this.queueCount = new Uint8Array(size);
    this.creator = new Int16Array(size).fill(-1);
    this.owner = new Int16Array(size).fill(-1);
  }

  get size(): number {
    return this.used;
  }

  get slots(): number {
    return this.mask + 1;
  }

  /** Addresses are four words at a[at..at+4) (a plain address, or a slot of anno.nextHop6). */
  private home(a: ArrayLike<number>, at: number): number {
    let h = Math.imul(a[at] ^ a[at + 3], 0x9e3779b1);
    h = Math.imul(h ^ (h >>> 15) ^ a[at + 1], 0x85ebca77);
    h = Math.imul(h ^ (h >>> 13) ^ a[at + 2], 0xc2b2ae3d);
    return (h ^ (h >>> 16)) & this.mask;
  }

  private matches(i: number, a: ArrayLike<number>, at: number): boolean {
    const k = this.keys;
    const b = i << 2;
    return k[b] === a[at] && k[b + 1] === a[at + 1] && k[b + 2] === a[at + 2] && k[b + 3] === a[at + 3];
  }

  /** Entry of the address at a[at..at+4), or -1. */
  find(a: ArrayLike<number>, at = 0): number {
    const mask = this.mask;
    for (let i = this.home(a, at); this.states[i] !== ND_NONE; i = (i + 1) & mask) if (this.matches(i, a, at)) return i;
    return -1;
  }

  /** Entry of a, creating an INCOMPLETE one charged to `port`; -1 when full, ND_CREATE_PORT_LIMIT over the port's share. */
  findOrCreate(a: ArrayLike<number>, now: number, port = -1, at = 0): number {
    const mask = this.mask;
    let i = this.home(a, at);
    for (; this.states[i] !== ND_NONE; i = (i + 1) & mask) if (this.matches(i, a, at)) return i;
    if (this.used >= this.capacity) {
      this.refused++;
      return -1;
    }
    if (port >= 0 && this.pendingByPort[port] >= this.pendingPerPort) {
      this.refusedPortLimit++;
      return ND_CREATE_PORT_LIMIT;
    }
    if (port >= 0) this.pendingByPort[port]++;
    const k = i << 2;
    this.keys[k] = a[at];
    this.keys[k + 1] = a[at + 1];
    this.keys[k + 2] = a[at + 2];
    this.keys[k + 3] = a[at + 3];
    this.states[i] = ND_INCOMPLETE;
    this.macs[i] = 0;
    this.updated[i] = now;
    this.lastProbe[i] = -Infinity;
    this.probes[i] = 0;
    this.isRouter[i] = 0;
    this.queueCount[i] = 0;
    this.creator[i] = port;
    this.owner[i] = -1;
    this.used++;
    return i;
  }

  private settle(i: number): void {
    const c = this.creator[i];
    if (c >= 0) this.pendingByPort[c]--;
    this.creator[i] = -1;
  }

  private usable(s: number): boolean {
    return s === ND_REACHABLE || s === ND_STALE || s === ND_DELAY || s === ND_PROBE;
  }

  /**
   * A neighbour advertisement (or, with `solicited` false and `override` true, a link-layer
   * address in an NS, RS or RA) for a, from `port`. Creates an entry only when `create`.
   * Returns the entry, -1, or ND_CONFIRM_TAKEOVER (another port claims a usable entry).
   */
  confirm(a: ArrayLike<number>, mac: number, now: number, solicited: boolean, override: boolean, router: boolean, create: boolean, port: number): number {
    const i = create ? this.findOrCreate(a, now) : this.find(a);
    if (i < 0) return -1;
    const s = this.states[i];
    if (s === ND_PERMANENT) return i;
    const changed = mac !== this.macs[i];
    if (this.usable(s) && changed && this.owner[i] >= 0 && port >= 0 && this.owner[i] !== port) {
      this.takeoversRefused++;
      return ND_CONFIRM_TAKEOVER;
    }
    if (s === ND_INCOMPLETE) {
      this.settle(i);
      this.macs[i] = mac;
      this.owner[i] = port;
      this.states[i] = solicited ? ND_REACHABLE : ND_STALE;
    } else if (!changed || override || s === ND_FAILED) {
      // RFC 4861 7.2.5: a new address only with O set; a solicited confirmation makes it reachable
      if (changed) this.owner[i] = port;
      this.macs[i] = mac;
      this.states[i] = solicited ? ND_REACHABLE : changed ? ND_STALE : s === ND_FAILED ? ND_STALE : s;
    } else if (s === ND_REACHABLE) this.states[i] = ND_STALE; // a different address without O: suspect
    this.isRouter[i] = router ? 1 : 0;
    this.updated[i] = now;
    this.probes[i] = 0;
    return i;
  }

  /** MAC to send to entry i now, or -1; REACHABLE ages to STALE, and a STALE entry being used enters DELAY. */
  resolved(i: number, now: number): number {
    const s = this.states[i];
    if (s === ND_REACHABLE) {
      if (now - this.updated[i] > this.timing.reachableMs) {
        this.states[i] = ND_STALE;
        this.updated[i] = now;
      }
      return this.macs[i];
    }
    if (s === ND_STALE) {
      this.states[i] = ND_DELAY;
      this.updated[i] = now;
      return this.macs[i];
    }
    if (s === ND_DELAY || s === ND_PROBE || s === ND_PERMANENT) return this.macs[i];
    return -1;
  }

  enqueue(i: number, slotOff: number, len: number): boolean {
    const n = this.queueCount[i];
    if (n >= QUEUE_PER_NEIGHBOR6) return false;
    this.queueOff[i * QUEUE_PER_NEIGHBOR6 + n] = slotOff;
    this.queueLen[i * QUEUE_PER_NEIGHBOR6 + n] = len;
    this.queueCount[i] = n + 1;
    return true;
  }

  /** Whether a solicitation for entry i is due now; records it. */
  probeDue(i: number, now: number): boolean {
    if (now - this.lastProbe[i] < this.timing.retransMs) return false;
    this.lastProbe[i] = now;
    this.probes[i]++;
    return true;
  }

  fail(i: number, now: number): void {
    if (this.states[i] === ND_INCOMPLETE) this.settle(i);
    this.states[i] = ND_FAILED;
    this.updated[i] = now;
  }

  /** DELAY for delayMs without confirmation: start probing. */
  startProbe(i: number, now: number): void {
    this.states[i] = ND_PROBE;
    this.updated[i] = now;
    this.probes[i] = 0;
    this.lastProbe[i] = -Infinity;
  }

  remove(i: number): void {
    const mask = this.mask;
    if (this.states[i] === ND_INCOMPLETE) this.settle(i);
    this.used--;
    let hole = i;
    for (let j = (i + 1) & mask; this.states[j] !== ND_NONE; j = (j + 1) & mask) {
      const h = this.home(this.keys, j << 2);
      if (((j - h) & mask) >= ((j - hole) & mask)) {
        this.move(j, hole);
        hole = j;
      }
    }
    this.states[hole] = ND_NONE;
    this.queueCount[hole] = 0;
    this.creator[hole] = -1;
    this.owner[hole] = -1;
  }

  private move(from: number, to: number): void {
    this.keys.copyWithin(to << 2, from << 2, (from << 2) + 4);
    this.macs[to] = this.macs[from];
    this.states[to] = this.states[from];
    this.updated[to] = this.updated[from];
    this.lastProbe[to] = this.lastProbe[from];
    this.probes[to] = this.probes[from];
    this.isRouter[to] = this.isRouter[from];
    this.creator[to] = this.creator[from];
    this.owner[to] = this.owner[from];
    const n = (this.queueCount[to] = this.queueCount[from]);
    for (let k = 0; k < n; k++) {
      this.queueOff[to * QUEUE_PER_NEIGHBOR6 + k] = this.queueOff[from * QUEUE_PER_NEIGHBOR6 + k];
      this.queueLen[to * QUEUE_PER_NEIGHBOR6 + k] = this.queueLen[from * QUEUE_PER_NEIGHBOR6 + k];
    }
  }

  /** The address of entry i (a view into the table: copy it before the table changes). */
  key(i: number): Uint32Array {
    return this.keys.subarray(i << 2, (i << 2) + 4);
  }

  entries(now: number): Neighbor6Info[] {
    const out: Neighbor6Info[] = [];
    for (let i = 0; i <= this.mask; i++) {
      const s = this.states[i];
      if (s === ND_NONE) continue;
      out.push({
        ip: ip6ToString(this.key(i)),
        mac: this.macs[i],
        state: ND_STATE_NAMES[s],
        ageSeconds: s === ND_PERMANENT ? 0 : Math.round((now - this.updated[i]) / 100) / 10,
        queued: this.queueCount[i],
        probes: this.probes[i],
        router: this.isRouter[i] === 1,
      });
    }
    return out;
  }
}
