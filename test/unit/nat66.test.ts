/*
 * NAT66: masquerade of TCP/UDP/ICMPv6 echo, port preservation and port choice, published
 * ports, hairpin, ICMPv6 error translation (from outside and inside, and the errors tapbridge
 * generates), the leak guard, NDP, extension headers, fragments, partial (NEEDS_CSUM)
 * checksums of a TSO6 super-frame, UDP never 0, expiry and early drop, shares, dry runs, the
 * address table's references, the control plane's view, and the nat6/* elements.
 * Packets: nat66-packets.ts (scapy, test/unit/fixtures/nat66-packets.py); others are built by
 * nat66-helpers.ts with checksums from scratch. Lab: red 2001:db8:100::2, blue ::3, gateway
 * ::1; wan 2001:db8:113::1, external 2001:db8:113::2.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  NAT_ACCEPT, NAT_DROP_FRAGMENT, NAT_DROP_MALFORMED, NAT_DROP_NO_PORT, NAT_DROP_PORT_LIMIT, NAT_DROP_SOURCE_LIMIT,
  NAT_DROP_TABLE_FULL, NAT_DROP_TCP_INVALID, NAT_DROP_UNTRACKED, NAT6_DROP_REASON_NAMES, NatEngine6, NatLocalOut,
  NatLocalOut6, NatPostrouting6, NatPrerouting6,
} from '../../src/nat/index.js';
import { slotOf } from '../../src/core/anno.js';
import { Arena } from '../../src/core/arena.js';
import { DROP_BASE } from '../../src/core/counters.js';
import { DROP_NAT6_FRAGMENT, DROP_NAT6_UNTRACKED, dropName } from '../../src/core/drops.js';
import { Element, makeClock, PortRecord, Tracer, type DataPlaneContext } from '../../src/core/element.js';
import { VNET_F_NEEDS_CSUM, VNET_FLAGS, VNET_HDR_LEN } from '../../src/core/frame.js';
import { InterfaceTable } from '../../src/gateway/ifaces.js';
import { emitIcmpv6Error } from '../../src/wire/icmpv6.js';
import { ACK, labEngine, PAD, Pkt, RST, SYN, toHex } from './nat-helpers.js';
import {
  assertChecksums6,
  assertPartial6,
  BLUE6,
  BR,
  completePartial6,
  concat,
  dport6,
  dst6,
  echo6,
  echoId6,
  expect6,
  EXT6,
  FAR6,
  GW6,
  icmp6Err,
  ip6,
  lab6Engine,
  makePartial6,
  RED6,
  route6,
  sport6,
  src6,
  tcp6,
  udp6,
  UP,
  upper,
  WAN6,
} from './nat66-helpers.js';
import { P } from './nat66-packets.js';

const T0 = 1_000_000;
const S = 1000;
const RED = '2001:db8:100::2';
const BLUE = '2001:db8:100::3';
const GW = '2001:db8:100::1';
const WAN = '2001:db8:113::1';
const EXT = '2001:db8:113::2';

/** Engine-owned addresses of the lab engine: gateway, external, red (published). */
const PINNED = 3;

test('NAT66 verdict names are the registry nat6_* reasons', () => {
  assert.equal(NAT6_DROP_REASON_NAMES[NAT_ACCEPT], 'ok');
  for (const n of NAT6_DROP_REASON_NAMES.slice(1)) assert.match(n, /^nat6_[a-z_]+$/);
  assert.equal(NAT6_DROP_REASON_NAMES[NAT_DROP_UNTRACKED], 'nat6_untracked_leak');
});

test('masquerade TCP: the SYN leaves as [2001:db8:113::2]:40000, the SYN/ACK is de-NATed; conntrack view in RFC 5952', () => {
  const nat = lab6Engine();
  assert.equal(nat.addressCount, PINNED);
  expect6(nat, P.SYN_RED, BR, T0, P.SYN_OUT, UP);
  assert.equal(nat.size, 1);
  assert.equal(nat.addressCount, PINNED + 1, 'red is already the published address; wan is new');

  expect6(nat, P.SYNACK_WAN, UP, T0 + 1, P.SYNACK_IN, BR);

  const [f] = nat.list(T0 + 1);
  assert.equal(f.protoName, 'tcp');
  assert.equal(f.state, 'SYN_RECV');
  assert.equal(f.original, `src=${RED} dst=${WAN} sport=40000 dport=80`);
  assert.equal(f.reply, `src=${WAN} dst=${EXT} sport=80 dport=40000`);
  assert.deepEqual(f.flags, ['SEEN_REPLY', 'SNAT']);
  assert.equal(f.packetsOrig, 1);
  assert.equal(f.bytesOrig, 80);
  assert.equal(f.packetsReply, 1);
  assert.equal(nat.info(f.id, T0 + 1)?.ingressIf, BR);
  assert.equal(nat.find(6, RED6, WAN6, 40000, 80), f.id);
  assert.equal(nat.find(6, WAN6, EXT6, 80, 40000), f.id);
  assert.equal(nat.find(6, BLUE6, WAN6, 40000, 80), -1);
  assert.equal(nat.find(6, ip6('2001:db8::99'), WAN6, 40000, 80), -1, 'an address no flow holds');
});

