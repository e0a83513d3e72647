/*
 * From the data-plane spec to the element graph (as data: a GraphSpec of elements and
 * "a[out] -> [in]b" links, see src/core/graph.ts). For the default lab:
 *
 *   dev/red[rx] -> [red]switch/br0[red] -> [tx]dev/red          (each device port, both ways)
 *   switch/br0[gw-br0] <-> [wire]gw/br0[wire]                   (the bridge's gateway port)
 *   dev/uplink[rx] -> [wire]gw/uplink[wire] -> [tx]dev/uplink
 *   gw/IF[ip] -> [IF]nat/pre[IF] -> [IF]router[IF] -> [IF]nat/post[IF] -> frag/IF -> [ip]gw/IF
 *   router[local] -> local[reply] -> [local]router
 *   (with DHCP or DNS on a bridge: router[local] -> [local]svc[pass] -> local,
 *    svc[reply] -> [local]router, gw/B[dhcp] -> [bcast]svc, svc[wire-B] -> [gw-B]switch/B;
 *    with DNS on an IPv6 gateway also router6[local] -> [local6]svc[pass6] -> local6,
 *    svc[reply6] -> [local]router6)
 *   router[ttl-expired|no-route|too-big], local[port-|proto-unreachable], gw/IF[unreachable]
 *       -> icmp/KIND -> nat/local -> [local]router
 *
 * IPv6 runs beside it on the same interfaces (an interface with an IPv6 address):
 *
 *   gw/IF[ip6] -> [wire]gw6/IF[wire] -> (where gw/IF[wire] goes)
 *   gw6/IF[ip] -> [IF]nat6/pre[IF] -> [IF]router6[IF] -> [IF]nat6/post[IF] -> [ip]gw6/IF
 *                                                                 (no fragmentation in IPv6)
 *   router6[local] -> local6[reply] -> [local]router6
 *   router6[hop-limit|no-route|too-big], local6[port-unreachable|unknown-header|bad-header],
 *       gw6/IF[unreachable] -> icmp6/KIND -> nat6/local -> [local]router6
 *
 * (nat6/* when NAT is on and the uplink has an IPv6 address: NAT66.)
 *
 * With a socket uplink (src/uplink/) there is no uplink device, gateway interface, fragmenter
 * or NAT: the router's `uplink` interface leads straight to host sockets and back:
 *
 *   router[uplink] -> [in]sockup[out] -> [uplink]router
 *
 * Without NAT the nat/* elements are left out; a bridge without a gateway is only its switch
 * and devices. Captures and faults are not in the plan: they are wrappers spliced into these
 * links at runtime.
 */
import type { ElementSpec, GraphSpec } from '../core/graph.js';
import { gatewayPortName, UPLINK_PORT, type DataPlaneSpec } from './spec.js';

/** The ICMP errors the gateway sends, by element name. */
export const ICMP_ERRORS = {
  'icmp/ttl-exceeded': { type: 11, code: 0 },
  'icmp/net-unreachable': { type: 3, code: 0 },
  'icmp/host-unreachable': { type: 3, code: 1 },
  'icmp/proto-unreachable': { type: 3, code: 2 },
  'icmp/port-unreachable': { type: 3, code: 3 },
  'icmp/frag-needed': { type: 3, code: 4 },
} as const;

/** The ICMPv6 errors the gateway sends, by element name. */
export const ICMP6_ERRORS = {
  'icmp6/hop-limit': { type: 3, code: 0 },
  'icmp6/no-route': { type: 1, code: 0 },
  'icmp6/addr-unreachable': { type: 1, code: 3 },
  'icmp6/port-unreachable': { type: 1, code: 4 },
  'icmp6/too-big': { type: 2, code: 0 },
  'icmp6/unknown-header': { type: 4, code: 1 },
  'icmp6/bad-header': { type: 4, code: 0 },
} as const;

export const devName = (port: string) => `dev/${port}`;
export const switchName = (bridge: string) => `switch/${bridge}`;
export const gatewayName = (iface: string) => `gw/${iface}`;
export const fragName = (iface: string) => `frag/${iface}`;
export const gateway6Name = (iface: string) => `gw6/${iface}`;

