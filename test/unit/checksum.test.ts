// Checksums: sum16 against a naive reference, real packets, incremental (RFC 1624) and
// partial (NEEDS_CSUM) updates against full recomputation on randomized rewrites.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  completePartialChecksum, csumReplace16, csumReplace32, fillL4Checksum, finishChecksum, fold16,
  ipv4HeaderChecksum, l4Checksum, partialReplace16, partialReplace32, pseudoHeaderSum, sum16,
  udpCsumReplace16, udpCsumReplace32, verifyL4Checksum,
} from '../../src/wire/checksum.js';
import { readU16, readU32, writeU16, writeU32 } from '../../src/wire/bytes.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));

// IPv4 packets (Ethernet header stripped), checksums as computed by scapy.
const ICMP_ECHO = hex('450000544d2e40004001a7130a640002cb007101080022ff1c2b0001101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f4041424344454647');
const TCP_SYN = hex('4500003cbeef4000400635650a640002cb007101a8ca00509a3f0c1100000000a002faf015ae0000020405b40402080abb40e64d0000000001030307');
const UDP_DNS = hex('4500003912340000401133b10a640003c6336435cf0900350025805aabcd01000001000000000000076578616d706c6503636f6d0000010001');
const UDP_ODD = hex('4500001f0001000003115189c6336407cb00710903e807d0000bba766f6464'); // 3-byte payload
const IP_OPT_UDP = hex('460000210063000001110f990a6400020a64000394040000000500060009730478'); // IHL 6

// Deterministic PRNG (mulberry32) so failures replay.
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rnd = prng(12345);
const r16 = (): number => Math.floor(rnd() * 0x10000);
const r32 = (): number => Math.floor(rnd() * 0x100000000);

