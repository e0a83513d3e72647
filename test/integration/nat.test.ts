/*
 * Gateway, routing and NAT end to end (issue 3, item 7): tapbridge runs inside its own
 * namespace with the default lab's shape under unique names (test/helpers/nat-lab.ts),
 * and real clients (ping, curl, node/python UDP, traceroute, tracepath, iperf3, scapy)
 * talk through it:
 *
 *   red 10.100.0.2, blue 10.100.0.3 ── br0 / gateway 10.100.0.1 ── host port tb0 10.100.0.254
 *                                           └── uplink 203.0.113.2 ── wan 203.0.113.1 (HTTP :80, UDP echo :9000)
 *   published 8000/tcp+udp -> red:8000 (HTTP + UDP echo that name the client address)
 *
 * One instance serves the first suite (short UDP timeouts so expiry can be watched);
 * the full-table suite has its own instance with nat.maxFlows 16.
 * All names start with tbt-<pid>-; everything is removed in after(), also on failure.
 * Traffic only goes to addresses of these namespaces; every command has a timeout.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { capture, ping } from '../helpers/net.js';
import { IP, announceSkip, describeRun, integrationSkipReason, macOf, run, sleep, waitFor } from '../helpers/sys.js';
import { cleanupAll } from '../helpers/tapbridge.js';
import { requireTools } from '../helpers/tools.js';
import {
  FIXTURES,
  NatLab,
  SYS_PYTHON,
  curl,
  parseIperf,
  udpRequest,
  type ConntrackJson,
  type FlowJson,
  type PortJson,
  type TraceJson,
} from '../helpers/nat-lab.js';

/** Every tool these tests run: missing ones fail the suites loudly (scripts/run-tests.js installs them). */
const NEEDS = ['ping', 'curl', 'iperf3', 'traceroute', 'tracepath', 'tcpdump', 'ss', 'python3-scapy'];

const SKIP = integrationSkipReason();
if (SKIP !== null) announceSkip('gateway/NAT integration tests', SKIP);

const WAN_ECHO = 9000;
const UDP_UNREPLIED_S = 2;
const UDP_REPLIED_S = 4;

function flowMatching(ct: ConntrackJson, proto: string, original: RegExp): FlowJson | undefined {
  return ct.flows.find((f) => f.protoName === proto && original.test(f.original));
}

function show(x: unknown): string {
  return JSON.stringify(x, null, 2);
}

