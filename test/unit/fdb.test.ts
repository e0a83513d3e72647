/*
 * MacTable (src/switch/fdb.ts): learning, aging with an injected clock, bounds (table and
 * per port), static entries, MAC moves, flushPort, and a randomized comparison against a
 * Map model that exercises backward-shift deletion in long probe runs.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  LEARN_MOVED,
  LEARN_OK,
  LEARN_REFUSED_FULL,
  LEARN_REFUSED_PORT_LIMIT,
  type WhenFull,
  LEARN_STATIC_CONFLICT,
  MacTable,
} from '../../src/switch/fdb.js';
import { parseMac } from '../../src/wire/mac.js';

const mac = (s: string): number => {
  const m = parseMac(s);
  assert.notEqual(m, null, `bad MAC in test: ${s}`);
  return m!;
};
/** Locally administered unicast MACs 02:00:00:xx:xx:xx from an index. */
const nthMac = (i: number): number => 0x020000000000 + i;

const A = mac('02:00:00:00:00:0a');
const B = mac('02:00:00:00:00:0b');
const C = mac('02:00:00:00:00:0c');

function table(opts: Partial<{ capacity: number; agingMs: number; perPortLimit: number; maxPorts: number; whenFull: WhenFull }> = {}): MacTable {
  return new MacTable({ capacity: opts.capacity ?? 64, agingMs: opts.agingMs ?? 300_000, perPortLimit: opts.perPortLimit, maxPorts: opts.maxPorts ?? 8, whenFull: opts.whenFull ?? 'refuse' });
}

