// IPv4, ICMP, UDP, TCP views on real packets: every field, parse/emit round trips into
// 0xa5-filled buffers, truncated/malformed input -> drop reason, never an exception.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EthernetView, emitEthernet, parseEthernet } from '../../src/wire/ethernet.js';
import {
  emitIpv4, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPV4_FLAG_DF, IPV4_FLAG_MF, Ipv4View, parseIpv4,
} from '../../src/wire/ipv4.js';
import {
  emitIcmp, ICMP_DEST_UNREACH, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, ICMP_ERR_IP, ICMP_ERR_MIN_LEN, ICMP_FRAG_NEEDED,
  ICMP_TIME_EXCEEDED, IcmpView, isIcmpError, isIcmpQuery, parseIcmp,
} from '../../src/wire/icmp.js';
import { emitUdp, parseUdp, UdpView } from '../../src/wire/udp.js';
import {
  emitTcp, parseTcp, TCP_FLAG_ACK, TCP_FLAG_SYN, TCP_OPT_MSS, TCP_OPT_SACK, TCP_OPT_SACK_PERM, TCP_OPT_TIMESTAMP,
  TCP_OPT_WSCALE, TcpView,
} from '../../src/wire/tcp.js';
import { fillL4Checksum, ipv4HeaderChecksum, verifyL4Checksum } from '../../src/wire/checksum.js';
import {
  DROP_ICMP_TOO_SHORT, DROP_IPV4_BAD_IHL, DROP_IPV4_BAD_LEN, DROP_IPV4_BAD_VERSION, DROP_IPV4_TOO_SHORT,
  DROP_TCP_BAD_OFF, DROP_TCP_TOO_SHORT, DROP_UDP_BAD_LEN, DROP_UDP_TOO_SHORT,
} from '../../src/wire/drop.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const filled = (n: number): Uint8Array => new Uint8Array(n).fill(0xa5);

// ping 10.100.0.2 -> 203.0.113.1, DF, id 0x4d2e, echo id 0x1c2b seq 1, 56 data bytes 0x10..0x47
const ICMP_ECHO = hex('02005e10000102420a6400020800450000544d2e40004001a7130a640002cb007101080022ff1c2b0001101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f4041424344454647');
// SYN 10.100.0.2:43210 -> 203.0.113.1:80, options MSS 1460, SACK-permitted, TS, NOP, WS 7
const TCP_SYN = hex('02005e10000102420a64000208004500003cbeef4000400635650a640002cb007101a8ca00509a3f0c1100000000a002faf015ae0000020405b40402080abb40e64d0000000001030307');
// DNS query example.com A, 10.100.0.3:53001 -> 198.51.100.53:53
const UDP_DNS = hex('02005e10000102420a64000308004500003912340000401133b10a640003c6336435cf0900350025805aabcd01000001000000000000076578616d706c6503636f6d0000010001');
// IPv4 with a Router Alert option (IHL 6), UDP 5 -> 6, 1 data byte (no Ethernet header)
const IP_OPT = hex('460000210063000001110f990a6400020a64000394040000000500060009730478');
// 10.100.0.1 -> 10.100.0.2 ICMP frag needed (MTU 1280) quoting a UDP 40000 -> 8000 packet of 1428 bytes
const FRAG_NEEDED = hex('4500003800000000400165fb0a6400010a6400020304b2630000050045000594424240003f11adaf0a640002cb0071019c401f4005808497');

