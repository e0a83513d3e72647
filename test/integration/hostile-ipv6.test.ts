/*
 * Hostile IPv6 from one tenant (the IPv6 issue's hostile-input tests): on the dual-stack lab,
 * red (port security on) sends a storm of malformed and hostile IPv6 — extension chains that
 * do not walk, tiny, overlapping and out-of-order fragments, ICMPv6 with bad checksums and
 * errors quoting garbage, NDP with bad options, spoofed neighbour advertisements for the
 * gateway, blue and the host port, router advertisements and redirects — while blue pings
 * the gateway and the wan over IPv6 every 20 ms. Then red and `auto` (no port security)
 * each act as a rogue router: the RA guard drops red's advertisements, auto's reach blue,
 * whose kernel takes an address from them.
 *
 * After the storm: blue lost < 1% (or at most one), no 1 s gap, tapbridge alive, RSS and
 * frame pool back near the warm-up baseline (test/helpers/hostile.ts), the drops counted
 * under their reasons, the gateway's neighbour table and blue's routes unchanged.
 *
 * One instance, names tbt-<pid>-h6-*, removed in after(). The storm is bounded (about 165
 * kinds of frame per round, 12 rounds at 1500 frames/s, test/integration/fixtures/hostile.py).
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { capture, ping } from '../helpers/net.js';
import { IP, describeRun, macOf, waitFor } from '../helpers/sys.js';
import { NatLab, V6, curl, type PortJson } from '../helpers/nat-lab.js';
import { GATEWAY_MAC, Probe, dropDelta, hostile, hostileSkip, measured, reasonsOf, report, useLab, vitals } from '../helpers/hostile.js';

const SKIP = hostileSkip('hostile IPv6 integration tests', { tcpdump: '/usr/bin/tcpdump', curl: '/usr/bin/curl' });

interface NeighJson {
  iface: string;
  ip: string;
  macText: string;
  state: string;
}

/** Prefixes the rogue routers advertise (documentation space, never routed). */
const ROGUE_RED = '2001:db8:bad:1::';
const ROGUE_AUTO = '2001:db8:bad:2::';
/** Red's storm advertises this one (hostile.py storm6). */
const ROGUE_STORM = '2001:db8:bad:6::';

