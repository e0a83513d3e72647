/*
 * Run tapbridge from integration tests.
 *
 *   const tb = await Tapbridge.start(config);        // `tapbridge run --config F --json-logs`
 *   await tb.ctlJson('ports');                         // `tapbridge ctl --socket S --json ports`
 *   const { code } = await tb.stop();                  // SIGTERM, wait for the exit
 *   after(() => cleanupAll());                         // kills and removes whatever is left
 *
 * The config is written to a temp dir named tbt-<pid>-*, so a crashed run's processes can be
 * recognised later (scripts/run-tests.js). Every namespace the config makes tapbridge create
 * is remembered, and cleanupAll() removes them even when a test failed half-way; it first
 * SIGKILLs the outer and the inner process (the inner pid comes from the state file).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pidAlive } from '../../src/lab/resources.js';
import { NSENTER, PREFIX, ROOT, TAPBRIDGE, deleteNamespacesSync, describeRun, run, waitFor, type RunResult } from './sys.js';

export const RUN_DIR = process.env.TAPBRIDGE_RUN_DIR ?? '/run/tapbridge';
export const READY_TIMEOUT_MS = 20_000;

/** Config as a plain object (validated by tapbridge itself, so tests can also pass bad ones). */
export type ConfigDoc = Record<string, unknown> & { instance?: string };

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LogLine {
  level?: number;
  msg?: string;
  [k: string]: unknown;
}

const tempDirs = new Set<string>();
const namespaces = new Set<string>();
const instances = new Set<Tapbridge>();

/** A fresh temp dir tbt-<pid>-XXXXXX (removed by cleanupAll). */
export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), PREFIX));
  tempDirs.add(d);
  return d;
}

/** Remember a namespace for cleanupAll (e.g. one the test created itself). */
export function trackNamespace(name: string): void {
  namespaces.add(name);
}

/** Namespaces tapbridge would create for this config (and delete on exit). */
export function namespacesOf(cfg: ConfigDoc): string[] {
  const out: string[] = [];
  const ns = cfg.namespace as { name?: string; create?: boolean } | undefined;
  if (ns?.name !== undefined && ns.create !== false) out.push(ns.name);
  for (const b of (cfg.bridges as { ports?: { type?: string; namespace?: string; createNamespace?: boolean }[] }[] | undefined) ?? [])
    for (const p of b.ports ?? []) if (p.type === 'namespace' && p.namespace !== undefined && p.createNamespace !== false) out.push(p.namespace);
  for (const v of ((cfg.lab as { veths?: { namespace?: string }[] } | undefined)?.veths ?? [])) if (v.namespace !== undefined) out.push(v.namespace);
  return out;
}

/** Write a config (JSON, which is YAML) to a temp file; returns its path. */
export function writeConfig(cfg: ConfigDoc | string, name = 'config.yaml'): string {
  const f = join(tempDir(), name);
  writeFileSync(f, typeof cfg === 'string' ? cfg : JSON.stringify(cfg, null, 2));
  return f;
}

export function socketPath(instance: string): string {
  return `${RUN_DIR}/${instance}.sock`;
}
export function stateFile(instance: string, role: 'inner' | 'outer'): string {
  return `${RUN_DIR}/${instance}.${role}.json`;
}
/** Files tapbridge keeps for an instance while it runs (socket + state files) that exist now. */
export function runFiles(instance: string): string[] {
  return [socketPath(instance), stateFile(instance, 'inner'), stateFile(instance, 'outer'), `${stateFile(instance, 'inner')}.tmp`, `${stateFile(instance, 'outer')}.tmp`].filter((f) => existsSync(f));
}

/** pid recorded in a state file, or null. */
export function statePid(instance: string, role: 'inner' | 'outer'): number | null {
  try {
    const s = JSON.parse(readFileSync(stateFile(instance, role), 'utf8')) as { pid?: unknown };
    return typeof s.pid === 'number' ? s.pid : null;
  } catch {
    return null;
  }
}

