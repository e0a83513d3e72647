/*
 * The data-plane thread's poll options (config `poll`): the adaptive busy poll
 * (`busyMicros`) and CPU affinity (`cpus`), on the default lab's shape (names
 * tbt-<pid>-bp-*). Checked: traffic flows and the spin takes frames without a wake-up (its
 * counters in `ctl stats`), the data-plane thread is pinned to the configured CPU
 * (/proc/PID/task/TID/status), and an idle instance does not spin (the thread's CPU time
 * over 2 s of silence stays near zero). What the busy poll buys in latency is measured by
 * `npm run bench` (peer "tapbridge, busy poll 50 µs"), not here.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { ping } from '../helpers/net.js';
import { describeRun } from '../helpers/sys.js';
import { NatLab } from '../helpers/nat-lab.js';
import { cleanupAll } from '../helpers/tapbridge.js';
import { hostileSkip, innerPid } from '../helpers/hostile.js';

const SKIP = hostileSkip('poll option integration tests');
const CPU = cpus().length - 1;

interface PollStats {
  micros: number;
  spins: number;
  spinFrames: number;
  spinMicros: number;
  thread: number;
}

/** utime + stime of one thread, in clock ticks (/proc/PID/task/TID/stat fields 14 and 15). */
function threadTicks(pid: number, tid: number): number {
  const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

describe('poll options: busy poll and CPU affinity', { skip: SKIP ?? false, timeout: 90_000 }, () => {
  const lab = new NatLab({ tag: 'bp', extra: { poll: { busyMicros: 200, cpus: [CPU] } } });
  const stats = async () => (await lab.ctl<{ poll: PollStats }>('stats')).poll;

  before(async () => lab.start());
  after(async () => {
    try {
      await lab.stop();
    } finally {
      await cleanupAll();
    }
  });

  test('with busyMicros, traffic flows and frames are taken while spinning', async () => {
    const before = await stats();
    assert.equal(before.micros, 200);
    // red -> blue: each reply comes back within the spin window of the request's batch
    const p = await ping(lab.ns('red'), '10.100.0.3', { count: 40, intervalS: 0.02 });
    assert.equal(p.received, 40, describeRun(p));
    const r = await lab.exec('red', 'curl', ['-sS', '--max-time', '5', 'http://203.0.113.1/'], 10_000);
    assert.equal(r.code, 0, describeRun(r));
    const after = await stats();
    assert.ok(after.spins > before.spins, `spins counted: ${JSON.stringify(after)}`);
    assert.ok(after.spinFrames >= 20, `replies taken while spinning (no wake-up): ${JSON.stringify(before)} -> ${JSON.stringify(after)}`);
  });

  test('the data-plane thread runs only on the configured CPU', async () => {
    const { thread } = await stats();
    const status = readFileSync(`/proc/${innerPid(lab)}/task/${thread}/status`, 'utf8');
    assert.match(status, new RegExp(`^Cpus_allowed_list:\\s+${CPU}$`, 'm'), status);
  });

  test('idle, the busy poll does not spin: the thread uses almost no CPU', async () => {
    const pid = innerPid(lab);
    const { thread } = await stats();
    await new Promise((res) => setTimeout(res, 500)); // let the last spin end
    const t0 = threadTicks(pid, thread);
    await new Promise((res) => setTimeout(res, 2000));
    const used = threadTicks(pid, thread) - t0; // clock ticks (100/s): 200 would be one CPU
    assert.ok(used <= 20, `the data-plane thread used ${used} ticks (${used}% of a CPU) in 2 s of silence`);
  });
});
