// DHCPv4: the wire view and parse/emit on real client messages (scapy, dhclient/networkd
// layouts), malformed input -> drop code, and the lease manager through DORA, static leases,
// NAK, RELEASE, DECLINE, exhaustion, bounds and persistence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hex } from '../helpers/frames.js';
import { EthernetView } from '../../src/wire/ethernet.js';
import { Ipv4View } from '../../src/wire/ipv4.js';
import { UdpView } from '../../src/wire/udp.js';
import { verifyL4Checksum } from '../../src/wire/checksum.js';
import {
  BOOTP_MIN_LEN, BOOTREPLY, BOOTREQUEST, DHCP_CLIENT_PORT, DHCP_FLAG_BROADCAST, DHCP_MAGIC_COOKIE, DHCP_OPT_CLIENT_ID,
  DHCP_OPT_HOST_NAME, DHCP_OPT_PARAM_REQUEST, DHCP_SERVER_PORT, DHCPACK, DHCPDECLINE, DHCPDISCOVER, DHCPINFORM,
  DHCPNAK, DHCPOFFER, DHCPRELEASE, DHCPREQUEST, DhcpView, emitDhcp, parseDhcp, type DhcpFields,
} from '../../src/wire/dhcp.js';
import {
  DROP_DHCP_BAD_COOKIE, DROP_DHCP_BAD_HLEN, DROP_DHCP_BAD_OP, DROP_DHCP_BAD_OPTION, DROP_DHCP_BAD_OVERLOAD, DROP_DHCP_TOO_SHORT, DROP_OK,
} from '../../src/wire/drop.js';
import {
  DROP_DHCP_BAD_MSG_TYPE, DROP_DHCP_BAD_REQUEST, DROP_DHCP_NOT_ETHERNET, DROP_DHCP_NOT_REQUEST, DROP_DHCP_POOL_EXHAUSTED, DROP_DHCP_RELAYED,
  DROP_DHCP_TABLE_FULL,
} from '../../src/core/drops.js';
import { BROADCAST_MAC } from '../../src/wire/mac.js';
import { DhcpServer, dhcpClientKey, type DhcpServerConfig } from '../../src/services/dhcp-server.js';

const filled = (n: number): Uint8Array => new Uint8Array(n).fill(0xa5);
const ip = (a: number, b: number, c: number, d: number): number => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
const NET = (d: number): number => ip(10, 100, 0, d);

// dhclient-style DISCOVER from red (02:42:0a:64:00:02), xid 0x3903f326, host name 'red', PRL of 13
// options, padded to 300 bytes; 0.0.0.0:68 -> 255.255.255.255:67 (scapy).
const DISCOVER = hex(
  'ffffffffffff02420a64000208004500014800000000401179a600000000ffffffff004400430134357d010106003903' +
    'f326000000000000000000000000000000000000000002420a6400020000000000000000000000000000000000000000' +
    '000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000' +
    '000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000' +
    '000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000' +
    '0000000000000000000000000000000000000000000000000000000000000000000000000000638253633501010c0372' +
    '6564370d011c02030f06770c2c2f1a792aff000000000000000000000000000000000000000000000000000000000000' +
    '000000000000',
);
// The same client's REQUEST in SELECTING: server id 10.100.0.1, requested 10.100.0.10.
const REQUEST = hex(
  'ffffffffffff02420a64000208004500014800000000401179a600000000ffffffff0044004301345800010106003903' +
    'f326000000000000000000000000000000000000000002420a6400020000000000000000000000000000000000000000' +
    '000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000' +
    '000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000' +
    '000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000' +
    '00000000000000000000000000000000000000000000000000000000000000000000000000006382536335010336040a' +
    '64000132040a64000a0c03726564370d011c02030f06770c2c2f1a792aff000000000000000000000000000000000000' +
    '000000000000',
);
// systemd-networkd-style DISCOVER: broadcast flag, client id (type 255, IAID + DUID), max size
// 576, PRL, host name 'blue' (still red's MAC).
const DISCOVER_CID = hex(
  'ffffffffffff02420a64000208004500014800000000401179a600000000ffffffff0044004301346cbc010106001122' +
    '3344000080000000000000000000000000000000000002420a6400020000000000000000000000000000000000000000' +
    '000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000' +
    '000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000' +
    '000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000' +
    '0000000000000000000000000000000000000000000000000000000000000000000000000000638253633501013d11ff' +
    'b2c3d4e50002000023cf7d1e8a4b11aa3902024037090103060c0f1a1c2a790c04626c7565ff00000000000000000000' +
    '000000000000',
);
// The OFFER the server must build for DISCOVER (scapy, in emit's option order): 10.100.0.10,
// lease 3600 s, T1 1800, T2 3150, mask /24, broadcast, router, DNS, domain, MTU 1500.
const OFFER = hex(
  '020106003903f32600000000000000000a64000a000000000000000002420a6400020000000000000000000000000000' +
    '000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000' +
    '000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000' +
    '000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000' +
    '000000000000000000000000000000000000000000000000000000000000000000000000000000000000000063825363' +
    '35010236040a640001330400000e103a04000007083b0400000c4e0104ffffff001c040a6400ff03040a64000106040a' +
    '6400010f127461706272696467652e696e7465726e616c1a0205dcff',
);
// NAK for the same client (server id, message 'address not available'), padded to 300.
const NAK = hex(
  '020106003903f326000000000000000000000000000000000000000002420a6400020000000000000000000000000000' +
    '000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000' +
    '000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000' +
    '000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000' +
    '000000000000000000000000000000000000000000000000000000000000000000000000000000000000000063825363' +
    '35010636040a640001381561646472657373206e6f7420617661696c61626c65ff000000000000000000000000000000' +
    '000000000000000000000000',
);
// DISCOVER with option overload 3: host name + PRL in 'file', client id in 'sname'.
const OVERLOAD = hex(
  '0101060055667788000000000000000000000000000000000000000002420a640002000000000000000000003d070102' +
    '420a640002ff000000000000000000000000000000000000000000000000000000000000000000000000000000000000' +
    '0000000000000000000000000c0372656437020103ff0000000000000000000000000000000000000000000000000000' +
    '000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000' +
    '000000000000000000000000000000000000000000000000000000000000000000000000000000000000000063825363' +
    '350101340103ff',
);

