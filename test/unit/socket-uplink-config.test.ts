/*
 * The socket uplink in the config and the plan: `uplink: {type: socket}` validates with its
 * defaults, a config without `type` is still the AF_PACKET uplink, NAT fields a socket
 * uplink cannot use are errors naming the field, and the plan links the router's uplink
 * interface to sockup with no uplink device, gateway, fragmenter or NAT.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, validateConfig } from '../../src/config/load.js';
import { dataPlaneSpec } from '../../src/control/spec.js';
import { planGraph } from '../../src/dataplane/plan.js';

function doc(uplink: Record<string, unknown>, nat: Record<string, unknown> = { publish: [{ proto: 'tcp', port: 8000, to: '10.100.0.2' }] }): Record<string, unknown> {
  return {
    instance: 'unit',
    bridges: [{ name: 'br0', gateway: { address: '10.100.0.1/24' }, ports: [{ type: 'namespace', name: 'red', namespace: 'red', addresses: ['10.100.0.2/24'], defaultRoute: '10.100.0.1' }] }],
    uplink,
    nat,
  };
}

function problems(d: unknown): string[] {
  try {
    validateConfig(d, 'test.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  assert.fail('accepted');
}

describe('socket uplink: config', () => {
  test('defaults filled in; `type` absent is the AF_PACKET uplink', () => {
    const cfg = validateConfig(doc({ type: 'socket' }));
    assert.deepEqual(cfg.uplink, { type: 'socket', hostLoopback: '10.0.2.2', maxSockets: 4096, maxSocketsPerTenant: 1024, tcpIdleTimeout: 7200, udpTimeout: 60, udpRepliedTimeout: 180 });
    const packet = validateConfig(doc({ interface: 'eth0', address: '203.0.113.2/24', gateway: '203.0.113.1' }));
    assert.equal(packet.uplink?.type, 'packet');
  });

  test('nat.masquerade and nat.routed with a socket uplink are errors naming the field; IPv6 publish too', () => {
    assert.ok(problems(doc({ type: 'socket' }, { masquerade: ['10.100.0.0/24'] })).some((p) => p.startsWith('nat.masquerade: ')));
    const v6 = problems(doc({ type: 'socket' }, { publish: [{ proto: 'tcp', port: 80, to: '2001:db8::2' }] }));
    assert.ok(v6.some((p) => p.startsWith('nat.publish[0].to: ')), v6.join('\n'));
    assert.ok(problems(doc({ type: 'socket', hostLoopback: 'x' })).some((p) => p.startsWith('uplink.hostLoopback: ')));
  });

  test('the data-plane spec and plan: sockup at the router, no uplink device, gateway, fragmenter or NAT', () => {
    const cfg = validateConfig(doc({ type: 'socket', maxSockets: 64 }));
    const spec = dataPlaneSpec(cfg, { ports: [{ name: 'red', kind: 'namespace', bridge: 'br0', fd: -1, vnetHdr: true, ifname: 'red:eth0', mac: '02:00:00:00:00:02', addresses: ['10.100.0.2/24'] }], uplink: null });
    assert.equal(spec.uplink, undefined);
    assert.equal(spec.nat, undefined);
    assert.equal(spec.socketUplink?.maxSockets, 64);
    assert.deepEqual(spec.socketUplink?.publish, [{ proto: 'tcp', port: 8000, to: '10.100.0.2' }]);
    const g = planGraph(spec);
    const names = g.elements.map((e) => e.name);
    assert.ok(names.includes('sockup'));
    for (const absent of ['dev/uplink', 'gw/uplink', 'frag/uplink', 'nat/pre']) assert.ok(!names.includes(absent), absent);
    assert.ok(g.links.includes('router[uplink] -> [in]sockup'));
    assert.ok(g.links.includes('sockup[out] -> [uplink]router'));
  });
});
