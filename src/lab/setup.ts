/*
 * Turns a validated config into live devices, in the namespace tapbridge runs in:
 *   namespace ports: create the namespace (if asked), open a TAP here, move it into the
 *     namespace, rename it (eth0), set MAC/MTU/addresses/default route, bring it up;
 *   tap ports: a TAP that stays here (the host port, or a VM's device), configured alike;
 *   packet ports and the uplink: an AF_PACKET socket on an existing interface;
 *   lab veths: a namespace joined to this one by a veth pair (the lab's `wan`).
 * Every creation is recorded in Resources before the next step, so a failure half-way
 * tears down exactly what was made. The fds are returned for the data-plane worker.
 * Between steps the caller's checkpoint runs (it yields to the event loop, so a SIGTERM
 * during setup is seen, and throws to abort): setup stops at once and the caller tears down.
 */
import { native } from '../io/native.js';
import type { Config, PortConfig } from '../config/schema.js';
import type { PortSpec } from '../dataplane/spec.js';
import { ip, IP_TIMEOUT_MS, linkExists, netnsExists, netnsInode, runTool, SYSCTL } from './ip.js';
import type { Resources } from './resources.js';

/** Awaited between setup steps; throws to abort setup. */
export type Checkpoint = () => Promise<void>;
const noCheckpoint: Checkpoint = async () => {};

export interface SetupResult {
  ports: PortSpec[];
  uplink: { fd: number; ifname: string; mac: string; mtu: number; vnetHdr: boolean } | null;
  fds: number[];
}

function colonMac(hex12: string): string {
  return hex12.match(/../g)!.join(':');
}

function readMac(ifname: string, ns?: string): string {
  const out = JSON.parse(ip(['-j', 'link', 'show', 'dev', ifname], ns)) as { address: string }[];
  return out[0].address;
}

/** Set an IPv6 sysctl of a device (in namespace ns). */
function ipv6Conf(ifname: string, key: string, value: number, ns?: string): void {
  const arg = `net.ipv6.conf.${ifname}.${key}=${value}`;
  if (ns === undefined) runTool(SYSCTL, ['-qw', arg], IP_TIMEOUT_MS);
  else ip(['netns', 'exec', ns, SYSCTL, '-qw', arg]);
}

/**
 * MAC, MTU, addresses (IPv6 ones without duplicate address detection: the lab assigns them),
 * up. A device with a static IPv6 address takes nothing from router advertisements; one
 * without keeps the kernel defaults and configures itself by SLAAC.
 */
function configureLink(ifname: string, p: { mac?: string; mtu: number; addresses: string[] }, ns?: string): void {
  if (p.mac !== undefined) ip(['link', 'set', 'dev', ifname, 'address', p.mac], ns);
  ip(['link', 'set', 'dev', ifname, 'mtu', String(p.mtu)], ns);
  const v6 = p.addresses.filter((a) => a.includes(':'));
  if (v6.length > 0) {
    ipv6Conf(ifname, 'accept_ra', 0, ns);
    ipv6Conf(ifname, 'autoconf', 0, ns);
  }
  for (const a of p.addresses) ip(['addr', 'add', a, 'dev', ifname, ...(a.includes(':') ? ['nodad'] : [])], ns);
  ip(['link', 'set', 'dev', ifname, 'up'], ns);
}

/** Default routes of a namespace port, one per family. */
function addDefaultRoutes(ifname: string, vias: string[], ns: string): void {
  for (const via of vias) ip([via.includes(':') ? '-6' : '-4', 'route', 'add', 'default', 'via', via, 'dev', ifname], ns);
}

export function ensureNamespace(name: string, create: boolean, res: Resources, what: string): void {
  if (netnsExists(name)) {
    if (create)
      throw new Error(
        `${what}: namespace '${name}' already exists and was not created by this instance; delete it (ip netns del ${name}) or set createNamespace: false`,
      );
    return;
  }
  if (!create) throw new Error(`${what}: namespace '${name}' does not exist (createNamespace is false)`);
  ip(['netns', 'add', name]);
  res.add({ type: 'netns', name });
  ip(['link', 'set', 'dev', 'lo', 'up'], name);
}

