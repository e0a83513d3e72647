/*
 * The IPv6 gateway on a real element graph without devices (test/helpers/dataplane.ts):
 * neighbour discovery (answers for global and link-local addresses, resolution with queued
 * packets, NUD to DELAY and PROBE, failure to address unreachable), router advertisements
 * (content, rate limit), echo, hop limit, no route, packet too big per GSO segment, closed
 * ports, link-local scope, tenant RAs and multicast noise; `ctl trace` for IPv6 (and that it
 * leaves nothing behind), `ctl neigh`, live stats and metrics of the IPv6 counters. Frames are
 * built with the wire layer's emitters and read back with its parsers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ACCOUNT_CONTROL } from '../../src/core/arena.js';
import { VNET_GSO_SIZE, VNET_GSO_TYPE } from '../../src/core/frame.js';
import { dataPlaneApi } from '../../src/dataplane/api.js';
import { runTrace } from '../../src/dataplane/trace.js';
import { renderNeighbors6, renderStats, type Neighbor6Row } from '../../src/cli/render.js';
import { CallError, type DataPlaneWorker } from '../../src/control/dataplane-client.js';
import { LiveStatsSource } from '../../src/control/live.js';
import { MetricsExporter } from '../../src/control/metrics.js';
import { ApiError } from '../../src/dataplane/errors.js';
import type { DataPlaneSpec, PortSpec } from '../../src/dataplane/spec.js';
import { fillL4Checksum6, verifyL4Checksum6 } from '../../src/wire/checksum.js';
import { ETHERTYPE_IPV6, writeEthernetHeader } from '../../src/wire/ethernet.js';
import {
  emitNeighborAdvert,
  emitNeighborSolicit,
  emitRouterAdvert,
  NDP_NA_FLAG_OVERRIDE,
  NDP_NA_FLAG_ROUTER,
  NDP_NA_FLAG_SOLICITED,
  parseIcmpv6,
  parseNdp,
} from '../../src/wire/icmpv6.js';
import { ip6ToString, linkLocalFromMac, multicastMacIp6, parseIp6, solicitedNodeIp6 } from '../../src/wire/ip6.js';
import { IPPROTO_TCP, IPPROTO_UDP } from '../../src/wire/ipv4.js';
import { IPPROTO_ICMPV6, parseIpv6, writeIpv6Header } from '../../src/wire/ipv6.js';
import { macToString, parseMac } from '../../src/wire/mac.js';
import { TestPlane, type Sent } from '../helpers/dataplane.js';

const GW_MAC = parseMac('02:74:62:00:00:01')!;
const UP_MAC = parseMac('02:74:62:00:71:02')!;
const WAN_MAC = parseMac('02:00:00:00:71:01')!;
const MAC = { red: parseMac('02:00:00:00:00:02')!, blue: parseMac('02:00:00:00:00:03')! };
const a6 = (s: string) => parseIp6(s)!;
const GW = '2001:db8:100::1';
const GW_LL = ip6ToString(linkLocalFromMac(GW_MAC));
const RED = '2001:db8:100::2';
const WAN = '2001:db8:113::1';

function port(name: keyof typeof MAC, addr: string): PortSpec {
  return { name, kind: 'namespace', bridge: 'br0', fd: -1, vnetHdr: true, ifname: `${name}:eth0`, mac: macToString(MAC[name]), addresses: [`${addr}/64`] };
}

/** red and blue on br0 (2001:db8:100::1/64, RAs), an uplink 2001:db8:113::2 via ::1; no NAT. */
function lab(over: Partial<DataPlaneSpec> = {}, uplinkMtu = 1500): TestPlane {
  return new TestPlane({
    bridges: [{ name: 'br0', agingSeconds: 300, macTableSize: 64, macLimitPerPort: 0, static: [], gateway: { address6: `${GW}/64`, mac: macToString(GW_MAC), mtu: 1500, ra: { routerLifetime: 1800, validLifetime: 86400, preferredLifetime: 14400, intervalSeconds: 200, dns: ['2001:db8:100::53'] } } }],
    ports: [port('red', RED), port('blue', '2001:db8:100::3')],
    uplink: { fd: -1, vnetHdr: true, ifname: 'eth0', address6: '2001:db8:113::2/64', mac: macToString(UP_MAC), gateway6: WAN, mtu: uplinkMtu },
    ...over,
  });
}

interface Ip6Opts {
  srcMac: number;
  dstMac: number;
  src: string;
  dst: string;
  proto?: number;
  hop?: number;
  payload?: number;
  icmpType?: number;
  tcpFlags?: number;
}

