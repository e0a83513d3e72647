/*
 * Gateway unit tests with real frames (built by scapy), through the real element graph of a
 * bridge with a gateway and an uplink: ARP, echo, TTL, PMTU, fragmentation, neighbour
 * resolution and failure, malformed input. No devices: ports have no fd and their TX queues
 * are inspected instead of flushed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestPlane } from '../helpers/dataplane.js';
import type { RouterIface } from '../../src/gateway/ifaces.js';
import type { GatewayInterface } from '../../src/gateway/interface.js';
import { fold16, sum16 } from '../../src/wire/checksum.js';
import { readU16, readU32 } from '../../src/wire/bytes.js';
import { parseIp4 } from '../../src/wire/ip4.js';
import { parseMac } from '../../src/wire/mac.js';

const ARP_REQ = 'ffffffffffff020000000002080600010800060400010200000000020a6400020000000000000a640001';
const ECHO = '02746200000102000000000208004500002c00074000400126000a6400020a6400010800c516123400017461706272696467652d70696e672121';
const UDP_TTL1 = '02746200000102000000000208004500002800080000011173560a640002cb007101829a829b0014e155787878787878787878787878';
const GW_MAC = parseMac('02:74:62:00:00:01')!;
const RED_MAC = parseMac('02:00:00:00:00:02')!;
const UP_MAC = parseMac('02:74:62:00:71:02')!;
const WAN_MAC = parseMac('02:00:00:00:00:fe')!;

interface Lab {
  plane: TestPlane;
  red: string;
  uplink: string;
  br: RouterIface;
  up: RouterIface;
  upGw: GatewayInterface;
  clock: { t: number };
}

/** A bridge br0 with red and its gateway 10.100.0.1, the uplink 203.0.113.2 (default route via .1), no NAT. */
function lab(): Lab {
  const plane = new TestPlane({
    bridges: [{ name: 'br0', agingSeconds: 300, macTableSize: 64, macLimitPerPort: 0, static: [], gateway: { address: '10.100.0.1/24', mac: '02:74:62:00:00:01', mtu: 1500 } }],
    ports: [{ name: 'red', kind: 'namespace', bridge: 'br0', fd: -1, vnetHdr: true, ifname: 'red:eth0', mac: '02:00:00:00:00:02', addresses: ['10.100.0.2/24'] }],
    uplink: { fd: -1, vnetHdr: true, ifname: 'eth0', address: '203.0.113.2/24', mac: '02:74:62:00:71:02', gateway: '203.0.113.1', mtu: 1500 },
  });
  const ifaces = plane.engine.shared.ifaces;
  return { plane, red: 'red', uplink: 'uplink', br: ifaces.byName('br0')!, up: ifaces.byName('uplink')!, upGw: plane.engine.gateways.find((g) => g.iface.name === 'uplink')!, clock: plane.clock };
}

/** Inject hex bytes as if received on `port`; returns nothing (look at TX queues). */
function inject(l: Lab, port: string, hex: string, mutate?: (b: Uint8Array, e: number) => void): void {
  l.plane.inject(port, Buffer.from(hex, 'hex'), l.clock.t, mutate);
}

/** Frames queued on a port (copies), then the queue is cleared. */
function sent(l: Lab, port: string): Buffer[] {
  return l.plane.sent(port);
}

function drops(l: Lab, iface: RouterIface): Record<string, number> {
  return l.plane.drops(iface.record.name);
}

function neighbors(l: Lab) {
  return l.plane.engine.gateways.flatMap((g) => g.neighbors());
}

const ipOk = (f: Buffer) => fold16(sum16(f, 14, (f[14] & 15) * 4)) === 0xffff;
const l4Ok = (f: Buffer) => {
  const hl = (f[14] & 15) * 4;
  return fold16(sum16(f, 14 + hl, readU16(f, 16) - hl)) === 0xffff;
};

test('answers ARP for its own address with its MAC, and only for it', () => {
  const l = lab();
  inject(l, l.red, ARP_REQ);
  const [reply] = sent(l, l.red);
  assert.equal(reply.readUIntBE(0, 6), RED_MAC);
  assert.equal(reply.readUIntBE(6, 6), GW_MAC);
  assert.equal(reply.readUInt16BE(12), 0x0806);
  assert.equal(reply.readUInt16BE(20), 2, 'op = reply');
  assert.equal(reply.readUIntBE(22, 6), GW_MAC, 'sha = gateway MAC');
  assert.equal(readU32(reply, 28), parseIp4('10.100.0.1'));
  assert.equal(readU32(reply, 38), parseIp4('10.100.0.2'));
  // the requester became a neighbour
  assert.ok(neighbors(l).some((n) => n.ipText === '10.100.0.2' && n.state === 'reachable'));
  // ARP for someone else: no reply
  inject(l, l.red, ARP_REQ, (b, e) => (b[e + 41] = 9));
  assert.equal(sent(l, l.red).length, 0);
});