const RED_MAC = 0x02420a640002;
const BLUE_MAC = 0x02420a640003;
const PRL = [1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42];

/** Offset and length of the DHCP message inside a frame, through the wire views. */
function payload(frame: Uint8Array): { off: number; len: number } {
  const e = new EthernetView().reset(frame, 0, frame.length);
  const v4 = new Ipv4View().reset(frame, e.payloadOffset, e.payloadLength);
  assert.equal(v4.checkLen(), 0);
  assert.ok(verifyL4Checksum(frame, e.payloadOffset));
  const u = new UdpView().reset(frame, v4.payloadOffset, v4.payloadLength);
  assert.equal(u.checkLen(), 0);
  assert.equal(u.srcPort, DHCP_CLIENT_PORT);
  assert.equal(u.dstPort, DHCP_SERVER_PORT);
  return { off: u.payloadOffset, len: u.payloadLength };
}

function dhcpOf(frame: Uint8Array): Uint8Array {
  const p = payload(frame);
  return frame.slice(p.off, p.off + p.len);
}

/** Emit into a 0xa5 buffer at offset 5; the bytes around the message stay untouched. */
function emitChecked(f: DhcpFields): Uint8Array {
  const b = filled(700);
  const n = emitDhcp(f, b, 5);
  assert.deepEqual(b.subarray(0, 5), filled(5));
  assert.deepEqual(b.subarray(5 + n), filled(700 - 5 - n));
  return b.slice(5, 5 + n);
}

test('dhcp view: every field of a real DISCOVER', () => {
  const p = payload(DISCOVER);
  const v = new DhcpView().reset(DISCOVER, p.off, p.len);
  assert.equal(p.len, BOOTP_MIN_LEN);
  assert.equal(v.checkLen(), 0);
  assert.equal(v.op, BOOTREQUEST);
  assert.equal(v.htype, 1);
  assert.equal(v.hlen, 6);
  assert.equal(v.hops, 0);
  assert.equal(v.xid, 0x3903f326);
  assert.equal(v.secs, 0);
  assert.equal(v.flags, 0);
  assert.ok(!v.broadcast);
  assert.equal(v.ciaddr, 0);
  assert.equal(v.yiaddr, 0);
  assert.equal(v.siaddr, 0);
  assert.equal(v.giaddr, 0);
  assert.equal(v.chaddr, RED_MAC);
  assert.equal(v.cookie, DHCP_MAGIC_COOKIE);
  assert.equal(v.overload, 0);
  assert.equal(v.messageType, DHCPDISCOVER);
  assert.equal(v.requestedIp, 0);
  assert.equal(v.serverId, 0);
  assert.equal(v.leaseTime, -1);
  assert.equal(v.option(DHCP_OPT_HOST_NAME), p.off + 245);
  assert.equal(v.optionLength(DHCP_OPT_HOST_NAME), 3);
  assert.equal(v.optionLength(DHCP_OPT_PARAM_REQUEST), 13);
  assert.equal(v.option(DHCP_OPT_CLIENT_ID), -1);
  assert.deepEqual(parseDhcp(DISCOVER, p.off, p.len), {
    op: 1, htype: 1, hlen: 6, hops: 0, xid: 0x3903f326, secs: 0, flags: 0, ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: 0,
    chaddr: RED_MAC, options: { messageType: DHCPDISCOVER, hostName: 'red', paramRequestList: PRL },
  });
  // the view is reused: a second message resets the option index
  const r = payload(REQUEST);
  assert.equal(v.reset(REQUEST, r.off, r.len).checkLen(), 0);
  assert.equal(v.messageType, DHCPREQUEST);
  assert.equal(v.serverId, NET(1));
  assert.equal(v.requestedIp, NET(10));
  assert.equal(v.reset(DISCOVER, p.off, p.len).checkLen(), 0);
  assert.equal(v.serverId, 0);
});

