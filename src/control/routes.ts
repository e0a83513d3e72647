/*
 * The control API's endpoints. Each maps to one data-plane call; `tapbridge ctl` is a
 * thin client of these. GET /v1 lists them.
 */
import type { DataPlaneWorker } from './dataplane-client.js';
import type { ControlServer, Route } from './server.js';
import { httpCaller } from './dataplane-client.js';
import { experimentRoutes } from './experiment-routes.js';
import type { Config } from '../config/schema.js';
import { publishSchema } from '../config/schema.js';
import { zodProblems } from '../config/experiment.js';
import { HttpError } from './server.js';

export function apiRoutes(dp: DataPlaneWorker, server: ControlServer, cfg: Pick<Config, 'experiment'> = {}): Route[] {
  const call = httpCaller(dp);
  return [
    { method: 'GET', path: '/v1', summary: 'this list of endpoints', handler: () => server.describe() },
    { method: 'GET', path: '/v1/ports', summary: 'ports with counters', handler: () => call('ports') },
    { method: 'GET', path: '/v1/bridges', summary: 'bridges with MAC-table sizes and counters', handler: () => call('bridges') },
    {
      method: 'GET',
      path: '/v1/fdb',
      summary: 'MAC table (?bridge=NAME): MAC, port, age, static/learned',
      handler: (c) => call('fdb', c.query.has('bridge') ? { bridge: c.query.get('bridge') } : {}),
    },
    {
      method: 'POST',
      path: '/v1/ports/:port/link',
      summary: 'set a port up or down: {"up": false} (carrier off on TAPs)',
      handler: (c) => call('link', { port: c.params.port, up: c.body.up }),
    },
    {
      method: 'GET',
      path: '/v1/conntrack',
      summary: 'tracked flows (?limit=N&from=ID, at most 10000 per call; `next` is where the next page starts), table size and counters',
      handler: (c) => call('conntrack', { ...(c.query.has('limit') ? { limit: c.query.get('limit') } : {}), ...(c.query.has('from') ? { from: c.query.get('from') } : {}) }),
    },
    { method: 'GET', path: '/v1/forwards', summary: 'published ports', handler: () => call('forwards') },
    {
      method: 'POST',
      path: '/v1/forwards',
      summary: 'publish a port: {"proto":"tcp","port":8080,"to":"10.100.0.3","toPort":80}',
      handler: (c) => {
        const r = publishSchema.safeParse(c.body);
        if (!r.success) throw new HttpError(400, zodProblems(r.error));
        return call('forwards.add', r.data);
      },
    },
    {
      method: 'DELETE',
      path: '/v1/forwards/:proto/:port',
      summary: 'unpublish a port',
      handler: (c) => call('forwards.remove', { proto: c.params.proto, port: c.params.port }),
    },
    { method: 'GET', path: '/v1/arp', summary: 'neighbour cache of every router interface', handler: () => call('arp') },
    {
      method: 'GET',
      path: '/v1/neigh',
      summary: 'IPv6 neighbour cache (NDP) of every router interface: iface, address, MAC, state, age, router flag, queued, probes',
      handler: () => call('neigh'),
    },
    { method: 'GET', path: '/v1/leases', summary: 'DHCP leases of every bridge with a DHCP server: bridge, MAC, address, state, host name, seconds left', handler: () => call('leases') },
    {
      method: 'POST',
      path: '/v1/leases',
      summary: 'take a lease without a DHCP client (IPAM for the CNI plugin): {"bridge":"br0","mac":"02:..","hostName"?:"web"} -> address, prefixLen, gateway, dns, domain, leaseTime',
      handler: (c) => {
        const b = (c.body ?? {}) as Record<string, unknown>;
        if (typeof b.bridge !== 'string' || typeof b.mac !== 'string' || (b.hostName !== undefined && typeof b.hostName !== 'string')) throw new HttpError(400, 'expected {"bridge","mac","hostName"?}');
        return call('leases.acquire', { bridge: b.bridge, mac: b.mac, ...(b.hostName !== undefined ? { hostName: b.hostName } : {}) });
      },
    },
    {
      method: 'DELETE',
      path: '/v1/leases/:bridge/:mac',
      summary: 'give a lease back (RELEASE)',
      handler: (c) => call('leases.release', { bridge: c.params.bridge, mac: c.params.mac }),
    },
    { method: 'GET', path: '/v1/routes', summary: 'route table', handler: () => call('routes') },
    { method: 'GET', path: '/v1/router', summary: 'router counters', handler: () => call('router') },
    {
      method: 'POST',
      path: '/v1/trace',
      summary: 'decision trace of a described packet, IPv4 or IPv6 by the address family: {"port","dst","proto","src","sport","dport","ttl","size","srcMac","dstMac"}',
      handler: (c) => call('trace', c.body),
    },
    { method: 'GET', path: '/v1/stats', summary: 'all counters', handler: () => call('stats') },
    { method: 'GET', path: '/v1/graph', summary: 'the element graph: elements (kind, ports, config, counters) and links with packet counters', handler: () => call('graph') },
    { method: 'GET', path: '/v1/drops', summary: 'the drop-reason registry: name, counted by, meaning', handler: () => call('drops') },
    ...experimentRoutes(dp, cfg),
  ];
}
