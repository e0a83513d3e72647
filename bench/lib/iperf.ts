/*
 * iperf3 runners: a one-shot server (`iperf3 -s -1`) in one namespace, the client in another,
 * JSON output parsed into the few numbers the benchmarks report. Every process is bounded
 * (client: duration + margin, and 5 s to connect; server: killed after the client returns, or
 * at its lifetime). Either family: the server listens on both, the client follows the address.
 */
import { Background, runIn, startBackground, IP, sleep } from './proc.js';

export interface Endpoints {
  /** Namespace of the sender / pinger. */
  clientNs: string;
  /** Namespace of the receiver (iperf3 server). */
  serverNs: string;
  /** Address the client connects to (the server's, or a published/NAT address). */
  serverAddr: string;
  /** Port the iperf3 server listens on (default 5201). */
  serverPort?: number;
  /** Port the client connects to, when it differs (a published port DNATed to serverPort). */
  connectPort?: number;
}

export interface TcpResult {
  gbps: number;
  /** Sender's retransmits. */
  retransmits: number;
  seconds: number;
}

export interface UdpResult {
  /** Datagrams/s delivered to the receiving socket (sent - lost, over the receiver's time). */
  deliveredPps: number;
  /** Datagrams/s the sender pushed out. */
  offeredPps: number;
  lostPercent: number;
  seconds: number;
  /** The receiver namespace's UDP counters over the test: where the lost datagrams went. */
  receiverUdp?: UdpSnmp;
}

/** Deltas of the UDP counters of a network namespace (/proc/net/snmp, or /proc/net/snmp6 for IPv6). */
export interface UdpSnmp {
  InDatagrams: number;
  RcvbufErrors: number;
  InErrors: number;
}

/**
 * The UDP counters inside `ns`: IPv4's from the Udp: lines of /proc/net/snmp (a header line
 * and a value line), IPv6's from /proc/net/snmp6 (one `Udp6InDatagrams  N` line per counter).
 */
export async function udpSnmp(ns: string, family: 4 | 6 = 4): Promise<UdpSnmp> {
  const file = family === 6 ? '/proc/net/snmp6' : '/proc/net/snmp';
  const r = await runIn(ns, 'cat', [file], { timeoutMs: 5000 });
  const values = new Map<string, number>();
  if (family === 6) {
    for (const m of r.stdout.matchAll(/^Udp6(\w+)\s+(\d+)$/gm)) values.set(m[1], Number(m[2]));
  } else {
    const lines = r.stdout.split('\n').filter((l) => l.startsWith('Udp:'));
    const names = (lines[0] ?? '').split(/\s+/).slice(1);
    const vals = (lines[1] ?? '').split(/\s+/).slice(1).map(Number);
    names.forEach((n, i) => values.set(n, vals[i]));
  }
  if (!values.has('InDatagrams')) throw new Error(`no UDP counters in ${file} of ${ns}`);
  const get = (n: string) => values.get(n) ?? NaN;
  return { InDatagrams: get('InDatagrams'), RcvbufErrors: get('RcvbufErrors'), InErrors: get('InErrors') };
}

const SERVER_READY = /Server listening/;
/** A path that does not carry the control connection fails in seconds, not at the client's time limit. */
const CONNECT_TIMEOUT_MS = 5000;

/** Start `iperf3 -s -1 -p port` in `ns`; resolves once it listens. */
export async function startIperfServer(ns: string, port: number, maxLifetimeMs: number): Promise<Background> {
  const srv = startBackground(`iperf3 server in ${ns}`, IP, ['netns', 'exec', ns, 'iperf3', '-s', '-1', '-p', String(port), '--forceflush'], maxLifetimeMs);
  await srv.waitForLine(SERVER_READY, 10_000);
  return srv;
}

interface IperfJson {
  error?: string;
  end?: {
    sum_sent?: { seconds: number; bits_per_second: number; retransmits?: number; packets?: number };
    sum_received?: { seconds: number; bits_per_second: number; packets?: number; lost_packets?: number; lost_percent?: number; bytes?: number };
  };
}

