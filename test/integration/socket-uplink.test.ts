/*
 * The socket uplink end to end (issue 10): tapbridge runs inside a namespace `hostsim` that
 * plays the host, with `uplink: { type: socket }`; the namespaces reach hostsim's addresses
 * only through tapbridge's own host sockets (no route, no NAT, no AF_PACKET):
 *
 *   red 10.100.0.2, blue 10.100.0.3 (no offloads) ── br0 / gateway 10.100.0.1 ── sockup (host sockets of hostsim)
 *   hostsim: 198.51.100.1/24 (HTTP :8080, iperf3 :5201, UDP echo :9000, half-close :8082),
 *            on its veth to client 198.51.100.2/24; HTTP on 127.0.0.1:8081, DNS on 127.0.0.1:5353
 *            (the gateway's DNS upstream)
 *   published: 8000/tcp+udp -> red:8000 (lab HTTP and UDP echo naming the client address)
 *
 * All names start with tbt-<pid>-; servers run in their own process groups and are killed in
 * after(), with the namespaces, also on failure. Every command has a timeout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { IP, PREFIX, TIMEOUT, addNamespace, announceSkip, check, describeRun, integrationSkipReason, ip, run, waitFor, type RunResult } from '../helpers/sys.js';
import { Tapbridge, cleanupAll, trackNamespace } from '../helpers/tapbridge.js';
import { requireTools } from '../helpers/tools.js';
import { parseIperf } from '../helpers/nat-lab.js';
import { HTTP_GETS_SCRIPT } from '../helpers/net.js';

const NEEDS = ['curl', 'iperf3', 'ss', 'ping', 'dig'];
const SKIP = integrationSkipReason();
if (SKIP !== null) announceSkip('socket uplink integration tests', SKIP);

const HOSTSIM = `${PREFIX}su-hostsim`;
const CLIENT = `${PREFIX}su-client`;
const RED = `${PREFIX}su-red`;
const BLUE = `${PREFIX}su-blue`;
const GREEN = `${PREFIX}su-green`;
const HOST_IP = '198.51.100.1';
const PER_TENANT = 240;

const SERVERS = `
const http = require('node:http');
const dgram = require('node:dgram');
const hello = (name) => (req, res) => res.end(name + ' sees ' + req.socket.remoteAddress + '\\n');
http.createServer(hello('hostsim')).listen(8080, '${HOST_IP}');
http.createServer(hello('loopback')).listen(8081, '127.0.0.1');
const u = dgram.createSocket('udp4');
u.on('message', (m, r) => u.send('echo ' + m, r.port, r.address));
u.bind(9000, '${HOST_IP}');
// Reads to the end of the client's stream, then answers with the byte count and closes (half-close).
require('node:net').createServer({ allowHalfOpen: true }, (c) => { let n = 0; c.on('data', (d) => (n += d.length)); c.on('end', () => c.end('got ' + n + '\\n')); }).listen(8082, '${HOST_IP}');
// A DNS server on the host loopback (as a resolv.conf 127.0.0.53 would be): every A query -> 203.0.113.7.
const dns = dgram.createSocket('udp4');
dns.on('message', (q, r) => {
  const end = q.indexOf(0, 12) + 5;
  const a = Buffer.concat([q.subarray(0, 2), Buffer.from([0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]), q.subarray(12, end), Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 203, 0, 113, 7])]);
  dns.send(a, r.port, r.address);
});
dns.bind(5353, '127.0.0.1');
`;

/** Background processes in their own process groups: the whole group goes on kill. */
const groups: ChildProcess[] = [];
function bgInNs(ns: string, cmd: string, args: string[], seconds: number): ChildProcess {
  const child = spawn(IP, ['netns', 'exec', ns, TIMEOUT, '-k', '2', String(seconds), cmd, ...args], { stdio: 'ignore', detached: true });
  groups.push(child);
  return child;
}
function killGroups(): void {
  for (const c of groups) {
    try {
      if (c.pid !== undefined) process.kill(-c.pid, 'SIGKILL');
    } catch {
      /* gone already */
    }
  }
}

