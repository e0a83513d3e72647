/*
 * Start and stop a tapbridge instance for a benchmark: write the config to a temp file,
 * run `node bin/tapbridge.js run --config F --json-logs` as a child (its own process group),
 * wait for the "tapbridge ready" log line, and on stop send SIGTERM and wait for
 * "everything created was removed". Whatever is still there afterwards (the namespaces the
 * config names, a hung process) is removed here, and reported.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onCleanup } from './cleanup.js';
import { deleteNetns, netnsExists } from './netns.js';
import { run, sleep, startBackground, type Background } from './proc.js';

/** Repository root (dist/bench/lib/ -> ../../..). */
export const REPO_ROOT = resolve(fileURLToPath(new URL('../../../', import.meta.url)));
export const TAPBRIDGE_BIN = join(REPO_ROOT, 'bin', 'tapbridge.js');

export interface TapbridgeOptions {
  /** The config object (written as JSON; tapbridge's loader reads YAML, a JSON superset). */
  config: Record<string, unknown> & { instance: string };
  /** Namespaces the config makes tapbridge create: verified gone after stop, removed if not. */
  namespaces: string[];
  readyTimeoutMs?: number;
  /** Forward each log line here (e.g. for --verbose). */
  onLog?: (line: string) => void;
  /** Hard upper bound on the process lifetime (ms). */
  maxLifetimeMs?: number;
}

export interface StopReport {
  exitCode: number | null;
  signal: string | null;
  cleanExit: boolean;
  /** Things tapbridge left behind that this module had to remove (a bug if non-empty). */
  leftovers: string[];
  warnings: string[];
}

export class TapbridgeInstance {
  private stopped: Promise<StopReport> | null = null;

  constructor(
    readonly proc: Background,
    readonly configFile: string,
    readonly opts: TapbridgeOptions,
    private readonly tmpDir: string,
  ) {}

  get socket(): string {
    return (this.opts.config.socket as string | undefined) ?? `/run/tapbridge/${this.opts.config.instance}.sock`;
  }

  /** `tapbridge ctl --json <args>` against this instance; parsed JSON. */
  async ctl(args: string[], timeoutMs = 10_000): Promise<unknown> {
    const r = await run(process.execPath, [TAPBRIDGE_BIN, 'ctl', '--socket', this.socket, '--json', ...args], { timeoutMs });
    return JSON.parse(r.stdout);
  }

  /** Log lines at warn level or above (JSON logs: level >= 40). */
  warnings(): string[] {
    const out: string[] = [];
    for (const line of this.proc.stdout.split('\n')) {
      try {
        const o = JSON.parse(line) as { level?: number; msg?: string };
        if ((o.level ?? 0) >= 40) out.push(line);
      } catch {
        /* not JSON */
      }
    }
    return out;
  }

  /** SIGTERM, wait for a clean exit (bounded), then verify and clean up. Idempotent. */
  stop(graceMs = 20_000): Promise<StopReport> {
    this.stopped ??= (async () => {
      const p = this.proc;
      p.signal('SIGTERM');
      const timer = setTimeout(() => void p.stop('SIGKILL', 0), graceMs);
      const { code, signal } = await p.exited;
      clearTimeout(timer);
      const leftovers: string[] = [];
      for (const ns of this.opts.namespaces) {
        if (netnsExists(ns)) {
          leftovers.push(`namespace ${ns}`);
          await deleteNetns(ns).catch((e: Error) => leftovers.push(`(could not delete ${ns}: ${e.message})`));
        }
      }
      rmSync(this.tmpDir, { recursive: true, force: true });
      const cleanExit = code === 0 && /everything created was removed/.test(p.stdout);
      return { exitCode: code, signal, cleanExit, leftovers, warnings: this.warnings() };
    })();
    return this.stopped;
  }
}

/** Start tapbridge and wait until it logs "tapbridge ready". Registers its stop for cleanup. */
/**
 * Extra node flags for the tapbridge process, from TB_NODE_ARGS (space-separated), e.g.
 * `TB_NODE_ARGS="--trace-gc"` or `"--cpu-prof --cpu-prof-dir=/tmp/prof"` when profiling a run
 * (node refuses --cpu-prof in NODE_OPTIONS).
 */
function nodeArgsFromEnv(): string[] {
  return (process.env.TB_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
}

export async function startTapbridge(opts: TapbridgeOptions): Promise<TapbridgeInstance> {
  for (const ns of opts.namespaces) if (netnsExists(ns)) throw new Error(`namespace ${ns} exists already; not starting tapbridge over it`);
  const tmpDir = mkdtempSync(join(tmpdir(), 'tbb-'));
  const configFile = join(tmpDir, `${opts.config.instance}.json`);
  writeFileSync(configFile, JSON.stringify(opts.config, null, 2));
  const proc = startBackground(
    `tapbridge ${opts.config.instance}`,
    process.execPath,
    [...nodeArgsFromEnv(), TAPBRIDGE_BIN, 'run', '--config', configFile, '--json-logs'],
    opts.maxLifetimeMs ?? 30 * 60_000,
  );
  if (opts.onLog) proc.onLine = opts.onLog;
  const inst = new TapbridgeInstance(proc, configFile, opts, tmpDir);
  onCleanup(`stop tapbridge ${opts.config.instance}`, async () => {
    await inst.stop();
  });
  try {
    await proc.waitForLine(/tapbridge ready/, opts.readyTimeoutMs ?? 30_000);
  } catch (err) {
    await inst.stop(5_000);
    throw err;
  }
  // The devices are up; give the namespaces' kernels a moment (link up, DAD-free IPv4).
  await sleep(100);
  return inst;
}
