/*
 * NAT elements on the routed path, around the router (netfilter's PREROUTING, POSTROUTING
 * and LOCAL_OUT hooks), sharing one engine (the conntrack table) per address family:
 * nat/pre, nat/post, nat/local for IPv4 (NatEngine), nat6/pre, nat6/post, nat6/local for
 * IPv6 (NatEngine6). Both sets behave the same; the frame's Ethernet header is 14 bytes and
 * the IP header follows.
 *
 *   nat/pre    inputs/outputs: one per router interface (IFACE in -> IFACE out). Looks the
 *              packet up, applies the destination half (DNAT, de-NAT of replies), and puts
 *              the packet's conntrack state into anno.flow for nat/post. anno.port (the
 *              ingress port index) is the key of the per-port share.
 *   nat/post   inputs/outputs: one per router interface, after the route lookup: confirms
 *              new flows (SNAT port choice) and applies the source half.
 *   nat/local  input `in`, output `out`: ICMP errors tapbridge generated about a packet NAT
 *              had translated (anno.related) get their quote and destination put back to
 *              what the sender knows, before they are routed. Packets of the other IP
 *              version pass untouched.
 * A packet the router drops between nat/pre and nat/post leaves a pending flow, released by
 * the next packet or at the end of the batch: no "undo" on error paths. nat/pre also runs the
 * conntrack expiry on the engine's tick.
 * Params: { nat: NatEngine | NatEngine6, ifaces } (pre/post; only the interfaces' names and
 *   records are used), the engine (local).
 * Counters: the NAT's verdicts as drops (nat_* / nat6_*) on the ingress interface's record
 *   (the egress one for packets tapbridge generated); the engine's `counters`.
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
  DROP_NAT6_CLASH,
  DROP_NAT6_FRAGMENT,
  DROP_NAT6_MALFORMED,
  DROP_NAT6_NO_PORT,
  DROP_NAT6_PORT_LIMIT,
  DROP_NAT6_SOURCE_LIMIT,
  DROP_NAT6_TABLE_FULL,
  DROP_NAT6_TCP_INVALID,
  DROP_NAT6_UNTRACKED,
  dropName,
} from '../core/drops.js';
import { Element, type DataPlaneContext } from '../core/element.js';
import { VNET_F_NEEDS_CSUM, VNET_FLAGS, VNET_HDR_LEN } from '../core/frame.js';
import { describePacket } from '../wire/describe.js';
import { ETH_HEADER_LEN } from '../wire/ethernet.js';
import type { InterfaceTable } from '../gateway/ifaces.js';
import { describePacket6 } from './describe6.js';
import type { NatEngine, NatEngineBase } from './engine.js';
import type { NatEngine6 } from './engine6.js';
import { NAT_DROP_REASON_NAMES, NAT6_DROP_REASON_NAMES } from './types.js';

export interface NatElementParams {
  nat: NatEngine;
  ifaces: InterfaceTable;
}

export interface Nat6ElementParams {
  nat: NatEngine6;
  ifaces: InterfaceTable;
}

/** NAT verdict (types.ts, in that order) -> registry drop code, checked against the verdict names. */
function verdictDrops(names: readonly string[], ...codes: number[]): Int32Array {
  const t = Int32Array.of(0, ...codes);
  for (let v = 1; v < names.length; v++) if (dropName(t[v]) !== names[v]) throw new Error(`NAT verdict ${v} and the drop registry disagree`);
  return t;
}

