/*
 * The CNI plugin's pure parts: network config parsing (codes and field names), the
 * environment, result building per version, route splitting, error JSON, the VERSION
 * answer and the install wrapper.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CNI_ERR, CniError, errorJson, parseEnv, parseNetConf, portNameOf } from '../../src/cni/config.js';
import { attachmentRoutes, buildResult, portRoutes, readIpamResult, resultProblems } from '../../src/cni/result.js';
import { cniMain } from '../../src/cni/main.js';
import { wrapperScript } from '../../src/cni/install.js';

const BASE = { cniVersion: '1.0.0', name: 'tbnet', type: 'tapbridge', instance: 'tapbridge', ipam: { type: 'host-local', subnet: '10.100.0.0/24' } };

function code(fn: () => unknown): number {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CniError, String(err));
    return err.code;
  }
  assert.fail('no error');
}

test('network config: defaults mirror the bridge plugin, capabilities are read', () => {
  const c = parseNetConf(JSON.stringify({ ...BASE, runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'UDP' }], mac: '02:00:00:00:00:09', ips: ['10.100.0.9/24'], bandwidth: { ingressRate: 1e6, egressBurst: 8000 } } }));
  assert.equal(c.bridge, 'br0');
  assert.equal(c.isGateway, true);
  assert.equal(c.isDefaultGateway, true);
  assert.equal(c.portIsolation, false);
  assert.equal(c.macspoofchk, false);
  assert.deepEqual(c.runtimeConfig.portMappings, [{ hostPort: 8080, containerPort: 80, protocol: 'udp' }]);
  assert.equal(c.runtimeConfig.mac, '02:00:00:00:00:09');
  assert.deepEqual(c.runtimeConfig.ips, ['10.100.0.9/24']);
  assert.deepEqual(c.runtimeConfig.bandwidth, { ingressRate: 1e6, egressBurst: 8000 });
  assert.equal(c.ipam?.type, 'host-local');
});

test('network config errors carry the spec codes and name the field', () => {
  assert.equal(code(() => parseNetConf('{')), CNI_ERR.decodeFailed);
  assert.equal(code(() => parseNetConf('[]')), CNI_ERR.decodeFailed);
  assert.equal(code(() => parseNetConf(JSON.stringify({ ...BASE, cniVersion: '0.3.1' }))), CNI_ERR.incompatibleVersion);
  assert.equal(code(() => parseNetConf(JSON.stringify({ ...BASE, vxlan: 1 }))), CNI_ERR.unsupportedField);
  assert.equal(code(() => parseNetConf(JSON.stringify({ ...BASE, type: 'bridge' }))), CNI_ERR.invalidConfig);
  assert.equal(code(() => parseNetConf(JSON.stringify({ ...BASE, socket: '/x', instance: 'y' }))), CNI_ERR.invalidConfig);
  assert.throws(() => parseNetConf(JSON.stringify({ ...BASE, mtu: 20 })), /^Error: mtu:|mtu:/);
  assert.throws(() => parseNetConf(JSON.stringify({ ...BASE, isGateway: 'yes' })), /isGateway/);
  assert.throws(() => parseNetConf(JSON.stringify({ ...BASE, runtimeConfig: { portMappings: [{ hostPort: 0, containerPort: 80 }] } })), /portMappings\[0\]\.hostPort/);
  assert.throws(() => parseNetConf(JSON.stringify({ ...BASE, ipam: { type: '../x' } })), /ipam\.type/);
  assert.throws(() => parseNetConf(JSON.stringify({ ...BASE, 'cni.dev/valid-attachments': [{ containerID: 1 }] })), /valid-attachments\[0\]/);
});

test('environment: required variables per command', () => {
  assert.equal(code(() => parseEnv({})), CNI_ERR.invalidEnv);
  assert.equal(code(() => parseEnv({ CNI_COMMAND: 'ADD', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0' })), CNI_ERR.invalidEnv);
  assert.equal(code(() => parseEnv({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'a', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'bad name!' })), CNI_ERR.invalidEnv);
  const e = parseEnv({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'a', CNI_IFNAME: 'eth0', CNI_PATH: '/a::/b' });
  assert.deepEqual(e.path, ['/a', '/b']);
  assert.equal(parseEnv({ CNI_COMMAND: 'GC' }).command, 'GC');
});

test('port names are stable, short and valid tapbridge names', () => {
  const a = portNameOf('0123456789abcdef'.repeat(4), 'eth0');
  assert.equal(a, portNameOf('0123456789abcdef'.repeat(4), 'eth0'));
  assert.notEqual(a, portNameOf('0123456789abcdef'.repeat(4), 'eth1'));
  assert.match(a, /^cni-[0-9a-f]{16}$/);
});

test('results per version: 0.4.0 ips carry version, 1.x do not; the spec fields check', () => {
  const ipam = readIpamResult({ cniVersion: '0.4.0', ips: [{ version: '4', address: '10.100.0.100/24', gateway: '10.100.0.1' }], routes: [{ dst: '0.0.0.0/0' }], dns: { nameservers: ['10.100.0.1'] } });
  const routes = attachmentRoutes(ipam, true);
  const iface = { name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/run/netns/c1', mtu: 1400 };
  const r04 = buildResult('0.4.0', iface, ipam, routes);
  assert.deepEqual(r04.ips, [{ version: '4', address: '10.100.0.100/24', gateway: '10.100.0.1', interface: 0 }]);
  assert.deepEqual(resultProblems(r04), []);
  const r10 = buildResult('1.0.0', iface, ipam, routes);
  assert.deepEqual(r10.ips, [{ address: '10.100.0.100/24', gateway: '10.100.0.1', interface: 0 }]);
  assert.deepEqual(r10.interfaces, [{ name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/run/netns/c1' }]);
  assert.deepEqual(r10.dns, { nameservers: ['10.100.0.1'] });
  assert.deepEqual(resultProblems(r10), []);
  assert.equal((buildResult('1.1.0', iface, ipam, routes).interfaces as { mtu?: number }[])[0].mtu, 1400);
  assert.deepEqual(resultProblems({ cniVersion: '1.0.0', interfaces: [{ name: 'eth0' }], ips: [{ version: '4', address: '10.0.0.1', interface: 3 }] }).length, 3);
});

test('routes: default routes become next hops, others {to, via}; isDefaultGateway adds one', () => {
  const ipam = readIpamResult({ ips: [{ address: '10.100.0.100/24', gateway: '10.100.0.1' }], routes: [{ dst: '198.51.100.0/24', gw: '10.100.0.254' }, { dst: '203.0.113.0/24' }] });
  const routes = attachmentRoutes(ipam, true);
  assert.deepEqual(routes.at(-1), { dst: '0.0.0.0/0', gw: '10.100.0.1' });
  assert.deepEqual(portRoutes(ipam, routes), {
    defaultRoute: ['10.100.0.1'],
    routes: [
      { to: '198.51.100.0/24', via: '10.100.0.254' },
      { to: '203.0.113.0/24', via: '10.100.0.1' },
    ],
  });
  assert.deepEqual(attachmentRoutes(ipam, false).length, 2);
});

test('error JSON: spec fields, an unexpected error is code 999 without a stack', () => {
  assert.deepEqual(errorJson(new CniError(7, 'mtu: bad', 'why'), '1.0.0'), { cniVersion: '1.0.0', code: 7, msg: 'mtu: bad', details: 'why' });
  const e = errorJson(new TypeError('x is undefined'), '1.1.0');
  assert.equal(e.code, 999);
  assert.doesNotMatch(JSON.stringify(e), /at .*:\d+:\d+/);
});

test('cniMain: VERSION without a config; errors before any I/O', async () => {
  const v = await cniMain({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.4.0"}');
  assert.deepEqual(JSON.parse(v.out), { cniVersion: '0.4.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
  const bad = await cniMain({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'a', CNI_IFNAME: 'eth0' }, '');
  assert.equal(bad.code, 1);
  assert.equal(JSON.parse(bad.out).code, CNI_ERR.decodeFailed);
  const gone = await cniMain({ CNI_COMMAND: 'STATUS' }, JSON.stringify({ ...BASE, cniVersion: '1.1.0', instance: undefined, socket: '/nonexistent/tb.sock' }));
  assert.equal(JSON.parse(gone.out).code, CNI_ERR.notAvailable);
});

test('install wrapper quotes its paths', () => {
  assert.equal(wrapperScript('/usr/bin/node', "/opt/it's/tapbridge-cni.js").split('\n')[2], `exec '/usr/bin/node' '/opt/it'\\''s/tapbridge-cni.js' "$@"`);
});
