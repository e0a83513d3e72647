import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../src/faults/prng.js';
import {
  FaultStage,
  PASS,
  QUEUE,
  DUPLICATE,
  QUEUE_DUPLICATE,
  DROP_LOSS,
  DROP_NTH,
  DROP_FILTER,
  DROP_DOWN,
  DROP_RATE_QUEUE_FULL,
  isDrop,
} from '../../src/faults/stage.js';
import { FilterSyntaxError } from '../../src/trace/filter.js';
import { ICMP_ECHO, TCP_SYN, UDP_DNS } from '../helpers/frames.js';


/* Independent checksum verification (not the module's helper). */
function sum16(b: Uint8Array, s: number, e: number): number {
  let x = 0;
  for (let i = s; i < e; i += 2) x += (b[i]! << 8) | (i + 1 < e ? b[i + 1]! : 0);
  while (x > 0xffff) x = (x & 0xffff) + (x >>> 16);
  return x;
}
function checksumsValid(f: Uint8Array, off: number): { ip: boolean; l4: boolean } | null {
  const ip = off + 14;
  if (f[ip]! !== 0x45) return null;
  const tot = (f[ip + 2]! << 8) | f[ip + 3]!;
  if (((f[ip + 6]! << 8) | f[ip + 7]!) & 0x3fff) return null;
  const proto = f[ip + 9]!;
  const l4len = tot - 20;
  if (ip + tot > f.length || l4len < 8) return null;
  const ipOk = sum16(f, ip, ip + 20) === 0xffff;
  let l4 = 0;
  if (proto === 1) l4 = sum16(f, ip + 20, ip + tot);
  else if (proto === 6 || proto === 17) {
    if (proto === 6 && l4len < 20) return null;
    const ph = new Uint8Array(12);
    ph.set(f.subarray(ip + 12, ip + 20));
    ph[9] = proto;
    ph[10] = l4len >> 8;
    ph[11] = l4len & 0xff;
    let x = sum16(ph, 0, 12) + sum16(f, ip + 20, ip + tot);
    while (x > 0xffff) x = (x & 0xffff) + (x >>> 16);
    l4 = x;
  } else return null;
  return { ip: ipOk, l4: l4 === 0xffff };
}

test('prng: deterministic, uniform floats, normal and pareto moments', () => {
  const a = new Prng(42);
  const b = new Prng(42);
  for (let i = 0; i < 1000; i++) assert.equal(a.nextU32(), b.nextU32());
  const c = new Prng(43);
  let same = 0;
  a.reseed(42);
  b.reseed(42);
  for (let i = 0; i < 1000; i++) if (a.nextU32() === c.nextU32()) same++;
  assert.ok(same < 3);
  const r = new Prng(7);
  let s = 0;
  let s2 = 0;
  let n = 0;
  let min = 1;
  let max = 0;
  let ns = 0;
  let ns2 = 0;
  let ps = 0;
  const N = 200000;
  for (let i = 0; i < N; i++) {
    const f = r.nextFloat();
    min = Math.min(min, f);
    max = Math.max(max, f);
    s += f;
    s2 += f * f;
    const z = r.nextNormal();
    ns += z;
    ns2 += z * z;
    ps += r.nextPareto(3, 1);
    n++;
  }
  assert.ok(min >= 0 && max < 1);
  assert.ok(Math.abs(s / n - 0.5) < 0.005);
  assert.ok(Math.abs(s2 / n - 1 / 3) < 0.005);
  assert.ok(Math.abs(ns / n) < 0.01);
  assert.ok(Math.abs(ns2 / n - 1) < 0.02);
  assert.ok(Math.abs(ps / n - 1.5) < 0.05, `pareto mean ${ps / n}`); // alpha/(alpha-1)
  // nextBelow covers its range
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) seen.add(r.nextBelow(8));
  assert.deepEqual([...seen].sort(), [0, 1, 2, 3, 4, 5, 6, 7]);
});

function runLoss(seed: number): number[] {
  const st = new FaultStage();
  st.configure({ seed, loss: { percent: 20 } });
  const buf = UDP_DNS.slice();
  const out: number[] = [];
  for (let i = 0; i < 10000; i++) out.push(st.decide(buf, 0, buf.length, i * 0.1));
  return out;
}

test('loss: same seed + same input => identical decisions; ~20% dropped', () => {
  const a = runLoss(42);
  const b = runLoss(42);
  assert.deepEqual(a, b);
  const drops = a.filter((x) => x === DROP_LOSS).length;
  assert.ok(drops >= 1800 && drops <= 2200, `drops ${drops}`);
  assert.ok(a.every((x) => x === PASS || x === DROP_LOSS));
  const c = runLoss(43);
  assert.notDeepEqual(a, c);
});

