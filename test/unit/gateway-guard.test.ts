// The switch's gateway address guard (src/switch/gateway-guard.ts) on real frames (scapy:
// test/unit/fixtures/gateway-guard-frames.py): ARP and NDP that claim one of the gateway's
// addresses are recognised, look-alikes (own addresses, probes, DAD, solicitations *for* the
// gateway, other ICMPv6, TCP) are not; truncated frames never throw.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayGuard } from '../../src/switch/gateway-guard.js';
import { parseIp4 } from '../../src/wire/ip4.js';
import { parseIp6 } from '../../src/wire/ip6.js';
import { hex } from '../helpers/frames.js';

/** name, claims the gateway's address, frame */
const FRAMES: [string, boolean, string][] = [
  ['ARP_GRATUITOUS_GW', true, 'ffffffffffff02aa000000020806000108000604000102aa000000020a6400010000000000000a640001'],
  ['ARP_REPLY_GW', true, '02bb0000000302aa000000020806000108000604000202aa000000020a6400010000000000000a640003'],
  ['ARP_REQUEST_OWN', false, 'ffffffffffff02aa000000020806000108000604000102aa000000020a6400020000000000000a640001'],
  ['ARP_PROBE', false, 'ffffffffffff02aa000000020806000108000604000102aa00000002000000000000000000000a640001'],
  ['NA_GW', true, '33330000000102aa0000000286dd6000000000203afffe8000000000000000aa00fffe000002ff0200000000000000000000000000018800a70ca000000020010db8010000000000000000000001020102aa00000002'],
  ['NA_GW_LL_DSTOPT', true, '33330000000102aa0000000286dd6000000000283cfffe8000000000000000aa00fffe000002ff0200000000000000000000000000013a00010400000000880075d0a0000000fe80000000000000007462fffe000001020102aa00000002'],
  ['NA_OWN', false, '33330000000102aa0000000286dd6000000000203afffe8000000000000000aa00fffe000002ff0200000000000000000000000000018800a70ba000000020010db8010000000000000000000002020102aa00000002'],
  ['NS_FROM_GW', true, '3333ff00000302aa0000000286dd6000000000203aff20010db8010000000000000000000001ff0200000000000000000001ff0000038700197a0000000020010db8010000000000000000000003010102aa00000002'],
  ['NS_FOR_GW', false, '3333ff00000102aa0000000286dd6000000000203aff20010db8010000000000000000000002ff0200000000000000000001ff0000018700197d0000000020010db8010000000000000000000001010102aa00000002'],
  ['NS_DAD_GW', false, '3333ff00000102aa0000000286dd6000000000183aff00000000000000000000000000000000ff0200000000000000000001ff00000187004bed0000000020010db8010000000000000000000001'],
  ['ECHO_FROM_GW', false, '33330000000102aa0000000286dd6000000000083a4020010db801000000000000000000000120010db80100000000000000000000038000224700000000'],
  ['TCP6_FROM_GW', false, '33330000000102aa0000000286dd600000000014064020010db801000000000000000000000120010db80100000000000000000000030014005000000000000000005002200032090000'],
];

const guard = new GatewayGuard([parseIp4('10.100.0.1')!], [parseIp6('2001:db8:100::1')!, parseIp6('fe80::74:62ff:fe00:1')!]);

for (const [name, claims, h] of FRAMES)
  test(`gateway guard: ${name} ${claims ? 'claims' : 'does not claim'} a gateway address`, () => {
    const f = hex(h);
    assert.equal(guard.claims(f, 0, f.length), claims);
  });

test('gateway guard: every truncation of every frame is answered, never thrown', () => {
  for (const [name, , h] of FRAMES) {
    const f = hex(h);
    for (let n = 0; n < f.length; n++) assert.equal(typeof guard.claims(f.subarray(0, n), 0, n), 'boolean', `${name} cut to ${n}`);
  }
});

test('gateway guard: a bridge without IPv6 ignores NDP, one with no addresses is empty', () => {
  const v4only = new GatewayGuard([parseIp4('10.100.0.1')!], []);
  const na = hex(FRAMES.find(([n]) => n === 'NA_GW')![2]);
  assert.equal(v4only.claims(na, 0, na.length), false);
  assert.equal(new GatewayGuard([], []).empty, true);
  assert.equal(v4only.empty, false);
});
