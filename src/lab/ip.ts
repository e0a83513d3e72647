/*
 * iproute2 wrapper for the control plane. Each call runs `ip` synchronously (setup and
 * teardown are short and ordered) with a time limit, and turns a failure into an IpError
 * that carries the whole command line and ip's stderr, e.g.
 *   ip -n red link set tb-red name eth0: RTNETLINK answers: File exists
 *   ip netns del red: timed out after 2000 ms (killed)
 * A hung `ip` (a stuck netlink request, a busy mount namespace) therefore never hangs
 * setup or teardown: setup fails with that error, teardown reports it and goes on.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';

export const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => existsSync(p)) ?? 'ip';

export const SYSCTL = ['/usr/sbin/sysctl', '/sbin/sysctl', '/usr/bin/sysctl'].find((p) => existsSync(p)) ?? 'sysctl';

export const NSENTER = ['/usr/bin/nsenter', '/bin/nsenter', '/usr/sbin/nsenter'].find((p) => existsSync(p)) ?? 'nsenter';

/** Time limit of one `ip` call during setup. */
export const IP_TIMEOUT_MS = 5000;
/** Time limit of one `ip` call during teardown (the whole stop must stay under 3 s). */
export const IP_TEARDOWN_TIMEOUT_MS = 1000;

export class IpError extends Error {
  constructor(
    readonly command: string,
    readonly stderr: string,
  ) {
    super(`${command}: ${stderr.trim() || 'failed'}`);
    this.name = 'IpError';
  }
}

function argvOf(args: string[], ns?: string): string[] {
  return ns === undefined ? args : ['-n', ns, ...args];
}

/** What went wrong with a finished or killed `ip` run, for the error text. */
function failure(code: string | undefined, signal: NodeJS.Signals | null | undefined, stderr: string, timeoutMs: number): string {
  if (code === 'ETIMEDOUT') return `timed out after ${timeoutMs} ms (killed)`;
  if (signal) return `killed by ${signal}${stderr.trim() ? `: ${stderr.trim()}` : ''}`;
  return stderr.trim() || 'failed';
}

/** Run a tool synchronously with a time limit; returns stdout. Throws an IpError naming the command. */
export function runTool(bin: string, argv: string[], timeoutMs: number): string {
  try {
    return execFileSync(bin, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string; signal?: NodeJS.Signals | null };
    throw new IpError(`${basename(bin)} ${argv.join(' ')}`, failure(e.code, e.signal, e.stderr || e.message, timeoutMs));
  }
}

/** Like runTool() but never throws; returns the error text or null. */
export function runToolQuiet(bin: string, argv: string[], timeoutMs: number): string | null {
  const r = spawnSync(bin, argv, { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
  if (r.status === 0) return null;
  return `${basename(bin)} ${argv.join(' ')}: ${failure((r.error as NodeJS.ErrnoException | undefined)?.code, r.signal, r.stderr || r.error?.message || '', timeoutMs)}`;
}

/** Run `ip [-n ns] args...`; returns stdout. Throws an IpError naming the command. */
export function ip(args: string[], ns?: string, timeoutMs = IP_TIMEOUT_MS): string {
  return runTool(IP, argvOf(args, ns), timeoutMs);
}

/** Like ip() but never throws; for teardown. Returns the error text or null. */
export function ipQuiet(args: string[], ns?: string, timeoutMs = IP_TEARDOWN_TIMEOUT_MS): string | null {
  return runToolQuiet(IP, argvOf(args, ns), timeoutMs);
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
  return ipQuiet(['link', 'show', 'dev', ifname], ns, IP_TIMEOUT_MS) === null;
}
