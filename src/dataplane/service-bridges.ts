/*
 * Each served bridge's DHCP lease manager and DNS resolver, from the data-plane spec, for the
 * svc element (src/services/service-port.ts): the resolver knows the gateway as "gateway" and
 * every port with static addresses by its port name; its reverse zone is the bridge subnet.
 */
import { DhcpServer } from '../services/dhcp-server.js';
import { DnsResolver } from '../services/dns-resolver.js';
import type { DnsPeer, ServiceBridge } from '../services/service-port.js';
import type { InterfaceTable } from '../gateway/ifaces.js';
import { ip4ToString, parseCidr, parseIp4 } from '../wire/ip4.js';
import { ip6ToString, parseIp6, writeIp6 } from '../wire/ip6.js';
import { parseMac } from '../wire/mac.js';
import type { DataPlaneSpec } from './spec.js';

function must<T>(v: T | null | undefined, what: string): T {
  if (v === null || v === undefined) throw new Error(`data-plane spec: ${what}`);
  return v;
}

/** Addresses as text (no prefix) -> what DnsResolver.setHost takes. */
export function hostAddresses(addresses: string[]): { v4: number[]; v6: Uint8Array[] } {
  const v4: number[] = [];
  const v6: Uint8Array[] = [];
  for (const a of addresses) {
    if (!a.includes(':')) {
      const x = parseIp4(a);
      if (x !== null) v4.push(x);
      continue;
    }
    const x = parseIp6(a);
    if (x === null) continue;
    const bytes = new Uint8Array(16);
    writeIp6(bytes, 0, x);
    v6.push(bytes);
  }
  return { v4, v6 };
}

export function serviceBridges(spec: DataPlaneSpec, ifaces: InterfaceTable): ServiceBridge[] {
  const out: ServiceBridge[] = [];
  for (const b of spec.bridges) {
    const g = b.gateway;
    if (g?.address === undefined || (g.dhcp === undefined && g.dns === undefined)) continue;
    const f = must(ifaces.byName(b.name), `no router interface ${b.name}`);
    const gw = must(parseCidr(g.address), `bridge ${b.name}: bad gateway address`);
    const d = g.dhcp;
    const dhcp =
      d === undefined
        ? null
        : new DhcpServer({
            serverIp: f.address,
            prefixLen: gw.prefixLen,
            poolFirst: must(parseIp4(d.poolStart), 'dhcp pool start'),
            poolLast: must(parseIp4(d.poolEnd), 'dhcp pool end'),
            leaseTimeS: d.leaseTime,
            minLeaseTimeS: Math.min(60, d.leaseTime),
            router: d.router === null ? null : must(parseIp4(d.router), 'dhcp router'),
            dnsServers: d.dns.map((a) => must(parseIp4(a), 'dhcp dns')),
            domainName: d.domain,
            mtu: d.mtu,
            maxClients: d.maxClients,
            staticLeases: d.static.map((s) => ({ mac: must(parseMac(s.mac), 'dhcp static mac'), ip: must(parseIp4(s.address), 'dhcp static address'), hostName: s.hostName })),
          });
    const n = g.dns;
    const dns =
      n === undefined
        ? null
        : new DnsResolver<DnsPeer>({
            domain: n.domain,
            cacheMaxEntries: n.cacheSize,
            queryTimeoutMs: n.timeoutMs,
            localNetworks: [{ addr: gw.addr, prefixLen: gw.prefixLen }],
          });
    if (dns !== null) {
      const gwAddrs = hostAddresses([ip4ToString(f.address), ...(f.address6 === null ? [] : [ip6ToString(f.address6)])]);
      dns.setHost('gateway', gwAddrs.v4, gwAddrs.v6);
      for (const h of n!.hosts) {
        const a = hostAddresses(h.addresses);
        dns.setHost(h.name, a.v4, a.v6);
      }
    }
    out.push({ name: b.name, ifId: f.id, address: f.address, address6: f.address6, mac: f.mac, mtu: f.mtu, record: f.record, dhcp, dns });
  }
  return out;
}
