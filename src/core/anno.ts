/*
 * Frame annotations: small per-slot metadata that elements hand each other along with the
 * frame (Click's packet annotations), in typed arrays indexed by slot number, so nothing is
 * allocated per packet and a frame that waits in a queue keeps its metadata.
 *
 *   port     index of the port the frame entered through (its PortRecord.index; -1 for frames
 *            tapbridge built). Fixed for the slots of a device's RX ring, copied with the
 *            frame, -1 in a freshly allocated pool slot. Pool accounts per tenant use it.
 *   inIf     router interface the packet entered through (-1: generated locally)
 *   outIf    router interface chosen by the route lookup
 *   nextHop  IPv4 next hop chosen by the route lookup
 *   nextHop6 IPv6 next hop (four words per slot)
 *   l4       IPv6: offset of the upper-layer header from the IPv6 header (after the
 *            extension chain, walked once by gw6/IF), and l4proto its protocol
 *   flow     conntrack state of the packet between nat/pre and nat/post (-1: none)
 *   related  for an ICMP error tapbridge generated: the flow state of the packet it quotes
 *   param    a number for the next element (e.g. the MTU for a "fragmentation needed" error)
 *
 * Writers set what they own; an element that starts a routed packet's life (the gateway
 * interface) resets the rest.
 */
import { SLOT_SIZE } from './frame.js';

export function slotOf(off: number): number {
  return (off / SLOT_SIZE) | 0;
}

export class Annotations {
  readonly port: Int16Array;
  readonly inIf: Int16Array;
  readonly outIf: Int16Array;
  readonly nextHop: Uint32Array;
  readonly nextHop6: Uint32Array;
  readonly l4: Uint16Array;
  readonly l4proto: Uint8Array;
  readonly flow: Int32Array;
  readonly related: Int32Array;
  readonly param: Int32Array;

  constructor(slots: number) {
    this.port = new Int16Array(slots).fill(-1);
    this.inIf = new Int16Array(slots);
    this.outIf = new Int16Array(slots);
    this.nextHop = new Uint32Array(slots);
    this.nextHop6 = new Uint32Array(slots * 4);
    this.l4 = new Uint16Array(slots);
    this.l4proto = new Uint8Array(slots);
    this.flow = new Int32Array(slots);
    this.related = new Int32Array(slots);
    this.param = new Int32Array(slots);
  }

  /** Start of a routed packet's life: entered through `inIf`, nothing else known (the ingress port stays). */
  begin(off: number, inIf: number): number {
    const s = slotOf(off);
    this.inIf[s] = inIf;
    this.outIf[s] = -1;
    this.nextHop[s] = 0;
    this.flow[s] = -1;
    this.related[s] = -1;
    this.param[s] = 0;
    return s;
  }

  copy(fromOff: number, toOff: number): void {
    const a = slotOf(fromOff);
    const b = slotOf(toOff);
    this.port[b] = this.port[a];
    this.inIf[b] = this.inIf[a];
    this.outIf[b] = this.outIf[a];
    this.nextHop[b] = this.nextHop[a];
    this.nextHop6.copyWithin(b * 4, a * 4, a * 4 + 4);
    this.l4[b] = this.l4[a];
    this.l4proto[b] = this.l4proto[a];
    this.flow[b] = this.flow[a];
    this.related[b] = this.related[a];
    this.param[b] = this.param[a];
  }
}