describe('hostile IPv6 from red', { skip: SKIP ?? false, timeout: 150_000 }, () => {
  const lab = new NatLab({ tag: 'h6', ipv6: true, slaac: true, portExtra: { red: { security: true } } });
  const baseline = useLab(lab, 'hostile6');
  let macs: { red: string; blue: string; host: string; auto: string };

  const blueAddresses = async (): Promise<string> => (await lab.exec('blue', IP, ['-6', '-o', 'addr', 'show', 'dev', 'eth0'], 5000)).stdout;
  const blueRoutes = async (): Promise<string> => (await lab.exec('blue', IP, ['-6', 'route', 'show'], 5000)).stdout;

  before(async () => {
    const ports = await lab.ctl<(PortJson & { mac: string })[]>('ports');
    macs = { red: await macOf(lab.ns('red')), blue: await macOf(lab.ns('blue')), host: ports.find((p) => p.name === 'host')!.mac, auto: await macOf(lab.ns('auto')) };
    // the IPv6 neighbours the storm will try to take over: blue and the host port
    for (const [from, to] of [['blue', V6.gateway], ['blue', V6.wan], ['host', V6.gateway], ['red', V6.gateway], ['red', V6.wan]] as const) {
      const p = await ping(lab.ns(from), to, { count: 3, intervalS: 0.05 });
      assert.ok(p.received > 0, `warm-up ping -6 ${from} -> ${to}\n${describeRun(p)}`);
    }
    const p = await ping(lab.ns('host'), V6.blue, { count: 3, intervalS: 0.05 });
    assert.ok(p.received > 0, `warm-up ping -6 host -> blue\n${describeRun(p)}`);
  });

  test('a storm of malformed IPv6, NDP spoofing and rogue RAs: dropped and counted by reason, neighbours and routes unchanged', async (t) => {
    const routesBefore = await blueRoutes();
    const before = await vitals(lab);
    const probe = Probe.start(lab, 6, { targets: [V6.gateway, V6.wan] });
    const sent = await hostile(lab, 'red', ['storm6', GATEWAY_MAC, 12, 1500, 1]);
    const m = await measured(t, lab, 'storm6', before, probe, { baseline: baseline(), extra: `${sent.sent} frames sent (${sent.refused} refused by red's kernel) in ${sent.seconds} s` });
    const delta = dropDelta(before.ports, m.after.ports);
    report(t, 'storm6', `drops by reason: ${JSON.stringify(delta)}`);
    const reasons = reasonsOf(delta);
    for (const r of [
      'ipv6_bad_version',
      'ipv6_bad_len',
      'ipv6_ext_hbh_not_first',
      'ipv6_ext_too_many',
      'ipv6_ext_too_long',
      'icmpv6_bad_csum',
      'ndp_bad_option',
      'spoofed_nd',
      'ra_guard',
    ])
      assert.ok(reasons.has(r), `no ${r} drops after the storm: ${JSON.stringify(delta)}`);
    assert.ok(reasons.size >= 14, `drops are counted under many reasons: ${JSON.stringify(delta)}`);

    // red's claims of the gateway, blue and the host port changed nothing
    const neigh = await lab.ctl<NeighJson[]>('neigh');
    const entry = (ip: string) => neigh.find((n) => n.ip === ip && n.iface === 'br0');
    assert.equal(entry(V6.blue)?.macText, macs.blue, `${V6.blue} is still blue: ${JSON.stringify(neigh)}`);
    assert.equal(entry(V6.host)?.macText, macs.host, `${V6.host} is still the host port: ${JSON.stringify(neigh)}`);
    for (const own of [V6.gateway, V6.gatewayLinkLocal])
      assert.equal(entry(own), undefined, `the gateway has no neighbour entry for its own ${own}: ${JSON.stringify(neigh)}`);
    assert.equal(entry('2001:db8:100::77'), undefined, `an unsolicited advertisement created no entry: ${JSON.stringify(neigh)}`);
    assert.ok(!neigh.some((n) => n.macText === macs.red && n.ip !== V6.red && !n.ip.startsWith('fe80:')), `red owns no IPv6 neighbour but its own: ${JSON.stringify(neigh)}`);

    // blue took nothing from red's advertisements and redirects
    assert.ok(!(await blueAddresses()).includes(ROGUE_STORM.slice(0, -2)), `blue has no address from red's RA:\n${await blueAddresses()}`);
    const routesAfter = await blueRoutes();
    assert.equal(routesAfter, routesBefore, 'blue\'s IPv6 routes are unchanged');
    assert.match(routesAfter, new RegExp(`default via ${V6.gatewayLinkLocal}|default via ${V6.gateway}`), routesAfter);

    // and the tenants still get through
    await curl(lab, 'blue', `http://[${V6.wan}]/`);
    for (const [from, to] of [['host', V6.blue], ['red', V6.wan]] as const) {
      const p = await ping(lab.ns(from), to, { count: 3, intervalS: 0.05 });
      assert.equal(p.received, 3, `${from} -> ${to} after the storm\n${describeRun(p)}`);
    }
  });

  test('the same storm from auto, a port without port security: the gateway refuses NDP takeovers of red, blue and itself', async (t) => {
    const before = await vitals(lab);
    const probe = Probe.start(lab, 5, { targets: [V6.gateway, V6.wan] });
    // auto sends as red (2001:db8:100::2) with its own MAC: only the gateway's checks stand in the way
    const sent = await hostile(lab, 'auto', ['storm6', GATEWAY_MAC, 6, 1500, 2]);
    const m = await measured(t, lab, 'storm6-auto', before, probe, { baseline: baseline(), extra: `${sent.sent} frames sent in ${sent.seconds} s` });
    const delta = dropDelta(before.ports, m.after.ports);
    report(t, 'storm6-auto', `drops by reason: ${JSON.stringify(delta)}`);
    const reasons = reasonsOf(delta);
    for (const r of ['gateway_claimed', 'nd_takeover_refused', 'ipv6_ext_too_many', 'ndp_bad_option'])
      assert.ok(reasons.has(r), `no ${r} drops after the storm from auto: ${JSON.stringify(delta)}`);
    const neigh = await lab.ctl<NeighJson[]>('neigh');
    const entry = (ip: string) => neigh.find((n) => n.ip === ip && n.iface === 'br0');
    for (const [ip, mac, who] of [[V6.red, macs.red, 'red'], [V6.blue, macs.blue, 'blue'], [V6.host, macs.host, 'the host port']] as const)
      if (entry(ip) !== undefined) assert.equal(entry(ip)?.macText, mac, `${ip} is still ${who}: ${JSON.stringify(neigh)}`);
    for (const own of [V6.gateway, V6.gatewayLinkLocal]) assert.equal(entry(own), undefined, `no neighbour entry for the gateway's own ${own}: ${JSON.stringify(neigh)}`);
    // (tenant to tenant, auto's advertisements for blue and the host port did reach their
    // peers' kernels: without port security that is as on a kernel bridge; routed traffic
    // through the gateway, whose address nobody could claim, is unharmed)
    for (const [from, to] of [['red', V6.wan], ['blue', V6.wan], ['host', V6.gateway]] as const) {
      const p = await ping(lab.ns(from), to, { count: 3, intervalS: 0.05 });
      assert.equal(p.received, 3, `${from} -> ${to} after the storm from auto\n${describeRun(p)}`);
    }
  });

  test('RA guard: router advertisements from red (port security) are dropped, those from auto (none) reach blue', async (t) => {
    // blue listens to router advertisements from now on (its static address made the lab turn them off)
    for (const key of ['accept_ra', 'autoconf']) {
      const r = await lab.exec('blue', 'sysctl', ['-qw', `net.ipv6.conf.eth0.${key}=1`], 5000);
      assert.equal(r.code, 0, describeRun(r));
    }
    const before = await vitals(lab);
    // RAs reaching blue from anyone but the gateway
    const inBlue = capture(lab.ns('blue'), `icmp6 and ip6[40] == 134 and not ether src ${GATEWAY_MAC}`, { seconds: 8, direction: 'in' });
    await inBlue.ready;
    await Promise.all([hostile(lab, 'red', ['ra', ROGUE_RED, 5]), hostile(lab, 'auto', ['ra', ROGUE_AUTO, 5])]);
    // blue's kernel takes an address in auto's prefix (SLAAC from the forwarded RA), none in red's
    const addrs = await waitFor(`blue's address in ${ROGUE_AUTO}/64`, async () => {
      const a = await blueAddresses();
      return a.includes(ROGUE_AUTO.slice(0, -1)) ? a : undefined;
    }, { timeoutMs: 6000 });
    inBlue.stop();
    const seen = await inBlue.done;
    report(t, 'ra-guard', `${seen.packets.length} rogue RAs reached blue`);
    assert.ok(!addrs.includes(ROGUE_RED.slice(0, -1)), `blue took no address from red's RA:\n${addrs}`);
    const from = (mac: string) => seen.packets.filter((l) => l.toLowerCase().startsWith(mac) || l.toLowerCase().includes(` ${mac} >`)).length;
    assert.equal(from(macs.auto), 5, `auto's 5 RAs reach blue\n${seen.output}`);
    assert.equal(from(macs.red), 0, `none of red's reaches blue\n${seen.output}`);
    const after = await vitals(lab);
    const delta = dropDelta(before.ports, after.ports);
    assert.ok((delta['red:ra_guard'] ?? 0) >= 5, `red's RAs counted as ra_guard: ${JSON.stringify(delta)}`);
  });
});
