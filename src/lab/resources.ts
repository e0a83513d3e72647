/*
 * Bookkeeping of everything an instance creates (namespaces, links, helper processes),
 * persisted to /run/tapbridge/<instance>.state.json so that teardown — on exit, on an
 * error half-way through setup, or on the next start after a crash — removes exactly
 * what was created, in reverse order, and nothing else.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { ipQuiet, netnsExists, netnsInode } from './ip.js';

export const RUN_DIR = process.env.TAPBRIDGE_RUN_DIR ?? '/run/tapbridge';

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

/** Start time of a process in clock ticks since boot (/proc/PID/stat field 22), or -1. */
export function processStart(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[19]);
  } catch {
    return -1;
  }
}

/** The process recorded as (pid, start) is still the same, running process. */
export function sameProcess(pid: number, start: number | undefined): boolean {
  if (!pidAlive(pid)) return false;
  return start === undefined || processStart(pid) === start;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

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

  /** Remove everything, newest first. Returns problems (never throws). */
  teardown(): string[] {
    const problems = removeResources(this.list.slice().reverse());
    this.list.length = 0;
    rmSync(this.file, { force: true });
    return problems;
  }
}

export function removeResources(resources: Resource[]): string[] {
  const problems: string[] = [];
  for (const r of resources) {
    if (r.type === 'pid') {
      if (sameProcess(r.pid, r.start)) {
        try {
          process.kill(r.pid, 'SIGTERM');
        } catch {
          /* gone meanwhile */
        }
      }
    } else if (r.type === 'link') {
      if (r.ns !== undefined && !netnsExists(r.ns)) continue; // gone with its namespace
      if (r.ns === undefined && (r.createdIn === undefined || r.createdIn !== netnsInode('/proc/self/ns/net'))) {
        problems.push(`link ${r.name}: not removed from here (it was created in another namespace)`);
        continue;
      }
      const err = ipQuiet(['link', 'del', 'dev', r.name], r.ns);
      if (err !== null && !/Cannot find device|does not exist/.test(err)) problems.push(err);
    } else if (r.type === 'netns') {
      if (!netnsExists(r.name)) continue;
      const err = ipQuiet(['netns', 'del', r.name]);
      if (err !== null) problems.push(err);
    }
  }
  return problems;
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
  const done = state.resources.map((r) => (r.type === 'pid' ? `process ${r.pid} (${r.what})` : r.type === 'netns' ? `namespace ${r.name}` : `link ${r.name}${r.ns ? ` in ${r.ns}` : ''}`));
  removeResources(state.resources.slice().reverse());
  rmSync(file, { force: true });
  return done;
}
