/*
 * What the IPv4 (gw/IF) and IPv6 (gw6/IF) link layers of one router interface share, as an
 * abstract element base: the interface and the record its drops count on; `transmit`, which
 * for the internal gateway port of a bridge (it has no device of its own) counts the frames
 * it sends into the switch on that record; and the packets waiting for a neighbour: parked in
 * a pool slot of the ingress port's account while the entry resolves, sent to the resolved
 * MAC, or handed to the `unreachable` output when the entry fails.
 */
import { ACCOUNT_CONTROL } from '../core/arena.js';
import { C_RX_BYTES, C_RX_PACKETS } from '../core/counters.js';
import { DROP_NO_FRAME_SLOT } from '../core/drops.js';
import { Element, type DataPlaneContext } from '../core/element.js';
import { VNET_HDR_LEN } from '../core/frame.js';
import { writeMac } from '../wire/mac.js';
import type { RouterIface } from './ifaces.js';
import { PARK_NO_SLOT, PARK_QUEUE_FULL, type NeighborCache } from './neighbor-cache.js';

/** Output numbers every link layer uses. */
export const OUT_WIRE = 0;
export const OUT_IP = 1;
export const OUT_UNREACHABLE = 2;

export interface LinkReasons {
  /** A packet's neighbour never answered. */
  failed: number;
  /** Too many packets already wait for one neighbour. */
  queueFull: number;
}

export abstract class InterfaceLink extends Element {
  abstract readonly neigh: NeighborCache<{ retransMs: number }>;
  /** Count traffic on the record (internal gateway port: it has no device of its own). */
  protected readonly countsTraffic: boolean;
  /** The MAC queued frames go to while a resolved entry's queue drains. */
  private flushMac = 0;

  constructor(
    name: string,
    ctx: DataPlaneContext,
    inputs: string[],
    outputs: string[],
    readonly iface: RouterIface,
    /** Pool account of frames waiting for a neighbour, by ingress port (src/dataplane/build.ts). */
    private readonly queueAccounts: Int32Array,
    private readonly reasons: LinkReasons,
  ) {
    super(name, ctx, inputs, outputs);
    this.countsTraffic = iface.record.kind === 'internal';
  }

  protected drop(reason: number): void {
    this.iface.record.countDrop(reason);
  }

  /** Put a complete frame on the wire (through the switch, or out of the uplink device). */
  protected transmit(off: number, len: number): void {
    if (this.countsTraffic) {
      const c = this.iface.record.counters;
      c[C_RX_PACKETS]++;
      c[C_RX_BYTES] += len;
    }
    this.out[OUT_WIRE].push(off, len);
  }

  /**
   * Keep a copy of the frame at off (lent) on unresolved entry i, in a slot of the account of
   * the port it came in through: the slot (its Ethernet header is the caller's to write), or
   * -1 when it could not wait (counted).
   */
  protected park(i: number, off: number, len: number, port: number): number {
    const slot = this.neigh.park(i, this.ctx.arena, off, len, port >= 0 ? this.queueAccounts[port] : ACCOUNT_CONTROL);
    if (slot === PARK_NO_SLOT) this.drop(DROP_NO_FRAME_SLOT);
    else if (slot === PARK_QUEUE_FULL) this.drop(this.reasons.queueFull);
    return slot < 0 ? -1 : slot;
  }

  /** Entry i resolved to mac: its queued frames go out. */
  protected flushNeighborQueue(i: number, mac: number): void {
    this.flushMac = mac;
    this.neigh.drain(i, this.ctx.arena, this.sendResolved);
  }

  private readonly sendResolved = (off: number, len: number): void => {
    writeMac(this.ctx.u8, off + VNET_HDR_LEN, this.flushMac);
    this.transmit(off, len);
  };

  /** A packet for a neighbour that did not answer: counted, and to the `unreachable` output (an ICMP error). */
  protected unreachable(off: number, len: number): void {
    this.drop(this.reasons.failed);
    this.out[OUT_UNREACHABLE].push(off, len);
  }

  private readonly sendUnreachable = (off: number, len: number): void => this.unreachable(off, len);

  /** Entry i got no answer: it fails, its queued packets go to `unreachable`. */
  protected failNeighbor(i: number, now: number): void {
    this.neigh.fail(i, now);
    this.neigh.drain(i, this.ctx.arena, this.sendUnreachable);
  }
}
