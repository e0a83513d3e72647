import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileFilter, FilterSyntaxError } from '../../src/trace/filter.js';
import { hex, ICMP_ECHO, IPV6_FRAMES, TCP_SYN, UDP_DNS } from '../helpers/frames.js';


/* Real frames (checksums valid). MACs 02:00:0a:64:00:0X; red 10.100.0.2, blue 10.100.0.3. */
const ARP_REQ = hex(
  'ffffffffffff02000a6400020806000108000604000102000a6400020a640002' +
  '0000000000000a640001000000000000000000000000000000000000',
);
const VLAN_UDP = hex(
  '02000a64000302000a64000181000064080045000022123440004011e22acb00' +
  '71050a64000304d21f40000e5426746167676564',
);
// (TCP_SYN: 10.100.0.2:40000 -> 203.0.113.1:80; UDP_DNS: 10.100.0.3:5353 -> 10.100.0.2:53;
//  ARP_REQ: who-has 10.100.0.1 tell 10.100.0.2, broadcast, padded to 60;
//  VLAN_UDP: 802.1Q VID 100, 203.0.113.5:1234 -> 10.100.0.3:8000)

const FRAMES = { ICMP_ECHO, TCP_SYN, UDP_DNS, ARP_REQ, VLAN_UDP };
type Name = keyof typeof FRAMES;
const ALL = Object.keys(FRAMES) as Name[];

/** Place the frame at a nonzero offset inside a 0xa5-filled buffer to catch offset bugs. */
function placed(f: Uint8Array): { buf: Uint8Array; off: number } {
  const buf = new Uint8Array(f.length + 64).fill(0xa5);
  buf.set(f, 23);
  return { buf, off: 23 };
}

function matching(expr: string): Name[] {
  const flt = compileFilter(expr);
  return ALL.filter((n) => {
    const { buf, off } = placed(FRAMES[n]);
    return flt.match(buf, off, FRAMES[n].length);
  });
}

