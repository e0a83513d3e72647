/*
 * Bridge (src/switch/bridge.ts) on a real Arena with internal ports whose receivers record
 * every frame they are handed: flooding (never back to the ingress), known unicast,
 * same-port filtering, malformed/suspicious input drops, down ports, aging, and the
 * isolation of two bridges sharing one arena.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Arena } from '../../src/engine/arena.js';
import { Port, type FrameReceiver } from '../../src/engine/port.js';
import { Bridge } from '../../src/switch/bridge.js';
import { C_FLOODED, C_TX_PACKETS, DROP_BASE, dropName } from '../../src/engine/counters.js';
import { VNET_HDR_LEN } from '../../src/engine/frame.js';
import { parseMac } from '../../src/wire/mac.js';

const BCAST = 'ff:ff:ff:ff:ff:ff';
const MCAST = '01:00:5e:00:00:fb';
const MAC_A = '02:00:00:00:00:0a';
const MAC_B = '02:00:00:00:00:0b';
const MAC_C = '02:00:00:00:00:0c';
const MAC_D = '02:00:00:00:00:0d';

interface Rec {
  port: string;
  bytes: Buffer;
}

class Recorder implements FrameReceiver {
  readonly frames: Rec[] = [];
  receive(from: Port, off: number, len: number): void {
    const e = off + VNET_HDR_LEN;
    this.frames.push({ port: from.name, bytes: Buffer.from(from.arena.u8.subarray(e, e + len)) });
  }
  take(): Rec[] {
    return this.frames.splice(0);
  }
}

interface Sw {
  arena: Arena;
  rec: Recorder;
  bridges: Bridge[];
  port: Record<string, Port>;
}

/** Bridges by name with their port names; every port records into one shared Recorder. */
function setup(layout: Record<string, string[]>, opts: { agingMs?: number } = {}): Sw {
  const arena = new Arena(0, 32);
  const rec = new Recorder();
  const bridges: Bridge[] = [];
  const port: Record<string, Port> = {};
  let id = 0;
  for (const [name, ports] of Object.entries(layout)) {
    const b = new Bridge(bridges.length, arena.u8, { name, agingMs: opts.agingMs ?? 300_000, macTableSize: 64, macLimitPerPort: 0, maxPorts: 8 });
    bridges.push(b);
    for (const p of ports) {
      const po = new Port(id++, p, 'internal', arena, -1, true, rec, p, 0);
      b.attach(po);
      port[p] = po;
    }
  }
  return { arena, rec, bridges, port };
}

/** An Ethernet frame: dst, src, ethertype, then `payload` bytes of 0xa5 (IPv4-ish, 60 bytes min). */
function frame(dst: string, src: string, payload = 46, ethertype = 0x0800): Buffer {
  const b = Buffer.alloc(14 + payload, 0xa5);
  Buffer.from(dst.replace(/:/g, ''), 'hex').copy(b, 0);
  Buffer.from(src.replace(/:/g, ''), 'hex').copy(b, 6);
  b.writeUInt16BE(ethertype, 12);
  return b;
}

/** Put the frame into a pool slot and switch it as if received on `port` at time `now`. */
function inject(sw: Sw, port: string, bytes: Buffer, now = 1000): void {
  const p = sw.port[port];
  const b = sw.bridges[p.bridgeId];
  const slot = sw.arena.alloc();
  assert.ok(slot >= 0, 'arena exhausted');
  sw.arena.u8.fill(0xa5, slot, slot + 256);
  sw.arena.u8.fill(0, slot, slot + VNET_HDR_LEN);
  sw.arena.u8.set(bytes, slot + VNET_HDR_LEN);
  b.clock.now = now;
  b.input(p, slot, bytes.length);
  sw.arena.release(slot);
}

function drops(p: Port): Record<string, number> {
  const r: Record<string, number> = {};
  for (let i = 1; i < 128; i++) if (p.counters[DROP_BASE + i] > 0) r[dropName(i)] = p.counters[DROP_BASE + i];
  return r;
}

const names = (recs: Rec[]) => recs.map((r) => r.port).sort();

