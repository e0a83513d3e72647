/*
 * NAT rewriting: masquerade, de-NAT of replies, published ports (DNAT), hairpin, ICMP echo
 * ids, ICMP error translation, partial (NEEDS_CSUM) checksums, fragments, leak guard.
 * Addresses follow the default lab: red 10.100.0.2, blue 10.100.0.3, gateway 10.100.0.1,
 * external 203.0.113.2, wan 203.0.113.1.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  NAT_ACCEPT,
  NAT_DROP_FRAGMENT,
  NAT_DROP_NO_PORT,
  NAT_DROP_REASON_NAMES,
  NAT_DROP_UNTRACKED,
} from '../../src/nat/index.js';
import {
  ACK,
  assertChecksums,
  assertPartial,
  BLUE,
  BR,
  completePartial,
  EXT,
  FAR,
  fragPkt,
  GW,
  hex,
  icmpErrPkt,
  icmpMsg,
  ip,
  labEngine,
  makePartial,
  onesSum,
  pingPkt,
  Pkt,
  rawPkt,
  RED,
  route,
  RST,
  SYN,
  tcpPkt,
  toHex,
  udpPkt,
  UP,
  WAN,
} from './nat-helpers.js';

/* Bytes below were generated independently (Python, checksums from scratch). */

// red 10.100.0.2:40000 -> wan 203.0.113.1:80, SYN with MSS/SACK/TS/WS options
const SYN_RED = hex(
  '4500003c1c4640004006d80e0a640002cb0071019c4000500102030400000000' +
  'a002faf083cf0000020405b40402080a0001e2400000000001030307',
);
// the same after masquerade: 203.0.113.2:40000 -> 203.0.113.1:80
const SYN_OUT = hex(
  '4500003c1c4640004006a671cb007102cb0071019c4000500102030400000000' +
  'a002faf052320000020405b40402080a0001e2400000000001030307',
);
// wan's SYN/ACK to 203.0.113.2:40000
const SYNACK_WAN = hex(
  '4500003c000040004006c2b7cb007101cb00710200509c400a0b0c0d01020305' +
  'a012fe887bfa0000020405b40402080a00aabbcc0001e24001030307',
);
// ... de-NATed to red
const SYNACK_IN = hex(
  '4500003c000040004006f454cb0071010a64000200509c400a0b0c0d01020305' +
  'a012fe88ad970000020405b40402080a00aabbcc0001e24001030307',
);
// red 10.100.0.2:5000 -> wan:53 UDP "tapbridge-dns?"
const UDP_RED = hex(
  '4500002a424200004011f2190a640002cb007101138800350016ad2d74617062' +
  '72696467652d646e733f',
);
const UDP_OUT = hex(
  '4500002a424200004011c07ccb007102cb0071011388003500167b9074617062' +
  '72696467652d646e733f',
);
// wan: port unreachable to 203.0.113.2 quoting UDP_OUT
const PORT_UNREACH_WAN = hex(
  '450000469999000040016919cb007101cb00710203037529000000004500002a' +
  '424200004011c07ccb007102cb0071011388003500167b907461706272696467' +
  '652d646e733f',
);
// ... translated for red: outer dst red, quoting UDP_RED
const PORT_UNREACH_IN = hex(
  '450000469999000040019ab6cb0071010a6400020303438c000000004500002a' +
  '424200004011f2190a640002cb007101138800350016ad2d7461706272696467' +
  '652d646e733f',
);
// red pings wan: id 0x1234 seq 1
const PING_RED = hex(
  '4500002c7777400040017cf20a640002cb0071010800ad8a1234000100010203' +
  '0405060708090a0b0c0d0e0f',
);

const T0 = 1_000_000;

test('drop reason names cover every code', () => {
  assert.equal(NAT_DROP_REASON_NAMES[NAT_ACCEPT], 'ok');
  for (const n of NAT_DROP_REASON_NAMES.slice(1)) assert.match(n, /^nat_[a-z_]+$/);
});

