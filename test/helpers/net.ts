/*
 * Network probes for integration tests, all bounded in time and packet count:
 * ping, arping (Habets' `arping` or iputils' `arping`, detected), tcpdump captures that
 * report when they are listening, and snapshots of the root namespace's links, addresses
 * and routes for "nothing changed here" checks, and a script for a storm of short HTTP GETs.
 */
import { spawn } from 'node:child_process';
import { ARPING, IP, PING, TCPDUMP, TIMEOUT, check, run, type RunResult } from './sys.js';

export interface PingResult extends RunResult {
  ok: boolean;
  transmitted: number;
  received: number;
}

/** `ping -c N -i I -W 1` from a namespace; ok = exit 0 (at least one reply). */
export async function ping(ns: string, dst: string, opts: { count?: number; intervalS?: number; waitS?: number } = {}): Promise<PingResult> {
  const count = opts.count ?? 3;
  const interval = opts.intervalS ?? 0.2;
  const wait = opts.waitS ?? 1;
  const deadline = Math.ceil(count * interval + wait + 1);
  const r = await run(IP, ['netns', 'exec', ns, PING, '-n', '-c', String(count), '-i', String(interval), '-W', String(wait), '-w', String(deadline), dst], {
    timeoutMs: (deadline + 5) * 1000,
  });
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(r.stdout);
  return { ...r, ok: r.code === 0, transmitted: m ? Number(m[1]) : 0, received: m ? Number(m[2]) : 0 };
}

let arpingFlavour: Promise<'habets' | 'iputils'> | null = null;

