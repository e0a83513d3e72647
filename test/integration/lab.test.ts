/*
 * tapbridge's lifecycle as a lab: everything it creates lives in namespaces (its own
 * included), the root namespace never changes, SIGTERM removes everything, bad configs
 * create nothing, a failure half-way through setup removes what was made, and the
 * leftovers of a crashed run (SIGKILL) are found and removed by the next start.
 *
 * All names start with tbt-<pid>-; addresses are 10.100.0.0/24 and 198.51.100.0/24 inside
 * test namespaces only. after() kills and removes whatever a failed test left behind.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { diffSnapshots, ping, snapshotNamespace } from '../helpers/net.js';
import { IP, PREFIX, addNamespace, announceSkip, describeRun, integrationSkipReason, ip, netnsExists, netnsList, nsRun, run, waitFor } from '../helpers/sys.js';
import { requireTools } from '../helpers/tools.js';
import { Tapbridge, cleanupAll, cli, pidAlive, runFiles, socketPath, stateFile, statePid, stateResources, trackNamespace, writeConfig, type ConfigDoc } from '../helpers/tapbridge.js';

const SKIP = integrationSkipReason();
if (SKIP !== null) announceSkip('lab integration tests', SKIP);

/** A lab: tapbridge in <p>host, red/blue on br0 with a gateway, a host TAP port, a veth-linked wan with services. */
function labConfig(tag: string, peer: string): ConfigDoc {
  const p = `${PREFIX}${tag}-`;
  return {
    instance: `${PREFIX}${tag}`,
    namespace: { name: `${p}host`, create: true },
    bridges: [
      {
        name: 'br0',
        gateway: { address: '10.100.0.1/24' },
        ports: [
          { type: 'namespace', name: 'red', namespace: `${p}red`, addresses: ['10.100.0.2/24'], defaultRoute: '10.100.0.1' },
          { type: 'namespace', name: 'blue', namespace: `${p}blue`, addresses: ['10.100.0.3/24'], defaultRoute: '10.100.0.1' },
          { type: 'tap', name: 'host', ifname: 'tbh0', addresses: ['10.100.0.254/24'] },
        ],
      },
    ],
    lab: {
      veths: [{ namespace: `${p}wan`, ifname: 'eth0', addresses: ['198.51.100.1/24'], peer, peerAddresses: ['198.51.100.3/24'] }],
      services: [
        { namespace: `${p}wan`, http: 80 },
        { namespace: `${p}red`, udpEcho: 7007 },
      ],
    },
  };
}

