/*
 * The route table: longest-prefix match over connected, static and default routes, kept as
 * parallel typed arrays sorted by prefix length (longest first) for the per-packet lookup.
 * Shared by the router, ICMP errors and local delivery (to answer along the route back).
 */
import { ip4ToString, maskOf } from '../wire/ip4.js';
import type { InterfaceTable } from './ifaces.js';

export type RouteOrigin = 'connected' | 'static' | 'default';

export interface Route {
  net: number;
  prefixLen: number;
  iface: number;
  via: number; // 0 = directly connected
  origin: RouteOrigin;
}

export interface RouteInfo {
  destination: string;
  via: string;
  iface: string;
  origin: string;
}

export class RouteTable {
  private routes: Route[] = [];
  private net = new Uint32Array(0);
  private mask = new Uint32Array(0);
  private iface = new Int32Array(0);
  private via = new Uint32Array(0);
  /** Next hop of the last successful lookup. */
  nextHop = 0;

  constructor(private readonly ifaces: InterfaceTable) {}

  add(r: Route): void {
    this.routes.push(r);
    this.routes.sort((a, b) => b.prefixLen - a.prefixLen);
    const n = this.routes.length;
    this.net = new Uint32Array(n);
    this.mask = new Uint32Array(n);
    this.iface = new Int32Array(n);
    this.via = new Uint32Array(n);
    this.routes.forEach((x, i) => {
      this.net[i] = x.net;
      this.mask[i] = maskOf(x.prefixLen);
      this.iface[i] = x.iface;
      this.via[i] = x.via;
    });
  }

  /** Egress interface for dst (and `nextHop`), or -1. */
  lookup(dst: number): number {
    const n = this.net.length;
    for (let i = 0; i < n; i++) {
      if (((dst & this.mask[i]) >>> 0) === this.net[i]) {
        const via = this.via[i];
        this.nextHop = via === 0 ? dst : via;
        return this.iface[i];
      }
    }
    return -1;
  }

  describe(dst: number, out: number): string {
    const r = this.routes.find((x) => x.iface === out && ((dst & maskOf(x.prefixLen)) >>> 0) === x.net)!;
    return `${ip4ToString(dst)} matches ${ip4ToString(r.net)}/${r.prefixLen} (${r.origin})${r.via !== 0 ? ` via ${ip4ToString(r.via)}` : ''} dev ${this.ifaces.list[out].name}`;
  }

  table(): RouteInfo[] {
    return this.routes.map((r) => ({
      destination: `${ip4ToString(r.net)}/${r.prefixLen}`,
      via: r.via === 0 ? '-' : ip4ToString(r.via),
      iface: this.ifaces.list[r.iface].name,
      origin: r.origin,
    }));
  }
}