test('loss decisions do not depend on other faults (independent PRNG streams)', () => {
  const a = new FaultStage();
  const b = new FaultStage();
  a.configure({ seed: 5, loss: { percent: 30 } });
  b.configure({ seed: 5, loss: { percent: 30 }, delay: { ms: 5, jitterMs: 3 }, duplicate: { percent: 10 } });
  const buf = UDP_DNS.slice();
  for (let i = 0; i < 5000; i++) {
    assert.equal(a.decide(buf, 0, buf.length, i) === DROP_LOSS, b.decide(buf, 0, buf.length, i) === DROP_LOSS);
  }
});

test('Gilbert-Elliott: bursty loss, mean burst length ~ 1/r, loss rate ~ p/(p+r)', () => {
  const st = new FaultStage();
  const p = 0.02;
  const r = 0.25;
  st.configure({ seed: 9, loss: { gilbertElliott: { p, r } } });
  const buf = UDP_DNS.slice();
  const N = 200000;
  let drops = 0;
  let bursts = 0;
  let prevDrop = false;
  for (let i = 0; i < N; i++) {
    const d = st.decide(buf, 0, buf.length, i) === DROP_LOSS;
    if (d) {
      drops++;
      if (!prevDrop) bursts++;
    }
    prevDrop = d;
  }
  const meanBurst = drops / bursts;
  assert.ok(Math.abs(meanBurst - 1 / r) < 0.1 * (1 / r), `mean burst ${meanBurst}`);
  const rate = drops / N;
  assert.ok(Math.abs(rate - p / (p + r)) < 0.01, `loss rate ${rate}`);
  // compare with Bernoulli at the same rate: bursts are much shorter
  const bern = new FaultStage();
  bern.configure({ seed: 9, loss: { percent: rate * 100 } });
  let bd = 0;
  let bb = 0;
  prevDrop = false;
  for (let i = 0; i < N; i++) {
    const d = bern.decide(buf, 0, buf.length, i) === DROP_LOSS;
    if (d) {
      bd++;
      if (!prevDrop) bb++;
    }
    prevDrop = d;
  }
  assert.ok(bd / bb < 1.2);
  assert.equal(st.counters().lossDrops, drops);
});

test('token bucket: 10 Mbit/s with 20 Mbit/s offered for 2 s releases ~2.5 MB', () => {
  const st = new FaultStage({ queueCapacity: 4096 });
  st.configure({ rate: { bitsPerSecond: 10_000_000 } });
  const frameLen = 1250; // 2000 frames/s * 1250 B * 8 = 20 Mbit/s
  const buf = new Uint8Array(frameLen);
  const slots = new Int32Array(256);
  const lens = new Int32Array(256);
  let released = 0;
  let releasedInSecondHalf = 0;
  let rateDrops = 0;
  let nextSlot = 0;
  let lastDeadline = 0;
  for (let t = 0; t < 2000; t += 0.5) {
    let n: number;
    while ((n = st.poll(t, slots, lens)) > 0) {
      for (let i = 0; i < n; i++) {
        released += lens[i]!;
        if (t >= 1000) releasedInSecondHalf += lens[i]!;
      }
    }
    const a = st.decide(buf, 0, frameLen, t);
    if (a === PASS) {
      released += frameLen;
      if (t >= 1000) releasedInSecondHalf += frameLen;
    } else if (a === QUEUE) {
      assert.ok(st.releaseTime >= lastDeadline, 'release times are FIFO');
      lastDeadline = st.releaseTime;
      assert.ok(st.enqueue(nextSlot++, frameLen, st.releaseTime));
    } else {
      assert.equal(a, DROP_RATE_QUEUE_FULL);
      rateDrops++;
    }
  }
  let n: number;
  while ((n = st.poll(2000, slots, lens)) > 0) for (let i = 0; i < n; i++) released += lens[i]!;
  assert.ok(Math.abs(released - 2_500_000) <= 0.05 * 2_500_000, `released ${released}`);
  assert.ok(Math.abs(releasedInSecondHalf - 1_250_000) <= 0.05 * 1_250_000, `steady state ${releasedInSecondHalf}`);
  assert.ok(rateDrops > 1500, `rate drops ${rateDrops}`);
  assert.equal(st.counters().rateDrops, rateDrops);
  // backlog never exceeded the queue limit (default max(128 KiB, 100 ms of rate))
  assert.ok(st.queued * frameLen <= 131072 + frameLen);
});

