// DNS: the wire view (names, compression, EDNS, TTLs), parse/emit round trips on real
// (scapy-built) messages, the reply writer and TCP framing; then the resolver: local
// A/AAAA/PTR, NXDOMAIN/NODATA, forwarding with id remapping, cache hit/expiry and negative
// caching, timeouts -> SERVFAIL, truncation at 512 bytes. Replies are also read back with
// scapy's DNS() parser (/usr/bin/python3) when it is installed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { hex } from '../helpers/frames.js';
import {
  DNS_FLAG_AA, DNS_FLAG_QR, DNS_FLAG_RA, DNS_FLAG_RD, DNS_FLAG_TC, DNS_RCODE_FORMERR, DNS_RCODE_NOTIMP,
  DNS_RCODE_NXDOMAIN, DNS_RCODE_SERVFAIL, DNS_TYPE_A, DNS_TYPE_MX, DNS_TYPE_OPT, DNS_TYPE_PTR,
  DNS_TYPE_SOA, DNS_UDP_LIMIT, DnsNameReader, DnsReplyWriter, DnsTcpReader, DnsView, dnsA, dnsAaaa, dnsPtr,
  dnsTcpFrameLength, emitDns, encodeName, parseDns, parseReverseName4, parseReverseName6, reverseName4,
  reverseName6, soaRdata, writeDnsTcpPrefix, type DnsMessage,
} from '../../src/wire/dns.js';
import { DROP_DNS_BAD_NAME, DROP_DNS_BAD_OPT, DROP_DNS_BAD_POINTER, DROP_DNS_TOO_SHORT, DROP_DNS_TRUNCATED } from '../../src/wire/drop.js';
import { DROP_DNS_NOT_QUERY, DROP_DNS_UNEXPECTED_REPLY } from '../../src/core/drops.js';
import { DNS_DROP, DNS_FORWARD, DNS_NONE, DNS_REPLY, DnsResolver, type DnsResolverConfig } from '../../src/services/dns-resolver.js';

const filled = (n: number): Uint8Array => new Uint8Array(n).fill(0xa5);
const RED = 0x0a640002;
const RED6 = hex('20010db8010000000000000000000002'); // 2001:db8:100::2

// dig-style query: red.tapbridge.internal A, RD + AD, EDNS0 UDP size 1232 (no DO).
const Q_RED_EDNS = hex(
  '123401200001000000000001037265640974617062726964676508696e7465726e616c000001000100002904d0000000' +
    '000000',
);
// Bare single-label query: red AAAA, RD, no EDNS.
const Q_RED_BARE_AAAA = hex('1234010000010000000000000372656400001c0001');
// example.com A, id 0xabcd, RD (the wire-l3l4 frame's payload).
const Q_EXAMPLE = hex('abcd01000001000000000000076578616d706c6503636f6d0000010001');
// 2.0.100.10.in-addr.arpa PTR, id 0x0bad.
const Q_PTR = hex('0bad01000001000000000000013201300331303002313007696e2d61646472046172706100000c0001');
// Upstream answer (compressed, id 0x7777): example.com A 93.184.216.34 TTL 300, .35 TTL 120.
const A_EXAMPLE = hex(
  '777781800001000200000000076578616d706c6503636f6d0000010001c00c000100010000012c00045db8d822c00c00' +
    '0100010000007800045db8d823',
);
// Upstream NXDOMAIN for nope.example.com with the zone's SOA (TTL 3600, MINIMUM 300);
// owner and rname compressed (rname points into mname).
const A_NX = hex(
  '777781830001000000010000046e6f7065076578616d706c6503636f6d0000010001c0110006000100000e10002c026e' +
    '73056963616e6e036f726700036e6f6303646e73c03178a502e500001c2000000e10001275000000012c',
);
// nope.example.com A, id 0x4444.
const Q_NX = hex('444401000001000000000000046e6f7065076578616d706c6503636f6d0000010001');
// Upstream answer with 40 A records for big.example.com (673 bytes, TTL 60).
const A_BIG = hex(
  '77778180000100280000000003626967076578616d706c6503636f6d0000010001c00c000100010000003c0004c63364' +
    '01c00c000100010000003c0004c6336402c00c000100010000003c0004c6336403c00c000100010000003c0004c63364' +
    '04c00c000100010000003c0004c6336405c00c000100010000003c0004c6336406c00c000100010000003c0004c63364' +
    '07c00c000100010000003c0004c6336408c00c000100010000003c0004c6336409c00c000100010000003c0004c63364' +
    '0ac00c000100010000003c0004c633640bc00c000100010000003c0004c633640cc00c000100010000003c0004c63364' +
    '0dc00c000100010000003c0004c633640ec00c000100010000003c0004c633640fc00c000100010000003c0004c63364' +
    '10c00c000100010000003c0004c6336411c00c000100010000003c0004c6336412c00c000100010000003c0004c63364' +
    '13c00c000100010000003c0004c6336414c00c000100010000003c0004c6336415c00c000100010000003c0004c63364' +
    '16c00c000100010000003c0004c6336417c00c000100010000003c0004c6336418c00c000100010000003c0004c63364' +
    '19c00c000100010000003c0004c633641ac00c000100010000003c0004c633641bc00c000100010000003c0004c63364' +
    '1cc00c000100010000003c0004c633641dc00c000100010000003c0004c633641ec00c000100010000003c0004c63364' +
    '1fc00c000100010000003c0004c6336420c00c000100010000003c0004c6336421c00c000100010000003c0004c63364' +
    '22c00c000100010000003c0004c6336423c00c000100010000003c0004c6336424c00c000100010000003c0004c63364' +
    '25c00c000100010000003c0004c6336426c00c000100010000003c0004c6336427c00c000100010000003c0004c63364' +
    '28',
);
// big.example.com A, id 0x5555, no EDNS.
const Q_BIG = hex('55550100000100000000000003626967076578616d706c6503636f6d0000010001');