/** An IPv6 frame with UDP, TCP or ICMPv6 (echo request by default) and a valid checksum. */
function ip6Frame(o: Ip6Opts): Buffer {
  const proto = o.proto ?? IPPROTO_ICMPV6;
  const l4h = proto === IPPROTO_TCP ? 20 : 8;
  const plen = l4h + (o.payload ?? 16);
  const b = Buffer.alloc(14 + 40 + plen, 0x5a);
  writeEthernetHeader(b, 0, o.dstMac, o.srcMac, ETHERTYPE_IPV6);
  writeIpv6Header(b, 14, plen, proto, o.hop ?? 64, a6(o.src), a6(o.dst));
  const l4 = 54;
  b.fill(0, l4, l4 + l4h);
  if (proto === IPPROTO_ICMPV6) {
    b[l4] = o.icmpType ?? 128;
    b.writeUInt16BE(7, l4 + 4);
  } else {
    b.writeUInt16BE(40000, l4);
    b.writeUInt16BE(9999, l4 + 2);
    if (proto === IPPROTO_UDP) b.writeUInt16BE(plen, l4 + 4);
    else {
      b[l4 + 12] = 0x50;
      b[l4 + 13] = o.tcpFlags ?? 0x02;
    }
  }
  fillL4Checksum6(b, 14, proto, l4, plen);
  return b;
}

function nsFrame(srcMac: number, src: string, target: string, opts: { unicastTo?: number; lla?: number } = {}): Buffer {
  const b = Buffer.alloc(14 + 40 + 32);
  const group = solicitedNodeIp6(a6(target), new Uint32Array(4));
  const dst = opts.unicastTo !== undefined ? a6(target) : group;
  writeEthernetHeader(b, 0, opts.unicastTo ?? multicastMacIp6(group), srcMac, ETHERTYPE_IPV6);
  const n = emitNeighborSolicit(b, 14, a6(src), dst, a6(target), src === '::' ? -1 : (opts.lla ?? srcMac));
  return b.subarray(0, 14 + n);
}

function naFrame(srcMac: number, dstMac: number, src: string, dst: string, flags: number, lla = srcMac): Buffer {
  const b = Buffer.alloc(14 + 40 + 32);
  writeEthernetHeader(b, 0, dstMac, srcMac, ETHERTYPE_IPV6);
  const n = emitNeighborAdvert(b, 14, a6(src), a6(dst), a6(src), flags, lla);
  return b.subarray(0, 14 + n);
}

function rsFrame(srcMac: number, src: string): Buffer {
  const b = Buffer.alloc(14 + 40 + 16);
  writeEthernetHeader(b, 0, multicastMacIp6(a6('ff02::2')), srcMac, ETHERTYPE_IPV6);
  writeIpv6Header(b, 14, 16, IPPROTO_ICMPV6, 255, a6(src), a6('ff02::2'));
  b.fill(0, 54);
  b[54] = 133;
  b[62] = 1; // source link-layer address option
  b[63] = 1;
  b.writeUIntBE(srcMac, 64, 6);
  fillL4Checksum6(b, 14, IPPROTO_ICMPV6, 54, 16);
  return b;
}

/** What came out, decoded: Ethernet destination, IPv6 addresses, ICMPv6 type (or protocol). */
function decode(s: Sent) {
  const ip = parseIpv6(s.bytes, 14, s.bytes.length - 14)!;
  const icmp = ip.nextHeader === IPPROTO_ICMPV6 ? parseIcmpv6(s.bytes, 54, ip.payloadLength)! : null;
  return { port: s.port, ethDst: s.bytes.readUIntBE(0, 6), src: ip6ToString(ip.src), dst: ip6ToString(ip.dst), hop: ip.hopLimit, proto: ip.nextHeader, type: icmp?.type ?? -1, icmp, bytes: s.bytes };
}

function takeDecoded(p: TestPlane): ReturnType<typeof decode>[] {
  return p.take().map(decode);
}

/** red's and wan's neighbour entries resolved (red asks for the gateway; wan answers our NS). */
function resolveNeighbours(p: TestPlane): void {
  p.inject('red', nsFrame(MAC.red, RED, GW));
  p.take();
  p.inject('red', ip6Frame({ srcMac: MAC.red, dstMac: GW_MAC, src: RED, dst: WAN }));
  p.inject('uplink', naFrame(WAN_MAC, UP_MAC, WAN, '2001:db8:113::2', NDP_NA_FLAG_ROUTER | NDP_NA_FLAG_SOLICITED | NDP_NA_FLAG_OVERRIDE));
  p.take();
}

