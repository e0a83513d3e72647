/*
 * scripts/run-tests.js's stale cleanup, run for real (on a unit test file, so only the
 * cleanup and a short unit run happen): namespaces tbt-<pid>-* and tbn-<pid>-* of a test
 * process that is gone are removed — also when that process is a zombie not yet reaped —
 * and those of a live process are kept.
 *
 * The namespaces are empty ones this test makes (tracked: after() removes what is left).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, addNamespace, announceSkip, describeRun, integrationSkipReason, netnsExists, run } from '../helpers/sys.js';
import { cleanupAll, pidAlive, trackNamespace } from '../helpers/tapbridge.js';

const SKIP = integrationSkipReason();
if (SKIP !== null) announceSkip('run-tests cleanup integration tests', SKIP);

/** A pid that was a process a moment ago and is gone now. */
async function deadPid(): Promise<number> {
  const c = spawn('/bin/true');
  await new Promise((r) => c.once('exit', r));
  assert.ok(!pidAlive(c.pid!));
  return c.pid!;
}

describe('run-tests.js stale cleanup', { skip: SKIP ?? false, timeout: 60_000 }, () => {
  const children: number[] = [];
  after(async () => {
    for (const pid of children) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await cleanupAll();
  });

  test('tbt- and tbn- namespaces of a dead or zombie owner are removed, those of a live owner kept', async () => {
    const dead = await deadPid();
    // a zombie owner: `sleep 0` exits, its parent exec'd `sleep 20` and never reaps it
    const sh = spawn('/bin/sh', ['-c', 'sleep 0 & echo $!; exec sleep 20'], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(sh.pid!);
    const zombie = await new Promise<number>((resolve) => sh.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    const names = {
      deadTbt: `tbt-${dead}-stale`,
      deadTbn: `tbn-${dead}-stale`,
      zombie: `tbn-${zombie}-zombie`,
      live: `tbn-${process.pid}-live`,
    };
    for (const n of Object.values(names)) {
      trackNamespace(n);
      await addNamespace(n);
    }
    const r = await run(process.execPath, [join(ROOT, 'scripts', 'run-tests.js'), 'unit/tools'], { timeoutMs: 45_000 });
    assert.equal(r.code, 0, describeRun(r));
    for (const n of [names.deadTbt, names.deadTbn, names.zombie]) {
      assert.equal(netnsExists(n), false, `${n} was removed:\n${describeRun(r)}`);
      assert.match(r.stderr, new RegExp(`namespace ${n}`), describeRun(r));
    }
    assert.equal(netnsExists(names.live), true, `${names.live} (this live process's) was kept:\n${describeRun(r)}`);
  });
});