function refSum(b: Uint8Array, off: number, len: number): number {
  let s = 0;
  for (let i = 0; i < len; i += 2) s += (b[off + i] << 8) | (i + 1 < len ? b[off + i + 1] : 0);
  return s;
}
function refFold(s: number): number {
  while (s > 0xffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
  return s;
}

test('sum16 matches a naive word sum (odd lengths, offsets, initial values)', () => {
  const buf = new Uint8Array(3000);
  for (let i = 0; i < buf.length; i++) buf[i] = Math.floor(rnd() * 256);
  for (let n = 0; n < 500; n++) {
    const off = Math.floor(rnd() * 100);
    const len = n < 40 ? n : Math.floor(rnd() * 2800);
    const init = n % 3 === 0 ? 0 : r32();
    const s = sum16(buf, off, len, init);
    assert.ok(s >= 0 && s <= 0xffffffff && Number.isInteger(s));
    assert.equal(fold16(s), refFold(refSum(buf, off, len) + init), `off=${off} len=${len}`);
  }
  assert.equal(sum16(buf, 5, 0), 0);
  assert.equal(sum16(hex('ab'), 0, 1), 0xab00); // odd tail padded with zero
  // 64 KiB of 0xff stays exact
  assert.equal(fold16(sum16(new Uint8Array(65536).fill(0xff), 0, 65536)), 0xffff);
});

test('fold16 / finishChecksum edges', () => {
  assert.equal(fold16(0), 0);
  assert.equal(fold16(0xffff), 0xffff);
  assert.equal(fold16(0x10000), 1);
  assert.equal(fold16(0x1fffe), 0xffff);
  assert.equal(fold16(0xffffffff), 0xffff);
  assert.equal(fold16(2 ** 53 - 1), refFold(2 ** 53 - 1));
  for (let i = 0; i < 200; i++) {
    const s = Math.floor(rnd() * 2 ** 52);
    assert.equal(fold16(s), refFold(s));
  }
  assert.equal(finishChecksum(0), 0xffff);
  assert.equal(finishChecksum(0xffff), 0);
  // RFC 1071 section 3 example: 0001 f203 f4f5 f6f7 -> sum ddf2, checksum 220d
  const b = hex('0001f203f4f5f6f7');
  assert.equal(fold16(sum16(b, 0, 8)), 0xddf2);
  assert.equal(finishChecksum(sum16(b, 0, 8)), 0x220d);
});

test('ipv4HeaderChecksum ignores the stored field and matches real headers', () => {
  for (const [p, hl] of [[ICMP_ECHO, 20], [TCP_SYN, 20], [UDP_DNS, 20], [IP_OPT_UDP, 24]] as const) {
    const want = readU16(p, 10);
    const c = p.slice();
    writeU16(c, 10, 0xa5a5);
    assert.equal(ipv4HeaderChecksum(c, 0, hl), want);
    assert.equal(fold16(sum16(p, 0, hl)), 0xffff);
  }
  // at a non-zero offset
  const buf = new Uint8Array(64).fill(0xa5);
  buf.set(TCP_SYN.subarray(0, 20), 7);
  assert.equal(ipv4HeaderChecksum(buf, 7, 20), 0x3565);
});

test('l4Checksum / verifyL4Checksum on real TCP, UDP, ICMP packets', () => {
  const cases: [Uint8Array, number][] = [[ICMP_ECHO, 22], [TCP_SYN, 36], [UDP_DNS, 26], [UDP_ODD, 26], [IP_OPT_UDP, 30]];
  for (const [p, at] of cases) {
    const want = readU16(p, at);
    assert.equal(l4Checksum(p, 0), want);
    assert.ok(verifyL4Checksum(p, 0));
    const c = p.slice();
    writeU16(c, at, 0);
    assert.equal(fillL4Checksum(c, 0), want);
    assert.deepEqual(c, p);
    c[c.length - 1] ^= 0x10;
    assert.ok(!verifyL4Checksum(c, 0));
    // at an odd offset inside a larger buffer
    const big = new Uint8Array(p.length + 11).fill(0xa5);
    big.set(p, 5);
    assert.equal(l4Checksum(big, 5), want);
  }
  const noCsum = UDP_DNS.slice();
  writeU16(noCsum, 26, 0);
  assert.ok(verifyL4Checksum(noCsum, 0), 'UDP checksum 0 = none');
  const gre = UDP_DNS.slice();
  gre[9] = 47;
  assert.equal(l4Checksum(gre, 0), -1);
  assert.equal(fillL4Checksum(gre, 0), -1);
  assert.ok(!verifyL4Checksum(gre, 0));
});

// Rewrite src/dst address and ports of a copy of p, updating the IP header checksum and the
// complete L4 checksum incrementally; the result must equal a full recomputation.
function rewriteComplete(p: Uint8Array, csumAt: number, udp: boolean): void {
  const q = p.slice();
  const r32f = udp ? udpCsumReplace32 : csumReplace32;
  const r16f = udp ? udpCsumReplace16 : csumReplace16;
  for (const at of [12, 16]) {
    const old = readU32(q, at);
    const nw = r32();
    writeU32(q, at, nw);
    writeU16(q, 10, csumReplace32(readU16(q, 10), old, nw));
    writeU16(q, csumAt, r32f(readU16(q, csumAt), old, nw));
  }
  for (const at of [20, 22]) {
    const old = readU16(q, at);
    const nw = r16();
    writeU16(q, at, nw);
    writeU16(q, csumAt, r16f(readU16(q, csumAt), old, nw));
  }
  assert.equal(readU16(q, 10), ipv4HeaderChecksum(q, 0, 20));
  assert.equal(readU16(q, csumAt), l4Checksum(q, 0));
  assert.ok(verifyL4Checksum(q, 0));
}

test('complete checksums: incremental equals full on randomized NAT rewrites', () => {
  for (let i = 0; i < 2000; i++) {
    rewriteComplete(TCP_SYN, 36, false);
    rewriteComplete(UDP_DNS, 26, true);
    rewriteComplete(UDP_ODD, 26, true);
  }
});

test('UDP: checksum 0 stays 0, a computed 0 becomes 0xffff', () => {
  assert.equal(udpCsumReplace16(0, 0x1234, 0x4321), 0);
  assert.equal(udpCsumReplace32(0, 0x0a640002, 0xcb007102), 0);
  // find the source port that makes the full UDP checksum come out as 0 (sent as 0xffff)
  const q = UDP_DNS.slice();
  const old = readU16(q, 20);
  writeU16(q, 20, 0);
  writeU16(q, 26, 0);
  const sumWithPort0 = fold16(sum16(q, 20, 37, pseudoHeaderSum(readU32(q, 12), readU32(q, 16), 17, 37)));
  const port = 0xffff - sumWithPort0; // makes the folded sum 0xffff
  writeU16(q, 20, port);
  assert.equal(l4Checksum(q, 0), 0xffff);
  assert.equal(udpCsumReplace16(readU16(UDP_DNS, 26), old, port), 0xffff);
  assert.equal(csumReplace16(readU16(UDP_DNS, 26), old, port), 0, 'plain RFC 1624 gives 0 here');
  // and from 0xffff onwards it keeps agreeing with a full computation
  writeU16(q, 26, 0xffff);
  assert.ok(verifyL4Checksum(q, 0));
  const nw = r16();
  writeU16(q, 26, udpCsumReplace16(0xffff, port, nw));
  writeU16(q, 20, nw);
  assert.equal(readU16(q, 26), l4Checksum(q, 0));
});

test('csumReplace: no-op replacement and 0xffff / 0 checks', () => {
  for (let i = 0; i < 1000; i++) {
    const c = r16() % 0xffff; // a computed complete checksum is never 0xffff
    const v = r16();
    assert.equal(csumReplace16(c, v, v), c);
    const w = r32();
    assert.equal(csumReplace32(c, w, w), c);
    const p = (r16() % 0xffff) + 1; // a folded non-zero sum is 1..0xffff
    assert.equal(partialReplace16(p, v, v), p);
    assert.equal(partialReplace32(p, w, w), p);
  }
  assert.equal(csumReplace16(0xffff, 0x1234, 0x1234), 0); // -0 becomes +0
  assert.equal(partialReplace16(0xffff, 0, 0), 0xffff);
});

// Partial form: the L4 checksum field holds fold(pseudo-header sum), uncomplemented.
function toPartial(q: Uint8Array, csumAt: number): void {
  const l4len = readU16(q, 2) - 20;
  writeU16(q, csumAt, fold16(pseudoHeaderSum(readU32(q, 12), readU32(q, 16), q[9], l4len)));
}

function rewritePartial(p: Uint8Array, csumAt: number): void {
  const q = p.slice();
  toPartial(q, csumAt);
  for (const at of [12, 16]) {
    const old = readU32(q, at);
    const nw = r32();
    writeU32(q, at, nw);
    writeU16(q, csumAt, partialReplace32(readU16(q, csumAt), old, nw));
  }
  // ports are data, not pseudo header: a partial checksum does not change for them
  writeU16(q, 20, r16());
  writeU16(q, 22, r16());
  // the updated field equals a fresh pseudo-header sum ...
  const fresh = q.slice();
  toPartial(fresh, csumAt);
  assert.equal(readU16(q, csumAt), readU16(fresh, csumAt));
  // ... and finishing it over the data gives the full checksum of the rewritten packet
  const full = l4Checksum(q, 0);
  const end = readU16(q, 2);
  const fin = finishChecksum(sum16(q, 20, end - 20));
  assert.equal(fin === 0 && q[9] === 17 ? 0xffff : fin, full);
  assert.equal(completePartialChecksum(q, 20, end, csumAt - 20), full);
  assert.ok(verifyL4Checksum(q, 0));
}

test('partial checksums: pseudo-header update then completion equals full checksum', () => {
  for (let i = 0; i < 2000; i++) {
    rewritePartial(TCP_SYN, 36);
    rewritePartial(UDP_DNS, 26);
    rewritePartial(UDP_ODD, 26);
  }
  // the 16-bit variant (e.g. a length change in the pseudo header)
  const q = UDP_DNS.slice();
  toPartial(q, 26);
  const before = readU16(q, 26);
  assert.equal(partialReplace16(before, 37, 41), fold16(pseudoHeaderSum(readU32(q, 12), readU32(q, 16), 17, 41)));
});