// Parse a frame layer by layer into plain objects, re-emit into a 0xa5 buffer, compare bytes.
function roundTrip(frame: Uint8Array): void {
  const eth = parseEthernet(frame, 0, frame.length)!;
  const ip = parseIpv4(frame, 14, frame.length - 14)!;
  const l4off = 14 + 20 + ip.options!.length;
  const l4len = ip.totalLength - 20 - ip.options!.length;
  const out = filled(frame.length + 8);
  let o = 3;
  o += emitEthernet(eth, out, o);
  const ipOff = o;
  const savedCsum = ip.checksum;
  delete ip.checksum; // emit computes it
  o += emitIpv4(ip, out, o);
  assert.equal((out[ipOff + 10] << 8) | out[ipOff + 11], savedCsum);
  if (ip.protocol === IPPROTO_ICMP) {
    const f = parseIcmp(frame, l4off, l4len)!;
    delete f.checksum;
    o += emitIcmp(f, out, o);
  } else if (ip.protocol === IPPROTO_TCP) {
    const f = parseTcp(frame, l4off, l4len)!;
    delete f.checksum;
    o += emitTcp(f, out, o);
    fillL4Checksum(out, ipOff);
  } else {
    const f = parseUdp(frame, l4off, l4len)!;
    delete f.checksum;
    o += emitUdp(f, out, o);
    fillL4Checksum(out, ipOff);
  }
  assert.equal(o - 3, frame.length);
  assert.deepEqual(out.subarray(3, o), frame);
  assert.deepEqual(out.subarray(0, 3), filled(3));
  assert.deepEqual(out.subarray(o), filled(out.length - o));
}

test('ipv4: every field of a real echo request', () => {
  const e = new EthernetView().reset(ICMP_ECHO, 0, ICMP_ECHO.length);
  const v = new Ipv4View().reset(ICMP_ECHO, e.payloadOffset, e.payloadLength);
  assert.equal(v.checkLen(), 0);
  assert.equal(v.version, 4);
  assert.equal(v.headerLen, 20);
  assert.equal(v.tos, 0);
  assert.equal(v.totalLength, 84);
  assert.equal(v.id, 0x4d2e);
  assert.equal(v.flagsFrag, IPV4_FLAG_DF);
  assert.ok(v.dontFragment && !v.moreFragments && !v.isFragment && !v.isLaterFragment);
  assert.equal(v.fragOffset, 0);
  assert.equal(v.ttl, 64);
  assert.equal(v.protocol, IPPROTO_ICMP);
  assert.equal(v.checksum, 0xa713);
  assert.equal(v.src, 0x0a640002);
  assert.equal(v.dst, 0xcb007101);
  assert.equal(v.payloadOffset, 34);
  assert.equal(v.payloadLength, 64);
  assert.ok(v.verifyChecksum());
  assert.ok(verifyL4Checksum(ICMP_ECHO, 14));
});

test('ipv4: options, setters, checksum, TTL decrement, fragments', () => {
  const p = IP_OPT.slice();
  const v = new Ipv4View().reset(p, 0, p.length);
  assert.equal(v.checkLen(), 0);
  assert.equal(v.headerLen, 24);
  assert.equal(v.payloadOffset, 24);
  assert.equal(v.payloadLength, 9);
  assert.equal(v.ttl, 1);
  assert.equal(v.protocol, IPPROTO_UDP);
  assert.ok(v.verifyChecksum());
  assert.deepEqual(parseIpv4(p, 0, p.length)!.options, hex('94040000'));
  v.ttl = 9;
  v.fillChecksum();
  assert.equal(v.decrementTtl(), 8);
  assert.ok(v.verifyChecksum(), 'incremental TTL checksum');
  assert.equal(v.checksum, ipv4HeaderChecksum(p, 0, 24));
  v.src = 0xcb007102;
  v.dst = 0xc6336401;
  v.id = 0xfffe;
  v.tos = 0xb8;
  v.flagsFrag = IPV4_FLAG_MF | 185;
  assert.ok(!v.verifyChecksum());
  v.fillChecksum();
  assert.ok(v.verifyChecksum());
  assert.equal(v.src, 0xcb007102);
  assert.equal(v.dst, 0xc6336401);
  assert.equal(v.id, 0xfffe);
  assert.equal(v.tos, 0xb8);
  assert.ok(v.isFragment && v.moreFragments && !v.dontFragment && v.isLaterFragment);
  assert.equal(v.fragOffset, 185);
  v.flagsFrag = IPV4_FLAG_MF; // first fragment
  assert.ok(v.isFragment && !v.isLaterFragment);
  v.flagsFrag = 100; // last fragment
  assert.ok(v.isFragment && v.isLaterFragment && !v.moreFragments);
  // trailing Ethernet padding is fine, payloadLength follows totalLength
  const padded = new Uint8Array(60);
  padded.set(IP_OPT);
  assert.equal(v.reset(padded, 0, 60).checkLen(), 0);
  assert.equal(v.payloadLength, 9);
});

