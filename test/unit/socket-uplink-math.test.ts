/*
 * Pure logic of the socket uplink (src/uplink/): sequence arithmetic across the 2^32 wrap,
 * the window field from the socket's free send space, the new-data offset of a segment,
 * the retransmission backoff, and the flow index (insert, find, remove in chains).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { newDataOffset, OUR_WSCALE, rtoMs, sendSpace, seqAdd, seqDiff, seqLeq, seqLt, windowField } from '../../src/uplink/tcp-math.js';
import { FlowIndex } from '../../src/uplink/flow-index.js';

describe('socket uplink: TCP arithmetic', () => {
  test('sequence comparisons hold across the wrap', () => {
    assert.equal(seqAdd(0xfffffff0, 0x20), 0x10);
    assert.equal(seqDiff(0x10, 0xfffffff0), 0x20);
    assert.equal(seqDiff(0xfffffff0, 0x10), -0x20);
    assert.ok(seqLt(0xfffffff0, 0x10));
    assert.ok(!seqLt(0x10, 0xfffffff0));
    assert.ok(seqLeq(5, 5));
    assert.ok(!seqLt(5, 5));
  });

  test('window field: scaled down, capped at 65535, 0 when the socket is full', () => {
    assert.equal(windowField(0, OUR_WSCALE), 0);
    assert.equal(windowField(-5, 0), 0);
    assert.equal(windowField(1000, 0), 1000);
    assert.equal(windowField(100_000, 0), 0xffff);
    assert.equal(windowField(1 << 20, 7), 8192);
    assert.equal(windowField(127, 7), 0, 'less than one unit of 128 bytes is a zero window');
  });

  test('send space: three quarters of SO_SNDBUF minus the queue, never negative', () => {
    assert.equal(sendSpace(4096, 0), 3072);
    assert.equal(sendSpace(4096, 1000), 2072);
    assert.equal(sendSpace(4096, 9000), 0);
  });

  test('new data offset: in order, overlapping a retransmission, after a hole', () => {
    assert.equal(newDataOffset(1000, 100, 1000), 0);
    assert.equal(newDataOffset(1000, 100, 1040), 40, 'the first 40 bytes were taken before');
    assert.equal(newDataOffset(1000, 100, 1100), -1, 'all old');
    assert.equal(newDataOffset(1100, 100, 1000), -1, 'a hole before it');
    assert.equal(newDataOffset(0xffffffc0, 0x80, 0x10), 0x50, 'across the wrap');
  });

  test('RTO: 200 ms doubling, capped at 60 s', () => {
    assert.deepEqual([0, 1, 2, 3].map(rtoMs), [200, 400, 800, 1600]);
    assert.equal(rtoMs(20), 60_000);
  });
});

describe('socket uplink: flow index', () => {
  test('finds what was filed, by the whole key, and forgets removed flows in any chain position', () => {
    const idx = new FlowIndex(64);
    for (let f = 0; f < 64; f++) idx.insert(f, 6, 0x0a640002, 10_000 + f, 0xc6336401, 80);
    for (let f = 0; f < 64; f++) assert.equal(idx.find(6, 0x0a640002, 10_000 + f, 0xc6336401, 80), f);
    assert.equal(idx.find(17, 0x0a640002, 10_000, 0xc6336401, 80), -1, 'protocol is part of the key');
    assert.equal(idx.find(6, 0x0a640003, 10_000, 0xc6336401, 80), -1);
    assert.equal(idx.find(6, 0x0a640002, 10_000, 0xc6336401, 81), -1);
    for (let f = 0; f < 64; f += 3) idx.remove(f);
    for (let f = 0; f < 64; f++) assert.equal(idx.find(6, 0x0a640002, 10_000 + f, 0xc6336401, 80), f % 3 === 0 ? -1 : f);
    idx.insert(0, 1, 0xfffffffe, 7, 0x0a000202, 0);
    assert.equal(idx.find(1, 0xfffffffe, 7, 0x0a000202, 0), 0, 'addresses above 2^31 (unsigned keys)');
  });
});