test('gateway answers neighbour solicitations for its global and link-local addresses, not for others', () => {
  const p = lab();
  p.take(); // nothing was announced: the engine was not started
  p.inject('red', nsFrame(MAC.red, RED, GW));
  const [na] = takeDecoded(p);
  assert.equal(na.port, 'red');
  assert.equal(na.ethDst, MAC.red);
  assert.equal(na.dst, RED);
  const nd = parseNdp(na.bytes, 54, na.bytes.length - 54)!;
  assert.equal(ip6ToString(nd.target!), GW);
  assert.equal(nd.targetMac, GW_MAC);
  assert.equal(nd.naFlags, NDP_NA_FLAG_ROUTER | NDP_NA_FLAG_SOLICITED | NDP_NA_FLAG_OVERRIDE);
  assert.ok(verifyL4Checksum6(na.bytes, 14, IPPROTO_ICMPV6, 54, na.bytes.length - 54));

  p.inject('red', nsFrame(MAC.red, 'fe80::2', GW_LL));
  const [ll] = takeDecoded(p);
  assert.equal(ll.src, GW_LL, 'answers from the address asked for');
  assert.equal(na.src, GW);
  assert.equal(ip6ToString(parseNdp(ll.bytes, 54, ll.bytes.length - 54)!.target!), GW_LL);

  p.inject('red', nsFrame(MAC.red, RED, '2001:db8:100::3'));
  assert.deepEqual(takeDecoded(p).filter((x) => x.port === 'blue').map((x) => x.type), [135], 'the switch floods it to blue');
  assert.equal(p.drops('gw-br0').ipv6_multicast_ignored, 1, 'not a group the gateway listens to');
  p.inject('red', nsFrame(MAC.red, RED, '2001:db8:100::3', { unicastTo: GW_MAC }));
  assert.equal(p.take().length, 0);
  assert.equal(p.drops('gw-br0').ndp_not_for_us, 1);

  // DAD for the gateway's address: defended with an advertisement to all nodes.
  p.inject('red', nsFrame(MAC.red, '::', GW));
  const defend = takeDecoded(p).filter((x) => x.type === 136);
  assert.equal(defend.length, 2, 'to red and blue');
  assert.equal(defend[0].dst, 'ff02::1');
});

test('a solicitation naming another MAC than the frame source is dropped on a bridge', () => {
  const p = lab();
  p.inject('red', nsFrame(MAC.red, RED, GW, { lla: MAC.blue }));
  assert.equal(p.take().filter((x) => x.port === 'red').length, 0);
  assert.equal(p.drops('gw-br0').nd_lla_mismatch, 1);
});

test('router advertisements: prefix with A flag, MTU, RDNSS, lifetime; one per 3 s, a solicitation inside the window is answered when it ends', () => {
  const p = lab();
  p.inject('red', rsFrame(MAC.red, 'fe80::2'));
  const ras = takeDecoded(p).filter((x) => x.type === 134);
  assert.deepEqual(ras.map((x) => x.port).sort(), ['blue', 'red']);
  const ra = ras[0];
  assert.equal(ra.src, GW_LL);
  assert.equal(ra.dst, 'ff02::1');
  assert.equal(ra.hop, 255);
  const f = parseNdp(ra.bytes, 54, ra.bytes.length - 54)!;
  assert.equal(f.ra!.routerLifetime, 1800);
  assert.equal(f.sourceMac, GW_MAC);
  assert.equal(f.mtu, 1500);
  assert.equal(f.prefixes!.length, 1);
  assert.equal(ip6ToString(f.prefixes![0].prefix), '2001:db8:100::');
  assert.equal(f.prefixes![0].prefixLength, 64);
  assert.ok(f.prefixes![0].autonomous && f.prefixes![0].onLink);
  assert.equal(ip6ToString(f.rdnss![0].servers[0]), '2001:db8:100::53');

  p.inject('red', rsFrame(MAC.red, 'fe80::2'), p.clock.t + 1000);
  assert.equal(takeDecoded(p).filter((x) => x.type === 134).length, 0, 'rate-limited');
  p.clock.t += 2100;
  p.tickElements();
  assert.equal(takeDecoded(p).filter((x) => x.type === 134).length, 2, 'sent when the window ends');
  assert.equal(p.engine.graph.element('gw6/br0')!.counters.rsReceived, 2);
});

test('echo requests to the global and link-local gateway addresses are answered', () => {
  const p = lab();
  resolveNeighbours(p);
  p.inject('red', ip6Frame({ srcMac: MAC.red, dstMac: GW_MAC, src: RED, dst: GW }));
  const [r] = takeDecoded(p);
  assert.equal(r.port, 'red');
  assert.equal(r.type, 129);
  assert.equal(r.src, GW);
  assert.equal(r.dst, RED);
  assert.ok(verifyL4Checksum6(r.bytes, 14, IPPROTO_ICMPV6, 54, r.bytes.length - 54));

  p.inject('red', nsFrame(MAC.red, 'fe80::2', GW_LL));
  p.take();
  p.inject('red', ip6Frame({ srcMac: MAC.red, dstMac: GW_MAC, src: 'fe80::2', dst: GW_LL }));
  const [l] = takeDecoded(p);
  assert.equal(l.port, 'red');
  assert.equal(l.type, 129);
  assert.equal(l.src, GW_LL);
  assert.equal(l.dst, 'fe80::2');
});

