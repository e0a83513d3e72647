/*
 * Network namespaces and links for benchmark topologies, via iproute2. Everything created
 * here registers its removal with the cleanup registry; a namespace that already exists is
 * an error (never adopt or delete what this run did not create).
 *
 * Safety: callers only put addresses of their own lab ranges (10.100.0.0/24, 198.51.100.0/24,
 * 203.0.113.0/24, and IPv6 inside the documentation prefix 2001:db8::/32) on devices inside
 * namespaces they created; `assertLabAddress` enforces it. IPv6 addresses are added like
 * tapbridge's lab adds them: without duplicate address detection (`nodad`, usable at once),
 * on a device that takes nothing from router advertisements (accept_ra=0, autoconf=0).
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { familyOf, inSubnet, subnetOf } from '../../src/config/addresses.js';
import { pidAlive, RUN_DIR as TAPBRIDGE_RUN_DIR } from '../../src/lab/resources.js';
import { onCleanup } from './cleanup.js';
import { IP, run, type RunResult } from './proc.js';

const IP_TIMEOUT_MS = 10_000;

const LAB_RANGES = ['10.100.0.0/24', '198.51.100.0/24', '203.0.113.0/24', '2001:db8::/32'];
const LAB_NETS = LAB_RANGES.map(subnetOf);

/** Throw unless `addr` (an address, or address/len, of either family) lies in one of the lab ranges. */
export function assertLabAddress(addr: string): void {
  if (!LAB_NETS.some((net) => inSubnet(addr, net))) throw new Error(`${addr} is outside the lab ranges (${LAB_RANGES.join(', ')})`);
}

/** True for an IPv6 address (with or without /len). */
export function isIpv6Address(addr: string): boolean {
  return familyOf(addr.split('/')[0]) === 6;
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

/** The run id of this process: its pid in base 36 after a 'p', so leftovers name their owner. */
export function benchRunId(pid = process.pid): string {
  return `p${pid.toString(36)}`;
}

/**
 * Remove what benchmark runs that died without their cleanup (SIGKILL, a lost session) left:
 * namespaces `tbb-p<pid>-*` and tapbridge state files `/run/tapbridge/tbb-p<pid>*` whose pid is
 * no longer a live process. Live runs are left alone. Returns what was removed, for the log.
 */
export async function removeDeadRunLeftovers(): Promise<string[]> {
  const owner = (name: string): number | null => {
    const m = /^tbb-p([0-9a-z]+)(?:-|\.|$)/.exec(name);
    return m === null ? null : parseInt(m[1], 36);
  };
  const dead = (name: string) => {
    const pid = owner(name);
    return pid !== null && pid !== process.pid && !pidAlive(pid);
  };
  const removed: string[] = [];
  for (const ns of listNetns('tbb-').filter(dead)) {
    await deleteNetns(ns).catch(() => {});
    removed.push(`namespace ${ns}`);
  }
  let state: string[] = [];
  try {
    state = readdirSync(TAPBRIDGE_RUN_DIR).filter((f) => f.startsWith('tbb-') && dead(f));
  } catch {
    // no run directory: nothing left there
  }
  for (const f of state) {
    rmSync(join(TAPBRIDGE_RUN_DIR, f), { force: true });
    removed.push(`${TAPBRIDGE_RUN_DIR}/${f}`);
  }
  return removed;
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
  const addresses = o.addresses ?? [];
  if (addresses.some(isIpv6Address)) {
    await sysctl(ns, `net.ipv6.conf.${ifname}.accept_ra`, '0');
    await sysctl(ns, `net.ipv6.conf.${ifname}.autoconf`, '0');
  }
  for (const a of addresses) {
    assertLabAddress(a);
    await ipCmd(['addr', 'add', a, 'dev', ifname, ...(isIpv6Address(a) ? ['nodad'] : [])], ns);
  }
  await ipCmd(['link', 'set', 'dev', ifname, 'up'], ns);
  if (o.gateway !== undefined) {
    assertLabAddress(o.gateway);
    await ipCmd([isIpv6Address(o.gateway) ? '-6' : '-4', 'route', 'add', 'default', 'via', o.gateway, 'dev', ifname], ns);
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

/** `sysctl -w key=value` inside a namespace this run created (e.g. net.ipv4.ip_forward=1). */
export async function sysctl(ns: string, key: string, value: string): Promise<void> {
  await run(IP, ['netns', 'exec', ns, 'sysctl', '-q', '-w', `${key}=${value}`], { timeoutMs: IP_TIMEOUT_MS });
}
