/*
 * NAT elements on the routed path, around the router (netfilter's PREROUTING, POSTROUTING
 * and LOCAL_OUT hooks), sharing one NatEngine (the conntrack table):
 *
 *   nat/pre    inputs/outputs: one per router interface (IFACE in -> IFACE out). Looks the
 *              packet up, applies the destination half (DNAT, de-NAT of replies), and puts
 *              the packet's conntrack state into anno.flow for nat/post.
 *   nat/post   inputs/outputs: one per router interface, after the route lookup: confirms
 *              new flows (SNAT port choice) and applies the source half.
 *   nat/local  input `in`, output `out`: ICMP errors tapbridge generated about a packet NAT
 *              had translated (anno.related) get their quote and destination put back to
 *              what the sender knows, before they are routed.
 * A packet the router drops between nat/pre and nat/post leaves a pending flow, released by
 * the next packet or at the end of the batch: no "undo" on error paths. nat/pre also runs the
 * conntrack expiry on the engine's tick.
 * Counters: the NAT's verdicts as drops (nat_*) on the ingress interface's record (the
 *   egress one for packets tapbridge generated); the engine's `counters`.
 */
import { slotOf } from '../core/anno.js';
import {
  DROP_NAT_CLASH,
  DROP_NAT_FRAGMENT,
  DROP_NAT_MALFORMED,
  DROP_NAT_NO_PORT,
  DROP_NAT_PORT_LIMIT,
  DROP_NAT_SOURCE_LIMIT,
  DROP_NAT_TABLE_FULL,
  DROP_NAT_TCP_INVALID,
  DROP_NAT_UNTRACKED,
  dropName,
} from '../core/drops.js';
import { Element, type DataPlaneContext } from '../core/element.js';
import { VNET_F_NEEDS_CSUM, VNET_FLAGS, VNET_HDR_LEN } from '../core/frame.js';
import { describePacket } from '../wire/describe.js';
import { ETH_HEADER_LEN } from '../wire/ethernet.js';
import type { InterfaceTable } from '../gateway/ifaces.js';
import { NAT_DROP_REASON_NAMES, type NatEngine } from './engine.js';

export interface NatElementParams {
  nat: NatEngine;
  ifaces: InterfaceTable;
}

/** NAT verdict (types.ts, in that order) -> registry drop code. */
const VERDICT_DROP = Int32Array.of(
  0,
  DROP_NAT_MALFORMED,
  DROP_NAT_FRAGMENT,
  DROP_NAT_TABLE_FULL,
  DROP_NAT_TCP_INVALID,
  DROP_NAT_NO_PORT,
  DROP_NAT_CLASH,
  DROP_NAT_UNTRACKED,
  DROP_NAT_PORT_LIMIT,
  DROP_NAT_SOURCE_LIMIT,
);
for (let v = 1; v < NAT_DROP_REASON_NAMES.length; v++) if (dropName(VERDICT_DROP[v]) !== NAT_DROP_REASON_NAMES[v]) throw new Error(`NAT verdict ${v} and the drop registry disagree`);

abstract class NatHook extends Element {
  protected readonly nat: NatEngine;
  protected readonly ifaces: InterfaceTable;

  constructor(name: string, ctx: DataPlaneContext, p: NatElementParams) {
    const names = p.ifaces.list.map((f) => f.name);
    super(name, ctx, [...names], [...names]);
    this.nat = p.nat;
    this.ifaces = p.ifaces;
  }

  protected drop(off: number, fallbackIf: number, verdict: number): void {
    const inIf = this.ctx.arena.anno.inIf[slotOf(off)];
    this.ifaces.list[inIf >= 0 ? inIf : fallbackIf].record.countDrop(VERDICT_DROP[verdict]);
  }

  protected traceNote(before: string, ipOff: number, verdict: number, withFlow: boolean): void {
    const after = describePacket(this.ctx.u8, ipOff);
    const change = verdict !== 0 ? `refused (${NAT_DROP_REASON_NAMES[verdict]})` : before === after ? 'no rewrite' : `rewrote ${before}  =>  ${after}`;
    const d = withFlow ? this.nat.describeLast() : '';
    this.ctx.tracer.note(this.name, d !== '' && verdict === 0 ? `${change}; ${d}` : change);
  }
}

export class NatPrerouting extends NatHook {
  readonly kind = 'NatPrerouting';

  push(input: number, off: number, len: number): void {
    const b = this.ctx.u8;
    const ipOff = off + VNET_HDR_LEN + ETH_HEADER_LEN;
    const tracing = this.ctx.tracer.active;
    const before = tracing ? describePacket(b, ipOff) : '';
    this.nat.ingressPort = this.ctx.arena.anno.port[slotOf(off)];
    const v = this.nat.prerouting(b, ipOff, len - ETH_HEADER_LEN, (b[off + VNET_FLAGS] & VNET_F_NEEDS_CSUM) !== 0, input, this.ctx.clock.now);
    if (tracing) this.traceNote(before, ipOff, v, true);
    if (v !== 0) return this.drop(off, input, v);
    this.ctx.arena.anno.flow[slotOf(off)] = this.nat.packetState;
    this.out[input].push(off, len);
  }

  override endBatch(): void {
    this.nat.releasePending();
  }

  /** Conntrack expiry on the engine's tick (one timer wheel for every flow). */
  override tick(now: number): void {
    this.nat.tick(now);
  }
}

export class NatPostrouting extends NatHook {
  readonly kind = 'NatPostrouting';

  push(input: number, off: number, len: number): void {
    const b = this.ctx.u8;
    const ipOff = off + VNET_HDR_LEN + ETH_HEADER_LEN;
    const nat = this.nat;
    const state = this.ctx.arena.anno.flow[slotOf(off)];
    nat.setPacketState(state);
    const tracing = this.ctx.tracer.active;
    const before = tracing ? describePacket(b, ipOff) : '';
    const v = nat.postrouting(b, ipOff, len - ETH_HEADER_LEN, (b[off + VNET_FLAGS] & VNET_F_NEEDS_CSUM) !== 0, input, this.ctx.clock.now);
    if (tracing) this.traceNote(before, ipOff, v, false);
    if (v !== 0) return this.drop(off, input, v);
    this.out[input].push(off, len);
  }
}

export class NatLocalOut extends Element {
  readonly kind = 'NatLocalOut';

  constructor(
    name: string,
    ctx: DataPlaneContext,
    private readonly nat: NatEngine,
  ) {
    super(name, ctx, ['in'], ['out']);
  }

  push(_input: number, off: number, len: number): void {
    const related = this.ctx.arena.anno.related[slotOf(off)];
    if (related >= 0) {
      const ipOff = off + VNET_HDR_LEN + ETH_HEADER_LEN;
      this.nat.translateLocalError(this.ctx.u8, ipOff, len - ETH_HEADER_LEN, related);
      if (this.ctx.tracer.active) this.ctx.tracer.note(this.name, `ICMP error about a translated packet: quote and destination put back, now ${describePacket(this.ctx.u8, ipOff)}`);
    }
    this.out[0].push(off, len);
  }
}