test('dhcp parse/emit: real client messages and server replies round-trip into 0xa5 buffers', () => {
  for (const frame of [DISCOVER, REQUEST]) {
    const m = dhcpOf(frame);
    assert.deepEqual(emitChecked(parseDhcp(m, 0, m.length)!), m);
  }
  for (const m of [OFFER, NAK]) assert.deepEqual(emitChecked(parseDhcp(m, 0, m.length)!), m);
  // networkd's option order differs from emit's: same message as objects
  const c = dhcpOf(DISCOVER_CID);
  const f = parseDhcp(c, 0, c.length)!;
  assert.equal(f.flags, DHCP_FLAG_BROADCAST);
  assert.deepEqual(f.options, {
    messageType: DHCPDISCOVER, clientId: hex('ffb2c3d4e50002000023cf7d1e8a4b11aa'), maxMessageSize: 576,
    paramRequestList: [1, 3, 6, 12, 15, 26, 28, 42, 121], hostName: 'blue',
  });
  const again = emitChecked(f);
  assert.equal(again.length, c.length);
  assert.deepEqual(parseDhcp(again, 0, again.length), f);
  // sname/file, other options, and a message shorter than 300 is padded
  const g: DhcpFields = {
    ...f, op: BOOTREPLY, sname: 'gw', file: 'pxelinux.0', options: { messageType: DHCPACK, other: [{ code: 119, data: hex('03666f6f00') }] },
  };
  const e = emitChecked(g);
  assert.equal(e.length, BOOTP_MIN_LEN);
  assert.deepEqual(parseDhcp(e, 0, e.length), g);
  assert.throws(() => emitDhcp(g, new Uint8Array(299), 0), RangeError);
  assert.throws(() => emitDhcp({ ...g, options: { hostName: 'x'.repeat(256) } }, new Uint8Array(1000), 0), RangeError);
});

test('dhcp view: option overload continues into file, then sname', () => {
  const v = new DhcpView().reset(OVERLOAD, 0, OVERLOAD.length);
  assert.equal(v.checkLen(), 0);
  assert.equal(v.overload, 3);
  const f = parseDhcp(OVERLOAD, 0, OVERLOAD.length)!;
  assert.equal(f.sname, undefined);
  assert.equal(f.file, undefined);
  assert.deepEqual(f.options, { messageType: DHCPDISCOVER, hostName: 'red', paramRequestList: [1, 3], clientId: hex('0102420a640002') });
  assert.equal(dhcpClientKey(f), 'id:0102420a640002');
  const m = OVERLOAD.slice();
  m[m.length - 2] = 4; // overload 4
  assert.equal(v.reset(m, 0, m.length).checkLen(), DROP_DHCP_BAD_OVERLOAD);
  const n = OVERLOAD.slice();
  n.set([52, 1, 1], 108); // an overload option inside the overloaded file area
  assert.equal(v.reset(n, 0, n.length).checkLen(), DROP_DHCP_BAD_OVERLOAD);
  const o = OVERLOAD.slice();
  o[109] = 127; // host name in 'file' runs past the file area
  assert.equal(v.reset(o, 0, o.length).checkLen(), DROP_DHCP_BAD_OPTION);
});

