/*
 * Test helper for the experiment integration tests: runs a real tapbridge instance
 * (`node bin/tapbridge.js run --config F --json-logs`) in throwaway namespaces named
 * tbx-<pid>-<tag>-*, with instance name tbx<pid><tag>; red 10.100.0.2 and blue 10.100.0.3 on
 * br0 with the gateway 10.100.0.1. Everything lives in namespaces the instance creates (its
 * own "host" namespace included); stop() sends SIGTERM and then removes anything left with
 * the test's prefix. Needs root and /dev/net/tun (skipReason() says why not).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bin', 'tapbridge.js'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('repo root not found');
    dir = parent;
  }
}

export const ROOT = repoRoot();
export const BIN = join(ROOT, 'bin', 'tapbridge.js');
export const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => existsSync(p)) ?? 'ip';

export function skipReason(tools: string[] = []): string | null {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not running as root';
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing';
  for (const t of tools) if (!['/usr/bin', '/usr/sbin', '/bin', '/sbin', '/usr/local/bin'].some((d) => existsSync(join(d, t)))) return `${t} not installed`;
  return null;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Run a command; never throws for a non-zero exit (the code is returned). */
export async function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<RunResult> {
  try {
    const { stdout, stderr } = await execFileP(cmd, args, { timeout: timeoutMs, maxBuffer: 64 << 20 });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string; code?: number | string };
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? e.message, code: typeof e.code === 'number' ? e.code : 1 };
  }
}

export interface InstanceOptions {
  /** Short tag making names unique inside this test process (letters/digits). */
  tag: string;
  /** The `experiment:` section. */
  experiment?: unknown;
  /** Ports have virtio offload (GSO) unless false. */
  offload?: boolean;
}

export class Instance {
  readonly name: string;
  readonly prefix: string;
  readonly dir: string;
  readonly configFile: string;
  readonly socket: string;
  private child: ChildProcess | null = null;
  log = '';

  constructor(readonly opts: InstanceOptions) {
    this.name = `tbx${process.pid}${opts.tag}`;
    this.prefix = `tbx-${process.pid}-${opts.tag}`;
    this.dir = mkdtempSync(join(tmpdir(), `${this.prefix}-`));
    this.configFile = join(this.dir, 'config.json');
    this.socket = `/run/tapbridge/${this.name}.sock`;
  }

  ns(role: 'red' | 'blue' | 'host'): string {
    return `${this.prefix}-${role}`;
  }

  config(): object {
    const offload = this.opts.offload ?? true;
    return {
      instance: this.name,
      namespace: { name: this.ns('host'), create: true },
      bridges: [
        {
          name: 'br0',
          gateway: { address: '10.100.0.1/24' },
          ports: [
            { name: 'red', type: 'namespace', namespace: this.ns('red'), addresses: ['10.100.0.2/24'], defaultRoute: '10.100.0.1', offload },
            { name: 'blue', type: 'namespace', namespace: this.ns('blue'), addresses: ['10.100.0.3/24'], defaultRoute: '10.100.0.1', offload },
          ],
        },
      ],
      ...(this.opts.experiment !== undefined ? { experiment: this.opts.experiment } : {}),
    };
  }

  /** Start and wait for "tapbridge ready" (rejects with the log if it exits first). */
  async start(timeoutMs = 30_000): Promise<void> {
    writeFileSync(this.configFile, JSON.stringify(this.config(), null, 2));
    const child = spawn(process.execPath, [BIN, 'run', '--config', this.configFile, '--json-logs'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`instance ${this.name} not ready within ${timeoutMs} ms:\n${this.log}`)), timeoutMs);
      const onData = (d: Buffer) => {
        this.log += d.toString();
        if (this.log.includes('tapbridge ready')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`instance ${this.name} exited (code ${code}) before ready:\n${this.log}`));
      });
    });
  }

  /** SIGTERM, wait, SIGKILL if needed; then remove anything left with our prefix. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child !== null && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(killer);
    }
    const left = (await run(IP, ['netns', 'list'])).stdout
      .split('\n')
      .map((l) => l.split(' ')[0])
      .filter((n) => n.startsWith(`${this.prefix}-`));
    for (const n of left) await run(IP, ['netns', 'del', n]);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** `tapbridge ctl --socket S ...args` */
  ctl(...args: string[]): Promise<RunResult> {
    return run(process.execPath, [BIN, 'ctl', '--socket', this.socket, ...args]);
  }

  async ctlJson<T>(...args: string[]): Promise<T> {
    const r = await this.ctl('--json', ...args);
    if (r.code !== 0) throw new Error(`ctl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  }

  /** Run a command inside one of the instance's namespaces. */
  exec(role: 'red' | 'blue' | 'host', cmd: string, args: string[], timeoutMs = 30_000): Promise<RunResult> {
    return run(IP, ['netns', 'exec', this.ns(role), cmd, ...args], timeoutMs);
  }

  /** Raw HTTP request on the control socket (body sent verbatim). */
  http(method: string, path: string, body?: string): Promise<{ status: number; text: string; json: unknown }> {
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: this.socket, method, path, headers: body !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {} }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let json: unknown = null;
          try {
            json = JSON.parse(text);
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode ?? 0, text, json });
        });
      });
      req.on('error', reject);
      req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
      req.end(body);
    });
  }
}

export interface PingResult {
  transmitted: number;
  received: number;
  avgMs: number | null;
}

export async function ping(inst: Instance, from: 'red' | 'blue' | 'host', to: string, count: number, intervalS = 0.2, waitS = 1): Promise<PingResult> {
  const r = await inst.exec(from, 'ping', ['-n', '-c', String(count), '-i', String(intervalS), '-W', String(waitS), to], (count * intervalS + waitS + 10) * 1000);
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  const rtt = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
  return { transmitted: m ? Number(m[1]) : 0, received: m ? Number(m[2]) : 0, avgMs: rtt ? Number(rtt[1]) : null };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