test('masquerade: TCP SYN from red leaves as 203.0.113.2 keeping its port; the SYN/ACK is de-NATed', () => {
  const nat = labEngine();
  const a = route(nat, SYN_RED, BR, T0);
  assert.equal(a.v, NAT_ACCEPT);
  assert.equal(a.egress, UP);
  assert.equal(toHex(a.p.bytes()), toHex(SYN_OUT));
  assertChecksums(a.p.buf, a.p.off, 'SYN out');
  assert.equal(nat.size, 1);

  const b = route(nat, SYNACK_WAN, UP, T0 + 1);
  assert.equal(b.v, NAT_ACCEPT);
  assert.equal(b.egress, BR);
  assert.equal(toHex(b.p.bytes()), toHex(SYNACK_IN));
  assertChecksums(b.p.buf, b.p.off, 'SYN/ACK in');

  const [f] = nat.list(T0 + 1);
  assert.equal(f.protoName, 'tcp');
  assert.equal(f.state, 'SYN_RECV');
  assert.equal(f.original, 'src=10.100.0.2 dst=203.0.113.1 sport=40000 dport=80');
  assert.equal(f.reply, 'src=203.0.113.1 dst=203.0.113.2 sport=80 dport=40000');
  assert.deepEqual(f.flags, ['SEEN_REPLY', 'SNAT']);
  assert.equal(f.packetsOrig, 1);
  assert.equal(f.packetsReply, 1);
  assert.equal(f.bytesOrig, 60);
});

test('masquerade with partial (NEEDS_CSUM) checksums: only the address changes the field', () => {
  const nat = labEngine();
  const syn = makePartial(SYN_RED);
  const a = route(nat, syn, BR, T0, true);
  assert.equal(a.v, NAT_ACCEPT);
  assert.equal(a.p.src, EXT);
  assertPartial(a.p.buf, a.p.off, 'partial SYN out');
  completePartial(a.p.buf, a.p.off);
  assert.equal(toHex(a.p.bytes()), toHex(SYN_OUT)); // what the wire sees once "hardware" sums it

  // blue uses the same source port to the same server: the port must change, which a partial
  // checksum does not see (ports are summed in later), the address does.
  const blueSyn = makePartial(tcpPkt(BLUE, 40000, WAN, 80, SYN));
  const b = route(nat, blueSyn, BR, T0, true);
  assert.equal(b.v, NAT_ACCEPT);
  assert.notEqual(b.p.sport, 40000);
  assertPartial(b.p.buf, b.p.off, 'partial SYN with new port');
  completePartial(b.p.buf, b.p.off);
  assertChecksums(b.p.buf, b.p.off, 'completed');

  // a partial reply (wan's kernel offloads too)
  const r = route(nat, makePartial(tcpPkt(WAN, 80, EXT, b.p.sport, SYN | ACK)), UP, T0 + 1, true);
  assert.equal(r.v, NAT_ACCEPT);
  assert.equal(r.p.dst, BLUE);
  assert.equal(r.p.dport, 40000);
  assertPartial(r.p.buf, r.p.off, 'partial reply');
});

test('UDP masquerade and reply, then wan port unreachable is translated for red', () => {
  const nat = labEngine();
  const a = route(nat, UDP_RED, BR, T0);
  assert.equal(a.v, NAT_ACCEPT);
  assert.equal(toHex(a.p.bytes()), toHex(UDP_OUT));

  const e = route(nat, PORT_UNREACH_WAN, UP, T0 + 5);
  assert.equal(e.v, NAT_ACCEPT);
  assert.equal(e.egress, BR);
  assert.equal(toHex(e.p.bytes()), toHex(PORT_UNREACH_IN));
  assertChecksums(e.p.buf, e.p.off, 'outer');
  // the quoted datagram is complete here: its own checksums must hold too
  assertChecksums(e.p.buf, e.p.l4 + 8, 'quoted UDP');
  assert.equal(nat.counters.icmpRelated, 1);
  assert.equal(nat.list(T0 + 5)[0].packetsReply, 0, 'errors do not count as replies');

  const reply = route(nat, udpPkt(WAN, 53, EXT, 5000, 'answer'), UP, T0 + 6);
  assert.equal(reply.p.dst, RED);
  assert.equal(reply.p.dport, 5000);
  assertChecksums(reply.p.buf, reply.p.off);
  assert.deepEqual(nat.list(T0 + 6)[0].flags, ['ASSURED', 'SEEN_REPLY', 'SNAT']);
});