test('dhcp view: malformed messages give drop codes, never an exception', () => {
  const m = dhcpOf(DISCOVER);
  const v = new DhcpView();
  for (let len = 0; len < 240; len++) assert.equal(v.reset(m, 0, len).checkLen(), DROP_DHCP_TOO_SHORT);
  assert.equal(v.reset(m, 0, 240).checkLen(), 0); // options cut off at the cookie: an empty list
  assert.equal(v.messageType, 0);
  const at = (i: number, ...b: number[]): Uint8Array => {
    const c = m.slice();
    c.set(b, i);
    return c;
  };
  assert.equal(v.reset(at(0, 3), 0, 300).checkLen(), DROP_DHCP_BAD_OP);
  assert.equal(v.reset(at(2, 17), 0, 300).checkLen(), DROP_DHCP_BAD_HLEN);
  assert.equal(v.reset(at(236, 0x63, 0x82, 0x53, 0x64), 0, 300).checkLen(), DROP_DHCP_BAD_COOKIE);
  assert.equal(v.reset(at(241, 2), 0, 300).checkLen(), DROP_DHCP_BAD_OPTION); // message type of length 2
  assert.equal(v.reset(at(240, 50, 3, 1, 2, 3), 0, 300).checkLen(), DROP_DHCP_BAD_OPTION); // requested IP of 3 bytes
  assert.equal(v.reset(at(240, 3, 6), 0, 300).checkLen(), DROP_DHCP_BAD_OPTION); // router list not a multiple of 4
  // an option running past the end (cut inside the PRL, and cut between code and length)
  for (const len of [249, 250, 262]) assert.equal(v.reset(m, 0, len).checkLen(), DROP_DHCP_BAD_OPTION, `len ${len}`);
  assert.equal(v.reset(m, 0, 244).checkLen(), DROP_DHCP_BAD_OPTION);
  assert.equal(v.reset(m, 0, 243).checkLen(), 0); // message type complete, no END: tolerated
  assert.equal(parseDhcp(at(0, 3), 0, 300), null);
  // random garbage behind a valid cookie: never throws; a passing message's options are in bounds
  let seed = 11;
  const buf = new Uint8Array(300);
  for (let i = 0; i < 3000; i++) {
    for (let j = 0; j < buf.length; j++) buf[j] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
    buf.set([1, 1, 6], 0);
    buf.set([0x63, 0x82, 0x53, 0x63], 236);
    const len = 240 + (seed % 61);
    if (v.reset(buf, 0, len).checkLen() !== 0) continue;
    for (let code = 1; code < 255; code++) {
      const o = v.option(code);
      if (o >= 0) assert.ok(o + v.optionLength(code) <= len || (v.overload !== 0 && o < 236), `code ${code}`);
    }
    assert.ok(parseDhcp(buf, 0, len) !== null);
  }
});

// ---- the lease manager ----

const CFG: DhcpServerConfig = {
  serverIp: NET(1), prefixLen: 24, poolFirst: NET(10), poolLast: NET(12), domainName: 'tapbridge.internal', mtu: 1500,
  staticLeases: [{ mac: BLUE_MAC, ip: NET(3), hostName: 'blue' }],
};

const DISCOVER_F = ((): DhcpFields => {
  const m = dhcpOf(DISCOVER);
  return parseDhcp(m, 0, m.length)!;
})();

/** A client message like red's DISCOVER with other fields/options. */
function msg(type: number, over: Partial<DhcpFields> = {}, opts: DhcpFields['options'] = {}): DhcpFields {
  return { ...DISCOVER_F, ...over, options: { ...DISCOVER_F.options, messageType: type, ...opts } };
}
const client = (n: number, type: number, opts: DhcpFields['options'] = {}, over: Partial<DhcpFields> = {}): DhcpFields =>
  msg(type, { chaddr: 0x02420a640100 + n, xid: n, ...over }, opts);

test('dhcp server: DORA with real messages; reply bytes equal scapy\'s', () => {
  const s = new DhcpServer(CFG);
  const d = payload(DISCOVER);
  const offer = s.handlePacket(DISCOVER, d.off, d.len, 1000);
  assert.equal(offer.drop, DROP_OK);
  assert.ok(offer.reply !== null);
  assert.equal(offer.reply.dstIp, NET(10)); // no broadcast flag: unicast to yiaddr at chaddr
  assert.equal(offer.reply.dstMac, RED_MAC);
  assert.deepEqual(emitChecked(offer.reply.msg), OFFER);
  assert.equal(s.leases(1000)[0].state, 'offered');
  const r = payload(REQUEST);
  const ack = s.handlePacket(REQUEST, r.off, r.len, 2000);
  const ackBytes = OFFER.slice();
  ackBytes[242] = DHCPACK;
  assert.deepEqual(emitChecked(ack.reply!.msg), ackBytes);
  assert.deepEqual(ack.binding, { ip: NET(10), mac: RED_MAC, hostName: 'red', expires: 2000 + 3600_000 });
  assert.deepEqual(s.leases(2000), [{ client: 'mac:02:42:0a:64:00:02', mac: '02:42:0a:64:00:02', ip: '10.100.0.10', state: 'bound', expires: 3_602_000, hostName: 'red' }]);
  assert.equal(s.counters.discover, 1);
  assert.equal(s.counters.offer, 1);
  assert.equal(s.counters.requestSelecting, 1);
  assert.equal(s.counters.ack, 1);
  // a second DISCOVER from the bound client offers the same address, the lease stays bound
  const again = s.handle(DISCOVER_F, 3000);
  assert.equal(again.reply!.msg.yiaddr, NET(10));
  assert.equal(s.leases(3000)[0].state, 'bound');
  // networkd-style client (client id, broadcast flag): its own entry, broadcast reply
  const c = dhcpOf(DISCOVER_CID);
  const o2 = s.handlePacket(c, 0, c.length, 3000);
  assert.equal(o2.reply!.msg.yiaddr, NET(11));
  assert.equal(o2.reply!.dstIp, 0xffffffff);
  assert.equal(o2.reply!.dstMac, BROADCAST_MAC);
  assert.equal(o2.reply!.msg.flags, DHCP_FLAG_BROADCAST);
  assert.equal(s.size, 2);
});

