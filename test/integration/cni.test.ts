/*
 * The CNI plugin end to end, invoked exactly as a runtime does (CNI_COMMAND, CNI_NETNS,
 * CNI_IFNAME, CNI_CONTAINERID, CNI_PATH, the network config on stdin) against a running
 * lab (nat-lab.ts), with Debian's host-local IPAM (containernetworking-plugins) handing out
 * 10.100.0.100-150. Two containers (namespaces tbt-<pid>-cni-*) are added, ping the gateway
 * and each other; the results are checked against the spec's fields; CHECK passes and then
 * fails once an address is removed; a published port (portMappings) is reachable from wan
 * until DEL; DEL twice and DEL after the netns is gone succeed; GC removes what is not in
 * cni.dev/valid-attachments; STATUS answers 50 once tapbridge is stopped; bad configs get
 * error JSON with the spec's codes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NatLab } from '../helpers/nat-lab.js';
import { ping } from '../helpers/net.js';
import { IP, PREFIX, ROOT, TIMEOUT, addNamespace, announceSkip, deleteNamespacesSync, integrationSkipReason, linkInfo, nsRun, run, waitFor } from '../helpers/sys.js';
import { cleanupAll, tempDir, trackNamespace } from '../helpers/tapbridge.js';
import { requireTools, SYS_PYTHON } from '../helpers/tools.js';
import { resultProblems } from '../../src/cni/result.js';
import { portNameOf } from '../../src/cni/config.js';
import { apiRequest } from '../../src/control/client.js';

const SKIP = integrationSkipReason();
if (SKIP !== null) announceSkip('CNI integration tests', SKIP);

const PLUGIN = join(ROOT, 'bin', 'tapbridge-cni.js');
const CNI_PATH = '/usr/lib/cni';
const C = { one: `${PREFIX}cni-c1`, two: `${PREFIX}cni-c2`, three: `${PREFIX}cni-c3`, four: `${PREFIX}cni-c4`, five: `${PREFIX}cni-c5` };

interface CniRun {
  code: number | null;
  json: Record<string, unknown> | null;
  stdout: string;
}

async function cni(command: string, conf: Record<string, unknown>, env: { id?: string; netns?: string; ifname?: string; args?: string; path?: string } = {}): Promise<CniRun> {
  const r = await run(
    'env',
    [
      `CNI_COMMAND=${command}`,
      ...(env.id !== undefined ? [`CNI_CONTAINERID=${env.id}`] : []),
      ...(env.netns !== undefined ? [`CNI_NETNS=${env.netns}`] : []),
      `CNI_IFNAME=${env.ifname ?? 'eth0'}`,
      ...(env.args !== undefined ? [`CNI_ARGS=${env.args}`] : []),
      `CNI_PATH=${env.path ?? CNI_PATH}`,
      process.execPath,
      PLUGIN,
    ],
    { input: JSON.stringify(conf), timeoutMs: 30_000 },
  );
  let json: Record<string, unknown> | null = null;
  try {
    json = r.stdout.trim() === '' ? null : (JSON.parse(r.stdout) as Record<string, unknown>);
  } catch {
    /* not JSON: the assertions say so */
  }
  assert.doesNotMatch(r.stdout + r.stderr, /\n\s+at .*\(.*:\d+:\d+\)/, 'no stack trace');
  return { code: r.code, json, stdout: r.stdout + r.stderr };
}