test('UDP without checksum (0) stays 0 through SNAT and port remapping', () => {
  const nat = labEngine();
  route(nat, udpPkt(RED, 7000, WAN, 9, 'a', true), BR, T0);
  const b = route(nat, udpPkt(BLUE, 7000, WAN, 9, 'b', true), BR, T0);
  assert.notEqual(b.p.sport, 7000);
  assert.equal(b.p.u16(b.p.l4 + 6), 0);
  assertChecksums(b.p.buf, b.p.off);
});

test('port collision: a taken reply tuple gets another port from the range; replies map back', () => {
  const nat = labEngine({ portRange: [40000, 40003] });
  const a = route(nat, tcpPkt(RED, 40000, WAN, 80, SYN), BR, T0);
  assert.equal(a.p.sport, 40000);
  const b = route(nat, tcpPkt(BLUE, 40000, WAN, 80, SYN), BR, T0);
  assert.equal(b.v, NAT_ACCEPT);
  assert.ok(b.p.sport >= 40001 && b.p.sport <= 40003, `port ${b.p.sport}`);
  assertChecksums(b.p.buf, b.p.off);
  // another destination: the original port is free again
  const c = route(nat, tcpPkt(BLUE, 40000, ip('203.0.113.9'), 80, SYN), BR, T0);
  assert.equal(c.p.sport, 40000);

  const ra = route(nat, tcpPkt(WAN, 80, EXT, 40000, SYN | ACK), UP, T0 + 1);
  assert.equal(ra.p.dst, RED);
  assert.equal(ra.p.dport, 40000);
  const rb = route(nat, tcpPkt(WAN, 80, EXT, b.p.sport, SYN | ACK), UP, T0 + 1);
  assert.equal(rb.p.dst, BLUE);
  assert.equal(rb.p.dport, 40000);
  assertChecksums(rb.p.buf, rb.p.off);

  // exhaust the tiny range: 40000..40003 all used towards wan:80
  const hosts = [ip('10.100.0.4'), ip('10.100.0.5'), ip('10.100.0.6')];
  const got = hosts.map((h) => route(nat, tcpPkt(h, 40000, WAN, 80, SYN), BR, T0));
  assert.equal(got[0].v, NAT_ACCEPT);
  assert.equal(got[1].v, NAT_ACCEPT);
  assert.equal(got[2].v, NAT_DROP_NO_PORT);
  assert.equal(nat.counters.noPort, 1);
  assert.equal(nat.size, 5);
});

test('ICMP echo: ids are kept when free, remapped on collision, replies map back', () => {
  const nat = labEngine();
  const a = route(nat, PING_RED, BR, T0);
  assert.equal(a.v, NAT_ACCEPT);
  assert.equal(a.p.src, EXT);
  assert.equal(a.p.icmpId, 0x1234);
  assertChecksums(a.p.buf, a.p.off);

  const b = route(nat, pingPkt(BLUE, WAN, 8, 0x1234), BR, T0);
  assert.equal(b.p.src, EXT);
  assert.notEqual(b.p.icmpId, 0x1234);
  assertChecksums(b.p.buf, b.p.off);

  const ra = route(nat, pingPkt(WAN, EXT, 0, 0x1234), UP, T0 + 1);
  assert.equal(ra.p.dst, RED);
  assert.equal(ra.p.icmpId, 0x1234);
  assertChecksums(ra.p.buf, ra.p.off);
  const rb = route(nat, pingPkt(WAN, EXT, 0, b.p.icmpId), UP, T0 + 1);
  assert.equal(rb.p.dst, BLUE);
  assert.equal(rb.p.icmpId, 0x1234);
  assertChecksums(rb.p.buf, rb.p.off);

  // an echo *request* from wan with the mapped id is not a reply of that flow
  const req = route(nat, pingPkt(WAN, EXT, 8, 0x1234), UP, T0 + 2);
  assert.equal(req.p.dst, EXT);
  // an unmatched echo reply is untracked (and not translated)
  const stray = route(nat, pingPkt(WAN, EXT, 0, 0x4444), UP, T0 + 2);
  assert.equal(stray.v, NAT_ACCEPT);
  assert.equal(stray.p.dst, EXT);
});