test('token bucket: a burst passes at once, then frames are paced', () => {
  const st = new FaultStage();
  st.configure({ rate: { bitsPerSecond: 8_000_000, burstBytes: 5000, queueLimitBytes: 1e6 } }); // 1000 B/ms
  const buf = new Uint8Array(1000);
  const acts: number[] = [];
  const rel: number[] = [];
  for (let i = 0; i < 8; i++) {
    acts.push(st.decide(buf, 0, 1000, 0));
    rel.push(st.releaseTime);
    if (acts[i] === QUEUE) st.enqueue(i, 1000, st.releaseTime);
  }
  assert.deepEqual(acts, [PASS, PASS, PASS, PASS, PASS, QUEUE, QUEUE, QUEUE]);
  assert.deepEqual(rel, [0, 0, 0, 0, 0, 1, 2, 3]);
  assert.equal(st.nextDeadline(), 1);
});

function delayRun(spec: Parameters<FaultStage['configure']>[0], frames: number, spacing: number): { order: number[]; delays: number[]; st: FaultStage } {
  const st = new FaultStage({ queueCapacity: 65536 });
  st.configure(spec);
  const buf = UDP_DNS.slice();
  const slots = new Int32Array(64);
  const lens = new Int32Array(64);
  const sentAt: number[] = [];
  const order: number[] = [];
  const delays: number[] = [];
  const deliver = (id: number, t: number): void => {
    order.push(id);
    delays.push(t - sentAt[id]!);
  };
  let t = 0;
  for (let i = 0; i < frames; i++, t += spacing) {
    let n: number;
    while ((n = st.poll(t, slots, lens)) > 0) for (let k = 0; k < n; k++) deliver(slots[k]!, t);
    sentAt[i] = t;
    const a = st.decide(buf, 0, buf.length, t);
    if (a === PASS) deliver(i, t);
    else {
      assert.equal(a, QUEUE);
      assert.ok(st.enqueue(i, buf.length, st.releaseTime));
    }
  }
  for (; st.queued > 0; t += spacing) {
    const dl = st.nextDeadline();
    assert.ok(dl < Infinity);
    let n: number;
    while ((n = st.poll(t, slots, lens)) > 0) for (let k = 0; k < n; k++) deliver(slots[k]!, t);
  }
  return { order, delays, st };
}

test('delay with jitter keeps FIFO order (uniform, normal, pareto)', () => {
  for (const distribution of ['uniform', 'normal', 'pareto'] as const) {
    const { order, delays, st } = delayRun({ seed: 3, delay: { ms: 20, jitterMs: 10, distribution } }, 3000, 0.25);
    assert.equal(order.length, 3000);
    for (let i = 0; i < order.length; i++) assert.equal(order[i], i, `${distribution}: order at ${i}`);
    const mean = delays.reduce((a, b) => a + b, 0) / delays.length;
    assert.ok(Math.min(...delays) >= (distribution === 'pareto' ? 20 : 0));
    // pareto: heavy tail + FIFO => head-of-line blocking behind outliers, so no mean bound
    if (distribution !== 'pareto') assert.ok(mean >= 19 && mean < 45, `${distribution} mean delay ${mean}`);
    assert.equal(st.counters().delayed, 3000);
    assert.equal(st.counters().released, 3000);
  }
  const fixed = delayRun({ delay: { ms: 7 } }, 100, 1);
  assert.ok(fixed.delays.every((d) => Math.abs(d - 7) < 1e-9));
});

test('reorder: only the picked fraction is overtaken, the rest keeps its order', () => {
  const { order, st } = delayRun({ seed: 11, reorder: { percent: 25, gapMs: 5 } }, 4000, 0.1);
  assert.equal(order.length, 4000);
  const c = st.counters();
  const frac = c.reordered / 4000;
  assert.ok(Math.abs(frac - 0.25) < 0.03, `reordered fraction ${frac}`);
  // frames delivered after a later-sent frame == held-back frames
  let late = 0;
  let maxSeen = -1;
  const inOrder: number[] = [];
  for (const id of order) {
    if (id < maxSeen) late++;
    else inOrder.push(id);
    maxSeen = Math.max(maxSeen, id);
  }
  assert.equal(late, c.reordered);
  // the non-held frames are delivered immediately and in order
  for (let i = 1; i < inOrder.length; i++) assert.ok(inOrder[i]! > inOrder[i - 1]!);
  // no reorder configured: identical order
  const plain = delayRun({ seed: 11, delay: { ms: 5, jitterMs: 4 } }, 1000, 0.1);
  assert.deepEqual(plain.order, [...Array(1000).keys()]);
});