/** Resources listed in a state file ([] when none). */
export function stateResources(instance: string, role: 'inner' | 'outer'): { type: string; name?: string; pid?: number; what?: string; ns?: string }[] {
  try {
    return (JSON.parse(readFileSync(stateFile(instance, role), 'utf8')) as { resources?: [] }).resources ?? [];
  } catch {
    return [];
  }
}

/** A live process (a zombie is not): the same check tapbridge makes (src/lab/resources.ts). */
export { pidAlive };

/** Live processes (not zombies, not this one) whose command line contains `text`. */
export function processesMentioning(text: string): { pid: number; cmdline: string }[] {
  const out: { pid: number; cmdline: string }[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' ').trim();
    } catch {
      continue;
    }
    if (cmdline.includes(text) && pidAlive(Number(d))) out.push({ pid: Number(d), cmdline });
  }
  return out;
}

/** Run the CLI once (not `run`): `node bin/tapbridge.js ARGS`. */
export function cli(args: string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
  return run(process.execPath, [TAPBRIDGE, ...args], { timeoutMs: opts.timeoutMs ?? 20_000 });
}

export interface StartOptions {
  /** Run the (outer) process inside this existing namespace instead of the test's own. */
  netns?: string;
  /** Extra CLI args after `run --config F --json-logs`. */
  args?: string[];
  readyTimeoutMs?: number;
  /** Extra environment variables (e.g. TAPBRIDGE_TEST_HOOKS=1). */
  env?: Record<string, string>;
}

export class Tapbridge {
  readonly child: ChildProcess;
  readonly instance: string;
  readonly socket: string;
  readonly configFile: string;
  readonly namespaces: string[];
  /** stdout + stderr, interleaved as received. */
  output = '';
  exitInfo: Exit | null = null;
  readonly exited: Promise<Exit>;

