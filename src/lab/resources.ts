/*
 * Bookkeeping of everything an instance creates (namespaces, links, helper processes),
 * persisted to RUN_DIR/<instance>.<role>.json so that teardown — on exit, on an
 * error half-way through setup, or on the next start after a crash — removes exactly
 * what was created, in reverse order, and nothing else.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { IP_TEARDOWN_TIMEOUT_MS, ipQuiet, netnsExists, netnsInode } from './ip.js';

/** Where root instances keep their sockets and state files. */
export const SYSTEM_RUN_DIR = '/run/tapbridge';

/** An ordinary user's runtime directory (rootless mode): $XDG_RUNTIME_DIR/tapbridge, else /tmp/tapbridge-UID. */
export function userRunDir(): string {
  const xdg = process.env.XDG_RUNTIME_DIR;
  return xdg !== undefined && xdg !== '' ? `${xdg}/tapbridge` : `/tmp/tapbridge-${process.getuid?.() ?? 0}`;
}

/** TAPBRIDGE_RUN_DIR, else /run/tapbridge for root (also root of a user namespace), else the user's own. */
export const RUN_DIR = process.env.TAPBRIDGE_RUN_DIR ?? (process.getuid?.() === 0 ? SYSTEM_RUN_DIR : userRunDir());

export type Resource =
  | { type: 'netns'; name: string }
  /**
   * A link tapbridge created. `ns` is the namespace it lives in; `createdIn` is the inode of
   * the network namespace of the process that created it, when `ns` is unknown: such a link
   * is only ever deleted from that same namespace (never from wherever cleanup happens to run).
   */
  | { type: 'link'; name: string; ns?: string; createdIn?: number }
  /** A helper process; `start` is its start time (see processStart) so a reused pid is never signalled. */
  | { type: 'pid'; pid: number; what: string; start?: number };

interface StateFile {
  pid: number;
  /** Start time of `pid` (processStart): tells a live owner from an unrelated process that reuses the pid. */
  pidStart?: number;
  instance: string;
  startedAt: string;
  resources: Resource[];
}

/** The fields of /proc/PID/stat after the command name (which may hold spaces and parentheses): [0] is the state, [19] the start time. */
function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** The state letter of a /proc/PID/stat line (R, S, D, Z, X, ...), or '' when it cannot be read. */
export function parseProcState(stat: string): string {
  const i = stat.lastIndexOf(')');
  return i < 0 ? '' : (statFields(stat)[0] ?? '');
}

function readStat(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
}

/** Start time of a process in clock ticks since boot (/proc/PID/stat field 22), or -1. */
export function processStart(pid: number): number {
  const stat = readStat(pid);
  return stat === null ? -1 : Number(statFields(stat)[19]);
}

/** The process recorded as (pid, start) is still the same, running process. */
export function sameProcess(pid: number, start: number | undefined): boolean {
  if (!pidAlive(pid)) return false;
  return start === undefined || processStart(pid) === start;
}

