/*
 * A tapbridge instance with the default lab's shape (DESIGN.md, "The default lab") under
 * unique names, for the gateway/NAT integration tests:
 *
 *   tbt-<pid>-<tag>-red  10.100.0.2/24 ─┐                  tbt-<pid>-<tag>-host (tapbridge runs here)
 *   tbt-<pid>-<tag>-blue 10.100.0.3/24 ─┼─ br0, gateway 10.100.0.1 ─ tb0 10.100.0.254/24 (host port)
 *                                       └─ uplink eth0: 203.0.113.2 (tapbridge), 203.0.113.3 (kernel)
 *                                            └── veth ── tbt-<pid>-<tag>-wan eth0 203.0.113.1/24
 *   published: 8000/tcp+udp -> red:8000 (lab HTTP + UDP echo); wan runs HTTP on :80.
 *
 * With `ipv6` the lab is dual-stack as the default lab is: br0 2001:db8:100::1/64 (router
 * advertisements), red ::2, blue ::3, tb0 ::fe, uplink 2001:db8:113::2 via wan ::1, and 8000
 * published in both families (`routed6` routes the bridge prefix without NAT66 instead);
 * `slaac` adds a namespace port `auto` with no static IPv6 address.
 *
 * `NatLab.start()` runs the instance through test/helpers/tapbridge.ts (config in a temp dir
 * named tbt-<pid>-*, `tapbridge run --config F --json-logs`, wait for "tapbridge ready"),
 * then waits for the lab services to listen. `stop()` stops background commands started
 * with `bg()` and sends SIGTERM (tapbridge removes everything it made); `cleanupAll()` from
 * tapbridge.ts removes whatever a failed run left. Every command has a timeout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { IP, PREFIX, ROOT, TIMEOUT, describeRun, run, waitFor, type RunResult } from './sys.js';
import { Tapbridge } from './tapbridge.js';
import type { ConntrackPage, FlowRow } from '../../src/cli/ctl.js';

export const FIXTURES = join(ROOT, 'test', 'integration', 'fixtures');
export { SYS_PYTHON } from './tools.js';

export type Role = 'host' | 'red' | 'blue' | 'wan' | 'auto';

export interface NatLabOptions {
  /** Short tag making the names unique within this test process (letters/digits). */
  tag: string;
  /** Merged into the config's `nat` section (maxFlows, timeouts, ...). */
  nat?: Record<string, unknown>;
  /** Leave out the blue namespace port. */
  noBlue?: boolean;
  /** Extra UDP echo port served by the lab in wan (names the client, like red's). */
  wanUdpEcho?: number;
  /** Dual-stack, as the default lab. */
  ipv6?: boolean;
  /** With ipv6: the bridge prefix is routed (nat.routed), not masqueraded. */
  routed6?: boolean;
  /** Add a namespace port `auto` (10.100.0.4) that takes its IPv6 address by SLAAC. */
  slaac?: boolean;
  /** Merged into br0's gateway (e.g. dns, dhcp). */
  gatewayExtra?: Record<string, unknown>;
  /** Top-level config keys added as they are (e.g. poll). */
  extra?: Record<string, unknown>;
  /** Merged into red's and blue's port config (e.g. security). */
  portExtra?: Partial<Record<'red' | 'blue', Record<string, unknown>>>;
}

export const V6 = {
  gateway: '2001:db8:100::1',
  gatewayLinkLocal: 'fe80::74:62ff:fe00:1',
  red: '2001:db8:100::2',
  blue: '2001:db8:100::3',
  host: '2001:db8:100::fe',
  external: '2001:db8:113::2',
  wan: '2001:db8:113::1',
  prefix: '2001:db8:100::/64',
} as const;

export interface BgProcess {
  child: ChildProcess;
  /** stdout+stderr so far. */
  output(): string;
  /** Resolves with the exit status once the process ended. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
  kill(): void;
}

export class NatLab {
  readonly instance: string;
  readonly config: Record<string, unknown>;
  private tb: Tapbridge | null = null;
  private readonly bgs = new Set<BgProcess>();

  constructor(readonly opts: NatLabOptions) {
    this.instance = `${PREFIX}${opts.tag}`;
    this.config = this.buildConfig();
  }

  /** Namespace of a role: tbt-<pid>-<tag>-<role>. */
  ns(role: Role): string {
    return `${this.instance}-${role}`;
  }

