/*
 * fd passing of the native addon (native/fdpass.cc), the channel between the rootless agent
 * and its parent: a passed fd is the same open file, messages keep their boundaries, the
 * bounds (253 fds, 64 KiB) are errors, a timeout is null and a closed peer an empty message.
 * Real syscalls on a socket pair and pipes of this process; no privilege needed.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { native } from '../../src/io/native.js';

describe('native fd passing (SCM_RIGHTS)', () => {
  const opened: number[] = [];
  const track = (...fds: number[]) => (opened.push(...fds), fds);
  after(() => {
    for (const fd of opened) {
      try {
        closeSync(fd);
      } catch {
        /* closed by the test */
      }
    }
  });

  test('a passed fd is the same open file; messages keep their boundaries', () => {
    const [a, b] = track(...native.socketPair());
    const file = track(openSync('/dev/null', 'r'))[0];
    const second = track(openSync('/dev/zero', 'r'))[0];
    assert.equal(native.sendFds(a, 'first', [file, second]), 5);
    native.sendFds(a, Buffer.from('second'), []);
    const m1 = native.recvFds(b, 1000)!;
    track(...m1.fds);
    assert.equal(m1.data.toString(), 'first');
    assert.equal(m1.fds.length, 2);
    assert.notEqual(m1.fds[0], file, 'a new fd number for the same file');
    assert.equal(readSync(m1.fds[0], Buffer.alloc(4)), 0, '/dev/null reads as EOF');
    assert.equal(readSync(m1.fds[1], Buffer.alloc(4)), 4, '/dev/zero reads zeros');
    const m2 = native.recvFds(b, 1000)!;
    assert.equal(m2.data.toString(), 'second');
    assert.deepEqual(m2.fds, []);
  });

  test('a socket fd passed on still talks to its peer', () => {
    const [a, b] = track(...native.socketPair());
    const [x, y] = track(...native.socketPair());
    native.sendFds(a, 'take x', [x]);
    const m = native.recvFds(b, 1000)!;
    track(...m.fds);
    writeSync(m.fds[0], 'through the passed fd');
    const got = native.recvFds(y, 1000)!;
    assert.equal(got.data.toString(), 'through the passed fd');
  });

  test('bounds: more than 253 fds, an empty or oversized message are errors; nothing waiting is null; a closed peer is an empty message', () => {
    const [a, b] = track(...native.socketPair());
    const fd = track(openSync('/dev/null', 'r'))[0];
    assert.throws(() => native.sendFds(a, 'x', new Array(254).fill(fd)), /at most 253 fds/);
    assert.throws(() => native.sendFds(a, '', []), /1\.\.65536 bytes/);
    assert.throws(() => native.sendFds(a, Buffer.alloc(65537), []), /1\.\.65536 bytes/);
    assert.throws(() => native.sendFds(a, 'x', 'not an array' as unknown as number[]), /fds must be an array/);
    assert.equal(native.recvFds(b, 0), null, 'nothing sent: null at once');
    const t0 = Date.now();
    assert.equal(native.recvFds(b, 50), null);
    assert.ok(Date.now() - t0 >= 40, 'waits for the timeout');
    native.sendFds(a, 'x'.repeat(65536), new Array(253).fill(fd));
    const full = native.recvFds(b, 1000)!;
    track(...full.fds);
    assert.equal(full.data.length, 65536);
    assert.equal(full.fds.length, 253);
    closeSync(a);
    opened.splice(opened.indexOf(a), 1); // closed: after() must not close a reused number
    const eof = native.recvFds(b, 1000)!;
    assert.equal(eof.data.length, 0);
    assert.deepEqual(eof.fds, []);
  });
});
