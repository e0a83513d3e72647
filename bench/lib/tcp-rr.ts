/*
 * TCP request/response load of the rootless comparison, run inside a namespace with
 * `ip netns exec NS node tcp-rr.js MODE ...`:
 *
 *   server --port P
 *       An echo server on P (every byte read is written back) and, on P+1, a "who am I"
 *       server that answers the client's first bytes with the client's address and port as
 *       it sees them ("198.51.100.2:40000\n") and closes. Prints "listening" when both are ready; exits on SIGTERM.
 *   rr --host A --port P [--count N] [--bind B]
 *       One connection (TCP_NODELAY), N sequential 1-byte requests, each answered before the
 *       next is sent (netperf's TCP_RR with one transaction in flight); 50 warm-up rounds
 *       first. Prints one JSON line: {count, medianUs, p99Us, minUs}.
 *   whoami --host A --port P [--bind B]
 *       Connects (from local address B when given), sends "?\n" and prints
 *       {"peer": "<what the server saw>"}.
 *
 * Bounded: every client gives up after 10 s without an answer.
 */
import { connect, createServer, type Socket } from 'node:net';

function arg(args: string[], name: string, def?: string): string {
  const i = args.indexOf(name);
  if (i >= 0 && i + 1 < args.length) return args[i + 1];
  if (def === undefined) fail(`missing ${name}`);
  return def;
}

function fail(msg: string): never {
  process.stderr.write(`tcp-rr: ${msg}\n`);
  process.exit(2);
}

const STALL_MS = 10_000;

function dial(args: string[]): Socket {
  const bind = arg(args, '--bind', '');
  const s = connect({ host: arg(args, '--host'), port: Number(arg(args, '--port')), noDelay: true, ...(bind !== '' ? { localAddress: bind } : {}) });
  s.setTimeout(STALL_MS, () => fail(`no answer from ${arg(args, '--host')}:${arg(args, '--port')} in ${STALL_MS} ms`));
  s.on('error', (e) => fail(e.message));
  return s;
}

function server(args: string[]): void {
  const port = Number(arg(args, '--port'));
  const echo = createServer({ noDelay: true }, (s) => {
    s.on('data', (d) => s.write(d));
    s.on('error', () => s.destroy());
  });
  const whoami = createServer((s) => {
    s.on('error', () => s.destroy());
    s.once('data', () => s.end(`${s.remoteAddress}:${s.remotePort}\n`));
  });
  let ready = 0;
  const up = () => {
    if (++ready === 2) process.stdout.write('listening\n');
  };
  echo.listen(port, '0.0.0.0', up);
  whoami.listen(port + 1, '0.0.0.0', up);
  process.on('SIGTERM', () => process.exit(0));
}

function rr(args: string[]): void {
  const count = Number(arg(args, '--count', '2000'));
  const warmup = 50;
  const samples = new Float64Array(count);
  const req = Buffer.from([0x2a]);
  const s = dial(args);
  let done = 0;
  let t0 = 0n;
  const send = () => {
    t0 = process.hrtime.bigint();
    s.write(req);
  };
  s.on('connect', send);
  s.on('data', (d) => {
    // one byte per transaction; a coalesced read answers several (never happens with one in flight)
    for (let i = 0; i < d.length; i++) {
      const n = done++;
      if (n >= warmup) samples[n - warmup] = Number(process.hrtime.bigint() - t0) / 1000;
    }
    if (done < warmup + count) return send();
    s.destroy();
    const sorted = Array.from(samples).sort((a, b) => a - b);
    const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
    process.stdout.write(JSON.stringify({ count, medianUs: at(0.5), p99Us: at(0.99), minUs: sorted[0] }) + '\n');
  });
}

function whoami(args: string[]): void {
  const s = dial(args);
  let text = '';
  // The client speaks first: pasta connects to the namespace only once the client has sent something.
  s.on('connect', () => s.write('?\n'));
  // done at the newline: the server's FIN may come later behind a proxy
  s.setEncoding('utf8').on('data', (d: string) => {
    text += d;
    if (!text.includes('\n')) return;
    process.stdout.write(JSON.stringify({ peer: text.trim() }) + '\n');
    s.destroy();
  });
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'server') server(rest);
else if (mode === 'rr') rr(rest);
else if (mode === 'whoami') whoami(rest);
else fail('usage: tcp-rr.js server --port P | rr --host A --port P [--count N] [--bind B] | whoami --host A --port P [--bind B]');