test('ipv4: malformed headers give the right drop reason, never throw', () => {
  const ip = ICMP_ECHO.subarray(14);
  const v = new Ipv4View();
  for (let len = 0; len < 20; len++) assert.equal(v.reset(ip, 0, len).checkLen(), DROP_IPV4_TOO_SHORT);
  for (let len = 20; len < 84; len++) assert.equal(v.reset(ip, 0, len).checkLen(), DROP_IPV4_BAD_LEN, `len ${len}`);
  assert.equal(v.reset(ip, 0, 84).checkLen(), 0);
  const m = (at: number, val: number): Uint8Array => {
    const c = ip.slice();
    c[at] = val;
    return c;
  };
  assert.equal(v.reset(m(0, 0x65), 0, 84).checkLen(), DROP_IPV4_BAD_VERSION);
  assert.equal(v.reset(m(0, 0x44), 0, 84).checkLen(), DROP_IPV4_BAD_IHL);
  assert.equal(v.reset(m(0, 0x4f), 0, 40).checkLen(), DROP_IPV4_BAD_IHL); // 60-byte header, 40 available
  assert.equal(v.reset(m(3, 19), 0, 84).checkLen(), DROP_IPV4_BAD_LEN); // total length < header
  assert.equal(v.reset(m(3, 0x55), 0, 84).checkLen(), DROP_IPV4_BAD_LEN); // total length > available
  assert.equal(parseIpv4(m(0, 0x65), 0, 84), null);
  assert.ok(!v.reset(m(8, 63), 0, 84).verifyChecksum());
  // random garbage: checkLen never throws, and a passing header is in bounds
  let seed = 7;
  const buf = new Uint8Array(80);
  for (let i = 0; i < 5000; i++) {
    for (let j = 0; j < buf.length; j++) buf[j] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
    buf[0] = (buf[0] & 0x0f) | 0x40;
    const len = seed % 81;
    if (v.reset(buf, 0, len).checkLen() === 0) assert.ok(v.headerLen >= 20 && v.totalLength <= len && v.headerLen <= v.totalLength);
  }
});

test('ipv4: emit computes the checksum and writes options', () => {
  const b = filled(30);
  const n = emitIpv4({
    tos: 0, totalLength: 33, id: 99, dontFragment: false, moreFragments: false, fragOffset: 0, ttl: 1,
    protocol: IPPROTO_UDP, src: 0x0a640002, dst: 0x0a640003, options: hex('94040000'),
  }, b, 2);
  assert.equal(n, 24);
  assert.deepEqual(b.subarray(2, 26), IP_OPT.subarray(0, 24));
  assert.equal(b[1], 0xa5);
  assert.equal(b[26], 0xa5);
  const f = parseIpv4(FRAG_NEEDED, 0, FRAG_NEEDED.length)!;
  assert.deepEqual(f, {
    tos: 0, totalLength: 56, id: 0, dontFragment: false, moreFragments: false, fragOffset: 0, ttl: 64,
    protocol: IPPROTO_ICMP, src: 0x0a640001, dst: 0x0a640002, checksum: 0x65fb, options: new Uint8Array(0),
  });
});