test('duplicate: ~10% forwarded twice; with delay both copies are queued', () => {
  const st = new FaultStage();
  st.configure({ seed: 1, duplicate: { percent: 10 } });
  const buf = UDP_DNS.slice();
  let dups = 0;
  for (let i = 0; i < 10000; i++) {
    const a = st.decide(buf, 0, buf.length, i);
    assert.ok(a === PASS || a === DUPLICATE);
    if (a === DUPLICATE) dups++;
  }
  assert.ok(Math.abs(dups - 1000) < 150, `dups ${dups}`);
  assert.equal(st.counters().duplicated, dups);
  st.configure({ seed: 1, duplicate: { percent: 100 }, delay: { ms: 3 } });
  assert.equal(st.decide(buf, 0, buf.length, 20000), QUEUE_DUPLICATE);
  assert.equal(st.releaseTime, 20003);
});

test('corrupt + fixChecksums: bits flipped after the Ethernet header, checksums valid', () => {
  for (const [name, f] of [['icmp', ICMP_ECHO], ['tcp', TCP_SYN], ['udp', UDP_DNS]] as const) {
    const st = new FaultStage();
    st.configure({ seed: 77, corrupt: { percent: 100, fixChecksums: true, maxBits: 3 } });
    let checked = 0;
    for (let i = 0; i < 300; i++) {
      const buf = new Uint8Array(f.length + 20).fill(0xa5);
      buf.fill(0, 0, 10); // vnet header: no NEEDS_CSUM
      buf.set(f, 10);
      assert.equal(st.decide(buf, 10, f.length, i), PASS);
      const frame = buf.subarray(10, 10 + f.length);
      assert.deepEqual(frame.subarray(0, 14), f.subarray(0, 14), 'Ethernet header untouched');
      assert.deepEqual(buf.subarray(10 + f.length), new Uint8Array(10).fill(0xa5), 'nothing written past the frame');
      let diff = 0;
      for (let k = 14; k < f.length; k++) if (frame[k] !== f[k]) diff++;
      assert.ok(diff >= 1, `${name}: frame changed`);
      // if the flips left a parseable IPv4 header with the same protocol, checksums must be valid
      const v = frame[14 + 9] === f[14 + 9] ? checksumsValid(frame, 0) : null;
      if (v) {
        assert.ok(v.ip, `${name}: IPv4 header checksum valid (iteration ${i})`);
        assert.ok(v.l4, `${name}: L4 checksum valid (iteration ${i})`);
        checked++;
      }
    }
    assert.ok(checked > 200, `${name}: ${checked} frames verified`);
    assert.equal(st.counters().corrupted, 300);
  }
  // without fixChecksums the damage is visible to checksums
  const st = new FaultStage();
  st.configure({ seed: 5, corrupt: { percent: 100 } });
  let invalid = 0;
  for (let i = 0; i < 200; i++) {
    const buf = TCP_SYN.slice();
    st.decide(buf, 0, buf.length, i);
    const v = checksumsValid(buf, 0);
    if (!v || !v.ip || !v.l4) invalid++;
  }
  assert.equal(invalid, 200);
});

test('corrupt + fixChecksums on a NEEDS_CSUM frame leaves the pseudo-header partial sum', () => {
  const st = new FaultStage();
  st.configure({ seed: 2, corrupt: { percent: 100, fixChecksums: true } });
  for (let i = 0; i < 50; i++) {
    const buf = new Uint8Array(10 + TCP_SYN.length);
    buf[0] = 1; // VNET_F_NEEDS_CSUM
    buf.set(TCP_SYN, 10);
    st.decide(buf, 10, TCP_SYN.length, i);
    const ip = 10 + 14;
    if (buf[ip] !== 0x45 || buf[ip + 9] !== 6 || ((buf[ip + 2]! << 8) | buf[ip + 3]!) !== 40 || (buf[ip + 6]! & 0x3f) || buf[ip + 7]) continue;
    let x = sum16(buf, ip + 12, ip + 20) + 6 + 20;
    while (x > 0xffff) x = (x & 0xffff) + (x >>> 16);
    assert.equal((buf[ip + 20 + 16]! << 8) | buf[ip + 20 + 17]!, x);
  }
});

