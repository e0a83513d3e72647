/*
 * The pieces that keep a stop bounded (no root needed, nothing sent anywhere):
 *   - every `ip` (and other tool) call has a time limit and its error names the command
 *     (src/lab/ip.ts);
 *   - process liveness reads /proc/PID/stat: a zombie is not alive (src/lab/resources.ts);
 *   - teardown steps are bounded and logged {step, ms}; a stop request aborts setup at the
 *     next checkpoint (src/cli/lifecycle.ts);
 *   - stopping the data-plane worker never waits forever (src/control/dataplane-client.ts),
 *     with stand-in workers that ignore the stop or are stuck in a native call.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { IpError, ip, runTool, runToolQuiet } from '../../src/lab/ip.js';
import { parseProcState, pidAlive, processStart, sameProcess } from '../../src/lab/resources.js';
import { SetupAborted, StopRequest, runSteps } from '../../src/cli/lifecycle.js';
import { DataPlaneWorker } from '../../src/control/dataplane-client.js';
import type { DataPlaneSpec } from '../../src/dataplane/spec.js';

/** A pino logger whose JSON lines land in `lines`. */
function memoryLogger(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, stream), lines };
}

const children = new Set<number>();
after(() => {
  for (const pid of children) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
});

describe('tool calls have time limits', () => {
  test('a hung command is killed after its time limit; the error names the command', () => {
    const t0 = Date.now();
    assert.throws(
      () => runTool('/bin/sleep', ['5'], 200),
      (err: unknown) => err instanceof IpError && /^sleep 5: timed out after 200 ms/.test(err.message),
    );
    assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
    const q = runToolQuiet('/bin/sleep', ['5'], 200);
    assert.match(q ?? '', /^sleep 5: timed out after 200 ms/);
  });

  test('a failing ip call names the command and carries ip\'s message', () => {
    assert.throws(
      () => ip(['link', 'show', 'dev', 'tb-no-such-dev0']),
      (err: unknown) => err instanceof IpError && /^ip link show dev tb-no-such-dev0: .*(does not exist|Cannot find)/.test(err.message),
    );
  });
});

describe('process liveness', () => {
  test('the state letter is read after the last ")" (names may hold spaces and parentheses)', () => {
    assert.equal(parseProcState('1234 (node) S 1 1234 1234 0 -1 4194560'), 'S');
    assert.equal(parseProcState('99 (a) b) (c) Z 1 99 99 0 -1'), 'Z');
    assert.equal(parseProcState('7 (kworker/0:1) X 2 0 0'), 'X');
    assert.equal(parseProcState('garbage'), '');
  });

  test('a zombie is not alive, though kill(pid, 0) still succeeds on it', async () => {
    // `sleep 0` exits at once; its parent has exec'd `sleep 3`, which never reaps it: a zombie
    const sh = spawn('/bin/sh', ['-c', 'sleep 0 & echo $!; exec sleep 3'], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.add(sh.pid!);
    const zombie = await new Promise<number>((resolve) => sh.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    const start = processStart(zombie);
    for (const deadline = Date.now() + 3000; Date.now() < deadline; ) {
      try {
        if (parseProcState(readFileSync(`/proc/${zombie}/stat`, 'utf8')) === 'Z') break;
      } catch {
        /* not there yet */
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.doesNotThrow(() => process.kill(zombie, 0), 'kill(pid, 0) succeeds on a zombie');
    assert.equal(pidAlive(zombie), false, `pid ${zombie} is a zombie`);
    assert.equal(sameProcess(zombie, start), false);
    assert.equal(pidAlive(sh.pid!), true, 'its parent (sleep 3) is alive');
    assert.equal(pidAlive(process.pid), true);
    assert.equal(pidAlive(0), false);
    assert.equal(pidAlive(2 ** 22 + 12345), false, 'no such pid');
    sh.kill('SIGKILL');
  });
});

describe('stop requests and teardown steps', () => {
  test('a step that never ends is cut off after its limit; the next step still runs; each is logged {step, ms}', async () => {
    const { log, lines } = memoryLogger();
    const ran: string[] = [];
    const t0 = Date.now();
    const problems = await runSteps(log, [
      { step: 'hangs', timeoutMs: 100, run: () => new Promise(() => {}) },
      { step: 'fails', timeoutMs: 100, run: () => Promise.reject(new Error('boom')) },
      { step: 'reports', timeoutMs: 100, run: () => ['ip netns del x: busy'] },
      { step: 'fine', timeoutMs: 100, run: () => void ran.push('fine') },
    ]);
    assert.ok(Date.now() - t0 < 1000, `took ${Date.now() - t0} ms`);
    assert.deepEqual(ran, ['fine']);
    assert.deepEqual(problems, ['hangs: not done after 100 ms', 'fails: boom', 'ip netns del x: busy']);
    assert.deepEqual(
      lines.map((l) => [l.step, typeof l.ms, l.level]),
      [
        ['hangs', 'number', 40],
        ['fails', 'number', 40],
        ['reports', 'number', 40],
        ['fine', 'number', 30],
      ],
    );
    assert.ok((lines[0].ms as number) >= 95, `the hung step's duration is its limit: ${String(lines[0].ms)}`);
  });

  test('SIGTERM resolves the stop request; the next checkpoint aborts setup; later signals are absorbed', async () => {
    const { log } = memoryLogger();
    const stop = new StopRequest(log);
    try {
      await stop.checkpoint(); // nothing asked yet
      process.kill(process.pid, 'SIGTERM');
      await assert.rejects(stop.checkpoint(), (err: unknown) => err instanceof SetupAborted && err.reason.kind === 'signal' && err.reason.signal === 'SIGTERM');
      assert.deepEqual(await stop.stopped, { kind: 'signal', signal: 'SIGTERM' });
      process.kill(process.pid, 'SIGINT'); // absorbed: this process lives on
      await new Promise((r) => setTimeout(r, 50));
      stop.request({ kind: 'crash', message: 'late' });
      assert.deepEqual(stop.reason, { kind: 'signal', signal: 'SIGTERM' }, 'the first reason wins');
    } finally {
      stop.dispose();
    }
  });
});

describe('stopping the data-plane worker is bounded', () => {
  const stubborn = new URL('../../../test/unit/fixtures/stubborn-worker.mjs', import.meta.url);
  const startWorker = async (mode: string) => {
    const w = new DataPlaneWorker(memoryLogger().log, stubborn);
    await w.start({ mode } as unknown as DataPlaneSpec);
    return w;
  };

  /** Start a stand-in in `mode`, stop it with a 200 ms grace: how it ended and how long it took. */
  const stopTimed = async (mode: string) => {
    const w = await startWorker(mode);
    const t0 = Date.now();
    const how = await w.stop(200);
    return { w, how, ms: Date.now() - t0 };
  };

  test('a worker that stops: stop() resolves at once', async () => {
    const { how, ms } = await stopTimed('obey');
    assert.equal(how, 'stopped');
    assert.ok(ms < 200, `took ${ms} ms`);
  });

  test('a worker that ignores the stop is terminated after the grace period', async () => {
    const { how, ms } = await stopTimed('ignore-stop');
    assert.equal(how, 'terminated');
    assert.ok(ms >= 190 && ms < 600, `took ${ms} ms`);
  });

  test('a worker stuck in a native call: stop() gives up after twice the grace period instead of waiting', async () => {
    const { w, how, ms } = await stopTimed('block');
    assert.equal(how, 'abandoned');
    assert.ok(ms >= 390 && ms < 1000, `took ${ms} ms`);
    assert.equal(await w.stop(200), 'gone', 'a second stop has nothing to wait for');
  });
});