test('masquerade UDP and ICMPv6 echo (the id is the port), replies back; checksums over the pseudo header', () => {
  const nat = lab6Engine();
  expect6(nat, P.UDP_RED, BR, T0, P.UDP_OUT, UP);
  expect6(nat, P.UDP_WAN, UP, T0 + 1, P.UDP_IN, BR);
  expect6(nat, P.PING_RED, BR, T0, P.PING_OUT, UP); // the ICMPv6 checksum follows the source address
  expect6(nat, P.PONG_WAN, UP, T0 + 1, P.PONG_IN, BR);
  const flows = nat.list(T0 + 1);
  assert.deepEqual(flows.map((f) => f.protoName), ['udp', 'icmpv6']);
  assert.deepEqual(flows[0].flags, ['ASSURED', 'SEEN_REPLY', 'SNAT']);
  assert.equal(flows[1].original, `src=${RED} dst=${WAN} type=128 id=4660`);
  assert.equal(flows[1].reply, `src=${WAN} dst=${EXT} type=129 id=4660`);
  assert.equal(nat.find(58, WAN6, EXT6, 0x1234, 0x1234, 129), flows[1].id);

  // an unmatched echo reply is untracked and untouched; an echo request from wan to the mapped id is not a reply
  const stray = route6(nat, echo6(WAN6, EXT6, 129, 0x4444), UP, T0 + 2);
  assert.equal(stray.v, NAT_ACCEPT);
  assert.equal(dst6(stray.p), EXT);
  const req = route6(nat, echo6(WAN6, EXT6, 128, 0x1234), UP, T0 + 2);
  assert.equal(dst6(req.p), EXT);
});

test('port preservation, and another port (or echo id) from the range on a clash; replies map back', () => {
  const nat = lab6Engine({ portRange: [40000, 40003] });
  const a = route6(nat, tcp6(RED6, 40000, WAN6, 80, SYN), BR, T0);
  assert.equal(sport6(a.p), 40000);
  const b = route6(nat, tcp6(BLUE6, 40000, WAN6, 80, SYN), BR, T0);
  assert.equal(b.v, NAT_ACCEPT);
  assert.equal(src6(b.p), EXT);
  const mapped = sport6(b.p);
  assert.ok(mapped >= 40001 && mapped <= 40003, `port ${mapped}`);
  assertChecksums6(b.p.buf, b.p.off, 'remapped SYN');
  // another destination: the original port is free there
  assert.equal(sport6(route6(nat, tcp6(BLUE6, 40000, ip6('2001:db8:113::9'), 80, SYN), BR, T0).p), 40000);

  const rb = route6(nat, tcp6(WAN6, 80, EXT6, mapped, SYN | ACK), UP, T0 + 1);
  assert.equal(dst6(rb.p), BLUE);
  assert.equal(dport6(rb.p), 40000);
  assertChecksums6(rb.p.buf, rb.p.off, 'reply to blue');

  const hosts = ['2001:db8:100::4', '2001:db8:100::5', '2001:db8:100::6'].map(ip6);
  const got = hosts.map((h) => route6(nat, tcp6(h, 40000, WAN6, 80, SYN), BR, T0).v);
  assert.deepEqual(got, [NAT_ACCEPT, NAT_ACCEPT, NAT_DROP_NO_PORT]);
  assert.equal(nat.counters.noPort, 1);

  // echo ids clash the same way
  route6(nat, echo6(RED6, WAN6, 128, 0x77), BR, T0);
  const e = route6(nat, echo6(BLUE6, WAN6, 128, 0x77), BR, T0);
  assert.notEqual(echoId6(e.p), 0x77);
  assertChecksums6(e.p.buf, e.p.off, 'remapped echo');
  const er = route6(nat, echo6(WAN6, EXT6, 129, echoId6(e.p)), UP, T0 + 1);
  assert.equal(dst6(er.p), BLUE);
  assert.equal(echoId6(er.p), 0x77);
  assertChecksums6(er.p.buf, er.p.off, 'echo reply to blue');
});

test('published port: [ext]:8000 -> [red]:8000 keeping the client address; the reply leaves from [ext]:8000', () => {
  const nat = lab6Engine();
  expect6(nat, P.DNAT_SYN_WAN, UP, T0, P.DNAT_SYN_IN, BR);
  expect6(nat, P.DNAT_SYNACK_RED, BR, T0 + 1, P.DNAT_SYNACK_OUT, UP);
  const [f] = nat.list(T0 + 1);
  assert.deepEqual(f.flags, ['SEEN_REPLY', 'DNAT']);
  assert.equal(f.reply, `src=${RED} dst=${WAN} sport=8000 dport=51000`);

  // UDP too
  expect6(nat, P.PUB_UDP_WAN, UP, T0, P.PUB_UDP_IN, BR);
  // an unpublished port of the external address is tapbridge's own: not tracked
  const local = new Pkt(tcp6(WAN6, 51000, EXT6, 22, SYN));
  assert.equal(nat.prerouting(local.buf, local.off, local.len, false, UP, T0), NAT_ACCEPT);
  assert.equal(nat.curFlow, -1);
  assert.equal(nat.counters.dnat, 2);
  assert.deepEqual(
    nat.listForwards().map((x) => [x.proto, x.externalPort, x.internalPort, x.internalIp.join('.')]),
    [[6, 8000, 8000, RED6.join('.')], [17, 8000, 8000, RED6.join('.')]],
  );
});