test('dhcp server: renewing (unicast) and rebinding (broadcast) extend the lease; wrong ciaddr is NAKed', () => {
  const s = new DhcpServer(CFG);
  s.handle(DISCOVER_F, 0);
  s.handle(msg(DHCPREQUEST, {}, { serverId: NET(1), requestedIp: NET(10) }), 0);
  const renew = s.handle(msg(DHCPREQUEST, { ciaddr: NET(10) }), 1_800_000, false);
  assert.equal(renew.reply!.msg.options.messageType, DHCPACK);
  assert.equal(renew.reply!.msg.ciaddr, NET(10));
  assert.equal(renew.reply!.dstIp, NET(10)); // to ciaddr
  assert.equal(renew.binding!.expires, 1_800_000 + 3_600_000);
  const rebind = s.handle(msg(DHCPREQUEST, { ciaddr: NET(10) }), 3_000_000, true);
  assert.equal(rebind.reply!.msg.options.messageType, DHCPACK);
  assert.equal(s.counters.requestRenewing, 1);
  assert.equal(s.counters.requestRebinding, 1);
  const wrong = s.handle(msg(DHCPREQUEST, { ciaddr: NET(11) }), 3_000_000, false);
  assert.equal(wrong.reply!.msg.options.messageType, DHCPNAK);
  // a client asking for a lease time gets it clamped to [60 s, 3600 s]
  const short = s.handle(msg(DHCPREQUEST, { ciaddr: NET(10) }, { leaseTime: 5 }), 3_000_000, false);
  assert.equal(short.reply!.msg.options.leaseTime, 60);
  assert.equal(short.reply!.msg.options.renewalTime, 30);
  assert.equal(short.reply!.msg.options.rebindingTime, 52);
  const long = s.handle(msg(DHCPREQUEST, { ciaddr: NET(10) }, { leaseTime: 99999 }), 3_000_000, false);
  assert.equal(long.reply!.msg.options.leaseTime, 3600);
});

test('dhcp server: static lease by MAC', () => {
  const s = new DhcpServer(CFG);
  const o = s.handle(msg(DHCPDISCOVER, { chaddr: BLUE_MAC }, { requestedIp: NET(10) }), 0);
  assert.equal(o.reply!.msg.yiaddr, NET(3));
  const a = s.handle(msg(DHCPREQUEST, { chaddr: BLUE_MAC }, { serverId: NET(1), requestedIp: NET(3), hostName: undefined }), 0);
  assert.equal(a.reply!.msg.options.messageType, DHCPACK);
  assert.equal(a.binding!.ip, NET(3));
  // the static address is never given to anyone else, not even on request
  const other = s.handle(client(1, DHCPDISCOVER, { requestedIp: NET(3) }), 0);
  assert.equal(other.reply!.msg.yiaddr, NET(10));
  const nak = s.handle(client(1, DHCPREQUEST, { requestedIp: NET(3) }), 0);
  assert.equal(nak.reply!.msg.options.messageType, DHCPNAK);
  // the static client cannot take a pool address
  const n2 = s.handle(msg(DHCPREQUEST, { chaddr: BLUE_MAC }, { requestedIp: NET(11) }), 0);
  assert.equal(n2.reply!.msg.options.messageType, DHCPNAK);
});

