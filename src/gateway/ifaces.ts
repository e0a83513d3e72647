/*
 * The router's interfaces: one per bridge that has a gateway address, plus the uplink. A
 * plain table shared (read-mostly) by the gateway elements that need an interface's
 * address, MAC or MTU: the gateway interface itself, the routers, local delivery, ICMP
 * errors, fragmentation and NAT. Interface ids are indices into `list`. An interface has an
 * IPv4 address, an IPv6 address (with its EUI-64 link-local one), or both.
 */
import type { PortRecord } from '../core/element.js';
import { maskOf } from '../wire/ip4.js';
import { inPrefixIp6, ip6Equals, isLinkLocalIp6, linkLocalFromMac, maskIp6 } from '../wire/ip6.js';

const TWO_POW_32 = 4294967296;

export type IfaceKind = 'bridge' | 'uplink';

/** What a bridge interface advertises in router advertisements. */
export interface RaSpec {
  /** Seconds hosts may use us as a default router (0: not a default router). */
  routerLifetime: number;
  /** Prefix lifetimes, seconds. */
  validLifetime: number;
  preferredLifetime: number;
  /** Unsolicited advertisements, seconds between them. */
  intervalSeconds: number;
  /** Recursive DNS servers (RDNSS), if any. */
  dns: Uint32Array[];
}

export interface IfaceSpec {
  name: string;
  kind: IfaceKind;
  /** IPv4 address and prefix (address 0: no IPv4 on this interface). */
  address: number;
  prefixLen: number;
  mac: number;
  mtu: number;
  /** IPv6 address and prefix (null: no IPv6). */
  address6?: Uint32Array | null;
  prefixLen6?: number;
  /** Router advertisements (bridges with IPv6). */
  ra?: RaSpec;
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
  readonly hasV4: boolean;
  readonly address6: Uint32Array | null;
  readonly prefixLen6: number;
  readonly net6: Uint32Array;
  /** fe80::/64 EUI-64 address from the interface's MAC. */
  readonly linkLocal: Uint32Array;
  readonly ra: RaSpec | null;

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
    this.hasV4 = this.address !== 0;
    this.address6 = s.address6 ?? null;
    this.prefixLen6 = s.prefixLen6 ?? 0;
    this.net6 = this.address6 === null ? new Uint32Array(4) : maskIp6(this.address6, this.prefixLen6);
    this.linkLocal = linkLocalFromMac(s.mac);
    this.ra = s.ra ?? null;
  }

  /** Is `ip` on this interface's subnet? */
  onLink(ip: number): boolean {
    return this.hasV4 && ((ip & this.mask) >>> 0) === this.net;
  }

  /** Is the IPv6 address on this interface's prefix (or link-local)? */
  onLink6(a: ArrayLike<number>): boolean {
    return isLinkLocalIp6(a) || (this.address6 !== null && inPrefixIp6(a, this.net6, this.prefixLen6));
  }

  /** Is the IPv6 address one of ours on this interface (global or link-local)? */
  isOwn6(a: ArrayLike<number>): boolean {
    return ip6Equals(a, this.linkLocal) || (this.address6 !== null && ip6Equals(a, this.address6));
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
    if (ip === 0) return -1;
    const ifs = this.list;
    for (let i = 0; i < ifs.length; i++) if (ifs[i].address === ip) return i;
    return -1;
  }

  /** Interface owning the IPv6 address (global, or link-local of that interface), or -1. */
  local6(a: ArrayLike<number>): number {
    const ifs = this.list;
    for (let i = 0; i < ifs.length; i++) if (ifs[i].isOwn6(a)) return i;
    return -1;
  }
}