test('forwarding to the uplink: the next hop is resolved by NDP while the packet waits; hop limit decremented', () => {
  const p = lab();
  p.inject('red', nsFrame(MAC.red, RED, GW));
  p.take();
  p.inject('red', ip6Frame({ srcMac: MAC.red, dstMac: GW_MAC, src: RED, dst: WAN, hop: 64 }));
  const [ns] = takeDecoded(p);
  assert.equal(ns.port, 'uplink');
  assert.equal(ns.type, 135);
  assert.equal(ns.dst, ip6ToString(solicitedNodeIp6(a6(WAN), new Uint32Array(4))));
  assert.equal(ns.src, '2001:db8:113::2');
  p.inject('uplink', naFrame(WAN_MAC, UP_MAC, WAN, '2001:db8:113::2', NDP_NA_FLAG_ROUTER | NDP_NA_FLAG_SOLICITED | NDP_NA_FLAG_OVERRIDE));
  const [fwd] = takeDecoded(p);
  assert.equal(fwd.port, 'uplink');
  assert.equal(fwd.ethDst, WAN_MAC);
  assert.equal(fwd.hop, 63);
  assert.equal(fwd.type, 128);
  const neigh = p.engine.gateways6.flatMap((g) => g.neighbors());
  assert.equal(neigh.find((n) => n.ip === WAN)?.state, 'reachable');

  // And back: wan -> red goes straight out (red is known from its solicitation).
  p.inject('uplink', ip6Frame({ srcMac: WAN_MAC, dstMac: UP_MAC, src: WAN, dst: RED, icmpType: 129 }));
  const [back] = takeDecoded(p);
  assert.equal(back.port, 'red');
  assert.equal(back.ethDst, MAC.red);
});

test('neighbour unreachability detection: stale -> delay on use -> unicast probes; an unanswered next hop fails to address unreachable', () => {
  const p = lab();
  resolveNeighbours(p);
  const state = () => p.engine.gateways6.flatMap((g) => g.neighbors()).find((n) => n.ip === WAN)?.state;
  p.clock.t += 31_000;
  p.inject('red', ip6Frame({ srcMac: MAC.red, dstMac: GW_MAC, src: RED, dst: WAN }));
  p.take();
  p.inject('red', ip6Frame({ srcMac: MAC.red, dstMac: GW_MAC, src: RED, dst: WAN }));
  assert.equal(p.take().length, 1, 'still sent while stale');
  assert.equal(state(), 'delay');
  p.clock.t += 5100;
  p.tickElements();
  const [probe] = takeDecoded(p);
  assert.equal(probe.type, 135);
  assert.equal(probe.dst, WAN, 'a unicast probe');
  assert.equal(probe.ethDst, WAN_MAC);
  assert.equal(state(), 'probe');

  // A next hop that never answers: three solicitations, then ICMPv6 address unreachable.
  p.inject('uplink', ip6Frame({ srcMac: WAN_MAC, dstMac: UP_MAC, src: WAN, dst: '2001:db8:100::99' }));
  let solicits = takeDecoded(p).filter((x) => x.type === 135 && x.port === 'red').length;
  for (let i = 0; i < 4; i++) {
    p.clock.t += 1100;
    p.tickElements();
    const out = takeDecoded(p);
    solicits += out.filter((x) => x.type === 135 && x.port === 'red').length;
    const err = out.find((x) => x.type === 1);
    if (err !== undefined) {
      assert.equal(err.port, 'uplink');
      assert.equal(err.icmp!.code, 3);
      assert.equal(err.dst, WAN);
    }
  }
  assert.equal(solicits, 3);
  assert.equal(p.drops('gw-br0').nd_failed, 1);
});

test('hop limit 1 gets time exceeded from the gateway; no route gets destination unreachable', () => {
  const p = lab({ uplink: undefined });
  p.inject('red', nsFrame(MAC.red, RED, GW));
  p.take();
  p.inject('red', ip6Frame({ srcMac: MAC.red, dstMac: GW_MAC, src: RED, dst: '2001:db8:100::3', hop: 1 }));
  // Same subnet through the gateway (not the switch): the router still checks the hop limit.
  const out = takeDecoded(p);
  const te = out.find((x) => x.type === 3)!;
  assert.equal(te.src, GW);
  assert.equal(te.dst, RED);
  p.inject('red', ip6Frame({ srcMac: MAC.red, dstMac: GW_MAC, src: RED, dst: WAN }));
  const nr = takeDecoded(p).find((x) => x.type === 1)!;
  assert.equal(nr.icmp!.code, 0);
  assert.equal(p.drops('gw-br0').ipv6_no_route, 1);
  assert.equal(p.drops('gw-br0').hop_limit_exceeded, 1);
});