test('DNAT: 203.0.113.2:8000 -> 10.100.0.2:8000 keeping the client source; replies leave as 203.0.113.2:8000', () => {
  const nat = labEngine();
  for (const proto of [6, 17] as const) {
    const pkt = proto === 6 ? tcpPkt(WAN, 51000, EXT, 8000, SYN) : udpPkt(WAN, 51000, EXT, 8000, 'q');
    const a = route(nat, pkt, UP, T0);
    assert.equal(a.v, NAT_ACCEPT);
    assert.equal(a.egress, BR);
    assert.equal(a.p.src, WAN);
    assert.equal(a.p.sport, 51000);
    assert.equal(a.p.dst, RED);
    assert.equal(a.p.dport, 8000);
    assertChecksums(a.p.buf, a.p.off);

    const rpkt = proto === 6 ? tcpPkt(RED, 8000, WAN, 51000, SYN | ACK) : udpPkt(RED, 8000, WAN, 51000, 'r');
    const r = route(nat, rpkt, BR, T0 + 1);
    assert.equal(r.v, NAT_ACCEPT);
    assert.equal(r.egress, UP);
    assert.equal(r.p.src, EXT);
    assert.equal(r.p.sport, 8000);
    assert.equal(r.p.dst, WAN);
    assert.equal(r.p.dport, 51000);
    assertChecksums(r.p.buf, r.p.off);
  }
  const flows = nat.list(T0 + 1);
  assert.equal(flows.length, 2);
  for (const f of flows) {
    assert.ok(f.flags.includes('DNAT'));
    assert.ok(!f.flags.includes('SNAT'));
  }
  assert.equal(flows[0].reply, 'src=10.100.0.2 dst=203.0.113.1 sport=8000 dport=51000');

  // an unpublished port on the external address is for tapbridge itself: not tracked
  const local = new Pkt(tcpPkt(WAN, 51000, EXT, 22, SYN));
  assert.equal(nat.prerouting(local.buf, local.off, local.len, false, UP, T0), NAT_ACCEPT);
  assert.equal(nat.curFlow, -1);
  assert.equal(local.dst, EXT);
  assert.equal(nat.size, 2);
});

test('hairpin: blue -> 203.0.113.2:8000 becomes 10.100.0.1:x -> 10.100.0.2:8000 and the reply maps back', () => {
  const nat = labEngine();
  const a = route(nat, tcpPkt(BLUE, 45000, EXT, 8000, SYN), BR, T0);
  assert.equal(a.v, NAT_ACCEPT);
  assert.equal(a.egress, BR);
  assert.equal(a.p.src, GW);
  assert.equal(a.p.sport, 45000); // free, kept
  assert.equal(a.p.dst, RED);
  assert.equal(a.p.dport, 8000);
  assertChecksums(a.p.buf, a.p.off);

  const r = route(nat, tcpPkt(RED, 8000, GW, 45000, SYN | ACK), BR, T0 + 1);
  assert.equal(r.v, NAT_ACCEPT);
  assert.equal(r.egress, BR);
  assert.equal(r.p.src, EXT);
  assert.equal(r.p.sport, 8000);
  assert.equal(r.p.dst, BLUE);
  assert.equal(r.p.dport, 45000);
  assertChecksums(r.p.buf, r.p.off);
  assert.deepEqual(nat.list(T0 + 1)[0].flags, ['SEEN_REPLY', 'SNAT', 'DNAT', 'HAIRPIN']);
  assert.equal(nat.counters.hairpin, 1);

  // partial checksums through the hairpin too
  const p = route(nat, makePartial(tcpPkt(BLUE, 45000, EXT, 8000, ACK)), BR, T0 + 2, true);
  assert.equal(p.p.src, GW);
  assertPartial(p.p.buf, p.p.off);
});

