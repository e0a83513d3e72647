/*
 * Connection tracking: TCP state machine, timeouts with an injected clock (timer wheel and
 * lazy expiry), bounded table (early drop / refusal), published-port management, config
 * validation and the tuple index itself.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  NAT_ACCEPT,
  NAT_DROP_TABLE_FULL,
  NAT_DROP_TCP_INVALID,
  NatEngine,
} from '../../src/nat/index.js';
import { FlowIndex } from '../../src/nat/flow-index.js';
import { ACK, BLUE, BR, EXT, FIN, ip, labEngine, pingPkt, RED, route, RST, SYN, tcpPkt, udpPkt, UP, WAN } from './nat-helpers.js';

const T0 = 5_000_000;
const S = 1000;

function flowOf(nat: NatEngine, now: number) {
  const l = nat.list(now);
  assert.equal(l.length, 1, 'one flow');
  return l[0];
}

/** red:40000 <-> wan:80 through the NAT; `o` = packet from red, `r` = packet from wan. */
function tcpPair(nat: NatEngine) {
  return {
    o: (flags: number, now: number) => route(nat, tcpPkt(RED, 40000, WAN, 80, flags), BR, now).v,
    r: (flags: number, now: number) => route(nat, tcpPkt(WAN, 80, EXT, 40000, flags), UP, now).v,
  };
}

test('TCP: handshake, close from both sides, TIME_WAIT expiry', () => {
  const nat = labEngine();
  const { o, r } = tcpPair(nat);
  let t = T0;
  assert.equal(o(SYN, t), NAT_ACCEPT);
  assert.equal(flowOf(nat, t).state, 'SYN_SENT');
  assert.equal(flowOf(nat, t).secondsLeft, 120);
  assert.equal(r(SYN | ACK, (t += 10)), NAT_ACCEPT);
  assert.equal(flowOf(nat, t).state, 'SYN_RECV');
  assert.equal(flowOf(nat, t).secondsLeft, 60);
  assert.equal(o(ACK, (t += 10)), NAT_ACCEPT);
  let f = flowOf(nat, t);
  assert.equal(f.state, 'ESTABLISHED');
  assert.equal(f.secondsLeft, 432000);
  assert.ok(f.flags.includes('ASSURED'));
  assert.equal(o(ACK, (t += 10)), NAT_ACCEPT);
  assert.equal(r(ACK, (t += 10)), NAT_ACCEPT);
  assert.equal(o(FIN | ACK, (t += 10)), NAT_ACCEPT);
  assert.equal(flowOf(nat, t).state, 'FIN_WAIT');
  assert.equal(flowOf(nat, t).secondsLeft, 120);
  assert.equal(r(ACK, (t += 10)), NAT_ACCEPT);
  assert.equal(flowOf(nat, t).state, 'CLOSE_WAIT');
  assert.equal(flowOf(nat, t).secondsLeft, 60);
  assert.equal(r(FIN | ACK, (t += 10)), NAT_ACCEPT);
  assert.equal(flowOf(nat, t).state, 'LAST_ACK');
  assert.equal(flowOf(nat, t).secondsLeft, 30);
  assert.equal(o(ACK, (t += 10)), NAT_ACCEPT);
  f = flowOf(nat, t);
  assert.equal(f.state, 'TIME_WAIT');
  assert.equal(f.secondsLeft, 120);
  assert.equal(f.packetsOrig, 5);
  assert.equal(f.packetsReply, 4);

  nat.tick(t + 119 * S);
  assert.equal(nat.size, 1, 'still in TIME_WAIT');
  nat.tick(t + 121 * S);
  assert.equal(nat.size, 0, 'TIME_WAIT expired');
  assert.equal(nat.counters.expired, 1);
});