test('packet too big: IPv6 is never fragmented; a GSO frame is checked per segment', () => {
  const p = lab({}, 1400);
  resolveNeighbours(p);
  p.inject('red', ip6Frame({ srcMac: MAC.red, dstMac: GW_MAC, src: RED, dst: WAN, proto: IPPROTO_UDP, payload: 1452 }));
  const ptb = takeDecoded(p).find((x) => x.type === 2)!;
  assert.equal(ptb.port, 'red');
  assert.equal(ptb.icmp!.rest, 1400);
  assert.equal(ptb.src, GW);
  assert.equal(p.drops('gw-br0').ipv6_too_big, 1);

  // A TSO6 super-frame of 1300-byte segments passes; 1400-byte segments do not.
  for (const [mss, passes] of [[1300, true], [1400, false]] as const) {
    p.inject('red', ip6Frame({ srcMac: MAC.red, dstMac: GW_MAC, src: RED, dst: WAN, proto: IPPROTO_TCP, payload: 4000, tcpFlags: 0x10 }), p.clock.t, (b, e) => {
      const v = e - 10; // the virtio header
      b[v + VNET_GSO_TYPE] = 4; // TCPV6
      b[v + VNET_GSO_SIZE] = mss & 0xff;
      b[v + VNET_GSO_SIZE + 1] = mss >> 8;
    });
    const out = takeDecoded(p);
    assert.equal(out.some((x) => x.port === 'uplink' && x.proto === IPPROTO_TCP), passes, `mss ${mss}`);
  }
});

test('closed ports on the gateway: UDP gets port unreachable, TCP gets a reset; other protocols parameter problem', () => {
  const p = lab();
  resolveNeighbours(p);
  p.inject('red', ip6Frame({ srcMac: MAC.red, dstMac: GW_MAC, src: RED, dst: GW, proto: IPPROTO_UDP }));
  const pu = takeDecoded(p)[0];
  assert.equal(pu.type, 1);
  assert.equal(pu.icmp!.code, 4);
  p.inject('red', ip6Frame({ srcMac: MAC.red, dstMac: GW_MAC, src: RED, dst: GW, proto: IPPROTO_TCP }));
  const rst = takeDecoded(p)[0];
  assert.equal(rst.proto, IPPROTO_TCP);
  assert.equal(rst.bytes[54 + 13], 0x14, 'RST|ACK');
  assert.ok(verifyL4Checksum6(rst.bytes, 14, IPPROTO_TCP, 54, 20));
  p.inject('red', ip6Frame({ srcMac: MAC.red, dstMac: GW_MAC, src: RED, dst: GW, proto: 132 }));
  const pp = takeDecoded(p)[0];
  assert.equal(pp.type, 4);
  assert.equal(pp.icmp!.code, 1);
  assert.equal(pp.icmp!.rest, 6, 'points at the next header field');
});

test('link-local scope, tenant router advertisements and multicast noise are dropped and counted', () => {
  const p = lab();
  resolveNeighbours(p);
  p.inject('red', ip6Frame({ srcMac: MAC.red, dstMac: GW_MAC, src: 'fe80::2', dst: 'fe80::3' }));
  assert.equal(p.drops('gw-br0').ipv6_beyond_scope, 1);
  p.inject('red', ip6Frame({ srcMac: MAC.red, dstMac: GW_MAC, src: 'fe80::2', dst: WAN }));
  assert.equal(p.drops('gw-br0').ipv6_beyond_scope, 2);
  const ra = Buffer.alloc(14 + 40 + 16);
  writeEthernetHeader(ra, 0, multicastMacIp6(a6('ff02::1')), MAC.red, ETHERTYPE_IPV6);
  const n = emitRouterAdvert({ src: a6('fe80::2'), dst: a6('ff02::1'), curHopLimit: 64, managed: false, other: false, routerLifetime: 1800, reachableTime: 0, retransTimer: 0 }, ra, 14);
  p.inject('red', ra.subarray(0, 14 + n));
  assert.equal(p.drops('gw-br0').ndp_ignored, 1);
  p.inject('red', ip6Frame({ srcMac: MAC.red, dstMac: multicastMacIp6(a6('ff02::16')), src: 'fe80::2', dst: 'ff02::16', icmpType: 143 }));
  assert.equal(p.drops('gw-br0').ipv6_multicast_ignored, 1);
  p.inject('red', ip6Frame({ srcMac: MAC.red, dstMac: GW_MAC, src: GW, dst: WAN }));
  assert.equal(p.drops('gw-br0').ipv6_bad_source, 1, 'our own address as a source');
  p.take();
});