test('hairpin: blue -> [ext]:8000 becomes [gw]:45000 -> [red]:8000 and the reply goes back to blue from [ext]:8000', () => {
  const nat = lab6Engine();
  expect6(nat, P.HP_SYN_BLUE, BR, T0, P.HP_SYN_RED, BR);
  expect6(nat, P.HP_SYNACK_RED, BR, T0 + 1, P.HP_SYNACK_BLUE, BR);
  assert.deepEqual(nat.list(T0 + 1)[0].flags, ['SEEN_REPLY', 'SNAT', 'DNAT', 'HAIRPIN']);
  assert.equal(nat.counters.hairpin, 1);
  // partial checksums through the hairpin too
  const p = route6(nat, makePartial6(tcp6(BLUE6, 45000, EXT6, 8000, ACK)), BR, T0 + 2, true);
  assert.equal(src6(p.p), GW);
  assert.equal(dst6(p.p), RED);
  assertPartial6(p.p.buf, p.p.off, 'hairpin partial');
});

test('packet too big from beyond wan about a masqueraded flow: outer destination, quote, both checksums', () => {
  const nat = lab6Engine();
  route6(nat, P.SYN_RED, BR, T0);
  const e = expect6(nat, P.PTB_FAR, UP, T0 + 1, P.PTB_IN, BR);
  assertChecksums6(e.buf, e.off + 48, 'quoted TCP');
  assert.equal(nat.counters.icmpRelated, 1);
  assert.equal(nat.list(T0 + 1)[0].packetsReply, 0, 'errors are not replies');
  // a quote of 48 bytes: the quoted TCP checksum is not there, the rest is translated
  expect6(nat, P.PTB_CUT_FAR, UP, T0 + 2, P.PTB_CUT_IN, BR);
});

test('port unreachable from red about a published UDP flow leaves as [ext] quoting what wan sent', () => {
  const nat = lab6Engine();
  expect6(nat, P.PUB_UDP_WAN, UP, T0, P.PUB_UDP_IN, BR);
  const e = expect6(nat, P.UNREACH_RED, BR, T0 + 1, P.UNREACH_OUT, UP);
  assertChecksums6(e.buf, e.off + 48, 'quoted UDP');
});

test('time exceeded about a masqueraded echo: the quoted echo id and its pseudo-header checksum are put back', () => {
  const nat = lab6Engine();
  route6(nat, echo6(RED6, WAN6, 128, 0x77), BR, T0); // takes id 0x77 towards wan
  const b = route6(nat, P.PING_BLUE, BR, T0);
  const mapped = echoId6(b.p);
  assert.notEqual(mapped, 0x77);
  // the far router's error quotes the echo as it left (hop limit 1 by then), with the mapped id
  const quoted = b.p.bytes();
  quoted[7] = 1;
  const err = icmp6Err(FAR6, EXT6, 3, 0, 0, quoted);
  expect6(nat, err, UP, T0 + 1, P.TE_IN_PING, BR);
  // and the error of the fixture, for an echo that kept its id
  const nat2 = lab6Engine();
  route6(nat2, P.PING_BLUE, BR, T0);
  expect6(nat2, P.TE_FAR_PING, UP, T0 + 1, P.TE_IN_PING, BR);
});

test('an error tapbridge generates about a translated packet quotes it as its sender sent it, to that sender', () => {
  const nat = lab6Engine();
  const p = new Pkt(P.DNAT_SYN_WAN);
  assert.equal(nat.prerouting(p.buf, p.off, p.len, false, UP, T0), NAT_ACCEPT);
  assert.equal(toHex(p.bytes()), toHex(P.DNAT_SYN_IN));
  // hop limit exceeded at the router: the error quotes the packet as the router has it (DNATed)
  const e = new Pkt(new Uint8Array(200), 0);
  const n = emitIcmpv6Error(e.buf, e.off, GW6, 3, 0, 0, p.buf, p.off, p.len);
  const err = new Pkt(e.bytes().slice(0, n));
  nat.translateLocalError(err.buf, err.off, err.len, nat.packetState);
  assert.equal(toHex(err.bytes()), toHex(P.LOCAL_TE_OUT));
  assert.equal(nat.counters.localErrorsTranslated, 1);
  err.assertPadIntact();
  nat.releasePending();
  assert.equal(nat.size, 0);

  // a reply-direction packet of a masqueraded flow with a partial checksum: addresses and ports go back
  route6(nat, P.SYN_RED, BR, T0);
  const r = makePartial6(P.SYNACK_WAN);
  const q = new Pkt(r);
  nat.prerouting(q.buf, q.off, q.len, true, UP, T0);
  assert.equal(dst6(q), RED);
  const e2 = new Pkt(icmp6Err(GW6, RED6, 1, 3, 0, q.bytes()));
  nat.translateLocalError(e2.buf, e2.off, e2.len, nat.packetState);
  assert.equal(dst6(e2), WAN, 'to the sender');
  const quoted = e2.bytes().slice(48);
  assert.equal(toHex(quoted.slice(0, 56)), toHex(r.slice(0, 56)), 'addresses and ports as sent');
  assertChecksums6(e2.buf, e2.off, 'outer');
  // an IPv4 packet is not this engine's: untouched
  const v4 = new Pkt(Uint8Array.of(0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8));
  nat.translateLocalError(v4.buf, v4.off, v4.len, nat.packetState);
  assert.equal(toHex(v4.bytes()), '4500001400000000400100000102030405060708');
  nat.releasePending();
  assert.equal(nat.size, 1);
});

