/*
 * Tenants and hostile input on a real element graph without devices (test/helpers/
 * dataplane.ts): pool accounts, neighbour queues and entries per port, ARP takeovers, MAC
 * table eviction under a CAM flood, port security, port isolation, rp_filter, conntrack
 * limits per port and per source, a dry-run trace that leaves nothing behind, and the
 * fragmentation of a frame with a partial checksum. Frames are built with the wire layer's
 * emitters; what matters here is what the elements do with them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ACCOUNT_CONTROL } from '../../src/core/arena.js';
import { VNET_CSUM_OFFSET, VNET_CSUM_START, VNET_F_NEEDS_CSUM, VNET_HDR_LEN } from '../../src/core/frame.js';
import { runTrace } from '../../src/dataplane/trace.js';
import type { DataPlaneSpec, PortSpec } from '../../src/dataplane/spec.js';
import { NEIGHBOUR_QUEUE_SLOTS_PER_PORT } from '../../src/dataplane/build.js';
import { writeArp, ARP_OP_REPLY, ARP_OP_REQUEST } from '../../src/wire/arp.js';
import { fillL4Checksum, fold16, pseudoHeaderSum, sum16, verifyL4Checksum } from '../../src/wire/checksum.js';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4, writeEthernetHeader } from '../../src/wire/ethernet.js';
import { parseIp4 } from '../../src/wire/ip4.js';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, writeIpv4Header } from '../../src/wire/ipv4.js';
import { BROADCAST_MAC, parseMac } from '../../src/wire/mac.js';
import { TestPlane } from '../helpers/dataplane.js';

const GW_MAC = parseMac('02:74:62:00:00:01')!;
const ip = (s: string) => parseIp4(s)!;
const MAC = {
  red: parseMac('02:00:00:00:00:02')!,
  blue: parseMac('02:00:00:00:00:03')!,
  host: parseMac('02:00:00:00:00:fe')!,
};

function port(name: keyof typeof MAC, addr: string, over: Partial<PortSpec> = {}): PortSpec {
  return { name, kind: 'namespace', bridge: 'br0', fd: -1, vnetHdr: true, ifname: `${name}:eth0`, mac: `02:00:00:00:00:${MAC[name].toString(16).slice(-2)}`, addresses: [`${addr}/24`], ...over };
}

/** red, blue, host on br0 (gateway 10.100.0.1), an uplink 203.0.113.2 via .1, NAT with 8000 published to red. */
function lab(over: Partial<DataPlaneSpec> = {}, ports: Partial<Record<keyof typeof MAC, Partial<PortSpec>>> = {}): TestPlane {
  return new TestPlane({
    bridges: [{ name: 'br0', agingSeconds: 300, macTableSize: 64, macLimitPerPort: 0, static: [], gateway: { address: '10.100.0.1/24', mac: '02:74:62:00:00:01', mtu: 1500 } }],
    ports: [port('red', '10.100.0.2', ports.red), port('blue', '10.100.0.3', ports.blue), port('host', '10.100.0.254', ports.host)],
    uplink: { fd: -1, vnetHdr: true, ifname: 'eth0', address: '203.0.113.2/24', mac: '02:74:62:00:71:02', gateway: '203.0.113.1', mtu: 1500 },
    nat: { masquerade: ['10.100.0.0/24'], portRange: [32768, 60999], maxFlows: 1024, timeouts: {}, publish: [{ proto: 'tcp', port: 8000, to: '10.100.0.2' }], maxFlowsPerPort: 0, maxFlowsPerSource: 0 },
    ...over,
  });
}

/** An IPv4 frame: Ethernet + 20-byte header + UDP/TCP/ICMP with a valid checksum (payload of 0x5a). */
function ipFrame(o: { dstMac: number; srcMac: number; src: string; dst: string; proto?: number; sport?: number; dport?: number; ttl?: number; payload?: number; tcpFlags?: number; df?: boolean }): Buffer {
  const proto = o.proto ?? IPPROTO_UDP;
  const l4h = proto === IPPROTO_TCP ? 20 : 8;
  const total = 20 + l4h + (o.payload ?? 18);
  const b = Buffer.alloc(14 + total, 0x5a);
  writeEthernetHeader(b, 0, o.dstMac, o.srcMac, ETHERTYPE_IPV4);
  writeIpv4Header(b, 14, total, 1, o.df === false ? 0 : 0x4000, o.ttl ?? 64, proto, ip(o.src), ip(o.dst));
  const l4 = 34;
  b.fill(0, l4, l4 + l4h);
  if (proto === IPPROTO_ICMP) {
    b[l4] = 8;
    b.writeUInt16BE(o.sport ?? 7, l4 + 4);
  } else {
    b.writeUInt16BE(o.sport ?? 40000, l4);
    b.writeUInt16BE(o.dport ?? 9999, l4 + 2);
    if (proto === IPPROTO_UDP) b.writeUInt16BE(total - 20, l4 + 4);
    else {
      b[l4 + 12] = 0x50;
      b[l4 + 13] = o.tcpFlags ?? 0x02;
    }
  }
  fillL4Checksum(b, 14);
  return b;
}

