/*
 * Integration tests of the experiment features with real clients (ping, tshark, tcpdump,
 * iperf3) against a running tapbridge instance in throwaway namespaces (tbx-<pid>-*; see
 * test/helpers/experiments-instance.ts). Only 10.100.0.0/24 inside those namespaces and
 * loopback inside them are used. Every instance is stopped and its namespaces removed in
 * after(), also when a test fails. Needs root, /dev/net/tun, ping, tshark, tcpdump, iperf3.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, IP, Instance, ping, run, sleep } from '../helpers/experiments-instance.js';
import { cleanupAll } from '../helpers/tapbridge.js';
import { announceSkip, integrationSkipReason } from '../helpers/sys.js';
import { requireTools } from '../helpers/tools.js';
import type { CaptureInfo } from '../../src/dataplane/captures.js';
import type { FaultRow } from '../../src/dataplane/faults.js';
import type { LiveStats } from '../../src/control/live.js';

const SKIP = integrationSkipReason();
/** Every tool these tests run: missing ones fail the suites loudly (scripts/run-tests.js installs them). */
const NEEDS = ['ping', 'tshark', 'tcpdump', 'iperf3', 'curl', 'script'];
if (SKIP) announceSkip('experiment integration tests', SKIP);

// whatever a failed test left behind: instances, namespaces, temp dirs
after(async () => {
  const done = await cleanupAll();
  if (done.length > 0) console.error(`cleanup: ${done.join('; ')}`);
});

interface IcmpRow {
  type: number;
  id: number;
  seq: number;
  comment: string;
}

async function tsharkIcmp(file: string): Promise<IcmpRow[]> {
  const r = await run('tshark', ['-r', file, '-Y', 'icmp', '-T', 'fields', '-E', 'separator=|', '-e', 'icmp.type', '-e', 'icmp.ident', '-e', 'icmp.seq', '-e', 'frame.comment']);
  assert.equal(r.code, 0, `tshark -r ${file} failed: ${r.stderr}`);
  return r.stdout
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const [type, id, seq, comment] = l.split('|');
      // icmp.ident may be shown as "BE,LE": take the first
      return { type: Number(type), id: Number(id.split(',')[0]), seq: Number(seq.split(',')[0]), comment: comment ?? '' };
    });
}

async function until<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