test('no inside address leaks: untracked packets from a masqueraded source out of the uplink are dropped', () => {
  const nat = lab6Engine();
  assert.equal(route6(nat, P.UNKNOWN_INFO_RED, BR, T0).v, NAT_DROP_UNTRACKED);
  assert.equal(route6(nat, P.STRAY_ERR_RED, BR, T0).v, NAT_DROP_UNTRACKED, 'an error about no flow');
  assert.equal(nat.counters.untrackedLeak, 2);
  // from outside, an error about no flow is untracked and passes as it is
  const stray = icmp6Err(WAN6, EXT6, 1, 4, 0, udp6(EXT6, 1111, WAN6, 53));
  const a = route6(nat, stray, UP, T0);
  assert.equal(a.v, NAT_ACCEPT);
  assert.equal(toHex(a.p.bytes()), toHex(stray));
  // an uplink without an IPv6 address: masqueraded sources cannot leave at all
  const none = lab6Engine({ ifAddr6: [GW6, null] });
  assert.equal(route6(none, P.SYN_RED, BR, T0).v, NAT_DROP_UNTRACKED);
  assert.equal(none.size, 0);
  assert.equal(none.addressCount, 2, 'gateway and red (published); the refused flow released wan');
});

test('routed prefixes are tracked without NAT: no SNAT, replies pass, no leak drop', () => {
  const nat = lab6Engine({ routed6: [{ net: ip6('2001:db8:100::80'), prefixLen: 121 }] });
  const pub = ip6('2001:db8:100::81');
  const a = route6(nat, tcp6(pub, 1234, WAN6, 80, SYN), BR, T0);
  assert.equal(a.v, NAT_ACCEPT);
  assert.equal(src6(a.p), '2001:db8:100::81');
  assertChecksums6(a.p.buf, a.p.off);
  const r = route6(nat, tcp6(WAN6, 80, pub, 1234, SYN | ACK), UP, T0 + 1);
  assert.equal(r.v, NAT_ACCEPT);
  assert.equal(dst6(r.p), '2001:db8:100::81');
  assert.deepEqual(nat.list(T0 + 1)[0].flags, ['SEEN_REPLY']);
  assert.equal(route6(nat, icmp6Err(pub, WAN6, 1, 4, 0, udp6(WAN6, 53, pub, 9)), BR, T0).v, NAT_ACCEPT);
  assert.ok(!nat.isMasqSource(pub));
  assert.ok(nat.isMasqSource(RED6));
});

test('NDP is never tracked or translated', () => {
  const nat = lab6Engine();
  for (const [name, bytes, inIf, outIf] of [
    ['NS', P.NDP_NS, BR, BR],
    ['NA', P.NDP_NA, BR, BR],
    ['RS', P.NDP_RS, BR, BR],
    ['NS unicast', P.NDP_NS_UNICAST, BR, BR],
    ['NS from wan', P.NDP_NS_UPLINK, UP, UP],
  ] as const) {
    const p = new Pkt(bytes);
    assert.equal(nat.prerouting(p.buf, p.off, p.len, false, inIf, T0), NAT_ACCEPT, name);
    assert.equal(nat.curFlow, -1, name);
    assert.equal(nat.describeLast(), 'untracked');
    assert.equal(nat.postrouting(p.buf, p.off, p.len, false, outIf, T0), NAT_ACCEPT, name);
    assert.equal(toHex(p.bytes()), toHex(bytes), `${name} untouched`);
    p.assertPadIntact();
  }
  assert.equal(nat.size, 0);
  assert.equal(nat.counters.untracked, 5);
  assert.equal(nat.addressCount, PINNED, 'nothing interned');
});

test('extension headers are walked to the upper layer; a broken chain is dropped', () => {
  const nat = lab6Engine();
  expect6(nat, P.EXT_SYN_RED, BR, T0, P.EXT_SYN_OUT, UP);
  const [f] = nat.list(T0);
  assert.equal(f.original, `src=${RED} dst=${WAN} sport=41000 dport=443`);
  // nine destination options headers (more than the walk allows), and a truncated TCP header
  let nine: Uint8Array = new Uint8Array(0);
  for (let i = 0; i < 9; i++) nine = concat(nine, Uint8Array.of(i === 8 ? 6 : 60, 0, 1, 4, 0, 0, 0, 0));
  const bad = concat(P.SYN_RED.slice(0, 40), concat(nine, P.SYN_RED.slice(40)));
  bad[6] = 60;
  bad[5] = bad.length - 40;
  assert.equal(route6(nat, bad, BR, T0).v, NAT_DROP_MALFORMED);
  const cut = P.SYN_RED.slice(0, 50);
  cut[5] = 10;
  assert.equal(route6(nat, cut, BR, T0).v, NAT_DROP_MALFORMED);
  assert.equal(nat.counters.malformed, 2);
});

test('fragments: the first is tracked by its ports, later ones follow by (src, dst, id); orphans are dropped', () => {
  const nat = lab6Engine();
  const a = route6(nat, P.FRAG1_RED, BR, T0);
  assert.equal(a.v, NAT_ACCEPT);
  assert.equal(toHex(a.p.bytes()), toHex(P.FRAG1_OUT), 'first fragment: source and UDP checksum');
  const b = route6(nat, P.FRAG2_RED, BR, T0);
  assert.equal(b.v, NAT_ACCEPT);
  assert.equal(toHex(b.p.bytes()), toHex(P.FRAG2_OUT), 'later fragment: the source only');
  assert.equal(nat.counters.fragTranslated, 1);
  // reassembled as wan would, the datagram's checksum holds
  const whole = concat(concat(a.p.bytes().slice(0, 40), a.p.bytes().slice(48)), b.p.bytes().slice(48));
  whole[6] = 17;
  whole[4] = 0;
  whole[5] = whole.length - 40;
  assertChecksums6(whole, 0, 'reassembled UDP');
  assert.equal(nat.list(T0)[0].packetsOrig, 2);

  assert.equal(route6(nat, P.FRAG2_ORPHAN, BR, T0).v, NAT_DROP_FRAGMENT);
  assert.equal(nat.counters.fragDropped, 1);
  assert.equal(nat.describeLast(), 'dropped: nat6_fragment_untracked');
});

