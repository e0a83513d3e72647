/*
 * Test helper for the experiment integration tests, on top of the shared helpers
 * (tapbridge.ts, sys.ts): an instance with red 10.100.0.2 and blue 10.100.0.3 on br0
 * (gateway 10.100.0.1), everything in namespaces it creates, named tbt-<pid>-x<tag>-*
 * (PREFIX: scripts/run-tests.js removes leftovers of crashed runs), instance name
 * tbt-<pid>-x<tag>. stop() sends SIGTERM; call cleanupAll() (tapbridge.ts) in a top-level
 * after() to remove whatever a failed test left.
 */
import { request } from 'node:http';
import { IP, PREFIX, TAPBRIDGE, run as sysRun } from './sys.js';
import { Tapbridge, tempDir, writeConfig } from './tapbridge.js';

export { IP, TAPBRIDGE as BIN };

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Run a command with a time limit; never throws (code -1 when killed or not started). */
export async function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<RunResult> {
  const r = await sysRun(cmd, args, { timeoutMs });
  return { stdout: r.stdout, stderr: r.stderr, code: r.code ?? -1 };
}

export interface InstanceOptions {
  /** Short tag making names unique inside this test process (letters/digits). */
  tag: string;
  /** The `experiment:` section. */
  experiment?: unknown;
}

export class Instance {
  readonly name: string;
  readonly prefix: string;
  readonly socket: string;
  private tb: Tapbridge | null = null;
  private _dir: string | null = null;

  constructor(readonly opts: InstanceOptions) {
    this.name = `${PREFIX}x${opts.tag}`;
    this.prefix = this.name;
    this.socket = `/run/tapbridge/${this.name}.sock`;
  }

  /** A temp dir of this instance (created on first use, removed by cleanupAll). */
  get dir(): string {
    this._dir ??= tempDir();
    return this._dir;
  }

  ns(role: 'red' | 'blue' | 'host'): string {
    return `${this.prefix}-${role}`;
  }

  config(): Record<string, unknown> {
    return {
      instance: this.name,
      namespace: { name: this.ns('host'), create: true },
      bridges: [
        {
          name: 'br0',
          gateway: { address: '10.100.0.1/24' },
          ports: [
            { name: 'red', type: 'namespace', namespace: this.ns('red'), addresses: ['10.100.0.2/24'], defaultRoute: '10.100.0.1' },
            { name: 'blue', type: 'namespace', namespace: this.ns('blue'), addresses: ['10.100.0.3/24'], defaultRoute: '10.100.0.1' },
          ],
        },
      ],
      ...(this.opts.experiment !== undefined ? { experiment: this.opts.experiment } : {}),
    };
  }

  /** The config written to a file (for `run` without the helper). */
  configFile(): string {
    return writeConfig(this.config(), `${this.opts.tag}.json`);
  }

  /** Start and wait for "tapbridge ready". */
  async start(): Promise<void> {
    this.tb = await Tapbridge.start(this.config(), { readyTimeoutMs: 30_000 });
  }

  /** SIGTERM and wait: tapbridge removes its namespaces; cleanupAll() catches the rest. */
  async stop(): Promise<void> {
    const tb = this.tb;
    this.tb = null;
    if (tb !== null) await tb.stop().catch(() => undefined);
  }

  /** `tapbridge ctl --socket S ...args` */
  ctl(...args: string[]): Promise<RunResult> {
    return run(process.execPath, [TAPBRIDGE, 'ctl', '--socket', this.socket, ...args]);
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
      const headers = body !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {};
      const req = request({ socketPath: this.socket, method, path, headers }, (res) => {
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