function arpFrame(op: number, sha: number, spa: string, tpa: string, ethSrc = sha, ethDst = op === ARP_OP_REQUEST ? BROADCAST_MAC : GW_MAC): Buffer {
  const b = Buffer.alloc(60);
  writeEthernetHeader(b, 0, ethDst, ethSrc, ETHERTYPE_ARP);
  writeArp(b, 14, op, sha, ip(spa), op === ARP_OP_REPLY ? GW_MAC : 0, ip(tpa));
  return b;
}

/** Make the gateway know red, blue and host (each asks for 10.100.0.1). */
function resolveTenants(t: TestPlane): void {
  t.inject('red', arpFrame(ARP_OP_REQUEST, MAC.red, '10.100.0.2', '10.100.0.1'));
  t.inject('blue', arpFrame(ARP_OP_REQUEST, MAC.blue, '10.100.0.3', '10.100.0.1'));
  t.inject('host', arpFrame(ARP_OP_REQUEST, MAC.host, '10.100.0.254', '10.100.0.1'));
  t.take();
}

const neighbours = (t: TestPlane) => t.engine.gateways.flatMap((g) => g.neighbors());

test('frames waiting for ARP are charged to their port: red filling the queues leaves blue its share', () => {
  const t = lab();
  resolveTenants(t);
  // red pings 200 unresolved addresses on the uplink subnet: each waits for an ARP answer
  for (let i = 4; i < 204; i++) {
    t.injectRx('red', ipFrame({ dstMac: GW_MAC, srcMac: MAC.red, src: '10.100.0.2', dst: `203.0.113.${i}`, payload: 1400 }));
    if (i % 32 === 0) t.take();
  }
  const arena = t.engine.arena;
  const redQueue = arena.accounts().find((a) => a.name === 'neighbour-queue/red')!;
  assert.equal(redQueue.used, NEIGHBOUR_QUEUE_SLOTS_PER_PORT, 'red holds exactly its share of the pool');
  assert.ok(arena.poolFree > arena.reserve + 100, `the pool keeps room for everyone else (${arena.poolFree} free)`);
  const d = t.drops('uplink');
  assert.ok((d.no_frame_slot ?? 0) + (d.arp_pending_limit ?? 0) > 0, `red's excess is counted: ${JSON.stringify(d)}`);
  // blue still gets its packet queued for a new neighbour, and the gateway still answers ARP
  t.injectRx('blue', ipFrame({ dstMac: GW_MAC, srcMac: MAC.blue, src: '10.100.0.3', dst: '203.0.113.250' }));
  assert.equal(arena.accounts().find((a) => a.name === 'neighbour-queue/blue')!.used, 1, "blue's packet waits in blue's share");
  t.take();
  t.inject('blue', arpFrame(ARP_OP_REQUEST, MAC.blue, '10.100.0.3', '10.100.0.1'));
  const replies = t.sent('blue');
  assert.equal(replies.length, 1, 'the ARP reply to blue found a slot');
  assert.ok(arena.accounts().find((a) => a.name === 'control')!.refused === 0);
});

test('unresolved neighbour entries are bounded per port', () => {
  const t = lab();
  resolveTenants(t);
  for (let i = 0; i < 300; i++) t.inject('red', ipFrame({ dstMac: GW_MAC, srcMac: MAC.red, src: '10.100.0.2', dst: `198.51.${100 + (i >> 8)}.${i & 255}`, payload: 0 }));
  // via the default route these all resolve one next hop: no new entries at all
  assert.ok(neighbours(t).filter((n) => n.state === 'incomplete').length <= 1);
  for (let i = 4; i < 250; i++) t.inject('red', ipFrame({ dstMac: GW_MAC, srcMac: MAC.red, src: '10.100.0.2', dst: `203.0.113.${i}`, payload: 0 }));
  const pending = neighbours(t).filter((n) => n.state === 'incomplete').length;
  assert.ok(pending <= 64 + 1, `red created at most its 64 unresolved entries (${pending})`);
  assert.ok((t.drops('uplink').arp_pending_limit ?? 0) > 0);
  t.inject('blue', ipFrame({ dstMac: GW_MAC, srcMac: MAC.blue, src: '10.100.0.3', dst: '203.0.113.251', payload: 0 }));
  assert.ok(neighbours(t).some((n) => n.ipText === '203.0.113.251'), "blue's new neighbour is still created");
});