test('partial checksums (virtio NEEDS_CSUM) of a TSO6 super-frame are updated as a sum', () => {
  const nat = lab6Engine();
  const payload = Uint8Array.from({ length: 8000 }, (_, i) => (i * 13) & 0xff);
  const frame = makePartial6(concat(P.TSO_RED_HEAD, payload));
  const a = route6(nat, frame, BR, T0, true);
  assert.equal(a.v, NAT_ACCEPT);
  assert.equal(src6(a.p), EXT);
  assertPartial6(a.p.buf, a.p.off, 'TSO6 out');
  completePartial6(a.p.buf, a.p.off);
  assert.equal(toHex(a.p.bytes()), toHex(concat(P.TSO_OUT_HEAD, payload)), 'once the "hardware" sums it, what scapy computes');

  // the kernel's GSO form leaves the length out of the pseudo header: still only the address changes it
  const gso = makePartial6(tcp6(BLUE6, 40000, WAN6, 80, ACK, payload), 0);
  const b = route6(nat, gso, BR, T0, true);
  assert.notEqual(sport6(b.p), 40000, 'a new port: ports are data to a partial checksum');
  assertPartial6(b.p.buf, b.p.off, 'GSO out', 0);
  // the reply direction
  const r = route6(nat, makePartial6(tcp6(WAN6, 80, EXT6, sport6(b.p), ACK, payload)), UP, T0 + 1, true);
  assert.equal(dst6(r.p), BLUE);
  assert.equal(dport6(r.p), 40000);
  assertPartial6(r.p.buf, r.p.off, 'partial reply');
});

test('UDP over IPv6 never gets a zero checksum', () => {
  const nat = lab6Engine();
  assert.equal(expect6(nat, P.UDPZ_RED, BR, T0, P.UDPZ_OUT).u16(PAD + 46), 0xffff);
  // many remapped ports: never 0 either
  for (let i = 0; i < 200; i++) {
    const h = ip6(`2001:db8:100::${(0x100 + i).toString(16)}`);
    const r = route6(nat, udp6(h, 7777, WAN6, 9, Uint8Array.of(i, i >> 8)), BR, T0);
    assert.notEqual(r.p.u16(r.p.off + 46), 0);
    assertChecksums6(r.p.buf, r.p.off, `UDP ${i}`);
  }
});

test('expiry on the timer wheel releases the flows and their addresses', () => {
  const nat = lab6Engine();
  route6(nat, P.UDP_RED, BR, T0);
  route6(nat, udp6(BLUE6, 1, ip6('2001:db8:113::77'), 2), BR, T0);
  assert.equal(nat.size, 2);
  assert.equal(nat.addressCount, PINNED + 3);
  nat.tick(T0 + 29 * S);
  assert.equal(nat.size, 2);
  nat.tick(T0 + 31 * S);
  assert.equal(nat.size, 0);
  assert.equal(nat.counters.expired, 2);
  assert.equal(nat.addressCount, PINNED, 'only the engine\'s own addresses are left');
  // an expired flow met by a packet before the tick is replaced
  route6(nat, P.UDP_RED, BR, T0 + 40 * S);
  expect6(nat, P.UDP_RED, BR, T0 + 80 * S, P.UDP_OUT);
  assert.equal(nat.size, 1);
  assert.equal(nat.counters.expired, 3);
  nat.flush();
  assert.equal(nat.addressCount, PINNED);
});

test('a full table early-drops the oldest unreplied flow, else refuses; TCP invalid without a flow', () => {
  const nat = lab6Engine({ maxFlows: 4 });
  const hosts = [4, 5, 6, 7, 8].map((i) => ip6(`2001:db8:100::${i}`));
  const out = (i: number, t: number) => route6(nat, udp6(hosts[i], 1000 + i, WAN6, 53), BR, t).v;
  for (let i = 0; i < 4; i++) assert.equal(out(i, T0 + i), NAT_ACCEPT);
  assert.equal(out(4, T0 + 5), NAT_ACCEPT);
  assert.equal(nat.counters.earlyDropped, 1);
  assert.equal(nat.find(17, hosts[0], WAN6, 1000, 53), -1, 'the oldest went');
  assert.equal(nat.size, 4);
  assert.equal(nat.addressCount, PINNED + 5, 'wan and four hosts');
  // all replied (assured): nothing to drop
  for (let i = 1; i < 5; i++) assert.equal(dst6(route6(nat, udp6(WAN6, 53, EXT6, 1000 + i, 'a'), UP, T0 + 6).p), `2001:db8:100::${i + 4}`);
  assert.equal(out(0, T0 + 7), NAT_DROP_TABLE_FULL);
  assert.equal(nat.counters.refusedFull, 1);
  assert.equal(nat.addressCount, PINNED + 5, 'the refused flow holds nothing');
  assert.equal(route6(nat, tcp6(RED6, 1, WAN6, 2, RST), BR, T0).v, NAT_DROP_TCP_INVALID);
  assert.equal(nat.describeLast(), 'dropped: nat6_tcp_invalid');
});

