/*
 * The service port (src/services/service-port.ts) in a real graph without fds (TestPlane):
 * a DHCP DISCOVER broadcast gets an OFFER into the switch; a DNS query over UDP to the
 * gateway gets the local answer through the router; DNS over TCP: handshake, a query split
 * over two segments, the answer, FIN; malformed messages counted on the gateway port; a
 * forwarded query unanswered gets SERVFAIL; packets not for a service pass to local delivery.
 * Frames are built byte by byte with the wire emitters; checksums are real.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestPlane, bridgeSpec, portSpec } from '../helpers/dataplane.js';
import type { BridgeSpec } from '../../src/dataplane/spec.js';
import { planGraph } from '../../src/dataplane/plan.js';
import { ServicePort } from '../../src/services/service-port.js';
import { attachServices, leaseRows, servicePortAdded, servicePortRemoved } from '../../src/dataplane/services.js';
import { readU16, readU32, writeU16, writeU32 } from '../../src/wire/bytes.js';
import { fillL4Checksum } from '../../src/wire/checksum.js';
import { BOOTREQUEST, DHCP_FLAG_BROADCAST, DHCPDISCOVER, DHCPOFFER, emitDhcp, HTYPE_ETHERNET, parseDhcp } from '../../src/wire/dhcp.js';
import { DNS_FLAG_RD, DNS_RCODE_SERVFAIL, emitDns, parseDns } from '../../src/wire/dns.js';
import { ARP_OP_REQUEST, writeArp } from '../../src/wire/arp.js';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4, writeEthernetHeader } from '../../src/wire/ethernet.js';
import { parseIp4 } from '../../src/wire/ip4.js';
import { writeIpv4Header } from '../../src/wire/ipv4.js';
import { BROADCAST_MAC, parseMac } from '../../src/wire/mac.js';

const GW_MAC = '02:74:62:00:00:01';
const RED_MAC = '02:00:00:00:01:aa';
const GW = parseIp4('10.100.0.1')!;
const RED = parseIp4('10.100.0.2')!;

function gateway(over: Partial<NonNullable<BridgeSpec['gateway']>> = {}): NonNullable<BridgeSpec['gateway']> {
  return {
    address: '10.100.0.1/24',
    mac: GW_MAC,
    mtu: 1500,
    dhcp: { poolStart: '10.100.0.100', poolEnd: '10.100.0.110', leaseTime: 600, static: [], router: '10.100.0.1', dns: ['10.100.0.1'], domain: 'lab.test', mtu: 1400, maxClients: 16 },
    dns: { domain: 'lab.test', upstreams: [], cacheSize: 16, timeoutMs: 500, hosts: [{ name: 'red', addresses: ['10.100.0.2'] }], portMacs: [{ mac: RED_MAC, name: 'red' }] },
    ...over,
  };
}

function plane(over: Partial<NonNullable<BridgeSpec['gateway']>> = {}): TestPlane {
  return new TestPlane({ bridges: [bridgeSpec('br0', { gateway: gateway(over) })], ports: [portSpec('red', 'br0', { mac: RED_MAC })] });
}

/** Ethernet + IPv4 + UDP/TCP (l4 header bytes given) + payload, checksums filled. */
function frame(dstMac: number, src: number, dst: number, proto: number, l4: Uint8Array, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const b = new Uint8Array(14 + 20 + l4.length + payload.length);
  writeEthernetHeader(b, 0, dstMac, parseMac(RED_MAC)!, ETHERTYPE_IPV4);
  writeIpv4Header(b, 14, 20 + l4.length + payload.length, 1, 0, 64, proto, src, dst);
  b.set(l4, 34);
  b.set(payload, 34 + l4.length);
  if (proto === 17) writeU16(b, 38, 8 + payload.length);
  fillL4Checksum(b, 14);
  return b;
}

function udp(sport: number, dport: number): Uint8Array {
  const u = new Uint8Array(8);
  writeU16(u, 0, sport);
  writeU16(u, 2, dport);
  return u;
}

function tcp(sport: number, seq: number, ack: number, flags: number): Uint8Array {
  const t = new Uint8Array(20);
  writeU16(t, 0, sport);
  writeU16(t, 2, 53);
  writeU32(t, 4, seq);
  writeU32(t, 8, ack);
  t[12] = 0x50;
  t[13] = flags;
  writeU16(t, 14, 65535);
  return t;
}

