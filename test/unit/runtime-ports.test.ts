/*
 * Ports added and removed at runtime (Engine.addPort / removePort, the data-plane API's
 * ports.add / ports.remove) on a TestPlane: the new port joins flooding and learning, the
 * old ports keep their slots and MACs, a removed port's slot is reused and nothing is sent
 * to it any more.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bridgeSpec, names, portSpec, TestPlane } from '../helpers/dataplane.js';
import { hex } from '../helpers/frames.js';
import { dataPlaneApi } from '../../src/dataplane/api.js';

/** An Ethernet frame dst <- src (IPv4 ethertype, 46 bytes of padding). */
function frame(dst: string, src: string): Uint8Array {
  return hex(dst.replace(/:/g, '') + src.replace(/:/g, '') + '0800' + '00'.repeat(46));
}

const A = '02:00:00:00:aa:01';
const B = '02:00:00:00:aa:02';
const C = '02:00:00:00:aa:03';
const BCAST = 'ff:ff:ff:ff:ff:ff';

test('a port added at runtime is flooded to and learned; the others keep their MACs', () => {
  const tp = TestPlane.switches({ br0: ['a', 'b'] });
  const api = dataPlaneApi(tp.engine, () => {});
  tp.inject('b', frame(BCAST, B));
  tp.take();
  api.methods['ports.add'](portSpec('c', 'br0') as unknown as Record<string, unknown>);
  tp.inject('a', frame(BCAST, A));
  assert.deepEqual(names(tp.take()), ['b', 'c']);
  tp.inject('c', frame(A, C));
  assert.deepEqual(names(tp.take()), ['a'], 'c reaches a (learned)');
  tp.inject('a', frame(C, A));
  assert.deepEqual(names(tp.take()), ['c'], 'c was learned on its own slot');
  tp.inject('a', frame(B, A));
  assert.deepEqual(names(tp.take()), ['b'], 'b kept its MAC entry');
  assert.ok(api.methods.ports({}) instanceof Array && (api.methods.ports({}) as { name: string }[]).some((p) => p.name === 'c'));
});

test('a removed port gets nothing, its slot and index are reused, and bad requests are ApiErrors', () => {
  const tp = TestPlane.switches({ br0: ['a', 'b'] });
  const api = dataPlaneApi(tp.engine, () => {});
  api.methods['ports.add'](portSpec('c', 'br0') as unknown as Record<string, unknown>);
  tp.inject('c', frame(BCAST, C));
  tp.take();
  const index = tp.engine.record('c')!.index;
  assert.deepEqual(api.methods['ports.remove']({ name: 'c' }), { removed: 'c' });
  assert.equal(tp.engine.record('c'), undefined);
  tp.inject('a', frame(C, A));
  assert.deepEqual(names(tp.take()), ['b'], 'the MAC of c is forgotten: flooded to b only');
  tp.inject('a', frame(BCAST, A));
  assert.deepEqual(names(tp.take()), ['b']);
  api.methods['ports.add'](portSpec('d', 'br0') as unknown as Record<string, unknown>);
  assert.equal(tp.engine.record('d')!.index, index, 'the freed index is reused');
  assert.deepEqual(tp.engine.switchOf('br0')!.ports.map((p) => p.name), ['a', 'b', 'd'], 'the freed switch slot is reused');
  tp.inject('a', frame(BCAST, A));
  assert.deepEqual(names(tp.take()), ['b', 'd']);
  assert.throws(() => api.methods['ports.add'](portSpec('d', 'br0') as unknown as Record<string, unknown>), { status: 409 });
  assert.throws(() => api.methods['ports.add'](portSpec('e', 'nope') as unknown as Record<string, unknown>), { status: 404 });
  assert.throws(() => api.methods['ports.remove']({ name: 'zz' }), { status: 404 });
  assert.throws(() => api.methods['ports.add']({ name: 'x' }), { status: 400 });
});

test('an isolated runtime port reaches only non-isolated ports', () => {
  const tp = new TestPlane({ bridges: [bridgeSpec('br0')], ports: [portSpec('a', 'br0', { isolated: true }), portSpec('b', 'br0')] });
  const api = dataPlaneApi(tp.engine, () => {});
  api.methods['ports.add'](portSpec('c', 'br0', { isolated: true }) as unknown as Record<string, unknown>);
  tp.inject('c', frame(BCAST, C));
  assert.deepEqual(names(tp.take()), ['b']);
});
