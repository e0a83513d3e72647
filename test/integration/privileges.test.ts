/*
 * Least privilege (issue 8, item 17): `tapbridge run --user nobody`. Once setup is done the
 * process that runs the data plane and the control socket is nobody with no capabilities;
 * forwarding, routing and `ctl` keep working, the control socket belongs to nobody (0600) and
 * refuses any other user, and the root supervisor removes everything at exit, with tapbridge
 * in a namespace of its own (`namespace:`) and without one (the supervisor then runs beside it).
 *
 * All names start with tbt-<pid>-; after() removes whatever a failed test left.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { ping } from '../helpers/net.js';
import { PREFIX, TAPBRIDGE, addNamespace, announceSkip, describeRun, integrationSkipReason, netnsList, run } from '../helpers/sys.js';
import { requireTools } from '../helpers/tools.js';
import { Tapbridge, cleanupAll, runFiles, statePid, trackNamespace, type ConfigDoc } from '../helpers/tapbridge.js';

const SKIP = integrationSkipReason();
if (SKIP !== null) announceSkip('least-privilege integration tests', SKIP);

const NOBODY_UID = 65534;

function config(tag: string, inOwnNamespace: boolean): ConfigDoc {
  const p = `${PREFIX}${tag}-`;
  return {
    instance: `${PREFIX}${tag}`,
    ...(inOwnNamespace ? { namespace: { name: `${p}host`, create: true } } : {}),
    bridges: [
      {
        name: 'br0',
        gateway: { address: ['10.100.0.1/24', '2001:db8:100::1/64'] },
        ports: [
          { type: 'namespace', name: 'red', namespace: `${p}red`, addresses: ['10.100.0.2/24', '2001:db8:100::2/64'], defaultRoute: '10.100.0.1' },
          { type: 'namespace', name: 'blue', namespace: `${p}blue`, addresses: ['10.100.0.3/24', '2001:db8:100::3/64'] },
        ],
      },
    ],
  };
}

/** Uid and effective capabilities of a process, from /proc. */
function credentials(pid: number): { uid: number; capEff: string } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  return { uid: Number(/^Uid:\s+(\d+)/m.exec(s)![1]), capEff: /^CapEff:\s+([0-9a-f]+)/m.exec(s)![1] };
}

async function checkDropped(tb: Tapbridge, p: string): Promise<void> {
  const inner = statePid(tb.instance, 'inner');
  assert.ok(inner !== null, tb.describe());
  const c = credentials(inner);
  assert.equal(c.uid, NOBODY_UID, `inner process uid\n${tb.describe()}`);
  assert.match(c.capEff, /^0+$/, 'no capabilities left');
  const sock = statSync(tb.socket);
  assert.equal(sock.uid, NOBODY_UID, 'the control socket belongs to nobody');
  assert.equal(sock.mode & 0o777, 0o600);
  for (const dst of ['10.100.0.3', '10.100.0.1', '2001:db8:100::3', '2001:db8:100::1']) {
    const r = await ping(`${p}red`, dst, { count: 2, intervalS: 0.2 });
    assert.ok(r.ok, `red -> ${dst} after the drop\n${describeRun(r)}\n${tb.describe()}`);
  }
  const ports = await tb.ctlJson<{ name: string }[]>('ports');
  assert.ok(ports.some((x) => x.name === 'red'), 'root still talks to the control socket');
  const down = await tb.ctl('link', 'red', 'down');
  assert.equal(down.code, 0, describeRun(down));
  const lost = await ping(`${p}red`, '10.100.0.3', { count: 1, waitS: 1 });
  assert.equal(lost.received, 0, 'a port set down carries nothing');
  assert.equal((await tb.ctl('link', 'red', 'up')).code, 0);
  // Another unprivileged user is refused by the socket's permissions.
  const other = await run('setpriv', ['--reuid=daemon', '--regid=daemon', '--clear-groups', process.execPath, TAPBRIDGE, 'ctl', '--socket', tb.socket, 'ports'], { timeoutMs: 15_000 });
  assert.notEqual(other.code, 0, describeRun(other));
  assert.match(other.stdout + other.stderr, /EACCES|permission denied/i, describeRun(other));
}

/** Stopped cleanly; nothing of the instance is left (`keep`: a namespace the test made itself). */
async function checkStopped(tb: Tapbridge, tag: string, keep: string[] = []): Promise<void> {
  const e = await tb.stop();
  assert.equal(e.code, 0, tb.describe());
  const left = (await netnsList()).filter((n) => n.startsWith(`${PREFIX}${tag}-`) && !keep.includes(n));
  assert.deepEqual(left, [], `namespaces left\n${tb.describe()}`);
  assert.deepEqual(runFiles(tb.instance).filter((f) => existsSync(f)), [], 'files left in the run directory');
  assert.match(tb.output, /removed what the inner process \(nobody\) could not/, tb.describe());
}

describe('tapbridge run --user nobody', { skip: SKIP ?? false, timeout: 120_000 }, () => {
  before(() => requireTools(['ping', 'setpriv']));
  after(async () => {
    await cleanupAll();
  });

  test('in its own namespace: runs without privileges after setup, the supervisor removes everything', async () => {
    const tb = await Tapbridge.start(config('pv', true), { args: ['--user', 'nobody'] });
    await checkDropped(tb, `${PREFIX}pv-`);
    await checkStopped(tb, 'pv');
  });

  test('without a namespace of its own: the supervisor runs beside it', async () => {
    const host = `${PREFIX}pw-host`;
    await addNamespace(host);
    trackNamespace(host);
    try {
      const tb = await Tapbridge.start(config('pw', false), { args: ['--user', 'nobody'], netns: host });
      await checkDropped(tb, `${PREFIX}pw-`);
      await checkStopped(tb, 'pw', [host]);
    } finally {
      await run('ip', ['netns', 'del', host], { timeoutMs: 5000 });
    }
  });

  test('an unknown user is refused before anything is created', async () => {
    const tb = Tapbridge.spawn(config('px', true), { args: ['--user', 'no-such-user-tb'] });
    const e = await tb.exited;
    assert.notEqual(e.code, 0);
    assert.match(tb.output, /--user: no user 'no-such-user-tb'/, tb.describe());
    assert.deepEqual((await netnsList()).filter((n) => n.startsWith(`${PREFIX}px-`)), []);
  });
});