/** A message from a header (id, flags, counts) and body bytes. */
function msg(id: number, flags: number, counts: [number, number, number, number], body: number[]): Uint8Array {
  return Uint8Array.from([id >> 8, id & 0xff, flags >> 8, flags & 0xff, ...counts.flatMap((c) => [c >> 8, c & 0xff]), ...body]);
}

test('dns view: header, question and EDNS of a dig-style query', () => {
  const v = new DnsView().reset(Q_RED_EDNS, 0, Q_RED_EDNS.length);
  assert.equal(v.checkLen(), 0);
  assert.equal(v.id, 0x1234);
  assert.equal(v.flags, 0x0120);
  assert.ok(!v.qr && v.rd && !v.tc);
  assert.equal(v.opcode, 0);
  assert.equal(v.rcode, 0);
  assert.deepEqual([v.qdcount, v.ancount, v.nscount, v.arcount], [1, 0, 0, 1]);
  assert.equal(v.qtype, DNS_TYPE_A);
  assert.equal(v.qclass, 1);
  assert.equal(v.questionName(), 'red.tapbridge.internal');
  assert.equal(v.questionEnd, 12 + 24 + 4);
  assert.equal(v.additionalOff, v.questionEnd);
  assert.equal(v.optOff, v.questionEnd);
  assert.ok(v.optIsLast);
  assert.equal(v.ednsUdpSize, 1232);
  assert.equal(v.ednsVersion, 0);
  assert.ok(!v.ednsDo);
  assert.equal(v.end, Q_RED_EDNS.length);
  assert.equal(v.minAnswerTtl, -1);
  // reused for the next message: EDNS state is reset
  assert.equal(v.reset(Q_EXAMPLE, 0, Q_EXAMPLE.length).checkLen(), 0);
  assert.equal(v.ednsUdpSize, 0);
  assert.equal(v.optOff, -1);
  assert.equal(v.questionName(), 'example.com');
  v.id = 0xbeef;
  v.flags = DNS_FLAG_QR;
  assert.deepEqual(Array.from(Q_EXAMPLE.subarray(0, 4)), [0xbe, 0xef, 0x80, 0]);
  Q_EXAMPLE.set([0xab, 0xcd, 0x01, 0x00], 0);
  // an EDNS size below 512 counts as 512 (RFC 6891 6.2.3)
  const small = Q_RED_EDNS.slice();
  small[small.length - 8] = 0;
  small[small.length - 7] = 100;
  assert.equal(v.reset(small, 0, small.length).checkLen(), 0);
  assert.equal(v.ednsUdpSize, 512);
});

test('dns view: answer TTLs for caching, SOA negative TTL, TTL ageing', () => {
  const v = new DnsView().reset(A_EXAMPLE, 0, A_EXAMPLE.length);
  assert.equal(v.checkLen(), 0);
  assert.ok(v.qr);
  assert.equal(v.minAnswerTtl, 120);
  assert.equal(v.negativeTtl, -1);
  assert.equal(v.authorityOff, A_EXAMPLE.length);
  const aged = A_EXAMPLE.slice();
  v.reset(aged, 0, aged.length).checkLen();
  v.ageTtls(100);
  assert.deepEqual(parseDns(aged, 0, aged.length)!.answers.map((r) => r.ttl), [200, 20]);
  v.ageTtls(50);
  assert.deepEqual(parseDns(aged, 0, aged.length)!.answers.map((r) => r.ttl), [150, 0]);
  const nx = new DnsView().reset(A_NX, 0, A_NX.length);
  assert.equal(nx.checkLen(), 0);
  assert.equal(nx.rcode, DNS_RCODE_NXDOMAIN);
  assert.equal(nx.minAnswerTtl, -1);
  assert.equal(nx.negativeTtl, 300); // min(SOA TTL 3600, MINIMUM 300)
  const m = parseDns(A_NX, 0, A_NX.length)!;
  assert.deepEqual(m.authorities, [{
    name: 'example.com', type: DNS_TYPE_SOA, class: 1, ttl: 3600,
    data: soaRdata('ns.icann.org', 'noc.dns.icann.org', 2024080101, 7200, 3600, 1209600, 300),
  }]);
  // a TTL with the top bit set counts as 0 (RFC 2181 8)
  const top = A_EXAMPLE.slice();
  top[35] = 0x80;
  assert.equal(v.reset(top, 0, top.length).checkLen(), 0);
  assert.equal(v.minAnswerTtl, 0);
});