const VERDICT_DROP = verdictDrops(
  NAT_DROP_REASON_NAMES,
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

const VERDICT_DROP6 = verdictDrops(
  NAT6_DROP_REASON_NAMES,
  DROP_NAT6_MALFORMED,
  DROP_NAT6_FRAGMENT,
  DROP_NAT6_TABLE_FULL,
  DROP_NAT6_TCP_INVALID,
  DROP_NAT6_NO_PORT,
  DROP_NAT6_CLASH,
  DROP_NAT6_UNTRACKED,
  DROP_NAT6_PORT_LIMIT,
  DROP_NAT6_SOURCE_LIMIT,
);

/** Trace text of the packet at ipOff (len bytes) for a family (control plane). */
function describeIp(version: 4 | 6, b: Uint8Array, ipOff: number, len: number): string {
  return version === 4 ? describePacket(b, ipOff) : describePacket6(b, ipOff, len);
}

abstract class NatHook extends Element {
  protected readonly nat: NatEngineBase;
  protected readonly ifaces: InterfaceTable;
  private readonly verdicts: Int32Array;
  protected readonly version: 4 | 6;

  constructor(name: string, ctx: DataPlaneContext, p: NatElementParams | Nat6ElementParams) {
    const names = p.ifaces.list.map((f) => f.name);
    super(name, ctx, [...names], [...names]);
    this.nat = p.nat;
    this.ifaces = p.ifaces;
    this.version = p.nat.ipVersion;
    this.verdicts = this.version === 4 ? VERDICT_DROP : VERDICT_DROP6;
  }

  protected drop(off: number, fallbackIf: number, verdict: number): void {
    const inIf = this.ctx.arena.anno.inIf[slotOf(off)];
    this.ifaces.list[inIf >= 0 ? inIf : fallbackIf].record.countDrop(this.verdicts[verdict]);
  }

  protected describe(ipOff: number, len: number): string {
    return describeIp(this.version, this.ctx.u8, ipOff, len);
  }

  protected traceNote(before: string, ipOff: number, len: number, verdict: number, withFlow: boolean): void {
    const after = this.describe(ipOff, len);
    const change = verdict !== 0 ? `refused (${this.nat.dropNames[verdict]})` : before === after ? 'no rewrite' : `rewrote ${before}  =>  ${after}`;
    const d = withFlow ? this.nat.describeLast() : '';
    this.ctx.tracer.note(this.name, d !== '' && verdict === 0 ? `${change}; ${d}` : change);
  }
}

/** nat/pre, or nat6/pre with a NatEngine6 (kind NatPrerouting6). */
export class NatPrerouting extends NatHook {
  get kind(): string {
    return this.version === 4 ? 'NatPrerouting' : 'NatPrerouting6';
  }

  push(input: number, off: number, len: number): void {
    const b = this.ctx.u8;
    const ipOff = off + VNET_HDR_LEN + ETH_HEADER_LEN;
    const ipLen = len - ETH_HEADER_LEN;
    const tracing = this.ctx.tracer.active;
    const before = tracing ? this.describe(ipOff, ipLen) : '';
    this.nat.ingressPort = this.ctx.arena.anno.port[slotOf(off)];
    const v = this.nat.prerouting(b, ipOff, ipLen, (b[off + VNET_FLAGS] & VNET_F_NEEDS_CSUM) !== 0, input, this.ctx.clock.now);
    if (tracing) this.traceNote(before, ipOff, ipLen, v, true);
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

/** nat/post, or nat6/post with a NatEngine6 (kind NatPostrouting6). */
export class NatPostrouting extends NatHook {
  get kind(): string {
    return this.version === 4 ? 'NatPostrouting' : 'NatPostrouting6';
  }

  push(input: number, off: number, len: number): void {
    const b = this.ctx.u8;
    const ipOff = off + VNET_HDR_LEN + ETH_HEADER_LEN;
    const ipLen = len - ETH_HEADER_LEN;
    const nat = this.nat;
    const state = this.ctx.arena.anno.flow[slotOf(off)];
    nat.setPacketState(state);
    const tracing = this.ctx.tracer.active;
    const before = tracing ? this.describe(ipOff, ipLen) : '';
    const v = nat.postrouting(b, ipOff, ipLen, (b[off + VNET_FLAGS] & VNET_F_NEEDS_CSUM) !== 0, input, this.ctx.clock.now);
    if (tracing) this.traceNote(before, ipOff, ipLen, v, false);
    if (v !== 0) return this.drop(off, input, v);
    this.out[input].push(off, len);
  }
}

/** nat/local, or nat6/local with a NatEngine6 (kind NatLocalOut6). */
export class NatLocalOut extends Element {
  private readonly version: 4 | 6;

  get kind(): string {
    return this.version === 4 ? 'NatLocalOut' : 'NatLocalOut6';
  }

  constructor(
    name: string,
    ctx: DataPlaneContext,
    private readonly nat: NatEngine | NatEngine6,
  ) {
    super(name, ctx, ['in'], ['out']);
    this.version = nat.ipVersion;
  }

  push(_input: number, off: number, len: number): void {
    const related = this.ctx.arena.anno.related[slotOf(off)];
    const ipOff = off + VNET_HDR_LEN + ETH_HEADER_LEN;
    if (related >= 0 && this.ctx.u8[ipOff] >>> 4 === this.version) {
      this.nat.translateLocalError(this.ctx.u8, ipOff, len - ETH_HEADER_LEN, related);
      if (this.ctx.tracer.active) {
        this.ctx.tracer.note(this.name, `ICMP error about a translated packet: quote and destination put back, now ${describeIp(this.version, this.ctx.u8, ipOff, len - ETH_HEADER_LEN)}`);
      }
    }
    this.out[0].push(off, len);
  }
}

/* The IPv6 kinds by name (the same elements; give them a NatEngine6: Nat6ElementParams). */
export class NatPrerouting6 extends NatPrerouting {}
export class NatPostrouting6 extends NatPostrouting {}
export class NatLocalOut6 extends NatLocalOut {}