/** Which arping is installed: Debian's `arping` (Thomas Habets) or `iputils-arping`. */
export function detectArping(): Promise<'habets' | 'iputils'> {
  arpingFlavour ??= (async () => {
    if (ARPING === undefined) throw new Error('arping is not installed (Debian: apt-get install arping)');
    const r = await run(ARPING, ['--help'], { timeoutMs: 5000 });
    const text = r.stdout + r.stderr;
    if (/Habets/i.test(text)) return 'habets';
    if (/iputils|-I <?device>?|\[-I/i.test(text)) return 'iputils';
    const v = await run(ARPING, ['-V'], { timeoutMs: 5000 });
    if (/iputils/i.test(v.stdout + v.stderr)) return 'iputils';
    throw new Error(`cannot tell which arping ${ARPING} is:\n${text}`);
  })();
  return arpingFlavour;
}

export interface ArpingResult extends RunResult {
  /** MACs that answered (lowercase). */
  macs: string[];
}

/** Send `count` ARP requests (broadcast) for `target` out of `iface` in `ns`. */
export async function arping(ns: string, target: string, opts: { iface?: string; count?: number; deadlineS?: number } = {}): Promise<ArpingResult> {
  const flavour = await detectArping();
  const iface = opts.iface ?? 'eth0';
  const count = String(opts.count ?? 1);
  const deadline = String(opts.deadlineS ?? 2);
  const args = flavour === 'habets' ? ['-c', count, '-w', deadline, '-i', iface, target] : ['-c', count, '-w', deadline, '-I', iface, target];
  const r = await run(IP, ['netns', 'exec', ns, ARPING!, ...args], { timeoutMs: (Number(deadline) + 8) * 1000 });
  const macs: string[] = [];
  for (const line of r.stdout.split('\n')) {
    // habets: "60 bytes from 02:..:ff (10.100.0.3): index=0 time=..."
    // iputils: "Unicast reply from 10.100.0.3 [02:..:FF]  0.7ms"
    const m = /from ([0-9a-f]{2}(?::[0-9a-f]{2}){5}) \(/i.exec(line) ?? /reply from \S+ \[([0-9a-f]{2}(?::[0-9a-f]{2}){5})\]/i.exec(line);
    if (m !== null) macs.push(m[1].toLowerCase());
  }
  return { ...r, macs };
}

export interface CaptureResult {
  /** One line per captured packet (tcpdump -n -e). */
  packets: string[];
  /** tcpdump's own "N packets captured" (-1 when it did not say). */
  captured: number;
  output: string;
}

export interface Capture {
  /** Resolves when tcpdump is listening (send traffic after this). */
  ready: Promise<void>;
  /** Resolves when tcpdump ends: after `count` packets or `seconds`. */
  done: Promise<CaptureResult>;
  stop(): void;
}

/**
 * tcpdump in a namespace: `-c count` packets or at most `seconds` (then SIGINT, so it still
 * prints its summary). direction 'in' = only frames the namespace received (-Q in).
 */
export function capture(ns: string, filter: string, opts: { iface?: string; count?: number; seconds?: number; direction?: 'in' | 'out' | 'inout' } = {}): Capture {
  if (TCPDUMP === undefined) throw new Error('tcpdump is not installed');
  const args = ['netns', 'exec', ns, TIMEOUT, '-s', 'INT', '-k', '3', String(opts.seconds ?? 5), TCPDUMP, '-l', '-n', '-e', '-i', opts.iface ?? 'eth0'];
  if (opts.direction !== undefined) args.push('-Q', opts.direction);
  if (opts.count !== undefined) args.push('-c', String(opts.count));
  args.push(...filter.split(/\s+/).filter((s) => s !== ''));
  const child = spawn(IP, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let onReady: () => void = () => {};
  let onFail: (e: Error) => void = () => {};
  const ready = new Promise<void>((res, rej) => {
    onReady = res;
    onFail = rej;
  });
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    if (/listening on/.test(err)) onReady();
  });
  const done = new Promise<CaptureResult>((resolve) => {
    child.on('close', (code, signal) => {
      const output = `$ ip ${args.join(' ')}\n(exit ${code}${signal ? ` ${signal}` : ''})\n${out}${err}`;
      onFail(new Error(`tcpdump ended before listening:\n${output}`));
      const m = /(\d+) packets? captured/.exec(err);
      resolve({ packets: out.split('\n').filter((l) => l.trim() !== ''), captured: m ? Number(m[1]) : -1, output });
    });
  });
  return { ready, done, stop: () => child.kill('SIGINT') };
}

/* ---- root-namespace snapshots -------------------------------------------------------- */

export interface NsSnapshot {
  links: string[];
  addresses: string[];
  routes: string[];
}

/**
 * Names, MACs and kinds of links; addresses; IPv4+IPv6 routes of every table — of the
 * namespace this process runs in (or `ns`). Counters, states and timers are left out.
 */
export async function snapshotNamespace(ns?: string): Promise<NsSnapshot> {
  const pre = ns === undefined ? [] : ['-n', ns];
  const j = async (...args: string[]) => JSON.parse(await check(IP, [...pre, '-j', ...args])) as Record<string, unknown>[];
  const links = (await j('link', 'show')).map((l) => `${String(l.ifname)} ${String(l.link_type)} ${String(l.address ?? '-')} master=${String(l.master ?? '-')}`);
  const addresses = (await j('addr', 'show')).flatMap((l) =>
    ((l.addr_info as Record<string, unknown>[] | undefined) ?? []).map((a) => `${String(l.ifname)} ${String(a.family)} ${String(a.local)}/${String(a.prefixlen)}`),
  );
  const routes: string[] = [];
  for (const fam of ['-4', '-6']) {
    for (const r of JSON.parse(await check(IP, [...pre, '-j', fam, 'route', 'show', 'table', 'all'])) as Record<string, unknown>[])
      routes.push(`${fam} ${String(r.type ?? 'unicast')} ${String(r.dst)} via=${String(r.gateway ?? '-')} dev=${String(r.dev ?? '-')} table=${String(r.table ?? 'main')}`);
  }
  return { links: links.sort(), addresses: addresses.sort(), routes: routes.sort() };
}

/** Human-readable differences between two snapshots ([] = identical). */
export function diffSnapshots(before: NsSnapshot, after: NsSnapshot): string[] {
  const out: string[] = [];
  for (const k of ['links', 'addresses', 'routes'] as const) {
    const a = new Set(before[k]);
    const b = new Set(after[k]);
    for (const x of b) if (!a.has(x)) out.push(`+ ${k}: ${x}`);
    for (const x of a) if (!b.has(x)) out.push(`- ${k}: ${x}`);
  }
  return out;
}

/** `node -e HTTP_GETS_SCRIPT URL COUNT PARALLEL`: COUNT short HTTP GETs, PARALLEL at a time; prints "ok N fail M ERRORS". */
export const HTTP_GETS_SCRIPT = `
const http = require('node:http');
const [url, count, parallel] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
let ok = 0, fail = 0, started = 0;
const errors = new Set();
const agent = new http.Agent({ keepAlive: false, maxSockets: parallel });
function one() {
  if (started >= count) return;
  started++;
  http.get(url, { agent, timeout: 8000 }, (res) => { res.resume(); res.on('end', () => { ok++; next(); }); })
    .on('error', (e) => { fail++; errors.add(e.code || e.message); next(); });
}
function next() { if (ok + fail === count) { console.log('ok ' + ok + ' fail ' + fail + ' ' + [...errors].join(',')); process.exit(0); } one(); }
for (let i = 0; i < parallel; i++) one();
`;
