/*
 * `tapbridge ctl` subcommands of the experiment features, and `tapbridge top`.
 *
 *   ctl fault set PORT [-d DIR] [--loss P] [--delay MS --jitter MS] [--rate 10mbit] ...
 *   ctl fault clear PORT [-d DIR]          ctl fault list [PORT]
 *   ctl capture TARGET FILE|- [-d DIR] [-f FILTER] [-c N] [--max-bytes N] [--snaplen N]
 *               [--format pcap|pcapng] [--duration S] [--wait]
 *   ctl capture list                       ctl capture stop ID
 *   ctl stats [--json]                     ctl metrics
 *   top [-s SOCKET | -i INSTANCE] [--once]
 *
 * Every command is one API call (routes.ts); `capture ... -` streams the pcap to stdout
 * (`tapbridge ctl capture red - | tcpdump -n -r -`).
 */
import { request, type IncomingMessage } from 'node:http';
import { resolve as resolvePath } from 'node:path';
import { Option, type Command } from 'commander';
import { apiRequest, ClientError, resolveSocket } from '../control/client.js';
import type { FaultRow } from '../dataplane/faults.js';
import type { CaptureInfo } from '../dataplane/captures.js';
import type { LiveStats } from '../control/live.js';
import { captureSummary, renderCaptures, renderFaults, renderStats } from './render.js';
import { runTop } from './top.js';

export interface CtlHelpers {
  /** Wraps an action: resolves the socket, reports errors. */
  run: <A extends unknown[]>(fn: (sock: string, opts: { json?: boolean }, ...args: A) => Promise<void>) => (...args: A) => Promise<void>;
}

interface FaultOpts {
  direction: string;
  loss?: string;
  lossGe?: string;
  delay?: string;
  jitter?: string;
  distribution?: string;
  reorder?: string;
  reorderGap?: string;
  duplicate?: string;
  corrupt?: string;
  corruptBits?: string;
  fixChecksums?: boolean;
  rate?: string;
  burst?: string;
  queueLimit?: string;
  dropEvery?: string;
  dropFilter?: string;
  down?: boolean;
  seed?: string;
  merge?: boolean;
  spec?: string;
}

interface CaptureOpts {
  direction: string;
  filter?: string;
  count?: string;
  maxBytes?: string;
  snaplen?: string;
  format?: string;
  duration?: string;
  wait?: boolean;
  overwrite?: boolean;
}

function num(v: string, what: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new ClientError(`${what}: not a number: '${v}'`);
  return n;
}

/** Command-line fault options -> the API's spec object (validated by the server). */
export function faultSpecFromOptions(o: FaultOpts): Record<string, unknown> {
  const spec: Record<string, unknown> = o.spec !== undefined ? (JSON.parse(o.spec) as Record<string, unknown>) : {};
  if (o.loss !== undefined) spec.loss = { percent: num(o.loss, '--loss') };
  if (o.lossGe !== undefined) {
    const [p, r, lossGood, lossBad] = o.lossGe.split(',').map((x) => num(x, '--loss-ge'));
    if (p === undefined || r === undefined) throw new ClientError('--loss-ge: expected p,r[,lossGood,lossBad]');
    spec.loss = { gilbertElliott: { p, r, ...(lossGood !== undefined ? { lossGood } : {}), ...(lossBad !== undefined ? { lossBad } : {}) } };
  }
  if (o.delay !== undefined || o.jitter !== undefined) {
    spec.delay = {
      ms: o.delay !== undefined ? num(o.delay, '--delay') : 0,
      ...(o.jitter !== undefined ? { jitterMs: num(o.jitter, '--jitter') } : {}),
      ...(o.distribution !== undefined ? { distribution: o.distribution } : {}),
    };
  }
  if (o.reorder !== undefined) spec.reorder = { percent: num(o.reorder, '--reorder'), ...(o.reorderGap !== undefined ? { gapMs: num(o.reorderGap, '--reorder-gap') } : {}) };
  if (o.duplicate !== undefined) spec.duplicate = { percent: num(o.duplicate, '--duplicate') };
  if (o.corrupt !== undefined)
    spec.corrupt = {
      percent: num(o.corrupt, '--corrupt'),
      ...(o.fixChecksums ? { fixChecksums: true } : {}),
      ...(o.corruptBits !== undefined ? { maxBits: num(o.corruptBits, '--corrupt-bits') } : {}),
    };
  if (o.rate !== undefined)
    spec.rate = {
      bitsPerSecond: o.rate,
      ...(o.burst !== undefined ? { burstBytes: o.burst } : {}),
      ...(o.queueLimit !== undefined ? { queueLimitBytes: o.queueLimit } : {}),
    };
  if (o.dropEvery !== undefined) spec.dropEveryNth = num(o.dropEvery, '--drop-every');
  if (o.dropFilter !== undefined) spec.dropFilter = o.dropFilter;
  if (o.down) spec.down = true;
  if (o.seed !== undefined) spec.seed = num(o.seed, '--seed');
  return spec;
}