  private buildConfig(): Record<string, unknown> {
    const o = this.opts;
    const v6 = o.ipv6 === true;
    const dual = (a4: string, a6: string) => (v6 ? [a4, a6] : [a4]);
    const ports: Record<string, unknown>[] = [
      { name: 'red', type: 'namespace', namespace: this.ns('red'), addresses: dual('10.100.0.2/24', `${V6.red}/64`), defaultRoute: dual('10.100.0.1', V6.gateway), ...(o.portExtra?.red ?? {}) },
    ];
    if (o.noBlue !== true) ports.push({ name: 'blue', type: 'namespace', namespace: this.ns('blue'), addresses: dual('10.100.0.3/24', `${V6.blue}/64`), defaultRoute: dual('10.100.0.1', V6.gateway), ...(o.portExtra?.blue ?? {}) });
    if (o.slaac === true) ports.push({ name: 'auto', type: 'namespace', namespace: this.ns('auto'), addresses: ['10.100.0.4/24'], defaultRoute: '10.100.0.1' });
    ports.push({ name: 'host', type: 'tap', ifname: 'tb0', addresses: dual('10.100.0.254/24', `${V6.host}/64`) });
    const wanService: Record<string, unknown> = { namespace: this.ns('wan'), http: 80 };
    if (o.wanUdpEcho !== undefined) wanService.udpEcho = o.wanUdpEcho;
    const publish: Record<string, unknown>[] = [
      { proto: 'tcp', port: 8000, to: '10.100.0.2' },
      { proto: 'udp', port: 8000, to: '10.100.0.2' },
    ];
    if (v6 && o.routed6 !== true) publish.push({ proto: 'tcp', port: 8000, to: V6.red }, { proto: 'udp', port: 8000, to: V6.red });
    return {
      ...(o.extra ?? {}),
      instance: this.instance,
      namespace: { name: this.ns('host'), create: true },
      bridges: [{ name: 'br0', gateway: { address: dual('10.100.0.1/24', `${V6.gateway}/64`), mac: '02:74:62:00:00:01', ...(o.gatewayExtra ?? {}) }, ports }],
      uplink: { interface: 'eth0', address: dual('203.0.113.2/24', `${V6.external}/64`), gateway: dual('203.0.113.1', V6.wan) },
      nat: {
        publish,
        ...(v6 && o.routed6 === true ? { routed: [V6.prefix] } : {}),
        ...(o.nat ?? {}),
      },
      lab: {
        veths: [{ namespace: this.ns('wan'), ifname: 'eth0', addresses: dual('203.0.113.1/24', `${V6.wan}/64`), peer: 'eth0', peerAddresses: ['203.0.113.3/24'] }],
        services: [wanService, { namespace: this.ns('red'), http: 8000, udpEcho: 8000 }],
      },
    };
  }

  get tapbridge(): Tapbridge {
    if (this.tb === null) throw new Error(`${this.instance} was not started`);
    return this.tb;
  }

  /** tapbridge's output so far (JSON log lines). */
  log(): string {
    return this.tb?.output ?? '(not started)';
  }

  /** True while the tapbridge process runs. */
  alive(): boolean {
    return this.tb !== null && this.tb.exitInfo === null;
  }

  /** Start tapbridge and wait until it is ready and the lab services listen. */
  async start(): Promise<void> {
    this.tb = await Tapbridge.start(this.config);
    // The lab services are spawned just before "ready"; wait until they listen.
    await this.waitListening('wan', 'tcp', 80, 10_000);
    await this.waitListening('red', 'tcp', 8000, 10_000);
    await this.waitListening('red', 'udp', 8000, 10_000);
    if (this.opts.wanUdpEcho !== undefined) await this.waitListening('wan', 'udp', this.opts.wanUdpEcho, 10_000);
  }

  /** `tapbridge ctl --socket S --json ARGS`, parsed; throws with the output on failure. */
  ctl<T = unknown>(...args: string[]): Promise<T> {
    return this.tapbridge.ctlJson<T>(...args);
  }

  /** Run a command inside a role's namespace with a time limit (never throws). */
  exec(role: Role, cmd: string, args: string[], timeoutMs = 15_000): Promise<RunResult> {
    return run(IP, ['netns', 'exec', this.ns(role), cmd, ...args], { timeoutMs });
  }