test('the gateway refuses an ARP that claims another port\'s address, and a sender MAC that is not the frame\'s', () => {
  const t = lab();
  resolveTenants(t);
  const hostEntry = () => neighbours(t).find((n) => n.ipText === '10.100.0.254')!;
  assert.equal(hostEntry().mac, MAC.host);
  // red claims the host port's address (an unsolicited reply, then a gratuitous request)
  t.inject('red', arpFrame(ARP_OP_REPLY, MAC.red, '10.100.0.254', '10.100.0.1'));
  t.inject('red', arpFrame(ARP_OP_REQUEST, MAC.red, '10.100.0.254', '10.100.0.254'));
  assert.equal(hostEntry().mac, MAC.host, 'the host keeps its address');
  assert.equal(t.drops('gw-br0').arp_takeover_refused, 2);
  // an ARP whose sender MAC is not the frame's source
  t.inject('red', arpFrame(ARP_OP_REQUEST, MAC.blue, '10.100.0.3', '10.100.0.1', MAC.red));
  assert.equal(t.drops('gw-br0').arp_sha_mismatch, 1);
  // an unsolicited reply creates nothing
  t.inject('red', arpFrame(ARP_OP_REPLY, MAC.red, '10.100.0.77', '10.100.0.1'));
  assert.ok(!neighbours(t).some((n) => n.ipText === '10.100.0.77'));
  // the owner itself may change its MAC
  t.inject('host', arpFrame(ARP_OP_REQUEST, MAC.host + 1, '10.100.0.254', '10.100.0.1'));
  assert.equal(hostEntry().mac, MAC.host + 1);
});

test('a CAM flood from one port churns its own share; a station that appears later is learned, not flooded to the flooder', () => {
  const t = lab({ bridges: [{ name: 'br0', agingSeconds: 300, macTableSize: 64, macLimitPerPort: 16, whenFull: 'evict', static: [] }] }, {});
  for (let i = 0; i < 1000; i++) {
    t.inject('red', ipFrame({ dstMac: BROADCAST_MAC, srcMac: 0x020000100000 + i, src: '10.100.0.2', dst: '10.100.0.3', payload: 0 }));
    if (i % 64 === 63) t.take(); // a batch ends: the TX queues are flushed
  }
  t.take();
  const sw = t.engine.switches[0];
  assert.equal(sw.fdb.portCount(sw.portIndex('red')), 16);
  // blue appears after the flood; the host sends to it: only blue gets the frame
  t.inject('blue', ipFrame({ dstMac: BROADCAST_MAC, srcMac: MAC.blue, src: '10.100.0.3', dst: '10.100.0.2', payload: 0 }));
  t.take();
  for (let i = 0; i < 30; i++) t.inject('host', ipFrame({ dstMac: MAC.blue, srcMac: MAC.host, src: '10.100.0.254', dst: '10.100.0.3', payload: 0 }));
  const got = t.take();
  assert.equal(got.filter((g) => g.port === 'blue').length, 30);
  assert.equal(got.filter((g) => g.port === 'red').length, 0, '0 of 30 host->blue frames reached red');
  // invalid source MACs are dropped and counted
  t.inject('red', ipFrame({ dstMac: BROADCAST_MAC, srcMac: 0, src: '10.100.0.2', dst: '10.100.0.3' }));
  assert.equal(t.drops('red').src_mac_zero, 1);
});