/** Command-line capture options -> POST /v1/captures body. */
export function captureBodyFromOptions(target: string, file: string, o: CaptureOpts, cwd = process.cwd()): Record<string, unknown> {
  const body: Record<string, unknown> = { target, direction: o.direction };
  if (file === '-') body.stream = true;
  else body.file = resolvePath(cwd, file);
  if (o.filter !== undefined) body.filter = o.filter;
  if (o.count !== undefined) body.maxPackets = num(o.count, '--count');
  if (o.maxBytes !== undefined) body.maxBytes = o.maxBytes;
  if (o.snaplen !== undefined) body.snaplen = num(o.snaplen, '--snaplen');
  if (o.format !== undefined) body.format = o.format;
  if (o.duration !== undefined) body.durationSeconds = num(o.duration, '--duration');
  if (o.overwrite === true) body.overwrite = true;
  return body;
}

/** POST with a streamed answer (the pcap stream). */
function streamRequest(socketPath: string, path: string, body: unknown): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = request(
      { socketPath, method: 'POST', path, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        if ((res.statusCode ?? 500) < 400) return resolve(res);
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let msg = text;
          try {
            msg = String((JSON.parse(text) as { error?: unknown }).error ?? text);
          } catch {
            /* not JSON */
          }
          reject(new ClientError(msg.trim(), res.statusCode));
        });
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? new ClientError(`cannot reach tapbridge at ${socketPath} (${err.code}): is it running?`) : err),
    );
    req.end(payload);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function streamCapture(sock: string, body: Record<string, unknown>): Promise<void> {
  const res = await streamRequest(sock, '/v1/captures', body);
  const id = Number(res.headers['x-capture-id']);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    apiRequest(sock, 'DELETE', `/v1/captures/${id}`).catch(() => res.destroy());
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  let brokenPipe = false;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    // The reader (e.g. `tcpdump -c N`) went away: closing the socket stops the capture.
    if (err.code === 'EPIPE') brokenPipe = true;
    res.destroy();
  });
  await new Promise<void>((resolve) => {
    res.on('data', (chunk: Buffer) => {
      if (brokenPipe) return;
      if (!process.stdout.write(chunk)) {
        res.pause();
        process.stdout.once('drain', () => res.resume());
      }
    });
    res.on('end', () => resolve());
    res.on('close', () => resolve());
    res.on('error', () => resolve());
  });
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  const reason = res.trailers['x-capture-stopped'];
  if (brokenPipe) process.stderr.write(`capture ${id}: output closed (stopped: client disconnected)\n`);
  else if (reason !== undefined)
    process.stderr.write(`capture ${id}: ${res.trailers['x-capture-packets'] ?? '?'} packets, ${res.trailers['x-capture-dropped'] ?? 0} dropped; stopped: ${reason}\n`);
  else process.stderr.write(`capture ${id}: stream ended\n`);
  // stdout may still hold data for the pipe: let it drain, then exit.
  if (!brokenPipe && process.stdout.writableLength > 0) await new Promise((r) => process.stdout.once('drain', r));
}