test('ICMP time exceeded from a far router about a masqueraded TCP SYN (8 quoted bytes)', () => {
  const nat = labEngine();
  const out = route(nat, SYN_RED, BR, T0).p.bytes();
  // RFC 792 quote: IP header + 8 bytes (ports and seq only; no TCP checksum)
  const err = icmpErrPkt(FAR, EXT, 11, 0, out, 28);
  const e = route(nat, err, UP, T0 + 1);
  assert.equal(e.v, NAT_ACCEPT);
  assert.equal(e.p.src, FAR, 'the far router stays the source');
  assert.equal(e.p.dst, RED);
  const q = e.p.l4 + 8;
  assert.equal(e.p.u32(q + 12), RED);
  assert.equal(e.p.u32(q + 16), WAN);
  assert.equal(e.p.u16(q + 20), 40000);
  assert.equal(e.p.u16(q + 22), 80);
  assertChecksums(e.p.buf, e.p.off, 'outer');
  assert.equal(toHex(e.p.bytes().slice(28)), toHex(SYN_RED.slice(0, 28)), 'quote is what red sent');
});

test('ICMP frag needed from wan about a remapped TCP packet (full quote, TCP checksum fixed)', () => {
  const nat = labEngine();
  route(nat, tcpPkt(RED, 33333, WAN, 443, SYN), BR, T0);
  const payload = new Uint8Array(100).fill(7);
  const blue = route(nat, tcpPkt(BLUE, 33333, WAN, 443, SYN, payload), BR, T0);
  const mapped = blue.p.sport;
  assert.notEqual(mapped, 33333);
  const err = icmpErrPkt(WAN, EXT, 3, 4, blue.p.bytes(), blue.p.len, 1400);
  const e = route(nat, err, UP, T0 + 1);
  assert.equal(e.v, NAT_ACCEPT);
  assert.equal(e.p.dst, BLUE);
  assert.equal(e.p.u16(e.p.l4 + 6), 1400, 'MTU untouched');
  assertChecksums(e.p.buf, e.p.off, 'outer');
  assertChecksums(e.p.buf, e.p.l4 + 8, 'quoted TCP');
  assert.equal(toHex(e.p.bytes().slice(28)), toHex(tcpPkt(BLUE, 33333, WAN, 443, SYN, payload)));
});

test('ICMP error about a masqueraded ping is translated (quoted echo id restored)', () => {
  const nat = labEngine();
  route(nat, pingPkt(RED, WAN, 8, 0x77), BR, T0);
  const b = route(nat, pingPkt(BLUE, WAN, 8, 0x77), BR, T0);
  const err = icmpErrPkt(FAR, EXT, 11, 0, b.p.bytes());
  const e = route(nat, err, UP, T0 + 1);
  assert.equal(e.p.dst, BLUE);
  assertChecksums(e.p.buf, e.p.off, 'outer');
  assertChecksums(e.p.buf, e.p.l4 + 8, 'quoted echo');
  assert.equal(toHex(e.p.bytes().slice(28)), toHex(pingPkt(BLUE, WAN, 8, 0x77)));
});

test('ICMP error from red about a DNATed UDP packet leaves as 203.0.113.2 quoting the published port', () => {
  const nat = labEngine();
  const inb = route(nat, udpPkt(WAN, 52000, EXT, 8000, 'hello'), UP, T0);
  assert.equal(inb.p.dst, RED);
  const err = icmpErrPkt(RED, WAN, 3, 3, inb.p.bytes());
  const e = route(nat, err, BR, T0 + 1);
  assert.equal(e.v, NAT_ACCEPT);
  assert.equal(e.egress, UP);
  assert.equal(e.p.src, EXT);
  assert.equal(e.p.dst, WAN);
  assertChecksums(e.p.buf, e.p.off, 'outer');
  assertChecksums(e.p.buf, e.p.l4 + 8, 'quoted');
  assert.equal(toHex(e.p.bytes().slice(28)), toHex(udpPkt(WAN, 52000, EXT, 8000, 'hello')));
});