test('dns names: compression loops, forward pointers and bad labels are drop codes', () => {
  const v = new DnsView();
  const check = (b: Uint8Array): number => v.reset(b, 0, b.length).checkLen();
  const Q = [0, 1, 0, 1]; // type A, class IN
  assert.equal(check(msg(1, 0, [1, 0, 0, 0], [0xc0, 12, ...Q])), DROP_DNS_BAD_POINTER); // points at itself
  assert.equal(check(msg(1, 0, [1, 0, 0, 0], [1, 97, 0xc0, 12, ...Q])), DROP_DNS_BAD_POINTER); // a -> a -> ...
  assert.equal(check(msg(1, 0, [1, 0, 0, 0], [0xc0, 20, ...Q, 0, 0, 0, 0])), DROP_DNS_BAD_POINTER); // forward
  assert.equal(check(msg(1, 0, [1, 0, 0, 0], [0xc0, 2, ...Q])), DROP_DNS_BAD_POINTER); // into the header
  // two names pointing at each other: the second's pointer leads forward into the first, whose pointer leads back
  const pair = msg(1, 0x8000, [1, 1, 0, 0], [1, 97, 0xc0, 21, ...Q, 1, 98, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0, 0]);
  assert.equal(check(pair), DROP_DNS_BAD_POINTER);
  assert.equal(check(msg(1, 0, [1, 0, 0, 0], [0x41, 97, 0, ...Q])), DROP_DNS_BAD_NAME); // extended label type
  assert.equal(check(msg(1, 0, [1, 0, 0, 0], [0x80, 97, 0, ...Q])), DROP_DNS_BAD_NAME);
  const long = Array.from({ length: 5 }, () => [63, ...new Array(63).fill(120)]).flat();
  assert.equal(check(msg(1, 0, [1, 0, 0, 0], [...long, 0, ...Q])), DROP_DNS_BAD_NAME); // 321 bytes > 255
  const max = [...long.slice(0, 3 * 64), 61, ...new Array(61).fill(120)]; // 253 + root: 254 bytes
  assert.equal(check(msg(1, 0, [1, 0, 0, 0], [...max, 0, ...Q])), 0);
  assert.equal(v.questionName().length, 253);
  // a chain of pointers, each to the one before it (hidden in a record's rdata at 23), named
  // by the next record's owner: fine up to 127 hops, rejected beyond (bounded work per name)
  const chain = (k: number): Uint8Array => {
    const R = 23;
    const rdata = [0];
    for (let i = 0; i < k; i++) {
      const to = i === 0 ? R : R + 1 + 2 * (i - 1);
      rdata.push(0xc0 | (to >> 8), to & 0xff);
    }
    const last = R + 1 + 2 * (k - 1);
    const fixed = [0, 1, 0, 1, 0, 0, 0, 1];
    return msg(1, 0x8000, [0, 2, 0, 0], [0, ...fixed, rdata.length >> 8, rdata.length & 0xff, ...rdata, 0xc0 | (last >> 8), last & 0xff, ...fixed, 0, 0]);
  };
  assert.equal(check(chain(126)), 0); // 127 hops
  assert.equal(check(chain(127)), DROP_DNS_BAD_POINTER);
  // a name reader on its own: end of the name in place, uncompressed length
  const r = new DnsNameReader();
  assert.equal(r.read(A_EXAMPLE, 0, A_EXAMPLE.length, 29, true), 0);
  assert.deepEqual([r.end, r.wireLen, r.name], [31, 13, 'example.com']);
  const esc = msg(1, 0, [1, 0, 0, 0], [3, 0x61, 0x2e, 0x00, 2, 0x42, 0x5c, 0, ...Q]);
  assert.equal(r.read(esc, 0, esc.length, 12, true), 0);
  assert.equal(r.name, 'a\\.\\000.B\\\\');
  assert.deepEqual(encodeName(r.name), esc.subarray(12, 20));
});

test('dns view: truncated and random input never throws; codes by cause', () => {
  const v = new DnsView();
  for (let len = 0; len < 12; len++) assert.equal(v.reset(A_EXAMPLE, 0, len).checkLen(), DROP_DNS_TOO_SHORT);
  const codes = new Set<number>();
  for (let len = 12; len < A_EXAMPLE.length; len++) {
    const e = v.reset(A_EXAMPLE, 0, len).checkLen();
    assert.ok(e === DROP_DNS_BAD_NAME || e === DROP_DNS_TRUNCATED, `len ${len}: ${e}`);
    codes.add(e);
  }
  assert.equal(codes.size, 2);
  assert.equal(parseDns(A_EXAMPLE, 0, 40), null);
  // OPT in the answer section, or twice, or with a name
  const opt = [0, 0, DNS_TYPE_OPT, 4, 0xd0, 0, 0, 0, 0, 0, 0];
  assert.equal(v.reset(msg(1, 0, [0, 1, 0, 0], opt), 0, 23).checkLen(), DROP_DNS_BAD_OPT);
  assert.equal(v.reset(msg(1, 0, [0, 0, 0, 2], [...opt, ...opt]), 0, 34).checkLen(), DROP_DNS_BAD_OPT);
  assert.equal(v.reset(msg(1, 0, [0, 0, 0, 1], [1, 97, ...opt]), 0, 25).checkLen(), DROP_DNS_BAD_OPT);
  let seed = 5;
  const buf = new Uint8Array(200);
  for (let i = 0; i < 5000; i++) {
    for (let j = 0; j < buf.length; j++) buf[j] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
    buf.set([0, 1, 0, 0, 0, 0, 0, 1], 2); // small counts so that some pass
    buf[5] = seed & 3;
    const len = seed % 201;
    if (v.reset(buf, 0, len).checkLen() === 0) {
      assert.ok(v.end <= len && v.questionEnd <= v.end);
      parseDns(buf, 0, len); // may be null (names in rdata), must not throw
    }
  }
});

