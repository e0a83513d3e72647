/*
 * The IPv6 route table: longest-prefix match over connected prefixes, static routes and the
 * default route, the counterpart of routes.ts. Prefixes and masks are kept as four words per
 * route in typed arrays sorted by prefix length (longest first); a lookup compares masked
 * words in place and leaves the next hop in `nextHop` (the destination itself for a
 * connected route), so nothing is allocated per packet. Link-local destinations are not
 * routed here: they belong to the interface a packet came in on (the router knows it).
 */
import { IP6_WORDS, ip6ToString, maskIp6 } from '../wire/ip6.js';
import type { InterfaceTable } from './ifaces.js';
import type { RouteInfo, RouteOrigin } from './routes.js';

export interface Route6 {
  net: Uint32Array;
  prefixLen: number;
  iface: number;
  /** Next hop; null: directly connected. */
  via: Uint32Array | null;
  origin: RouteOrigin;
}

const ALL_ONES = 0xffffffff;

export class RouteTable6 {
  private routes: Route6[] = [];
  private net = new Uint32Array(0);
  private mask = new Uint32Array(0);
  private iface = new Int32Array(0);
  private via = new Uint32Array(0);
  private direct = new Uint8Array(0);
  /** Next hop of the last successful lookup. */
  readonly nextHop = new Uint32Array(IP6_WORDS);

  constructor(private readonly ifaces: InterfaceTable) {}

  get size(): number {
    return this.routes.length;
  }

  add(r: Route6): void {
    this.routes.push({ ...r, net: maskIp6(r.net, r.prefixLen) });
    this.routes.sort((a, b) => b.prefixLen - a.prefixLen);
    const n = this.routes.length;
    this.net = new Uint32Array(n * IP6_WORDS);
    this.mask = new Uint32Array(n * IP6_WORDS);
    this.iface = new Int32Array(n);
    this.via = new Uint32Array(n * IP6_WORDS);
    this.direct = new Uint8Array(n);
    this.routes.forEach((x, i) => {
      this.net.set(x.net, i * IP6_WORDS);
      this.mask.set(maskIp6([ALL_ONES, ALL_ONES, ALL_ONES, ALL_ONES], x.prefixLen), i * IP6_WORDS);
      this.iface[i] = x.iface;
      if (x.via !== null) this.via.set(x.via, i * IP6_WORDS);
      this.direct[i] = x.via === null ? 1 : 0;
    });
  }

  /** Index of the route for the address at a[at..at+4), or -1. */
  private match(a: ArrayLike<number>, at: number): number {
    const n = this.iface.length;
    const net = this.net;
    const mask = this.mask;
    const a0 = a[at];
    const a1 = a[at + 1];
    const a2 = a[at + 2];
    const a3 = a[at + 3];
    for (let i = 0, k = 0; i < n; i++, k += 4) {
      if (((a0 & mask[k]) >>> 0) === net[k] && ((a1 & mask[k + 1]) >>> 0) === net[k + 1] && ((a2 & mask[k + 2]) >>> 0) === net[k + 2] && ((a3 & mask[k + 3]) >>> 0) === net[k + 3]) return i;
    }
    return -1;
  }

  /** Egress interface for the destination at a[at..at+4) (and `nextHop`), or -1. */
  lookup(a: ArrayLike<number>, at = 0): number {
    const i = this.match(a, at);
    if (i < 0) return -1;
    const h = this.nextHop;
    if (this.direct[i] === 1) {
      h[0] = a[at];
      h[1] = a[at + 1];
      h[2] = a[at + 2];
      h[3] = a[at + 3];
    } else {
      const k = i * IP6_WORDS;
      h[0] = this.via[k];
      h[1] = this.via[k + 1];
      h[2] = this.via[k + 2];
      h[3] = this.via[k + 3];
    }
    return this.iface[i];
  }

  /** Egress interface only (no next hop), e.g. for the reverse-path check. */
  egress(a: ArrayLike<number>, at = 0): number {
    const i = this.match(a, at);
    return i < 0 ? -1 : this.iface[i];
  }

  describe(a: ArrayLike<number>): string {
    const i = this.match(a, 0);
    if (i < 0) return `no route to ${ip6ToString(a)}`;
    const r = this.routes[i];
    return `${ip6ToString(a)} matches ${ip6ToString(r.net)}/${r.prefixLen} (${r.origin})${r.via !== null ? ` via ${ip6ToString(r.via)}` : ''} dev ${this.ifaces.list[r.iface].name}`;
  }

  table(): RouteInfo[] {
    return this.routes.map((r) => ({
      destination: `${ip6ToString(r.net)}/${r.prefixLen}`,
      via: r.via === null ? '-' : ip6ToString(r.via),
      iface: this.ifaces.list[r.iface].name,
      origin: r.origin,
    }));
  }
}