test('ICMP error about an unknown flow is untracked; from an inside host out of the uplink it is dropped', () => {
  const nat = labEngine();
  const stray = icmpErrPkt(WAN, EXT, 3, 3, udpPkt(EXT, 1111, WAN, 53, 'x'));
  const a = route(nat, stray, UP, T0);
  assert.equal(a.v, NAT_ACCEPT);
  assert.equal(a.p.dst, EXT);
  const leak = icmpErrPkt(RED, WAN, 3, 3, udpPkt(WAN, 53, RED, 1111, 'x'));
  assert.equal(route(nat, leak, BR, T0).v, NAT_DROP_UNTRACKED);
  // ICMP types NAT does not track (timestamp) from inside would leak: dropped
  const ts = rawPkt(RED, WAN, 1, icmpMsg(13, 0, 0x00010001, new Uint8Array(12)));
  assert.equal(route(nat, ts, BR, T0).v, NAT_DROP_UNTRACKED);
  assert.equal(nat.counters.untrackedLeak, 2);
});

test('other IP protocols (GRE) are masqueraded by address', () => {
  const nat = labEngine();
  const payload = Uint8Array.of(0, 0, 0x08, 0, 1, 2, 3, 4);
  const a = route(nat, rawPkt(RED, WAN, 47, payload), BR, T0);
  assert.equal(a.v, NAT_ACCEPT);
  assert.equal(a.p.src, EXT);
  assertChecksums(a.p.buf, a.p.off);
  const r = route(nat, rawPkt(WAN, EXT, 47, payload), UP, T0 + 1);
  assert.equal(r.p.dst, RED);
  assertChecksums(r.p.buf, r.p.off);
  assert.equal(nat.list(T0 + 1)[0].protoName, 'proto-47');
});

test('fragments: later fragments follow the first one; orphans are dropped', () => {
  const nat = labEngine();
  // A UDP datagram of 8 + 24 bytes split in two: first fragment holds the header + 16 bytes
  const whole = udpPkt(RED, 6000, WAN, 7, new Uint8Array(24).fill(9));
  const seg = whole.slice(20);
  const f1 = fragPkt(RED, WAN, 17, 0xabc, 0, true, seg.slice(0, 24));
  const f2 = fragPkt(RED, WAN, 17, 0xabc, 24, false, seg.slice(24));
  const a = route(nat, f1, BR, T0);
  assert.equal(a.v, NAT_ACCEPT);
  assert.equal(a.p.src, EXT);
  assert.equal(a.p.sport, 6000);
  const b = route(nat, f2, BR, T0);
  assert.equal(b.v, NAT_ACCEPT);
  assert.equal(b.p.src, EXT);
  // reassemble as wan would and check every checksum from scratch
  const joined = new Uint8Array(20 + 32);
  joined.set(a.p.bytes().slice(0, 20));
  joined.set(a.p.bytes().slice(20), 20);
  joined.set(b.p.bytes().slice(20), 44);
  assert.equal(onesSum(a.p.buf, a.p.off, 20), 0xffff, 'first fragment header');
  assert.equal(onesSum(b.p.buf, b.p.off, 20), 0xffff, 'second fragment header');
  joined[3] = 52;
  joined[6] = 0;
  joined[10] = joined[11] = 0;
  const c = ~onesSum(joined, 0, 20) & 0xffff;
  joined[10] = c >> 8;
  joined[11] = c & 0xff;
  assertChecksums(joined, 0, 'reassembled');
  assert.equal(toHex(b.p.bytes().slice(20)), toHex(seg.slice(24)), 'payload untouched');
  assert.equal(nat.counters.fragTranslated, 1);

  const orphan = fragPkt(BLUE, WAN, 17, 0xdef, 24, false, seg.slice(24));
  assert.equal(route(nat, orphan, BR, T0).v, NAT_DROP_FRAGMENT);
  assert.equal(nat.counters.fragDropped, 1);
});