test('dns parse/emit: real messages round-trip into 0xa5 buffers', () => {
  for (const m of [Q_RED_EDNS, Q_EXAMPLE, Q_PTR, A_EXAMPLE, A_BIG]) {
    const f = parseDns(m, 0, m.length)!;
    const b = filled(m.length + 10);
    assert.equal(emitDns(f, b, 4), m.length);
    assert.deepEqual(b.subarray(4, 4 + m.length), m);
    assert.deepEqual(b.subarray(0, 4), filled(4));
    assert.deepEqual(b.subarray(4 + m.length), filled(6));
  }
  // rdata names come back uncompressed: same message, other bytes
  const nx = parseDns(A_NX, 0, A_NX.length)!;
  const b = filled(200);
  const n = emitDns(nx, b, 0);
  assert.equal(n, A_NX.length + 9); // 'icann.org' spelled out in the SOA's rname
  assert.deepEqual(parseDns(b, 0, n), nx);
  const q = parseDns(Q_PTR, 0, Q_PTR.length)!;
  assert.deepEqual(q.questions, [{ name: '2.0.100.10.in-addr.arpa', type: DNS_TYPE_PTR, class: 1 }]);
  assert.throws(() => emitDns(nx, new Uint8Array(50), 0), RangeError);
  assert.throws(() => encodeName('a..b'), /label length 0/);
  assert.throws(() => encodeName('x'.repeat(64)), /label length 64/);
  assert.deepEqual(encodeName(''), Uint8Array.of(0));
  assert.deepEqual(encodeName('example.com.'), A_EXAMPLE.subarray(12, 25));
});

test('dns reverse names, record helpers', () => {
  assert.equal(reverseName4(RED), '2.0.100.10.in-addr.arpa');
  assert.equal(parseReverseName4('2.0.100.10.in-addr.arpa'), RED);
  assert.equal(parseReverseName4('0.100.10.in-addr.arpa'), -1);
  assert.equal(parseReverseName4('02.0.100.10.in-addr.arpa'), -1);
  assert.equal(parseReverseName4('256.0.100.10.in-addr.arpa'), -1);
  const r6 = reverseName6(RED6);
  assert.equal(r6, '2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.8.b.d.0.1.0.0.2.ip6.arpa');
  assert.deepEqual(parseReverseName6(r6), RED6);
  assert.equal(parseReverseName6('2.0.ip6.arpa'), null);
  assert.deepEqual(dnsA('x', 5, RED).data, hex('0a640002'));
  assert.deepEqual(dnsAaaa('x', 5, RED6).data, RED6);
  assert.deepEqual(dnsPtr('x', 5, 'red.tapbridge.internal').data, encodeName('red.tapbridge.internal'));
});

test('dns reply writer: answers point at the question; TC when over the limit', () => {
  const q = new DnsView().reset(Q_EXAMPLE, 0, Q_EXAMPLE.length);
  q.checkLen();
  const w = new DnsReplyWriter();
  const out = filled(600);
  w.begin(q, out, 3, DNS_UDP_LIMIT, DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA, 0);
  w.rr(0, null, DNS_TYPE_A, 300, 0x5db8d822);
  w.rr(0, null, DNS_TYPE_A, 120, 0x5db8d823);
  const n = w.finish();
  const expect = A_EXAMPLE.slice();
  expect.set([0xab, 0xcd], 0);
  assert.deepEqual(out.subarray(3, 3 + n), expect);
  assert.deepEqual(out.subarray(0, 3), filled(3));
  assert.deepEqual(out.subarray(3 + n), filled(600 - 3 - n));
  // 40 records do not fit in 512: header + question with TC, and the OPT kept for EDNS
  w.begin(q, out, 0, DNS_UDP_LIMIT, DNS_FLAG_QR, 1232);
  for (let i = 0; i < 40; i++) w.rr(0, null, DNS_TYPE_A, 60, i);
  assert.ok(w.truncated);
  const t = w.finish();
  const v = new DnsView().reset(out, 0, t);
  assert.equal(v.checkLen(), 0);
  assert.ok(v.tc);
  assert.deepEqual([v.qdcount, v.ancount, v.nscount, v.arcount], [1, 0, 0, 1]);
  assert.equal(v.ednsUdpSize, 1232);
  assert.equal(t, Q_EXAMPLE.length + 11);
});

test('dns tcp framing: length prefix, reassembly across segments', () => {
  const b = filled(100);
  writeDnsTcpPrefix(b, 0, Q_EXAMPLE.length);
  b.set(Q_EXAMPLE, 2);
  assert.equal(dnsTcpFrameLength(b, 0, 2 + Q_EXAMPLE.length), Q_EXAMPLE.length);
  assert.equal(dnsTcpFrameLength(b, 0, 1 + Q_EXAMPLE.length), -1);
  assert.equal(dnsTcpFrameLength(b, 0, 1), -1);
  // two messages in a stream cut at odd places
  const stream = new Uint8Array(4 + Q_EXAMPLE.length + A_BIG.length);
  writeDnsTcpPrefix(stream, 0, Q_EXAMPLE.length);
  stream.set(Q_EXAMPLE, 2);
  writeDnsTcpPrefix(stream, 2 + Q_EXAMPLE.length, A_BIG.length);
  stream.set(A_BIG, 4 + Q_EXAMPLE.length);
  const r = new DnsTcpReader();
  const got: Uint8Array[] = [];
  for (const [from, to] of [[0, 1], [1, 20], [20, 33], [33, 500], [500, stream.length]]) {
    assert.equal(r.push(stream, from, to - from), to - from);
    while (r.next()) got.push(r.buf.slice(r.msgOff, r.msgOff + r.msgLen));
  }
  assert.deepEqual(got, [Q_EXAMPLE, A_BIG]);
  assert.equal(r.buffered, 0);
  // bounded: a reader takes only what fits
  const small = new DnsTcpReader(10);
  assert.equal(small.buf.length, 65537);
  assert.equal(small.push(new Uint8Array(70000), 0, 70000), 65537);
});