/**
 * The pid is a live process. A zombie (Z: exited, not yet reaped by its parent) or a dying
 * one (X) is not: kill(pid, 0) still succeeds on them, so /proc/PID/stat decides.
 */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = readStat(pid);
  if (stat === null) return existsSync('/proc/self/stat') ? false : true; // no procfs: trust kill()
  const state = parseProcState(stat);
  return state !== 'Z' && state !== 'X' && state !== 'x';
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
/** Block this thread for `ms` (teardown is synchronous: it also runs from exit paths). */
export function sleepSync(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/** How long a helper process gets after SIGTERM before it is SIGKILLed. */
export const PID_GRACE_MS = 500;

export class Resources {
  readonly list: Resource[] = [];
  readonly file: string;

  constructor(
    readonly instance: string,
    role: string,
  ) {
    mkdirSync(RUN_DIR, { recursive: true, mode: 0o755 });
    this.file = `${RUN_DIR}/${instance}.${role}.json`;
  }

  /** Read a leftover state file: null when none, or when its owner is still running. */
  static leftover(file: string): StateFile | null {
    let state: StateFile;
    try {
      state = JSON.parse(readFileSync(file, 'utf8')) as StateFile;
    } catch {
      return null;
    }
    return state;
  }

  add(r: Resource): void {
    this.list.push(r);
    this.save();
  }

  forget(pred: (r: Resource) => boolean): void {
    const i = this.list.findIndex(pred);
    if (i >= 0) this.list.splice(i, 1);
    this.save();
  }

  save(): void {
    const state: StateFile = { pid: process.pid, pidStart: processStart(process.pid), instance: this.instance, startedAt: new Date().toISOString(), resources: this.list };
    writeFileSync(`${this.file}.tmp`, JSON.stringify(state, null, 1));
    renameSync(`${this.file}.tmp`, this.file);
  }

  /**
   * Remove everything, newest first, by `deadline` (see removeResources). Returns problems
   * (never throws). What could not be removed stays in the state file, so the next start
   * (or the outer process) removes it; with nothing left the file goes.
   */
  teardown(deadline = Infinity): string[] {
    const { problems, left } = removeResources(this.list.slice().reverse(), deadline);
    this.list.length = 0;
    if (left.length === 0) rmSync(this.file, { force: true });
    else {
      this.list.push(...left.reverse());
      this.save();
    }
    return problems;
  }
}

/**
 * SIGTERM the recorded helper processes, wait up to PID_GRACE_MS for them to go, then
 * SIGKILL the rest. Returns problem texts.
 */
function stopProcesses(procs: Extract<Resource, { type: 'pid' }>[]): string[] {
  const running = () => procs.filter((r) => sameProcess(r.pid, r.start));
  const signal = (list: typeof procs, sig: NodeJS.Signals) => {
    for (const r of list) {
      try {
        process.kill(r.pid, sig);
      } catch {
        /* gone meanwhile */
      }
    }
  };
  signal(running(), 'SIGTERM');
  for (const deadline = Date.now() + PID_GRACE_MS; running().length > 0 && Date.now() < deadline; ) sleepSync(10);
  const stubborn = running();
  if (stubborn.length === 0) return [];
  signal(stubborn, 'SIGKILL');
  for (const deadline = Date.now() + 200; running().length > 0 && Date.now() < deadline; ) sleepSync(10);
  return stubborn.map((r) => `process ${r.pid} (${r.what}): ${sameProcess(r.pid, r.start) ? 'still running after SIGKILL' : `did not exit within ${PID_GRACE_MS} ms of SIGTERM; killed`}`);
}

/**
 * Remove resources in the given order (processes first, together). `deadline` (ms since the
 * epoch) bounds the whole removal: each `ip` call gets at most what is left (and at least
 * 100 ms). Returns the problems and the resources that are still there (never throws).
 */
export function removeResources(resources: Resource[], deadline = Infinity): { problems: string[]; left: Resource[] } {
  const procs = resources.filter((r) => r.type === 'pid');
  const problems = stopProcesses(procs);
  const left: Resource[] = procs.filter((r) => sameProcess(r.pid, r.start));
  const ipTimeout = () => Math.max(100, Math.min(IP_TEARDOWN_TIMEOUT_MS, deadline - Date.now()));
  for (const r of resources) {
    if (r.type === 'link') {
      if (r.ns !== undefined && !netnsExists(r.ns)) continue; // gone with its namespace
      if (r.ns === undefined && (r.createdIn === undefined || r.createdIn !== netnsInode('/proc/self/ns/net'))) {
        problems.push(`link ${r.name}: not removed from here (it was created in another namespace)`);
        continue;
      }
      const err = ipQuiet(['link', 'del', 'dev', r.name], r.ns, ipTimeout());
      if (err !== null && !/Cannot find device|does not exist/.test(err)) {
        problems.push(err);
        left.push(r);
      }
    } else if (r.type === 'netns') {
      if (!netnsExists(r.name)) continue;
      const err = ipQuiet(['netns', 'del', r.name], undefined, ipTimeout());
      if (err !== null) {
        problems.push(err);
        left.push(r);
      }
    }
  }
  return { problems, left };
}

function describeResource(r: Resource): string {
  return r.type === 'pid' ? `process ${r.pid} (${r.what})` : r.type === 'netns' ? `namespace ${r.name}` : `link ${r.name}${r.ns ? ` in ${r.ns}` : ''}`;
}

/**
 * Clean up after an earlier run of the same instance that died without tearing down.
 * Returns what was done; throws when that run is still alive.
 */
export function cleanLeftovers(instance: string, role: string): string[] {
  const file = `${RUN_DIR}/${instance}.${role}.json`;
  const state = Resources.leftover(file);
  if (state === null) return [];
  if (state.pid !== process.pid && sameProcess(state.pid, state.pidStart))
    throw new Error(`instance '${instance}' is already running (pid ${state.pid}); stop it first or pick another instance name`);
  const done = state.resources.map(describeResource);
  const { left } = removeResources(state.resources.slice().reverse());
  if (left.length > 0) throw new Error(`leftovers of an earlier run of '${instance}' could not all be removed: ${left.map(describeResource).join(', ')} (see ${file})`);
  rmSync(file, { force: true });
  return done;
}
