/*
 * Connection-rate load, run inside a namespace with `ip netns exec NS node connect-storm.js`:
 *
 *   server --port P [--host A]
 *       A minimal HTTP/1.1 server: reads a request head, answers "200 ok" with
 *       `Connection: close` and closes first (so TIME_WAIT sits on the server and the
 *       client's ephemeral ports are free again at once). Prints "listening" when ready and
 *       its served count on SIGTERM.
 *   client --host A --port P [--concurrency 32] [--duration S] [--max N] [--timeout-ms T]
 *       `concurrency` loops of connect / GET / read to EOF / close (no keep-alive) for
 *       `duration` seconds or `max` requests, whichever comes first. One warm-up request
 *       first (ARP, first-packet paths). Prints one JSON line: completed requests inside the
 *       window, the rate, failures by reason, and latency percentiles (connect to close).
 *
 * Bounded: each connection has a timeout; after the window the in-flight ones get at most
 * `timeout-ms` more, then are destroyed; the process exits by itself.
 * Plain `net` sockets, not `http`: the client and the server should cost as little CPU as
 * possible, so the rate measures the path between them.
 */
import { connect, createServer, type Socket } from 'node:net';

function argValue(args: string[], name: string, def?: string): string {
  const i = args.indexOf(name);
  if (i >= 0 && i + 1 < args.length) return args[i + 1];
  if (def === undefined) fail(`missing ${name}`);
  return def;
}

function fail(msg: string): never {
  process.stderr.write(`connect-storm: ${msg}\n`);
  process.exit(2);
}

function num(args: string[], name: string, def: number, min: number, max: number): number {
  const v = Number(argValue(args, name, String(def)));
  if (!(Number.isFinite(v) && v >= min && v <= max)) fail(`${name} must be a number in [${min}, ${max}]`);
  return v;
}

const RESPONSE = Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n');
const CRLFCRLF = Buffer.from('\r\n\r\n');

function server(args: string[]): void {
  const port = num(args, '--port', 80, 1, 65535);
  const host = argValue(args, '--host', '0.0.0.0');
  let served = 0;
  const srv = createServer({ noDelay: true }, (s: Socket) => {
    let acc: Buffer | null = null; // a request head split over segments (rare)
    let answered = false;
    s.on('error', () => {});
    s.on('data', (d: Buffer) => {
      if (answered) return;
      const head = acc === null ? d : (acc = Buffer.concat([acc, d]));
      if (head.indexOf(CRLFCRLF) >= 0) {
        answered = true;
        acc = null;
        served++;
        s.end(RESPONSE);
      } else if (head.length > 8192) s.destroy();
      else if (acc === null) acc = Buffer.from(d);
    });
  });
  srv.on('error', (err) => fail(`server: ${err.message}`));
  srv.listen({ port, host, backlog: 4096 }, () => process.stdout.write(`listening on ${host}:${port}\n`));
  const bye = () => {
    process.stdout.write(JSON.stringify({ served }) + '\n');
    process.exit(0);
  };
  process.on('SIGTERM', bye);
  process.on('SIGINT', bye);
}

function client(args: string[]): void {
  const host = argValue(args, '--host');
  const port = num(args, '--port', 80, 1, 65535);
  const concurrency = num(args, '--concurrency', 32, 1, 1024);
  const durationS = num(args, '--duration', 5, 0.1, 600);
  const max = num(args, '--max', 2_000_000, 1, 100_000_000);
  const timeoutMs = num(args, '--timeout-ms', 3000, 100, 60_000);
  const hostName = host.includes(':') ? `[${host}]` : host; // an IPv6 literal in brackets (RFC 3986)
  const hostPort = `${hostName}:${port}`;
  const request = Buffer.from(`GET / HTTP/1.1\r\nHost: ${hostName}\r\nUser-Agent: tapbridge-connect-storm\r\nConnection: close\r\n\r\n`);

  const MAX_SAMPLES = 1 << 20;
  const latUs = new Float64Array(MAX_SAMPLES);
  let samples = 0;
  let started = 0;
  let completed = 0; // inside the window
  let completedLate = 0; // finished after the window closed
  let failed = 0;
  const reasons: Record<string, number> = {};
  const live = new Set<Socket>();
  let stop = false;
  let t0 = 0;
  let active = 0;
  let finished = false;

  const failWith = (why: string) => {
    failed++;
    reasons[why] = (reasons[why] ?? 0) + 1;
  };

  /** One request; `done(ok)` exactly once. */
  const one = (done: (ok: boolean, why: string) => void) => {
    const s = connect({ host, port, noDelay: true });
    live.add(s);
    let ok = false;
    let why = 'closed_without_response';
    let settled = false;
    s.setTimeout(timeoutMs);
    s.on('connect', () => s.write(request));
    s.on('data', (d: Buffer) => {
      if (!ok) {
        // "HTTP/1.1 200" in the first chunk (the response is one small segment).
        if (d.length >= 12 && d.toString('latin1', 9, 12) === '200') ok = true;
        else why = 'bad_response';
      }
    });
    s.on('timeout', () => {
      why = 'timeout';
      ok = false;
      s.destroy();
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      why = err.code ?? 'error';
      ok = false;
    });
    s.on('close', () => {
      live.delete(s);
      if (settled) return;
      settled = true;
      done(ok, why);
    });
  };

  const finish = () => {
    if (finished) return;
    finished = true;
    for (const s of live) s.destroy();
    const elapsedS = (performance.now() - t0) / 1000;
    const sorted = latUs.subarray(0, samples).sort();
    const pct = (p: number) => (sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.floor(((sorted.length - 1) * p) / 100))]);
    process.stdout.write(
      JSON.stringify({
        host,
        port,
        concurrency,
        durationS,
        started,
        completed,
        completedLate,
        failed,
        failReasons: reasons,
        elapsedS,
        ratePerS: completed / durationS,
        latencyUs: { p50: pct(50), p90: pct(90), p99: pct(99), max: pct(100) },
      }) + '\n',
    );
    process.exit(0);
  };

  const loop = () => {
    if (stop || started >= max) {
      if (--active === 0) finish();
      return;
    }
    started++;
    const begin = performance.now();
    one((ok, why) => {
      const end = performance.now();
      if (ok) {
        if (!stop) {
          completed++;
          if (samples < MAX_SAMPLES) latUs[samples++] = (end - begin) * 1000;
        } else completedLate++;
      } else failWith(why);
      loop();
    });
  };

  // Warm-up: one request outside the window (neighbour resolution, first-packet paths).
  one((ok, why) => {
    if (!ok) fail(`warm-up request to ${hostPort} failed: ${why}`);
    t0 = performance.now();
    setTimeout(() => {
      stop = true;
      // In-flight requests get at most timeoutMs more, then the run ends regardless.
      setTimeout(finish, timeoutMs + 500).unref();
    }, durationS * 1000);
    active = concurrency;
    for (let i = 0; i < concurrency; i++) loop();
  });
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'server') server(rest);
else if (mode === 'client') client(rest);
else fail('usage: connect-storm.js server --port P [--host A] | client --host A --port P [--concurrency N] [--duration S] [--max N] [--timeout-ms T]');
