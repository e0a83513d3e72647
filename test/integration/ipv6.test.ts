/*
 * IPv6 end to end (issue 9): the default lab's dual-stack shape under unique names
 * (test/helpers/nat-lab.ts, `ipv6: true`), with real clients in real namespaces:
 *
 *   red 2001:db8:100::2, blue ::3, auto (SLAAC) ── br0 / gateway 2001:db8:100::1 (RAs) ── tb0 ::fe
 *                                                     └── uplink 2001:db8:113::2 ── wan 2001:db8:113::1 (HTTP :80)
 *   published [2001:db8:113::2]:8000 tcp+udp -> [2001:db8:100::2]:8000 (NAT66)
 *
 * ping -6, ndisc6/rdisc6, SLAAC, traceroute -6, tracepath -6 (Packet Too Big), curl -6 through
 * NAT66, published ports and hairpin, iperf3 -6 through the switch and NAT66, and a second
 * instance whose bridge prefix is routed without NAT (the wan reaches red's own address,
 * through a route or through tapbridge's NDP proxy). All names start with tbt-<pid>-;
 * everything is removed in after(), also on failure; every command has a time limit.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ping } from '../helpers/net.js';
import { IP, announceSkip, describeRun, integrationSkipReason, macOf, run, sleep, waitFor } from '../helpers/sys.js';
import { cleanupAll } from '../helpers/tapbridge.js';
import { requireTools } from '../helpers/tools.js';
import { NatLab, V6, curl, parseIperf, udpRequest, type ConntrackJson, type PortJson, type TraceJson } from '../helpers/nat-lab.js';

const NEEDS = ['ping', 'curl', 'iperf3', 'traceroute', 'tracepath', 'ndisc6', 'ss'];

const SKIP = integrationSkipReason();
if (SKIP !== null) announceSkip('IPv6 integration tests', SKIP);

function show(x: unknown): string {
  return JSON.stringify(x, null, 2);
}

/** The EUI-64 interface identifier SLAAC makes from a MAC ("02:11:22:33:44:55" -> "11:22ff:fe33:4455"), lower case. */
function eui64(mac: string): string {
  const b = mac.split(':').map((x) => parseInt(x, 16));
  b[0] ^= 2;
  const g = [(b[0] << 8) | b[1], (b[2] << 8) | 0xff, (0xfe << 8) | b[3], (b[4] << 8) | b[5]];
  return g.map((x) => x.toString(16)).join(':');
}

async function iperfTcp(lab: NatLab, server: 'red' | 'blue' | 'wan', client: 'red' | 'blue' | 'wan', target: string, reverse: boolean): Promise<number> {
  const port = 5201;
  const srv = lab.bg(server, 'iperf3', ['-s', '-1', '-p', String(port)], 15);
  await lab.waitListening(server, 'tcp', port);
  const r = await lab.exec(client, 'iperf3', ['-6', '-c', target, '-p', String(port), '-t', '2', '-J', ...(reverse ? ['-R'] : [])], 15_000);
  const j = parseIperf(r, `iperf3 -6 ${client} -> ${target}${reverse ? ' (reverse)' : ''}`);
  assert.equal(j.error, undefined, describeRun(r));
  await srv.done;
  return j.end?.sum_received?.bits_per_second ?? 0;
}

/** UDP at 10 Mbit/s for 2 s (with `reverse` the server sends); the receiver's packet count and loss, as the client reports them. */
async function iperfUdp(lab: NatLab, server: 'red' | 'blue' | 'wan', client: 'red' | 'blue' | 'wan', target: string, reverse: boolean): Promise<{ packets: number; lostPercent: number }> {
  const port = 5202;
  const srv = lab.bg(server, 'iperf3', ['-s', '-1', '-p', String(port)], 15);
  await lab.waitListening(server, 'tcp', port);
  const r = await lab.exec(client, 'iperf3', ['-6', '-u', '-b', '10M', '-t', '2', '-c', target, '-p', String(port), '-J', ...(reverse ? ['-R'] : [])], 15_000);
  const j = parseIperf(r, `iperf3 -6 -u ${client} -> ${target}`);
  assert.equal(j.error, undefined, describeRun(r));
  await srv.done;
  const sum = j.end?.sum;
  return { packets: sum?.packets ?? 0, lostPercent: sum?.lost_percent ?? 100 };
}