test('port security: a secured port sends only as itself; its MAC cannot be taken over', () => {
  const t = lab({}, { red: { security: { macs: ['02:00:00:00:00:02'], learn: false, ipv4: ['10.100.0.2'] } } });
  assert.ok(t.engine.graph.element('security/red'));
  t.inject('red', ipFrame({ dstMac: BROADCAST_MAC, srcMac: MAC.red, src: '10.100.0.2', dst: '10.100.0.3' }));
  assert.deepEqual(t.take().map((x) => x.port).sort(), ['blue', 'host'], 'its own traffic passes (flooded to the other devices)');
  t.inject('red', ipFrame({ dstMac: BROADCAST_MAC, srcMac: MAC.blue, src: '10.100.0.2', dst: '10.100.0.3' }));
  t.inject('red', ipFrame({ dstMac: BROADCAST_MAC, srcMac: MAC.red, src: '10.100.0.3', dst: '10.100.0.254' }));
  t.inject('red', arpFrame(ARP_OP_REPLY, MAC.red, '10.100.0.254', '10.100.0.1'));
  t.inject('red', arpFrame(ARP_OP_REQUEST, MAC.blue, '10.100.0.2', '10.100.0.1', MAC.red));
  assert.equal(t.take().length, 0, 'nothing spoofed got through');
  assert.deepEqual(t.drops('red'), { spoofed_mac: 1, spoofed_ipv4: 1, spoofed_arp: 2 });
  // blue sends with red's MAC: the switch keeps red's MAC on red
  t.inject('blue', ipFrame({ dstMac: BROADCAST_MAC, srcMac: MAC.red, src: '10.100.0.3', dst: '10.100.0.254' }));
  assert.equal(t.drops('blue').mac_move_refused, 1);
  const sw = t.engine.switches[0];
  assert.equal(sw.fdb.lookup(MAC.red, t.clock.t), sw.portIndex('red'));
});

test('isolated ports reach the gateway but not each other', () => {
  const t = lab({}, { red: { isolated: true }, blue: { isolated: true } });
  resolveTenants(t);
  t.inject('red', ipFrame({ dstMac: MAC.blue, srcMac: MAC.red, src: '10.100.0.2', dst: '10.100.0.3' }));
  assert.equal(t.take().length, 0);
  assert.equal(t.drops('red').port_isolated, 1);
  t.inject('red', ipFrame({ dstMac: BROADCAST_MAC, srcMac: MAC.red, src: '10.100.0.2', dst: '10.100.0.255' }));
  assert.deepEqual(
    t.take().map((s) => s.port),
    ['host'],
    'a broadcast reaches the non-isolated port (and the gateway), not blue',
  );
  t.inject('red', ipFrame({ dstMac: GW_MAC, srcMac: MAC.red, src: '10.100.0.2', dst: '10.100.0.1', proto: IPPROTO_ICMP }));
  assert.equal(t.sent('red').length, 1, 'the gateway answers the isolated port');
});

test('rp_filter and martians: spoofed or foreign sources are not routed', () => {
  const t = lab();
  resolveTenants(t);
  t.inject('red', ipFrame({ dstMac: GW_MAC, srcMac: MAC.red, src: '198.51.100.7', dst: '203.0.113.1' }));
  t.inject('red', ipFrame({ dstMac: GW_MAC, srcMac: MAC.red, src: '203.0.113.2', dst: '203.0.113.1' }));
  assert.equal(t.sent('uplink').length, 0);
  assert.deepEqual(t.drops('gw-br0'), { ipv4_rp_filter: 1, ipv4_bad_source: 1 });
});

test('conntrack limits per port and per source', () => {
  const t = lab({ nat: { masquerade: ['10.100.0.0/24'], portRange: [32768, 60999], maxFlows: 1024, timeouts: {}, publish: [], maxFlowsPerPort: 10, maxFlowsPerSource: 0 } });
  resolveTenants(t);
  t.engine.gateways.find((g) => g.iface.name === 'uplink')!.neigh.confirm(ip('203.0.113.1'), parseMac('02:00:00:00:01:01')!, t.clock.t, true);
  for (let i = 0; i < 30; i++) t.inject('red', ipFrame({ dstMac: GW_MAC, srcMac: MAC.red, src: '10.100.0.2', dst: '203.0.113.1', sport: 20000 + i }));
  assert.equal(t.engine.nat!.size, 10, "red's flows stop at its share");
  assert.equal(t.engine.nat!.counters.earlyDropped, 20, 'a full share of unreplied flows recycles its oldest (refusals need assured flows: nat66.test.ts)');
  assert.equal(t.drops('gw-br0').nat_port_limit, undefined);
  t.inject('blue', ipFrame({ dstMac: GW_MAC, srcMac: MAC.blue, src: '10.100.0.3', dst: '203.0.113.1', sport: 20000 }));
  assert.equal(t.engine.nat!.size, 11, 'blue still gets a flow');
  const s = lab({ nat: { masquerade: ['10.100.0.0/24'], portRange: [32768, 60999], maxFlows: 1024, timeouts: {}, publish: [], maxFlowsPerPort: 0, maxFlowsPerSource: 5 } });
  resolveTenants(s);
  s.engine.gateways.find((g) => g.iface.name === 'uplink')!.neigh.confirm(ip('203.0.113.1'), parseMac('02:00:00:00:01:01')!, s.clock.t, true);
  for (let i = 0; i < 9; i++) s.inject('red', ipFrame({ dstMac: GW_MAC, srcMac: MAC.red, src: '10.100.0.2', dst: '203.0.113.1', sport: 20000 + i }));
  assert.equal(s.engine.nat!.size, 5);
  assert.equal(s.engine.nat!.counters.earlyDropped, 4);
});