test('replies to ICMP echo with valid checksums', () => {
  const l = lab();
  inject(l, l.red, ARP_REQ);
  sent(l, l.red);
  inject(l, l.red, ECHO);
  const [r] = sent(l, l.red);
  assert.ok(r, 'an echo reply was sent');
  assert.equal(r[14 + 20], 0, 'type echo reply');
  assert.equal(readU32(r, 26), parseIp4('10.100.0.1'));
  assert.equal(readU32(r, 30), parseIp4('10.100.0.2'));
  assert.equal(r.readUInt16BE(14 + 24), 0x1234, 'id kept');
  assert.equal(r.subarray(42, 58).toString(), 'tapbridge-ping!!');
  assert.ok(ipOk(r) && l4Ok(r));
});

test('TTL 1 to an outside address: ICMP time exceeded quoting the original header', () => {
  const l = lab();
  inject(l, l.red, ARP_REQ);
  sent(l, l.red);
  inject(l, l.red, UDP_TTL1);
  const [r] = sent(l, l.red);
  assert.equal(r[34], 11, 'time exceeded');
  assert.equal(readU32(r, 26), parseIp4('10.100.0.1'), 'from the gateway');
  assert.equal(readU32(r, 42 + 16), parseIp4('203.0.113.1'), 'quotes the original destination');
  assert.equal(r.readUInt16BE(42 + 20 + 2), 33435, 'quotes the UDP header');
  assert.ok(ipOk(r) && l4Ok(r));
  assert.equal(drops(l, l.br).ttl_exceeded, 1);
  assert.equal(sent(l, l.uplink).length, 0);
});

test('unresolved next hop: ARP request, packet held, sent on reply with TTL - 1', () => {
  const l = lab();
  inject(l, l.red, UDP_TTL1, (b, e) => {
    b[e + 22] = 5; // ttl 5
    b[e + 24] = 0;
    b[e + 25] = 0;
    const s = fold16(sum16(b, e + 14, 20));
    const c = ~s & 0xffff;
    b[e + 24] = c >> 8;
    b[e + 25] = c & 255;
  });
  const [arp] = sent(l, l.uplink);
  assert.equal(arp.readUInt16BE(12), 0x0806);
  assert.equal(readU32(arp, 38), parseIp4('203.0.113.1'), 'asks for the next hop');
  // the ARP reply from the next hop releases the held packet
  const reply = Buffer.alloc(60);
  reply.writeUIntBE(UP_MAC, 0, 6);
  reply.writeUIntBE(WAN_MAC, 6, 6);
  reply.writeUInt16BE(0x0806, 12);
  Buffer.from('0001080006040002', 'hex').copy(reply, 14);
  reply.writeUIntBE(WAN_MAC, 22, 6);
  reply.writeUInt32BE(parseIp4('203.0.113.1')!, 28);
  reply.writeUIntBE(UP_MAC, 32, 6);
  reply.writeUInt32BE(parseIp4('203.0.113.2')!, 38);
  inject(l, l.uplink, reply.toString('hex'));
  const [pkt] = sent(l, l.uplink);
  assert.equal(pkt.readUIntBE(0, 6), WAN_MAC);
  assert.equal(pkt.readUIntBE(6, 6), UP_MAC);
  assert.equal(pkt[22], 4, 'TTL decremented');
  assert.ok(ipOk(pkt), 'header checksum updated incrementally');
});

test('neighbour that never answers: 3 probes, then host unreachable to the source', () => {
  const l = lab();
  inject(l, l.red, ARP_REQ);
  sent(l, l.red);
  const ttl5 = (b: Uint8Array, e: number) => {
    b[e + 22] = 5;
    b[e + 24] = 0;
    b[e + 25] = 0;
    const c = ~fold16(sum16(b, e + 14, 20)) & 0xffff;
    b[e + 24] = c >> 8;
    b[e + 25] = c & 255;
  };
  inject(l, l.red, UDP_TTL1, ttl5);
  let probes = sent(l, l.uplink).length;
  for (let i = 0; i < 5; i++) {
    l.clock.t += 1100;
    l.plane.tickElements();
    probes += sent(l, l.uplink).length;
  }
  assert.equal(probes, 3);
  const [unreach] = sent(l, l.red);
  assert.equal(unreach[34], 3);
  assert.equal(unreach[35], 1, 'host unreachable');
  assert.equal(drops(l, l.up).arp_failed, 1);
});