test('dhcp server: NAK for a wrong requested address (INIT-REBOOT), bytes equal scapy\'s', () => {
  const s = new DhcpServer(CFG);
  const nak = s.handle(msg(DHCPREQUEST, {}, { requestedIp: NET(200) }), 0); // in the subnet, outside the pool
  assert.equal(nak.drop, DROP_OK);
  assert.equal(nak.reply!.dstIp, 0xffffffff);
  assert.equal(nak.reply!.dstMac, BROADCAST_MAC);
  assert.deepEqual(emitChecked(nak.reply!.msg), NAK);
  const wrongNet = s.handle(msg(DHCPREQUEST, {}, { requestedIp: ip(192, 168, 1, 5) }), 0);
  assert.equal(wrongNet.reply!.msg.options.message, 'wrong network');
  // INIT-REBOOT for a free pool address: authoritative server binds it ...
  const ok = s.handle(msg(DHCPREQUEST, {}, { requestedIp: NET(12) }), 0);
  assert.equal(ok.reply!.msg.options.messageType, DHCPACK);
  assert.equal(s.counters.requestInitReboot, 3);
  assert.equal(s.counters.nak, 2);
  // ... a non-authoritative one stays silent for clients it has no record of
  const quiet = new DhcpServer({ ...CFG, authoritative: false });
  const none = quiet.handle(msg(DHCPREQUEST, {}, { requestedIp: NET(12) }), 0);
  assert.equal(none.reply, null);
  assert.equal(none.drop, DROP_OK);
  assert.equal(quiet.counters.silent, 1);
  // SELECTING another server withdraws our offer silently; the address goes to the next client
  const s2 = new DhcpServer(CFG);
  s2.handle(DISCOVER_F, 0);
  const other = s2.handle(msg(DHCPREQUEST, {}, { serverId: ip(10, 100, 0, 99), requestedIp: NET(50) }), 0);
  assert.equal(other.reply, null);
  assert.equal(s2.counters.requestOtherServer, 1);
  assert.equal(s2.leases(0)[0].state, 'free');
});

test('dhcp server: RELEASE then reuse; the released client gets its address back first', () => {
  const s = new DhcpServer(CFG);
  const bind = (c: DhcpFields, now: number): number => {
    const o = s.handle({ ...c, options: { ...c.options, messageType: DHCPDISCOVER } }, now);
    const a = s.handle({ ...c, options: { ...c.options, messageType: DHCPREQUEST, serverId: NET(1), requestedIp: o.reply!.msg.yiaddr } }, now);
    assert.equal(a.reply!.msg.options.messageType, DHCPACK);
    return a.binding!.ip;
  };
  assert.equal(bind(DISCOVER_F, 0), NET(10));
  const rel = s.handle(msg(DHCPRELEASE, { ciaddr: NET(10) }, { serverId: NET(1) }), 10);
  assert.equal(rel.reply, null);
  assert.equal(rel.released, NET(10));
  assert.equal(s.leases(10)[0].state, 'free');
  // the released client comes back: same address
  assert.equal(bind(DISCOVER_F, 20), NET(10));
  s.handle(msg(DHCPRELEASE, { ciaddr: NET(10) }, { serverId: NET(1) }), 30);
  // others get never-used addresses first, then the one released
  assert.equal(bind(client(1, DHCPDISCOVER), 40), NET(11));
  assert.equal(bind(client(2, DHCPDISCOVER), 40), NET(12));
  assert.equal(bind(client(3, DHCPDISCOVER), 40), NET(10));
  assert.equal(s.counters.reclaimed, 1);
  // a RELEASE of an address the client does not hold changes nothing
  const bogus = s.handle(client(1, DHCPRELEASE, { serverId: NET(1) }, { ciaddr: NET(12) }), 50);
  assert.equal(bogus.released, 0);
  assert.equal(s.leases(50).filter((l) => l.state === 'bound').length, 3);
});

test('dhcp server: DECLINE quarantines the address for declineHoldMs', () => {
  const s = new DhcpServer({ ...CFG, declineHoldMs: 60_000 });
  s.handle(DISCOVER_F, 0);
  // a client that does not hold the address cannot decline it
  const foreign = s.handle(client(1, DHCPDECLINE, { requestedIp: NET(10), serverId: NET(1) }), 0);
  assert.equal(foreign.released, 0);
  const d = s.handle(msg(DHCPDECLINE, {}, { requestedIp: NET(10), serverId: NET(1) }), 1000);
  assert.equal(d.reply, null);
  assert.equal(d.released, NET(10));
  assert.deepEqual(s.quarantinedAddresses(1000), [NET(10)]);
  assert.equal(s.handle(DISCOVER_F, 2000).reply!.msg.yiaddr, NET(11));
  assert.equal(s.handle(client(1, DHCPDISCOVER, { requestedIp: NET(10) }), 2000).reply!.msg.yiaddr, NET(12));
  assert.equal(s.handle(client(2, DHCPDISCOVER), 2000).drop, DROP_DHCP_POOL_EXHAUSTED);
  assert.equal(s.handle(client(2, DHCPDISCOVER), 61_000).reply!.msg.yiaddr, NET(10)); // hold over
  assert.deepEqual(s.quarantinedAddresses(61_000), []);
  assert.equal(s.counters.quarantined, 1);
  assert.equal(s.handle(msg(DHCPDECLINE, {}, {}), 0).drop, DROP_DHCP_BAD_REQUEST); // no requested IP
});