test('port security for IPv6: configured, link-local and SLAAC sources pass; others, foreign NDP and tenant RAs (RA guard) are dropped', () => {
  const red = { ...port('red', RED), security: { macs: [macToString(MAC.red)], learn: false, ipv4: [], ipv6: [RED] } };
  const p = lab({ ports: [red, port('blue', '2001:db8:100::3')] });
  const slaac = linkLocalFromMac(MAC.red);
  slaac[0] = 0x20010db8;
  slaac[1] = 0x01000000;
  const ok = [RED, ip6ToString(linkLocalFromMac(MAC.red)), ip6ToString(slaac)];
  for (const src of ok) p.inject('red', ip6Frame({ srcMac: MAC.red, dstMac: MAC.blue, src, dst: '2001:db8:100::3' }));
  assert.equal(p.take().filter((x) => x.port === 'blue').length, 3, ok.join(', '));
  p.inject('red', ip6Frame({ srcMac: MAC.red, dstMac: MAC.blue, src: '2001:db8:100::99', dst: '2001:db8:100::3' }));
  assert.equal(p.drops('red').spoofed_ipv6, 1);
  p.inject('red', naFrame(MAC.red, MAC.blue, '2001:db8:100::3', RED, NDP_NA_FLAG_OVERRIDE));
  assert.equal(p.drops('red').spoofed_ipv6, 2, 'claiming to be blue');
  const na = naFrame(MAC.red, MAC.blue, RED, '2001:db8:100::3', NDP_NA_FLAG_OVERRIDE);
  na.writeUIntBE(MAC.blue, 14 + 40 + 26, 6); // target link-layer address: blue's MAC
  fillL4Checksum6(na, 14, IPPROTO_ICMPV6, 54, na.length - 54);
  p.inject('red', na);
  assert.equal(p.drops('red').spoofed_nd, 1);
  const ra = Buffer.alloc(14 + 40 + 16);
  writeEthernetHeader(ra, 0, multicastMacIp6(a6('ff02::1')), MAC.red, ETHERTYPE_IPV6);
  const n = emitRouterAdvert({ src: linkLocalFromMac(MAC.red), dst: a6('ff02::1'), curHopLimit: 64, managed: false, other: false, routerLifetime: 1800, reachableTime: 0, retransTimer: 0 }, ra, 14);
  p.inject('red', ra.subarray(0, 14 + n));
  assert.equal(p.drops('red').ra_guard, 1);
  assert.equal(p.take().length, 0, 'nothing of it reached blue');
});

/* ------------------------------------------------------- ctl trace (IPv6) */

function traceSteps(r: ReturnType<typeof runTrace>): string {
  return r.steps.map((s) => `${s.stage}: ${s.decision}`).join('\n');
}

test('trace red -> the gateway (ICMPv6 echo): local delivery and an echo reply to red', () => {
  const p = lab();
  resolveNeighbours(p);
  const r = runTrace(p.engine, { port: 'red', dst: GW });
  assert.equal(r.packet, `icmp6 ${RED} -> ${GW} type 128 id 40000`);
  const steps = traceSteps(r);
  assert.match(steps, /^gw6\/br0: IPv6 icmp6 2001:db8:100::2 -> 2001:db8:100::1 type 128 id 40000 hop limit 64$/m);
  assert.match(steps, /^router6: 2001:db8:100::1 is an address of tapbridge: local delivery$/m);
  assert.match(steps, /^local6: ICMPv6 echo request: reply$/m);
  assert.deepEqual(r.outputs, [`port red (red:eth0): 02:74:62:00:00:01 -> 02:00:00:00:00:02, icmp6 ${GW} -> ${RED} type 129 id 40000 hop limit 64`]);
  assert.deepEqual(r.drops, []);
  const hops = r.path.map((h) => `${h.from}[${h.output}]->[${h.input}]${h.to}`);
  assert.deepEqual(hops.slice(0, 7), [
    'dev/red[rx]->[red]switch/br0',
    'switch/br0[gw-br0]->[wire]gw/br0',
    'gw/br0[ip6]->[wire]gw6/br0',
    'gw6/br0[ip]->[br0]router6',
    'router6[local]->[in]local6',
    'local6[reply]->[local]router6',
    'router6[br0]->[ip]gw6/br0',
  ]);
});

test('trace red -> wan: routed to the uplink with the hop limit decremented; an unresolved next hop is named (NDP)', () => {
  const p = lab();
  p.inject('red', nsFrame(MAC.red, RED, GW));
  p.take();
  const waiting = runTrace(p.engine, { port: 'red', dst: WAN, proto: 'tcp', dport: 80 });
  assert.equal(waiting.packet, `tcp [${RED}]:40000 -> [${WAN}]:80`);
  assert.match(traceSteps(waiting), /^router6: hop limit 64 -> 63; out of uplink \(MTU 1500\) to next hop 2001:db8:113::1$/m);
  assert.match(traceSteps(waiting), /^gw6\/uplink: NDP 2001:db8:113::1: incomplete: the packet would wait for a neighbour advertisement$/m);
  assert.deepEqual(waiting.outputs, []);
  assert.equal(p.engine.gateways6.flatMap((g) => g.neighbors()).length, 1, 'the trace left no neighbour entry behind (only red)');

  resolveNeighbours(p);
  const r = runTrace(p.engine, { port: 'red', dst: WAN, proto: 'udp', dport: 53, sport: 5353 });
  assert.match(traceSteps(r), /^gw6\/uplink: NDP 2001:db8:113::1: 02:00:00:00:71:01 \(reachable\)$/m);
  assert.deepEqual(r.outputs, [`port uplink (eth0): 02:74:62:00:71:02 -> 02:00:00:00:71:01, udp [${RED}]:5353 -> [${WAN}]:53 hop limit 63`]);
  assert.match(r.verdict, /would transmit on 1 port/);
});