test('icmp: echo request fields, checksum, reply in place', () => {
  const p = ICMP_ECHO.slice();
  const v = new IcmpView().reset(p, 34, 64);
  assert.equal(v.checkLen(), 0);
  assert.equal(v.type, ICMP_ECHO_REQUEST);
  assert.equal(v.code, 0);
  assert.equal(v.checksum, 0x22ff);
  assert.equal(v.id, 0x1c2b);
  assert.equal(v.seq, 1);
  assert.equal(v.rest, 0x1c2b0001);
  assert.ok(!v.isError);
  assert.equal(v.payloadOffset, 42);
  assert.equal(v.payloadLength, 56);
  assert.ok(v.verifyChecksum());
  assert.ok(isIcmpQuery(ICMP_ECHO_REPLY) && !isIcmpQuery(ICMP_DEST_UNREACH));
  assert.ok(isIcmpError(ICMP_TIME_EXCEEDED) && !isIcmpError(ICMP_ECHO_REQUEST));
  v.type = ICMP_ECHO_REPLY;
  assert.ok(!v.verifyChecksum());
  v.fillChecksum();
  assert.ok(v.verifyChecksum());
  assert.equal(v.checksum, 0x2aff);
  assert.deepEqual(parseIcmp(p, 34, 64), {
    type: 0, code: 0, checksum: 0x2aff, id: 0x1c2b, seq: 1, payload: ICMP_ECHO.slice(42),
  });
  for (let len = 0; len < 8; len++) assert.equal(v.reset(p, 34, len).checkLen(), DROP_ICMP_TOO_SHORT);
  assert.equal(parseIcmp(p, 34, 7), null);
});

test('icmp: frag-needed error with the quoted header', () => {
  const ip = new Ipv4View().reset(FRAG_NEEDED, 0, FRAG_NEEDED.length);
  assert.equal(ip.checkLen(), 0);
  assert.ok(ip.verifyChecksum());
  const v = new IcmpView().reset(FRAG_NEEDED, ip.payloadOffset, ip.payloadLength);
  assert.equal(v.checkLen(), 0);
  assert.ok(v.verifyChecksum());
  assert.ok(v.isError);
  assert.equal(v.type, ICMP_DEST_UNREACH);
  assert.equal(v.code, ICMP_FRAG_NEEDED);
  assert.equal(v.mtu, 1280);
  assert.equal(v.id, 0);
  assert.ok(ip.payloadLength >= ICMP_ERR_MIN_LEN);
  // the quoted packet is truncated: its header is sound, its total length is not available
  const q = new Ipv4View().reset(FRAG_NEEDED, 20 + ICMP_ERR_IP, ip.payloadLength - ICMP_ERR_IP);
  assert.equal(q.checkHeader(), 0);
  assert.equal(q.checkLen(), DROP_IPV4_BAD_LEN);
  assert.equal(q.totalLength, 1428);
  assert.equal(q.src, 0x0a640002);
  assert.equal(q.dst, 0xcb007101);
  assert.equal(q.protocol, IPPROTO_UDP);
  assert.ok(q.verifyChecksum());
  const u = new UdpView().reset(FRAG_NEEDED, q.payloadOffset, 8);
  assert.equal(u.srcPort, 40000);
  assert.equal(u.dstPort, 8000);
  // emit the same message from fields
  const f = parseIcmp(FRAG_NEEDED, 20, 36)!;
  assert.equal(f.seq, 1280);
  delete f.checksum;
  const b = filled(40);
  assert.equal(emitIcmp(f, b, 1), 36);
  assert.deepEqual(b.subarray(1, 37), FRAG_NEEDED.subarray(20));
  assert.equal(b[37], 0xa5);
});

test('udp: DNS query fields and malformed lengths', () => {
  const v = new UdpView().reset(UDP_DNS, 34, 37);
  assert.equal(v.checkLen(), 0);
  assert.equal(v.srcPort, 53001);
  assert.equal(v.dstPort, 53);
  assert.equal(v.length, 37);
  assert.equal(v.checksum, 0x805a);
  assert.equal(v.payloadOffset, 42);
  assert.equal(v.payloadLength, 29);
  assert.equal(Buffer.from(UDP_DNS.subarray(55, 62)).toString('latin1'), 'example');
  assert.ok(verifyL4Checksum(UDP_DNS, 14));
  for (let len = 0; len < 8; len++) assert.equal(v.reset(UDP_DNS, 34, len).checkLen(), DROP_UDP_TOO_SHORT);
  for (let len = 8; len < 37; len++) assert.equal(v.reset(UDP_DNS, 34, len).checkLen(), DROP_UDP_BAD_LEN);
  const m = UDP_DNS.slice();
  m[39] = 7; // length 7 < 8
  assert.equal(v.reset(m, 34, 37).checkLen(), DROP_UDP_BAD_LEN);
  assert.equal(parseUdp(m, 34, 37), null);
  const p = parseUdp(UDP_DNS, 34, 37)!;
  assert.equal(p.payload!.length, 29);
  v.reset(m, 34, 37);
  v.srcPort = 1;
  v.dstPort = 2;
  v.length = 9;
  v.checksum = 0xffff;
  assert.deepEqual(m.subarray(34, 42), hex('000100020009ffff'));
});

