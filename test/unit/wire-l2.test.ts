// MAC and IPv4 address helpers, Ethernet (incl. 802.1Q / 802.1ad) and ARP, on real frames.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BROADCAST_MAC, isLocalMac, isMulticast, isMulticastAt, macToString, parseMac, readMac, writeMac,
} from '../../src/wire/mac.js';
import {
  broadcastOf, inPrefix, ip4ToString, maskOf, networkOf, parseCidr, parseIp4, prefixLenOf, readIp4, writeIp4,
} from '../../src/wire/ip4.js';
import {
  emitEthernet, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_QINQ, ETHERTYPE_VLAN, EthernetView, parseEthernet,
  popVlanTag, pushVlanTag,
} from '../../src/wire/ethernet.js';
import { ARP_LEN, ARP_OP_REPLY, ARP_OP_REQUEST, ArpView, emitArp, parseArp } from '../../src/wire/arp.js';
import { DROP_ARP_BAD, DROP_ARP_TOO_SHORT, DROP_ETH_TOO_SHORT, DROP_REASON_NAMES, dropReasonName } from '../../src/wire/drop.js';
import * as drop from '../../src/wire/drop.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const filled = (n: number): Uint8Array => new Uint8Array(n).fill(0xa5);

const RED_MAC = 0x02420a640002;
const BLUE_MAC = 0x02420a640003;
// who-has 10.100.0.1 tell 10.100.0.2, broadcast
const ARP_REQ = hex('ffffffffffff02420a6400020806000108000604000102420a6400020a6400020000000000000a640001');
// 802.1Q (PCP 5, VID 100) carrying an ICMP echo reply 10.100.0.2 -> 10.100.0.3
const VLAN_FRAME = hex('02420a64000302420a6400028100a06408004500002300070000400166070a6400020a64000300009b090001000268656c6c6f2121');
// 802.1ad S-tag VID 10 + 802.1Q C-tag VID 20 carrying UDP 198.51.100.7 -> 203.0.113.9
const QINQ_FRAME = hex('02420a64000302420a64000288a8000a8100001408004500001f0001000003115189c6336407cb00710903e807d0000bba766f6464');

test('drop reason table: codes index snake_case names', () => {
  assert.equal(DROP_REASON_NAMES[0], 'ok');
  for (const [k, v] of Object.entries(drop)) {
    if (!k.startsWith('DROP_') || typeof v !== 'number' || k === 'DROP_REASON_COUNT' || k === 'DROP_OK') continue;
    assert.equal(DROP_REASON_NAMES[v], k.slice(5).toLowerCase(), k);
  }
  assert.equal(drop.DROP_REASON_COUNT, DROP_REASON_NAMES.length);
  assert.equal(new Set(DROP_REASON_NAMES).size, DROP_REASON_NAMES.length);
  assert.equal(dropReasonName(drop.DROP_IPV4_BAD_LEN), 'ipv4_bad_len');
  assert.equal(dropReasonName(999), 'unknown_999');
});

test('mac: read/write/format/parse', () => {
  assert.equal(readMac(ARP_REQ, 0), BROADCAST_MAC);
  assert.equal(readMac(ARP_REQ, 6), RED_MAC);
  assert.equal(macToString(RED_MAC), '02:42:0a:64:00:02');
  assert.equal(macToString(BROADCAST_MAC), 'ff:ff:ff:ff:ff:ff');
  assert.equal(macToString(0), '00:00:00:00:00:00');
  assert.equal(parseMac('02:42:0A:64:00:02'), RED_MAC);
  assert.equal(parseMac('02-42-0a-64-00-03'), BLUE_MAC);
  assert.equal(parseMac('fe:dc:ba:98:76:54'), 0xfedcba987654);
  for (const bad of ['', '02:42:0a:64:00', '02:42:0a:64:00:02:03', '02:42-0a:64:00:02', 'g2:42:0a:64:00:02', '2:42:0a:64:00:02']) {
    assert.equal(parseMac(bad), null, bad);
  }
  const b = filled(10);
  writeMac(b, 2, 0xfedcba987654);
  assert.deepEqual(b, hex('a5a5fedcba987654a5a5'));
  assert.equal(readMac(b, 2), 0xfedcba987654);
  assert.ok(isMulticast(BROADCAST_MAC));
  assert.ok(isMulticast(0x01005e000001));
  assert.ok(!isMulticast(RED_MAC));
  assert.ok(!isMulticast(0xfedcba987654));
  assert.ok(isMulticastAt(ARP_REQ, 0) && !isMulticastAt(ARP_REQ, 6));
  assert.ok(isLocalMac(RED_MAC) && !isLocalMac(0x001122334455));
});

