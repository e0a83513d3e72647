/*
 * Network namespaces and links for benchmark topologies, via iproute2. Everything created
 * here registers its removal with the cleanup registry; a namespace that already exists is
 * an error (never adopt or delete what this run did not create).
 *
 * Safety: callers only put addresses of their own lab ranges (10.100.0.0/24, 198.51.100.0/24,
 * 203.0.113.0/24) on devices inside namespaces they created; `assertLabAddress` enforces it.
 */
import { existsSync, readdirSync } from 'node:fs';
import { onCleanup } from './cleanup.js';
import { IP, run, type RunResult } from './proc.js';

const IP_TIMEOUT_MS = 10_000;

const LAB_NETS: [number, number][] = [
  [0x0a640000, 24], // 10.100.0.0/24
  [0xc6336400, 24], // 198.51.100.0/24
  [0xcb007100, 24], // 203.0.113.0/24
];

function u32(ip: string): number {
  const p = ip.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !(x >= 0 && x <= 255))) throw new Error(`not an IPv4 address: ${ip}`);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}

/** Throw unless `addr` (a.b.c.d or a.b.c.d/len) lies in one of the lab ranges. */
export function assertLabAddress(addr: string): void {
  const ip = u32(addr.split('/')[0]);
  for (const [net, len] of LAB_NETS) {
    const mask = (0xffffffff << (32 - len)) >>> 0;
    if (((ip & mask) >>> 0) === net) return;
  }
  throw new Error(`${addr} is outside the lab ranges (10.100.0.0/24, 198.51.100.0/24, 203.0.113.0/24)`);
}

/** `ip [-n ns] args...`, bounded; throws with ip's stderr on failure. */
export function ipCmd(args: string[], ns?: string): Promise<RunResult> {
  return run(IP, ns === undefined ? args : ['-n', ns, ...args], { timeoutMs: IP_TIMEOUT_MS });
}

export function netnsExists(name: string): boolean {
  return existsSync(`/run/netns/${name}`);
}

/** Names of existing namespaces starting with `prefix`. */
export function listNetns(prefix: string): string[] {
  try {
    return readdirSync('/run/netns').filter((n) => n.startsWith(prefix));
  } catch {
    return [];
  }
}

export async function deleteNetns(name: string): Promise<void> {
  if (!netnsExists(name)) return;
  await run(IP, ['netns', 'del', name], { timeoutMs: IP_TIMEOUT_MS });
}

/** Create a namespace (lo up) and register its deletion. Refuses an existing one. */
export async function createNetns(name: string): Promise<string> {
  if (netnsExists(name)) throw new Error(`namespace ${name} exists already; not touching it`);
  await ipCmd(['netns', 'add', name]);
  onCleanup(`delete namespace ${name}`, () => deleteNetns(name));
  await ipCmd(['link', 'set', 'dev', 'lo', 'up'], name);
  return name;
}

export interface LinkOptions {
  mtu?: number;
  addresses?: string[];
  /** Default route via this address. */
  gateway?: string;
}

/** Set MTU, add addresses, bring up (and add a default route) for a device inside `ns`. */
export async function configureLink(ns: string, ifname: string, o: LinkOptions): Promise<void> {
  if (o.mtu !== undefined) await ipCmd(['link', 'set', 'dev', ifname, 'mtu', String(o.mtu)], ns);
  for (const a of o.addresses ?? []) {
    assertLabAddress(a);
    await ipCmd(['addr', 'add', a, 'dev', ifname], ns);
  }
  await ipCmd(['link', 'set', 'dev', ifname, 'up'], ns);
  if (o.gateway !== undefined) {
    assertLabAddress(o.gateway);
    await ipCmd(['route', 'add', 'default', 'via', o.gateway, 'dev', ifname], ns);
  }
}

/**
 * A veth pair between two namespaces this run created: `a.ifname` in `a.ns`, `b.ifname`
 * in `b.ns`. Deleting either namespace removes the pair, so no separate undo is needed.
 */
export async function createVeth(a: { ns: string; ifname: string } & LinkOptions, b: { ns: string; ifname: string } & LinkOptions): Promise<void> {
  // Created inside a.ns from the start: the root namespace never holds either end.
  await ipCmd(['link', 'add', 'dev', a.ifname, 'type', 'veth', 'peer', 'name', b.ifname, 'netns', b.ns], a.ns);
  await configureLink(a.ns, a.ifname, a);
  await configureLink(b.ns, b.ifname, b);
}

/** A Linux bridge inside `ns` (STP off, no forward delay), up; ports are added with `bridgePort`. */
export async function createKernelBridge(ns: string, name: string, o: LinkOptions = {}): Promise<void> {
  await ipCmd(['link', 'add', 'dev', name, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0'], ns);
  await configureLink(ns, name, o);
}

export async function bridgePort(ns: string, bridge: string, ifname: string): Promise<void> {
  await ipCmd(['link', 'set', 'dev', ifname, 'master', bridge], ns);
}

/** `sysctl -w key=value` inside a namespace (e.g. net.ipv4.ip_forward=1). */
export async function sysctl(ns: string, key: string, value: string): Promise<void> {
  await run(IP, ['netns', 'exec', ns, 'sysctl', '-q', '-w', `${key}=${value}`], { timeoutMs: IP_TIMEOUT_MS });
}