// ---- the resolver ----

type Peer = { port: number };
const CFG: DnsResolverConfig = { domain: 'tapbridge.internal', localNetworks: [{ addr: 0x0a640000, prefixLen: 24 }] };

function resolver(cfg: Partial<DnsResolverConfig> = {}): DnsResolver<Peer> {
  let next = 0x1000;
  const r = new DnsResolver<Peer>({ ...CFG, randomId: () => next++, ...cfg });
  assert.ok(r.setHost('red', [RED], [RED6]));
  assert.ok(r.setHost('blue.tapbridge.internal.', [0x0a640003]));
  return r;
}

/** A query from bytes with another id / flags. */
function withId(q: Uint8Array, id: number): Uint8Array {
  const c = q.slice();
  c[0] = id >> 8;
  c[1] = id & 0xff;
  return c;
}

const out = new Uint8Array(2048);
const replies: Uint8Array[] = []; // read back with scapy at the end

function reply(r: DnsResolver<Peer>, q: Uint8Array, now = 0, peer: Peer = { port: 1 }, tcp = false): DnsMessage {
  const res = r.handleQuery(q, 0, q.length, peer, now, out, 0, tcp);
  assert.equal(res.action, DNS_REPLY);
  assert.equal(res.peer, peer);
  const b = out.slice(0, res.len);
  replies.push(b);
  return parseDns(b, 0, b.length)!;
}

test('dns resolver: local A/AAAA/PTR answers, NXDOMAIN and NODATA with the zone SOA', () => {
  const r = resolver();
  const a = reply(r, Q_RED_EDNS);
  assert.equal(a.id, 0x1234);
  assert.equal(a.flags, DNS_FLAG_QR | DNS_FLAG_AA | DNS_FLAG_RD | DNS_FLAG_RA);
  assert.deepEqual(a.answers, [dnsA('red.tapbridge.internal', 10, RED)]);
  assert.deepEqual(a.additionals.map((x) => [x.type, x.class]), [[DNS_TYPE_OPT, 1232]]);
  const aaaa = reply(r, Q_RED_BARE_AAAA);
  assert.deepEqual(aaaa.answers, [dnsAaaa('red', 10, RED6)]);
  assert.deepEqual(aaaa.additionals, []);
  const ptr = reply(r, Q_PTR);
  assert.deepEqual(ptr.answers, [dnsPtr('2.0.100.10.in-addr.arpa', 10, 'red.tapbridge.internal')]);
  const q6 = emitQuery(0x66, reverseName6(RED6), DNS_TYPE_PTR);
  assert.deepEqual(reply(r, q6).answers[0].data, encodeName('red.tapbridge.internal'));
  const nx = reply(r, emitQuery(0x77, 'nobody.tapbridge.internal', DNS_TYPE_A));
  assert.equal(nx.flags & 0xf, DNS_RCODE_NXDOMAIN);
  assert.ok((nx.flags & DNS_FLAG_AA) !== 0);
  assert.deepEqual(nx.authorities.map((x) => [x.name, x.type, x.ttl]), [['tapbridge.internal', DNS_TYPE_SOA, 10]]);
  const nodata = reply(r, emitQuery(0x78, 'blue.tapbridge.internal', DNS_TYPE_MX));
  assert.equal(nodata.flags & 0xf, 0);
  assert.deepEqual(nodata.answers, []);
  assert.equal(nodata.authorities.length, 1);
  const ptrNx = reply(r, emitQuery(0x79, '99.0.100.10.in-addr.arpa', DNS_TYPE_PTR)); // a local network
  assert.equal(ptrNx.flags & 0xf, DNS_RCODE_NXDOMAIN);
  assert.deepEqual(r.counters, { ...r.counters, localAnswers: 7, localNxdomain: 2, localNodata: 1, forwarded: 0 });
  // host table: replace, remove, refuse odd names
  assert.ok(r.setHost('RED', [0x0a640009]));
  assert.deepEqual(reply(r, Q_RED_EDNS).answers[0].data, hex('0a640009'));
  assert.equal(reply(r, Q_PTR).flags & 0xf, DNS_RCODE_NXDOMAIN); // old reverse entry gone
  assert.ok(r.removeHost('red.tapbridge.internal'));
  assert.equal(reply(r, Q_RED_EDNS).flags & 0xf, DNS_RCODE_NXDOMAIN);
  assert.ok(!r.setHost('bad name', [1]));
  assert.ok(!r.setHost('-x', [1]));
  assert.deepEqual(r.hosts().map((h) => h.name), ['blue.tapbridge.internal']);
  // more local addresses than 512 bytes hold: TC
  r.setHost('many', Array.from({ length: 40 }, (_, i) => 0x0a640100 + i));
  const many = reply(r, emitQuery(0x80, 'many.tapbridge.internal', DNS_TYPE_A));
  assert.ok((many.flags & DNS_FLAG_TC) !== 0);
  assert.equal(many.answers.length, 0);
  assert.equal(reply(r, emitQuery(0x80, 'many.tapbridge.internal', DNS_TYPE_A), 0, { port: 1 }, true).answers.length, 40);
});

function emitQuery(id: number, name: string, type: number): Uint8Array {
  const b = new Uint8Array(300);
  return b.slice(0, emitDns({ id, flags: DNS_FLAG_RD, questions: [{ name, type, class: 1 }], answers: [], authorities: [], additionals: [] }, b, 0));
}