const cases: Array<[string, Name[]]> = [
  ['', ALL],
  ['arp', ['ARP_REQ']],
  ['ip', ['ICMP_ECHO', 'TCP_SYN', 'UDP_DNS', 'VLAN_UDP']],
  ['icmp', ['ICMP_ECHO']],
  ['tcp', ['TCP_SYN']],
  ['udp', ['UDP_DNS', 'VLAN_UDP']],
  ['vlan', ['VLAN_UDP']],
  ['vlan 100', ['VLAN_UDP']],
  ['vlan 101', []],
  ['not vlan', ['ICMP_ECHO', 'TCP_SYN', 'UDP_DNS', 'ARP_REQ']],
  ['host 10.100.0.2', ['ICMP_ECHO', 'TCP_SYN', 'UDP_DNS', 'ARP_REQ']],
  ['host 10.100.0.1', ['ARP_REQ']],
  ['10.100.0.3', ['ICMP_ECHO', 'UDP_DNS', 'VLAN_UDP']],
  ['src host 10.100.0.2', ['ICMP_ECHO', 'TCP_SYN', 'ARP_REQ']],
  ['dst host 10.100.0.2', ['UDP_DNS']],
  ['src 10.100.0.3', ['UDP_DNS']],
  ['src and dst host 10.100.0.2', []],
  ['src or dst host 203.0.113.1', ['TCP_SYN']],
  ['net 203.0.113.0/24', ['TCP_SYN', 'VLAN_UDP']],
  ['src net 203.0.113.0/24', ['VLAN_UDP']],
  ['dst net 203.0.113.0/24', ['TCP_SYN']],
  ['net 10.100.0.0 mask 255.255.255.0', ['ICMP_ECHO', 'TCP_SYN', 'UDP_DNS', 'ARP_REQ', 'VLAN_UDP']],
  ['net 203.0.113', ['TCP_SYN', 'VLAN_UDP']],
  ['10.100.0.0/30', ALL],
  ['10.100.0.2/31', ['ICMP_ECHO', 'TCP_SYN', 'UDP_DNS', 'ARP_REQ', 'VLAN_UDP']],
  ['dst 10.100.0.0/31', ['ARP_REQ']],
  ['port 53', ['UDP_DNS']],
  ['src port 5353', ['UDP_DNS']],
  ['dst port 5353', []],
  ['port 80', ['TCP_SYN']],
  ['tcp port 80', ['TCP_SYN']],
  ['udp port 80', []],
  ['udp dst port 8000', ['VLAN_UDP']],
  ['portrange 1-1000', ['TCP_SYN', 'UDP_DNS']],
  ['src portrange 1000-2000', ['VLAN_UDP']],
  ['portrange 8000-7999', ['VLAN_UDP']],
  ['ether host 02:00:0a:64:00:01', ['TCP_SYN', 'VLAN_UDP']],
  ['ether src 02:00:0a:64:00:02', ['ICMP_ECHO', 'TCP_SYN', 'ARP_REQ']],
  ['ether dst 02:00:0a:64:00:02', ['UDP_DNS']],
  ['ether dst host 02-00-0A-64-00-03', ['ICMP_ECHO', 'VLAN_UDP']],
  ['broadcast', ['ARP_REQ']],
  ['ether broadcast', ['ARP_REQ']],
  ['multicast', ['ARP_REQ']],
  ['not broadcast', ['ICMP_ECHO', 'TCP_SYN', 'UDP_DNS', 'VLAN_UDP']],
  ['len < 60', ['TCP_SYN', 'UDP_DNS', 'VLAN_UDP']],
  ['len > 60', ['ICMP_ECHO']],
  ['len >= 60', ['ICMP_ECHO', 'ARP_REQ']],
  ['len = 74', ['ICMP_ECHO']],
  ['less 57', ['TCP_SYN', 'UDP_DNS', 'VLAN_UDP']],
  ['greater 60', ['ICMP_ECHO', 'ARP_REQ']],
  ['arp host 10.100.0.1', ['ARP_REQ']],
  ['ip host 10.100.0.1', []],
  ['ip proto 17', ['UDP_DNS', 'VLAN_UDP']],
  ['proto icmp', ['ICMP_ECHO']],
  ['tcp or icmp', ['ICMP_ECHO', 'TCP_SYN']],
  ['tcp || icmp', ['ICMP_ECHO', 'TCP_SYN']],
  ['udp and not vlan', ['UDP_DNS']],
  ['udp && !vlan', ['UDP_DNS']],
  ['!(udp or arp)', ['ICMP_ECHO', 'TCP_SYN']],
  ['not not tcp', ['TCP_SYN']],
  ['host 10.100.0.2 and (tcp or icmp)', ['ICMP_ECHO', 'TCP_SYN']],
  // pcap-filter semantics: and/or have equal precedence, left-associative.
  ['arp or tcp and port 80', ['TCP_SYN']], // (arp or tcp) and port 80
  ['tcp and port 80 or arp', ['TCP_SYN', 'ARP_REQ']],
  ['arp or (tcp and port 80)', ['TCP_SYN', 'ARP_REQ']],
  ['((icmp))', ['ICMP_ECHO']],
];

for (const [expr, expected] of cases) {
  test(`filter '${expr}'`, () => {
    assert.deepEqual(matching(expr), expected);
  });
}

test('filter: truncated and malformed frames never throw or read out of bounds', () => {
  const flt = compileFilter('host 10.100.0.2 or port 80 or ether src 02:00:0a:64:00:02 or vlan or broadcast');
  for (const n of ALL) {
    const f = FRAMES[n];
    for (let l = 0; l <= f.length; l++) {
      const buf = f.slice(0, l); // exact-size buffer: any overread yields undefined
      flt.match(buf, 0, l);
    }
  }
  // a TCP frame cut inside the IP header: ports and host unavailable
  const tcp = compileFilter('tcp or host 10.100.0.2 or port 80');
  assert.equal(tcp.match(TCP_SYN, 0, 30), false);
  // non-first fragment: no ports
  const frag = TCP_SYN.slice();
  frag[14 + 6] = 0x00;
  frag[14 + 7] = 0x10;
  assert.equal(compileFilter('port 80').match(frag, 0, frag.length), false);
  assert.equal(compileFilter('tcp').match(frag, 0, frag.length), true);
});