describe('flooding', () => {
  test('broadcast goes to every other port, once each, never back to the ingress', () => {
    const sw = setup({ br0: ['p0', 'p1', 'p2', 'p3'] });
    const f = frame(BCAST, MAC_A);
    inject(sw, 'p1', f);
    const got = sw.rec.take();
    assert.deepEqual(names(got), ['p0', 'p2', 'p3']);
    for (const r of got) assert.deepEqual(r.bytes, f, 'delivered bytes are the received frame');
    assert.equal(sw.bridges[0].flooded, 1);
    assert.equal(sw.port.p1.counters[C_FLOODED], 1);
    assert.equal(sw.port.p1.counters[C_TX_PACKETS], 0);
    for (const p of ['p0', 'p2', 'p3']) assert.equal(sw.port[p].counters[C_TX_PACKETS], 1);
  });

  test('multicast and unknown unicast are flooded the same way', () => {
    const sw = setup({ br0: ['p0', 'p1', 'p2'] });
    inject(sw, 'p0', frame(MCAST, MAC_A));
    assert.deepEqual(names(sw.rec.take()), ['p1', 'p2']);
    inject(sw, 'p2', frame(MAC_D, MAC_C));
    assert.deepEqual(names(sw.rec.take()), ['p0', 'p1'], 'unknown unicast floods');
    assert.equal(sw.bridges[0].flooded, 2);
    assert.equal(sw.bridges[0].forwarded, 0);
  });

  test('ports that are down are left out of floods', () => {
    const sw = setup({ br0: ['p0', 'p1', 'p2'] });
    sw.port.p2.up = false;
    inject(sw, 'p0', frame(BCAST, MAC_A));
    assert.deepEqual(names(sw.rec.take()), ['p1']);
  });

  test('a bridge with a single port floods nowhere', () => {
    const sw = setup({ br0: ['p0'] });
    inject(sw, 'p0', frame(BCAST, MAC_A));
    assert.equal(sw.rec.take().length, 0);
  });
});

describe('learning and known unicast', () => {
  test('after learning, unicast goes to exactly the port the MAC lives on', () => {
    const sw = setup({ br0: ['p0', 'p1', 'p2'] });
    inject(sw, 'p0', frame(BCAST, MAC_A)); // A on p0
    sw.rec.take();
    inject(sw, 'p1', frame(MAC_A, MAC_B)); // B on p1, to A
    assert.deepEqual(names(sw.rec.take()), ['p0']);
    inject(sw, 'p0', frame(MAC_B, MAC_A));
    assert.deepEqual(names(sw.rec.take()), ['p1']);
    assert.equal(sw.bridges[0].forwarded, 2);
    assert.equal(sw.bridges[0].flooded, 1);
    assert.equal(sw.bridges[0].fdb.lookup(parseMac(MAC_A)!, 1000), sw.port.p0.bridgePort);
    assert.equal(sw.bridges[0].fdb.lookup(parseMac(MAC_B)!, 1000), sw.port.p1.bridgePort);
  });

  test('a MAC that moves is followed', () => {
    const sw = setup({ br0: ['p0', 'p1', 'p2'] });
    inject(sw, 'p0', frame(BCAST, MAC_A));
    inject(sw, 'p2', frame(BCAST, MAC_A)); // A moved to p2
    sw.rec.take();
    inject(sw, 'p1', frame(MAC_A, MAC_B));
    assert.deepEqual(names(sw.rec.take()), ['p2']);
    assert.equal(sw.bridges[0].fdb.moved, 1);
  });

  test('destination on the ingress port is filtered and counted as same_port', () => {
    const sw = setup({ br0: ['p0', 'p1'] });
    inject(sw, 'p0', frame(BCAST, MAC_A));
    inject(sw, 'p0', frame(BCAST, MAC_C)); // A and C both behind p0 (e.g. a downstream switch)
    sw.rec.take();
    inject(sw, 'p0', frame(MAC_C, MAC_A));
    assert.equal(sw.rec.take().length, 0);
    assert.deepEqual(drops(sw.port.p0), { same_port: 1 });
  });

  test('an aged-out destination is flooded again', () => {
    const sw = setup({ br0: ['p0', 'p1', 'p2'] }, { agingMs: 1000 });
    inject(sw, 'p0', frame(BCAST, MAC_A), 0);
    sw.rec.take();
    inject(sw, 'p1', frame(MAC_A, MAC_B), 900);
    assert.deepEqual(names(sw.rec.take()), ['p0'], 'still known after 900 ms');
    inject(sw, 'p1', frame(MAC_A, MAC_B), 2500);
    assert.deepEqual(names(sw.rec.take()), ['p0', 'p2'], 'aged out after 1000 ms: flooded');
  });

  test('a static entry pins a MAC: unicast to it goes to its port even if it appears elsewhere', () => {
    const sw = setup({ br0: ['p0', 'p1', 'p2'] });
    sw.bridges[0].fdb.addStatic(parseMac(MAC_D)!, sw.port.p2.bridgePort);
    inject(sw, 'p0', frame(BCAST, MAC_D)); // a spoofer on p0 claims D
    sw.rec.take();
    inject(sw, 'p1', frame(MAC_D, MAC_B));
    assert.deepEqual(names(sw.rec.take()), ['p2']);
  });
});

