/*
 * The tools for IPv6 end to end (issue 9 item 7): `ctl trace` of IPv6 packets, `ctl neigh`,
 * captures with IPv6 filters read back by tshark, IPv6 counters in `ctl stats` and the
 * metrics, with real clients (ping -6) in throwaway namespaces:
 *
 *   tbt-<pid>-v6t-red  10.100.0.2, 2001:db8:100::2 ─┐
 *   tbt-<pid>-v6t-blue 10.100.0.3, 2001:db8:100::3 ─┴─ br0, gateway 10.100.0.1, 2001:db8:100::1
 *   uplink 203.0.113.2, 2001:db8:113::2 (tapbridge in tbt-<pid>-v6t-host) ── veth ── tbt-<pid>-v6t-wan 2001:db8:113::1
 *
 * No NAT: nothing is published and wan has no route back; the one packet sent toward wan only
 * has to reach it. Traffic only inside 2001:db8::/32 and 10.100.0.0/24 of these namespaces; a
 * few pings, every command with a timeout; the instance is stopped and everything removed in
 * after(), also when a test fails. Needs root, /dev/net/tun, ping, tshark.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Neighbor6Row } from '../../src/cli/render.js';
import type { LiveStats } from '../../src/control/live.js';
import type { CaptureInfo } from '../../src/dataplane/captures.js';
import type { TraceResult } from '../../src/dataplane/trace.js';
import { ping } from '../helpers/net.js';
import { PREFIX, announceSkip, describeRun, integrationSkipReason, macOf, run } from '../helpers/sys.js';
import { Tapbridge, cleanupAll, tempDir } from '../helpers/tapbridge.js';
import { requireTools } from '../helpers/tools.js';

const SKIP = integrationSkipReason();
const NEEDS = ['ping', 'tshark'];
if (SKIP !== null) announceSkip('IPv6 tools integration tests', SKIP);

const INSTANCE = `${PREFIX}v6t`;
const ns = (role: 'host' | 'red' | 'blue' | 'wan') => `${INSTANCE}-${role}`;
const GW = '2001:db8:100::1';
const RED = '2001:db8:100::2';
const BLUE = '2001:db8:100::3';
const WAN = '2001:db8:113::1';

const CONFIG = {
  instance: INSTANCE,
  namespace: { name: ns('host'), create: true },
  bridges: [
    {
      name: 'br0',
      gateway: { address: ['10.100.0.1/24', `${GW}/64`], mac: '02:74:62:00:00:01' },
      ports: [
        { name: 'red', type: 'namespace', namespace: ns('red'), addresses: ['10.100.0.2/24', `${RED}/64`], defaultRoute: ['10.100.0.1', GW] },
        { name: 'blue', type: 'namespace', namespace: ns('blue'), addresses: ['10.100.0.3/24', `${BLUE}/64`], defaultRoute: ['10.100.0.1', GW] },
      ],
    },
  ],
  uplink: { interface: 'eth0', address: ['203.0.113.2/24', '2001:db8:113::2/64'], gateway: ['203.0.113.1', WAN], mac: 'own' },
  lab: { veths: [{ namespace: ns('wan'), ifname: 'eth0', addresses: ['203.0.113.1/24', `${WAN}/64`], peer: 'eth0', peerAddresses: ['203.0.113.3/24'] }] },
};

function show(x: unknown): string {
  return JSON.stringify(x, null, 2);
}

/** ICMPv6 types of the packets in a capture file, in order (tshark). */
async function icmpv6Types(file: string): Promise<number[]> {
  const r = await run('tshark', ['-r', file, '-Y', 'icmpv6', '-T', 'fields', '-e', 'icmpv6.type'], { timeoutMs: 30_000 });
  assert.equal(r.code, 0, `tshark -r ${file}: ${describeRun(r)}`);
  return r.stdout.split('\n').filter((l) => l.trim() !== '').map(Number);
}

