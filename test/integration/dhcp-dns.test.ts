/*
 * DHCP and DNS at the gateway, end to end with real clients, in throwaway namespaces
 * (tbt-<pid>-dd-*): busybox udhcpc run by tapbridge for `addresses: dhcp` ports, ISC dhclient
 * (lease written to a file only), scapy for
 * the pool's edge and malformed messages, dig against 10.100.0.1 (UDP and TCP), and dnsmasq
 * in the lab's wan namespace (203.0.113.1) as the upstream resolver. Only 10.100.0.0/24 and
 * 203.0.113.0/24 inside those namespaces are used. Every instance, process and namespace is
 * removed in after(), also when a test fails.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupAll, Tapbridge, tempDir } from '../helpers/tapbridge.js';
import { announceSkip, describeRun, integrationSkipReason, IP, PREFIX, ROOT, run } from '../helpers/sys.js';
import { requireTools, SYS_PYTHON } from '../helpers/tools.js';
import type { PortJson } from '../helpers/nat-lab.js';

const SKIP = integrationSkipReason();
if (SKIP) announceSkip('DHCP/DNS integration tests', SKIP);
const NEEDS = ['ping', 'udhcpc', 'dhclient', 'dnsmasq', 'dig', 'rdisc6', 'python3-scapy'];
const PY = join(ROOT, 'test', 'integration', 'fixtures', 'dhcp-dns.py');

const NAME = `${PREFIX}dd`;
const ns = (role: string) => `${NAME}-${role}`;
const GREEN_MAC = '02:00:00:00:aa:01';
const FIXED_MAC = '02:00:00:00:aa:02';
const DOMAIN = 'lab.test';
/** A TXT answer larger than 512 bytes: a UDP client without EDNS gets TC and retries over TCP. */
const BIG_TXT = ['a', 'b', 'c', 'd'].map((c) => c.repeat(200));

after(async () => {
  const done = await cleanupAll();
  if (done.length > 0) console.error(`cleanup: ${done.join('; ')}`);
});

function config(dir: string): Record<string, unknown> {
  return {
    instance: NAME,
    namespace: { name: ns('host'), create: true },
    bridges: [
      {
        name: 'br0',
        gateway: {
          address: ['10.100.0.1/24', '2001:db8:100::1/64'],
          dhcp: {
            pool: { start: '10.100.0.100', end: '10.100.0.102' },
            leaseTime: 600,
            static: [{ mac: FIXED_MAC, address: '10.100.0.50', hostName: 'fixed' }],
            mtu: 1400,
            leaseFile: join(dir, 'leases.json'),
          },
          dns: { domain: DOMAIN, upstreams: ['203.0.113.1'], timeoutMs: 1000 },
        },
        ports: [
          { name: 'red', type: 'namespace', namespace: ns('red'), addresses: ['10.100.0.2/24', '2001:db8:100::2/64'], defaultRoute: ['10.100.0.1', '2001:db8:100::1'] },
          { name: 'green', type: 'namespace', namespace: ns('green'), mac: GREEN_MAC, addresses: 'dhcp', security: true },
          { name: 'fixed', type: 'namespace', namespace: ns('fixed'), mac: FIXED_MAC, addresses: 'dhcp' },
          { name: 'extra', type: 'namespace', namespace: ns('extra') },
        ],
      },
    ],
    lab: { veths: [{ namespace: ns('wan'), addresses: ['203.0.113.1/24'], peer: 'eth0', peerAddresses: ['203.0.113.3/24'] }] },
  };
}

function exec(role: string, cmd: string, args: string[], timeoutMs = 20_000) {
  return run(IP, ['netns', 'exec', ns(role), cmd, ...args], { timeoutMs });
}

/** The IPv4 address (CIDR) udhcpc put on eth0, waited for. */
async function dhcpAddress(role: string, timeoutMs = 20_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await exec(role, IP, ['-4', '-o', 'addr', 'show', 'dev', 'eth0']);
    const m = /inet (\d+\.\d+\.\d+\.\d+\/\d+)/.exec(r.stdout);
    if (m !== null) return m[1];
    if (Date.now() > end) throw new Error(`no DHCP address in ${role} within ${timeoutMs} ms: ${describeRun(r)}`);
    await new Promise((res) => setTimeout(res, 250));
  }
}

