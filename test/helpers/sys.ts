/*
 * Shared helpers for integration tests: run commands (bounded, never throwing unless
 * asked), iproute2 and namespaces, polling with deadlines, and the environment check.
 *
 * Names: everything a test process creates starts with `tbt-<pid>-` (PREFIX), so
 * scripts/run-tests.js can tell leftovers of a crashed run (pid gone) from a live run.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PREFIX = `tbt-${process.pid}-`;

function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bin', 'tapbridge.js'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('repo root (package.json + bin/tapbridge.js) not found');
    dir = parent;
  }
}
export const ROOT = findRepoRoot();
export const TAPBRIDGE = join(ROOT, 'bin', 'tapbridge.js');

const which = (cands: string[]): string | undefined => cands.find((p) => existsSync(p));
export const IP = which(['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip']) ?? 'ip';
export const NSENTER = which(['/usr/bin/nsenter', '/bin/nsenter', '/usr/sbin/nsenter']) ?? 'nsenter';
export const PING = which(['/usr/bin/ping', '/bin/ping']) ?? 'ping';
export const ARPING = which(['/usr/sbin/arping', '/usr/bin/arping', '/sbin/arping', '/bin/arping']);
export const TCPDUMP = which(['/usr/bin/tcpdump', '/usr/sbin/tcpdump']);
export const TIMEOUT = which(['/usr/bin/timeout', '/bin/timeout']) ?? 'timeout';

/** Why integration tests cannot run here, or null. */
export function integrationSkipReason(): string | null {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not running as root';
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing';
  if (IP === 'ip') return "iproute2's ip not found";
  return null;
}

/** Print a loud banner when integration tests are skipped (never silently). */
export function announceSkip(what: string, reason: string): void {
  const line = `!!!!! ${what} SKIPPED: ${reason} !!!!!`;
  process.stderr.write(`\n${'!'.repeat(line.length)}\n${line}\n${'!'.repeat(line.length)}\n\n`);
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The command line, for messages. */
  cmd: string;
}

/** Run a command with a time limit; resolves with the exit status, never rejects. */
export function run(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
  const line = [cmd, ...args].join(' ');
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 20_000, killSignal: 'SIGKILL', maxBuffer: 16 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string; signal?: NodeJS.Signals | null }) | null;
      resolve({
        code: e === null ? 0 : typeof e.code === 'number' ? e.code : null,
        signal: e?.signal ?? null,
        stdout: stdout ?? '',
        stderr: (stderr ?? '') + (e !== null && typeof e.code !== 'number' && e.code !== undefined ? `\n[${e.code}] ${e.message}` : ''),
        cmd: line,
      });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

export function describeRun(r: RunResult): string {
  return `$ ${r.cmd}\n(exit ${r.code}${r.signal ? `, signal ${r.signal}` : ''})\n--- stdout ---\n${r.stdout.trimEnd()}\n--- stderr ---\n${r.stderr.trimEnd()}`;
}

/** Like run() but throws (with the whole output) unless the exit code is 0. */
export async function check(cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`command failed:\n${describeRun(r)}`);
  return r.stdout;
}

/** `ip ARGS` (throws on failure). */
export const ip = (...args: string[]): Promise<string> => check(IP, args);

/** Run a program inside a namespace (`ip netns exec`). */
export function nsRun(ns: string, cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
  return run(IP, ['netns', 'exec', ns, cmd, ...args], opts);
}

export function netnsExists(name: string): boolean {
  return existsSync(`/run/netns/${name}`);
}

/** Namespaces in /run/netns (what `ip netns list` shows). */
export async function netnsList(): Promise<string[]> {
  const out = await ip('netns', 'list');
  return out
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => n !== '');
}

/** Create a namespace for a test (lo up; optionally IPv6 off so it stays silent). */
export async function addNamespace(name: string, opts: { ipv6?: boolean } = {}): Promise<void> {
  await ip('netns', 'add', name);
  await ip('-n', name, 'link', 'set', 'dev', 'lo', 'up');
  if (opts.ipv6 === false) {
    // devices moved in later inherit "default"; "all" covers the ones already there
    for (const k of ['default', 'all']) await check(IP, ['netns', 'exec', name, 'sysctl', '-qw', `net.ipv6.conf.${k}.disable_ipv6=1`]);
  }
}

/** Delete namespaces that exist; synchronous so it also works from exit paths. Returns errors. */
export function deleteNamespacesSync(names: Iterable<string>): string[] {
  const errors: string[] = [];
  for (const n of names) {
    if (!netnsExists(n)) continue;
    const r = spawnSync(IP, ['netns', 'del', n], { encoding: 'utf8', timeout: 10_000 });
    if (r.status !== 0) errors.push(`ip netns del ${n}: ${(r.stderr ?? '').trim()}`);
  }
  return errors;
}

export interface LinkJson {
  ifname: string;
  address?: string;
  flags?: string[];
  operstate?: string;
  mtu?: number;
}

/** `ip -j link show dev IF` inside a namespace. */
export async function linkInfo(ns: string, ifname: string): Promise<LinkJson> {
  const out = await ip('-n', ns, '-j', 'link', 'show', 'dev', ifname);
  const arr = JSON.parse(out) as LinkJson[];
  if (arr.length !== 1) throw new Error(`ip -n ${ns} link show ${ifname}: expected one link, got ${out}`);
  return arr[0];
}

/** The MAC of a device inside a namespace (lowercase aa:bb:...). */
export async function macOf(ns: string, ifname = 'eth0'): Promise<string> {
  const l = await linkInfo(ns, ifname);
  if (l.address === undefined) throw new Error(`${ns}:${ifname} has no MAC`);
  return l.address.toLowerCase();
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Poll `fn` until it returns a value other than undefined/false, or throw after
 * `timeoutMs` with `what` and the last value or error seen.
 */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, opts: { timeoutMs?: number; intervalMs?: number } = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  let last: unknown = undefined;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${opts.timeoutMs ?? 10_000} ms waiting for ${what} (last: ${detail})`);
    }
    await sleep(opts.intervalMs ?? 200);
  }
}
