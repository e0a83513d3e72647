/*
 * IPv6 neighbour cache of one router interface (RFC 4861 section 7.3, neighbour
 * unreachability detection), the NDP counterpart of neighbors.ts.
 *
 * States: INCOMPLETE (resolving: multicast NS to the solicited-node address, packets queued),
 * REACHABLE (confirmed by a solicited NA within `reachableMs`), STALE (older or learned
 * unsolicited: still used; the first use starts DELAY), DELAY (used while stale: wait
 * `delayMs` for a confirmation from above), PROBE (unicast NS every `retransMs`), FAILED (no
 * answer after `maxProbes`: queued packets get ICMPv6 address unreachable), PERMANENT.
 * Storage, queues, probe rate limit and the tenant rules (unresolved entries charged per
 * port; a usable entry's MAC is only changed from the port it was learned on, else
 * ND_CONFIRM_TAKEOVER) are neighbor-cache.ts's; this file keys entries by four IPv6 words
 * and runs the NUD state machine.
 */
import { ip6ToString } from '../wire/ip6.js';
import { CONFIRM_TAKEOVER, CREATE_PORT_LIMIT, NEIGH_INCOMPLETE, NEIGH_NONE, NeighborCache, PENDING_PER_PORT, QUEUE_PER_NEIGHBOR } from './neighbor-cache.js';

export const ND_NONE = NEIGH_NONE;
export const ND_INCOMPLETE = NEIGH_INCOMPLETE;
export const ND_REACHABLE = 2;
export const ND_STALE = 3;
export const ND_DELAY = 4;
export const ND_PROBE = 5;
export const ND_FAILED = 6;
export const ND_PERMANENT = 7;
export const ND_STATE_NAMES = ['none', 'incomplete', 'reachable', 'stale', 'delay', 'probe', 'failed', 'permanent'];

export const QUEUE_PER_NEIGHBOR6 = QUEUE_PER_NEIGHBOR;
export const ND_CONFIRM_TAKEOVER = CONFIRM_TAKEOVER;
export const ND_CREATE_PORT_LIMIT = CREATE_PORT_LIMIT;

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

export class NeighborTable6 extends NeighborCache<Neighbor6Timing> {
  readonly keys: Uint32Array;
  readonly isRouter: Uint8Array;

  constructor(capacity: number, timing: Neighbor6Timing = DEFAULT_NEIGHBOR6_TIMING, pendingPerPort = PENDING_PER_PORT) {
    super(capacity, timing, pendingPerPort);
    this.keys = new Uint32Array((this.mask + 1) * 4);
    this.isRouter = new Uint8Array(this.mask + 1);
  }

  /** Addresses are four words at a[at..at+4) (a plain address, or a slot of anno.nextHop6). */
  private home(a: ArrayLike<number>, at: number): number {
    let h = Math.imul(a[at] ^ a[at + 3], 0x9e3779b1);
    h = Math.imul(h ^ (h >>> 15) ^ a[at + 1], 0x85ebca77);
    h = Math.imul(h ^ (h >>> 13) ^ a[at + 2], 0xc2b2ae3d);
    return (h ^ (h >>> 16)) & this.mask;
  }

  protected homeOf(j: number): number {
    return this.home(this.keys, j << 2);
  }

  protected moveKey(from: number, to: number): void {
    this.keys.copyWithin(to << 2, from << 2, (from << 2) + 4);
    this.isRouter[to] = this.isRouter[from];
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
    const r = this.claim(i, now, port);
    if (r < 0) return r;
    const k = i << 2;
    this.keys[k] = a[at];
    this.keys[k + 1] = a[at + 1];
    this.keys[k + 2] = a[at + 2];
    this.keys[k + 3] = a[at + 3];
    this.isRouter[i] = 0;
    return i;
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

  fail(i: number, now: number): void {
    this.failAs(i, now, ND_FAILED);
  }

  /** DELAY for delayMs without confirmation: start probing. */
  startProbe(i: number, now: number): void {
    this.states[i] = ND_PROBE;
    this.updated[i] = now;
    this.probes[i] = 0;
    this.lastProbe[i] = -Infinity;
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
        ageSeconds: s === ND_PERMANENT ? 0 : this.ageSeconds(i, now),
        queued: this.queueCount[i],
        probes: this.probes[i],
        router: this.isRouter[i] === 1,
      });
    }
    return out;
  }
}
