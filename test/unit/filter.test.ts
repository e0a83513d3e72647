import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileFilter, FilterSyntaxError } from '../../src/trace/filter.js';
import { hex, ICMP_ECHO, TCP_SYN, UDP_DNS } from '../helpers/frames.js';


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

test('filter: match does not allocate per frame (smoke: 1e6 matches, small heap growth)', () => {
  const flt = compileFilter('not arp and (src net 10.100.0.0/24 or dst portrange 1-1024) and len < 1500');
  const { buf, off } = placed(TCP_SYN);
  let n = 0;
  for (let i = 0; i < 10000; i++) if (flt.match(buf, off, TCP_SYN.length)) n++;
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < 1_000_000; i++) if (flt.match(buf, off, TCP_SYN.length)) n++;
  const grown = process.memoryUsage().heapUsed - before;
  assert.equal(n, 1_010_000);
  assert.ok(grown < 4 * 1024 * 1024, `heap grew by ${grown} bytes`);
});

const errors: Array<[string, RegExp, number]> = [
  ['tcp and port', /^expected a port number after 'port' at 12$/, 12],
  ['port 70000', /^port number 70000 out of range \(max 65535\) at 5$/, 5],
  ['host', /expected an IPv4 address after 'host'/, 4],
  ['host 10.100.0', /expected an IPv4 address after 'host'/, 5],
  ['src', /expected 'host', 'net', 'port' or 'portrange' after 'src' at 3/, 3],
  ['net 10.100.0.1/24', /non-network bits set/, 4],
  ['net 10.100.0.0/33', /expected a network like 10.100.0.0\/24 after 'net'/, 4],
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
});