test('TCP: RST in ESTABLISHED -> CLOSE, gone after 10 s', () => {
  const nat = labEngine();
  const { o, r } = tcpPair(nat);
  o(SYN, T0);
  r(SYN | ACK, T0);
  o(ACK, T0);
  assert.equal(r(RST, T0 + S), NAT_ACCEPT, 'the RST itself is translated and forwarded');
  assert.equal(flowOf(nat, T0 + S).state, 'CLOSE');
  assert.equal(flowOf(nat, T0 + S).secondsLeft, 10);
  nat.tick(T0 + 10 * S);
  assert.equal(nat.size, 1);
  nat.tick(T0 + 12 * S);
  assert.equal(nat.size, 0);
});

test('TCP: RST as the only answer to a SYN kills the flow at once', () => {
  const nat = labEngine();
  const { o } = tcpPair(nat);
  o(SYN, T0);
  const rst = route(nat, tcpPkt(WAN, 80, EXT, 40000, RST | ACK), UP, T0 + 1);
  assert.equal(rst.v, NAT_ACCEPT);
  assert.equal(rst.p.dst, RED, 'RST still de-NATed');
  nat.tick(T0 + 2 * S);
  assert.equal(nat.size, 0);
  // a retry creates a fresh flow
  assert.equal(o(SYN, T0 + 3 * S), NAT_ACCEPT);
  assert.equal(flowOf(nat, T0 + 3 * S).state, 'SYN_SENT');
});

test('TCP: SYN in TIME_WAIT reopens the connection as a new flow', () => {
  const nat = labEngine();
  const { o, r } = tcpPair(nat);
  o(SYN, T0);
  r(SYN | ACK, T0);
  o(ACK, T0);
  o(FIN | ACK, T0);
  r(FIN | ACK, T0);
  o(ACK, T0);
  assert.equal(flowOf(nat, T0).state, 'TIME_WAIT');
  assert.equal(o(SYN, T0 + S), NAT_ACCEPT);
  const f = flowOf(nat, T0 + S);
  assert.equal(f.state, 'SYN_SENT');
  assert.equal(f.packetsOrig, 1);
  assert.equal(nat.counters.reopened, 1);
  // also from CLOSE
  r(RST, T0 + 2 * S);
  assert.equal(flowOf(nat, T0 + 2 * S).state, 'CLOSE');
  assert.equal(o(SYN, T0 + 3 * S), NAT_ACCEPT);
  assert.equal(flowOf(nat, T0 + 3 * S).state, 'SYN_SENT');
});

test('TCP: loose pick-up of mid-stream ACKs; invalid packets without a flow are dropped', () => {
  const nat = labEngine();
  const { o, r } = tcpPair(nat);
  assert.equal(o(ACK, T0), NAT_ACCEPT);
  let f = flowOf(nat, T0);
  assert.equal(f.state, 'ESTABLISHED');
  assert.equal(f.secondsLeft, 300, 'unreplied: capped to the unack timeout');
  assert.ok(!f.flags.includes('ASSURED'));
  assert.equal(r(ACK, T0 + S), NAT_ACCEPT);
  assert.equal(o(ACK, T0 + 2 * S), NAT_ACCEPT);
  f = flowOf(nat, T0 + 2 * S);
  assert.ok(f.flags.includes('ASSURED'));
  assert.equal(f.secondsLeft, 432000);

  for (const flags of [RST, FIN | ACK, SYN | ACK, 0]) {
    const v = route(nat, tcpPkt(BLUE, 1000 + flags, WAN, 80, flags), BR, T0).v;
    assert.equal(v, NAT_DROP_TCP_INVALID, `flags ${flags}`);
  }
  assert.equal(nat.size, 1);
});

test('TCP: an ACK from the client while SYN_SENT is invalid; a retransmitted SYN is fine', () => {
  const nat = labEngine();
  const { o } = tcpPair(nat);
  o(SYN, T0);
  assert.equal(o(SYN, T0 + S), NAT_ACCEPT);
  assert.equal(o(ACK, T0 + S), NAT_DROP_TCP_INVALID);
  assert.equal(nat.counters.invalid, 1);
  assert.equal(flowOf(nat, T0 + S).state, 'SYN_SENT');
});