async function iperfClient(ep: Endpoints, port: number | undefined, durationS: number, extra: string[]): Promise<IperfJson> {
  const listen = port ?? ep.serverPort ?? 5201;
  const connect = port ?? ep.connectPort ?? listen;
  const srv = await startIperfServer(ep.serverNs, listen, (durationS + 60) * 1000);
  try {
    const r = await runIn(ep.clientNs, 'iperf3', ['-c', ep.serverAddr, '-p', String(connect), '-t', String(durationS), '--connect-timeout', String(CONNECT_TIMEOUT_MS), '-J', ...extra], {
      timeoutMs: (durationS + 30) * 1000,
      check: false,
    });
    let j: IperfJson;
    try {
      j = JSON.parse(r.stdout) as IperfJson;
    } catch {
      throw new Error(`iperf3 client: no JSON (exit ${r.code}${r.timedOut ? ', timed out' : ''}): ${(r.stderr || r.stdout).trim().slice(-400)}`);
    }
    if (j.error !== undefined) throw new Error(`iperf3: ${j.error}`);
    if (r.code !== 0) throw new Error(`iperf3 client exit ${r.code}`);
    return j;
  } finally {
    await Promise.race([srv.exited, sleep(2000)]);
    await srv.stop('SIGKILL', 0);
  }
}

/** TCP bulk throughput client -> server, one stream (Gbit/s as the receiver counted it). */
/** opts.port overrides both the endpoints' listen and connect ports. */
export async function iperfTcp(ep: Endpoints, durationS: number, opts: { port?: number; streams?: number } = {}): Promise<TcpResult> {
  const extra = opts.streams !== undefined && opts.streams > 1 ? ['-P', String(opts.streams)] : [];
  const j = await iperfClient(ep, opts.port, durationS, extra);
  const rx = j.end?.sum_received;
  const tx = j.end?.sum_sent;
  if (rx === undefined) throw new Error('iperf3 TCP: no sum_received in the JSON');
  return { gbps: rx.bits_per_second / 1e9, retransmits: tx?.retransmits ?? 0, seconds: rx.seconds };
}

/**
 * UDP datagrams of `len` bytes payload at `bandwidth` (iperf3 -b; '0' = as fast as the
 * sender can). Reports what the receiving socket got: packets - lost over the receiver's time.
 */
export async function iperfUdp(ep: Endpoints, durationS: number, opts: { port?: number; len?: number; bandwidth?: string } = {}): Promise<UdpResult> {
  const len = opts.len ?? 64;
  const family = ep.serverAddr.includes(':') ? 6 : 4;
  const snmp0 = await udpSnmp(ep.serverNs, family).catch(() => null);
  const j = await iperfClient(ep, opts.port, durationS, ['-u', '-l', String(len), '-b', opts.bandwidth ?? '0']);
  const snmp1 = snmp0 === null ? null : await udpSnmp(ep.serverNs, family).catch(() => null);
  const rx = j.end?.sum_received;
  const tx = j.end?.sum_sent;
  if (rx === undefined || rx.packets === undefined) throw new Error('iperf3 UDP: no sum_received in the JSON');
  const delivered = rx.packets - (rx.lost_packets ?? 0);
  return {
    deliveredPps: delivered / rx.seconds,
    offeredPps: (tx?.packets ?? rx.packets) / (tx?.seconds ?? rx.seconds),
    lostPercent: rx.lost_percent ?? 0,
    seconds: rx.seconds,
    receiverUdp:
      snmp0 !== null && snmp1 !== null
        ? { InDatagrams: snmp1.InDatagrams - snmp0.InDatagrams, RcvbufErrors: snmp1.RcvbufErrors - snmp0.RcvbufErrors, InErrors: snmp1.InErrors - snmp0.InErrors }
        : undefined,
  };
}