describe('malformed and suspicious frames', () => {
  test('a frame shorter than an Ethernet header is dropped and counted (eth_too_short)', () => {
    const sw = setup({ br0: ['p0', 'p1'] });
    inject(sw, 'p0', frame(BCAST, MAC_A, 0).subarray(0, 13));
    assert.equal(sw.rec.take().length, 0);
    assert.deepEqual(drops(sw.port.p0), { eth_too_short: 1 });
    assert.equal(sw.bridges[0].fdb.size, 0);
    // exactly a header (14 bytes) is switched
    inject(sw, 'p0', frame(BCAST, MAC_A, 0));
    assert.deepEqual(names(sw.rec.take()), ['p1']);
  });

  test('a multicast source MAC is dropped, counted and not learned', () => {
    const sw = setup({ br0: ['p0', 'p1', 'p2'] });
    inject(sw, 'p0', frame(BCAST, MCAST));
    inject(sw, 'p0', frame(MAC_A, BCAST));
    assert.equal(sw.rec.take().length, 0);
    assert.deepEqual(drops(sw.port.p0), { src_mac_multicast: 2 });
    assert.equal(sw.bridges[0].fdb.size, 0);
    assert.equal(sw.bridges[0].flooded, 0);
  });
});

describe('isolation', () => {
  test('two bridges on one arena never see each other\'s frames or MACs', () => {
    const sw = setup({ brA: ['a0', 'a1'], brB: ['b0', 'b1'] });
    const [brA, brB] = sw.bridges;
    inject(sw, 'a0', frame(BCAST, MAC_A));
    assert.deepEqual(names(sw.rec.take()), ['a1']);
    inject(sw, 'a0', frame(MAC_D, MAC_A)); // unknown unicast on A
    assert.deepEqual(names(sw.rec.take()), ['a1']);
    inject(sw, 'b0', frame(BCAST, MAC_B));
    assert.deepEqual(names(sw.rec.take()), ['b1']);
    // B knows MAC_B, A knows MAC_A; a frame on A to MAC_B is unknown there: flooded in A only
    inject(sw, 'a1', frame(MAC_B, MAC_C));
    assert.deepEqual(names(sw.rec.take()), ['a0']);
    assert.equal(brA.fdb.lookup(parseMac(MAC_B)!, 1000), -1);
    assert.equal(brB.fdb.lookup(parseMac(MAC_A)!, 1000), -1);
    assert.equal(brB.fdb.lookup(parseMac(MAC_C)!, 1000), -1);
    assert.equal(brA.fdb.size, 2);
    assert.equal(brB.fdb.size, 1);
    assert.equal(sw.port.b0.counters[C_TX_PACKETS] + sw.port.b1.counters[C_TX_PACKETS], 1, 'only the one B broadcast reached B ports');
  });

  test('port indices are per bridge', () => {
    const sw = setup({ brA: ['a0', 'a1'], brB: ['b0', 'b1', 'b2'] });
    assert.deepEqual(
      ['a0', 'a1', 'b0', 'b1', 'b2'].map((p) => [sw.port[p].bridgeId, sw.port[p].bridgePort]),
      [[0, 0], [0, 1], [1, 0], [1, 1], [1, 2]],
    );
  });
});
