/*
 * The C ceiling: build bench/cfwd/cfwd.c (once per run, `cc -O2` into a temp directory that
 * is removed at cleanup) and run it inside a namespace of the run. cfwd creates its TAPs in
 * that namespace; `attachTap` then moves one into another namespace of the run, names it and
 * configures it. Stopping sends SIGTERM and parses the counters cfwd prints on exit; the TAPs
 * disappear with its fds. Nothing here runs in or touches the root namespace's devices (the
 * compiler aside).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onCleanup } from './cleanup.js';
import { configureLink, ipCmd, netnsExists, type LinkOptions } from './netns.js';
import { IP, run, startBackground, type Background } from './proc.js';
import { REPO_ROOT } from './tapbridge.js';

export const CFWD_SOURCE = join(REPO_ROOT, 'bench', 'cfwd', 'cfwd.c');
export const CFWD_CFLAGS = ['-O2', '-Wall', '-Wextra'];

export interface CfwdBuild {
  binary: string;
  command: string;
  compiler: string | null;
  sourceSha256: string;
}

let building: Promise<CfwdBuild> | null = null;

/** Compile cfwd (memoized for the run). Throws `build: <first compiler error>` on failure. */
export function buildCfwd(): Promise<CfwdBuild> {
  building ??= (async () => {
    const src = readFileSync(CFWD_SOURCE);
    const dir = mkdtempSync(join(tmpdir(), 'tbb-cfwd-'));
    onCleanup(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
    const binary = join(dir, 'cfwd');
    const args = [...CFWD_CFLAGS, '-o', binary, CFWD_SOURCE];
    try {
      await run('cc', args, { timeoutMs: 60_000 });
    } catch (err) {
      const msg = (err as Error).message;
      if (/ENOENT/.test(msg) && !/error:/.test(msg)) throw new Error('build: no C compiler (cc not found)');
      const firstError = /(?:[^\s/]+\.c:\d+:\d+: )?error: .*/.exec(msg)?.[0] ?? msg.split('\n')[0];
      throw new Error(`build: ${firstError}`);
    }
    const version = await run('cc', ['--version'], { timeoutMs: 10_000, check: false }).catch(() => null);
    return {
      binary,
      command: ['cc', ...args].join(' '),
      compiler: version?.stdout.split('\n')[0] ?? null,
      sourceSha256: createHash('sha256').update(src).digest('hex'),
    };
  })();
  // A failed build is not retried within the run (both variants report the same reason).
  return building;
}

export interface CfwdTapCounters {
  rx_frames: number;
  rx_bytes: number;
  rx_errors: number;
  tx_frames: number;
  tx_bytes: number;
  tx_errors: number;
  tx_short: number;
  last_rx_errno: number;
  last_tx_errno: number;
}

export interface CfwdStopReport {
  pid: number | undefined;
  exitCode: number | null;
  signal: string | null;
  /** Exit 0 after SIGTERM with its counters printed. */
  cleanExit: boolean;
  counters: Record<string, CfwdTapCounters> | null;
  /** Always empty: cfwd's TAPs vanish with its fds (kept for the teardown report's shape). */
  leftovers: string[];
  stderr: string;
}

export class CfwdInstance {
  private stopped: Promise<CfwdStopReport> | null = null;

  constructor(
    readonly proc: Background,
    readonly build: CfwdBuild,
    readonly args: string[],
  ) {}

  get pid(): number | undefined {
    return this.proc.child.pid;
  }

  /** SIGTERM, wait (SIGKILL after graceMs), parse the counters. Idempotent. */
  stop(graceMs = 5_000): Promise<CfwdStopReport> {
    this.stopped ??= (async () => {
      const p = this.proc;
      p.signal('SIGTERM');
      const timer = setTimeout(() => void p.stop('SIGKILL', 0), graceMs);
      const { code, signal } = await p.exited;
      clearTimeout(timer);
      const m = /^cfwd stats (\{.*\})$/m.exec(p.stdout);
      let counters: Record<string, CfwdTapCounters> | null = null;
      try {
        counters = m ? (JSON.parse(m[1]) as Record<string, CfwdTapCounters>) : null;
      } catch {
        counters = null;
      }
      return { pid: this.pid, exitCode: code, signal, cleanExit: code === 0 && counters !== null, counters, leftovers: [], stderr: p.stderr.trim() };
    })();
    return this.stopped;
  }
}

/**
 * Start cfwd inside `ns` (a namespace of this run) with TAPs named `taps`; resolves once it
 * printed "ready" (the TAPs exist in `ns`). Registers its stop with the cleanup registry.
 */
export async function startCfwd(o: { ns: string; taps: string[]; vnetHdr: boolean; maxLifetimeMs?: number }): Promise<CfwdInstance> {
  if (!netnsExists(o.ns)) throw new Error(`cfwd: namespace ${o.ns} does not exist (it must be one this run created)`);
  const build = await buildCfwd();
  const args = ['--vnet-hdr', o.vnetHdr ? 'on' : 'off', ...o.taps];
  const proc = startBackground(`cfwd in ${o.ns}`, IP, ['netns', 'exec', o.ns, build.binary, ...args], o.maxLifetimeMs ?? 30 * 60_000);
  const inst = new CfwdInstance(proc, build, args);
  onCleanup(`stop cfwd in ${o.ns}`, async () => {
    await inst.stop();
  });
  try {
    await proc.waitForLine(/^cfwd pid=\d+ .* ready$/, 10_000);
  } catch (err) {
    await inst.stop(1_000);
    // cfwd says why on stderr (e.g. "cfwd: TUNSETIFF cf1: ..."); else the wait's own message.
    const why = proc.stderr.trim().split('\n').pop() || (err as Error).message;
    throw new Error(`start: ${why}`);
  }
  return inst;
}

/** Move TAP `tap` from `fromNs` into `toNs`, rename it to `ifname` and configure it (addresses, up). */
export async function attachTap(fromNs: string, tap: string, toNs: string, ifname: string, link: LinkOptions): Promise<void> {
  await ipCmd(['link', 'set', 'dev', tap, 'netns', toNs], fromNs);
  if (ifname !== tap) await ipCmd(['link', 'set', 'dev', tap, 'name', ifname], toNs);
  await configureLink(toNs, ifname, link);
}
