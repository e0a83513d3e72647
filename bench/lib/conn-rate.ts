/*
 * New-connections-per-second runner: the HTTP server of connect-storm.js in one namespace,
 * its client in another (`ip netns exec`), the client's JSON result parsed. Both processes
 * are bounded (client: duration + margin; server: stopped after the client returns, or at
 * its lifetime) and tracked by proc.ts, so a cleanup run kills them too.
 */
import { fileURLToPath } from 'node:url';
import { IP, runIn, sleep, startBackground, type Background } from './proc.js';

/** The compiled script next to this module (dist/bench/lib/connect-storm.js). */
export const CONNECT_STORM_JS = fileURLToPath(new URL('./connect-storm.js', import.meta.url));

export interface ConnRateResult {
  /** Requests completed inside the window, per second. */
  ratePerS: number;
  completed: number;
  completedLate: number;
  started: number;
  failed: number;
  failReasons: Record<string, number>;
  concurrency: number;
  durationS: number;
  latencyUs: { p50: number | null; p90: number | null; p99: number | null; max: number | null };
  /** Requests the server answered (from its exit line), when it printed one. */
  served?: number;
}

/** Start the close-after-response HTTP server in `ns` on `port` (all IPv4 addresses, or all IPv6 ones with `family` 6); resolves once it listens. */
export async function startHttpCloseServer(ns: string, port: number, maxLifetimeMs: number, family: 4 | 6 = 4): Promise<Background> {
  const host = family === 6 ? '::' : '0.0.0.0';
  const srv = startBackground(`http server in ${ns}:${port}`, IP, ['netns', 'exec', ns, process.execPath, CONNECT_STORM_JS, 'server', '--port', String(port), '--host', host], maxLifetimeMs);
  await srv.waitForLine(/^listening/, 10_000);
  return srv;
}

export interface ConnRateOptions {
  durationS: number;
  concurrency?: number;
  max?: number;
  timeoutMs?: number;
}

/**
 * Run the server in `serverNs` on `port` and the connect storm from `clientNs` against
 * `addr:port` (IPv4 or IPv6); the server is stopped afterwards (its served count is kept).
 */
export async function connRate(clientNs: string, serverNs: string, addr: string, port: number, o: ConnRateOptions): Promise<ConnRateResult> {
  const timeoutMs = o.timeoutMs ?? 3000;
  const srv = await startHttpCloseServer(serverNs, port, (o.durationS + 60) * 1000, addr.includes(':') ? 6 : 4);
  let j: ConnRateResult;
  try {
    const args = [
      CONNECT_STORM_JS,
      'client',
      '--host', addr,
      '--port', String(port),
      '--concurrency', String(o.concurrency ?? 32),
      '--duration', String(o.durationS),
      '--max', String(o.max ?? 2_000_000),
      '--timeout-ms', String(timeoutMs),
    ];
    const r = await runIn(clientNs, process.execPath, args, { timeoutMs: (o.durationS + 30) * 1000 + 2 * timeoutMs, check: false });
    try {
      j = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as ConnRateResult;
    } catch {
      throw new Error(`connect-storm client: no JSON (exit ${r.code}${r.timedOut ? ', timed out' : ''}): ${(r.stderr || r.stdout).trim().slice(-400)}`);
    }
    if (r.code !== 0) throw new Error(`connect-storm client exit ${r.code}: ${r.stderr.trim().slice(-400)}`);
  } finally {
    srv.signal('SIGTERM');
    await Promise.race([srv.exited, sleep(2000)]);
    await srv.stop('SIGKILL', 0);
  }
  const m = /\{"served":(\d+)\}/.exec(srv.stdout);
  if (m !== null) j.served = Number(m[1]);
  return j;
}