test('filter: QinQ (two tags) is looked through, outer VID is matched', () => {
  const f = new Uint8Array(VLAN_UDP.length + 4);
  f.set(VLAN_UDP.subarray(0, 12));
  f.set([0x88, 0xa8, 0x00, 0x07], 12); // outer S-tag VID 7
  f.set(VLAN_UDP.subarray(12), 16);
  assert.equal(compileFilter('vlan 7 and udp port 8000 and src host 203.0.113.5').match(f, 0, f.length), true);
  assert.equal(compileFilter('vlan 100').match(f, 0, f.length), false);
});

/** 1e6 matches of a frame the filter accepts grow the heap by little: match allocates nothing per frame (a smoke test). */
function assertMatchesWithoutAllocating(expr: string, frame: Uint8Array): void {
  const flt = compileFilter(expr);
  const { buf, off } = placed(frame);
  let n = 0;
  for (let i = 0; i < 10000; i++) if (flt.match(buf, off, frame.length)) n++;
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < 1_000_000; i++) if (flt.match(buf, off, frame.length)) n++;
  const grown = process.memoryUsage().heapUsed - before;
  assert.equal(n, 1_010_000);
  assert.ok(grown < 4 * 1024 * 1024, `heap grew by ${grown} bytes`);
}

test('filter: match does not allocate per frame (smoke: 1e6 matches, small heap growth)', () => {
  assertMatchesWithoutAllocating('not arp and (src net 10.100.0.0/24 or dst portrange 1-1024) and len < 1500', TCP_SYN);
});

const errors: Array<[string, RegExp, number]> = [
  ['tcp and port', /^expected a port number after 'port' at 12$/, 12],
  ['port 70000', /^port number 70000 out of range \(max 65535\) at 5$/, 5],
  ['host', /expected an IPv4 or IPv6 address after 'host'/, 4],
  ['host 10.100.0', /expected an IPv4 or IPv6 address after 'host'/, 5],
  ['src', /expected 'host', 'net', 'port' or 'portrange' after 'src' at 3/, 3],
  ['net 10.100.0.1/24', /non-network bits set/, 4],
  ['net 10.100.0.0/33', /expected a network like 10.100.0.0\/24 or 2001:db8::\/64 after 'net'/, 4],
  ['host 2001:db8::zz', /expected an IPv4 or IPv6 address after 'host'/, 5],
  ['host 2001:db8::/64', /expected an IPv4 or IPv6 address after 'host'/, 5],
  ['net 2001:db8:100::1/64', /non-network bits set in '2001:db8:100::1\/64'/, 4],
  ['2001:db8:100::1/64', /non-network bits set/, 0],
  ['src net 2001:db8::/129', /expected a network like 10.100.0.0\/24 or 2001:db8::\/64 after 'net'/, 8],
  ['net 2001:db8:: mask 255.255.0.0', /'mask' is for IPv4 networks: write an IPv6 network as 2001:db8::\/LEN/, 15],
  ['ip6 host 10.100.0.1', /an IPv4 address after 'ip6' never matches/, 4],
  ['icmp6 and arp host 2001:db8::1', /an IPv6 address after 'arp' never matches/, 14],
  ['icmp src 2001:db8::1', /an IPv6 address after 'icmp' never matches/, 5],
  ['ip multicast 5', /unexpected '5'/, 13],
  ['(tcp or udp', /expected '\)' to close '\(' at 0, found end of filter at 11/, 11],
  ['tcp)', /unexpected '\)'/, 3],
  ['tcp udp', /unexpected 'udp'/, 4],
  ['tcp and', /expected an expression after 'and' at 7/, 7],
  ['foo', /unknown primitive 'foo' at 0/, 0],
  ['not', /expected an expression after 'not'/, 3],
  ['len 5', /expected '<'/, 4],
  ['ether src 02:00:00', /expected a MAC address/, 10],
  ['ether', /expected 'host', 'src', 'dst'/, 5],
  ['portrange 10', /expected a port range like 1000-2000 after 'portrange'/, 10],
  ['tcp $ udp', /unexpected character '\$' at 4/, 4],
  ['vlan 5000', /VLAN id 5000 out of range/, 5],
  ['()', /expected an expression after '\('/, 1],
];
for (const [expr, re, pos] of errors) {
  test(`filter error '${expr}'`, () => {
    assert.throws(
      () => compileFilter(expr),
      (e: unknown) => {
        assert.ok(e instanceof FilterSyntaxError, String(e));
        assert.match(e.message, re);
        assert.equal(e.position, pos);
        return true;
      },
    );
  });
}

