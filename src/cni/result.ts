/*
 * CNI results, pure: an IPAM plugin's answer read in any supported version (0.4.0 ips
 * carry "version"), the ADD result built for the network's cniVersion (interfaces with the
 * sandbox path and MAC, ips with gateway and interface index, routes, dns), and what the
 * port request to tapbridge needs from it (addresses, default route, other routes).
 */
import type { CniVersion } from './config.js';

export interface IpConfig {
  address: string;
  gateway?: string;
  interface?: number;
}

export interface Route {
  dst: string;
  gw?: string;
}

export interface Dns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface IpamResult {
  ips: IpConfig[];
  routes: Route[];
  dns: Dns;
}

const isV6 = (a: string) => a.includes(':');

/** Read an IPAM plugin's result (0.4.0 or 1.x). */
export function readIpamResult(o: unknown): IpamResult {
  const r = (o ?? {}) as Record<string, unknown>;
  const ips = Array.isArray(r.ips) ? (r.ips as Record<string, unknown>[]) : [];
  const routes = Array.isArray(r.routes) ? (r.routes as Record<string, unknown>[]) : [];
  return {
    ips: ips.filter((i) => typeof i.address === 'string').map((i) => ({ address: i.address as string, ...(typeof i.gateway === 'string' ? { gateway: i.gateway } : {}) })),
    routes: routes.filter((x) => typeof x.dst === 'string').map((x) => ({ dst: x.dst as string, ...(typeof x.gw === 'string' ? { gw: x.gw } : {}) })),
    dns: r.dns !== null && typeof r.dns === 'object' ? (r.dns as Dns) : {},
  };
}

/** Routes of the attachment: the IPAM's, plus a default route per family via its gateway with isDefaultGateway. */
export function attachmentRoutes(ipam: IpamResult, isDefaultGateway: boolean): Route[] {
  const routes = [...ipam.routes];
  if (isDefaultGateway) {
    for (const fam of [false, true]) {
      const gw = ipam.ips.find((i) => isV6(i.address) === fam && i.gateway !== undefined)?.gateway;
      const dst = fam ? '::/0' : '0.0.0.0/0';
      if (gw !== undefined && !routes.some((r) => r.dst === dst)) routes.push({ dst, gw });
    }
  }
  return routes;
}

/** The route fields of a tapbridge port request: default routes as next hops, the others as {to, via}. */
export function portRoutes(ipam: IpamResult, routes: Route[]): { defaultRoute: string[]; routes: { to: string; via?: string }[] } {
  const defaultRoute: string[] = [];
  const rest: { to: string; via?: string }[] = [];
  for (const r of routes) {
    const fam = isV6(r.dst);
    const gw = r.gw ?? ipam.ips.find((i) => isV6(i.address) === fam && i.gateway !== undefined)?.gateway;
    if (r.dst === '0.0.0.0/0' || r.dst === '::/0') {
      if (gw !== undefined && !defaultRoute.some((d) => isV6(d) === fam)) defaultRoute.push(gw);
    } else rest.push(gw !== undefined ? { to: r.dst, via: gw } : { to: r.dst });
  }
  return { defaultRoute, routes: rest };
}

/** The ADD result for the network's version. */
export function buildResult(
  version: CniVersion,
  iface: { name: string; mac: string; sandbox: string; mtu?: number },
  ipam: IpamResult,
  routes: Route[],
): Record<string, unknown> {
  const ips = ipam.ips.map((i) => ({
    ...(version === '0.4.0' ? { version: isV6(i.address) ? '6' : '4' } : {}),
    address: i.address,
    ...(i.gateway !== undefined ? { gateway: i.gateway } : {}),
    interface: 0,
  }));
  const ifaceOut: Record<string, unknown> = { name: iface.name, mac: iface.mac, sandbox: iface.sandbox };
  if (version === '1.1.0' && iface.mtu !== undefined) ifaceOut.mtu = iface.mtu;
  return { cniVersion: version, interfaces: [ifaceOut], ips, routes, dns: ipam.dns };
}

/** Problems with a result against the spec's fields (tests validate results with it; CHECK reads prevResult through it). */
export function resultProblems(r: Record<string, unknown>): string[] {
  const p: string[] = [];
  if (typeof r.cniVersion !== 'string') p.push('cniVersion missing');
  const ifs = r.interfaces;
  if (!Array.isArray(ifs)) p.push('interfaces: not a list');
  else
    ifs.forEach((f: Record<string, unknown>, i) => {
      if (typeof f.name !== 'string') p.push(`interfaces[${i}].name missing`);
      if (f.mac !== undefined && !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(String(f.mac))) p.push(`interfaces[${i}].mac: not a MAC`);
      if (f.sandbox !== undefined && typeof f.sandbox !== 'string') p.push(`interfaces[${i}].sandbox: not a string`);
    });
  const ips = r.ips;
  if (ips !== undefined && !Array.isArray(ips)) p.push('ips: not a list');
  if (Array.isArray(ips))
    ips.forEach((x: Record<string, unknown>, i) => {
      if (typeof x.address !== 'string' || !/\/\d+$/.test(x.address)) p.push(`ips[${i}].address: expected CIDR`);
      if (x.interface !== undefined && (typeof x.interface !== 'number' || !Array.isArray(ifs) || x.interface >= ifs.length)) p.push(`ips[${i}].interface: not an index into interfaces`);
      if (r.cniVersion === '0.4.0' && x.version !== '4' && x.version !== '6') p.push(`ips[${i}].version: required in 0.4.0`);
      if (r.cniVersion !== '0.4.0' && x.version !== undefined) p.push(`ips[${i}].version: not a field after 0.4.0`);
    });
  const routes = r.routes;
  if (routes !== undefined && (!Array.isArray(routes) || routes.some((x: Record<string, unknown>) => typeof x.dst !== 'string'))) p.push('routes: expected [{dst, gw?}]');
  if (r.dns !== undefined && (r.dns === null || typeof r.dns !== 'object')) p.push('dns: not an object');
  return p;
}
