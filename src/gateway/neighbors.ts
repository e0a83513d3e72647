/*
 * Neighbour cache of one router interface (ARP, RFC 826 / Linux neigh states, simplified).
 *
 * States: INCOMPLETE (resolving: ARP requests sent, packets queued), REACHABLE (confirmed
 * within `reachableMs`), STALE (older: still used, re-confirmed by the next ARP seen or by a
 * unicast probe when used), FAILED (no answer after `maxProbes`: packets are answered with
 * ICMP host-unreachable by the caller, new ones rejected until `failedHoldMs` passes).
 *
 * Storage, queues, probe rate limit and the tenant rules (unresolved entries charged per
 * port, no takeover of an entry another port owns: `confirm` answers CONFIRM_TAKEOVER) are
 * neighbor-cache.ts's; this file keys entries by IPv4 address. All times are the engine's ms
 * clock.
 */

import { CONFIRM_TAKEOVER, CREATE_PORT_LIMIT, NEIGH_INCOMPLETE, NEIGH_NONE, NeighborCache, PENDING_PER_PORT, QUEUE_PER_NEIGHBOR } from './neighbor-cache.js';

export { CONFIRM_TAKEOVER, CREATE_PORT_LIMIT, NEIGH_INCOMPLETE, NEIGH_NONE, PENDING_PER_PORT, QUEUE_PER_NEIGHBOR };
export const NEIGH_REACHABLE = 2;
export const NEIGH_STALE = 3;
export const NEIGH_FAILED = 4;
export const NEIGH_PERMANENT = 5;
export const NEIGH_STATE_NAMES = ['none', 'incomplete', 'reachable', 'stale', 'failed', 'permanent'];

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

export class NeighborTable extends NeighborCache<NeighborTiming> {
  readonly ips: Uint32Array;

  constructor(capacity: number, timing: NeighborTiming = DEFAULT_NEIGHBOR_TIMING, pendingPerPort = PENDING_PER_PORT) {
    super(capacity, timing, pendingPerPort);
    this.ips = new Uint32Array(this.mask + 1);
  }

  protected homeOf(j: number): number {
    return hashIp(this.ips[j], this.mask);
  }

  protected moveKey(from: number, to: number): void {
    this.ips[to] = this.ips[from];
  }

  /** Index of ip's entry, or -1. */
  find(ip: number): number {
    const mask = this.mask;
    for (let i = hashIp(ip, mask); this.states[i] !== NEIGH_NONE; i = (i + 1) & mask) if (this.ips[i] === ip) return i;
    return -1;
  }

  /**
   * Index of ip's entry, creating an INCOMPLETE one charged to `port` (-1: nobody); -1 when the
   * table is full, CREATE_PORT_LIMIT when the port has too many unresolved entries.
   */
  findOrCreate(ip: number, now: number, port = -1): number {
    const mask = this.mask;
    let i = hashIp(ip, mask);
    for (; this.states[i] !== NEIGH_NONE; i = (i + 1) & mask) if (this.ips[i] === ip) return i;
    const r = this.claim(i, now, port);
    if (r >= 0) this.ips[i] = ip;
    return r;
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
    this.failAs(i, now, NEIGH_FAILED);
  }

  setPermanent(ip: number, mac: number): void {
    const i = this.findOrCreate(ip, 0);
    if (i < 0) throw new RangeError('neighbour table full');
    this.settle(i);
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

  entries(now: number): NeighborInfo[] {
    const out: NeighborInfo[] = [];
    for (let i = 0; i <= this.mask; i++) {
      const s = this.states[i];
      if (s === NEIGH_NONE) continue;
      out.push({
        ip: this.ips[i],
        mac: this.macs[i],
        state: NEIGH_STATE_NAMES[s],
        ageSeconds: s === NEIGH_PERMANENT ? 0 : this.ageSeconds(i, now),
        queued: this.queueCount[i],
        probes: this.probes[i],
      });
    }
    return out;
  }
}