describe('gateway and NAT (one instance, default-lab shape)', { skip: SKIP ?? false, timeout: 170_000 }, () => {
  before(() => requireTools(NEEDS));
  const lab = new NatLab({ tag: 'nat', wanUdpEcho: WAN_ECHO, nat: { timeouts: { udpUnreplied: UDP_UNREPLIED_S, udpReplied: UDP_REPLIED_S } } });
  const nsRed = lab.ns('red');
  const nsWan = lab.ns('wan');
  const nsBlue = lab.ns('blue');
  const nsHost = lab.ns('host');

  before(async () => {
    await lab.start();
  });

  after(async () => {
    try {
      await lab.stop();
    } finally {
      const done = await cleanupAll();
      const extra = done.filter((d) => !d.startsWith('removed /tmp'));
      if (extra.length > 0) process.stderr.write(`nat.test cleanup: ${extra.join('; ')}\n`);
    }
  });

  test('red pings blue, the gateway, the host port and the wan', async () => {
    for (const dst of ['10.100.0.3', '10.100.0.1', '10.100.0.254', '203.0.113.1']) {
      const r = await ping(nsRed, dst, { count: 3, intervalS: 0.2 });
      assert.ok(r.ok && r.received >= 2, `ping ${dst} from red: ${r.received}/${r.transmitted}\n${describeRun(r)}`);
    }
  });

  test('curl from red to the wan is masqueraded to 203.0.113.2', async () => {
    const body = await curl(lab, 'red', 'http://203.0.113.1/');
    assert.match(body, new RegExp(`^hello from ${nsWan}, you are 203\\.0\\.113\\.2:\\d+`), body);
    const ct = await lab.ctl<ConntrackJson>('conntrack');
    const f = flowMatching(ct, 'tcp', /src=10\.100\.0\.2 dst=203\.0\.113\.1 sport=\d+ dport=80\b/);
    assert.ok(f !== undefined, `no conntrack flow red -> wan:80\n${show(ct)}`);
    assert.match(f.reply, /src=203\.0\.113\.1 dst=203\.0\.113\.2 sport=80 /, show(f));
    assert.ok(f.flags.includes('SNAT'), show(f));
  });

  test('curl from the wan to 203.0.113.2:8000 reaches red, which sees the real client', async () => {
    const body = await curl(lab, 'wan', 'http://203.0.113.2:8000/');
    assert.match(body, new RegExp(`^hello from ${nsRed}, you are 203\\.0\\.113\\.1:\\d+`), body);
    const ct = await lab.ctl<ConntrackJson>('conntrack');
    const f = flowMatching(ct, 'tcp', /src=203\.0\.113\.1 dst=203\.0\.113\.2 sport=\d+ dport=8000\b/);
    assert.ok(f !== undefined, `no conntrack flow wan -> 203.0.113.2:8000\n${show(ct)}`);
    assert.match(f.reply, /src=10\.100\.0\.2 dst=203\.0\.113\.1 sport=8000 /, show(f));
    assert.ok(f.flags.includes('DNAT'), show(f));
  });

  test('hairpin: blue reaches 203.0.113.2:8000, the server sees the gateway', async () => {
    const body = await curl(lab, 'blue', 'http://203.0.113.2:8000/');
    assert.match(body, new RegExp(`^hello from ${nsRed}, you are 10\\.100\\.0\\.1:\\d+`), body);
  });

  test('the host namespace reaches 10.100.0.2:8000 and 127.0.0.1:8000 (localhost proxy)', async () => {
    const direct = await curl(lab, 'host', 'http://10.100.0.2:8000/');
    assert.match(direct, new RegExp(`^hello from ${nsRed}, you are 10\\.100\\.0\\.254:\\d+`), direct);
    const proxied = await curl(lab, 'host', 'http://127.0.0.1:8000/');
    assert.match(proxied, new RegExp(`^hello from ${nsRed}, you are `), proxied);
  });

  test('UDP in: wan -> 203.0.113.2:8000 is echoed by red, naming the wan client', async () => {
    const reply = await udpRequest(lab, 'wan', '203.0.113.2', 8000, 'ping-in');
    assert.match(reply, new RegExp(`^echo from ${nsRed} to 203\\.0\\.113\\.1:\\d+: ping-in$`), reply);
  });

  test('UDP out: red -> wan echo sees 203.0.113.2 as the source', async () => {
    const reply = await udpRequest(lab, 'red', '203.0.113.1', WAN_ECHO, 'ping-out');
    assert.match(reply, new RegExp(`^echo from ${nsWan} to 203\\.0\\.113\\.2:\\d+: ping-out$`), reply);
  });

  test('traceroute from red shows the gateway as hop 1 and the wan as hop 2', async () => {
    const r = await lab.exec('red', 'traceroute', ['-n', '-w', '1', '-q', '1', '-m', '3', '203.0.113.1'], 15_000);
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /^\s*1\s+10\.100\.0\.1\s/m, describeRun(r));
    assert.match(r.stdout, /^\s*2\s+203\.0\.113\.1\s/m, describeRun(r));
  });

  describe('ctl graph', () => {
    test('the live graph names every element, its ports and links with packet counters', async () => {
      const g = await lab.ctl<{ elements: { name: string; kind: string; inputs: string[]; outputs: string[] }[]; links: { from: string; output: string; to: string; input: string; packets: number }[] }>('graph');
      const kinds = new Map(g.elements.map((e) => [e.name, e.kind]));
      for (const [name, kind] of [
        ['dev/red', 'Device'],
        ['dev/uplink', 'Device'],
        ['switch/br0', 'Switch'],
        ['gw/br0', 'GatewayInterface'],
        ['gw/uplink', 'GatewayInterface'],
        ['router', 'Router'],
        ['nat/pre', 'NatPrerouting'],
        ['nat/post', 'NatPostrouting'],
        ['icmp/ttl-exceeded', 'IcmpError'],
      ])
        assert.equal(kinds.get(name), kind, `${name}: ${show(g.elements.map((e) => e.name))}`);
      const sw = g.elements.find((e) => e.name === 'switch/br0')!;
      assert.deepEqual(sw.inputs, ['red', 'blue', 'host', 'gw-br0']);
      const link = (from: string, to: string) => g.links.find((l) => l.from === from && l.to === to);
      // earlier tests sent traffic from red to the wan: it crossed these links
      for (const [from, to] of [['dev/red', 'switch/br0'], ['switch/br0', 'gw/br0'], ['nat/pre', 'router'], ['router', 'nat/post'], ['gw/uplink', 'dev/uplink']]) {
        const l = link(from, to);
        assert.ok(l !== undefined, `no link ${from} -> ${to}`);
        assert.ok(l.packets > 0, `no packets on ${from} -> ${to}: ${show(l)}`);
      }
      const text = await lab.tapbridge.ctl('graph');
      assert.equal(text.code, 0, describeRun(text));
      assert.match(text.stdout, /^\s+switch\/br0\s+:: Switch\s+aging 300s/m);
      assert.match(text.stdout, /dev\/red\[rx\]\s+->\s+\[red\]switch\/br0\s+\d+/);
    });
  });

  describe('ctl trace', () => {
    test('an L2 packet red -> blue goes through the switch only', async () => {
      const blueMac = await macOf(nsBlue);
      const t = await lab.ctl<TraceJson>('trace', '--port', 'red', '--dst', '10.100.0.3', '--dst-mac', blueMac);
      assert.ok(t.steps.length > 0 && t.steps.every((s) => s.stage.startsWith('switch/')), `stages: ${show(t)}`);
      assert.equal(t.outputs.length, 1, show(t));
      assert.match(t.outputs[0], /^port blue\b/, show(t));
      assert.match(t.verdict, /would transmit on 1 port/, show(t));
    });

    test('a routed packet to the wan names the gateway, route and NAT stages', async () => {
      const t = await lab.ctl<TraceJson>('trace', '--port', 'red', '--dst', '203.0.113.1', '--proto', 'tcp', '--dport', '80');
      const stages = t.steps.map((s) => s.stage);
      for (const st of ['switch/br0', 'gw/br0', 'nat/pre', 'router', 'nat/post', 'gw/uplink']) assert.ok(stages.includes(st), `no stage '${st}': ${show(t)}`);
      const post = t.steps.find((s) => s.stage === 'nat/post')!;
      assert.match(post.decision, /203\.0\.113\.2/, show(t));
      assert.equal(t.outputs.length, 1, show(t));
      assert.match(t.outputs[0], /^port uplink\b.*tcp 203\.0\.113\.2:\d+ -> 203\.0\.113\.1:80/, show(t));
      const hops = t.path.map((h) => `${h.from}[${h.output}]->[${h.input}]${h.to}`);
      for (const h of ['dev/red[rx]->[red]switch/br0', 'switch/br0[gw-br0]->[wire]gw/br0', 'nat/pre[br0]->[br0]router', 'router[uplink]->[uplink]nat/post', 'gw/uplink[wire]->[tx]dev/uplink'])
        assert.ok(hops.includes(h), `no hop ${h}: ${hops.join(', ')}`);
    });

    test('a packet with TTL 1 is dropped with ttl_exceeded and answered with time exceeded', async () => {
      const t = await lab.ctl<TraceJson>('trace', '--port', 'red', '--dst', '203.0.113.1', '--ttl', '1');
      assert.ok(t.drops.some((d) => d.startsWith('ttl_exceeded')), show(t));
      assert.ok(t.outputs.some((o) => /^port red\b.*icmp 10\.100\.0\.1 -> 10\.100\.0\.2 type 11\b/.test(o)), show(t));
      assert.ok(!t.outputs.some((o) => o.startsWith('port uplink')), show(t));
    });

    test("the TTL-1 packet's verdict names ttl_exceeded", async () => {
      const t = await lab.ctl<TraceJson>('trace', '--port', 'red', '--dst', '203.0.113.1', '--ttl', '1');
      assert.match(t.verdict, /ttl_exceeded/, show(t));
    });
  });

  describe('iperf3 through the NAT', () => {
    const PORT = 5201;

    test('TCP red -> wan server for 2 s', async () => {
      const server = lab.bg('wan', 'iperf3', ['-s', '-1', '-p', String(PORT)], 15);
      await lab.waitListening('wan', 'tcp', PORT);
      const r = await lab.exec('red', 'iperf3', ['-c', '203.0.113.1', '-p', String(PORT), '-t', '2', '-J'], 15_000);
      const j = parseIperf(r, 'iperf3 TCP red -> wan');
      assert.equal(j.error, undefined, describeRun(r));
      assert.equal(r.code, 0, describeRun(r));
      assert.ok((j.end?.sum_received?.bits_per_second ?? 0) > 0, `no bits received\n${show(j.end)}`);
      await server.done;
    });

    test('TCP wan -> 203.0.113.2:5201 published at runtime to red', async () => {
      const added = await lab.ctl<{ added: { port: number } }>('forwards', 'add', `${PORT}/tcp=10.100.0.2:${PORT}`);
      assert.equal(added.added.port, PORT, show(added));
      const list = await lab.ctl<{ proto: string; port: number; to: string; toPort: number }[]>('forwards');
      assert.ok(list.some((f) => f.proto === 'tcp' && f.port === PORT && f.to === '10.100.0.2' && f.toPort === PORT), show(list));
      const server = lab.bg('red', 'iperf3', ['-s', '-1', '-p', String(PORT)], 15);
      await lab.waitListening('red', 'tcp', PORT);
      const r = await lab.exec('wan', 'iperf3', ['-c', '203.0.113.2', '-p', String(PORT), '-t', '2', '-J'], 15_000);
      const j = parseIperf(r, 'iperf3 TCP wan -> published port');
      assert.equal(j.error, undefined, describeRun(r));
      assert.equal(r.code, 0, describeRun(r));
      assert.ok((j.end?.sum_received?.bits_per_second ?? 0) > 0, `no bits received\n${show(j.end)}`);
      await server.done;
    });

    for (const dir of ['out', 'in'] as const) {
      test(`UDP 10 Mbit/s for 2 s ${dir === 'out' ? 'red -> wan' : 'wan -> published port'} loses < 5%`, async () => {
        if (dir === 'in') await lab.ctl('forwards', 'add', `${PORT}/udp=10.100.0.2:${PORT}`);
        const srvRole = dir === 'out' ? 'wan' : 'red';
        const server = lab.bg(srvRole, 'iperf3', ['-s', '-1', '-J', '-p', String(PORT)], 15);
        await lab.waitListening(srvRole, 'tcp', PORT);
        const r = await lab.exec(dir === 'out' ? 'red' : 'wan', 'iperf3', ['-u', '-b', '10M', '-t', '2', '-c', dir === 'out' ? '203.0.113.1' : '203.0.113.2', '-p', String(PORT), '-J'], 15_000);
        const j = parseIperf(r, `iperf3 UDP ${dir}`);
        assert.equal(j.error, undefined, describeRun(r));
        assert.equal(r.code, 0, describeRun(r));
        const s = await server.done;
        const sj = parseIperf(s, `iperf3 UDP ${dir} server`);
        const sum = sj.end?.sum;
        assert.ok(sum !== undefined && (sum.packets ?? 0) > 0, `server received nothing\n${show(sj.end)}\n${describeRun(r)}`);
        assert.ok((sum.lost_percent ?? 100) < 5, `loss ${sum.lost_percent}% (${sum.lost_packets}/${sum.packets})\n${show(sj.end)}`);
      });
    }

    test('forwards rm removes the runtime forwards', async () => {
      await lab.ctl('forwards', 'rm', `${PORT}/tcp`);
      await lab.ctl('forwards', 'rm', `${PORT}/udp`);
      const list = await lab.ctl<{ proto: string; port: number }[]>('forwards');
      assert.ok(!list.some((f) => f.port === PORT), show(list));
      assert.ok(list.some((f) => f.proto === 'tcp' && f.port === 8000) && list.some((f) => f.proto === 'udp' && f.port === 8000), show(list));
    });
  });

  describe('conntrack expiry (udpUnreplied 2 s, udpReplied 4 s)', () => {
    test('an unreplied UDP flow is removed after its timeout', async () => {
      const before = await lab.ctl<ConntrackJson>('conntrack');
      // nothing listens on wan:9999 (the wan answers with ICMP port unreachable, not a reply)
      const r = await lab.exec('red', SYS_PYTHON, [join(FIXTURES, 'nat-udp-flows.py'), '203.0.113.1', '9999', '41000', '1', '0.2'], 10_000);
      assert.equal(r.code, 0, describeRun(r));
      const orig = /src=10\.100\.0\.2 dst=203\.0\.113\.1 sport=41000 dport=9999\b/;
      const ct = await lab.ctl<ConntrackJson>('conntrack');
      const f = flowMatching(ct, 'udp', orig);
      assert.ok(f !== undefined, `no flow for the datagram\n${show(ct)}`);
      assert.equal(f.state, 'UNREPLIED', show(f));
      assert.ok(f.flags.includes('UNREPLIED'), show(f));
      assert.ok(f.secondsLeft <= UDP_UNREPLIED_S && f.secondsLeft >= 0, show(f));
      const t0 = Date.now();
      await waitFor('the unreplied flow to expire', async () => flowMatching(await lab.ctl<ConntrackJson>('conntrack'), 'udp', orig) === undefined, {
        timeoutMs: (UDP_UNREPLIED_S + 3) * 1000,
        intervalMs: 200,
      });
      assert.ok(Date.now() - t0 >= (UDP_UNREPLIED_S - 1) * 1000 - 300, `expired too early (${Date.now() - t0} ms after the datagram)`);
      const afterCt = await lab.ctl<ConntrackJson>('conntrack');
      assert.ok(afterCt.counters.expired > before.counters.expired, `expired counter did not rise: ${show(before.counters)} -> ${show(afterCt.counters)}`);
    });

    test('a replied UDP flow counts down while idle and is removed after its timeout', async () => {
      const reply = await udpRequest(lab, 'red', '203.0.113.1', WAN_ECHO, 'idle', { sport: 41001 });
      assert.match(reply, /: idle$/, reply);
      const orig = new RegExp(`src=10\\.100\\.0\\.2 dst=203\\.0\\.113\\.1 sport=41001 dport=${WAN_ECHO}\\b`);
      const f1 = flowMatching(await lab.ctl<ConntrackJson>('conntrack'), 'udp', orig);
      assert.ok(f1 !== undefined, 'no flow for the UDP exchange');
      assert.equal(f1.state, 'REPLIED', show(f1));
      assert.ok(f1.secondsLeft <= UDP_REPLIED_S && f1.secondsLeft >= UDP_REPLIED_S - 2, show(f1));
      await sleep(1500);
      const f2 = flowMatching(await lab.ctl<ConntrackJson>('conntrack'), 'udp', orig);
      assert.ok(f2 !== undefined, `flow gone after 1.5 s idle (timeout ${UDP_REPLIED_S} s)`);
      assert.ok(f2.secondsLeft < f1.secondsLeft, `secondsLeft did not decrease: ${f1.secondsLeft} -> ${f2.secondsLeft}`);
      await waitFor('the replied flow to expire', async () => flowMatching(await lab.ctl<ConntrackJson>('conntrack'), 'udp', orig) === undefined, {
        timeoutMs: (UDP_REPLIED_S + 3) * 1000,
        intervalMs: 200,
      });
    });
  });

  describe('malformed packets from red (scapy)', () => {
    let gwPort = '';

    before(async () => {
      const ports = await lab.ctl<PortJson[]>('ports');
      const gw = ports.find((p) => p.kind === 'internal' && p.bridge === 'br0');
      assert.ok(gw !== undefined, `no gateway port on br0: ${show(ports)}`);
      gwPort = gw.name;
    });

    const drops = async (): Promise<Map<string, Record<string, number>>> => new Map((await lab.ctl<PortJson[]>('ports')).map((p) => [p.name, p.counters.drops]));
    const send = async (kind: string, count = 3): Promise<void> => {
      const r = await lab.exec('red', SYS_PYTHON, [join(FIXTURES, 'nat-malformed.py'), kind, '02:74:62:00:00:01', String(count)], 20_000);
      assert.equal(r.code, 0, describeRun(r));
    };
    /** Send `kind` and wait until `reason` rose by `count` on the gateway port. */
    const expectDrop = async (kind: string, reasons: string[], count = 3): Promise<void> => {
      const before = await drops();
      const sum = (m: Map<string, Record<string, number>>) => reasons.reduce((n, r) => n + (m.get(gwPort)?.[r] ?? 0), 0);
      await send(kind, count);
      let last = before;
      try {
        await waitFor(`${reasons.join('|')} +${count} on ${gwPort}`, async () => {
          last = await drops();
          return sum(last) - sum(before) >= count;
        }, { timeoutMs: 3000, intervalMs: 100 });
      } catch {
        assert.fail(`after ${count} '${kind}' packets, ${reasons.join(' or ')} on port ${gwPort} went ${sum(before)} -> ${sum(last)}\nbefore: ${show(Object.fromEntries(before))}\nafter: ${show(Object.fromEntries(last))}`);
      }
    };

    test('bad IPv4 header checksum: ipv4_bad_csum on the gateway port', () => expectDrop('csum', ['ipv4_bad_csum']));
    test('IPv4 IHL 3: ipv4_bad_ihl on the gateway port', () => expectDrop('ihl', ['ipv4_bad_ihl']));
    test('IPv4 total length beyond the packet: ipv4_bad_len on the gateway port', () => expectDrop('len', ['ipv4_bad_len']));
    test('ARP with hardware length 4: arp_bad on the gateway port', () => expectDrop('arp', ['arp_bad']));

    test('TCP with data offset 2 to the wan: dropped with a reason, not forwarded', async () => {
      const cap = capture(nsWan, 'tcp and dst port 80 and src host 203.0.113.2', { seconds: 4, direction: 'in' });
      await cap.ready;
      let dropErr: unknown = null;
      try {
        await expectDrop('tcp', ['tcp_bad_off', 'tcp_too_short', 'nat_malformed']);
      } catch (err) {
        dropErr = err;
      }
      await sleep(300);
      cap.stop();
      const c = await cap.done;
      const problems: string[] = [];
      if (c.packets.length > 0) problems.push(`the wan received ${c.packets.length} of them (SNATed and forwarded):\n${c.packets.join('\n')}`);
      if (dropErr !== null) problems.push(String(dropErr instanceof Error ? dropErr.message : dropErr));
      assert.deepEqual(problems, [], problems.join('\n\n'));
    });

    test('tapbridge is still alive and ping still works', async () => {
      assert.ok(lab.alive(), lab.log());
      const r = await ping(nsRed, '203.0.113.1', { count: 2, intervalS: 0.2 });
      assert.ok(r.ok, describeRun(r));
    });
  });

  test('tracepath from red finds pmtu 1400 after the uplink MTU is lowered', async () => {
    try {
      for (const ns of [nsHost, nsWan]) {
        const r = await run(IP, ['-n', ns, 'link', 'set', 'eth0', 'mtu', '1400'], { timeoutMs: 5000 });
        assert.equal(r.code, 0, describeRun(r));
      }
      await sleep(1500); // tapbridge re-reads the uplink MTU every second
      const r = await lab.exec('red', 'tracepath', ['-n', '203.0.113.1'], 20_000);
      assert.match(r.stdout, /Resume: pmtu 1400\b/, describeRun(r));
    } finally {
      for (const ns of [nsHost, nsWan]) await run(IP, ['-n', ns, 'link', 'set', 'eth0', 'mtu', '1500'], { timeoutMs: 5000 });
      await lab.exec('red', IP, ['route', 'flush', 'cache'], 5000);
    }
  });
});