test('shares: per ingress port and per source address', () => {
  const nat = lab6Engine({ maxFlowsPerSource: 2, maxFlowsPerPort: 3 });
  const r = (src: Uint32Array, sport: number, port: number) => {
    nat.ingressPort = port;
    return route6(nat, udp6(src, sport, WAN6, 53), BR, T0).v;
  };
  assert.equal(r(RED6, 1, 0), NAT_ACCEPT);
  assert.equal(r(RED6, 2, 0), NAT_ACCEPT);
  assert.equal(r(RED6, 3, 0), NAT_DROP_SOURCE_LIMIT);
  assert.equal(r(BLUE6, 1, 0), NAT_ACCEPT);
  assert.equal(r(ip6('2001:db8:100::9'), 1, 0), NAT_DROP_PORT_LIMIT);
  assert.equal(r(ip6('2001:db8:100::9'), 1, 1), NAT_ACCEPT, 'another port has its own share');
  assert.equal(nat.counters.refusedSourceLimit, 1);
  assert.equal(nat.counters.refusedPortLimit, 1);
  assert.equal(nat.size, 4);
});

test('a dry run (trace) rewrites like the real thing but leaves no flow, address or count behind', () => {
  const nat = lab6Engine();
  route6(nat, P.UDP_RED, BR, T0); // one real flow
  const before = { size: nat.size, addrs: nat.addressCount, list: JSON.stringify(nat.list(T0)) };
  nat.readOnly = true;
  expect6(nat, P.SYN_RED, BR, T0, P.SYN_OUT);
  const d = route6(nat, tcp6(ip6('2001:db8:100::42'), 4242, ip6('2001:db8:113::42'), 80, SYN), BR, T0);
  assert.equal(src6(d.p), EXT, 'addresses nobody holds: scratch ids');
  assert.equal(dst6(d.p), '2001:db8:113::42');
  assertChecksums6(d.p.buf, d.p.off);
  expect6(nat, P.UDP_RED, BR, T0 + 5 * S, P.UDP_OUT); // a hit: not refreshed, not counted
  assert.equal(route6(nat, P.PUB_UDP_WAN, UP, T0).p.bytes().length, P.PUB_UDP_IN.length);
  nat.releasePending(false);
  nat.readOnly = false;
  assert.equal(nat.size, before.size);
  assert.equal(nat.addressCount, before.addrs);
  assert.equal(JSON.stringify(nat.list(T0)), before.list);
  // the real SYN afterwards gets the same treatment and the first free id
  expect6(nat, P.SYN_RED, BR, T0, P.SYN_OUT);
  assert.equal(nat.list(T0)[1].id, 1);
});