describe('IPv6: NDP, router advertisements, ICMPv6, NAT66 (dual-stack lab)', { skip: SKIP ?? false, timeout: 200_000 }, () => {
  before(() => requireTools(NEEDS));
  const lab = new NatLab({ tag: 'v6', ipv6: true, slaac: true });

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

  test('ping -6: red -> blue, the gateway (global and link-local) and the host port', async () => {
    for (const dst of [V6.blue, V6.gateway, `${V6.gatewayLinkLocal}%eth0`, V6.host]) {
      const r = await ping(lab.ns('red'), dst, { count: 3, intervalS: 0.2 });
      assert.ok(r.ok && r.received >= 2, `ping -6 ${dst} from red: ${r.received}/${r.transmitted}\n${describeRun(r)}`);
    }
  });

  test('ndisc6 sees the gateway answer for its address; rdisc6 sees its router advertisement', async () => {
    const nd = await lab.exec('red', 'ndisc6', ['-1', '-r', '3', V6.gateway, 'eth0']);
    assert.equal(nd.code, 0, describeRun(nd));
    assert.match(nd.stdout, /Target link-layer address: 02:74:62:00:00:01/i, describeRun(nd));
    const rd = await lab.exec('blue', 'rdisc6', ['-1', '-r', '3', 'eth0']);
    assert.equal(rd.code, 0, describeRun(rd));
    assert.match(rd.stdout, /Prefix\s+:\s+2001:db8:100::\/64/, describeRun(rd));
    assert.match(rd.stdout, /Autonomous address conf\.:\s+Yes/, describeRun(rd));
    assert.match(rd.stdout, /MTU\s+:\s+1500 bytes/, describeRun(rd));
    assert.match(rd.stdout, /Router lifetime\s+:\s+1800/, describeRun(rd));
    assert.match(rd.stdout, /from fe80::74:62ff:fe00:1/, describeRun(rd));
  });

  test('a namespace without a static IPv6 address configures itself by SLAAC and routes through the gateway', async () => {
    const mac = await macOf(lab.ns('auto'));
    const want = `2001:db8:100:0:${eui64(mac)}`;
    const addr = await waitFor(
      `a SLAAC address in ${lab.ns('auto')}`,
      async () => {
        const r = await lab.exec('auto', IP, ['-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'global'], 5000);
        return r.stdout.includes(want) ? r.stdout : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 200 },
    );
    assert.match(addr, /dynamic/, addr);
    const routes = await lab.exec('auto', IP, ['-6', 'route', 'show', 'default'], 5000);
    assert.match(routes.stdout, new RegExp(`default via ${V6.gatewayLinkLocal} dev eth0 proto ra`), describeRun(routes));
    const r = await ping(lab.ns('auto'), V6.red, { count: 2, intervalS: 0.2 });
    assert.ok(r.ok, describeRun(r));
    const p = await ping(lab.ns('auto'), V6.wan, { count: 2, intervalS: 0.2 });
    assert.ok(p.ok, `SLAAC host -> wan through NAT66\n${describeRun(p)}`);
  });

  test('ping -6 red -> wan, and curl -6 shows tapbridge\'s external address (NAT66)', async () => {
    const r = await ping(lab.ns('red'), V6.wan, { count: 3, intervalS: 0.2 });
    assert.ok(r.ok && r.received >= 2, describeRun(r));
    const body = await curl(lab, 'red', `http://[${V6.wan}]/`);
    assert.match(body, new RegExp(`^hello from ${lab.ns('wan')}, you are \\[${V6.external}\\]:\\d+`), body);
    const ct = await lab.ctl<ConntrackJson>('conntrack');
    const f = ct.flows.find((x) => x.protoName === 'tcp' && /src=2001:db8:100::2 dst=2001:db8:113::1 sport=\d+ dport=80\b/.test(x.original));
    assert.ok(f !== undefined, `no IPv6 conntrack flow red -> wan:80\n${show(ct)}`);
    assert.match(f.reply, /src=2001:db8:113::1 dst=2001:db8:113::2 sport=80 /, show(f));
    assert.ok(f.flags.includes('SNAT'), show(f));
  });

  test('ctl trace of a packet red -> wan over IPv6 names router6 and NAT66', async () => {
    const t = await lab.ctl<TraceJson>('trace', '--port', 'red', '--dst', V6.wan, '--proto', 'tcp', '--dport', '80');
    const stages = t.steps.map((x) => x.stage);
    for (const st of ['gw6/br0', 'nat6/pre', 'router6', 'nat6/post', 'gw6/uplink']) assert.ok(stages.includes(st), `no stage '${st}': ${show(t)}`);
    assert.ok(t.outputs.some((o) => o.startsWith('port uplink') && o.includes(`[${V6.external}]`)), show(t));
  });

  test('a port published at runtime over IPv6 (ctl forwards add) reaches red, and goes again', async () => {
    await lab.ctl('forwards', 'add', `8080/tcp=[${V6.red}]:8000`);
    const list = await lab.ctl<{ proto: string; port: number; to: string; family: string }[]>('forwards');
    assert.ok(list.some((x) => x.port === 8080 && x.to === V6.red && x.family === 'ipv6'), show(list));
    const body = await curl(lab, 'wan', `http://[${V6.external}]:8080/`);
    assert.match(body, new RegExp(`^hello from ${lab.ns('red')}, you are \\[${V6.wan}\\]:\\d+`), body);
    await lab.ctl('forwards', 'rm', '8080/tcp');
    const after = await lab.ctl<{ port: number }[]>('forwards');
    assert.ok(!after.some((x) => x.port === 8080), show(after));
  });

  test('wan -> [2001:db8:113::2]:8000 reaches red, which sees the wan\'s own address (TCP and UDP)', async () => {
    const body = await curl(lab, 'wan', `http://[${V6.external}]:8000/`);
    assert.match(body, new RegExp(`^hello from ${lab.ns('red')}, you are \\[${V6.wan}\\]:\\d+`), body);
    const reply = await udpRequest(lab, 'wan', V6.external, 8000, 'ping6-in');
    assert.match(reply, new RegExp(`^echo from ${lab.ns('red')} to \\[${V6.wan}\\]:\\d+: ping6-in$`), reply);
  });

  test('hairpin over IPv6: blue reaches [2001:db8:113::2]:8000', async () => {
    const body = await curl(lab, 'blue', `http://[${V6.external}]:8000/`);
    assert.match(body, new RegExp(`^hello from ${lab.ns('red')}, you are \\[${V6.gateway}\\]:\\d+`), body);
  });

  test('the host namespace reaches the published port on [::1]:8000 (localhost proxy)', async () => {
    const body = await curl(lab, 'host', 'http://[::1]:8000/');
    assert.match(body, new RegExp(`^hello from ${lab.ns('red')}, you are `), body);
  });

  test('traceroute -6 shows the gateway as the first hop', async () => {
    const r = await lab.exec('red', 'traceroute', ['-6', '-n', '-w', '1', '-q', '1', '-m', '3', V6.wan], 15_000);
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, new RegExp(`^\\s*1\\s+${V6.gateway}\\s`, 'm'), describeRun(r));
    assert.match(r.stdout, new RegExp(`^\\s*2\\s+${V6.wan}\\s`, 'm'), describeRun(r));
  });

  test('tracepath -6 finds the lowered uplink MTU through Packet Too Big', async () => {
    try {
      for (const ns of [lab.ns('host'), lab.ns('wan')]) {
        const r = await run(IP, ['-n', ns, 'link', 'set', 'eth0', 'mtu', '1400'], { timeoutMs: 5000 });
        assert.equal(r.code, 0, describeRun(r));
      }
      await sleep(1500); // tapbridge re-reads the uplink MTU every second
      const r = await lab.exec('red', 'tracepath', ['-6', '-n', V6.wan], 20_000);
      assert.match(r.stdout, /Resume: pmtu 1400\b/, describeRun(r));
      const ports = await lab.ctl<PortJson[]>('ports');
      const gw = ports.find((p) => p.name === 'gw-br0')!;
      assert.ok((gw.counters.drops.ipv6_too_big ?? 0) > 0, show(gw));
    } finally {
      for (const ns of [lab.ns('host'), lab.ns('wan')]) await run(IP, ['-n', ns, 'link', 'set', 'eth0', 'mtu', '1500'], { timeoutMs: 5000 });
      await lab.exec('red', IP, ['-6', 'route', 'flush', 'cache'], 5000);
    }
  });

  test('iperf3 -6 TCP both ways through the switch (red <-> blue) and through NAT66 (red <-> wan)', async () => {
    for (const reverse of [false, true]) {
      assert.ok((await iperfTcp(lab, 'blue', 'red', V6.blue, reverse)) > 0, `switch, reverse ${reverse}`);
      assert.ok((await iperfTcp(lab, 'wan', 'red', V6.wan, reverse)) > 0, `NAT66, reverse ${reverse}`);
    }
  });

  test('iperf3 -6 UDP 10 Mbit/s both ways through the switch and through NAT66 loses < 5%', async () => {
    for (const [server, target] of [['blue', V6.blue], ['wan', V6.wan]] as const) {
      for (const reverse of [false, true]) {
        const u = await iperfUdp(lab, server, 'red', target, reverse);
        assert.ok(u.packets > 0 && u.lostPercent < 5, `red ${reverse ? '<-' : '->'} ${target}: ${show(u)}`);
      }
    }
  });

  test('tapbridge is alive and counted IPv6 router work', async () => {
    assert.ok(lab.alive(), lab.log());
    const r = await lab.ctl<Record<string, number>>('api', 'GET', '/v1/router');
    assert.ok((r.forwarded6 ?? 0) > 0 && (r.echoReplies6 ?? 0) > 0 && (r.routerAdvertsSent ?? 0) > 0, show(r));
  });
});

describe('IPv6 routed without NAT (nat.routed), NDP proxy on the uplink', { skip: SKIP ?? false, timeout: 90_000 }, () => {
  before(() => requireTools(NEEDS));
  const lab = new NatLab({ tag: 'r6', ipv6: true, routed6: true, noBlue: true });

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

  test('with a route to the prefix via tapbridge, the wan sees red\'s own address', async () => {
    const add = await run(IP, ['-n', lab.ns('wan'), '-6', 'route', 'add', V6.prefix, 'via', V6.external], { timeoutMs: 5000 });
    assert.equal(add.code, 0, describeRun(add));
    try {
      const body = await curl(lab, 'red', `http://[${V6.wan}]/`);
      assert.match(body, new RegExp(`you are \\[${V6.red}\\]:\\d+`), body);
      const back = await curl(lab, 'wan', `http://[${V6.red}]:8000/`);
      assert.match(back, new RegExp(`^hello from ${lab.ns('red')}, you are \\[${V6.wan}\\]:\\d+`), back);
    } finally {
      await run(IP, ['-n', lab.ns('wan'), '-6', 'route', 'del', V6.prefix, 'via', V6.external], { timeoutMs: 5000 });
    }
  });

  test('with the prefix on-link at the wan, tapbridge answers its neighbour solicitations (NDP proxy)', async () => {
    const add = await run(IP, ['-n', lab.ns('wan'), '-6', 'route', 'add', V6.prefix, 'dev', 'eth0'], { timeoutMs: 5000 });
    assert.equal(add.code, 0, describeRun(add));
    try {
      const r = await ping(lab.ns('wan'), V6.red, { count: 3, intervalS: 0.2 });
      assert.ok(r.ok && r.received >= 2, describeRun(r));
      const neigh = await lab.exec('wan', IP, ['-6', 'neigh', 'show', V6.red], 5000);
      assert.match(neigh.stdout, /lladdr 02:74:62:/, describeRun(neigh));
    } finally {
      await run(IP, ['-n', lab.ns('wan'), '-6', 'route', 'del', V6.prefix, 'dev', 'eth0'], { timeoutMs: 5000 });
    }
  });
});