describe('CNI plugin (tapbridge-cni)', { skip: SKIP ?? false, timeout: 180_000 }, () => {
  // DNS at the gateway (no upstream listens on the wan: only local names are asked)
  // and a DHCP pool beside host-local's range, for the tapbridge-dhcp IPAM
  const lab = new NatLab({ tag: 'cn', noBlue: true, gatewayExtra: { dns: { domain: 'cni.test', upstreams: ['203.0.113.1'] }, dhcp: { pool: { start: '10.100.0.160', end: '10.100.0.170' } } } });
  let conf: Record<string, unknown> = {};
  let ipamDir = '';
  /** The addresses host-local holds (a file per address in its data dir). */
  const reserved = () => readdirSync(join(ipamDir, 'tbnet')).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)).sort();
  let http: ChildProcess | null = null;
  const results: Record<string, Record<string, unknown>> = {};

  before(async () => {
    requireTools(['ip', 'ping', 'curl', 'nsenter', 'timeout', 'dig', 'cni-host-local', 'cni-static', 'python3-scapy']);
    for (const n of Object.values(C)) {
      trackNamespace(n);
      await addNamespace(n, { ipv6: false });
    }
    await lab.start();
    ipamDir = join(tempDir(), 'ipam');
    conf = {
      cniVersion: '1.0.0',
      name: 'tbnet',
      type: 'tapbridge',
      socket: lab.tapbridge.socket,
      bridge: 'br0',
      isGateway: true,
      ipam: { type: 'host-local', dataDir: ipamDir, ranges: [[{ subnet: '10.100.0.0/24', rangeStart: '10.100.0.100', rangeEnd: '10.100.0.150', gateway: '10.100.0.1' }]], routes: [{ dst: '0.0.0.0/0' }] },
    };
  });

  after(async () => {
    http?.kill('SIGKILL');
    await lab.stop().catch(() => {});
    deleteNamespacesSync(Object.values(C));
    await cleanupAll();
  });

  test('VERSION, and bad configs answer error JSON with the spec codes', async () => {
    const v = await cni('VERSION', { cniVersion: '1.1.0' });
    assert.equal(v.code, 0);
    assert.deepEqual(v.json, { cniVersion: '1.1.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
    const cases: [Record<string, unknown> | string, number][] = [
      [{ ...conf, cniVersion: '0.2.0' }, 1],
      [{ ...conf, colour: 'blue' }, 2],
      [{ ...conf, mtu: 'big' }, 7],
      [{ ...conf, ipam: { type: 'no-such-ipam' } }, 7],
    ];
    for (const [c, code] of cases) {
      const r = await cni('ADD', c as Record<string, unknown>, { id: 'bad', netns: `/run/netns/${C.one}` });
      assert.notEqual(r.code, 0);
      assert.equal(r.json?.code, code, `${JSON.stringify(c).slice(0, 80)}: ${r.stdout}`);
      assert.equal(typeof r.json?.msg, 'string');
    }
    const notJson = await run('env', ['CNI_COMMAND=ADD', 'CNI_CONTAINERID=x', `CNI_NETNS=/run/netns/${C.one}`, 'CNI_IFNAME=eth0', process.execPath, PLUGIN], { input: '{nope', timeoutMs: 10_000 });
    assert.equal((JSON.parse(notJson.stdout) as { code: number }).code, 6);
    const noEnv = await cni('ADD', conf, {});
    assert.equal(noEnv.json?.code, 4, 'CNI_CONTAINERID missing');
    assert.equal((await cni('STATUS', conf)).code, 0, 'STATUS ok while tapbridge runs');
  });

  test('ADD two containers (1.0.0 and 0.4.0 results), ping the gateway and each other', async (t) => {
    const t0 = performance.now();
    const one = await cni('ADD', { ...conf, runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] } }, { id: 'c1', netns: `/run/netns/${C.one}` });
    assert.equal(one.code, 0, one.stdout);
    const r1 = one.json!;
    assert.deepEqual(resultProblems(r1), []);
    assert.equal(r1.cniVersion, '1.0.0');
    const if1 = (r1.interfaces as { name: string; mac: string; sandbox: string }[])[0];
    assert.equal(if1.name, 'eth0');
    assert.equal(if1.sandbox, `/run/netns/${C.one}`);
    assert.equal(if1.mac, (await linkInfo(C.one, 'eth0')).address);
    const ip1 = (r1.ips as { address: string; gateway: string; interface: number }[])[0];
    assert.match(ip1.address, /^10\.100\.0\.1\d\d\/24$/);
    assert.equal(ip1.gateway, '10.100.0.1');
    assert.equal(ip1.interface, 0);
    assert.ok((r1.routes as { dst: string }[]).some((r) => r.dst === '0.0.0.0/0'));
    results.one = r1;
    const addMs = performance.now() - t0;
    const first = await ping(C.one, '10.100.0.1', { count: 1, waitS: 2 });
    assert.ok(first.ok, `the first ping after ADD: ${first.stdout}`);
    t.diagnostic(`attach time: ADD ${Math.round(addMs)} ms (plugin process + host-local + TAP + data plane), ADD to the first ping reply ${Math.round(performance.now() - t0)} ms`);

    const two = await cni('ADD', { ...conf, cniVersion: '0.4.0', runtimeConfig: { mac: '02:00:00:00:cc:02' } }, { id: 'c2', netns: `/run/netns/${C.two}` });
    assert.equal(two.code, 0, two.stdout);
    const r2 = two.json!;
    assert.deepEqual(resultProblems(r2), []);
    assert.equal((r2.ips as { version: string }[])[0].version, '4');
    assert.equal((r2.interfaces as { mac: string }[])[0].mac, '02:00:00:00:cc:02', 'the mac capability');
    results.two = r2;
    const addr2 = (r2.ips as { address: string }[])[0].address.split('/')[0];

    const gw = await ping(C.one, '10.100.0.1', { count: 3 });
    assert.ok(gw.ok, gw.stdout);
    const peer = await ping(C.one, addr2, { count: 3 });
    assert.ok(peer.ok, `c1 -> c2 ${addr2}: ${peer.stdout}`);
    const wan = await ping(C.two, '203.0.113.1', { count: 2 });
    assert.ok(wan.ok, `c2 -> wan through NAT: ${wan.stdout}`);
  });

  test('a container answers in the bridge DNS by its aliases and K8S_POD_NAME until DEL', async () => {
    const dig = async (name: string) => {
      const r = await nsRun(C.one, 'dig', ['@10.100.0.1', '+time=3', '+tries=1', '+short', name], { timeoutMs: 10_000 });
      return r.stdout.trim();
    };
    const conf4 = { ...conf, runtimeConfig: { aliases: { tbnet: ['web', 'web-1'] } } };
    const add = await cni('ADD', conf4, { id: 'c4', netns: `/run/netns/${C.four}`, args: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=cart' });
    assert.equal(add.code, 0, add.stdout);
    const addr = (add.json!.ips as { address: string }[])[0].address.split('/')[0];
    for (const name of ['web.cni.test', 'web-1.cni.test', 'cart.cni.test', `${portNameOf('c4', 'eth0')}.cni.test`, 'web'])
      assert.equal(await dig(name), addr, `${name} -> ${addr}`);
    const bad = await cni('ADD', { ...conf, runtimeConfig: { aliases: { tbnet: ['not_a label'] } } }, { id: 'c5', netns: `/run/netns/${C.four}`, ifname: 'eth1' });
    assert.notEqual(bad.code, 0, 'an alias that is no DNS label is refused');
    assert.equal(bad.json?.code, 7, bad.stdout);
    const del = await cni('DEL', conf4, { id: 'c4', netns: `/run/netns/${C.four}` });
    assert.equal(del.code, 0, del.stdout);
    assert.equal(await dig('web.cni.test'), '', 'the alias is gone after DEL');
  });

  test('IPAM by tapbridge\'s DHCP server (ipam type tapbridge-dhcp): a lease for the container\'s MAC, released on DEL', async () => {
    const conf5 = { ...conf, ipam: { type: 'tapbridge-dhcp' }, runtimeConfig: { aliases: { tbnet: ['leased'] } } };
    const add = await cni('ADD', conf5, { id: 'c5', netns: `/run/netns/${C.five}` });
    assert.equal(add.code, 0, add.stdout);
    assert.deepEqual(resultProblems(add.json!), []);
    const ip = (add.json!.ips as { address: string; gateway: string }[])[0];
    assert.match(ip.address, /^10\.100\.0\.1(6\d|70)\/24$/, 'an address of the DHCP pool');
    assert.equal(ip.gateway, '10.100.0.1');
    assert.deepEqual((add.json!.dns as { nameservers: string[] }).nameservers, ['10.100.0.1'], 'the gateway resolver, as DHCP hands it out');
    const mac = (add.json!.interfaces as { mac: string }[])[0].mac;
    const leases = async () => (await apiRequest(lab.tapbridge.socket, 'GET', '/v1/leases')) as { mac: string; ip: string; state: string; hostName?: string }[];
    const lease = (await leases()).find((l) => l.mac === mac);
    assert.equal(lease?.state, 'bound', JSON.stringify(await leases()));
    assert.equal(`${lease?.ip}/24`, ip.address);
    assert.equal(lease?.hostName, 'leased');
    assert.ok((await ping(C.five, '10.100.0.1', { count: 2 })).ok, 'the leased container reaches the gateway');
    const check = await cni('CHECK', { ...conf5, prevResult: add.json }, { id: 'c5', netns: `/run/netns/${C.five}` });
    assert.equal(check.code, 0, check.stdout);
    for (let i = 0; i < 2; i++) {
      const del = await cni('DEL', conf5, { id: 'c5', netns: `/run/netns/${C.five}` });
      assert.equal(del.code, 0, del.stdout);
    }
    assert.notEqual((await leases()).find((l) => l.mac === mac)?.state, 'bound', 'the lease is given back on DEL');
  });

  test('an IPAM plugin that exits without reading its stdin is judged by its answer, not an I/O error', async () => {
    // The reference plugins answer VERSION so; under load the plugin's write then fails with
    // EPIPE (seen with podman). Deterministic here: a 256 KiB config the fake IPAM never reads.
    const dir = tempDir();
    writeFileSync(
      join(dir, 'unread-ipam'),
      [
        '#!/bin/sh',
        'exec 0<&-',
        'case "$CNI_COMMAND" in',
        `VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}' ;;`,
        `ADD) echo '{"cniVersion":"1.0.0","ips":[{"address":"10.100.0.210/24","gateway":"10.100.0.1"}],"routes":[{"dst":"0.0.0.0/0"}]}' ;;`,
        'esac',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const big = { ...conf, ipam: { type: 'unread-ipam', padding: 'x'.repeat(256 * 1024) } };
    const add = await cni('ADD', big, { id: 'c6', netns: `/run/netns/${C.five}`, path: dir });
    assert.equal(add.code, 0, add.stdout);
    assert.equal((add.json!.ips as { address: string }[])[0].address, '10.100.0.210/24');
    assert.ok((await ping(C.five, '10.100.0.1', { count: 1, waitS: 2 })).ok, 'the container reaches the gateway');
    assert.equal((await cni('DEL', big, { id: 'c6', netns: `/run/netns/${C.five}`, path: dir })).code, 0);
  });

  test('portMappings: wan reaches the container through the published port', async () => {
    const dir = tempDir();
    http = spawn(IP, ['netns', 'exec', C.one, TIMEOUT, '60', SYS_PYTHON, '-m', 'http.server', '80', '--bind', '0.0.0.0', '--directory', dir], { stdio: 'ignore' });
    await waitFor('http in c1', async () => (await nsRun(C.one, 'ss', ['-Hltn'])).stdout.includes(':80 '), { timeoutMs: 10_000, intervalMs: 100 });
    const r = await lab.exec('wan', 'curl', ['-sS', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', 'http://203.0.113.2:8080/']);
    assert.equal(r.stdout, '200', r.stdout + r.stderr);
  });

  test('CHECK passes, and fails once an address is removed', async () => {
    const ok = await cni('CHECK', { ...conf, prevResult: results.one }, { id: 'c1', netns: `/run/netns/${C.one}` });
    assert.equal(ok.code, 0, ok.stdout);
    const ok2 = await cni('CHECK', { ...conf, cniVersion: '0.4.0', prevResult: results.two }, { id: 'c2', netns: `/run/netns/${C.two}` });
    assert.equal(ok2.code, 0, ok2.stdout);
    const addr2 = (results.two.ips as { address: string }[])[0].address;
    await nsRun(C.two, IP, ['addr', 'del', addr2, 'dev', 'eth0']);
    const bad = await cni('CHECK', { ...conf, cniVersion: '0.4.0', prevResult: results.two }, { id: 'c2', netns: `/run/netns/${C.two}` });
    assert.notEqual(bad.code, 0);
    assert.equal(bad.json?.code, 100, bad.stdout);
    assert.match(String(bad.json?.msg), /address .* is missing/);
    const none = await cni('CHECK', { ...conf, prevResult: results.one }, { id: 'never-added', netns: `/run/netns/${C.one}` });
    assert.equal(none.json?.code, 100);
  });

  test('GC removes the attachments not in cni.dev/valid-attachments', async () => {
    const three = await cni('ADD', { ...conf, cniVersion: '1.1.0' }, { id: 'c3', netns: `/run/netns/${C.three}` });
    assert.equal(three.code, 0, three.stdout);
    const gc = await cni('GC', { ...conf, cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: 'c1', ifname: 'eth0' }, { containerID: 'c2', ifname: 'eth0' }] });
    assert.equal(gc.code, 0, gc.stdout);
    assert.equal(reserved().length, 2, `GC released c3's address: ${reserved().join(' ')}`);
    const rows = await lab.ctl<{ labels: Record<string, string> }[]>('ports', 'runtime');
    assert.deepEqual(rows.map((r) => r.labels['cni.containerID']).sort(), ['c1', 'c2']);
    const gone = await run(IP, ['-n', C.three, '-br', 'link']);
    assert.doesNotMatch(gone.stdout, /eth0/);
  });

  test('static IPAM with the ips capability, bandwidth as rate faults, portIsolation and macspoofchk', async () => {
    const st = { ...conf, cniVersion: '1.1.0', portIsolation: true, macspoofchk: true, ipam: { type: 'static', routes: [{ dst: '0.0.0.0/0', gw: '10.100.0.1' }] }, runtimeConfig: { ips: ['10.100.0.200/24'], bandwidth: { ingressRate: 8_000_000, ingressBurst: 80_000, egressRate: 4_000_000, egressBurst: 40_000 } } };
    const add = await cni('ADD', st, { id: 'c5', netns: `/run/netns/${C.three}` });
    assert.equal(add.code, 0, add.stdout);
    assert.deepEqual(resultProblems(add.json!), []);
    assert.equal((add.json!.ips as { address: string }[])[0].address, '10.100.0.200/24');
    const port = portNameOf('c5', 'eth0');
    const faults = (await apiRequest(lab.tapbridge.socket, 'GET', `/v1/ports/${port}/faults`)) as { direction: string; active: boolean; spec: { rate?: { bitsPerSecond: number; burstBytes?: number } } }[];
    const rate = (d: string) => faults.find((f) => f.direction === d && f.active)?.spec.rate;
    assert.deepEqual(rate('egress'), { bitsPerSecond: 8_000_000, burstBytes: 10_000 }, 'ingressRate: towards the container');
    assert.deepEqual(rate('ingress'), { bitsPerSecond: 4_000_000, burstBytes: 5_000 }, 'egressRate: from the container');
    assert.ok((await ping(C.three, '10.100.0.1', { count: 2 })).ok, 'the gateway is reachable from an isolated, secured port');
    // macspoofchk: a spoofed source MAC is dropped
    await nsRun(C.three, IP, ['link', 'set', 'dev', 'eth0', 'address', '02:00:00:00:66:66']);
    assert.equal((await ping(C.three, '10.100.0.1', { count: 2, waitS: 1 })).received, 0, 'spoofed MAC refused');
    assert.equal((await cni('DEL', st, { id: 'c5', netns: `/run/netns/${C.three}` })).code, 0);
  });

  test('DEL removes the port and its published port; DEL twice and after the netns is gone succeed', async () => {
    const del = await cni('DEL', conf, { id: 'c1', netns: `/run/netns/${C.one}` });
    assert.equal(del.code, 0, del.stdout);
    const r = await lab.exec('wan', 'curl', ['-sS', '-m', '3', '-o', '/dev/null', '-w', '%{http_code}', 'http://203.0.113.2:8080/']);
    assert.notEqual(r.stdout, '200', 'the published port is gone');
    const forwards = await lab.ctl<{ port: number }[]>('forwards');
    assert.ok(!forwards.some((f) => f.port === 8080));
    assert.equal((await cni('DEL', conf, { id: 'c1', netns: `/run/netns/${C.one}` })).code, 0, 'DEL twice');
    deleteNamespacesSync([C.two]);
    const gone = await cni('DEL', { ...conf, cniVersion: '0.4.0' }, { id: 'c2', netns: `/run/netns/${C.two}` });
    assert.equal(gone.code, 0, gone.stdout);
    assert.deepEqual(await lab.ctl('ports', 'runtime'), []);
    assert.deepEqual(reserved(), [], 'every address went back to host-local (DEL and GC release them)');
  });

  test('STATUS fails with code 50 once tapbridge is stopped; DEL still succeeds', async () => {
    await lab.stop();
    const st = await cni('STATUS', { ...conf, cniVersion: '1.1.0' });
    assert.notEqual(st.code, 0);
    assert.equal(st.json?.code, 50, st.stdout);
    const add = await cni('ADD', conf, { id: 'c9', netns: `/run/netns/${C.one}` });
    assert.equal(add.json?.code, 11, `ADD while tapbridge is down: try again later: ${add.stdout}`);
    assert.equal((await cni('DEL', conf, { id: 'c9', netns: `/run/netns/${C.one}` })).code, 0);
  });
});