/** Small deterministic PRNG (mulberry32) so a failing run can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('learning and lookup', () => {
  test('an unknown MAC is -1; a learned MAC maps to its port', () => {
    const t = table();
    assert.equal(t.lookup(A, 0), -1);
    assert.equal(t.learn(A, 3, 0), LEARN_OK);
    assert.equal(t.lookup(A, 0), 3);
    assert.equal(t.lookup(B, 0), -1);
    assert.equal(t.size, 1);
    assert.equal(t.learned, 1);
    assert.equal(t.portCount(3), 1);
  });

  test('re-learning on the same port refreshes, it is not a new entry', () => {
    const t = table();
    t.learn(A, 1, 0);
    assert.equal(t.learn(A, 1, 10), LEARN_OK);
    assert.equal(t.size, 1);
    assert.equal(t.learned, 1);
    assert.equal(t.moved, 0);
  });

  test('48-bit MACs with the same low 32 bits are different entries', () => {
    const t = table();
    const x = mac('02:00:12:34:56:78');
    const y = mac('06:00:12:34:56:78');
    t.learn(x, 1, 0);
    t.learn(y, 2, 0);
    assert.equal(t.lookup(x, 0), 1);
    assert.equal(t.lookup(y, 0), 2);
  });
});

describe('aging (injected clock)', () => {
  test('an entry lives agingMs after it was last seen, then lookup misses and counts it aged', () => {
    const t = table({ agingMs: 1000 });
    t.learn(A, 1, 5000);
    assert.equal(t.lookup(A, 6000), 1, 'exactly agingMs later it is still there');
    assert.equal(t.lookup(A, 6001), -1, 'one ms later it is gone');
    assert.equal(t.aged, 1);
    assert.equal(t.size, 0);
    assert.equal(t.portCount(1), 0);
  });

  test('seeing the MAC again restarts its age', () => {
    const t = table({ agingMs: 1000 });
    t.learn(A, 1, 0);
    t.learn(A, 1, 800);
    assert.equal(t.lookup(A, 1700), 1);
    assert.equal(t.lookup(A, 1801), -1);
  });

  test('a lookup does not refresh: only traffic from the MAC does', () => {
    const t = table({ agingMs: 1000 });
    t.learn(A, 1, 0);
    assert.equal(t.lookup(A, 900), 1);
    assert.equal(t.lookup(A, 1001), -1);
  });

  test('sweep removes exactly the aged entries and counts them', () => {
    const t = table({ agingMs: 1000 });
    t.learn(A, 1, 0);
    t.learn(B, 2, 500);
    t.learn(C, 3, 900);
    assert.equal(t.sweep(1400), 1, 'only A is older than 1000 ms');
    assert.equal(t.size, 2);
    assert.equal(t.aged, 1);
    assert.equal(t.lookup(A, 1400), -1);
    assert.equal(t.lookup(B, 1400), 2);
    assert.equal(t.lookup(C, 1400), 3);
    assert.equal(t.sweep(10_000), 2);
    assert.equal(t.size, 0);
    assert.equal(t.aged, 3);
  });

  test('entries() hides aged entries and reports ages in seconds', () => {
    const t = table({ agingMs: 10_000 });
    t.learn(A, 1, 0);
    t.learn(B, 2, 8000);
    const rows = t.entries(10_500);
    assert.deepEqual(
      rows.map((r) => [r.mac, r.port, r.ageSeconds, r.isStatic]).sort((x, y) => Number(x[0]) - Number(y[0])),
      [[B, 2, 2.5, false]],
    );
  });
});

describe('bounds', () => {
  test('a full table refuses new MACs, counts learnRefused and never exceeds its capacity', () => {
    const cap = 8;
    const t = table({ capacity: cap });
    let refused = 0;
    for (let i = 0; i < 100; i++) {
      const r = t.learn(nthMac(i), i % 4, i);
      if (i < cap) assert.equal(r, LEARN_OK);
      else {
        assert.equal(r, LEARN_REFUSED_FULL);
        refused++;
      }
      assert.ok(t.size <= cap, `size ${t.size} exceeds capacity ${cap}`);
    }
    assert.equal(t.size, cap);
    assert.equal(t.learnRefused, refused);
    assert.equal(t.learnRefused, 100 - cap);
    assert.equal(t.learned, cap);
    // the first `cap` MACs are still known; refused ones are not
    for (let i = 0; i < cap; i++) assert.equal(t.lookup(nthMac(i), 100), i % 4);
    for (let i = cap; i < 100; i++) assert.equal(t.lookup(nthMac(i), 100), -1);
    // refreshing and moving known MACs still works when full
    assert.equal(t.learn(nthMac(0), 0, 101), LEARN_OK);
    assert.equal(t.learn(nthMac(1), 3, 101), LEARN_MOVED);
    assert.equal(t.size, cap);
  });

  test('space freed by aging can be learned into again', () => {
    const t = table({ capacity: 2, agingMs: 100 });
    t.learn(A, 1, 0);
    t.learn(B, 1, 0);
    assert.equal(t.learn(C, 1, 50), LEARN_REFUSED_FULL);
    t.sweep(500);
    assert.equal(t.learn(C, 1, 500), LEARN_OK);
    assert.equal(t.lookup(C, 500), 1);
  });

  test('the per-port limit refuses a port its next MAC but not other ports', () => {
    const t = table({ perPortLimit: 2 });
    assert.equal(t.learn(nthMac(1), 0, 0), LEARN_OK);
    assert.equal(t.learn(nthMac(2), 0, 0), LEARN_OK);
    assert.equal(t.learn(nthMac(3), 0, 0), LEARN_REFUSED_PORT_LIMIT);
    assert.equal(t.learnRefusedPortLimit, 1);
    assert.equal(t.learnRefused, 0, 'the table itself is not full');
    assert.equal(t.portCount(0), 2);
    assert.equal(t.lookup(nthMac(3), 0), -1);
    assert.equal(t.learn(nthMac(3), 1, 0), LEARN_OK, 'another port still learns');
    // a MAC moving onto the full port is refused and stays where it was
    assert.equal(t.learn(nthMac(3), 0, 1), LEARN_REFUSED_PORT_LIMIT);
    assert.equal(t.lookup(nthMac(3), 1), 1);
    assert.equal(t.learnRefusedPortLimit, 2);
    assert.equal(t.portCount(0), 2);
    assert.equal(t.portCount(1), 1);
  });

  test("evict (the default): a full table learns the newcomer and drops the least recently seen entry", () => {
    const t = new MacTable({ capacity: 4, agingMs: 300_000, maxPorts: 4 });
    assert.equal(t.whenFull, 'evict');
    for (let i = 0; i < 4; i++) t.learn(nthMac(i), 0, 10 + i); // MAC 0 is the oldest
    t.learn(nthMac(0), 0, 50); // ... until it is seen again: now MAC 1 is
    assert.equal(t.learn(nthMac(9), 1, 60), LEARN_OK, 'the newcomer is learned');
    assert.equal(t.size, 4);
    assert.equal(t.evicted, 1);
    assert.equal(t.learnRefused, 0);
    assert.equal(t.lookup(nthMac(1), 60), -1, 'the least recently seen one went');
    for (const i of [0, 2, 3, 9]) assert.notEqual(t.lookup(nthMac(i), 60), -1, `MAC ${i} stays`);
  });

  test('evict: a port at its limit churns its own entries, other ports keep theirs', () => {
    const t = new MacTable({ capacity: 64, agingMs: 300_000, perPortLimit: 8, maxPorts: 4 });
    t.learn(nthMac(1000), 2, 0); // a quiet station on port 2
    for (let i = 0; i < 500; i++) assert.equal(t.learn(nthMac(i), 0, i + 1), LEARN_OK, 'a CAM flood on port 0: each new MAC is learned');
    assert.equal(t.portCount(0), 8, 'port 0 never holds more than its limit');
    assert.equal(t.lookup(nthMac(1000), 600), 2, 'the station on port 2 was never evicted');
    assert.equal(t.learn(nthMac(2000), 3, 600), LEARN_OK, 'a station appearing later is learned');
    assert.equal(t.lookup(nthMac(2000), 600), 3);
    assert.equal(t.evicted, 492);
  });

  test('capacity below 1 is a programming error', () => {
    assert.throws(() => new MacTable({ capacity: 0, agingMs: 1000, maxPorts: 1 }), RangeError);
  });
});

describe('static entries', () => {
  test('never age, never move, survive sweep and flushPort', () => {
    const t = table({ agingMs: 1000 });
    t.addStatic(A, 2);
    assert.equal(t.lookup(A, 0), 2);
    assert.equal(t.lookup(A, 1e9), 2, 'no aging');
    assert.equal(t.sweep(1e9), 0);
    assert.equal(t.learn(A, 5, 1e9), LEARN_STATIC_CONFLICT, 'traffic from elsewhere does not move it');
    assert.equal(t.lookup(A, 1e9), 2);
    assert.equal(t.moved, 0);
    assert.equal(t.flushPort(2), 0);
    assert.equal(t.lookup(A, 1e9), 2);
    const rows = t.entries(1e9);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].isStatic, true);
    assert.equal(rows[0].ageSeconds, 0);
  });

  test('a static entry replaces a learned one for the same MAC', () => {
    const t = table();
    t.learn(A, 1, 0);
    t.addStatic(A, 4);
    assert.equal(t.lookup(A, 0), 4);
    assert.equal(t.size, 1);
    assert.equal(t.portCount(1), 0);
    assert.equal(t.portCount(4), 1);
  });

  test('adding a static entry to a full table throws instead of growing it', () => {
    const t = table({ capacity: 1 });
    t.learn(A, 1, 0);
    assert.throws(() => t.addStatic(B, 1), RangeError);
    assert.equal(t.size, 1);
  });
});

describe('moves and flushes', () => {
  test('a MAC seen on another port moves there (counted), per-port counts follow', () => {
    const t = table();
    t.learn(A, 1, 0);
    assert.equal(t.learn(A, 2, 10), LEARN_MOVED);
    assert.equal(t.lookup(A, 10), 2);
    assert.equal(t.moved, 1);
    assert.equal(t.size, 1);
    assert.equal(t.portCount(1), 0);
    assert.equal(t.portCount(2), 1);
  });

  test('flushPort forgets the learned MACs of one port only', () => {
    const t = table({ capacity: 256 });
    for (let i = 0; i < 150; i++) t.learn(nthMac(i), i % 3, 0);
    t.addStatic(mac('02:ff:00:00:00:01'), 1);
    const removed = t.flushPort(1);
    assert.equal(removed, 50);
    assert.equal(t.portCount(1), 1, 'the static entry stays');
    for (let i = 0; i < 150; i++) assert.equal(t.lookup(nthMac(i), 0), i % 3 === 1 ? -1 : i % 3, `MAC #${i}`);
    assert.equal(t.lookup(mac('02:ff:00:00:00:01'), 0), 1);
    assert.equal(t.size, 101);
  });

  test('remove() deletes one entry and reports whether it existed', () => {
    const t = table();
    t.learn(A, 1, 0);
    assert.equal(t.remove(A), true);
    assert.equal(t.remove(A), false);
    assert.equal(t.lookup(A, 0), -1);
    assert.equal(t.size, 0);
  });
});

describe('randomized against a Map model (backward-shift deletion)', () => {
  for (const { seed, capacity, universe, ops } of [
    { seed: 1, capacity: 64, universe: 200, ops: 20_000 },
    { seed: 7, capacity: 500, universe: 1500, ops: 30_000 },
    { seed: 42, capacity: 16, universe: 40, ops: 10_000 },
  ]) {
    test(`seed ${seed}: capacity ${capacity}, ${universe} MACs, ${ops} operations`, () => {
      const rnd = prng(seed);
      const ports = 6;
      const t = new MacTable({ capacity, agingMs: 1e12, maxPorts: ports, whenFull: 'refuse' });
      const model = new Map<number, number>();
      // MACs spread over the whole 48-bit space, including high bits
      const macs: number[] = [];
      for (let i = 0; i < universe; i++) macs.push(Math.floor(rnd() * 0x7fff) * 0x200000000 + Math.floor(rnd() * 0xffffffff) * 2);
      const check = (why: string) => {
        assert.equal(t.size, model.size, `size after ${why}`);
        for (const [m, p] of model) assert.equal(t.lookup(m, 0), p, `lookup of a member after ${why}`);
        const perPort = new Array<number>(ports).fill(0);
        for (const p of model.values()) perPort[p]++;
        for (let p = 0; p < ports; p++) assert.equal(t.portCount(p), perPort[p], `portCount(${p}) after ${why}`);
      };
      for (let n = 0; n < ops; n++) {
        const m = macs[Math.floor(rnd() * universe)];
        const r = rnd();
        if (r < 0.55) {
          const port = Math.floor(rnd() * ports);
          const res = t.learn(m, port, 0);
          if (model.has(m)) {
            assert.equal(res, model.get(m) === port ? LEARN_OK : LEARN_MOVED);
            model.set(m, port);
          } else if (model.size >= capacity) {
            assert.equal(res, LEARN_REFUSED_FULL);
          } else {
            assert.equal(res, LEARN_OK);
            model.set(m, port);
          }
        } else if (r < 0.95) {
          assert.equal(t.remove(m), model.delete(m), `remove op #${n}`);
        } else if (r < 0.995) {
          assert.equal(t.lookup(m, 0), model.get(m) ?? -1, `lookup op #${n}`);
        } else {
          const port = Math.floor(rnd() * ports);
          let expected = 0;
          for (const [k, p] of model)
            if (p === port) {
              model.delete(k);
              expected++;
            }
          assert.equal(t.flushPort(port), expected, `flushPort op #${n}`);
        }
        assert.ok(t.size <= capacity);
        if (n % 997 === 0) check(`op #${n}`);
      }
      check('the last operation');
      for (const m of macs) if (!model.has(m)) assert.equal(t.lookup(m, 0), -1, 'a non-member is not found');
    });
  }
});
