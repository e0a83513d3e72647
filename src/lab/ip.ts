/*
 * iproute2 wrapper for the control plane. Each call runs `ip` synchronously (setup and
 * teardown are short and ordered) and turns a failure into an IpError that carries the
 * whole command line and ip's stderr, e.g.
 *   ip -n red link set tb-red name eth0: RTNETLINK answers: File exists
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';

export const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => existsSync(p)) ?? 'ip';

export const NSENTER = ['/usr/bin/nsenter', '/bin/nsenter', '/usr/sbin/nsenter'].find((p) => existsSync(p)) ?? 'nsenter';

export class IpError extends Error {
  constructor(
    readonly command: string,
    readonly stderr: string,
  ) {
    super(`${command}: ${stderr.trim() || 'failed'}`);
    this.name = 'IpError';
  }
}

/** Run `ip [-n ns] args...`; returns stdout. */
export function ip(args: string[], ns?: string): string {
  const argv = ns === undefined ? args : ['-n', ns, ...args];
  try {
    return execFileSync(IP, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new IpError(`ip ${argv.join(' ')}`, e.stderr ?? e.message);
  }
}

/** Like ip() but never throws; for teardown. Returns the error text or null. */
export function ipQuiet(args: string[], ns?: string): string | null {
  const argv = ns === undefined ? args : ['-n', ns, ...args];
  const r = spawnSync(IP, argv, { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  return r.status === 0 ? null : `ip ${argv.join(' ')}: ${(r.stderr ?? '').trim()}`;
}

export function netnsExists(name: string): boolean {
  return existsSync(`/run/netns/${name}`);
}

/** Inode of a network namespace file: equal inodes = same namespace. */
export function netnsInode(path: string): number {
  try {
    return statSync(path).ino;
  } catch {
    return -1;
  }
}

/** True when this process runs in the named namespace. */
export function inNetns(name: string): boolean {
  const mine = netnsInode('/proc/self/ns/net');
  return mine !== -1 && mine === netnsInode(`/run/netns/${name}`);
}

export function linkExists(ifname: string, ns?: string): boolean {
  return ipQuiet(['link', 'show', 'dev', ifname], ns) === null;
}