test('UDP: unreplied flows expire after 30 s, replied ones after 120 s (ASSURED)', () => {
  const nat = labEngine();
  route(nat, udpPkt(RED, 5000, WAN, 53), BR, T0);
  assert.equal(flowOf(nat, T0).state, 'UNREPLIED');
  assert.equal(flowOf(nat, T0).secondsLeft, 30);
  nat.tick(T0 + 29 * S);
  assert.equal(nat.size, 1);
  nat.tick(T0 + 31 * S);
  assert.equal(nat.size, 0);

  route(nat, udpPkt(RED, 5000, WAN, 53), BR, T0 + 40 * S);
  route(nat, udpPkt(WAN, 53, EXT, 5000), UP, T0 + 41 * S);
  const f = flowOf(nat, T0 + 41 * S);
  assert.equal(f.state, 'REPLIED');
  assert.equal(f.secondsLeft, 120);
  assert.ok(f.flags.includes('ASSURED'));
  nat.tick(T0 + 160 * S);
  assert.equal(nat.size, 1);
  nat.tick(T0 + 162 * S);
  assert.equal(nat.size, 0);
});

test('ICMP echo flows last 30 s; traffic refreshes the timer', () => {
  const nat = labEngine();
  route(nat, pingPkt(RED, WAN, 8, 9), BR, T0);
  for (let i = 1; i <= 10; i++) route(nat, pingPkt(RED, WAN, 8, 9, i), BR, T0 + i * 20 * S);
  nat.tick(T0 + 220 * S);
  assert.equal(nat.size, 1, 'kept alive by pings every 20 s');
  nat.tick(T0 + 231 * S);
  assert.equal(nat.size, 0);
});

test('expiry is also checked on lookup, without a tick', () => {
  const nat = labEngine();
  route(nat, udpPkt(RED, 5000, WAN, 53), BR, T0);
  const late = route(nat, udpPkt(WAN, 53, EXT, 5000), UP, T0 + 31 * S);
  assert.equal(late.p.dst, EXT, 'expired: the reply is no longer translated');
  assert.equal(nat.size, 0);
  assert.equal(nat.counters.expired, 1);
});

test('timer wheel: long timeouts survive many wheel rounds, clock jumps, custom timeouts', () => {
  const nat = labEngine({ timeouts: { tcpEstablished: 3 * 86400 } });
  const { o, r } = tcpPair(nat);
  o(SYN, T0);
  r(SYN | ACK, T0);
  o(ACK, T0);
  o(ACK, T0);
  assert.equal(flowOf(nat, T0).secondsLeft, 3 * 86400);
  for (let t = T0; t < T0 + 3 * 86400 * S - S; t += 997 * S) nat.tick(t);
  assert.equal(nat.size, 1);
  nat.tick(T0 + 3 * 86400 * S + 1500);
  assert.equal(nat.size, 0);

  // a jump far beyond the wheel horizon expires what is due and keeps the rest
  const nat2 = labEngine({ timeouts: { udpReplied: 86400 } });
  route(nat2, udpPkt(RED, 1, WAN, 1), BR, T0); // 30 s
  route(nat2, udpPkt(RED, 2, WAN, 1), BR, T0);
  route(nat2, udpPkt(WAN, 1, EXT, 2), UP, T0); // 1 day
  nat2.tick(T0);
  nat2.tick(T0 + 20000 * S);
  assert.equal(nat2.size, 1);
  nat2.tick(T0 + 86401 * S);
  assert.equal(nat2.size, 0);
});

test('tick work is proportional to what expires (many flows)', () => {
  const nat = labEngine({ maxFlows: 20000 });
  for (let i = 0; i < 10000; i++) route(nat, udpPkt(RED, 1024 + i, WAN, 53), BR, T0 + (i % 10) * S);
  assert.equal(nat.size, 10000);
  nat.tick(T0 + 35 * S);
  assert.equal(nat.size, 4000, 'flows started at +0..+5 s are gone');
  nat.tick(T0 + 41 * S);
  assert.equal(nat.size, 0);
  assert.equal(nat.counters.expired, 10000);
});

