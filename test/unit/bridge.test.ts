/*
 * The switch element (src/switch/switch.ts) in a data plane without devices: every port is a
 * device element without an fd whose TX queue is read back. Flooding (never back to the
 * ingress), known unicast, same-port filtering, malformed/suspicious input drops, down
 * ports, aging, and the isolation of two bridges sharing one arena.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { C_FLOODED, C_TX_PACKETS } from '../../src/core/counters.js';
import { parseMac } from '../../src/wire/mac.js';
import { names, TestPlane } from '../helpers/dataplane.js';

const BCAST = 'ff:ff:ff:ff:ff:ff';
const MCAST = '01:00:5e:00:00:fb';
const MAC_A = '02:00:00:00:00:0a';
const MAC_B = '02:00:00:00:00:0b';
const MAC_C = '02:00:00:00:00:0c';
const MAC_D = '02:00:00:00:00:0d';

/** Bridges by name with their port names. */
function setup(layout: Record<string, string[]>, opts: { agingMs?: number } = {}): Sw {
  const plane = TestPlane.switches(layout, opts.agingMs !== undefined ? { agingSeconds: opts.agingMs / 1000 } : {});
  return new Sw(plane);
}

class Sw {
  constructor(readonly plane: TestPlane) {}
  get rec() {
    return { take: () => this.plane.take() };
  }
  bridge(name = 'br0') {
    return this.plane.engine.switchOf(name)!;
  }
  get bridges() {
    return this.plane.engine.switches;
  }
  up(port: string, up: boolean) {
    this.plane.engine.record(port)!.up = up;
  }
  index(port: string): number {
    const r = this.plane.engine.record(port)!;
    return this.plane.engine.switchOf(r.bridge!)!.portIndex(port);
  }
  counter(port: string, i: number): number {
    return this.plane.counter(port, i);
  }
}

/** An Ethernet frame: dst, src, ethertype, then `payload` bytes of 0xa5 (IPv4-ish, 60 bytes min). */
function frame(dst: string, src: string, payload = 46, ethertype = 0x0800): Buffer {
  const b = Buffer.alloc(14 + payload, 0xa5);
  Buffer.from(dst.replace(/:/g, ''), 'hex').copy(b, 0);
  Buffer.from(src.replace(/:/g, ''), 'hex').copy(b, 6);
  b.writeUInt16BE(ethertype, 12);
  return b;
}

/** Switch the frame as if received on `port` at time `now`. */
function inject(sw: Sw, port: string, bytes: Buffer, now = 1000): void {
  sw.plane.inject(port, bytes, now);
}

function drops(sw: Sw, port: string): Record<string, number> {
  return sw.plane.drops(port);
}



describe('flooding', () => {
  test('broadcast goes to every other port, once each, never back to the ingress', () => {
    const sw = setup({ br0: ['p0', 'p1', 'p2', 'p3'] });
    const f = frame(BCAST, MAC_A);
    inject(sw, 'p1', f);
    const got = sw.rec.take();
    assert.deepEqual(names(got), ['p0', 'p2', 'p3']);
    for (const r of got) assert.deepEqual(r.bytes, f, 'delivered bytes are the received frame');
    assert.equal(sw.bridges[0].counters.flooded, 1);
    assert.equal(sw.counter('p1', C_FLOODED), 1);
    assert.equal(sw.counter('p1', C_TX_PACKETS), 0);
    for (const p of ['p0', 'p2', 'p3']) assert.equal(sw.counter(p, C_TX_PACKETS), 1);
  });

  test('multicast and unknown unicast are flooded the same way', () => {
    const sw = setup({ br0: ['p0', 'p1', 'p2'] });
    inject(sw, 'p0', frame(MCAST, MAC_A));
    assert.deepEqual(names(sw.rec.take()), ['p1', 'p2']);
    inject(sw, 'p2', frame(MAC_D, MAC_C));
    assert.deepEqual(names(sw.rec.take()), ['p0', 'p1'], 'unknown unicast floods');
    assert.equal(sw.bridges[0].counters.flooded, 2);
    assert.equal(sw.bridges[0].counters.forwarded, 0);
  });

  test('ports that are down are left out of floods', () => {
    const sw = setup({ br0: ['p0', 'p1', 'p2'] });
    sw.up('p2', false);
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
    assert.equal(sw.bridges[0].counters.forwarded, 2);
    assert.equal(sw.bridges[0].counters.flooded, 1);
    assert.equal(sw.bridges[0].fdb.lookup(parseMac(MAC_A)!, 1000), sw.index('p0'));
    assert.equal(sw.bridges[0].fdb.lookup(parseMac(MAC_B)!, 1000), sw.index('p1'));
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
    assert.deepEqual(drops(sw, 'p0'), { same_port: 1 });
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
    sw.bridges[0].fdb.addStatic(parseMac(MAC_D)!, sw.index('p2'));
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
    assert.deepEqual(drops(sw, 'p0'), { eth_too_short: 1 });
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
    assert.deepEqual(drops(sw, 'p0'), { src_mac_multicast: 2 });
    assert.equal(sw.bridges[0].fdb.size, 0);
    assert.equal(sw.bridges[0].counters.flooded, 0);
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
    assert.equal(sw.counter('b0', C_TX_PACKETS) + sw.counter('b1', C_TX_PACKETS), 1, 'only the one B broadcast reached B ports');
  });

  test('port indices are per bridge', () => {
    const sw = setup({ brA: ['a0', 'a1'], brB: ['b0', 'b1', 'b2'] });
    assert.deepEqual(
      ['a0', 'a1', 'b0', 'b1', 'b2'].map((p) => [sw.plane.engine.record(p)!.bridge, sw.index(p)]),
      [['brA', 0], ['brA', 1], ['brB', 0], ['brB', 1], ['brB', 2]],
    );
  });
});