/** Every packet of a capture file (tshark's count, any protocol). */
async function packetCount(file: string): Promise<number> {
  const r = await run('tshark', ['-r', file, '-T', 'fields', '-e', 'frame.number'], { timeoutMs: 30_000 });
  assert.equal(r.code, 0, `tshark -r ${file}: ${describeRun(r)}`);
  return r.stdout.split('\n').filter((l) => l.trim() !== '').length;
}

describe('IPv6 tools: trace, neigh, captures, stats and metrics', { skip: SKIP ?? false, timeout: 120_000 }, () => {
  let tb: Tapbridge | null = null;
  const ctl = (...args: string[]) => tb!.ctl(...args);
  const ctlJson = <T>(...args: string[]) => tb!.ctlJson<T>(...args);

  before(async () => {
    requireTools(NEEDS);
    tb = await Tapbridge.start(CONFIG, { readyTimeoutMs: 30_000 });
  });

  after(async () => {
    try {
      await tb?.stop();
    } finally {
      const done = await cleanupAll();
      const extra = done.filter((d) => !d.startsWith('removed /tmp'));
      if (extra.length > 0) process.stderr.write(`ipv6-tools.test cleanup: ${extra.join('; ')}\n`);
    }
  });

  test('captures with IPv6 filters while red pings the gateway and blue over IPv6; tshark reads them back', async () => {
    const dir = tempDir();
    const f6 = join(dir, 'red-icmp6.pcapng');
    const f4 = join(dir, 'red-icmp.pcap');
    const fHost = join(dir, 'red-host.pcap');
    const six = await ctlJson<CaptureInfo>('capture', 'red', f6, '-f', 'icmp6');
    const four = await ctlJson<CaptureInfo>('capture', 'red', f4, '-f', 'icmp');
    const host = await ctlJson<CaptureInfo>('capture', 'red', fHost, '-f', `ip6 and dst host ${BLUE}`);
    try {
      for (const dst of [GW, BLUE]) {
        const r = await ping(ns('red'), dst, { count: 3, intervalS: 0.2 });
        assert.ok(r.ok && r.received >= 2, `ping -6 ${dst} from red: ${r.received}/${r.transmitted}\n${describeRun(r)}`);
      }
    } finally {
      for (const c of [six, four, host]) await ctl('capture', 'stop', String(c.id));
    }
    const types = await icmpv6Types(f6);
    assert.ok(types.filter((t) => t === 128).length >= 6, `echo requests to the gateway and blue: ${types.join(' ')}`);
    assert.ok(types.filter((t) => t === 129).length >= 4, `echo replies: ${types.join(' ')}`);
    assert.ok(types.every((t) => t >= 128), `only ICMPv6 messages (echo, NDP, RA, MLD): ${types.join(' ')}`);
    assert.equal(await packetCount(f4), 0, "'icmp' is IPv4's ICMP: no ICMPv6 in it");
    const toBlue = await icmpv6Types(fHost);
    assert.ok(toBlue.length >= 3 && toBlue.every((t) => t === 128 || t === 135 || t === 136), `IPv6 to blue: ${toBlue.join(' ')}`);
  });

  test('ctl neigh lists the IPv6 neighbours the gateway learned', async () => {
    const rows = await ctlJson<Neighbor6Row[]>('neigh');
    const red = rows.find((r) => r.iface === 'br0' && r.ip === RED);
    assert.ok(red !== undefined, show(rows));
    assert.equal(red.macText, await macOf(ns('red')));
    assert.match(red.state, /^(reachable|stale|delay|probe)$/);
    const text = await ctl('neigh');
    assert.equal(text.code, 0, describeRun(text));
    assert.match(text.stdout, /^IFACE\s+ADDRESS\s+MAC\s+STATE\s+AGE\s+ROUTER\s+QUEUED\s+PROBES$/m);
    assert.match(text.stdout, new RegExp(`^br0\\s+${RED}\\s+${red.macText}\\s+${red.state}\\s+[\\d.]+s\\s+no\\s+0\\s+\\d+$`, 'm'));
    const api = await run('curl', ['-s', '--max-time', '5', '--unix-socket', tb!.socket, 'http://localhost/v1'], { timeoutMs: 10_000 });
    assert.match(api.stdout, /\/v1\/neigh/, 'GET /v1 lists the endpoint');
  });

  test('ctl trace of IPv6 packets: an echo to the gateway, hop limit 1, a packet routed to the uplink', async () => {
    const echo = await ctlJson<TraceResult>('trace', '--port', 'red', '--dst', GW);
    assert.equal(echo.packet, `icmp6 ${RED} -> ${GW} type 128 id 40000`, show(echo));
    assert.ok(echo.steps.some((s) => s.stage === 'local6' && /echo request: reply/.test(s.decision)), show(echo));
    assert.ok(echo.outputs.some((o) => o.startsWith('port red ') && o.includes(`icmp6 ${GW} -> ${RED} type 129 id 40000`)), show(echo));

    const expired = await ctlJson<TraceResult>('trace', '--port', 'red', '--dst', WAN, '--ttl', '1', '--proto', 'udp', '--dport', '33434');
    assert.ok(expired.drops.some((d) => d.startsWith('hop_limit_exceeded')), show(expired));
    assert.ok(expired.outputs.some((o) => /^port red .*icmp6 2001:db8:100::1 -> 2001:db8:100::2 time exceeded code 0/.test(o)), show(expired));

    const routed = await ctlJson<TraceResult>('trace', '--port', 'red', '--dst', WAN, '--proto', 'tcp', '--dport', '80');
    assert.ok(routed.steps.some((s) => s.stage === 'router6' && /out of uplink/.test(s.decision)), show(routed));
    assert.ok(routed.steps.some((s) => s.stage === 'gw6/uplink' && /^NDP 2001:db8:113::1: /.test(s.decision)), show(routed));

    const text = await ctl('trace', '--port', 'red', '--dst', GW);
    assert.equal(text.code, 0, describeRun(text));
    assert.match(text.stdout, /^packet: {2}icmp6 2001:db8:100::2 -> 2001:db8:100::1 type 128 id 40000$/m);
    const mixed = await ctl('trace', '--port', 'red', '--src', '10.100.0.2', '--dst', GW);
    assert.notEqual(mixed.code, 0);
    assert.match(mixed.stderr, /both must be of one family/);
  });

  test('ctl stats and the metrics count IPv6: NDP entries, router6 events, IPv6 drop reasons', async () => {
    // One echo toward wan: forwarded by router6 after tapbridge resolves wan by NDP (no reply comes back: no route in wan).
    await ping(ns('red'), WAN, { count: 1, waitS: 1 });
    const s = await ctlJson<LiveStats>('stats');
    assert.ok((s.neighbors6 ?? 0) >= 2, `red and wan at least: ${show(s.neighbors6)}`);
    assert.ok(Number(s.router?.forwarded6) >= 1, show(s.router));
    const text = await ctl('stats');
    assert.match(text.stdout, /neighbours: \d+ ARP, \d+ NDP/);
    const m = await ctl('metrics');
    assert.equal(m.code, 0, describeRun(m));
    assert.match(m.stdout, /^tapbridge_neighbors6 [1-9]\d*$/m);
    assert.match(m.stdout, /^tapbridge_neighbors \d+$/m);
    assert.match(m.stdout, /^tapbridge_router_events_total\{event="forwarded6"\} [1-9]\d*$/m);
    assert.match(m.stdout, /^tapbridge_router_events_total\{event="neighborSolicitsSent"\} [1-9]\d*$/m);
    assert.match(m.stdout, /^tapbridge_router_events_total\{event="routerAdvertsSent"\} [1-9]\d*$/m);
  });
});