function exec(ns: string, cmd: string, args: string[], timeoutMs = 15_000): Promise<RunResult> {
  return run(IP, ['netns', 'exec', ns, cmd, ...args], { timeoutMs });
}

async function listening(ns: string, proto: 'tcp' | 'udp', port: number): Promise<void> {
  await waitFor(`${proto}/${port} listening in ${ns}`, async () => (await exec(ns, 'ss', ['-Hln', proto === 'tcp' ? '-t' : '-u'], 5000)).stdout.includes(`:${port} `), { timeoutMs: 10_000, intervalMs: 50 });
}

/** Hold N connections open at once, report how many connected and how many were reset. */
const HOLD = `
const net = require('node:net');
const [host, port, n] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
let connected = 0, reset = 0, other = 0, done = 0;
const socks = [];
for (let i = 0; i < n; i++) {
  const s = net.connect(port, host);
  socks.push(s);
  s.on('connect', () => { connected++; });
  s.on('error', (e) => { if (e.code === 'ECONNRESET' || e.code === 'ECONNREFUSED') reset++; else other++; });
}
setTimeout(() => { console.log(JSON.stringify({ connected, reset, other })); socks.forEach((s) => s.destroy()); process.exit(0); }, 2500);
`;

describe('socket uplink (tapbridge inside hostsim)', { skip: SKIP ?? false, timeout: 120_000 }, () => {
  let tb: Tapbridge;
  const ctl = <T>(...args: string[]) => tb.ctlJson<T>(...args);
  const uplinkDrops = async (): Promise<Record<string, number>> => {
    const ports = await ctl<{ name: string; counters: { drops: Record<string, number> } }[]>('ports');
    return ports.find((p) => p.name === 'uplink')?.counters.drops ?? {};
  };

  before(async () => {
    requireTools(NEEDS);
    for (const n of [HOSTSIM, CLIENT, GREEN]) {
      trackNamespace(n);
      await addNamespace(n, { ipv6: false });
    }
    // hostsim's address sits on its veth to the client (this kernel has no dummy links).
    await ip('-n', HOSTSIM, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', CLIENT);
    await ip('-n', HOSTSIM, 'addr', 'add', `${HOST_IP}/24`, 'dev', 'v0');
    await ip('-n', HOSTSIM, 'link', 'set', 'v0', 'up');
    await ip('-n', CLIENT, 'addr', 'add', '198.51.100.2/24', 'dev', 'eth0');
    await ip('-n', CLIENT, 'link', 'set', 'eth0', 'up');
    // Ping sockets allowed for everyone in hostsim (per-namespace sysctl).
    await check(IP, ['netns', 'exec', HOSTSIM, 'sysctl', '-qw', 'net.ipv4.ping_group_range=0 2147483647']);
    bgInNs(HOSTSIM, process.execPath, ['-e', SERVERS], 110);
    bgInNs(HOSTSIM, 'iperf3', ['-s', '-B', HOST_IP, '-p', '5201'], 110);
    await listening(HOSTSIM, 'tcp', 8080);
    await listening(HOSTSIM, 'tcp', 8081);
    await listening(HOSTSIM, 'tcp', 8082);
    await listening(HOSTSIM, 'udp', 5353);
    await listening(HOSTSIM, 'udp', 9000);
    await listening(HOSTSIM, 'tcp', 5201);
    const port = (name: string, ns: string, addr: string, offload = true) => ({ name, type: 'namespace', namespace: ns, addresses: [addr], defaultRoute: '10.100.0.1', offload });
    tb = await Tapbridge.start({
      instance: `${PREFIX}su`,
      namespace: { name: HOSTSIM, create: false },
      bridges: [{ name: 'br0', gateway: { address: '10.100.0.1/24', dns: { upstreams: ['127.0.0.1:5353'] } }, ports: [port('red', RED, '10.100.0.2/24'), port('blue', BLUE, '10.100.0.3/24', false)] }],
      uplink: { type: 'socket', maxSocketsPerTenant: PER_TENANT },
      nat: { publish: [{ proto: 'tcp', port: 8000, to: '10.100.0.2' }, { proto: 'udp', port: 8000, to: '10.100.0.2' }] },
      lab: { services: [{ namespace: RED, http: 8000, udpEcho: 8000 }] },
    });
    await listening(RED, 'tcp', 8000);
  });

  after(async () => {
    killGroups();
    try {
      if (tb !== undefined) await tb.stop();
    } finally {
      await cleanupAll();
    }
  });

  const curl = async (ns: string, url: string): Promise<string> => {
    const r = await exec(ns, 'curl', ['-sS', '--max-time', '5', url], 10_000);
    assert.equal(r.code, 0, `curl ${url} from ${ns}:\n${describeRun(r)}\n--- tapbridge ---\n${tb.output.slice(-3000)}`);
    return r.stdout;
  };

  test('TCP out: red fetches a page from hostsim through a host socket (the server sees hostsim itself)', async () => {
    const body = await curl(RED, `http://${HOST_IP}:8080/`);
    assert.match(body, /^hostsim sees 198\.51\.100\.1\n$/);
  });

  test('a trace through the socket uplink opens no socket', async () => {
    const before = (await ctl<{ elements: { name: string; counters: Record<string, number> }[] }>('graph')).elements.find((e) => e.name === 'sockup')!.counters.connects;
    const t = await ctl<{ outputs: string[]; path: { to: string }[] }>('trace', '--port', 'red', '--dst', HOST_IP, '--proto', 'tcp', '--dport', '8080');
    assert.ok(t.path.some((h) => h.to === 'sockup'), JSON.stringify(t));
    assert.deepEqual(t.outputs, [`host socket toward ${HOST_IP}:8080`]);
    const after = (await ctl<{ elements: { name: string; counters: Record<string, number> }[] }>('graph')).elements.find((e) => e.name === 'sockup')!.counters.connects;
    assert.equal(after, before);
  });

  test('a closed port answers with a reset at once (curl: connection refused)', async () => {
    const r = await exec(RED, 'curl', ['-sS', '--max-time', '5', `http://${HOST_IP}:8099/`], 10_000);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Connection refused|Couldn't connect/, describeRun(r));
    assert.ok((await uplinkDrops()).connect_failed >= 1, 'connect_failed counted');
  });

  test('an unreachable destination answers the SYN with ICMP host unreachable (not a reset, not a hang)', async () => {
    const r = await exec(RED, 'curl', ['-sS', '--max-time', '10', `http://198.51.100.99/`], 15_000);
    assert.equal(r.code, 7, describeRun(r)); // 28 would be curl's own timeout
    assert.doesNotMatch(r.stderr, /Connection refused/, describeRun(r));
    const graph = await ctl<{ elements: { name: string; counters: Record<string, number> }[] }>('graph');
    assert.equal(graph.elements.find((e) => e.name === 'sockup')!.counters.unreachablesSent, 1);
  });

  test('iperf3 red <-> hostsim, both directions, moves data without errors', async () => {
    for (const reverse of [false, true]) {
      const r = await exec(RED, 'iperf3', ['-c', HOST_IP, '-p', '5201', '-t', '2', '-J', ...(reverse ? ['-R'] : [])], 20_000);
      const j = parseIperf(r, `iperf3${reverse ? ' -R' : ''}`);
      assert.equal(j.error, undefined, `iperf3 error: ${j.error}\n${tb.output.slice(-2000)}`);
      const got = j.end?.sum_received?.bytes ?? 0;
      assert.ok(got > 0, `no bytes received (${reverse ? 'hostsim -> red' : 'red -> hostsim'})`);
      const graph = await ctl<{ elements: { name: string; counters: Record<string, number> }[] }>('graph');
      const c = graph.elements.find((e) => e.name === 'sockup')!.counters;
      console.log(`# iperf3 ${reverse ? 'hostsim -> red' : 'red -> hostsim'}: ${((j.end?.sum_received?.bits_per_second ?? 0) / 1e9).toFixed(2)} Gbit/s (sockup: ${c.retransmits} retransmits, ${c.partialSends} partial sends)`);
    }
  });

  test('toward a port without offloads (blue): MSS-sized frames, no GSO drop', async () => {
    const r = await exec(BLUE, 'iperf3', ['-c', HOST_IP, '-p', '5201', '-t', '1', '-R', '-J'], 20_000);
    const j = parseIperf(r, 'iperf3 -R from blue');
    assert.equal(j.error, undefined, `iperf3 error: ${j.error}`);
    assert.ok((j.end?.sum_received?.bytes ?? 0) > 0);
    const ports = await ctl<{ name: string; counters: { drops: Record<string, number> } }[]>('ports');
    assert.equal(ports.find((p) => p.name === 'blue')!.counters.drops.gso_to_non_offload_port ?? 0, 0);
    console.log(`# iperf3 hostsim -> blue (no offloads): ${((j.end?.sum_received?.bits_per_second ?? 0) / 1e9).toFixed(2)} Gbit/s`);
  });

  test('published TCP port: the client reaches red, and red sees the client address', async () => {
    const body = await curl(CLIENT, `http://${HOST_IP}:8000/`);
    assert.match(body, /198\.51\.100\.2/, body);
  });

  test('UDP: red gets its echo from hostsim; the published UDP port reaches red from the client', async () => {
    const script = `const s=require('node:dgram').createSocket('udp4');const t=setTimeout(()=>process.exit(2),3000);s.on('message',(m)=>{process.stdout.write(m.toString());clearTimeout(t);s.close();});s.send('ping',Number(process.argv[2]),process.argv[1]);`;
    const r = await exec(RED, process.execPath, ['-e', script, HOST_IP, '9000'], 8000);
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(r.stdout, 'echo ping');
    const c = await exec(CLIENT, process.execPath, ['-e', script, HOST_IP, '8000'], 8000);
    assert.equal(c.code, 0, describeRun(c));
    assert.match(c.stdout, /198\.51\.100\.2/, c.stdout);
  });

  test('half-close: red sends 100 kB and its FIN, hostsim answers after the end of stream, then closes', async () => {
    const script = `const c=require('node:net').connect(8082,process.argv[1],()=>{c.end(Buffer.alloc(100000,7));});let r='';c.on('data',(d)=>(r+=d));c.on('end',()=>{process.stdout.write(r);process.exit(0);});setTimeout(()=>process.exit(3),5000);`;
    const r = await exec(RED, process.execPath, ['-e', script, HOST_IP], 10_000);
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(r.stdout, 'got 100000\n');
  });

  test('a port published on the host loopback only: reached from hostsim 127.0.0.1, seen in red as 10.0.2.2', async () => {
    await ctl('forwards', 'add', '127.0.0.1:8002/tcp=10.100.0.2:8000');
    try {
      assert.match(await curl(HOSTSIM, 'http://127.0.0.1:8002/'), /10\.0\.2\.2/);
      const r = await exec(CLIENT, 'curl', ['-sS', '--max-time', '3', `http://${HOST_IP}:8002/`], 8000);
      assert.notEqual(r.code, 0, 'not on the outside address');
    } finally {
      await ctl('forwards', 'rm', '8002/tcp');
    }
  });

  test("the gateway's DNS forwards to an upstream on the host loopback", async () => {
    const r = await exec(RED, 'dig', ['+short', '+time=2', '+tries=1', '@10.100.0.1', 'www.example.test', 'A'], 10_000);
    assert.equal(r.stdout.trim(), '203.0.113.7', describeRun(r));
  });

  test('the host loopback through 10.0.2.2', async () => {
    assert.match(await curl(RED, 'http://10.0.2.2:8081/'), /^loopback sees 127\.0\.0\.1\n$/);
  });

  test('ping hostsim through a ping socket; refused ping sockets are counted', async () => {
    const r = await exec(RED, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', HOST_IP], 10_000);
    assert.equal(r.code, 0, describeRun(r));
    await check(IP, ['netns', 'exec', HOSTSIM, 'sysctl', '-qw', 'net.ipv4.ping_group_range=1 0']);
    const before = (await uplinkDrops()).icmp_echo_not_permitted ?? 0;
    const r2 = await exec(BLUE, 'ping', ['-c', '1', '-W', '1', HOST_IP], 10_000);
    assert.notEqual(r2.code, 0);
    assert.ok(((await uplinkDrops()).icmp_echo_not_permitted ?? 0) > before, 'icmp_echo_not_permitted counted');
  });

  test('ctl forwards add/rm at runtime', async () => {
    await ctl('forwards', 'add', '8001/tcp=10.100.0.2:8000');
    const rows = await ctl<{ proto: string; port: number; to: string; toPort: number; hostAddress: string }[]>('forwards');
    assert.ok(rows.some((r) => r.proto === 'tcp' && r.port === 8001 && r.to === '10.100.0.2' && r.toPort === 8000 && r.hostAddress === '0.0.0.0'), JSON.stringify(rows));
    assert.match(await curl(CLIENT, `http://${HOST_IP}:8001/`), /198\.51\.100\.2/);
    await ctl('forwards', 'rm', '8001/tcp');
    const r = await exec(CLIENT, 'curl', ['-sS', '--max-time', '3', `http://${HOST_IP}:8001/`], 8000);
    assert.notEqual(r.code, 0);
  });

  test('a port attached at runtime: it reaches hostsim, and its publish entry is a listening socket until it goes', async () => {
    bgInNs(GREEN, process.execPath, ['-e', `require('node:http').createServer((q, s) => s.end('green sees ' + q.socket.remoteAddress + '\\n')).listen(9100)`], 60);
    await listening(GREEN, 'tcp', 9100);
    await ctl('ports', 'add', 'green', '--netns', GREEN, '--address', '10.100.0.7/24', '--gateway', '10.100.0.1', '--publish', '9100/tcp');
    assert.match(await curl(GREEN, `http://${HOST_IP}:8080/`), /^hostsim sees/);
    assert.match(await curl(CLIENT, `http://${HOST_IP}:9100/`), /^green sees (::ffff:)?198\.51\.100\.2\n$/);
    await ctl('ports', 'rm', 'green');
    const r = await exec(CLIENT, 'curl', ['-sS', '--max-time', '3', `http://${HOST_IP}:9100/`], 8000);
    assert.notEqual(r.code, 0, 'the published port went with the port');
  });

  test('200 concurrent connections and a storm of 400 short ones all succeed', async () => {
    for (const [count, parallel] of [[200, 200], [400, 20]]) {
      const r = await exec(RED, process.execPath, ['-e', HTTP_GETS_SCRIPT, `http://${HOST_IP}:8080/`, String(count), String(parallel)], 40_000);
      assert.equal(r.stdout.trim().split(' ').slice(0, 4).join(' '), `ok ${count} fail 0`, `${describeRun(r)}\n${tb.output.slice(-2000)}`);
    }
  });

  test('per-tenant bound: connections beyond maxSocketsPerTenant are reset and counted', async () => {
    const before = (await uplinkDrops()).tenant_sockets_exhausted ?? 0;
    const r = await exec(BLUE, process.execPath, ['-e', HOLD, HOST_IP, '8080', String(PER_TENANT + 10)], 15_000);
    assert.equal(r.code, 0, describeRun(r));
    const got = JSON.parse(r.stdout) as { connected: number; reset: number; other: number };
    assert.equal(got.connected, PER_TENANT, r.stdout);
    assert.equal(got.reset, 10, r.stdout);
    assert.ok(((await uplinkDrops()).tenant_sockets_exhausted ?? 0) >= before + 10);
  });

  test('teardown leaves no socket of tapbridge in hostsim', async () => {
    await tb.stop();
    const l = await exec(HOSTSIM, 'ss', ['-Hlntu'], 5000);
    assert.doesNotMatch(l.stdout, /:8000 /, l.stdout);
    const e = await exec(HOSTSIM, 'ss', ['-Htn', 'state', 'established'], 5000);
    assert.equal(e.stdout.trim(), '', `connections left:\n${e.stdout}`);
  });
});