test('trace with hop limit 1: hop_limit_exceeded and ICMPv6 time exceeded to the source', () => {
  const p = lab();
  resolveNeighbours(p);
  const r = runTrace(p.engine, { port: 'red', dst: WAN, ttl: 1 });
  assert.match(traceSteps(r), /hop limit 1 expires here: ICMPv6 time exceeded to the source/);
  assert.deepEqual(r.drops, ['hop_limit_exceeded (counted on port gw-br0)']);
  assert.equal(r.outputs.length, 1);
  assert.match(r.outputs[0], /^port red .*icmp6 2001:db8:100::1 -> 2001:db8:100::2 time exceeded code 0, about icmp6 2001:db8:100::2 -> 2001:db8:113::1 type 128 id 40000 hop limit 64$/);
  assert.match(r.verdict, /^dropped: hop_limit_exceeded/);
});

test('trace from the uplink to tapbridge\'s external IPv6 address: the uplink MAC by default, an echo reply back out', () => {
  const p = lab();
  resolveNeighbours(p);
  const r = runTrace(p.engine, { port: 'uplink', src: WAN, dst: '2001:db8:113::2' });
  assert.match(r.packet, /^icmp6 2001:db8:113::1 -> 2001:db8:113::2 type 128/);
  assert.match(traceSteps(r), /^gw6\/uplink: IPv6 icmp6/m);
  assert.match(traceSteps(r), /local delivery/);
  assert.equal(r.outputs.length, 1);
  assert.match(r.outputs[0], /^port uplink \(eth0\): 02:74:62:00:71:02 -> 02:00:00:00:71:01, icmp6 2001:db8:113::2 -> 2001:db8:113::1 type 129/);
  assert.throws(() => runTrace(p.engine, { port: 'uplink', dst: '2001:db8:113::2' }), /port 'uplink' has no configured IPv6 address: pass 'src'/);
});

test('trace: the address family decides; defaults of a dual-stack port; link-local and multicast destinations', () => {
  const dual = { ...port('red', RED), addresses: ['2001:db8:100::2/64', '10.100.0.2/24'] };
  const p = lab({ ports: [dual, port('blue', '2001:db8:100::3')] });
  const v4 = runTrace(p.engine, { port: 'red', dst: '10.100.0.3' });
  assert.equal(v4.packet, 'icmp 10.100.0.2 -> 10.100.0.3 type 8 id 40000', 'the IPv4 address of the port, though listed second');
  assert.match(v4.steps[0].decision, /no IPv4 gateway on this bridge and no dstMac given: using broadcast/);
  const ll = runTrace(p.engine, { port: 'red', dst: GW_LL });
  assert.equal(ll.packet, `icmp6 ${ip6ToString(linkLocalFromMac(MAC.red))} -> ${GW_LL} type 128 id 40000`, "toward a link-local address: the port's own link-local source");
  assert.match(traceSteps(ll), /is an address of tapbridge: local delivery/);
  const group = runTrace(p.engine, { port: 'red', dst: 'ff02::1', proto: 'udp', dport: 9 });
  assert.ok(group.outputs.some((o) => /^port blue .* -> 33:33:00:00:00:01, udp \[2001:db8:100::2\]:40000 -> \[ff02::1\]:9/.test(o)), group.outputs.join('\n'));
  const unknown = runTrace(p.engine, { port: 'red', dst: '2001:db8:100::3' });
  assert.match(unknown.steps[0].decision, /MAC of 2001:db8:100::3 not known to tapbridge \(pass dstMac\): using broadcast/);
  assert.throws(() => runTrace(p.engine, { port: 'red', src: '10.100.0.2', dst: WAN }), /'src' is an IPv4 address but 'dst' an IPv6 one: both must be of one family/);
  assert.throws(() => runTrace(p.engine, { port: 'red', dst: '2001:db8::zz' }), /'dst' must be an IPv4 or IPv6 address/);
});