async function waitCapture(sock: string, id: number): Promise<CaptureInfo> {
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void apiRequest(sock, 'DELETE', `/v1/captures/${id}`).catch(() => {});
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    for (;;) {
      const c = (await apiRequest(sock, 'GET', `/v1/captures/${id}`)) as CaptureInfo;
      if (c.state === 'stopped') return c;
      await sleep(200);
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

export function registerExperimentCtl(ctl: Command, program: Command, h: CtlHelpers): void {
  const print = (o: { json?: boolean }, data: unknown, text: () => string) =>
    process.stdout.write(o.json ? JSON.stringify(data, null, 2) + '\n' : text() + '\n');

  /* ---------------- faults ---------------- */
  const fault = ctl
    .command('fault')
    .alias('faults')
    .description('fault injection per port and direction: loss, delay, jitter, reorder, duplicate, corrupt, rate limit, drops, link down (no subcommand: list)');
  const dirOption = () => new Option('-d, --direction <dir>', 'ingress (frames from the port into tapbridge), egress (frames tapbridge sends out of it) or both').choices(['ingress', 'egress', 'both']).default('both');
  fault
    .command('set <port>')
    .description('set the faults of a port (replaces its spec for that direction unless --merge)')
    .addOption(dirOption())
    .option('--loss <percent>', 'random loss, 0..100 %')
    .option('--loss-ge <p,r[,good,bad]>', 'Gilbert-Elliott burst loss: P(good->bad), P(bad->good)[, loss in good, loss in bad]')
    .option('--delay <ms>', 'fixed delay in milliseconds')
    .option('--jitter <ms>', 'delay jitter in milliseconds')
    .addOption(new Option('--distribution <d>', 'jitter distribution').choices(['uniform', 'normal', 'pareto']))
    .option('--reorder <percent>', 'hold back this share of frames so later ones overtake them')
    .option('--reorder-gap <ms>', 'how long reordered frames are held back (default 10)')
    .option('--duplicate <percent>', 'send a second copy')
    .option('--corrupt <percent>', 'flip random bits after the Ethernet header')
    .option('--corrupt-bits <n>', 'flip 1..n bits per corrupted frame')
    .option('--fix-checksums', 'recompute IPv4/TCP/UDP/ICMP checksums after corrupting, so the damage reaches the application')
    .option('--rate <rate>', 'token-bucket rate limit, e.g. 10mbit, 1.5gbit, 500kbit')
    .option('--burst <bytes>', 'token bucket size (default max(3028, 10 ms of rate)), e.g. 32k')
    .option('--queue-limit <bytes>', 'bytes waiting for tokens before the rate limit drops (default max(128k, 100 ms of rate))')
    .option('--drop-every <n>', 'drop every n-th frame')
    .option('--drop-filter <expr>', "drop frames matching a filter expression, e.g. 'tcp port 80'")
    .option('--down', 'drop everything (carrier stays on; `ctl link PORT down` turns the carrier off)')
    .option('--seed <n>', 'seed of the random choices (same seed + same traffic = same drops)')
    .option('--merge', 'change only the given faults, keep the others')
    .option('--spec <json>', 'the spec as JSON, e.g. \'{"loss":{"percent":5}}\' (options given as well override it)')
    .action(
      h.run(async (sock, o, port: string, opts: FaultOpts) => {
        const spec = faultSpecFromOptions(opts);
        const rows = (await apiRequest(sock, 'POST', `/v1/ports/${encodeURIComponent(port)}/faults`, {
          direction: opts.direction,
          merge: opts.merge === true,
          spec,
        })) as FaultRow[];
        print(o, rows, () => renderFaults(rows));
      }),
    );
  fault
    .command('clear <port>')
    .description("remove a port's faults")
    .addOption(dirOption())
    .action(
      h.run(async (sock, o, port: string, opts: { direction: string }) => {
        const rows = (await apiRequest(sock, 'DELETE', `/v1/ports/${encodeURIComponent(port)}/faults?direction=${encodeURIComponent(opts.direction)}`)) as FaultRow[];
        print(o, rows, () => renderFaults(rows));
      }),
    );
  fault
    .command('list [port]')
    .description('fault stages with their spec and counters')
    .action(
      h.run(async (sock, o, port: string | undefined) => {
        const rows = (await apiRequest(sock, 'GET', port !== undefined ? `/v1/ports/${encodeURIComponent(port)}/faults` : '/v1/faults')) as FaultRow[];
        print(o, rows, () => renderFaults(rows));
      }),
    );

  fault.action(
    h.run(async (sock, o) => {
      const rows = (await apiRequest(sock, 'GET', '/v1/faults')) as FaultRow[];
      print(o, rows, () => renderFaults(rows));
    }),
  );

  /* ---------------- captures ---------------- */
  ctl
    .command('capture <target> [file]')
    .usage('TARGET FILE|- [options]  |  list  |  stop ID')
    .description(
      'capture on a port (TARGET = port name) or a whole bridge (bridge:NAME) to a pcap/pcapng FILE, or to stdout with "-" ' +
        '(`tapbridge ctl capture red - | tcpdump -n -r -`). Ingress is captured before faults, egress after. ' +
        '`capture list` shows captures, `capture stop ID` ends one.',
    )
    .addOption(dirOption())
    .option('-f, --filter <expr>', "tcpdump-like filter, e.g. 'icmp', 'host 10.100.0.3 and tcp port 80', 'ether src 02:..'")
    .option('-c, --count <n>', 'stop after n packets')
    .option('--max-bytes <size>', 'stop when the output reaches this size, e.g. 10M')
    .option('--snaplen <n>', 'bytes kept per packet (default 262144: all)')
    .addOption(new Option('--format <f>', 'output format (default: pcapng for *.pcapng, else pcap)').choices(['pcap', 'pcapng']))
    .option('--duration <seconds>', 'stop after this many seconds')
    .option('--wait', 'for a file: wait until the capture stops (Ctrl-C stops it), then print the summary')
    .option('--overwrite', 'replace the data of an existing file (without it an existing non-empty file is refused)')
    .action(
      h.run(async (sock, o, target: string, file: string | undefined, opts: CaptureOpts) => {
        if (target === 'list') {
          const rows = (await apiRequest(sock, 'GET', '/v1/captures')) as CaptureInfo[];
          print(o, rows, () => renderCaptures(rows));
          return;
        }
        if (target === 'stop') {
          if (file === undefined) throw new ClientError('usage: tapbridge ctl capture stop ID');
          const c = (await apiRequest(sock, 'DELETE', `/v1/captures/${encodeURIComponent(file)}`)) as CaptureInfo;
          print(o, c, () => captureSummary(c));
          return;
        }
        if (file === undefined) throw new ClientError('capture: give an output file, or - for stdout (e.g. `tapbridge ctl capture red - | tcpdump -n -r -`)');
        const body = captureBodyFromOptions(target, file, opts);
        if (file === '-') {
          if (process.stdout.isTTY) throw new ClientError('refusing to write a binary capture to a terminal: pipe it (`| tcpdump -n -r -`) or give a file');
          await streamCapture(sock, body);
          return;
        }
        let c = (await apiRequest(sock, 'POST', '/v1/captures', body)) as CaptureInfo;
        if (opts.wait) c = await waitCapture(sock, c.id);
        print(o, c, () => (opts.wait ? captureSummary(c) : `capture ${c.id} started: ${c.target} ${c.direction} (${c.sees}) -> ${c.file} (${c.format}); stop it with: tapbridge ctl capture stop ${c.id}`));
      }),
    );

  /* ---------------- statistics ---------------- */
  ctl
    .command('stats')
    .description('per-port and per-bridge counters, rates (pps, bit/s over ~5 s), drops by reason, MAC-table/neighbour/conntrack sizes, faults, captures (--json for scripts)')
    .action(
      h.run(async (sock, o) => {
        const s = (await apiRequest(sock, 'GET', '/v1/stats/live')) as LiveStats;
        print(o, s, () => renderStats(s));
      }),
    );
  ctl
    .command('metrics')
    .description('the Prometheus text exposition (GET /metrics)')
    .action(
      h.run(async (sock) => {
        const text = await apiRequest(sock, 'GET', '/metrics');
        process.stdout.write(typeof text === 'string' ? text : JSON.stringify(text));
      }),
    );

  program
    .command('top')
    .description('live view of a running instance, refreshed every second: ports by traffic, rates, drops, table sizes (q or Ctrl-C quits)')
    .option('-s, --socket <path>', 'control socket path')
    .option('-i, --instance <name>', 'instance name (default: the only one running)')
    .option('--once', 'print one frame and exit (no terminal control)')
    .action(async (opts: { socket?: string; instance?: string; once?: boolean }) => {
      try {
        await runTop(resolveSocket(opts), { once: opts.once === true });
      } catch (err) {
        process.stderr.write(`tapbridge: ${(err as Error).message}\n`);
        process.exit(1);
      }
    });
}