/** GET an URL from inside a namespace with Node's fetch (bounded); returns the body. */
async function httpGet(ns: string, url: string): Promise<string> {
  const script = `fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(4000) }).then(r => r.text()).then(t => process.stdout.write(t), e => { console.error(String(e)); process.exit(1); })`;
  const r = await nsRun(ns, process.execPath, ['-e', script], { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`GET ${url} in ${ns} failed:\n${describeRun(r)}`);
  return r.stdout;
}

const ours = async (tag: string) => (await netnsList()).filter((n) => n.startsWith(`${PREFIX}${tag}-`)).sort();
const servicePids = (instance: string) => stateResources(instance, 'inner').filter((r) => r.type === 'pid').map((r) => r.pid!);

describe('tapbridge lab lifecycle', { skip: SKIP ?? false, timeout: 150_000 }, () => {
  before(() => requireTools(['ping']));
  after(async () => {
    await cleanupAll();
  });

  test('a running lab leaves the root namespace untouched; SIGTERM removes everything and exits 0', async () => {
    const cfg = labConfig('lab', 'tbw0');
    const rootBefore = await snapshotNamespace();
    const tb = await Tapbridge.start(cfg);
    const p = `${PREFIX}lab-`;

    // the lab works: gateway, host port, wan service behind the veth
    const gw = await ping(`${p}red`, '10.100.0.1', { count: 2 });
    assert.equal(gw.received, 2, `red -> gateway:\n${describeRun(gw)}`);
    const host = await ping(`${p}red`, '10.100.0.254', { count: 2 });
    assert.equal(host.received, 2, `red -> host port:\n${describeRun(host)}`);
    assert.match(await httpGet(`${p}host`, 'http://198.51.100.1/'), /^hello from /);
    await ip('-n', `${p}host`, 'link', 'show', 'dev', 'tbh0');
    await ip('-n', `${p}host`, 'link', 'show', 'dev', 'tbw0');

    // nothing of it shows in the root namespace
    const rootDuring = await snapshotNamespace();
    assert.deepEqual(diffSnapshots(rootBefore, rootDuring), [], 'root namespace links/addresses/routes changed while the lab runs');
    assert.deepEqual(await ours('lab'), [`${p}blue`, `${p}host`, `${p}red`, `${p}wan`]);

    // run files while it runs: socket 0600, state files
    const sock = statSync(socketPath(tb.instance));
    assert.ok(sock.isSocket(), 'control socket exists');
    assert.equal(sock.mode & 0o777, 0o600, 'control socket is 0600');
    const inner = stateResources(tb.instance, 'inner');
    assert.ok(inner.length > 0, `inner state file lists resources: ${stateFile(tb.instance, 'inner')}`);
    const services = servicePids(tb.instance);
    assert.equal(services.length, 2, `two lab services recorded: ${JSON.stringify(inner)}`);
    for (const pid of services) assert.ok(pidAlive(pid), `service ${pid} runs`);
    const innerPid = statePid(tb.instance, 'inner');
    assert.ok(innerPid !== null && innerPid !== tb.child.pid && pidAlive(innerPid), `inner pid ${innerPid} runs`);

    const e = await tb.stop();
    assert.deepEqual(e, { code: 0, signal: null }, tb.describe());
    assert.deepEqual(await ours('lab'), [], 'no namespace of the lab remains');
    assert.deepEqual(runFiles(tb.instance), [], 'no socket or state file remains');
    await waitFor('lab services and the inner process to be gone', () => [innerPid!, ...services].every((pid) => !pidAlive(pid)), { timeoutMs: 5000 });
    assert.ok(tb.logs().some((l) => /stopped; everything created was removed/.test(l.msg ?? '')), tb.describe());
    assert.ok(!tb.logs().some((l) => (l.level ?? 0) >= 40), `warnings or errors during the run:\n${tb.output}`);
    assert.deepEqual(diffSnapshots(rootBefore, await snapshotNamespace()), [], 'root namespace changed after the lab stopped');
  });

  test('a bad config: exit 2, the field path is printed, nothing is created', async () => {
    const cfg = labConfig('bad', 'tbw0');
    const ports = (cfg.bridges as { ports: Record<string, unknown>[] }[])[0].ports;
    ports[1].mac = '02:00:00:00:00'; // five octets
    const file = writeConfig(cfg, 'bad.yaml');

    const r = await cli(['run', '--config', file, '--json-logs']);
    assert.equal(r.code, 2, describeRun(r));
    assert.match(r.stderr, /bridges\[0\]\.ports\[1\]\.mac: not a MAC address/, describeRun(r));
    assert.match(r.stderr, /bad\.yaml/);
    assert.deepEqual(await ours('bad'), [], 'no namespace was created');
    for (const n of [`${PREFIX}bad-host`, `${PREFIX}bad-red`, `${PREFIX}bad-blue`, `${PREFIX}bad-wan`]) assert.equal(netnsExists(n), false, n);
    assert.deepEqual(runFiles(`${PREFIX}bad`), []);

    const c = await cli(['config', 'check', file]);
    assert.equal(c.code, 2, describeRun(c));
    assert.match(c.stderr, /bridges\[0\]\.ports\[1\]\.mac/);
    ports[1].mac = '02:00:00:00:00:03';
    const ok = await cli(['config', 'check', writeConfig(cfg, 'good.yaml')]);
    assert.equal(ok.code, 0, describeRun(ok));
  });

  test('a failure half-way through setup removes what was already created', async () => {
    const p = `${PREFIX}half-`;
    const cfg: ConfigDoc = {
      instance: `${PREFIX}half`,
      namespace: { name: `${p}host`, create: true },
      bridges: [
        {
          name: 'br0',
          ports: [
            { type: 'namespace', name: 'red', namespace: `${p}red`, addresses: ['10.100.0.2/24'] },
            // must exist already, but does not: setup fails after red was made
            { type: 'namespace', name: 'blue', namespace: `${p}missing`, createNamespace: false, addresses: ['10.100.0.3/24'] },
          ],
        },
      ],
    };
    const tb = Tapbridge.spawn(cfg);
    const e = await Promise.race([tb.exited, new Promise<null>((r) => setTimeout(() => r(null), 20_000))]);
    assert.notEqual(e, null, `still running 20 s after a failed setup:\n${tb.describe()}`);
    assert.notEqual(e!.code, 0, tb.describe());
    assert.match(tb.output, new RegExp(`${p}missing`), tb.describe());
    assert.ok(!tb.output.includes('tapbridge ready'), tb.describe());
    assert.deepEqual(await ours('half'), [], `namespaces left after the failed setup:\n${tb.describe()}`);
    assert.deepEqual(runFiles(`${PREFIX}half`), []);
  });

  test('leftovers of a crashed run (SIGKILL) are reported and removed by the next start', async () => {
    // The run's "root" is a sandbox namespace holding a decoy device named like the lab's
    // veth peer (which lives in tapbridge's own namespace): cleaning leftovers must delete
    // the lab's devices, not a same-named device of the namespace tapbridge was started in.
    const sandbox = `${PREFIX}lo-sb`;
    const peer = 'tbw1';
    trackNamespace(sandbox);
    await addNamespace(sandbox);
    await ip('-n', sandbox, 'link', 'add', 'dev', peer, 'type', 'veth', 'peer', 'name', `${peer}p`);
    const cfg = labConfig('lo', peer);
    const p = `${PREFIX}lo-`;
    const labNs = [`${p}blue`, `${p}host`, `${p}red`, `${p}wan`];

    const first = await Tapbridge.start(cfg, { netns: sandbox });
    const ok1 = await ping(`${p}red`, '10.100.0.3', { count: 1 });
    assert.equal(ok1.received, 1, describeRun(ok1));
    const oldServices = servicePids(first.instance);
    assert.equal(oldServices.length, 2);
    const { inner } = await first.killHard();
    assert.ok(inner !== null, 'the inner pid was in the state file');

    // the crash left things behind (otherwise this test tests nothing)
    assert.deepEqual((await netnsList()).filter((n) => labNs.includes(n)).sort(), labNs, 'namespaces left by the crash');
    assert.ok(runFiles(first.instance).includes(stateFile(first.instance, 'inner')), 'inner state file left by the crash');
    assert.ok(oldServices.some(pidAlive), 'lab services outlived the crash');

    const second = await Tapbridge.start(cfg, { netns: sandbox });
    const warn = second.logs().filter((l) => /leftovers/.test(l.msg ?? ''));
    assert.ok(warn.length > 0, `no leftover report in:\n${second.output}`);
    const cleaned = warn.flatMap((l) => (Array.isArray(l.cleaned) ? (l.cleaned as string[]) : []));
    for (const n of labNs) assert.ok(cleaned.some((c) => c.includes(n)), `leftover report names ${n}: ${JSON.stringify(cleaned)}`);
    await waitFor('the crashed run\'s services to be gone', () => oldServices.every((pid) => !pidAlive(pid)), { timeoutMs: 5000 });
    const ok2 = await ping(`${p}red`, '10.100.0.3', { count: 2 });
    assert.equal(ok2.received, 2, `the new run works:\n${describeRun(ok2)}`);
    const decoyAfterRestart = await run(IP, ['-n', sandbox, 'link', 'show', 'dev', peer]);
    const newServices = servicePids(second.instance);

    const e = await second.stop();
    assert.deepEqual(e, { code: 0, signal: null }, second.describe());
    assert.deepEqual(await ours('lo'), [sandbox], 'only the test\'s sandbox remains');
    assert.deepEqual(runFiles(second.instance), []);
    await waitFor('the new services to be gone', () => newServices.every((pid) => !pidAlive(pid)), { timeoutMs: 5000 });
    assert.equal(
      decoyAfterRestart.code,
      0,
      `cleaning the leftovers deleted '${peer}' in the namespace tapbridge was started in (the lab's '${peer}' lived in ${p}host):\n${describeRun(decoyAfterRestart)}\n${second.output}`,
    );
    assert.ok(netnsExists(sandbox));
  });
});