test('releasePending (end of a batch) and the next prerouting discard an unconfirmed flow', () => {
  const nat = labEngine();
  const p = new Pkt(tcpPkt(RED, 1234, WAN, 80, SYN));
  nat.prerouting(p.buf, p.off, p.len, false, BR, T0);
  assert.ok(nat.pending >= 0);
  assert.equal(nat.size, 0);
  nat.releasePending(); // the router dropped the packet; the batch ends
  assert.equal(nat.pending, -1);
  assert.equal(nat.counters.abandoned, 1);
  const q = new Pkt(tcpPkt(RED, 1234, WAN, 80, SYN));
  nat.prerouting(q.buf, q.off, q.len, false, BR, T0);
  const r = new Pkt(tcpPkt(BLUE, 1234, WAN, 80, SYN));
  nat.prerouting(r.buf, r.off, r.len, false, BR, T0); // postrouting for q never came
  assert.equal(nat.counters.abandoned, 2);
  assert.equal(nat.postrouting(r.buf, r.off, r.len, false, UP, T0), NAT_ACCEPT);
  assert.equal(nat.size, 1);
  assert.equal(r.sport, 1234, 'q did not keep the port');
  // postrouting without prerouting (locally generated): nothing to do
  const s = new Pkt(udpPkt(EXT, 53, WAN, 53));
  assert.equal(nat.postrouting(s.buf, s.off, s.len, false, UP, T0), NAT_ACCEPT);
  assert.equal(s.src, EXT);
});

test('traffic to the gateway itself is not tracked; malformed packets are dropped', () => {
  const nat = labEngine();
  const p = new Pkt(pingPkt(RED, GW, 8, 1));
  assert.equal(nat.prerouting(p.buf, p.off, p.len, false, BR, T0), NAT_ACCEPT);
  assert.equal(nat.pending, -1);
  const short = new Pkt(tcpPkt(RED, 1, WAN, 2, SYN).slice(0, 30));
  short.buf[short.off + 3] = 30; // total length 30: TCP header cut
  assert.notEqual(nat.prerouting(short.buf, short.off, short.len, false, BR, T0), NAT_ACCEPT);
  assert.equal(nat.counters.malformed, 1);
});

test('an ICMP error tapbridge generates about a translated packet quotes it as it arrived, to its sender', () => {
  const nat = labEngine();
  const orig = tcpPkt(WAN, 51000, EXT, 8000, SYN, new Uint8Array(10).fill(1));
  const p = new Pkt(orig);
  assert.equal(nat.prerouting(p.buf, p.off, p.len, false, UP, T0), NAT_ACCEPT);
  assert.equal(p.dst, RED);
  // e.g. TTL exceeded at the router: the error quotes the packet as the router saw it (DNATed)
  const e = new Pkt(icmpErrPkt(EXT, WAN, 11, 0, p.bytes()));
  nat.translateLocalError(e.buf, e.off, e.len, nat.packetState);
  assert.equal(e.dst, WAN, 'to the sender');
  assert.equal(toHex(e.bytes().slice(28)), toHex(orig), 'the quote is the packet as sent');
  assertChecksums(e.buf, e.off, 'outer');
  assertChecksums(e.buf, e.l4 + 8, 'quoted');
  nat.releasePending();
  assert.equal(nat.size, 0);
  // a reply-direction packet of a masqueraded flow, partial checksum (the quote's L4 checksum
  // is a pseudo-header sum then, of no use to anyone: its addresses and ports are what matters)
  route(nat, tcpPkt(RED, 40000, WAN, 80, SYN), BR, T0);
  const r = makePartial(tcpPkt(WAN, 80, EXT, 40000, SYN | ACK));
  const q = new Pkt(r);
  nat.prerouting(q.buf, q.off, q.len, true, UP, T0);
  assert.equal(q.dst, RED);
  const e2 = new Pkt(icmpErrPkt(GW, RED, 3, 1, q.bytes()));
  nat.translateLocalError(e2.buf, e2.off, e2.len, nat.packetState);
  assert.equal(e2.dst, WAN);
  const quoted = e2.bytes().slice(28);
  assert.equal(toHex(quoted.slice(0, 10)), toHex(r.slice(0, 10)));
  assert.equal(toHex(quoted.slice(12, 24)), toHex(r.slice(12, 24)), 'addresses and ports as sent');
  assertChecksums(e2.buf, e2.off, 'outer');
  nat.releasePending();
  assert.equal(nat.size, 1, 'an established flow is not touched by releasePending');
});

