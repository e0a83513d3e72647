/*
 * Child processes for benchmarks: every command runs with a timeout, and every background
 * process is tracked so `killAll()` can stop what this run started (and nothing else).
 * Background processes get their own process group (detached) so a kill reaches their
 * children too (`ip netns exec` -> iperf3), addressed by the group id we were handed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

export const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => existsSync(p)) ?? 'ip';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface RunOptions {
  /** Kill (SIGKILL to the process group) after this many ms. Required: nothing unbounded. */
  timeoutMs: number;
  /** Throw on a non-zero exit or a timeout (default true). */
  check?: boolean;
  input?: string;
  /** Environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly result: RunResult,
  ) {
    const why = result.timedOut ? 'timed out' : `exit ${result.code ?? result.signal}`;
    super(`${command}: ${why}: ${(result.stderr || result.stdout).trim().slice(-800)}`);
    this.name = 'CommandError';
  }
}

const live = new Set<ChildProcess>();

function killGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, sig); // its own group (detached): reaches ip-netns-exec's child too
  } catch {
    try {
      child.kill(sig);
    } catch {
      /* gone */
    }
  }
}

export function commandLine(cmd: string, args: string[]): string {
  return [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** Run a command to completion (bounded by timeoutMs). */
export function run(cmd: string, args: string[], opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env: opts.env });
    live.add(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin!.on('error', () => {});
    child.stdin!.end(opts.input ?? '');
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child, 'SIGKILL');
    }, opts.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      live.delete(child);
      reject(new Error(`${commandLine(cmd, args)}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      const r: RunResult = { code, signal, stdout, stderr, timedOut };
      if ((opts.check ?? true) && (timedOut || code !== 0)) reject(new CommandError(commandLine(cmd, args), r));
      else resolve(r);
    });
  });
}

/** Run inside a network namespace (`ip netns exec NS cmd ...`). */
export function runIn(ns: string, cmd: string, args: string[], opts: RunOptions): Promise<RunResult> {
  return run(IP, ['netns', 'exec', ns, cmd, ...args], opts);
}

/** A background process with its output collected, and a way to wait for a line. */
export class Background {
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly lineWaiters: { re: RegExp; resolve: (line: string) => void }[] = [];
  private partial = '';
  /** Called for every complete stdout line (e.g. to forward logs). */
  onLine: ((line: string) => void) | null = null;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    /** Hard limit: the process group is killed after this many ms. */
    maxLifetimeMs: number,
  ) {
    live.add(child);
    const hard = setTimeout(() => killGroup(child, 'SIGKILL'), maxLifetimeMs);
    hard.unref();
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      this.stdout += d;
      if (this.stdout.length > 4_000_000) this.stdout = this.stdout.slice(-1_000_000);
      this.partial += d;
      let nl: number;
      while ((nl = this.partial.indexOf('\n')) >= 0) {
        const line = this.partial.slice(0, nl);
        this.partial = this.partial.slice(nl + 1);
        this.onLine?.(line);
        for (let i = this.lineWaiters.length - 1; i >= 0; i--) {
          if (this.lineWaiters[i].re.test(line)) {
            this.lineWaiters[i].resolve(line);
            this.lineWaiters.splice(i, 1);
          }
        }
      }
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d;
      if (this.stderr.length > 1_000_000) this.stderr = this.stderr.slice(-500_000);
    });
    this.exited = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        clearTimeout(hard);
        live.delete(child);
        resolve({ code, signal });
      });
      child.on('error', () => {
        clearTimeout(hard);
        live.delete(child);
        resolve({ code: null, signal: null });
      });
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolve with the first stdout line matching `re`; reject on exit or after timeoutMs. */
  waitForLine(re: RegExp, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${this.name}: no line matching ${re} within ${timeoutMs} ms; stderr: ${this.stderr.trim().slice(-800)}`));
      }, timeoutMs);
      const waiter = {
        re,
        resolve: (line: string) => {
          cleanup();
          resolve(line);
        },
      };
      const cleanup = () => {
        clearTimeout(timer);
        const i = this.lineWaiters.indexOf(waiter);
        if (i >= 0) this.lineWaiters.splice(i, 1);
      };
      this.lineWaiters.push(waiter);
      void this.exited.then(({ code, signal }) => {
        if (this.lineWaiters.includes(waiter)) {
          cleanup();
          reject(new Error(`${this.name} exited (${code ?? signal}) before printing ${re}; stderr: ${this.stderr.trim().slice(-800)}; stdout: ${this.stdout.trim().slice(-800)}`));
        }
      });
    });
  }

  /** Send `sig` to the process (the leader only, so it can tear down itself). */
  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  /** Stop: `sig` to the group, then SIGKILL to the group after graceMs. Resolves on exit. */
  async stop(sig: NodeJS.Signals = 'SIGTERM', graceMs = 3000): Promise<void> {
    if (!this.running) return;
    killGroup(this.child, sig);
    const t = setTimeout(() => killGroup(this.child, 'SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(t);
  }
}

/** Start a background process in its own process group, stdin closed. */
export function startBackground(name: string, cmd: string, args: string[], maxLifetimeMs: number, env?: NodeJS.ProcessEnv): Background {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: env ?? process.env });
  return new Background(name, child, maxLifetimeMs);
}

/** SIGKILL every process group this module started that is still running. */
export function killAll(): number {
  let n = 0;
  for (const c of live) {
    killGroup(c, 'SIGKILL');
    n++;
  }
  return n;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