test('a decision trace leaves no flow, no learned MAC, no neighbour, no counter behind', () => {
  const t = lab();
  resolveTenants(t);
  const snapshot = () =>
    JSON.stringify({
      ports: t.engine.portInfo(),
      fdb: t.engine.fdbRows(),
      arp: neighbours(t).map((n) => [n.ipText, n.state, n.mac]),
      nat: [t.engine.nat!.size, t.engine.nat!.counters, t.engine.nat!.list(0)],
      links: t.engine.graph.links().map((l) => l.packets),
      elements: t.engine.graph.elements.map((e) => e.counters),
      pool: t.engine.arena.poolFree,
    });
  const before = snapshot();
  for (const r of [
    { port: 'red', dst: '203.0.113.1', proto: 'udp', dport: 53 },
    { port: 'red', dst: '203.0.113.9', proto: 'tcp', dport: 80 },
    { port: 'red', dst: '10.100.0.3', srcMac: '02:00:00:00:00:99' },
    { port: 'uplink', src: '203.0.113.1', dst: '203.0.113.2', proto: 'tcp', dport: 8000 },
    { port: 'red', dst: '203.0.113.1', ttl: 1 },
  ] as const) {
    const res = runTrace(t.engine, { ...r } as never);
    assert.ok(res.steps.length > 0 && res.path.length > 0, JSON.stringify(res));
  }
  assert.equal(snapshot(), before);
  assert.equal(t.engine.arena.accounts()[ACCOUNT_CONTROL].used, 0);
});

test('fragmenting a frame with a partial checksum completes the checksum in place, in no other frame', () => {
  const t = lab({ uplink: { fd: -1, vnetHdr: true, ifname: 'eth0', address: '203.0.113.2/24', mac: '02:74:62:00:71:02', gateway: '203.0.113.1', mtu: 1400 } });
  resolveTenants(t);
  t.engine.gateways.find((g) => g.iface.name === 'uplink')!.neigh.confirm(ip('203.0.113.1'), parseMac('02:00:00:00:01:01')!, t.clock.t, true);
  // a 1450-byte UDP datagram from red, DF clear, whose checksum the namespace left partial
  const f = ipFrame({ dstMac: GW_MAC, srcMac: MAC.red, src: '10.100.0.2', dst: '203.0.113.1', df: false, payload: 1450 - 28 });
  const udpLen = 1450 - 20;
  const partial = fold16(pseudoHeaderSum(ip('10.100.0.2'), ip('203.0.113.1'), IPPROTO_UDP, udpLen));
  f.writeUInt16BE(partial, 34 + 6);
  t.inject('red', f, t.clock.t, (b, e) => {
    const v = e - VNET_HDR_LEN;
    b[v] = VNET_F_NEEDS_CSUM;
    b[v + VNET_CSUM_START] = 34;
    b[v + VNET_CSUM_START + 1] = 0;
    b[v + VNET_CSUM_OFFSET] = 6;
    b[v + VNET_CSUM_OFFSET + 1] = 0;
  });
  const frags = t.sent('uplink');
  assert.equal(frags.length, 2);
  // reassemble and check the UDP checksum the receiver will verify
  const first = frags[0];
  const second = frags[1];
  const hl = 20;
  const payload1 = first.length - 14 - hl;
  const whole = Buffer.alloc(20 + udpLen);
  first.copy(whole, 0, 14, 14 + 20);
  first.copy(whole, 20, 34);
  second.copy(whole, 20 + payload1, 34);
  whole.writeUInt16BE(20 + udpLen, 2);
  whole.writeUInt16BE(0, 6);
  assert.ok(verifyL4Checksum(whole, 0), 'the datagram checksum is complete and right');
  assert.notEqual(whole.readUInt16BE(26), 0);
  void sum16;
});