/** Forward q from peer; returns the upstream query bytes. */
function forward(r: DnsResolver<Peer>, q: Uint8Array, peer: Peer, now = 0): Uint8Array {
  const res = r.handleQuery(q, 0, q.length, peer, now, out, 0);
  assert.equal(res.action, DNS_FORWARD);
  return out.slice(0, res.len);
}

/** The upstream's answer `a`, given the id of the upstream query `u`. */
function upstream(r: DnsResolver<Peer>, a: Uint8Array, u: Uint8Array, now = 0): { action: number; peer?: Peer; msg?: Uint8Array; drop: number } {
  const ans = a.slice();
  ans.set(u.subarray(0, 2), 0);
  const res = r.handleUpstream(ans, 0, ans.length, now, out, 0);
  return { action: res.action, peer: res.peer, drop: res.drop, msg: res.action === DNS_REPLY ? out.slice(0, res.len) : undefined };
}

test('dns resolver: forwarding remaps ids so concurrent clients with the same id do not clash', () => {
  const r = resolver();
  const p1 = { port: 1001 };
  const p2 = { port: 1002 };
  const u1 = forward(r, Q_EXAMPLE, p1);
  const u2 = forward(r, Q_NX, p2);
  const u3 = forward(r, withId(Q_NX, 0xabcd), { port: 1003 }); // same id as p1's query
  assert.deepEqual(u1.subarray(2), Q_EXAMPLE.subarray(2));
  assert.deepEqual([u1, u2, u3].map((u) => (u[0] << 8) | u[1]), [0x1000, 0x1001, 0x1002]);
  assert.equal(r.inFlight, 3);
  // answers come back in any order, each to its own client with its own id
  const b2 = upstream(r, A_NX, u2);
  assert.equal(b2.peer, p2);
  assert.deepEqual(Array.from(b2.msg!.subarray(0, 2)), [0x44, 0x44]);
  assert.deepEqual(b2.msg!.subarray(2), A_NX.subarray(2));
  const b1 = upstream(r, A_EXAMPLE, u1);
  assert.equal(b1.peer, p1);
  assert.deepEqual(b1.msg, withId(A_EXAMPLE, 0xabcd));
  replies.push(b1.msg!);
  // the same answer again, an answer for the wrong question, a query sent back: unexpected
  assert.equal(upstream(r, A_EXAMPLE, u1).drop, DROP_DNS_UNEXPECTED_REPLY);
  assert.equal(upstream(r, A_EXAMPLE, u3).drop, DROP_DNS_UNEXPECTED_REPLY);
  assert.equal(upstream(r, Q_NX, u3).drop, DROP_DNS_UNEXPECTED_REPLY);
  assert.equal(r.inFlight, 1);
  assert.equal(upstream(r, A_NX, u3).peer!.port, 1003);
  assert.equal(r.drops.dns_unexpected_reply, 3);
  // ids in flight are not reused
  const same = resolver({ randomId: () => 7 });
  const s1 = forward(same, Q_EXAMPLE, p1);
  const s2 = forward(same, Q_NX, p2);
  assert.deepEqual([s1[1], s2[1]], [7, 8]);
});