test('filter: disassemble lists a forward-only program', () => {
  const text = compileFilter('tcp and (port 80 or port 443)').disassemble();
  assert.match(text, /ipproto 6/);
  assert.match(text, /accept/);
  const six = compileFilter('icmp6 and src net 2001:db8:100::/64 or dst host fe80::1').disassemble();
  assert.match(six, /^0: ipproto 58 \(ip6 only\) -> t:1 f:2$/m);
  assert.match(six, /^1: src net6 2001:db8:100::\/64 -> t:accept f:2$/m);
  assert.match(six, /^2: dst host6 fe80::1 -> t:accept f:reject$/m);
});

/* ------------------------------------------------------------------ IPv6 */

const V4 = { ICMP_ECHO, TCP_SYN, ARP_REQ };
const MIXED = { ...IPV6_FRAMES, ...V4 };
type Name6 = keyof typeof MIXED;
const ALL6 = Object.keys(IPV6_FRAMES) as Name6[];
const UDP6: Name6[] = ['UDP6_DNS', 'EXT_UDP', 'FRAG_FIRST', 'FRAG_LATER', 'VLAN_UDP6'];
const ICMP6: Name6[] = ['ICMP6_ECHO', 'NS', 'NA', 'MLD', 'TIME_EXCEEDED6'];
const RED6: Name6[] = ['ICMP6_ECHO', 'TCP6_SYN', 'UDP6_DNS', 'EXT_UDP', 'FRAG_FIRST', 'FRAG_LATER', 'TIME_EXCEEDED6'];

function matching6(expr: string): Name6[] {
  const flt = compileFilter(expr);
  return (Object.keys(MIXED) as Name6[]).filter((n) => {
    const { buf, off } = placed(MIXED[n]);
    return flt.match(buf, off, MIXED[n].length);
  });
}

/** The names in the order of MIXED (the order matching6 reports them in). */
function inOrder(names: Name6[]): Name6[] {
  return (Object.keys(MIXED) as Name6[]).filter((n) => names.includes(n));
}