test('dhcp server: pool exhaustion, offer expiry, bounded client table', () => {
  const s = new DhcpServer({ ...CFG, offerTimeoutMs: 30_000 });
  for (let i = 1; i <= 3; i++) {
    s.handle(client(i, DHCPDISCOVER), 0);
    s.handle(client(i, DHCPREQUEST, { serverId: NET(1), requestedIp: NET(9 + i) }), 0);
  }
  const ex = s.handle(client(4, DHCPDISCOVER), 0);
  assert.equal(ex.drop, DROP_DHCP_POOL_EXHAUSTED);
  assert.equal(ex.reply, null);
  assert.equal(s.counters.poolExhausted, 1);
  assert.equal(s.drops.dhcp_pool_exhausted, 1);
  const nak = s.handle(client(4, DHCPREQUEST, { requestedIp: NET(10) }), 0); // INIT-REBOOT onto a leased address
  assert.equal(nak.reply!.msg.options.messageType, DHCPNAK);
  // leases expire: after an hour the longest-free address goes to the new client
  const later = s.handle(client(4, DHCPDISCOVER), 3_600_001);
  assert.equal(later.reply!.msg.yiaddr, NET(10));
  assert.equal(s.counters.leaseExpired, 3);
  // offers expire too
  const t = new DhcpServer({ ...CFG, offerTimeoutMs: 30_000, poolLast: NET(10) });
  assert.equal(t.handle(client(1, DHCPDISCOVER), 0).reply!.msg.yiaddr, NET(10));
  assert.equal(t.handle(client(2, DHCPDISCOVER), 29_999).drop, DROP_DHCP_POOL_EXHAUSTED);
  assert.equal(t.handle(client(2, DHCPDISCOVER), 30_000).reply!.msg.yiaddr, NET(10));
  assert.equal(t.counters.offerExpired, 1);
  // at most maxClients entries: free ones are evicted, active ones are not
  const u = new DhcpServer({ ...CFG, maxClients: 2, poolLast: NET(20) });
  u.handle(client(1, DHCPDISCOVER), 0);
  u.handle(client(2, DHCPDISCOVER), 0);
  const full = u.handle(client(3, DHCPDISCOVER), 0);
  assert.equal(full.drop, DROP_DHCP_TABLE_FULL);
  assert.equal(u.counters.tableFull, 1);
  u.handle(client(1, DHCPRELEASE, { serverId: NET(1) }, { ciaddr: NET(10) }), 0); // not bound: ignored
  assert.equal(u.handle(client(3, DHCPDISCOVER), 60_000).reply!.msg.yiaddr, NET(12)); // offers expired: evict
  assert.equal(u.counters.evicted, 1);
  assert.equal(u.size, 2);
});

test('dhcp server: INFORM gets options without a lease; bad requests are drop codes', () => {
  const s = new DhcpServer(CFG);
  const inf = s.handle(msg(DHCPINFORM, { ciaddr: NET(50) }), 0);
  const m = inf.reply!.msg;
  assert.equal(m.options.messageType, DHCPACK);
  assert.equal(m.yiaddr, 0);
  assert.equal(m.ciaddr, NET(50));
  assert.equal(m.options.leaseTime, undefined);
  assert.equal(m.options.renewalTime, undefined);
  assert.deepEqual(m.options.routers, [NET(1)]);
  assert.deepEqual(m.options.dnsServers, [NET(1)]);
  assert.equal(inf.reply!.dstIp, NET(50));
  assert.equal(s.size, 0);
  const codes: [DhcpFields, number][] = [
    [msg(DHCPDISCOVER, { op: BOOTREPLY }), DROP_DHCP_NOT_REQUEST],
    [msg(DHCPDISCOVER, { htype: 6 }), DROP_DHCP_NOT_ETHERNET],
    [msg(DHCPDISCOVER, { hlen: 16 }), DROP_DHCP_NOT_ETHERNET],
    [msg(DHCPDISCOVER, { giaddr: ip(10, 1, 0, 1) }), DROP_DHCP_RELAYED],
    [msg(DHCPOFFER), DROP_DHCP_BAD_MSG_TYPE],
    [{ ...DISCOVER_F, options: {} }, DROP_DHCP_BAD_MSG_TYPE], // plain BOOTP
    [msg(DHCPREQUEST), DROP_DHCP_BAD_REQUEST], // no server id, no requested IP, no ciaddr
    [msg(DHCPREQUEST, { ciaddr: NET(10) }, { serverId: NET(1) }), DROP_DHCP_BAD_REQUEST], // SELECTING with ciaddr
  ];
  for (const [req, code] of codes) {
    const r = s.handle(req, 0);
    assert.equal(r.drop, code);
    assert.equal(r.reply, null);
  }
  // malformed bytes through handlePacket: a drop code, counted by name
  const b = dhcpOf(DISCOVER);
  b[236] = 0;
  assert.equal(s.handlePacket(b, 0, b.length, 0).drop, DROP_DHCP_BAD_COOKIE);
  assert.equal(s.handlePacket(b, 0, 100, 0).drop, DROP_DHCP_TOO_SHORT);
  assert.equal(s.drops.dhcp_bad_cookie, 1);
  assert.equal(s.drops.dhcp_not_ethernet, 2);
  assert.equal(s.counters.dropped, codes.length + 2);
  assert.equal(s.counters.received, codes.length + 3);
});