test('ip4: format/parse/prefixes', () => {
  assert.equal(readIp4(ARP_REQ, 28), 0x0a640002);
  assert.equal(ip4ToString(0xcb007101), '203.0.113.1');
  assert.equal(ip4ToString(0xffffffff), '255.255.255.255');
  assert.equal(parseIp4('198.51.100.53'), 0xc6336435);
  assert.equal(parseIp4('0.0.0.0'), 0);
  assert.equal(parseIp4('255.255.255.255'), 0xffffffff);
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.0.0.1', '01.2.3.4', '1.2.3.4 ', '1..2.3', 'a.b.c.d', '-1.2.3.4']) {
    assert.equal(parseIp4(bad), null, bad);
  }
  const b = filled(6);
  writeIp4(b, 1, 0xcb007102);
  assert.deepEqual(b, hex('a5cb007102a5'));
  assert.equal(maskOf(0), 0);
  assert.equal(maskOf(8), 0xff000000);
  assert.equal(maskOf(24), 0xffffff00);
  assert.equal(maskOf(32), 0xffffffff);
  for (let p = 0; p <= 32; p++) assert.equal(prefixLenOf(maskOf(p)), p);
  assert.equal(prefixLenOf(0xff00ff00), -1);
  assert.equal(networkOf(0x0a640002, 24), 0x0a640000);
  assert.equal(broadcastOf(0x0a640002, 24), 0x0a6400ff);
  assert.ok(inPrefix(0x0a6400fe, 0x0a640000, 24));
  assert.ok(!inPrefix(0x0a640100, 0x0a640000, 24));
  assert.ok(inPrefix(0xcb007101, 0, 0));
  assert.deepEqual(parseCidr('10.100.0.1/24'), { addr: 0x0a640001, prefixLen: 24 });
  assert.deepEqual(parseCidr('0.0.0.0/0'), { addr: 0, prefixLen: 0 });
  for (const bad of ['10.100.0.1', '10.100.0.1/33', '10.100.0.1/', '10.100.0/24', '10.100.0.1/024']) {
    assert.equal(parseCidr(bad), null, bad);
  }
});

test('ethernet: untagged, 802.1Q and QinQ frames', () => {
  const v = new EthernetView();
  v.reset(ARP_REQ, 0, ARP_REQ.length);
  assert.equal(v.checkLen(), 0);
  assert.equal(v.dst, BROADCAST_MAC);
  assert.equal(v.src, RED_MAC);
  assert.ok(v.isMulticast);
  assert.equal(v.etherType, ETHERTYPE_ARP);
  assert.equal(v.tagCount, 0);
  assert.equal(v.vlanId, -1);
  assert.equal(v.innerVlanId, -1);
  assert.equal(v.tci(0), -1);
  assert.equal(v.headerLen, 14);
  assert.equal(v.payloadOffset, 14);
  assert.equal(v.payloadLength, 28);

  v.reset(VLAN_FRAME, 0, VLAN_FRAME.length);
  assert.equal(v.checkLen(), 0);
  assert.equal(v.dst, BLUE_MAC);
  assert.equal(v.src, RED_MAC);
  assert.ok(!v.isMulticast);
  assert.equal(v.etherType, ETHERTYPE_IPV4);
  assert.equal(v.tagCount, 1);
  assert.equal(v.vlanId, 100);
  assert.equal(v.tpid(0), ETHERTYPE_VLAN);
  assert.equal(v.tci(0) >>> 13, 5);
  assert.equal(v.payloadOffset, 18);
  assert.equal(VLAN_FRAME[v.payloadOffset], 0x45);

  // QinQ at a non-zero offset inside an arena
  const arena = filled(200);
  arena.set(QINQ_FRAME, 50);
  v.reset(arena, 50, QINQ_FRAME.length);
  assert.equal(v.checkLen(), 0);
  assert.equal(v.etherType, ETHERTYPE_IPV4);
  assert.equal(v.tagCount, 2);
  assert.equal(v.vlanId, 10);
  assert.equal(v.innerVlanId, 20);
  assert.equal(v.tpid(0), ETHERTYPE_QINQ);
  assert.equal(v.tpid(1), ETHERTYPE_VLAN);
  assert.equal(v.payloadOffset, 72);
  assert.equal(arena[72], 0x45);

  // setters
  v.vlanId = 0xabc;
  assert.equal(v.vlanId, 0xabc);
  assert.equal(arena[50 + 14] & 0xf0, 0x00, 'PCP/DEI kept');
  v.dst = BROADCAST_MAC;
  v.src = BLUE_MAC;
  v.etherType = ETHERTYPE_ARP;
  assert.deepEqual(arena.subarray(50, 72), hex('ffffffffffff02420a64000388a80abc810000140806'));
  assert.equal(arena[49], 0xa5);
});