function query(name: string, id = 0x4242): Uint8Array {
  const b = new Uint8Array(512);
  const n = emitDns({ id, flags: DNS_FLAG_RD, questions: [{ name, type: 1, class: 1 }], answers: [], authorities: [], additionals: [] }, b, 0);
  return b.subarray(0, n);
}

function arpFromRed(p: TestPlane): void {
  const b = new Uint8Array(60);
  writeEthernetHeader(b, 0, BROADCAST_MAC, parseMac(RED_MAC)!, ETHERTYPE_ARP);
  writeArp(b, 14, ARP_OP_REQUEST, parseMac(RED_MAC)!, RED, 0, GW);
  p.inject('red', b);
  p.take();
}

const gwMac = parseMac(GW_MAC)!;

describe('service port', () => {
  test('the plan puts svc before local delivery only when a bridge serves DHCP or DNS', () => {
    const spec = { bridges: [bridgeSpec('br0', { gateway: gateway() })], ports: [portSpec('red', 'br0')], routes: [] };
    const g = planGraph(spec);
    assert.ok(g.links.includes('router[local] -> [local]svc') && g.links.includes('svc[pass] -> local') && g.links.includes('gw/br0[dhcp] -> [bcast]svc'));
    const plain = planGraph({ ...spec, bridges: [bridgeSpec('br0', { gateway: { address: '10.100.0.1/24', mac: GW_MAC, mtu: 1500 } })] });
    assert.ok(plain.links.includes('router[local] -> local') && !plain.elements.some((e) => e.name === 'svc'));
  });

  test('a DISCOVER broadcast gets an OFFER from the pool, broadcast as the flag asks, with router, DNS, domain and MTU', () => {
    const p = plane();
    const d = new Uint8Array(400);
    const n = emitDhcp({ op: BOOTREQUEST, htype: HTYPE_ETHERNET, hlen: 6, hops: 0, xid: 0x1234, secs: 0, flags: DHCP_FLAG_BROADCAST, ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: 0, chaddr: parseMac(RED_MAC)!, options: { messageType: DHCPDISCOVER } }, d, 0);
    p.inject('red', frame(BROADCAST_MAC, 0, 0xffffffff, 17, udp(68, 67), d.subarray(0, n)));
    const out = p.sent('red');
    assert.equal(out.length, 1);
    const f = out[0];
    assert.equal(f.readUIntBE(0, 6), BROADCAST_MAC, 'to broadcast');
    assert.equal(readU32(f, 26), GW, 'from the gateway');
    assert.equal(readU32(f, 30), 0xffffffff);
    assert.deepEqual([readU16(f, 34), readU16(f, 36)], [67, 68]);
    const m = parseDhcp(f, 42, f.length - 42)!;
    assert.equal(m.options.messageType, DHCPOFFER);
    assert.equal(m.yiaddr, parseIp4('10.100.0.100'));
    assert.deepEqual([m.options.routers, m.options.dnsServers, m.options.domainName, m.options.mtu, m.options.leaseTime], [[GW], [GW], 'lab.test', 1400, 600]);
    const svc = p.engine.graph.element('svc') as ServicePort;
    assert.equal(svc.counters.dhcpReplies, 1);
  });

  test('DNS over UDP: a port name answered locally through the router', () => {
    const p = plane();
    arpFromRed(p);
    p.inject('red', frame(gwMac, RED, GW, 17, udp(40000, 53), query('red.lab.test')));
    const out = p.sent('red');
    assert.equal(out.length, 1);
    const f = out[0];
    assert.deepEqual([readU32(f, 26), readU32(f, 30), readU16(f, 34), readU16(f, 36)], [GW, RED, 53, 40000]);
    const m = parseDns(f, 42, f.length - 42)!;
    assert.equal(m.id, 0x4242);
    assert.deepEqual(m.answers.map((a) => [a.name, a.type, [...a.data]]), [['red.lab.test', 1, [10, 100, 0, 2]]]);
  });

  test('DNS over TCP: handshake, a query in two segments, the answer, FIN', () => {
    const p = plane();
    arpFromRed(p);
    p.inject('red', frame(gwMac, RED, GW, 6, tcp(5555, 1000, 0, 0x02)));
    let out = p.sent('red');
    assert.equal(out.length, 1);
    assert.equal(out[0][47], 0x12, 'SYN-ACK');
    assert.equal(readU32(out[0], 42), 1001, 'acknowledges the SYN');
    const iss = readU32(out[0], 38);
    const q = query('red.lab.test', 7);
    const msg = new Uint8Array(2 + q.length);
    writeU16(msg, 0, q.length);
    msg.set(q, 2);
    p.inject('red', frame(gwMac, RED, GW, 6, tcp(5555, 1001, iss + 1, 0x10), msg.subarray(0, 5)));
    out = p.sent('red');
    assert.deepEqual(out.map((f) => [f[47], readU32(f, 42)]), [[0x10, 1006]], 'a part is acknowledged');
    p.inject('red', frame(gwMac, RED, GW, 6, tcp(5555, 1006, iss + 1, 0x18), msg.subarray(5)));
    out = p.sent('red');
    assert.equal(out.length, 1);
    const data = out[0].subarray(54);
    assert.equal(readU16(data, 0), data.length - 2, 'length prefix');
    const m = parseDns(data, 2, data.length - 2)!;
    assert.equal(m.id, 7);
    assert.deepEqual([...m.answers[0].data], [10, 100, 0, 2]);
    const next = (1001 + msg.length) >>> 0;
    p.inject('red', frame(gwMac, RED, GW, 6, tcp(5555, next, iss + 1 + data.length, 0x11)));
    out = p.sent('red');
    assert.deepEqual(out.map((f) => [f[47], readU32(f, 42)]), [[0x11, next + 1]], 'FIN answered with FIN');
    const svc = p.engine.graph.element('svc') as ServicePort;
    p.inject('red', frame(gwMac, RED, GW, 6, tcp(5555, next + 1, iss + 2 + data.length, 0x10)));
    assert.equal(svc.tcpConnections, 0, 'closed by the last ACK');
    assert.equal(p.sent('red').length, 0);
  });

  test('malformed DHCP and DNS are counted on the gateway port; a forwarded query with no upstream gets SERVFAIL', () => {
    const p = plane();
    arpFromRed(p);
    p.inject('red', frame(BROADCAST_MAC, 0, 0xffffffff, 17, udp(68, 67), new Uint8Array(20)));
    p.inject('red', frame(gwMac, RED, GW, 17, udp(40000, 53), new Uint8Array([1, 2, 3])));
    assert.equal(p.sent('red').length, 0);
    const drops = p.drops('gw-br0');
    assert.equal(drops.dhcp_too_short, 1);
    assert.equal(drops.dns_too_short, 1);
    p.inject('red', frame(gwMac, RED, GW, 17, udp(40001, 53), query('www.example.org', 9)));
    assert.equal(p.sent('red').length, 0, 'waiting for an upstream');
    p.clock.t += 600;
    p.tickElements();
    const out = p.sent('red');
    assert.equal(out.length, 1);
    const m = parseDns(out[0], 42, out[0].length - 42)!;
    assert.deepEqual([m.id, m.flags & 15], [9, DNS_RCODE_SERVFAIL]);
  });

  test('UDP to another port of the gateway passes to local delivery (ICMP port unreachable)', () => {
    const p = plane();
    arpFromRed(p);
    p.inject('red', frame(gwMac, RED, GW, 17, udp(40000, 9999), new Uint8Array(4)));
    const out = p.sent('red');
    assert.equal(out.length, 1);
    assert.deepEqual([out[0][23], out[0][34], out[0][35]], [1, 3, 3], 'ICMP port unreachable');
  });

  test('ports attached at runtime answer by name until removed; a DHCP client on such a port is named after it; leases listed', () => {
    const p = plane();
    const logs: string[] = [];
    attachServices(p.engine, (_l, m) => logs.push(m));
    try {
      arpFromRed(p);
      servicePortAdded(p.engine, 'br0', 'late', '02:00:00:00:01:77', ['10.100.0.9', '2001:db8:100::9']);
      const ask = (name: string, id: number) => {
        p.inject('red', frame(gwMac, RED, GW, 17, udp(40000 + id, 53), query(name, id)));
        const out = p.sent('red');
        assert.equal(out.length, 1);
        return parseDns(out[0], 42, out[0].length - 42)!;
      };
      assert.deepEqual([...ask('late.lab.test', 1).answers[0].data], [10, 100, 0, 9]);
      servicePortRemoved(p.engine, 'br0', 'late');
      assert.equal(ask('late.lab.test', 2).flags & 15, 3, 'NXDOMAIN once removed');
      assert.ok(logs.some((l) => /no upstream resolver/.test(l)), 'no upstream is reported');
      assert.deepEqual(leaseRows(p.engine), []);
    } finally {
      p.engine.stop();
    }
  });

  test('random DHCP, DNS and TCP payloads (seeded) never throw, leave no frame slot held and no connection open', () => {
    const p = plane();
    arpFromRed(p);
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / 0x1000000;
    const bytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(rnd() * 256));
    const free = p.engine.arena.poolFree;
    const good = query('red.lab.test');
    for (let i = 0; i < 3000; i++) {
      const kind = i % 4;
      let payload: Uint8Array;
      if (rnd() < 0.5) payload = bytes(Math.floor(rnd() * 600));
      else {
        // A valid message with a few bytes flipped: deeper into the parsers.
        payload = kind === 0 ? new Uint8Array(300) : good.slice();
        if (kind === 0) payload.set([1, 1, 6, 0], 0), payload.set([0x63, 0x82, 0x53, 0x63, 53, 1, 1, 255], 236);
        for (let k = 0; k < 3; k++) payload[Math.floor(rnd() * payload.length)] = Math.floor(rnd() * 256);
      }
      if (kind === 0) p.inject('red', frame(BROADCAST_MAC, 0, 0xffffffff, 17, udp(68, 67), payload));
      else if (kind === 1) p.inject('red', frame(gwMac, RED, GW, 17, udp(30000 + (i % 1000), 53), payload));
      else {
        const flags = [0x02, 0x10, 0x18, 0x11, 0x04, Math.floor(rnd() * 256)][Math.floor(rnd() * 6)];
        p.inject('red', frame(gwMac, RED, GW, 6, tcp(20000 + (i % 50), Math.floor(rnd() * 4) * 100, 0, flags), payload.subarray(0, Math.min(payload.length, 1200))));
      }
      p.sent('red');
    }
    p.clock.t += 20_000;
    p.tickElements();
    p.sent('red');
    const svc = p.engine.graph.element('svc') as ServicePort;
    assert.equal(svc.tcpConnections, 0, 'idle connections closed');
    assert.equal(p.engine.arena.poolFree, free, 'every frame slot back');
    const drops = p.drops('gw-br0');
    assert.ok(Object.keys(drops).some((k) => k.startsWith('dhcp_')) && Object.keys(drops).some((k) => k.startsWith('dns_')), JSON.stringify(drops));
  });

  test("DNS over TCP: answers are cut into segments of the client's MSS", () => {
    const p = plane();
    arpFromRed(p);
    const svc = p.engine.graph.element('svc') as ServicePort;
    svc.bridges[0].dns!.setHost('many', Array.from({ length: 60 }, (_, i) => GW + 10 + i));
    const syn = new Uint8Array(24);
    syn.set(tcp(6000, 5000, 0, 0x02));
    syn[12] = 0x60; // 24-byte header: MSS option
    syn.set([2, 4, 600 >> 8, 600 & 255], 20);
    p.inject('red', frame(gwMac, RED, GW, 6, syn));
    const iss = readU32(p.sent('red')[0], 38);
    const q = query('many.lab.test', 3);
    const msg = new Uint8Array(2 + q.length);
    writeU16(msg, 0, q.length);
    msg.set(q, 2);
    p.inject('red', frame(gwMac, RED, GW, 6, tcp(6000, 5001, iss + 1, 0x18), msg));
    const out = p.sent('red');
    assert.ok(out.length >= 2, `${out.length} segments`);
    for (const f of out) assert.ok(f.length - 54 <= 600, `segment of ${f.length - 54} bytes`);
    const stream = Buffer.concat(out.map((f) => f.subarray(54)));
    assert.equal(readU16(stream, 0), stream.length - 2);
    assert.equal(parseDns(stream, 2, stream.length - 2)!.answers.length, 60);
    assert.deepEqual(out.map((f) => readU32(f, 38)), out.map((_, i) => iss + 1 + out.slice(0, i).reduce((n, g) => n + g.length - 54, 0)), 'consecutive sequence numbers');
  });
});
