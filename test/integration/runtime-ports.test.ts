/*
 * Ports attached at runtime (`ctl ports add` / `ctl ports rm`) on a running lab (nat-lab.ts):
 * namespaces the test creates (tbt-<pid>-rp-*) are attached by name, by /run/netns path
 * and by /proc/PID/ns/net, get their address and default route, ping the gateway and red,
 * and are detached again, once after their namespace was deleted; meanwhile a bounded
 * ping from red to the gateway must lose nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { NatLab } from '../helpers/nat-lab.js';
import { ping } from '../helpers/net.js';
import { IP, PREFIX, addNamespace, announceSkip, deleteNamespacesSync, integrationSkipReason, linkInfo, netnsExists, nsRun } from '../helpers/sys.js';
import { apiRequest } from '../../src/control/client.js';
import { cleanupAll, trackNamespace } from '../helpers/tapbridge.js';
import { requireTools } from '../helpers/tools.js';

const SKIP = integrationSkipReason();
if (SKIP !== null) announceSkip('runtime ports integration tests', SKIP);

const NS = { green: `${PREFIX}rp-green`, ora: `${PREFIX}rp-ora` };

interface RuntimeRow {
  name: string;
  path: string;
  mac: string;
  netnsPresent: boolean;
}

describe('ports attached at runtime', { skip: SKIP ?? false, timeout: 120_000 }, () => {
  const lab = new NatLab({ tag: 'rp', noBlue: true });
  let holder: ChildProcess | null = null;

  before(async () => {
    requireTools(['ip', 'ping', 'nsenter']);
    for (const n of Object.values(NS)) {
      trackNamespace(n);
      await addNamespace(n, { ipv6: false });
    }
    await lab.start();
  });

  after(async () => {
    holder?.kill('SIGKILL');
    await lab.stop().catch(() => {});
    deleteNamespacesSync(Object.values(NS));
    await cleanupAll();
  });

  test('add by /run/netns path while red pings the gateway: zero loss; ping the gateway and red; rm', async () => {
    const steady = ping(lab.ns('red'), '10.100.0.1', { count: 40, intervalS: 0.05, waitS: 1 });
    const added = await lab.ctl<{ name: string; mac: string }>('ports', 'add', 'green', '--netns', `/run/netns/${NS.green}`, '--address', '10.100.0.7/24', '--gateway', '10.100.0.1', '--mac', '02:00:00:00:07:07');
    assert.equal(added.mac, '02:00:00:00:07:07');
    const link = await linkInfo(NS.green, 'eth0');
    assert.equal(link.address, '02:00:00:00:07:07');
    const gw = await ping(NS.green, '10.100.0.1', { count: 3 });
    assert.ok(gw.ok, `green -> gateway: ${gw.stdout}${gw.stderr}`);
    const red = await ping(NS.green, '10.100.0.2', { count: 3 });
    assert.ok(red.ok, `green -> red: ${red.stdout}${red.stderr}`);
    const rows = await lab.ctl<RuntimeRow[]>('ports', 'runtime');
    assert.deepEqual(rows.map((r) => r.name), ['green']);
    const ports = await lab.ctl<{ name: string }[]>('ports');
    assert.ok(ports.some((p) => p.name === 'green'));
    const rm = await lab.ctl<{ removed: string; netnsWasGone: boolean }>('ports', 'rm', 'green');
    assert.deepEqual(rm, { removed: 'green', netnsWasGone: false });
    const s = await steady;
    assert.equal(s.transmitted, 40, s.stdout);
    assert.equal(s.received, 40, `red lost pings while a port was added and removed: ${s.stdout}`);
    const links = await new Promise<string>((resolve) => {
      const c = spawn(IP, ['-n', NS.green, '-br', 'link'], { stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      c.stdout.on('data', (d: Buffer) => (out += d.toString()));
      c.on('close', () => resolve(out));
    });
    assert.doesNotMatch(links, /eth0/, 'the TAP is gone from the namespace');
    assert.deepEqual(await lab.ctl<RuntimeRow[]>('ports', 'runtime'), []);
  });

  test('add by /proc/PID/ns/net and by name; rm after the namespace is deleted; errors', async () => {
    holder = spawn(IP, ['netns', 'exec', NS.ora, 'sleep', '60'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
    await lab.ctl('ports', 'add', 'ora', '--netns', `/proc/${holder.pid}/ns/net`, '--address', '10.100.0.8/24', '--gateway', '10.100.0.1');
    const p = await ping(NS.ora, '10.100.0.1', { count: 2 });
    assert.ok(p.ok, p.stdout + p.stderr);
    await lab.ctl('ports', 'rm', 'ora');
    holder.kill('SIGKILL');
    holder = null;

    await lab.ctl('ports', 'add', 'ora2', '--netns', NS.ora, '--address', '10.100.0.9/24', '--gateway', '10.100.0.1', '--isolated', '--security', '--rate', 'egress=10mbit');
    assert.ok((await ping(NS.ora, '10.100.0.1', { count: 2 })).ok);
    const faults = (await apiRequest(lab.tapbridge.socket, 'GET', '/v1/ports/ora2/faults')) as { direction: string; active: boolean; spec: { rate?: { bitsPerSecond: number } } }[];
    assert.deepEqual(faults.filter((f) => f.active).map((f) => [f.direction, f.spec.rate?.bitsPerSecond]), [['egress', 10_000_000]], 'the rate set at add time');
    // port security set at add time: a spoofed source address is dropped
    await nsRun(NS.ora, IP, ['addr', 'add', '10.100.0.66/24', 'dev', 'eth0']);
    const spoofed = await nsRun(NS.ora, 'ping', ['-n', '-c', '2', '-W', '1', '-I', '10.100.0.66', '10.100.0.1']);
    assert.notEqual(spoofed.code, 0, 'a source outside the port\'s addresses is refused');
    deleteNamespacesSync([NS.ora]);
    assert.equal(netnsExists(NS.ora), false);
    const rows = await lab.ctl<RuntimeRow[]>('ports', 'runtime');
    assert.equal(rows.find((r) => r.name === 'ora2')?.netnsPresent, false);
    const rm = await lab.ctl<{ netnsWasGone: boolean }>('ports', 'rm', 'ora2');
    assert.equal(rm.netnsWasGone, true);
    // errors: a config port cannot be removed; duplicate names; a missing namespace; a bad field
    await assert.rejects(lab.ctl('ports', 'rm', 'red'), /from the config/);
    await assert.rejects(lab.ctl('ports', 'add', 'red', '--netns', NS.green), /exists already/);
    await assert.rejects(lab.ctl('ports', 'add', 'x1', '--netns', `/run/netns/${PREFIX}nope`), /no namespace/);
    await assert.rejects(lab.ctl('ports', 'add', 'x2', '--netns', NS.green, '--address', '10.1.2.3'), /addresses\[0\]/);
    assert.ok(lab.alive(), 'tapbridge still runs');
    assert.ok((await ping(lab.ns('red'), '10.100.0.1', { count: 2 })).ok, 'red still reaches the gateway');
  });
});