  private constructor(readonly config: ConfigDoc, configFile: string, opts: StartOptions) {
    this.instance = config.instance ?? 'tapbridge';
    this.socket = socketPath(this.instance);
    this.configFile = configFile;
    this.namespaces = namespacesOf(config);
    for (const n of this.namespaces) namespaces.add(n);
    const argv = [TAPBRIDGE, 'run', '--config', configFile, '--json-logs', ...(opts.args ?? [])];
    const spawnOpts = { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] as ('ignore' | 'pipe')[], env: { ...process.env, ...opts.env } };
    this.child =
      opts.netns === undefined
        ? spawn(process.execPath, argv, spawnOpts)
        : spawn(NSENTER, [`--net=/run/netns/${opts.netns}`, '--', process.execPath, ...argv], spawnOpts);
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.output += d));
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.output += d));
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
      this.child.on('error', (err) => {
        this.output += `\n[spawn error] ${err.message}\n`;
        this.exitInfo = { code: null, signal: null };
        resolve(this.exitInfo);
      });
    });
    instances.add(this);
  }

  /** Start `tapbridge run` with this config and wait for "tapbridge ready" (or fail with its output). */
  static async start(config: ConfigDoc, opts: StartOptions = {}): Promise<Tapbridge> {
    const tb = new Tapbridge(config, writeConfig(config), opts);
    await tb.waitForReady(opts.readyTimeoutMs ?? READY_TIMEOUT_MS);
    return tb;
  }

  /** Start without waiting (for tests of failing starts). */
  static spawn(config: ConfigDoc, opts: StartOptions = {}): Tapbridge {
    return new Tapbridge(config, writeConfig(config), opts);
  }

  /** JSON log lines printed so far. */
  logs(): LogLine[] {
    const out: LogLine[] = [];
    for (const line of this.output.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        out.push(JSON.parse(line) as LogLine);
      } catch {
        /* a partial line */
      }
    }
    return out;
  }

  describe(): string {
    return `tapbridge instance ${this.instance} (pid ${this.child.pid}${this.exitInfo ? `, exited ${JSON.stringify(this.exitInfo)}` : ''}); output:\n${this.output.trimEnd() || '(none)'}`;
  }

  async waitForReady(timeoutMs = READY_TIMEOUT_MS): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.logs().find((l) => typeof l.msg === 'string' && l.msg.includes('tapbridge ready'));
      if (line !== undefined) return line;
      if (this.exitInfo !== null) throw new Error(`tapbridge exited before it was ready\n${this.describe()}`);
      if (Date.now() >= deadline) throw new Error(`tapbridge was not ready within ${timeoutMs} ms\n${this.describe()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** `tapbridge ctl --socket S ARGS` (not --json). */
  ctl(...args: string[]): Promise<RunResult> {
    return cli(['ctl', '--socket', this.socket, ...args]);
  }

  /** `tapbridge ctl --socket S --json ARGS`, parsed; throws with the output when it fails. */
  async ctlJson<T = unknown>(...args: string[]): Promise<T> {
    const r = await cli(['ctl', '--socket', this.socket, '--json', ...args]);
    if (r.code !== 0) throw new Error(`ctl failed:\n${describeRun(r)}`);
    try {
      return JSON.parse(r.stdout) as T;
    } catch {
      throw new Error(`ctl printed no JSON:\n${describeRun(r)}`);
    }
  }

  /** SIGTERM and wait for the exit (SIGKILL and fail after `timeoutMs`). */
  async stop(timeoutMs = 20_000): Promise<Exit> {
    if (this.exitInfo !== null) return this.exitInfo;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const e = await this.exited;
    clearTimeout(t);
    if (e.signal === 'SIGKILL') throw new Error(`tapbridge did not exit within ${timeoutMs} ms of SIGTERM\n${this.describe()}`);
    return e;
  }

  /** SIGKILL the outer process and the inner one (from its state file), like a crash. */
  async killHard(): Promise<{ outer: number | undefined; inner: number | null }> {
    const inner = statePid(this.instance, 'inner');
    const outer = this.child.pid;
    // the outer first: it would otherwise notice the inner's death and clean up itself
    if (this.exitInfo === null) this.child.kill('SIGKILL');
    await this.exited;
    if (inner !== null && inner !== outer && pidAlive(inner)) process.kill(inner, 'SIGKILL');
    if (inner !== null) await waitFor(`inner pid ${inner} to die`, () => !pidAlive(inner), { timeoutMs: 5000, intervalMs: 50 });
    return { outer, inner };
  }
}

/**
 * Kill every instance still running (outer + inner), delete every namespace tests made or
 * made tapbridge make, remove their run files and temp dirs. Returns what had to be done
 * (useful in messages); never throws.
 */
export async function cleanupAll(): Promise<string[]> {
  const done: string[] = [];
  for (const tb of instances) {
    const inner = statePid(tb.instance, 'inner');
    if (tb.exitInfo === null) {
      tb.child.kill('SIGKILL');
      done.push(`killed tapbridge ${tb.instance} (pid ${tb.child.pid})`);
      await Promise.race([tb.exited, new Promise((r) => setTimeout(r, 5000))]);
    }
    if (inner !== null && inner !== tb.child.pid && pidAlive(inner)) {
      try {
        process.kill(inner, 'SIGKILL');
        done.push(`killed inner tapbridge ${tb.instance} (pid ${inner})`);
      } catch {
        /* gone */
      }
    }
    for (const role of ['inner', 'outer'] as const)
      for (const r of stateResources(tb.instance, role))
        if (r.type === 'pid' && r.pid !== undefined && pidAlive(r.pid)) {
          try {
            process.kill(r.pid, 'SIGKILL');
            done.push(`killed ${r.what ?? 'process'} (pid ${r.pid})`);
          } catch {
            /* gone */
          }
        }
    for (const f of runFiles(tb.instance)) {
      rmSync(f, { force: true });
      done.push(`removed ${f}`);
    }
  }
  instances.clear();
  const present = [...namespaces].filter((n) => existsSync(`/run/netns/${n}`));
  const errors = deleteNamespacesSync(present);
  for (const n of present) done.push(`deleted namespace ${n}`);
  done.push(...errors);
  namespaces.clear();
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
  return done;
}

// Last resort if the test process exits without running after() hooks.
process.on('exit', () => {
  for (const tb of instances) if (tb.exitInfo === null) tb.child.kill('SIGKILL');
  deleteNamespacesSync(namespaces);
});