test('ethernet: truncated frames are too short and never throw', () => {
  const v = new EthernetView();
  for (const f of [ARP_REQ, VLAN_FRAME, QINQ_FRAME]) {
    const tags = f === ARP_REQ ? 0 : f === VLAN_FRAME ? 1 : 2;
    for (let len = 0; len <= f.length; len++) {
      const e = v.reset(f.subarray(0, len), 0, len).checkLen();
      assert.equal(e, len < 14 + 4 * tags ? DROP_ETH_TOO_SHORT : 0, `len ${len}`);
      if (e === 0) assert.ok(v.payloadOffset <= len);
    }
  }
  // three tags: the third TPID is reported as the ethertype (for the L3 dispatch to drop)
  const three = hex('02420a64000302420a64000288a8000a81000014810000010800');
  v.reset(three, 0, three.length);
  assert.equal(v.checkLen(), 0);
  assert.equal(v.etherType, ETHERTYPE_VLAN);
});

test('ethernet: parse/emit round trip and VLAN push/pop', () => {
  for (const f of [ARP_REQ, VLAN_FRAME, QINQ_FRAME]) {
    const p = parseEthernet(f, 0, f.length)!;
    const b = filled(40);
    const n = emitEthernet(p, b, 1);
    assert.equal(n, 14 + 4 * p.vlans!.length);
    assert.deepEqual(b.subarray(1, 1 + n), f.subarray(0, n));
    assert.equal(b[0], 0xa5);
    assert.equal(b[1 + n], 0xa5);
  }
  assert.deepEqual(parseEthernet(QINQ_FRAME, 0, QINQ_FRAME.length)!.vlans, [
    { tpid: ETHERTYPE_QINQ, vid: 10, pcp: 0, dei: 0 },
    { tpid: ETHERTYPE_VLAN, vid: 20, pcp: 0, dei: 0 },
  ]);
  assert.equal(parseEthernet(VLAN_FRAME, 0, 16), null);
  assert.equal(emitEthernet({ dst: BLUE_MAC, src: RED_MAC, etherType: ETHERTYPE_IPV4 }, filled(14), 0), 14);

  // pop the 802.1Q tag, then push it back
  const b = filled(100);
  b.set(VLAN_FRAME, 20);
  const untaggedOff = popVlanTag(b, 20);
  assert.equal(untaggedOff, 24);
  const v = new EthernetView().reset(b, untaggedOff, VLAN_FRAME.length - 4);
  assert.equal(v.checkLen(), 0);
  assert.equal(v.tagCount, 0);
  assert.equal(v.dst, BLUE_MAC);
  assert.equal(v.src, RED_MAC);
  assert.equal(v.etherType, ETHERTYPE_IPV4);
  const back = pushVlanTag(b, untaggedOff, ETHERTYPE_VLAN, 0xa064);
  assert.equal(back, 20);
  assert.deepEqual(b.subarray(20, 20 + VLAN_FRAME.length), VLAN_FRAME);
});

test('arp: request fields, reply emit, malformed', () => {
  const a = new ArpView().reset(ARP_REQ, 14, ARP_REQ.length - 14);
  assert.equal(a.checkLen(), 0);
  assert.equal(a.op, ARP_OP_REQUEST);
  assert.equal(a.sha, RED_MAC);
  assert.equal(a.spa, 0x0a640002);
  assert.equal(a.tha, 0);
  assert.equal(a.tpa, 0x0a640001);
  assert.deepEqual(parseArp(ARP_REQ, 14, 28), { op: 1, sha: RED_MAC, spa: 0x0a640002, tha: 0, tpa: 0x0a640001 });

  const b = filled(32);
  assert.equal(emitArp(parseArp(ARP_REQ, 14, 28)!, b, 2), ARP_LEN);
  assert.deepEqual(b.subarray(2, 30), ARP_REQ.subarray(14));
  assert.equal(b[1], 0xa5);
  assert.equal(b[30], 0xa5);

  // turn the request into the gateway's reply in place
  const gw = 0x02005e100001;
  const r = ARP_REQ.slice();
  const v = new ArpView().reset(r, 14, 28);
  v.op = ARP_OP_REPLY;
  v.tha = v.sha;
  v.tpa = v.spa;
  v.sha = gw;
  v.spa = 0x0a640001;
  assert.deepEqual(parseArp(r, 14, 28), { op: 2, sha: gw, spa: 0x0a640001, tha: RED_MAC, tpa: 0x0a640002 });
  assert.deepEqual(r.subarray(14), hex('000108000604000202005e1000010a64000102420a6400020a640002'));

  for (let len = 0; len < 28; len++) assert.equal(a.reset(ARP_REQ, 14, len).checkLen(), DROP_ARP_TOO_SHORT);
  for (const [at, val] of [[0, 0x01], [1, 6], [2, 0x86], [4, 8], [5, 16]]) {
    const m = ARP_REQ.slice();
    m[14 + at] = val;
    assert.equal(a.reset(m, 14, 28).checkLen(), DROP_ARP_BAD, `byte ${at}`);
    assert.equal(parseArp(m, 14, 28), null);
  }
});