test('SNAT never picks a published port of the external address', () => {
  const nat = labEngine({ portRange: [7999, 8001] });
  // red's own source port 8000 to wan:80 would make the reply tuple wan:80 -> ext:8000
  const a = route(nat, tcpPkt(RED, 8000, WAN, 80, SYN), BR, T0);
  assert.equal(a.v, NAT_ACCEPT);
  assert.notEqual(a.p.sport, 8000);
  // the published port still reaches red from wan:80
  const b = route(nat, tcpPkt(WAN, 80, EXT, 8000, SYN), UP, T0);
  assert.equal(b.p.dst, RED);
  assert.equal(b.p.dport, 8000);
});

test('ICMP error from red about a reply of its masqueraded flow leaves as 203.0.113.2 quoting the external tuple', () => {
  const nat = labEngine();
  route(nat, udpPkt(RED, 5000, WAN, 53, 'q'), BR, T0);
  const reply = route(nat, udpPkt(WAN, 53, EXT, 5000, 'late answer'), UP, T0 + 1);
  assert.equal(reply.p.dst, RED);
  const err = icmpErrPkt(RED, WAN, 3, 3, reply.p.bytes());
  const e = route(nat, err, BR, T0 + 2);
  assert.equal(e.v, NAT_ACCEPT);
  assert.equal(e.egress, UP);
  assert.equal(e.p.src, EXT);
  assert.equal(e.p.dst, WAN);
  assertChecksums(e.p.buf, e.p.off, 'outer');
  assertChecksums(e.p.buf, e.p.l4 + 8, 'quoted');
  assert.equal(toHex(e.p.bytes().slice(28)), toHex(udpPkt(WAN, 53, EXT, 5000, 'late answer')));
});

test('ICMP error about a hairpinned flow is translated on both sides', () => {
  const nat = labEngine();
  const a = route(nat, udpPkt(BLUE, 45000, EXT, 8000, 'hi'), BR, T0);
  assert.equal(a.p.src, GW);
  assert.equal(a.p.dst, RED);
  // red: port unreachable to the gateway address, quoting what it received
  const e = route(nat, icmpErrPkt(RED, GW, 3, 3, a.p.bytes()), BR, T0 + 1);
  assert.equal(e.v, NAT_ACCEPT);
  assert.equal(e.p.src, EXT);
  assert.equal(e.p.dst, BLUE);
  assertChecksums(e.p.buf, e.p.off, 'outer');
  assertChecksums(e.p.buf, e.p.l4 + 8, 'quoted');
  assert.equal(toHex(e.p.bytes().slice(28)), toHex(udpPkt(BLUE, 45000, EXT, 8000, 'hi')));
});

test('describeLast tells the trace what conntrack did', () => {
  const nat = labEngine();
  const p = new Pkt(SYN_RED);
  nat.prerouting(p.buf, p.off, p.len, false, BR, T0);
  assert.match(nat.describeLast(), /^new flow #0/);
  nat.postrouting(p.buf, p.off, p.len, false, UP, T0);
  const q = new Pkt(SYNACK_WAN);
  nat.prerouting(q.buf, q.off, q.len, false, UP, T0);
  assert.equal(nat.describeLast(), 'flow #0, reply direction, SYN_RECV');
  nat.releasePending();
  const r = new Pkt(tcpPkt(BLUE, 1, WAN, 2, RST));
  nat.prerouting(r.buf, r.off, r.len, false, BR, T0);
  assert.equal(nat.describeLast(), 'dropped: nat_tcp_invalid');
});