test('tcp: SYN with options, every field', () => {
  const v = new TcpView().reset(TCP_SYN, 34, 40);
  assert.equal(v.checkLen(), 0);
  assert.equal(v.srcPort, 43210);
  assert.equal(v.dstPort, 80);
  assert.equal(v.seq, 0x9a3f0c11);
  assert.equal(v.ack, 0);
  assert.equal(v.dataOffset, 10);
  assert.equal(v.headerLen, 40);
  assert.equal(v.flags, TCP_FLAG_SYN);
  assert.equal(v.window, 64240);
  assert.equal(v.checksum, 0x15ae);
  assert.equal(v.urgentPtr, 0);
  assert.equal(v.payloadOffset, 74);
  assert.equal(v.payloadLength, 0);
  assert.ok(verifyL4Checksum(TCP_SYN, 14));
  const mss = v.findOption(TCP_OPT_MSS);
  assert.equal(mss, 54);
  assert.equal((TCP_SYN[mss + 2] << 8) | TCP_SYN[mss + 3], 1460);
  assert.equal(v.findOption(TCP_OPT_SACK_PERM), 58);
  assert.equal(v.findOption(TCP_OPT_TIMESTAMP), 60);
  assert.equal(TCP_SYN[v.findOption(TCP_OPT_WSCALE) + 2], 7);
  assert.equal(v.findOption(TCP_OPT_SACK), -1);
  // a malformed option list (length running past the header) is not followed
  const m = TCP_SYN.slice();
  m[61] = 30;
  assert.equal(v.reset(m, 34, 40).findOption(TCP_OPT_WSCALE), -1);
  m[61] = 0;
  assert.equal(v.findOption(TCP_OPT_WSCALE), -1);

  const s = TCP_SYN.slice();
  v.reset(s, 34, 40);
  v.flags = TCP_FLAG_SYN | TCP_FLAG_ACK;
  v.ack = 0x9a3f0c12;
  v.seq = 0xfffffff0;
  v.srcPort = 80;
  v.dstPort = 43210;
  v.window = 65535;
  v.urgentPtr = 3;
  v.checksum = 0x1234;
  assert.deepEqual(s.subarray(34, 54), hex('0050a8cafffffff09a3f0c12a012ffff12340003'));
  assert.equal(v.seq, 0xfffffff0);
});

test('tcp: truncated and bad data offset', () => {
  const v = new TcpView();
  for (let len = 0; len < 20; len++) assert.equal(v.reset(TCP_SYN, 34, len).checkLen(), DROP_TCP_TOO_SHORT);
  for (let len = 20; len < 40; len++) assert.equal(v.reset(TCP_SYN, 34, len).checkLen(), DROP_TCP_BAD_OFF);
  const m = TCP_SYN.slice();
  m[46] = 0x40; // data offset 4
  assert.equal(v.reset(m, 34, 40).checkLen(), DROP_TCP_BAD_OFF);
  assert.equal(parseTcp(m, 34, 40), null);
  m[46] = 0xf0; // 60 bytes > 40
  assert.equal(v.reset(m, 34, 40).checkLen(), DROP_TCP_BAD_OFF);
});

test('full frames: parse every layer, emit into 0xa5 buffers, same bytes', () => {
  roundTrip(ICMP_ECHO);
  roundTrip(TCP_SYN);
  roundTrip(UDP_DNS);
  const withEth = new Uint8Array(14 + IP_OPT.length);
  withEth.set(hex('02420a64000302420a6400020800'));
  withEth.set(IP_OPT, 14);
  roundTrip(withEth);
});