// (IPv6 frames: see test/helpers/frames.ts; plus the IPv4 ICMP_ECHO, TCP_SYN and ARP_REQ.)
const cases6: Array<[string, Name6[]]> = [
  ['ip6', ALL6],
  ['ip', ['ICMP_ECHO', 'TCP_SYN']],
  ['not ip6 and not arp', ['ICMP_ECHO', 'TCP_SYN']],
  ['icmp6', ICMP6],
  ['ip6 proto 58', ICMP6],
  ['proto 58', ICMP6],
  ['proto icmp6', ICMP6],
  ['ip6 proto icmp6', ICMP6],
  ['icmp', ['ICMP_ECHO']],
  ['ip6 and icmp', []],
  ['ip proto 58', []],
  ['tcp', ['TCP6_SYN', 'TCP_SYN']],
  ['ip6 and tcp', ['TCP6_SYN']],
  ['udp', UDP6],
  ['proto 17', UDP6],
  ['ip6 proto 17', UDP6],
  // pcap's `ip6 proto`: the first next header also matches
  ['ip6 proto 44', ['FRAG_FIRST', 'FRAG_LATER']],
  ['ip6 proto 0', ['EXT_UDP', 'MLD']],
  ['ip proto 44', []],
  // ports through the extension chain; a later fragment has none
  ['port 9000', ['EXT_UDP', 'FRAG_FIRST']],
  ['udp dst port 9000', ['EXT_UDP', 'FRAG_FIRST']],
  ['udp and not port 9000', ['UDP6_DNS', 'FRAG_LATER', 'VLAN_UDP6']],
  ['dst port 80', ['TCP6_SYN', 'TCP_SYN']],
  ['ip6 and tcp dst port 80', ['TCP6_SYN']],
  ['portrange 5000-6000', ['UDP6_DNS']],
  ['src port 1234', ['VLAN_UDP6']],
  ['port 33434', []], // only quoted inside the time-exceeded message
  // VLAN-tagged IPv6 is looked through
  ['vlan', ['VLAN_UDP6']],
  ['vlan 100 and udp port 8000 and src host 2001:db8:113::5', ['VLAN_UDP6']],
  // addresses: host, net, bare, with directions
  ['host 2001:db8:100::2', RED6],
  ['2001:db8:100::2', RED6],
  ['host 2001:0db8:0100:0000:0000:0000:0000:0002', RED6],
  ['ip6 host 2001:db8:100::1', ['ICMP6_ECHO', 'NA', 'TIME_EXCEEDED6']],
  ['icmp6 and host 2001:db8:100::1', ['ICMP6_ECHO', 'NA', 'TIME_EXCEEDED6']],
  ['dst host 2001:db8:100::2', ['UDP6_DNS', 'TIME_EXCEEDED6']],
  ['src 2001:db8:100::3', ['UDP6_DNS']],
  ['src and dst net 2001:db8:100::/64', ['ICMP6_ECHO', 'UDP6_DNS', 'TIME_EXCEEDED6']],
  ['src host fe80::2', ['NS', 'MLD']],
  ['ip6 src fe80::2', ['NS', 'MLD']],
  ['host fe80::2', ['NS', 'NA', 'MLD']],
  ['net fe80::/10', ['NS', 'NA', 'MLD']],
  ['net 2001:db8:100::/64', ['ICMP6_ECHO', 'NA', 'TCP6_SYN', 'UDP6_DNS', 'EXT_UDP', 'FRAG_FIRST', 'FRAG_LATER', 'VLAN_UDP6', 'TIME_EXCEEDED6']],
  ['2001:db8:113::/64', ['TCP6_SYN', 'EXT_UDP', 'FRAG_FIRST', 'FRAG_LATER', 'VLAN_UDP6']],
  ['dst net 2001:db8:113::/48', ['TCP6_SYN', 'EXT_UDP', 'FRAG_FIRST', 'FRAG_LATER']],
  ['net 2001:db8:113::5', ['VLAN_UDP6']], // an IPv6 `net` without a length is a host (pcap-filter)
  ['net ::/0', ALL6],
  ['net 2001:db8:100::/127', ['ICMP6_ECHO', 'NA', 'TIME_EXCEEDED6']],
  ['net 2001:db8:100::2/127', [...RED6, 'VLAN_UDP6']], // red ::2 and blue ::3
  ['host 10.100.0.2', ['ICMP_ECHO', 'TCP_SYN', 'ARP_REQ']],
  ['ip6 multicast', ['NS', 'MLD']],
  ['ip multicast', []],
  ['ip6 and multicast', ['NS', 'MLD']],
  ['(icmp6 or tcp) and net 2001:db8:100::/64', ['ICMP6_ECHO', 'NA', 'TCP6_SYN', 'TIME_EXCEEDED6']],
  ['ether src 02:00:0a:64:00:03 and ip6', ['UDP6_DNS']],
];

for (const [expr, expected] of cases6) {
  test(`filter (IPv6) '${expr}'`, () => {
    assert.deepEqual(matching6(expr), inOrder(expected));
  });
}