  /** A background command in a namespace, bounded by `timeout -k 2 S`; killed by stop() at the latest. */
  bg(role: Role, cmd: string, args: string[], seconds: number): BgProcess {
    const child = spawn(IP, ['netns', 'exec', this.ns(role), TIMEOUT, '-k', '2', String(seconds), cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
      child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
    );
    const h: BgProcess = {
      child,
      output: () => stdout + stderr,
      done,
      kill: () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      },
    };
    this.bgs.add(h);
    void done.then(() => this.bgs.delete(h));
    return h;
  }

  /** Wait until a TCP/UDP port listens in a namespace (`ss -l`). */
  async waitListening(role: Role, proto: 'tcp' | 'udp', port: number, timeoutMs = 5000): Promise<void> {
    await waitFor(
      `${proto}/${port} listening in ${this.ns(role)}`,
      async () => {
        const r = await this.exec(role, 'ss', ['-Hln', proto === 'tcp' ? '-t' : '-u'], 5000);
        return r.stdout.split('\n').some((l) => l.includes(`:${port} `));
      },
      { timeoutMs, intervalMs: 50 },
    );
  }

  /**
   * Kill background commands, stop tapbridge (SIGTERM: it removes everything it made).
   * Throws when it did not exit in time; cleanupAll() (tapbridge.ts) removes leftovers.
   */
  async stop(): Promise<void> {
    for (const b of this.bgs) b.kill();
    if (this.tb !== null) await this.tb.stop();
  }
}

/* ---- clients ------------------------------------------------------------------------- */

/** curl -s with a time limit; the body, or throws with the whole run. */
export async function curl(lab: NatLab, role: Role, url: string): Promise<string> {
  const r = await lab.exec(role, 'curl', ['-sS', '--max-time', '5', url], 10_000);
  if (r.code !== 0) throw new Error(`curl failed:\n${describeRun(r)}\n--- tapbridge ---\n${lab.log().slice(-3000)}`);
  return r.stdout;
}

/**
 * One UDP request from a namespace: send `msg` (optionally from `sport`), print the first
 * reply. Node in the namespace; bounded by `waitMs`. Returns the reply or throws.
 */
export async function udpRequest(lab: NatLab, role: Role, host: string, port: number, msg: string, opts: { sport?: number; waitMs?: number } = {}): Promise<string> {
  const waitMs = opts.waitMs ?? 3000;
  const script = `
const s = require('node:dgram').createSocket(process.argv[1].includes(':') ? 'udp6' : 'udp4');
const [host, port, msg, sport, wait] = process.argv.slice(1);
const t = setTimeout(() => { process.stderr.write('no reply within ' + wait + ' ms\\n'); process.exit(2); }, Number(wait));
s.on('message', (m) => { process.stdout.write(m.toString()); clearTimeout(t); s.close(); });
s.bind(Number(sport), () => s.send(msg, Number(port), host));`;
  const r = await lab.exec(role, process.execPath, ['-e', script, host, String(port), msg, String(opts.sport ?? 0), String(waitMs)], waitMs + 5000);
  if (r.code !== 0) throw new Error(`UDP request failed:\n${describeRun(r)}`);
  return r.stdout;
}

/* ---- ctl answers --------------------------------------------------------------------- */

/** What `ctl --json conntrack` prints (src/cli/ctl.ts). */
export type FlowJson = FlowRow;
export type ConntrackJson = ConntrackPage & { counters: Record<string, number> };

export interface PortJson {
  name: string;
  kind: string;
  bridge: string | null;
  counters: { rx_packets: number; tx_packets: number; drops: Record<string, number> };
}

export interface TraceJson {
  packet: string;
  ingress: string;
  steps: { stage: string; decision: string }[];
  outputs: string[];
  drops: string[];
  verdict: string;
  /** Links taken, by graph names. */
  path: { from: string; output: string; to: string; input: string }[];
}

/* ---- iperf3 -------------------------------------------------------------------------- */

export interface IperfJson {
  error?: string;
  intervals?: { sum: { bytes: number; bits_per_second: number } }[];
  end?: {
    sum?: { bytes?: number; bits_per_second?: number; lost_packets?: number; packets?: number; lost_percent?: number };
    sum_sent?: { bytes: number; bits_per_second: number };
    sum_received?: { bytes: number; bits_per_second: number };
  };
}

/** Parse iperf3 -J output; throws with the run when it is not JSON. */
export function parseIperf(r: { stdout: string; stderr: string }, what: string): IperfJson {
  try {
    return JSON.parse(r.stdout) as IperfJson;
  } catch {
    throw new Error(`${what}: iperf3 printed no JSON\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`);
  }
}