test('dhcp server: lease table persists as JSON', () => {
  const s = new DhcpServer(CFG);
  s.handle(DISCOVER_F, 0);
  s.handle(msg(DHCPREQUEST, {}, { serverId: NET(1), requestedIp: NET(10) }), 0);
  s.handle(client(1, DHCPDISCOVER), 0); // an offer: saved as free
  s.handle(msg(DHCPDISCOVER, { chaddr: BLUE_MAC }), 0);
  s.handle(msg(DHCPREQUEST, { chaddr: BLUE_MAC }, { requestedIp: NET(3), hostName: 'blue' }), 0);
  const file = JSON.parse(JSON.stringify(s.serialize(1000)));
  assert.equal(file.version, 1);
  assert.deepEqual(file.leases.map((l: { ip: string; state: string }) => `${l.ip} ${l.state}`), ['10.100.0.10 bound', '10.100.0.11 free', '10.100.0.3 bound']);
  // junk entries are skipped, not thrown
  file.leases.push({ client: 'mac:x', mac: 'zz', ip: '10.100.0.12', state: 'bound', expires: 1 });
  file.leases.push({ client: 'mac:02:42:0a:64:01:09', mac: '02:42:0a:64:01:09', ip: '10.100.0.200', state: 'bound', expires: 9e9 });
  file.leases.push(null);
  const t = new DhcpServer(CFG);
  assert.deepEqual(t.load(file, 2000), { loaded: 3, skipped: 3 });
  assert.deepEqual(t.leases(2000), s.leases(2000).map((l) => (l.state === 'offered' ? { ...l, state: 'free' } : l)));
  // after the restart: red renews its address, the offered client gets its address again
  assert.equal(t.handle(msg(DHCPREQUEST, { ciaddr: NET(10) }), 3000, false).reply!.msg.options.messageType, DHCPACK);
  assert.equal(t.handle(client(1, DHCPDISCOVER), 3000).reply!.msg.yiaddr, NET(11));
  assert.equal(t.handle(client(2, DHCPDISCOVER), 3000).reply!.msg.yiaddr, NET(12));
  assert.throws(() => t.load({ version: 2, leases: [] }, 0), /lease file/);
  assert.throws(() => t.load('nope', 0), /lease file/);
});

test('dhcp server: config errors name the field', () => {
  assert.throws(() => new DhcpServer({ ...CFG, poolFirst: NET(0) }), /poolFirst/);
  assert.throws(() => new DhcpServer({ ...CFG, poolLast: ip(10, 101, 0, 5) }), /poolLast/);
  assert.throws(() => new DhcpServer({ ...CFG, poolFirst: NET(20), poolLast: NET(10) }), /poolLast: before/);
  assert.throws(() => new DhcpServer({ ...CFG, staticLeases: [{ mac: 1, ip: NET(1) }] }), /staticLeases\[0\]\.ip/);
  assert.throws(() => new DhcpServer({ ...CFG, staticLeases: [{ mac: 1, ip: NET(4) }, { mac: 1, ip: NET(5) }] }), /staticLeases\[1\]\.mac: duplicate/);
  assert.throws(() => new DhcpServer({ ...CFG, mtu: 20 }), /mtu/);
  assert.throws(() => new DhcpServer({ ...CFG, prefixLen: 31 }), /prefixLen/);
  assert.throws(() => new DhcpServer({ ...CFG, maxClients: 0 }), /maxClients/);
});