test('describeLast and pending flows (released by the next packet or endBatch)', () => {
  const nat = lab6Engine();
  const p = new Pkt(P.SYN_RED);
  nat.prerouting(p.buf, p.off, p.len, false, BR, T0);
  assert.match(nat.describeLast(), /^new flow #0/);
  assert.equal(nat.addressCount, PINNED + 1, 'a pending flow holds its addresses');
  nat.releasePending();
  assert.equal(nat.counters.abandoned, 1);
  assert.equal(nat.addressCount, PINNED, 'and releases them');
  const q = new Pkt(P.SYN_RED);
  nat.prerouting(q.buf, q.off, q.len, false, BR, T0);
  nat.postrouting(q.buf, q.off, q.len, false, UP, T0);
  const r = new Pkt(P.SYNACK_WAN);
  nat.prerouting(r.buf, r.off, r.len, false, UP, T0);
  assert.equal(nat.describeLast(), 'flow #0, reply direction, SYN_RECV');
  const s = new Pkt(tcp6(BLUE6, 9, WAN6, 9, SYN));
  nat.prerouting(s.buf, s.off, s.len, false, BR, T0); // r's postrouting never came: nothing pending from it
  assert.equal(nat.counters.abandoned, 1);
  nat.prerouting(q.buf, q.off, q.len, false, BR, T0); // s never reached postrouting
  assert.equal(nat.counters.abandoned, 2);
  // traffic to the gateway itself is not tracked
  const g = new Pkt(echo6(RED6, GW6, 128, 1));
  assert.equal(nat.prerouting(g.buf, g.off, g.len, false, BR, T0), NAT_ACCEPT);
  assert.equal(nat.pending, -1);
});

test('config is checked; published ranges pin their internal address until removed', () => {
  assert.throws(() => lab6Engine({ maxFlows: 0 }), /nat.maxFlows/);
  assert.throws(() => lab6Engine({ ifAddr6: [GW6, new Uint32Array(3)] }), /nat6.ifAddr6\[1\]/);
  assert.throws(() => lab6Engine({ masqueradeSources6: [{ net: GW6, prefixLen: 129 }] }), /masqueradeSources6\[0\].prefixLen/);
  assert.throws(() => lab6Engine({ uplinkIf: 2 }), /nat.uplinkIf/);
  const nat = lab6Engine();
  assert.throws(() => nat.addForward({ proto: 6, externalPort: 8000, externalPortEnd: 8000, internalIp: BLUE6, internalPort: 1 }), /already published/);
  assert.equal(nat.addressCount, PINNED, 'a refused forward pins nothing');
  nat.addForward({ proto: 6, externalPort: 9000, externalPortEnd: 9001, internalIp: BLUE6, internalPort: 90 });
  assert.equal(nat.addressCount, PINNED + 1);
  const a = route6(nat, tcp6(WAN6, 5, EXT6, 9001, SYN), UP, T0);
  assert.equal(dst6(a.p), BLUE);
  assert.equal(dport6(a.p), 91);
  assert.ok(nat.removeForward(6, 9000));
  assert.equal(nat.addressCount, PINNED + 2, 'blue is still held by its flow (with wan)');
  nat.flush();
  assert.equal(nat.addressCount, PINNED);
  assert.ok(!nat.removeForward(6, 9000));
  assert.ok(nat.memoryBytes > 0);
});

test('the address table stays bounded under churn (every flow releases what it holds)', () => {
  const nat = lab6Engine({ maxFlows: 64 });
  let t = T0;
  for (let i = 0; i < 2000; i++) {
    const h = ip6(`2001:db8:100::${(i % 500 + 16).toString(16)}`);
    const w = ip6(`2001:db8:113::${(i % 700 + 16).toString(16)}`);
    route6(nat, udp6(h, 1000 + (i % 7), w, 53), BR, (t += 10));
    if (i % 100 === 99) nat.tick(t);
  }
  assert.ok(nat.size <= 64);
  assert.ok(nat.addressCount <= PINNED + 2 * 64, `${nat.addressCount} addresses`);
  nat.tick(t + 60 * S);
  assert.equal(nat.size, 0);
  assert.equal(nat.addressCount, PINNED);
});

test('IPv4 is not NAT66: a v4 packet is malformed to the v6 engine', () => {
  const nat = new NatEngine6({ uplinkIf: -1, ifAddr6: [GW6], masqueradeSources6: [], maxFlows: 8 });
  const v4 = new Pkt(Uint8Array.of(0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8));
  assert.equal(nat.prerouting(v4.buf, v4.off, v4.len, false, 0, T0), NAT_DROP_MALFORMED);
  // without an uplink a flow is only tracked
  const a = route6(nat, tcp6(RED6, 1, BLUE6, 2, SYN), BR, T0);
  assert.equal(a.v, NAT_ACCEPT);
  assert.equal(toHex(a.p.bytes()), toHex(tcp6(RED6, 1, BLUE6, 2, SYN)));
  assert.equal(upper(a.p.buf, a.p.off)[0], 6);
  assert.deepEqual(nat.list(T0)[0].flags, ['UNREPLIED']);
});

/* ---------------------------------------------------------- the nat6/* elements */

/** Records what reaches it: [input, slot offset, length]. */
class Sink extends Element {
  readonly kind = 'Sink';
  got: [number, number, number][] = [];
  push(input: number, off: number, len: number): void {
    this.got.push([input, off, len]);
  }
}

function elementLab() {
  const arena = new Arena(0, 16);
  let now = T0;
  const ctx: DataPlaneContext = { arena, u8: arena.u8, clock: makeClock(() => now), tracer: new Tracer() };
  const ifaces = new InterfaceTable();
  const brRec = new PortRecord('gw-br0', 'internal', 'gw-br0', 0x02005e100001, false, 'br0');
  const upRec = new PortRecord('uplink', 'uplink', 'eth0', 0x02005e100002, false, null);
  ifaces.add({ name: 'br0', kind: 'bridge', address: 0x0a640001, prefixLen: 24, mac: brRec.mac, mtu: 1500 }, brRec);
  ifaces.add({ name: 'uplink', kind: 'uplink', address: 0xcb007102, prefixLen: 24, mac: upRec.mac, mtu: 1500 }, upRec);
  const nat = lab6Engine();
  const pre = new NatPrerouting6('nat6/pre', ctx, { nat, ifaces });
  const post = new NatPostrouting6('nat6/post', ctx, { nat, ifaces });
  const local = new NatLocalOut6('nat6/local', ctx, nat);
  const sink = new Sink('sink', ctx, ['br0', 'uplink'], []);
  for (const el of [pre, post, local]) el.out.forEach((l, i) => ((l.to = sink), (l.toInput = i)));
  /** A frame (Ethernet + the packet) in a pool slot, entered through interface inIf from port `port`. */
  const frame = (bytes: Uint8Array, inIf: number, port = inIf, partial = false): [number, number] => {
    const slot = arena.alloc();
    arena.u8.fill(0xa5, slot, slot + VNET_HDR_LEN + 14 + bytes.length + 32);
    arena.u8.fill(0, slot, slot + VNET_HDR_LEN);
    if (partial) arena.u8[slot + VNET_FLAGS] = VNET_F_NEEDS_CSUM;
    arena.u8.set(Uint8Array.of(2, 0, 0x5e, 0x10, 0, 1, 2, 0x42, 10, 0x64, 0, 2, 0x86, 0xdd), slot + VNET_HDR_LEN);
    arena.u8.set(bytes, slot + VNET_HDR_LEN + 14);
    arena.anno.begin(slot, inIf);
    arena.anno.port[slotOf(slot)] = port;
    return [slot, 14 + bytes.length];
  };
  const ipOf = (slot: number, len: number) => arena.u8.slice(slot + VNET_HDR_LEN + 14, slot + VNET_HDR_LEN + len);
  return { arena, ctx, ifaces, brRec, upRec, nat, pre, post, local, sink, frame, ipOf, at: (t: number) => (now = t) };
}

test('nat6/pre and nat6/post: anno.flow between them, one input/output per interface, drops on the ingress record', () => {
  const L = elementLab();
  assert.deepEqual([L.pre.kind, L.post.kind, L.local.kind], ['NatPrerouting6', 'NatPostrouting6', 'NatLocalOut6']);
  assert.equal(new NatLocalOut('nat/local', L.ctx, labEngine()).kind, 'NatLocalOut');
  assert.deepEqual(L.pre.inputs, ['br0', 'uplink']);
  assert.deepEqual(L.post.outputs, ['br0', 'uplink']);
  const [slot, len] = L.frame(P.SYN_RED, BR);
  L.pre.push(BR, slot, len);
  assert.deepEqual(L.sink.got.pop(), [BR, slot, len]);
  assert.ok(L.arena.anno.flow[slotOf(slot)] >= 0, 'the packet state for nat6/post');
  L.post.push(UP, slot, len);
  assert.deepEqual(L.sink.got.pop(), [UP, slot, len]);
  assert.equal(toHex(L.ipOf(slot, len)), toHex(P.SYN_OUT));
  assert.equal(L.arena.u8[slot + VNET_HDR_LEN + len], 0xa5, 'nothing written past the frame');
  assert.equal(L.nat.size, 1);

  // a leak: counted on the ingress interface's record under nat6_untracked_leak
  const [s2, l2] = L.frame(P.UNKNOWN_INFO_RED, BR);
  L.pre.push(BR, s2, l2);
  L.sink.got.pop();
  L.post.push(UP, s2, l2);
  assert.equal(L.sink.got.length, 0, 'dropped');
  assert.equal(L.brRec.counters[DROP_BASE + DROP_NAT6_UNTRACKED], 1);
  assert.equal(dropName(DROP_NAT6_UNTRACKED), 'nat6_untracked_leak');
  // the per-port share reads anno.port
  L.nat.ingressPort = -1;
  const [s3, l3] = L.frame(P.FRAG2_ORPHAN, UP, 7);
  L.pre.push(UP, s3, l3);
  assert.equal(L.upRec.counters[DROP_BASE + DROP_NAT6_FRAGMENT], 1);
  assert.equal(L.nat.ingressPort, 7);
  // a pending flow is released at the end of the batch
  const [s4, l4] = L.frame(udp6(BLUE6, 1, WAN6, 2), BR);
  L.pre.push(BR, s4, l4);
  assert.ok(L.nat.pending >= 0);
  L.pre.endBatch();
  assert.equal(L.nat.pending, -1);
  // expiry on the tick
  L.pre.tick(T0 + 200 * S);
  assert.equal(L.nat.size, 0);
});

test('nat6/pre notes what it did in a trace (RFC 5952 text); nat6/post with a partial checksum frame', () => {
  const L = elementLab();
  L.ctx.tracer.begin();
  const [slot, len] = L.frame(P.SYN_RED, BR);
  L.pre.push(BR, slot, len);
  L.post.push(UP, slot, len);
  L.ctx.tracer.end();
  assert.deepEqual(L.ctx.tracer.steps.map((s) => s.stage), ['nat6/pre', 'nat6/post']);
  assert.match(L.ctx.tracer.steps[0].decision, /^no rewrite; new flow #0/);
  assert.equal(L.ctx.tracer.steps[1].decision, `rewrote tcp [${RED}]:40000 -> [${WAN}]:80  =>  tcp [${EXT}]:40000 -> [${WAN}]:80`);
  L.nat.flush();
  const [s2, l2] = L.frame(makePartial6(tcp6(RED6, 5, WAN6, 6, SYN)), BR, BR, true);
  L.pre.push(BR, s2, l2);
  L.post.push(UP, s2, l2);
  const out = new Pkt(L.ipOf(s2, l2));
  assertPartial6(out.buf, out.off, 'partial through the elements');
});

test('nat6/local translates errors about translated packets (anno.related); nat/local leaves IPv6 alone', () => {
  const L = elementLab();
  const [slot, len] = L.frame(P.DNAT_SYN_WAN, UP);
  L.pre.push(UP, slot, len);
  const related = L.arena.anno.flow[slotOf(slot)];
  // the router's hop-limit error about it, built in another pool slot
  const err = L.arena.alloc();
  L.arena.u8.fill(0, err, err + VNET_HDR_LEN + 14);
  const n = emitIcmpv6Error(L.arena.u8, err + VNET_HDR_LEN + 14, GW6, 3, 0, 0, L.arena.u8, slot + VNET_HDR_LEN + 14, len - 14);
  L.arena.anno.begin(err, -1);
  L.arena.anno.related[slotOf(err)] = related;
  const v4local = new NatLocalOut('nat/local', L.ctx, labEngine());
  v4local.out[0].to = L.sink;
  v4local.push(0, err, 14 + n);
  assert.equal(toHex(L.ipOf(err, 14 + n)).slice(0, 16), toHex(P.LOCAL_TE_OUT).slice(0, 16));
  assert.notEqual(toHex(L.ipOf(err, 14 + n)), toHex(P.LOCAL_TE_OUT), 'the IPv4 element did not touch it');
  L.local.push(0, err, 14 + n);
  assert.deepEqual(L.sink.got.pop(), [0, err, 14 + n]);
  assert.equal(toHex(L.ipOf(err, 14 + n)), toHex(P.LOCAL_TE_OUT));
  assert.equal(L.nat.counters.localErrorsTranslated, 1);
});