async function py(role: string, ...args: string[]): Promise<Record<string, unknown>> {
  const r = await exec(role, SYS_PYTHON, [PY, ...args], 30_000);
  const last = r.stdout.trim().split('\n').pop() ?? '';
  assert.equal(r.code, 0, `dhcp-dns.py ${args.join(' ')}: ${describeRun(r)}`);
  return JSON.parse(last) as Record<string, unknown>;
}

/** dig @10.100.0.1 (or `server`) from red; the answer section (+short) and the status line. */
async function dig(args: string[], server = '10.100.0.1'): Promise<{ short: string[]; status: string; out: string }> {
  const full = await exec('red', 'dig', [`@${server}`, '+time=4', '+tries=1', ...args], 15_000);
  const status = /status: ([A-Z]+)/.exec(full.stdout)?.[1] ?? `none (${describeRun(full)})`;
  const short = full.stdout
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith(';'))
    .map((l) => l.split(/\s+/).pop()!);
  return { short, status, out: full.stdout };
}

async function gatewayDrops(tb: Tapbridge): Promise<Record<string, number>> {
  const ports = await tb.ctlJson<PortJson[]>('ports');
  return ports.find((p) => p.name === 'gw-br0')!.counters.drops;
}

describe('DHCP and DNS at the gateway', { skip: SKIP ?? false, timeout: 240_000 }, () => {
  let tb: Tapbridge;
  let dnsmasq: ChildProcess | null = null;
  let dir: string;
  let greenAddr = '';

  before(async () => {
    requireTools(NEEDS);
    dir = tempDir();
    tb = await Tapbridge.start(config(dir), { readyTimeoutMs: 30_000 });
    dnsmasq = spawn(IP, ['netns', 'exec', ns('wan'), 'dnsmasq', '--keep-in-foreground', '--no-resolv', '--no-hosts', '--conf-file=/dev/null', '--pid-file=', '--listen-address=203.0.113.1', '--bind-interfaces', '--local-ttl=300', '--address=/outside.example/203.0.113.77', `--txt-record=big.outside.example,${BIG_TXT.map((t) => `"${t}"`).join(',')}`, '--user=root'], { stdio: 'ignore' });
  });

  after(async () => {
    dnsmasq?.kill('SIGTERM');
    await tb?.stop().catch(() => undefined);
  });

  test('udhcpc in a namespace gets a pool address, the default route via the gateway and the MTU; it reaches the gateway and a static namespace (through port security, which lets the leased address pass)', async () => {
    greenAddr = await dhcpAddress('green');
    assert.match(greenAddr, /^10\.100\.0\.10[0-2]\/24$/);
    const route = await exec('green', IP, ['-4', 'route', 'show', 'default']);
    assert.match(route.stdout, /default via 10\.100\.0\.1 dev eth0/);
    const link = await exec('green', IP, ['-o', 'link', 'show', 'dev', 'eth0']);
    assert.match(link.stdout, /mtu 1400/);
    for (const to of ['10.100.0.1', '10.100.0.2']) {
      const p = await exec('green', 'ping', ['-n', '-c', '2', '-i', '0.2', '-W', '2', to]);
      assert.equal(p.code, 0, `green pings ${to}: ${describeRun(p)}`);
    }
  });

  test('a static lease by MAC gets its fixed address; ctl leases lists both', async () => {
    assert.equal(await dhcpAddress('fixed'), '10.100.0.50/24');
    const rows = await tb.ctlJson<{ bridge: string; mac: string; ip: string; state: string; hostName?: string }[]>('leases');
    const green = rows.find((r) => r.mac === GREEN_MAC);
    const fixed = rows.find((r) => r.mac === FIXED_MAC);
    assert.deepEqual([green?.ip, green?.state, green?.bridge], [greenAddr.split('/')[0], 'bound', 'br0'], JSON.stringify(rows));
    assert.deepEqual([fixed?.ip, fixed?.state], ['10.100.0.50', 'bound'], JSON.stringify(rows));
    const text = await tb.ctl('leases');
    assert.match(text.stdout, /10\.100\.0\.50\s+02:00:00:00:aa:02\s+bound/);
  });

  test('dhclient (ISC) gets a lease with router, DNS server and domain', async () => {
    // -sf /bin/true: the lease is only written to its file; nothing on the host (resolv.conf) is touched.
    const cf = join(dir, 'dhclient.conf');
    const lf = join(dir, 'dhclient.leases');
    writeFileSync(cf, 'timeout 15;\nretry 1;\nrequest subnet-mask, routers, domain-name-servers, domain-name, interface-mtu;\n');
    const child = spawn(IP, ['netns', 'exec', ns('extra'), 'dhclient', '-4', '-d', '-1', '-sf', '/bin/true', '-cf', cf, '-lf', lf, '-pf', join(dir, 'dhclient.pid'), 'eth0'], { stdio: 'ignore' });
    try {
      const end = Date.now() + 20_000;
      let lease = '';
      while (!/fixed-address/.test(lease) && Date.now() < end) {
        await new Promise((res) => setTimeout(res, 250));
        lease = existsSync(lf) ? readFileSync(lf, 'utf8') : '';
      }
      assert.match(lease, /fixed-address 10\.100\.0\.10[0-2];/, lease);
      assert.match(lease, /option routers 10\.100\.0\.1;/);
      assert.match(lease, /option domain-name-servers 10\.100\.0\.1;/);
      assert.match(lease, /option domain-name "lab\.test";/);
      assert.match(lease, /option interface-mtu 1400;/);
    } finally {
      child.kill('SIGTERM');
    }
  });

  test('pool exhausted: the last address is offered once, the next client gets no offer and a NAK, counted', async () => {
    const before = await gatewayDrops(tb);
    const first = await py('extra', 'discover', '02:00:00:00:bb:01');
    assert.match(String(first.offer), /^10\.100\.0\.10[0-2]$/, 'the free pool address is offered');
    assert.notEqual(first.offer, greenAddr.split('/')[0]);
    const second = await py('extra', 'discover', '02:00:00:00:bb:02');
    assert.equal(second.offer, null, 'no address left to offer');
    const nak = await py('extra', 'request', '02:00:00:00:bb:02', greenAddr.split('/')[0]);
    assert.equal(nak.reply, 'nak', "another client's address is refused");
    const after = await gatewayDrops(tb);
    assert.ok((after.dhcp_pool_exhausted ?? 0) > (before.dhcp_pool_exhausted ?? 0), JSON.stringify(after));
  });

  test('DNS over UDP: port names, DHCP clients, PTR, a forwarded name, the cache', async () => {
    assert.deepEqual((await dig(['+short', `red.${DOMAIN}`])).short, ['10.100.0.2']);
    assert.deepEqual((await dig(['+short', 'red'])).short, ['10.100.0.2'], 'a bare port name');
    assert.deepEqual((await dig(['+short', `green.${DOMAIN}`])).short, [greenAddr.split('/')[0]], 'a DHCP client by its port name');
    assert.deepEqual((await dig(['+short', `fixed.${DOMAIN}`])).short, ['10.100.0.50']);
    assert.deepEqual((await dig(['+short', '-x', '10.100.0.2'])).short, [`red.${DOMAIN}.`]);
    assert.deepEqual((await dig(['+short', '-x', greenAddr.split('/')[0]])).short, [`green.${DOMAIN}.`], "a DHCP client's PTR");
    assert.equal((await dig([`nobody.${DOMAIN}`])).status, 'NXDOMAIN');
    const fwd = await dig(['www.outside.example']);
    assert.equal(fwd.status, 'NOERROR', fwd.out);
    assert.ok(fwd.short.includes('203.0.113.77'), fwd.out);
  });

  test('measured: 500 sequential UDP queries each for a local name and a cached forwarded one, all answered', async (t) => {
    // One query in flight at a time from a node client in red; RTT median and p99, queries/s.
    const script = `
      const dgram = require('node:dgram');
      const name = process.argv[1];
      const labels = name.split('.');
      const q = (id) => Buffer.concat([Buffer.from([id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
        ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0, 0, 1, 0, 1])]);
      const s = dgram.createSocket('udp4');
      const rtts = []; let id = 1; let sent = 0; let ok = 0;
      const next = () => { if (sent === 500) { s.close(); rtts.sort((a, b) => a - b);
          console.log(JSON.stringify({ ok, median: rtts[250], p99: rtts[495], qps: Math.round(500 / (rtts.reduce((a, b) => a + b, 0) / 1000)) })); return; }
        const t0 = process.hrtime.bigint(); const my = id++; sent++;
        const timer = setTimeout(next, 2000);
        s.once('message', (m) => { clearTimeout(timer); if (m.readUInt16BE(0) === my && (m[3] & 15) === 0 && m.readUInt16BE(6) > 0) ok++;
          rtts.push(Number(process.hrtime.bigint() - t0) / 1e6); next(); });
        s.send(q(my), 53, '10.100.0.1'); };
      next();`;
    for (const name of [`red.${DOMAIN}`, 'www.outside.example']) {
      const r = await exec('red', process.execPath, ['-e', script, name], 60_000);
      assert.equal(r.code, 0, describeRun(r));
      const m = JSON.parse(r.stdout.trim()) as { ok: number; median: number; p99: number; qps: number };
      assert.equal(m.ok, 500, `every query for ${name} answered: ${r.stdout}`);
      t.diagnostic(`[dns] ${name}: median ${m.median.toFixed(3)} ms, p99 ${m.p99.toFixed(3)} ms, ${m.qps} queries/s (one in flight)`);
    }
  });

  test('DNS over IPv6 at the gateway, which router advertisements name as RDNSS', async () => {
    assert.deepEqual((await dig(['+short', 'AAAA', `red.${DOMAIN}`], '2001:db8:100::1')).short, ['2001:db8:100::2']);
    assert.deepEqual((await dig(['+short', `red.${DOMAIN}`], '2001:db8:100::1')).short, ['10.100.0.2']);
    const fwd = await dig(['+short', 'v6.outside.example'], '2001:db8:100::1');
    assert.deepEqual(fwd.short, ['203.0.113.77'], 'forwarded from an IPv6 client');
    const ra = await exec('green', 'rdisc6', ['-1', '-w', '2000', 'eth0'], 15_000);
    assert.match(ra.stdout, /Recursive DNS server\s*:\s*2001:db8:100::1/, describeRun(ra));
  });

  test('DNS over TCP: a local name and a forwarded one', async () => {
    assert.deepEqual((await dig(['+tcp', '+short', `red.${DOMAIN}`])).short, ['10.100.0.2']);
    const fwd = await dig(['+tcp', 'tcp.outside.example']);
    assert.equal(fwd.status, 'NOERROR', fwd.out);
    assert.ok(fwd.short.includes('203.0.113.77'), fwd.out);
  });

  test('a large answer: truncated over UDP, whole over TCP (dig retries)', async () => {
    const r = await dig(['+noedns', '+ignore', 'TXT', 'big.outside.example']);
    assert.match(r.out, /flags: qr[a-z ]* tc/, `truncated over UDP: ${r.out}`);
    const full = await dig(['+noedns', 'TXT', 'big.outside.example']);
    assert.equal(full.status, 'NOERROR', full.out);
    for (const t of BIG_TXT) assert.ok(full.out.includes(t), `the whole TXT record over TCP: ${full.out}`);
  });

  test('malformed DHCP and DNS are dropped and counted by reason; the services keep answering', async () => {
    const before = await gatewayDrops(tb);
    const r = await py('red', 'malformed', '10.100.0.1');
    assert.equal(r.sent, 6);
    await new Promise((res) => setTimeout(res, 500));
    const after = await gatewayDrops(tb);
    for (const reason of ['dhcp_too_short', 'dhcp_bad_cookie', 'dhcp_bad_option', 'dns_too_short', 'dns_bad_pointer', 'dns_truncated'])
      assert.ok((after[reason] ?? 0) > (before[reason] ?? 0), `${reason} counted: ${JSON.stringify(after)}`);
    assert.deepEqual((await dig(['+short', `red.${DOMAIN}`])).short, ['10.100.0.2']);
  });

  test('upstream down: a cached name still answers, a new one gets SERVFAIL', async () => {
    dnsmasq?.kill('SIGTERM');
    dnsmasq = null;
    await new Promise((res) => setTimeout(res, 300));
    const cached = await dig(['www.outside.example']);
    assert.ok(cached.short.includes('203.0.113.77'), `served from the cache: ${cached.out}`);
    assert.equal((await dig(['new.outside.example'])).status, 'SERVFAIL');
  });

  test('restart: the lease file keeps the DHCP client on its address', async () => {
    await tb.stop();
    const file = join(dir, 'leases.json');
    assert.ok(existsSync(file), 'lease file written');
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { leases: { mac: string; ip: string; state: string }[] };
    assert.ok(saved.leases.some((l) => l.mac === GREEN_MAC && l.ip === greenAddr.split('/')[0] && l.state === 'bound'), JSON.stringify(saved));
    tb = await Tapbridge.start(config(dir), { readyTimeoutMs: 30_000 });
    assert.equal(await dhcpAddress('green'), greenAddr, 'same address after the restart');
    const rows = await tb.ctlJson<{ mac: string; ip: string; state: string }[]>('leases');
    assert.ok(rows.some((l) => l.mac === GREEN_MAC && l.state === 'bound'), JSON.stringify(rows));
  });
});