test('full table: the oldest unreplied flow is early-dropped; with only assured flows new ones are refused', () => {
  const nat = labEngine({ maxFlows: 4 });
  // two assured UDP flows
  for (const port of [1, 2]) {
    route(nat, udpPkt(RED, port, WAN, 53), BR, T0);
    route(nat, udpPkt(WAN, 53, EXT, port), UP, T0);
  }
  // two unreplied ones fill the table
  route(nat, udpPkt(RED, 3, WAN, 53), BR, T0 + 1);
  route(nat, udpPkt(RED, 4, WAN, 53), BR, T0 + 2);
  assert.equal(nat.size, 4);
  // a fifth: the oldest unreplied (port 3) goes
  assert.equal(route(nat, udpPkt(RED, 5, WAN, 53), BR, T0 + 3).v, NAT_ACCEPT);
  assert.equal(nat.size, 4);
  assert.equal(nat.counters.earlyDropped, 1);
  assert.equal(nat.find(17, RED, WAN, 3, 53), -1);
  assert.notEqual(nat.find(17, RED, WAN, 4, 53), -1);
  // assure 4 and 5: nothing left to drop
  route(nat, udpPkt(WAN, 53, EXT, 4), UP, T0 + 4);
  route(nat, udpPkt(WAN, 53, EXT, 5), UP, T0 + 4);
  const refused = route(nat, udpPkt(BLUE, 6, WAN, 53), BR, T0 + 5);
  assert.equal(refused.v, NAT_DROP_TABLE_FULL);
  assert.equal(nat.counters.refusedFull, 1);
  assert.equal(nat.size, 4);
  // established flows keep working in both directions
  for (const port of [1, 2, 4, 5]) {
    const out = route(nat, udpPkt(RED, port, WAN, 53), BR, T0 + 6);
    assert.equal(out.v, NAT_ACCEPT);
    assert.equal(out.p.src, EXT);
    const back = route(nat, udpPkt(WAN, 53, EXT, port), UP, T0 + 6);
    assert.equal(back.v, NAT_ACCEPT);
    assert.equal(back.p.dst, RED);
  }
  // once one expires there is room again
  nat.tick(T0 + 200 * S);
  assert.equal(nat.size, 0);
  assert.equal(route(nat, udpPkt(BLUE, 6, WAN, 53), BR, T0 + 201 * S).v, NAT_ACCEPT);
});

test('published ports: add, list, overlap rejected, remove; ranges map port by port', () => {
  const nat = labEngine({ forwards: [] });
  nat.addForward({ proto: 6, externalPort: 9000, externalPortEnd: 9009, internalIp: BLUE, internalPort: 19000 });
  assert.throws(() => nat.addForward({ proto: 6, externalPort: 9005, externalPortEnd: 9005, internalIp: RED, internalPort: 1 }), /already published/);
  nat.addForward({ proto: 17, externalPort: 9005, externalPortEnd: 9005, internalIp: RED, internalPort: 53 });
  assert.equal(nat.listForwards().length, 2);
  const a = route(nat, tcpPkt(WAN, 50000, EXT, 9003, SYN), UP, T0);
  assert.equal(a.p.dst, BLUE);
  assert.equal(a.p.dport, 19003);
  assert.equal(nat.removeForward(6, 9007), true);
  assert.equal(nat.removeForward(6, 9007), false);
  assert.deepEqual(nat.listForwards(), [{ proto: 17, externalPort: 9005, externalPortEnd: 9005, internalIp: RED, internalPort: 53 }]);
  const b = route(nat, tcpPkt(WAN, 50001, EXT, 9003, SYN), UP, T0);
  assert.equal(b.p.dst, EXT, 'no longer published');
  // the existing flow keeps its mapping
  const c = route(nat, tcpPkt(WAN, 50000, EXT, 9003, SYN), UP, T0);
  assert.equal(c.v, NAT_ACCEPT);
  assert.equal(c.p.dst, BLUE);
});