describe('full conntrack table (nat.maxFlows 16)', { skip: SKIP ?? false, timeout: 90_000 }, () => {
  before(() => requireTools(NEEDS));
  const lab = new NatLab({ tag: 'full', noBlue: true, wanUdpEcho: WAN_ECHO, nat: { maxFlows: 16 } });

  before(async () => {
    await lab.start();
  });

  after(async () => {
    try {
      await lab.stop();
    } finally {
      await cleanupAll();
    }
  });

  test('new flows are refused or early-dropped while an established TCP transfer completes', async () => {
    const PORT = 5201;
    const server = lab.bg('wan', 'iperf3', ['-s', '-1', '-p', String(PORT)], 25);
    await lab.waitListening('wan', 'tcp', PORT);
    const client = lab.bg('red', 'iperf3', ['-c', '203.0.113.1', '-p', String(PORT), '-t', '8', '-i', '1', '-b', '200M', '-J'], 20);

    const established = (ct: ConntrackJson) => ct.flows.filter((f) => f.protoName === 'tcp' && / dport=5201\b/.test(f.original) && f.state === 'ESTABLISHED');
    const ct0 = await waitFor(
      'iperf3 control and data connections ESTABLISHED in conntrack',
      async () => {
        const ct = await lab.ctl<ConntrackJson>('conntrack');
        return established(ct).length >= 2 ? ct : undefined;
      },
      { timeoutMs: 5000, intervalMs: 100 },
    );
    const tcpBefore = established(ct0).map((f) => f.original).sort();

    // 1. 20 unreplied UDP flows (nothing listens on wan:9999): the oldest unreplied go first
    const a = await lab.exec('red', SYS_PYTHON, [join(FIXTURES, 'nat-udp-flows.py'), '203.0.113.1', '9999', '42000', '20', '0.02'], 15_000);
    assert.equal(a.code, 0, describeRun(a));
    const ct1 = await lab.ctl<ConntrackJson>('conntrack');
    assert.ok(ct1.size <= 16, `table size ${ct1.size} > 16\n${show(ct1)}`);
    assert.ok(ct1.counters.earlyDropped > ct0.counters.earlyDropped, `no early drops: ${show(ct0.counters)} -> ${show(ct1.counters)}`);

    // 2. 24 replied UDP flows (echo on wan): they become assured, and once only assured flows
    //    are left, new ones are refused
    const b = await lab.exec('red', SYS_PYTHON, [join(FIXTURES, 'nat-udp-flows.py'), '203.0.113.1', String(WAN_ECHO), '43000', '24', '0.3'], 25_000);
    assert.equal(b.code, 0, describeRun(b));
    const res = JSON.parse(b.stdout) as { replied: number[]; silent: number[] };
    const ct2 = await lab.ctl<ConntrackJson>('conntrack');
    assert.ok(ct2.size <= 16, `table size ${ct2.size} > 16\n${show(ct2)}`);
    assert.ok(ct2.counters.refusedFull > ct1.counters.refusedFull, `no refusals: ${show(ct1.counters)} -> ${show(ct2.counters)}\n${b.stdout}`);
    assert.ok(res.replied.length >= 1 && res.silent.length >= 1, `expected some flows through and some refused: ${b.stdout}`);
    const ports = await lab.ctl<PortJson[]>('ports');
    const tableFull = ports.reduce((n, p) => n + (p.counters.drops.nat_table_full ?? 0), 0);
    assert.ok(tableFull > 0, `no nat_table_full drops on any port: ${show(ports.map((p) => [p.name, p.counters.drops]))}`);

    // the established connections are still tracked, and the transfer completes
    const tcpAfter = established(ct2).map((f) => f.original).sort();
    assert.deepEqual(tcpAfter, tcpBefore, `established TCP flows changed\n${show(ct2.flows)}`);
    const c = await client.done;
    const j = parseIperf(c, 'iperf3 client during the flow storm');
    assert.equal(j.error, undefined, `${c.stdout}\n${c.stderr}`);
    assert.equal(c.code, 0, `iperf3 client exit ${c.code}\n${c.stderr}`);
    assert.ok((j.end?.sum_received?.bytes ?? 0) > 0, show(j.end));
    const intervals = j.intervals ?? [];
    assert.ok(intervals.length >= 7, `only ${intervals.length} intervals`);
    const stalled = intervals.filter((i) => i.sum.bytes === 0);
    assert.deepEqual(stalled, [], `intervals with no data: ${show(intervals.map((i) => i.sum.bytes))}`);
    await server.done;
  });
});