test('down, dropFilter, dropEveryNth and their counters', () => {
  const st = new FaultStage();
  st.configure({ dropEveryNth: 3 });
  const acts = [0, 1, 2, 3, 4, 5, 6].map((i) => st.decide(UDP_DNS, 0, UDP_DNS.length, i));
  assert.deepEqual(acts, [PASS, PASS, DROP_NTH, PASS, PASS, DROP_NTH, PASS]);
  st.configure({ dropFilter: 'icmp or tcp port 80' });
  assert.equal(st.decide(ICMP_ECHO, 0, ICMP_ECHO.length, 10), DROP_FILTER);
  assert.equal(st.decide(TCP_SYN, 0, TCP_SYN.length, 10), DROP_FILTER);
  assert.equal(st.decide(UDP_DNS, 0, UDP_DNS.length, 10), PASS);
  st.configure({ down: true });
  assert.equal(st.decide(UDP_DNS, 0, UDP_DNS.length, 11), DROP_DOWN);
  assert.ok(isDrop(DROP_DOWN) && isDrop(DROP_LOSS) && !isDrop(QUEUE_DUPLICATE));
  const c = st.counters();
  assert.equal(c.nthDrops, 2);
  assert.equal(c.filterDrops, 2);
  assert.equal(c.downDrops, 1);
  assert.equal(c.passed, 6);
  st.configure({});
  assert.equal(st.active, false);
  assert.equal(st.decide(UDP_DNS, 0, UDP_DNS.length, 12), PASS);
});

test('configure validates and changes nothing on error', () => {
  const st = new FaultStage();
  st.configure({ loss: { percent: 100 } });
  assert.throws(() => st.configure({ loss: { percent: 150 } }), /loss\.percent: expected a number in 0\.\.100/);
  assert.throws(() => st.configure({ dropFilter: 'port' }), FilterSyntaxError);
  assert.throws(() => st.configure({ delay: { ms: 1, distribution: 'weird' as 'normal' } }), /delay\.distribution/);
  assert.throws(() => st.configure({ rate: { bitsPerSecond: 0 } }), /rate\.bitsPerSecond/);
  assert.equal(st.decide(UDP_DNS, 0, UDP_DNS.length, 0), DROP_LOSS);
});

test('timer queue: capacity, poll batch size, nextDeadline, drainAll', () => {
  const st = new FaultStage({ queueCapacity: 4 });
  st.configure({ delay: { ms: 10 } });
  assert.equal(st.nextDeadline(), Infinity);
  for (let i = 0; i < 4; i++) {
    assert.equal(st.decide(UDP_DNS, 0, UDP_DNS.length, i), QUEUE);
    assert.ok(st.enqueue(100 + i, 60 + i, st.releaseTime));
  }
  assert.equal(st.decide(UDP_DNS, 0, UDP_DNS.length, 5), QUEUE);
  assert.equal(st.enqueue(999, 60, st.releaseTime), false);
  assert.equal(st.counters().queueFullDrops, 1);
  assert.equal(st.nextDeadline(), 10);
  const slots = new Int32Array(2);
  const lens = new Int32Array(2);
  assert.equal(st.poll(9.9, slots, lens), 0);
  assert.equal(st.poll(100, slots, lens), 2);
  assert.deepEqual([...slots], [100, 101]);
  assert.deepEqual([...lens], [60, 61]);
  assert.equal(st.nextDeadline(), 12);
  assert.equal(st.drainAll(slots, lens), 2);
  assert.deepEqual([...slots], [102, 103]);
  assert.equal(st.queued, 0);
});

test('decide/enqueue/poll do not allocate per frame (smoke: heap growth bounded)', () => {
  const st = new FaultStage({ queueCapacity: 1024 });
  st.configure({
    seed: 1,
    loss: { gilbertElliott: { p: 0.01, r: 0.3 } },
    delay: { ms: 2, jitterMs: 1, distribution: 'normal' },
    reorder: { percent: 5 },
    duplicate: { percent: 1 },
    corrupt: { percent: 1, fixChecksums: true },
    rate: { bitsPerSecond: 1e9 },
    dropFilter: 'tcp port 9',
  });
  const buf = UDP_DNS.slice();
  const slots = new Int32Array(64);
  const lens = new Int32Array(64);
  const run = (n: number, t0: number): void => {
    for (let i = 0; i < n; i++) {
      const t = t0 + i * 0.01;
      while (st.poll(t, slots, lens) > 0);
      const a = st.decide(buf, 0, buf.length, t);
      if (a & QUEUE) st.enqueue(i, buf.length, st.releaseTime);
    }
  };
  run(20000, 0);
  const before = process.memoryUsage().heapUsed;
  run(500000, 1000);
  const grown = process.memoryUsage().heapUsed - before;
  assert.ok(grown < 4 * 1024 * 1024, `heap grew by ${grown}`);
});