test('filter: IPv6 extension chains that do not walk have no protocol and no ports, but addresses', () => {
  const bad = IPV6_FRAMES.EXT_UDP.slice();
  bad[14 + 40 + 1] = 200; // hop-by-hop Hdr Ext Len runs past the packet
  const m = (e: string) => compileFilter(e).match(bad, 0, bad.length);
  assert.equal(m('udp'), false);
  assert.equal(m('port 9000'), false);
  assert.equal(m('ip6 proto 0'), true, 'the first next header is still there');
  assert.equal(m('host 2001:db8:113::1'), true);
  // nine destination-options headers: past the walker's bound of eight
  const nine = new Uint8Array(14 + 40 + 9 * 8 + 8);
  nine.set(IPV6_FRAMES.TCP6_SYN.subarray(0, 54));
  nine[14 + 4] = 0;
  nine[14 + 5] = 9 * 8 + 8;
  nine[14 + 6] = 60;
  for (let i = 0; i < 9; i++) nine[54 + 8 * i] = i < 8 ? 60 : 17;
  nine.set([0x9c, 0x40, 0x23, 0x28], 54 + 72);
  assert.equal(compileFilter('udp or port 9000').match(nine, 0, nine.length), false);
  nine[54 + 8 * 7] = 17; // eight headers: within the bound
  assert.equal(compileFilter('udp and port 9000').match(nine, 0, nine.length - 8), false, 'the UDP header after eight would be at 54+64');
  const eight = nine.slice(0, 54 + 64 + 8);
  eight[14 + 5] = 64 + 8;
  eight.set([0x9c, 0x40, 0x23, 0x28], 54 + 64);
  assert.equal(compileFilter('udp and port 9000').match(eight, 0, eight.length), true);
});

test('filter: Ethernet padding after an IPv6 packet is not read as its payload', () => {
  // A truncated-to-the-header first fragment padded with bytes that look like a UDP header.
  const f = new Uint8Array(IPV6_FRAMES.FRAG_FIRST.length).fill(0);
  f.set(IPV6_FRAMES.FRAG_FIRST);
  f[14 + 4] = 0;
  f[14 + 5] = 8; // payload: the fragment header only
  assert.equal(compileFilter('udp').match(f, 0, f.length), true, 'the fragment header names UDP');
  assert.equal(compileFilter('port 9000').match(f, 0, f.length), false, 'but the UDP header is past the packet');
});

test('filter: QinQ-tagged IPv6 is looked through', () => {
  const v = IPV6_FRAMES.VLAN_UDP6;
  const f = new Uint8Array(v.length + 4);
  f.set(v.subarray(0, 12));
  f.set([0x88, 0xa8, 0x00, 0x07], 12);
  f.set(v.subarray(12), 16);
  assert.equal(compileFilter('vlan 7 and ip6 and udp port 8000 and dst net 2001:db8:100::/64').match(f, 0, f.length), true);
});

test('filter: truncated IPv6 frames never throw or read out of bounds', () => {
  const flt = compileFilter('host 2001:db8:100::2 or net fe80::/10 or port 80 or icmp6 or ip6 proto 44 or tcp');
  for (const f of Object.values(IPV6_FRAMES)) {
    for (let l = 0; l <= f.length; l++) flt.match(f.slice(0, l), 0, l);
  }
  assert.equal(compileFilter('ip6 and host 2001:db8:100::2').match(IPV6_FRAMES.TCP6_SYN, 0, 14 + 39), false, 'fixed header cut');
  assert.equal(compileFilter('ip6').match(IPV6_FRAMES.TCP6_SYN, 0, 14 + 39), true, 'the ethertype is there');
  assert.equal(compileFilter('tcp').match(IPV6_FRAMES.TCP6_SYN, 0, 14 + 40), true, 'the next header is in the fixed header');
  assert.equal(compileFilter('port 80').match(IPV6_FRAMES.TCP6_SYN, 0, 14 + 42), false, 'ports cut');
});

test('filter: IPv6 matching does not allocate per frame (smoke: 1e6 matches through an extension chain)', () => {
  assertMatchesWithoutAllocating('ip6 and not icmp6 and (src net 2001:db8:100::/64 or dst host 2001:db8:113::1) and udp dst portrange 1-9000', IPV6_FRAMES.EXT_UDP);
});
