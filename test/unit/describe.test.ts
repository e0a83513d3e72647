/*
 * describePacket / describeFrame (src/wire/describe.ts) on real frames: the IPv4 text is
 * pinned as it was before IPv6; IPv6 by the version nibble / ethertype 0x86dd, with NDP
 * named, extension headers listed, fragments, quoted packets of errors, and truncated or
 * malformed input that never reads past the bytes given.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeFrame, describePacket } from '../../src/wire/describe.js';
import { ICMP_ECHO, IPV6_FRAMES as V6, TCP_SYN, UDP_DNS, hex } from '../helpers/frames.js';

const ARP_REQ = hex('ffffffffffff02000a6400020806000108000604000102000a6400020a6400020000000000000a640001000000000000000000000000000000000000');

test('IPv4 and ARP text is unchanged', () => {
  assert.equal(describePacket(ICMP_ECHO, 14), 'icmp 10.100.0.2 -> 10.100.0.3 type 8 id 16962');
  assert.equal(describePacket(TCP_SYN, 14), 'tcp 10.100.0.2:40000 -> 203.0.113.1:80');
  assert.equal(describeFrame(UDP_DNS, 0, UDP_DNS.length), '02:00:0a:64:00:03 -> 02:00:0a:64:00:02, udp 10.100.0.3:5353 -> 10.100.0.2:53 ttl 64');
  assert.equal(describeFrame(TCP_SYN, 0, TCP_SYN.length), '02:00:0a:64:00:02 -> 02:00:0a:64:00:01, tcp 10.100.0.2:40000 -> 203.0.113.1:80 ttl 64');
  assert.equal(describeFrame(ARP_REQ, 0, ARP_REQ.length), '02:00:0a:64:00:02 -> ff:ff:ff:ff:ff:ff, ARP request for 10.100.0.1');
});

const packets: [keyof typeof V6, string][] = [
  ['ICMP6_ECHO', 'icmp6 2001:db8:100::2 -> 2001:db8:100::1 type 128 id 7'],
  ['NS', 'icmp6 fe80::2 -> ff02::1:ff00:1 neighbor solicitation for 2001:db8:100::1'],
  ['NA', 'icmp6 2001:db8:100::1 -> fe80::2 neighbor advertisement for 2001:db8:100::1 (router, solicited, override)'],
  ['TCP6_SYN', 'tcp [2001:db8:100::2]:40000 -> [2001:db8:113::1]:80'],
  ['UDP6_DNS', 'udp [2001:db8:100::3]:5353 -> [2001:db8:100::2]:53'],
  ['EXT_UDP', 'udp [2001:db8:100::2]:40002 -> [2001:db8:113::1]:9000 (hop-by-hop, destination options, routing type 4 segments left 0)'],
  ['FRAG_FIRST', 'udp [2001:db8:100::2]:40003 -> [2001:db8:113::1]:9000 (fragment id 0x12345678 offset 0 more)'],
  ['FRAG_LATER', 'udp 2001:db8:100::2 -> 2001:db8:113::1 (fragment id 0x12345678 offset 32)'],
  ['MLD', 'icmp6 fe80::2 -> ff02::16 type 143 code 0 (hop-by-hop)'],
  ['TIME_EXCEEDED6', 'icmp6 2001:db8:100::1 -> 2001:db8:100::2 time exceeded code 0, about udp [2001:db8:100::2]:40001 -> [2001:db8:113::1]:33434'],
];
for (const [name, text] of packets) {
  test(`describePacket IPv6 ${name}`, () => {
    const f = V6[name];
    assert.equal(describePacket(f, 14, f.length - 14), text);
    assert.equal(describePacket(f, 14), text, 'without a length: to the end of the buffer');
  });
}

test('describeFrame: IPv6 with the hop limit', () => {
  const f = V6.TCP6_SYN;
  assert.equal(describeFrame(f, 0, f.length), '02:00:0a:64:00:02 -> 02:00:0a:64:00:01, tcp [2001:db8:100::2]:40000 -> [2001:db8:113::1]:80 hop limit 64');
  const ns = V6.NS;
  assert.equal(describeFrame(ns, 0, ns.length), '02:00:0a:64:00:02 -> 33:33:ff:00:00:01, icmp6 fe80::2 -> ff02::1:ff00:1 neighbor solicitation for 2001:db8:100::1 hop limit 255');
  assert.equal(describeFrame(ns, 0, 30), '02:00:0a:64:00:02 -> 33:33:ff:00:00:01, ethertype 0x86dd');
});

test('describe: truncated and malformed IPv6 never reads past the bytes given', () => {
  for (const f of Object.values(V6)) {
    if (f[12] !== 0x86 && f[16] !== 0x86) continue;
    for (let l = 0; l <= f.length; l++) {
      const buf = f.slice(0, l); // exact-size: an overread would show as undefined / NaN text
      const text = describeFrame(buf, 0, l);
      assert.doesNotMatch(text, /undefined|NaN/, `${l}: ${text}`);
    }
  }
  const cut = V6.NS.slice(0, 14 + 40 + 10); // the payload length says 32: only 10 bytes are there
  assert.equal(describePacket(cut, 14, cut.length - 14), 'icmp6 fe80::2 -> ff02::1:ff00:1 type 135 code 0');
  const bad = V6.EXT_UDP.slice();
  bad[14 + 40 + 1] = 200; // hop-by-hop Hdr Ext Len past the packet
  assert.equal(describePacket(bad, 14), 'ipv6 2001:db8:100::2 -> 2001:db8:113::1 next header 0, bad extension header chain');
  assert.equal(describePacket(V6.TCP6_SYN, 14, 39), 'ipv6 (truncated header)');
});