describe('experiments on a running instance', { skip: SKIP ?? false, timeout: 240_000 }, () => {
  before(() => requireTools(NEEDS));
  const inst = new Instance({ tag: 'a' });
  before(async () => {
    await inst.start();
    // warm up ARP and the MAC table
    await ping(inst, 'red', '10.100.0.3', 2, 0.2);
  });
  after(async () => {
    await inst.stop();
  });

  test('capture files: pcapng on red ingress and pcap on blue egress hold the pings sent (count, ids, seqs)', async () => {
    const fRed = join(inst.dir, 'red.pcapng');
    const fBlue = join(inst.dir, 'blue.pcap');
    const a = await inst.ctlJson<CaptureInfo>('capture', 'red', fRed, '-d', 'ingress', '-f', 'icmp');
    const b = await inst.ctlJson<CaptureInfo>('capture', 'blue', fBlue, '-d', 'egress', '-f', 'icmp');
    assert.equal(a.format, 'pcapng');
    assert.equal(b.format, 'pcap');
    const p = await ping(inst, 'red', '10.100.0.3', 5, 0.2);
    assert.equal(p.received, 5);
    const sa = await inst.ctlJson<CaptureInfo>('capture', 'stop', String(a.id));
    const sb = await inst.ctlJson<CaptureInfo>('capture', 'stop', String(b.id));
    assert.equal(sa.stopReason, 'stopped by user');
    assert.equal(sa.state, 'stopped');
    assert.equal(sb.packets, 5);

    const red = await tsharkIcmp(fRed);
    const blue = await tsharkIcmp(fBlue);
    assert.equal(red.length, 5, 'red ingress: the 5 echo requests');
    assert.ok(red.every((r) => r.type === 8 && r.comment === 'ingress, before faults'));
    assert.deepEqual(red.map((r) => r.seq), [1, 2, 3, 4, 5]);
    assert.equal(new Set(red.map((r) => r.id)).size, 1, 'one ping: one ICMP id');
    assert.deepEqual(
      blue.map((r) => [r.type, r.id, r.seq]),
      red.map((r) => [r.type, r.id, r.seq]),
      'what red sent is what blue was sent (ids and seqs match)',
    );
    const td = await run('tcpdump', ['-n', '-r', fBlue]);
    assert.equal(td.stdout.trim().split('\n').filter((l) => l.includes('ICMP echo request')).length, 5);
  });

  test('stdout stream works through a pipe into tcpdump', async () => {
    // tcpdump -c 4 exits after 4 packets; ctl notices at its next write (more pings follow)
    const pipeline = run('sh', ['-c', `"${process.execPath}" "${BIN}" ctl --socket ${inst.socket} capture red - -f icmp | tcpdump -n -r - -c 4 2>/dev/null`], 30_000);
    await sleep(1000);
    const p = await ping(inst, 'red', '10.100.0.3', 6, 0.2);
    assert.equal(p.received, 6);
    const r = await pipeline;
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 4, r.stdout);
    assert.equal(lines.filter((l) => / IP 10\.100\.0\.2 > 10\.100\.0\.3: ICMP echo request/.test(l)).length, 2);
    assert.equal(lines.filter((l) => / IP 10\.100\.0\.3 > 10\.100\.0\.2: ICMP echo reply/.test(l)).length, 2);
    const stream = await until('the stream capture to stop', async () => {
      const list = await inst.ctlJson<CaptureInfo[]>('capture', 'list');
      return list.find((c) => c.stream && c.state === 'stopped');
    });
    assert.equal(stream.stopReason, 'client disconnected');

    // with --count the capture ends by itself and says why
    const bounded = run('sh', ['-c', `"${process.execPath}" "${BIN}" ctl --socket ${inst.socket} capture red - -f icmp -c 4 | tcpdump -n -r - 2>/dev/null`], 30_000);
    await sleep(1000);
    await ping(inst, 'red', '10.100.0.3', 2, 0.2);
    const rb = await bounded;
    assert.equal(rb.stdout.trim().split('\n').length, 4);
    assert.match(rb.stderr, /4 packets, 0 dropped; stopped: max_packets reached/);
  });

  test('100% loss on red ingress stops pings; clearing it restores them', async () => {
    const before = (await inst.ctlJson<LiveStats>('stats')).ports.find((p) => p.name === 'red')!.counters.drops.fault_loss ?? 0;
    const rows = await inst.ctlJson<FaultRow[]>('fault', 'set', 'red', '-d', 'ingress', '--loss', '100');
    assert.equal(rows.find((r) => r.direction === 'ingress')!.summary, 'loss 100%');
    const lost = await ping(inst, 'red', '10.100.0.3', 3, 0.3, 1);
    assert.equal(lost.transmitted, 3);
    assert.equal(lost.received, 0);
    const stats = await inst.ctlJson<LiveStats>('stats');
    const red = stats.ports.find((p) => p.name === 'red')!;
    assert.ok(red.counters.drops.fault_loss - before >= 3, JSON.stringify(red.counters.drops));
    assert.ok(stats.faults.find((f) => f.port === 'red' && f.direction === 'ingress')!.counters.lossDrops >= 3);
    await inst.ctlJson('fault', 'clear', 'red');
    const back = await ping(inst, 'red', '10.100.0.3', 3, 0.2);
    assert.equal(back.received, 3);
  });

  test('100 ms delay raises the ping RTT by about 100 ms', async (t) => {
    const base = await ping(inst, 'red', '10.100.0.3', 5, 0.2);
    assert.ok(base.avgMs !== null);
    await inst.ctlJson('fault', 'set', 'red', '-d', 'egress', '--delay', '100');
    try {
      const slow = await ping(inst, 'red', '10.100.0.3', 5, 0.2, 2);
      assert.equal(slow.received, 5);
      const added = slow.avgMs! - base.avgMs!;
      t.diagnostic(`ping RTT ${base.avgMs} ms -> ${slow.avgMs} ms with 100 ms delay on red egress`);
      assert.ok(added > 90 && added < 130, `RTT ${base.avgMs} ms -> ${slow.avgMs} ms (+${added.toFixed(1)} ms)`);
      const f = (await inst.ctlJson<FaultRow[]>('fault', 'list', 'red')).find((r) => r.direction === 'egress')!;
      assert.ok(f.counters.delayed >= 5);
    } finally {
      await inst.ctlJson('fault', 'clear', 'red');
    }
  });

  test('a 10 Mbit/s rate limit caps iperf3 near 10 Mbit/s', async (t) => {
    const server = spawn(IP, ['netns', 'exec', inst.ns('blue'), 'iperf3', '-s', '-1', '-p', '5201'], { stdio: 'ignore' });
    try {
      await sleep(500);
      await inst.ctlJson('fault', 'set', 'red', '-d', 'ingress', '--rate', '10mbit');
      const r = await inst.exec('red', 'iperf3', ['-c', '10.100.0.3', '-p', '5201', '-t', '3', '-J'], 30_000);
      assert.equal(r.code, 0, r.stderr + r.stdout.slice(0, 500));
      const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
      const bps = j.end.sum_received.bits_per_second;
      t.diagnostic(`iperf3 TCP red -> blue with a 10mbit rate limit on red ingress: ${(bps / 1e6).toFixed(2)} Mbit/s received`);
      assert.ok(bps > 8e6 && bps < 12e6, `iperf3 received ${(bps / 1e6).toFixed(2)} Mbit/s`);
    } finally {
      server.kill('SIGTERM');
      await inst.ctlJson('fault', 'clear', 'red');
    }
  });

  test('carrier down shows NO-CARRIER in the namespace, up restores it', async () => {
    const show = async () => (await run(IP, ['-n', inst.ns('red'), 'link', 'show', 'eth0'])).stdout;
    assert.doesNotMatch(await show(), /NO-CARRIER/);
    await inst.ctl('link', 'red', 'down');
    try {
      await until('NO-CARRIER', async () => /NO-CARRIER/.test(await show()));
    } finally {
      await inst.ctl('link', 'red', 'up');
    }
    await until('carrier back', async () => !/NO-CARRIER/.test(await show()));
    // the fault form of link down: frames dropped, carrier stays on
    await inst.ctlJson('fault', 'set', 'red', '-d', 'egress', '--down');
    try {
      assert.equal((await ping(inst, 'red', '10.100.0.3', 2, 0.3, 1)).received, 0);
      assert.doesNotMatch(await show(), /NO-CARRIER/);
    } finally {
      await inst.ctlJson('fault', 'clear', 'red');
    }
  });

  test('capture files are opened safely: no symlinks, regular files only, no silent truncation, mode 0600, never blocking', async () => {
    const post = (file: string, extra: Record<string, unknown> = {}) => inst.http('POST', '/v1/captures', JSON.stringify({ target: 'red', file, maxPackets: 1, ...extra }));
    const victim = join(inst.dir, 'victim');
    writeFileSync(victim, 'precious\n');
    const link = join(inst.dir, 'cap-link.pcap');
    symlinkSync(victim, link);
    let r = await post(link, { overwrite: true });
    assert.equal(r.status, 400, r.text);
    assert.match((r.json as { error: string }).error, /symbolic link/);
    assert.equal(readFileSync(victim, 'utf8'), 'precious\n', 'the symlink target is untouched');
    r = await post('/proc/self/mem', { overwrite: true });
    assert.equal(r.status, 400, r.text);
    assert.match((r.json as { error: string }).error, /not a regular file|cannot open/);
    // a FIFO: refused at once; forwarding never stops meanwhile
    const fifo = join(inst.dir, 'cap.fifo');
    const mk = await run('mkfifo', [fifo]);
    assert.equal(mk.code, 0, mk.stderr);
    const pinging = ping(inst, 'red', '10.100.0.3', 20, 0.05);
    const t0 = Date.now();
    r = await post(fifo, { overwrite: true });
    assert.equal(r.status, 400, r.text);
    assert.ok(Date.now() - t0 < 2000, `the FIFO was refused in ${Date.now() - t0} ms`);
    const p = await pinging;
    assert.equal(p.received, 20, `red -> blue kept flowing: ${p.received}/20`);
    // an existing file with data is not truncated unless asked
    const existing = join(inst.dir, 'old.pcap');
    writeFileSync(existing, 'old data\n');
    r = await post(existing);
    assert.equal(r.status, 400, r.text);
    assert.match((r.json as { error: string }).error, /exists/);
    assert.equal(readFileSync(existing, 'utf8'), 'old data\n');
    r = await post(existing, { overwrite: true });
    assert.equal(r.status, 200, r.text);
    await inst.ctl('capture', 'stop', String((r.json as CaptureInfo).id));
    // a new file is created 0600
    const fresh = join(inst.dir, 'fresh.pcap');
    r = await post(fresh);
    assert.equal(r.status, 200, r.text);
    await inst.ctl('capture', 'stop', String((r.json as CaptureInfo).id));
    assert.equal(statSync(fresh).mode & 0o777, 0o600);
  });

  test('the API answers malformed JSON, unknown ports and bad values with 4xx', async () => {
    const cases: [string, string, string | undefined, number, RegExp][] = [
      ['POST', '/v1/ports/red/faults', '{"loss": ', 400, /malformed JSON/],
      ['POST', '/v1/ports/nope/faults', '{"loss":{"percent":1}}', 404, /no port named 'nope'/],
      ['DELETE', '/v1/ports/nope/faults', undefined, 404, /no port named 'nope'/],
      ['POST', '/v1/ports/red/faults', '{"loss":{"percent":101}}', 400, /loss\.percent/],
      ['POST', '/v1/ports/red/faults', '{"direction":"up"}', 400, /direction/],
      ['POST', '/v1/captures', '{"target":"red"}', 400, /file/],
      ['POST', '/v1/captures', '{"target":"nope","stream":true}', 404, /no port named 'nope'/],
      ['POST', '/v1/captures', '{"target":"red","stream":true,"filter":"tcp port"}', 400, /filter/],
      ['GET', '/v1/captures/999', undefined, 404, /no capture with id 999/],
      ['DELETE', '/v1/captures/x', undefined, 400, /not a capture id/],
      ['PUT', '/v1/faults', undefined, 405, /not allowed/],
    ];
    for (const [method, path, body, status, re] of cases) {
      const r = await inst.http(method, path, body);
      assert.equal(r.status, status, `${method} ${path} ${body ?? ''}: ${r.text}`);
      assert.match((r.json as { error: string }).error, re);
    }
    const c = await inst.ctl('fault', 'set', 'nope', '--loss', '1');
    assert.equal(c.code, 1);
    assert.match(c.stderr, /no port named 'nope'/);
    // still alive
    assert.equal((await inst.http('GET', '/v1/faults')).status, 200);
  });

  test('stats with rates, Prometheus metrics and top', async () => {
    await ping(inst, 'red', '10.100.0.3', 40, 0.05);
    const s = await inst.ctlJson<LiveStats>('stats');
    const red = s.ports.find((p) => p.name === 'red')!;
    assert.ok(red.rates.rx_pps > 0 && red.rates.rx_bps > 0, JSON.stringify(red.rates));
    assert.ok(s.rateWindowSeconds >= 1);
    assert.equal(s.bridges[0].macs >= 2, true);
    const text = await inst.ctl('stats');
    assert.match(text.stdout, /^red\s+br0\s+up/m);
    const m = await inst.ctl('metrics');
    assert.match(m.stdout, /tapbridge_port_rx_packets_total\{port="red",bridge="br0"\} \d+/);
    assert.match(m.stdout, /tapbridge_bridge_macs\{bridge="br0"\} \d+/);
    const once = await run(process.execPath, [BIN, 'top', '--socket', inst.socket, '--once']);
    assert.equal(once.code, 0, once.stderr);
    assert.match(once.stdout, /^red\s+up/m);
    assert.match(once.stdout, /^blue\s+up/m);
    // interactive: in a pseudo-terminal, q quits and the terminal is restored
    const top = spawn('script', ['-qfec', `"${process.execPath}" "${BIN}" top --socket ${inst.socket}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    top.stdout.on('data', (d: Buffer) => (out += d.toString('latin1')));
    const exited = new Promise<number | null>((r) => top.once('exit', (code) => r(code)));
    try {
      await until('top to draw', async () => out.includes('RX_PPS'), 10_000);
      top.stdin.write('q');
      const code = await Promise.race([exited, sleep(5000).then(() => 'timeout' as const)]);
      assert.equal(code, 0, `top did not quit on q: ${code}`);
      assert.ok(out.includes('\x1b[?1049h') && out.includes('\x1b[?1049l'), 'alternate screen entered and left');
      assert.ok(out.includes('\x1b[?25h'), 'cursor shown again');
    } finally {
      if (top.exitCode === null) top.kill('SIGKILL');
    }
  });
});

describe('an experiment declared in the config', { skip: SKIP ?? false, timeout: 120_000 }, () => {
  before(() => requireTools(NEEDS));
  const METRICS_PORT = 19464;
  const inst = new Instance({
    tag: 'b',
    experiment: {
      faults: [{ port: 'red', direction: 'ingress', loss: { percent: 100 }, seed: 42 }],
      captures: [{ port: 'red', file: '', direction: 'ingress', filter: 'icmp' }],
      metrics: { listen: `127.0.0.1:${METRICS_PORT}` },
    },
  });
  let capFile = '';
  before(async () => {
    capFile = join(inst.dir, 'at-start.pcap');
    (inst.opts.experiment as { captures: { file: string }[] }).captures[0].file = capFile;
    await inst.start();
  });
  after(async () => {
    await inst.stop();
  });

  test('faults and captures apply at start; the metrics listener answers on loopback; the file is complete at stop', async () => {
    // red's ARP requests are lost too: give red a static neighbour so the pings go out
    const link = JSON.parse((await run(IP, ['-j', '-n', inst.ns('blue'), 'link', 'show', 'eth0'])).stdout) as { address: string }[];
    const neigh = await run(IP, ['-n', inst.ns('red'), 'neigh', 'replace', '10.100.0.3', 'lladdr', link[0].address, 'dev', 'eth0', 'nud', 'permanent']);
    assert.equal(neigh.code, 0, neigh.stderr);
    const p = await ping(inst, 'red', '10.100.0.3', 3, 0.3, 1);
    assert.equal(p.transmitted, 3);
    assert.equal(p.received, 0, 'the 100% loss from the config is active');
    const faults = await inst.ctlJson<FaultRow[]>('fault', 'list');
    assert.equal(faults.length, 1);
    assert.equal(faults[0].summary, 'loss 100%, seed 42');
    assert.ok(faults[0].counters.lossDrops >= 3);
    const caps = await inst.ctlJson<CaptureInfo[]>('capture', 'list');
    assert.equal(caps.length, 1);
    assert.equal(caps[0].file, capFile);
    assert.equal(caps[0].state, 'running');
    const metrics = await inst.exec('host', 'curl', ['-s', '--max-time', '5', `http://127.0.0.1:${METRICS_PORT}/metrics`]);
    assert.equal(metrics.code, 0, metrics.stderr);
    assert.match(metrics.stdout, /tapbridge_fault_events_total\{port="red",direction="ingress",event="lossDrops"\} [1-9]/);
    assert.match(metrics.stdout, /tapbridge_port_drops_total\{port="red",bridge="br0",reason="fault_loss"\} [1-9]/);
    await inst.stop();
    // ingress is captured before faults: the dropped echo requests are in the file, which
    // is complete once the instance has stopped
    const rows = await tsharkIcmp(capFile);
    assert.equal(rows.length, 3);
    assert.deepEqual(rows.map((r) => [r.type, r.seq]), [[8, 1], [8, 2], [8, 3]]);
  });
});

describe('a bad experiment config', { skip: SKIP ?? false, timeout: 60_000 }, () => {
  test('is rejected before anything is created, naming the fields', async () => {
    const inst = new Instance({
      tag: 'c',
      experiment: {
        faults: [{ port: 'red', direction: 'ingress', loss: { percent: 150 } }],
        captures: [{ port: 'red', file: '/tmp/x.pcap', filter: 'tcp port' }],
      },
    });
    try {
      const r = await run(process.execPath, [BIN, 'run', '--config', inst.configFile()]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /experiment\.faults\[0\]\.loss\.percent: a percentage: 0\.\.100/);
      assert.match(r.stderr, /experiment\.captures\[0\]\.filter: bad filter expression/);
      const ns = (await run(IP, ['netns', 'list'])).stdout;
      assert.doesNotMatch(ns, new RegExp(inst.prefix));
    } finally {
      await inst.stop();
    }
  });
});