test('config errors name the field', () => {
  const base = { uplinkIf: 1, ifAddr: Uint32Array.of(1, 2), masqueradeSources: [], maxFlows: 16 };
  assert.throws(() => new NatEngine({ ...base, maxFlows: 0 }), /nat\.maxFlows/);
  assert.throws(() => new NatEngine({ ...base, uplinkIf: 5 }), /nat\.uplinkIf/);
  assert.throws(() => new NatEngine({ ...base, portRange: [2000, 1000] }), /nat\.portRange/);
  assert.throws(() => new NatEngine({ ...base, timeouts: { udpReplied: -1 } }), /nat\.timeouts\.udpReplied/);
  assert.throws(() => new NatEngine({ ...base, masqueradeSources: [{ net: 0, prefixLen: 33 }] }), /masqueradeSources\[0\]/);
  assert.throws(
    () => new NatEngine({ ...base, forwards: [{ proto: 6, externalPort: 10, externalPortEnd: 5, internalIp: 1, internalPort: 1 }] }),
    /nat\.forwards/,
  );
});

test('flush empties the table; ids are reused', () => {
  const nat = labEngine({ maxFlows: 8 });
  for (let i = 0; i < 8; i++) route(nat, udpPkt(RED, 100 + i, WAN, 1), BR, T0);
  assert.equal(nat.size, 8);
  nat.flush();
  assert.equal(nat.size, 0);
  assert.equal(nat.list(T0).length, 0);
  for (let i = 0; i < 8; i++) assert.equal(route(nat, udpPkt(BLUE, 100 + i, WAN, 1), BR, T0).v, NAT_ACCEPT);
  assert.equal(nat.size, 8);
});

test('tuple index: random inserts and backward-shift deletes stay consistent', () => {
  const max = 2000;
  const idx = new FlowIndex(max, 7);
  const live = new Map<number, string>();
  let seed = 99;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const key = (e: number) => `${idx.kp(e)}/${idx.src(e)}/${idx.dst(e)}/${idx.sport(e)}/${idx.dport(e)}`;
  for (let round = 0; round < 20000; round++) {
    const e = rnd(max * 2);
    if (live.has(e)) {
      assert.ok(idx.remove(e));
      live.delete(e);
    } else {
      // few distinct values so clusters and equal hashes' neighbours are common
      idx.setTuple(e, 17, ip('10.100.0.2') + rnd(4), WAN, 1000 + (e % 500), 53 + (e % 3));
      idx.insert(e);
      live.set(e, key(e));
    }
    if (round % 1000 === 0) {
      for (const [x] of live) assert.equal(idx.lookup(idx.kp(x), idx.src(x), idx.dst(x), idx.sport(x), idx.dport(x)) >= 0, true);
    }
  }
  assert.equal(idx.entries, live.size);
  for (const [x, k] of live) {
    assert.equal(key(x), k);
    const found = idx.lookup(idx.kp(x), idx.src(x), idx.dst(x), idx.sport(x), idx.dport(x));
    assert.ok(found >= 0);
    assert.equal(key(found), k);
  }
  assert.equal(idx.lookup(6, 1, 2, 3, 4), -1);
});

test('TCP: simultaneous open goes through SYN_SENT2', () => {
  const nat = labEngine();
  const { o, r } = tcpPair(nat);
  o(SYN, T0);
  assert.equal(r(SYN, T0), NAT_ACCEPT);
  assert.equal(flowOf(nat, T0).state, 'SYN_SENT2');
  assert.equal(o(SYN | ACK, T0), NAT_ACCEPT);
  assert.equal(flowOf(nat, T0).state, 'SYN_RECV');
  assert.equal(r(ACK, T0), NAT_ACCEPT);
  assert.equal(flowOf(nat, T0).state, 'SYN_RECV');
});