test('DF packet over the egress MTU: fragmentation needed with the MTU', () => {
  const l = lab();
  inject(l, l.red, ARP_REQ);
  sent(l, l.red);
  l.up.mtu = 1400;
  const big = Buffer.alloc(14 + 1500);
  Buffer.from(ECHO, 'hex').copy(big, 0, 0, 34);
  big.writeUInt16BE(1500, 16);
  big.writeUInt32BE(parseIp4('203.0.113.1')!, 30);
  big.writeUInt16BE(0, 24);
  big.writeUInt16BE(~fold16(sum16(big, 14, 20)) & 0xffff, 24);
  inject(l, l.red, big.toString('hex'));
  const [r] = sent(l, l.red);
  assert.equal(r[34], 3);
  assert.equal(r[35], 4, 'frag needed');
  assert.equal(r.readUInt16BE(40), 1400, 'next-hop MTU');
  assert.equal(drops(l, l.br).mtu_exceeded, 1);
});

test('non-DF packet over the MTU is fragmented on 8-byte boundaries', () => {
  const l = lab();
  l.upGw.neigh.confirm(parseIp4('203.0.113.1')!, WAN_MAC, l.clock.t, true);
  l.up.mtu = 576;
  const payload = 1200;
  const big = Buffer.alloc(14 + 20 + payload);
  Buffer.from(UDP_TTL1, 'hex').copy(big, 0, 0, 34);
  big[22] = 9;
  big.writeUInt16BE(20 + payload, 16);
  for (let i = 0; i < payload; i++) big[34 + i] = i & 255;
  big.writeUInt16BE(0, 24);
  big.writeUInt16BE(~fold16(sum16(big, 14, 20)) & 0xffff, 24);
  inject(l, l.red, big.toString('hex'));
  const frags = sent(l, l.uplink);
  assert.ok(frags.length >= 3);
  const joined = Buffer.alloc(payload);
  let mfCount = 0;
  for (const f of frags) {
    assert.ok(ipOk(f));
    assert.ok(readU16(f, 16) <= 576);
    const fo = readU16(f, 20);
    if (fo & 0x2000) mfCount++;
    f.copy(joined, (fo & 0x1fff) * 8, 34, 14 + readU16(f, 16));
  }
  assert.equal(mfCount, frags.length - 1, 'MF on all but the last');
  for (let i = 0; i < payload; i++) assert.equal(joined[i], i & 255);
});

test('malformed IPv4 is dropped and counted by reason, never thrown', () => {
  const l = lab();
  const cases: [string, (b: Uint8Array, e: number) => void][] = [
    ['ipv4_bad_csum', (b, e) => (b[e + 24] ^= 0xff)],
    ['ipv4_bad_version', (b, e) => (b[e + 14] = 0x65)],
    ['ipv4_bad_ihl', (b, e) => (b[e + 14] = 0x43)],
    ['ipv4_bad_len', (b, e) => (b[e + 16] = 0x7f)],
  ];
  for (const [reason, mutate] of cases) {
    inject(l, l.red, ECHO, mutate);
    assert.equal(drops(l, l.br)[reason], 1, reason);
  }
  inject(l, l.red, ECHO.slice(0, 60)); // truncated
  assert.equal(drops(l, l.br).ipv4_too_short, 1);
  assert.equal(sent(l, l.red).length, 0);
});

test('a TCP SYN to a closed port of the gateway is answered with RST|ACK', () => {
  const SYN_22 = '02746200000102000000000208004500002800010000400666050a6400020a6400019c400016000003e80000000050022000dad90000';
  const l = lab();
  inject(l, l.red, ARP_REQ);
  sent(l, l.red);
  inject(l, l.red, SYN_22);
  const [rst] = sent(l, l.red);
  assert.ok(rst, 'a reset was sent');
  assert.equal(readU32(rst, 26), parseIp4('10.100.0.1'));
  assert.equal(readU32(rst, 30), parseIp4('10.100.0.2'));
  assert.equal(rst.readUInt16BE(34), 22, 'from the closed port');
  assert.equal(rst.readUInt16BE(36), 40000);
  assert.equal(rst[47], 0x14, 'RST|ACK');
  assert.equal(rst.readUInt32BE(42), 1001, 'acks the SYN');
  assert.ok(ipOk(rst));
  // pseudo-header checksum of the reset
  const s = sum16(rst, 34, 20, (parseIp4('10.100.0.1')! >>> 16) + (parseIp4('10.100.0.1')! & 0xffff) + (parseIp4('10.100.0.2')! >>> 16) + (parseIp4('10.100.0.2')! & 0xffff) + 6 + 20);
  assert.equal(fold16(s), 0xffff, 'TCP checksum valid');
  // a reset is never answered
  inject(l, l.red, SYN_22, (b, e) => (b[e + 47] = 0x04));
  assert.equal(sent(l, l.red).length, 0);
});