test('an IPv6 decision trace leaves no neighbour, no learned MAC, no counter and no frame behind', () => {
  const p = lab();
  resolveNeighbours(p);
  p.clock.t += 31_000; // wan's entry is stale now: a use would move it to delay
  const snapshot = () =>
    JSON.stringify({
      ports: p.engine.portInfo(),
      fdb: p.engine.fdbRows(),
      neigh: p.engine.gateways6.flatMap((g) => g.neighbors()).map((n) => [n.ip, n.state, n.mac, n.probes, n.ageSeconds]),
      links: p.engine.graph.links().map((l) => l.packets),
      elements: p.engine.graph.elements.map((e) => e.counters),
      pool: p.engine.arena.poolFree,
      budget: p.engine.shared.budget6.limited,
    });
  const before = snapshot();
  for (const r of [
    { port: 'red', dst: GW },
    { port: 'red', dst: WAN, proto: 'tcp', dport: 80 },
    { port: 'red', dst: '2001:db8:113::9', proto: 'udp' },
    { port: 'red', dst: WAN, ttl: 1 },
    { port: 'red', dst: GW, proto: 'udp', dport: 9 },
    { port: 'red', dst: '2001:db8:100::3', srcMac: '02:00:00:00:00:99' },
    { port: 'uplink', src: WAN, dst: RED, proto: 'tcp', dport: 22 },
    { port: 'blue', dst: 'ff02::2' },
  ] as const) {
    const res = runTrace(p.engine, { ...r } as never);
    assert.ok(res.steps.length > 0 && res.path.length > 0, JSON.stringify(res));
  }
  assert.equal(snapshot(), before);
  assert.equal(p.engine.arena.accounts()[ACCOUNT_CONTROL].used, 0);
});

test('ctl neigh: the API lists IPv6 neighbours of every interface; the text view is a table by interface and address', () => {
  const p = lab();
  resolveNeighbours(p);
  p.inject('uplink', ip6Frame({ srcMac: WAN_MAC, dstMac: UP_MAC, src: WAN, dst: '2001:db8:100::99' })); // resolving ::99 on br0
  const rows = dataPlaneApi(p.engine, () => {}).methods.neigh({}) as Neighbor6Row[];
  const brief = rows.map((r) => [r.iface, r.ip, r.macText, r.state, r.router, r.queued, r.probes]).sort();
  assert.deepEqual(brief, [
    ['br0', '2001:db8:100::2', '02:00:00:00:00:02', 'stale', false, 0, 0],
    ['br0', '2001:db8:100::99', '-', 'incomplete', false, 1, 1],
    ['uplink', WAN, macToString(WAN_MAC), 'reachable', true, 0, 0],
  ]);
  const text = renderNeighbors6(rows).split('\n');
  assert.match(text[0], /^IFACE\s+ADDRESS\s+MAC\s+STATE\s+AGE\s+ROUTER\s+QUEUED\s+PROBES$/);
  assert.match(text[1], /^br0\s+2001:db8:100::2\s+02:00:00:00:00:02\s+stale\s+0s\s+no\s+0\s+0$/);
  assert.match(text[2], /^br0\s+2001:db8:100::99\s+-\s+incomplete\s+0s\s+no\s+1\s+1$/);
  assert.match(text[3], /^uplink\s+2001:db8:113::1\s+02:00:00:00:71:01\s+reachable\s+0s\s+yes\s+0\s+0$/);
  p.take();
});

test('live stats and metrics of a real IPv6 graph: router6 events, the NDP neighbour gauge, IPv6 drop reasons', async () => {
  const p = lab();
  resolveNeighbours(p); // one packet forwarded red -> wan, one NS sent on the uplink
  p.inject('red', ip6Frame({ srcMac: MAC.red, dstMac: GW_MAC, src: RED, dst: WAN, hop: 1 }));
  p.inject('red', ip6Frame({ srcMac: MAC.red, dstMac: GW_MAC, src: 'fe80::2', dst: WAN }));
  p.take();
  const { methods } = dataPlaneApi(p.engine, () => {});
  // The worker's calls, answered in this thread (an ApiError is a status, as the worker client makes it).
  const dp = {
    call: async (method: string, params: Record<string, unknown> = {}) => {
      try {
        return methods[method](params);
      } catch (err) {
        throw err instanceof ApiError ? new CallError(err.status, err.message) : err;
      }
    },
  } as unknown as DataPlaneWorker;
  const stats = await new LiveStatsSource(dp).collect();
  assert.equal(stats.neighbors6, 2, 'red on br0, wan on the uplink');
  assert.equal(stats.router?.forwarded6, 1);
  assert.equal(stats.router?.neighborSolicitsSent, 1);
  const text = await new MetricsExporter().render(stats);
  assert.match(text, /^tapbridge_neighbors6 2$/m);
  assert.match(text, /^tapbridge_router_events_total\{event="forwarded6"\} 1$/m);
  assert.match(text, /^tapbridge_router_events_total\{event="icmp6ErrorsSent"\} 1$/m);
  assert.match(text, /^tapbridge_router_events_total\{event="neighborSolicitsSent"\} 1$/m);
  assert.match(text, /^tapbridge_port_drops_total\{port="gw-br0",bridge="br0",reason="hop_limit_exceeded"\} 1$/m);
  assert.match(text, /^tapbridge_port_drops_total\{port="gw-br0",bridge="br0",reason="ipv6_beyond_scope"\} 1$/m);
  assert.match(renderStats(stats), /neighbours: 0 ARP, 2 NDP/);
});