function openNamespacePort(p: Extract<PortConfig, { type: 'namespace' }>, index: number, res: Resources, fds: number[]): PortSpec {
  ensureNamespace(p.namespace, p.createNamespace, res, `port '${p.name}'`);
  if (linkExists(p.ifname, p.namespace)) throw new Error(`port '${p.name}': namespace '${p.namespace}' already has a device '${p.ifname}'`);
  const tmpName = `tbtap${index}`;
  const tap = native.openTap(tmpName, p.offload, false);
  fds.push(tap.fd);
  // A TAP lives as long as its fd; moving it into the namespace keeps it ours.
  ip(['link', 'set', 'dev', tap.name, 'netns', p.namespace]);
  ip(['link', 'set', 'dev', tap.name, 'name', p.ifname], p.namespace);
  // addresses: dhcp: the link comes up bare; udhcpc (started once the data plane runs) configures it.
  const addresses = p.addresses === 'dhcp' ? [] : p.addresses;
  configureLink(p.ifname, { mac: p.mac, mtu: p.mtu, addresses }, p.namespace);
  addDefaultRoutes(p.ifname, p.defaultRoute ?? [], p.namespace);
  return { name: p.name, kind: 'namespace', bridge: '', fd: tap.fd, vnetHdr: p.offload, ifname: `${p.namespace}:${p.ifname}`, mac: readMac(p.ifname, p.namespace), addresses };
}

function openTapPort(p: Extract<PortConfig, { type: 'tap' }>, fds: number[]): PortSpec {
  if (linkExists(p.ifname)) throw new Error(`port '${p.name}': a device '${p.ifname}' already exists here`);
  const tap = native.openTap(p.ifname, p.offload, false);
  fds.push(tap.fd);
  configureLink(tap.name, p);
  return { name: p.name, kind: 'tap', bridge: '', fd: tap.fd, vnetHdr: p.offload, ifname: tap.name, mac: readMac(tap.name), addresses: p.addresses };
}

function openPacketPort(p: Extract<PortConfig, { type: 'packet' }>, fds: number[]): PortSpec {
  ip(['link', 'set', 'dev', p.interface, 'up']);
  const s = native.openPacket(p.interface, p.offload);
  fds.push(s.fd);
  return { name: p.name, kind: 'packet', bridge: '', fd: s.fd, vnetHdr: p.offload, ifname: p.interface, mac: colonMac(native.ifInfo(p.interface).mac), addresses: [] };
}

/** Create the lab's veth-linked namespaces (before the uplink opens its socket on them). */
export async function setupLabVeths(cfg: Config, res: Resources, checkpoint: Checkpoint = noCheckpoint): Promise<void> {
  for (const v of cfg.lab?.veths ?? []) {
    await checkpoint();
    ensureNamespace(v.namespace, true, res, `lab veth to '${v.namespace}'`);
    if (linkExists(v.peer)) throw new Error(`lab veth: a device '${v.peer}' already exists here`);
    ip(['link', 'add', 'dev', v.peer, 'mtu', String(v.mtu), 'type', 'veth', 'peer', 'name', v.ifname, 'netns', v.namespace]);
    // Recorded with its namespace: cleanup after a crash may run elsewhere (the outer process).
    res.add(cfg.namespace !== undefined ? { type: 'link', name: v.peer, ns: cfg.namespace.name } : { type: 'link', name: v.peer, createdIn: netnsInode('/proc/self/ns/net') });
    configureLink(v.peer, { mtu: v.mtu, addresses: v.peerAddresses });
    configureLink(v.ifname, { mtu: v.mtu, addresses: v.addresses }, v.namespace);
  }
}

/** Build every port of the config. On failure, already-opened fds are in `fds` for cleanup. */
export async function setupPorts(cfg: Config, res: Resources, fds: number[], checkpoint: Checkpoint = noCheckpoint): Promise<SetupResult> {
  const ports: PortSpec[] = [];
  let index = 0;
  for (const b of cfg.bridges) {
    for (const p of b.ports) {
      await checkpoint();
      const spec =
        p.type === 'namespace' ? openNamespacePort(p, index, res, fds) : p.type === 'tap' ? openTapPort(p, fds) : openPacketPort(p, fds);
      spec.bridge = b.name;
      ports.push(spec);
      index++;
    }
  }
  let uplink: SetupResult['uplink'] = null;
  if (cfg.uplink?.type === 'packet') {
    await checkpoint();
    const u = cfg.uplink;
    if (!linkExists(u.interface)) throw new Error(`uplink: no interface '${u.interface}' in tapbridge's namespace`);
    ip(['link', 'set', 'dev', u.interface, 'up']);
    const info = native.ifInfo(u.interface);
    const s = native.openPacket(u.interface, u.offload);
    fds.push(s.fd);
    uplink = { fd: s.fd, ifname: u.interface, mac: colonMac(info.mac), mtu: info.mtu, vnetHdr: u.offload };
  }
  return { ports, uplink, fds };
}