test('dns resolver: cache hit, TTL ageing and expiry; negative caching with a cap', () => {
  const r = resolver({ negativeTtlCapS: 60 });
  upstream(r, A_EXAMPLE, forward(r, Q_EXAMPLE, { port: 1 }), 1000);
  assert.equal(r.cacheEntries, 1);
  // another client, another id, 100 s later: from the cache, TTLs aged, no upstream query
  const hit = reply(r, withId(Q_EXAMPLE, 0x2222), 101_000, { port: 2 });
  assert.equal(hit.id, 0x2222);
  assert.equal(hit.flags, DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA);
  assert.deepEqual(hit.answers.map((a) => [a.ttl, Array.from(a.data)]), [[200, [93, 184, 216, 34]], [20, [93, 184, 216, 35]]]);
  assert.equal(r.counters.cacheHits, 1);
  assert.equal(r.counters.forwarded, 1);
  // a client with EDNS gets our OPT on a cached answer
  const edns = withId(Q_EXAMPLE, 0x2223);
  const withOpt = new Uint8Array([...edns, 0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);
  withOpt[11] = 1;
  assert.deepEqual(reply(r, withOpt, 101_000).additionals.map((x) => [x.type, x.class]), [[DNS_TYPE_OPT, 1232]]);
  // the cache key is case-insensitive; the reply keeps the client's spelling
  const upper = Q_EXAMPLE.slice();
  upper.set([0x45, 0x58], 13); // "EXample"
  assert.equal(reply(r, upper, 101_000).answers[0].name, 'EXample.com');
  // the entry lives min(answer TTLs) = 120 s
  forward(r, Q_EXAMPLE, { port: 3 }, 121_000);
  assert.equal(r.counters.cacheExpired, 1);
  // NXDOMAIN: cached for min(SOA TTL, MINIMUM, cap) = 60 s
  upstream(r, A_NX, forward(r, Q_NX, { port: 4 }, 0), 0);
  assert.equal(r.counters.cacheNegativeStored, 1);
  const neg = reply(r, withId(Q_NX, 0x3333), 59_000);
  assert.equal(neg.flags & 0xf, DNS_RCODE_NXDOMAIN);
  assert.equal(neg.authorities[0].ttl, 3600 - 59);
  forward(r, Q_NX, { port: 5 }, 60_000);
  // no SOA: not cached (RFC 2308 5); SERVFAIL: not cached
  const noSoa = msg(0, 0x8183, [1, 0, 0, 0], Array.from(Q_BIG.subarray(12)));
  upstream(r, noSoa, forward(r, Q_BIG, { port: 6 }));
  const sf = msg(0, 0x8182, [1, 0, 0, 0], Array.from(Q_BIG.subarray(12)));
  upstream(r, sf, forward(r, Q_BIG, { port: 6 }));
  forward(r, Q_BIG, { port: 7 });
  assert.equal(r.cacheEntries, 0); // example.com and nope.example.com expired, nothing new
  r.flushCache();
  assert.equal(r.cacheEntries, 0);
  assert.equal(r.cacheBytes, 0);
});

test('dns resolver: cache bounded by entries and bytes (least recently used first)', () => {
  const r = resolver({ cacheMaxEntries: 2 });
  const names = ['a.example.com', 'b.example.com', 'c.example.com'];
  const fill = (name: string, id: number): void => {
    const q = emitQuery(id, name, DNS_TYPE_A);
    const a = new Uint8Array(300);
    const n = emitDns({ ...parseDns(q, 0, q.length)!, flags: 0x8180, answers: [dnsA(name, 300, 1)] }, a, 0);
    upstream(r, a.slice(0, n), forward(r, q, { port: id }));
  };
  fill(names[0], 1);
  fill(names[1], 2);
  reply(r, emitQuery(9, names[0], DNS_TYPE_A)); // a is now the most recently used
  fill(names[2], 3);
  assert.equal(r.cacheEntries, 2);
  assert.equal(r.counters.cacheEvicted, 1);
  reply(r, emitQuery(9, names[0], DNS_TYPE_A));
  forward(r, emitQuery(9, names[1], DNS_TYPE_A), { port: 9 }); // b was evicted
  const small = resolver({ cacheMaxBytes: 250 });
  upstream(small, A_EXAMPLE, forward(small, Q_EXAMPLE, { port: 1 }));
  upstream(small, A_BIG, forward(small, Q_BIG, { port: 1 })); // 661 body bytes > 250: not cached
  assert.equal(small.cacheEntries, 1);
  assert.ok(small.cacheBytes <= 250);
});

test('dns resolver: upstream timeout -> SERVFAIL; in-flight bound', () => {
  const r = resolver({ queryTimeoutMs: 2000, maxInFlight: 2 });
  const p1 = { port: 1 };
  const u1 = forward(r, Q_EXAMPLE, p1, 0);
  forward(r, Q_NX, { port: 2 }, 500);
  const full = r.handleQuery(Q_BIG, 0, Q_BIG.length, { port: 3 }, 600, out, 0);
  assert.equal(full.action, DNS_REPLY);
  assert.equal(parseDns(out, 0, full.len)!.flags & 0xf, DNS_RCODE_SERVFAIL);
  assert.equal(r.counters.inFlightFull, 1);
  assert.equal(r.expire(1999, out, 0).action, DNS_NONE);
  const t = r.expire(2000, out, 0);
  assert.equal(t.action, DNS_REPLY);
  assert.equal(t.peer, p1);
  const sf = parseDns(out, 0, t.len)!;
  replies.push(out.slice(0, t.len));
  assert.equal(sf.id, 0xabcd);
  assert.equal(sf.flags, DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA | DNS_RCODE_SERVFAIL);
  assert.deepEqual(sf.questions, [{ name: 'example.com', type: DNS_TYPE_A, class: 1 }]);
  assert.equal(r.expire(2000, out, 0).action, DNS_NONE);
  assert.equal(r.expire(2500, out, 0).peer!.port, 2);
  assert.equal(r.inFlight, 0);
  assert.equal(r.counters.timeouts, 2);
  assert.equal(upstream(r, A_EXAMPLE, u1).drop, DROP_DNS_UNEXPECTED_REPLY); // too late
});

test('dns resolver: answers over 512 bytes are truncated for clients without EDNS', () => {
  const r = resolver();
  const b = upstream(r, A_BIG, forward(r, Q_BIG, { port: 1 }));
  const v = new DnsView().reset(b.msg!, 0, b.msg!.length);
  assert.equal(v.checkLen(), 0);
  assert.ok(v.tc);
  assert.equal(v.id, 0x5555);
  assert.deepEqual([v.qdcount, v.ancount, v.nscount, v.arcount], [1, 0, 0, 0]);
  assert.equal(b.msg!.length, Q_BIG.length);
  assert.ok(b.msg!.length <= DNS_UDP_LIMIT);
  replies.push(b.msg!);
  assert.equal(r.counters.truncated, 1);
  // from the cache: truncated over UDP, whole over TCP, whole with EDNS 1232
  assert.ok((reply(r, Q_BIG).flags & DNS_FLAG_TC) !== 0);
  assert.equal(reply(r, Q_BIG, 0, { port: 1 }, true).answers.length, 40);
  const edns = new Uint8Array([...Q_BIG, 0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
  edns[11] = 1;
  const big = reply(r, edns);
  assert.equal(big.answers.length, 40);
  assert.equal(big.flags & DNS_FLAG_TC, 0);
});

test('dns resolver: malformed and unsupported queries', () => {
  const r = resolver();
  const res = r.handleQuery(Q_EXAMPLE, 0, 20, { port: 1 }, 0, out, 0);
  assert.equal(res.action, DNS_DROP);
  assert.equal(res.drop, DROP_DNS_BAD_NAME);
  assert.equal(r.handleQuery(A_EXAMPLE, 0, A_EXAMPLE.length, { port: 1 }, 0, out, 0).drop, DROP_DNS_NOT_QUERY);
  assert.equal(r.handleQuery(Q_EXAMPLE, 0, 5, { port: 1 }, 0, out, 0).drop, DROP_DNS_TOO_SHORT);
  const status = Q_EXAMPLE.slice();
  status[2] = 0x10; // opcode 2 (STATUS)
  assert.equal(reply(r, status).flags & 0xf, DNS_RCODE_NOTIMP);
  const two = msg(9, 0x0100, [2, 0, 0, 0], [...Q_EXAMPLE.subarray(12), ...Q_EXAMPLE.subarray(12)]);
  const fe = reply(r, two);
  assert.equal(fe.flags & 0xf, DNS_RCODE_FORMERR);
  assert.equal(fe.questions.length, 2);
  assert.deepEqual(r.drops, { dns_bad_name: 1, dns_not_query: 1, dns_too_short: 1 });
  assert.equal(r.counters.dropped, 3);
  assert.throws(() => new DnsResolver({ domain: 'bad domain' }), /domain/);
  assert.throws(() => new DnsResolver({ domain: 'x', udpPayloadSize: 100 }), /udpPayloadSize/);
});

const SCAPY_READ = `
import sys, json
from scapy.layers.dns import DNS
def rr(r):
    d = r.rdata
    return [r.rrname.decode(), r.type, r.ttl, d.decode() if isinstance(d, bytes) else str(d)]
def sec(s, n):
    return [rr(s[i]) for i in range(n)] if s else []
out = []
for h in json.load(sys.stdin):
    m = DNS(bytes.fromhex(h))
    out.append({'id': m.id, 'qr': m.qr, 'aa': m.aa, 'tc': m.tc, 'rcode': m.rcode,
                'qd': [m.qd.qname.decode(), m.qd.qtype] if m.qdcount else None,
                'an': sec(m.an, m.ancount), 'ns': [[m.ns[i].rrname.decode(), m.ns[i].type] for i in range(m.nscount)] if m.ns else []})
print(json.dumps(out))
`;

test('dns replies read back by scapy', { skip: !existsSync('/usr/bin/python3') && 'no /usr/bin/python3' }, (t) => {
  let parsed: { id: number; qr: number; aa: number; tc: number; rcode: number; qd: [string, number]; an: [string, number, number, string][]; ns: [string, number][] }[];
  try {
    parsed = JSON.parse(execFileSync('/usr/bin/python3', ['-c', SCAPY_READ], { input: JSON.stringify(replies.map((b) => Buffer.from(b).toString('hex'))), timeout: 30_000 }).toString());
  } catch (e) {
    t.skip(`scapy not usable: ${(e as Error).message.split('\n')[0]}`);
    return;
  }
  assert.equal(parsed.length, replies.length);
  for (let i = 0; i < replies.length; i++) {
    const m = parseDns(replies[i], 0, replies[i].length)!;
    const s = parsed[i];
    assert.equal(s.id, m.id);
    assert.equal(s.qr, 1);
    assert.equal(s.rcode, m.flags & 0xf);
    assert.equal(s.tc, (m.flags & DNS_FLAG_TC) !== 0 ? 1 : 0);
    assert.equal(s.aa, (m.flags & DNS_FLAG_AA) !== 0 ? 1 : 0);
    assert.equal(s.an.length, m.answers.length);
    assert.equal(s.ns.length, m.authorities.length);
  }
  const flat = parsed.flatMap((p) => p.an.map((a) => a.join(' ')));
  assert.ok(flat.includes('red.tapbridge.internal. 1 10 10.100.0.2'));
  assert.ok(flat.includes('red. 28 10 2001:db8:100::2'));
  assert.ok(flat.includes('2.0.100.10.in-addr.arpa. 12 10 red.tapbridge.internal.'));
  assert.ok(flat.includes('example.com. 1 200 93.184.216.34'));
  assert.ok(parsed.some((p) => p.rcode === DNS_RCODE_NXDOMAIN && p.ns[0]?.[0] === 'tapbridge.internal.' && p.ns[0][1] === DNS_TYPE_SOA));
  assert.ok(parsed.some((p) => p.tc === 1 && p.qd[0] === 'big.example.com.' && p.an.length === 0));
  assert.ok(parsed.some((p) => p.rcode === DNS_RCODE_SERVFAIL && p.id === 0xabcd));
});

test('appendEdnsOpt: a query without additional records gets an OPT; one with them is left alone', async () => {
  const { appendEdnsOpt, DnsView: View, emitDns: emit } = await import('../../src/wire/dns.js');
  const b = new Uint8Array(64).fill(0xa5);
  const n = emit({ id: 1, flags: 0x0100, questions: [{ name: 'a.example', type: 1, class: 1 }], answers: [], authorities: [], additionals: [] }, b, 0);
  const m = appendEdnsOpt(b, 0, n, 1232);
  assert.equal(m, n + 11);
  const v = new View().reset(b, 0, m);
  assert.equal(v.checkLen(), 0);
  assert.equal(v.ednsUdpSize, 1232);
  assert.equal(appendEdnsOpt(b, 0, m, 1232), m, 'already has an additional record');
  assert.equal(appendEdnsOpt(b, 0, n + 11, 4096), n + 11);
  assert.equal(appendEdnsOpt(new Uint8Array(n), 0, n, 1232), n, 'no room');
});
