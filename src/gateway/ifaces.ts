/*
 * The router's interfaces: one per bridge that has a gateway address, plus the uplink. A
 * plain table shared (read-mostly) by the gateway elements that need an interface's
 * address, MAC or MTU: the gateway interface itself, the router, local delivery, ICMP
 * errors, fragmentation and NAT. Interface ids are indices into `list`.
 */
import type { PortRecord } from '../core/element.js';
import { maskOf } from '../wire/ip4.js';

const TWO_POW_32 = 4294967296;

export type IfaceKind = 'bridge' | 'uplink';

export interface IfaceSpec {
  name: string;
  kind: IfaceKind;
  address: number;
  prefixLen: number;
  mac: number;
  mtu: number;
}

export class RouterIface {
  readonly net: number;
  readonly mask: number;
  readonly broadcast: number;
  readonly macHi: number;
  readonly macLo: number;
  readonly name: string;
  readonly kind: IfaceKind;
  readonly address: number;
  readonly prefixLen: number;
  readonly mac: number;
  /** Follows the device (the uplink's MTU is re-read every second). */
  mtu: number;

  constructor(
    readonly id: number,
    s: IfaceSpec,
    /** Where drops attributed to this interface are counted (gw-BRIDGE or uplink). */
    readonly record: PortRecord,
  ) {
    this.name = s.name;
    this.kind = s.kind;
    this.address = s.address >>> 0;
    this.prefixLen = s.prefixLen;
    this.mac = s.mac;
    this.mtu = s.mtu;
    this.mask = maskOf(s.prefixLen);
    this.net = (this.address & this.mask) >>> 0;
    this.broadcast = (this.net | ~this.mask) >>> 0;
    this.macHi = Math.floor(s.mac / TWO_POW_32);
    this.macLo = s.mac >>> 0;
  }

  /** Is `ip` on this interface's subnet? */
  onLink(ip: number): boolean {
    return ((ip & this.mask) >>> 0) === this.net;
  }
}

export class InterfaceTable {
  readonly list: RouterIface[] = [];

  add(s: IfaceSpec, record: PortRecord): RouterIface {
    const f = new RouterIface(this.list.length, s, record);
    this.list.push(f);
    return f;
  }

  byName(name: string): RouterIface | undefined {
    return this.list.find((f) => f.name === name);
  }

  /** Interface owning `ip` as its address, or -1. */
  local(ip: number): number {
    const ifs = this.list;
    for (let i = 0; i < ifs.length; i++) if (ifs[i].address === ip) return i;
    return -1;
  }
}