/** The router interfaces in id order: one per bridge with a gateway, then the uplink. */
export function routerInterfaces(spec: DataPlaneSpec): string[] {
  const names = spec.bridges.filter((b) => b.gateway !== undefined).map((b) => b.name);
  if (spec.uplink !== undefined || spec.socketUplink !== undefined) names.push(UPLINK_PORT);
  return names;
}

export const SOCKET_UPLINK_NAME = 'sockup';

/** The router interfaces with an IPv6 address. */
export function routerInterfaces6(spec: DataPlaneSpec): string[] {
  const names = spec.bridges.filter((b) => b.gateway?.address6 !== undefined).map((b) => b.name);
  if (spec.uplink?.address6 !== undefined) names.push(UPLINK_PORT);
  return names;
}

/** Where an interface's frames go out: its bridge's gateway port, or the uplink device. */
function wireOut(iface: string): string {
  return iface === UPLINK_PORT ? `[tx]${devName(UPLINK_PORT)}` : `[${gatewayPortName(iface)}]${switchName(iface)}`;
}

export function planGraph(spec: DataPlaneSpec): GraphSpec {
  const elements: ElementSpec[] = [];
  const links: string[] = [];
  for (const p of spec.ports) elements.push({ name: devName(p.name), kind: 'Device', params: { port: p.name } });
  for (const b of spec.bridges) {
    const sw = switchName(b.name);
    elements.push({ name: sw, kind: 'Switch', params: { bridge: b.name } });
    for (const p of spec.ports.filter((x) => x.bridge === b.name)) {
      links.push(`${devName(p.name)}[rx] -> [${p.name}]${sw}`, `${sw}[${p.name}] -> [tx]${devName(p.name)}`);
    }
    if (b.gateway !== undefined) {
      const gwPort = gatewayPortName(b.name);
      links.push(`${sw}[${gwPort}] -> [wire]${gatewayName(b.name)}`, `${gatewayName(b.name)}[wire] -> [${gwPort}]${sw}`);
    }
  }
  if (spec.uplink !== undefined) {
    elements.push({ name: devName(UPLINK_PORT), kind: 'Device', params: { port: UPLINK_PORT } });
    links.push(`${devName(UPLINK_PORT)}[rx] -> [wire]${gatewayName(UPLINK_PORT)}`, `${gatewayName(UPLINK_PORT)}[wire] -> [tx]${devName(UPLINK_PORT)}`);
  }
  const ifaces = routerInterfaces(spec);
  if (ifaces.length === 0) return { elements, links };

  const nat = spec.nat !== undefined && spec.uplink !== undefined;
  const toRouterLocal = nat ? 'nat/local' : '[local]router';
  elements.push({ name: 'router', kind: 'Router' }, { name: 'local', kind: 'LocalDelivery' });
  if (nat) elements.push({ name: 'nat/pre', kind: 'NatPrerouting' }, { name: 'nat/post', kind: 'NatPostrouting' }, { name: 'nat/local', kind: 'NatLocalOut' });
  for (const [name, e] of Object.entries(ICMP_ERRORS)) {
    elements.push({ name, kind: 'IcmpError', params: { ...e } });
    links.push(`${name} -> ${toRouterLocal}`);
  }
  if (nat) links.push('nat/local -> [local]router');
  for (const f of ifaces) {
    if (f === UPLINK_PORT && spec.socketUplink !== undefined) {
      elements.push({ name: SOCKET_UPLINK_NAME, kind: 'SocketUplink' });
      links.push(`router[${f}] -> [in]${SOCKET_UPLINK_NAME}`, `${SOCKET_UPLINK_NAME}[out] -> [${f}]router`);
      continue;
    }
    elements.push({ name: gatewayName(f), kind: 'GatewayInterface', params: { iface: f } }, { name: fragName(f), kind: 'Fragmenter', params: { iface: f } });
    if (nat) links.push(`${gatewayName(f)}[ip] -> [${f}]nat/pre`, `nat/pre[${f}] -> [${f}]router`, `router[${f}] -> [${f}]nat/post`, `nat/post[${f}] -> ${fragName(f)}`);
    else links.push(`${gatewayName(f)}[ip] -> [${f}]router`, `router[${f}] -> ${fragName(f)}`);
    links.push(`${fragName(f)} -> [ip]${gatewayName(f)}`, `${gatewayName(f)}[unreachable] -> icmp/host-unreachable`);
  }
  const served6 = planIpv6(spec, elements, links);
  const served = spec.bridges.filter((b) => b.gateway?.address !== undefined && (b.gateway.dhcp !== undefined || b.gateway.dns !== undefined));
  if (served.length > 0) {
    // DHCP and DNS at the gateway (src/services/service-port.ts): before local delivery.
    elements.push({ name: 'svc', kind: 'ServicePort' });
    links.push('router[local] -> [local]svc', 'svc[pass] -> local', 'svc[reply] -> [local]router');
    for (const b of served) {
      links.push(`svc[wire-${b.name}] -> [${gatewayPortName(b.name)}]${switchName(b.name)}`);
      if (b.gateway!.dhcp !== undefined) links.push(`${gatewayName(b.name)}[dhcp] -> [bcast]svc`);
    }
    if (served6 && served.some((b) => b.gateway!.dns !== undefined && b.gateway!.address6 !== undefined))
      links.push('router6[local] -> [local6]svc', 'svc[pass6] -> local6', 'svc[reply6] -> [local]router6');
    else if (served6) links.push('router6[local] -> local6');
  } else {
    links.push('router[local] -> local');
    if (served6) links.push('router6[local] -> local6');
  }
  links.push(
    'local[reply] -> [local]router',
    'local[port-unreachable] -> icmp/port-unreachable',
    'local[proto-unreachable] -> icmp/proto-unreachable',
    'router[ttl-expired] -> icmp/ttl-exceeded',
    'router[no-route] -> icmp/net-unreachable',
    'router[too-big] -> icmp/frag-needed',
  );
  return { elements, links };
}

/** The IPv6 half of the router (none when no interface has an IPv6 address: false); router6[local] is linked by the caller. */
function planIpv6(spec: DataPlaneSpec, elements: ElementSpec[], links: string[]): boolean {
  const ifaces6 = routerInterfaces6(spec);
  if (ifaces6.length === 0) return false;
  const nat6 = spec.nat !== undefined && spec.uplink?.address6 !== undefined;
  elements.push({ name: 'router6', kind: 'Router6' }, { name: 'local6', kind: 'LocalDelivery6' });
  if (nat6) {
    elements.push({ name: 'nat6/pre', kind: 'NatPrerouting6' }, { name: 'nat6/post', kind: 'NatPostrouting6' }, { name: 'nat6/local', kind: 'NatLocalOut6' });
    links.push('nat6/local -> [local]router6');
  }
  for (const [name, e] of Object.entries(ICMP6_ERRORS)) {
    elements.push({ name, kind: 'Icmp6Error', params: { ...e } });
    links.push(`${name} -> ${nat6 ? 'nat6/local' : '[local]router6'}`);
  }
  for (const f of ifaces6) {
    const gw6 = gateway6Name(f);
    elements.push({ name: gw6, kind: 'GatewayInterface6', params: { iface: f } });
    links.push(`${gatewayName(f)}[ip6] -> [wire]${gw6}`, `${gw6}[wire] -> ${wireOut(f)}`, `${gw6}[unreachable] -> icmp6/addr-unreachable`);
    if (nat6) links.push(`${gw6}[ip] -> [${f}]nat6/pre`, `nat6/pre[${f}] -> [${f}]router6`, `router6[${f}] -> [${f}]nat6/post`, `nat6/post[${f}] -> [ip]${gw6}`);
    else links.push(`${gw6}[ip] -> [${f}]router6`, `router6[${f}] -> [ip]${gw6}`);
  }
  links.push(
    'local6[reply] -> [local]router6',
    'local6[port-unreachable] -> icmp6/port-unreachable',
    'local6[unknown-header] -> icmp6/unknown-header',
    'local6[bad-header] -> icmp6/bad-header',
    'router6[hop-limit] -> icmp6/hop-limit',
    'router6[no-route] -> icmp6/no-route',
    'router6[too-big] -> icmp6/too-big',
  );
  return true;
}
