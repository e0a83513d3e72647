/*
 * Starting and stopping tapbridge, the hard cases (hardening issue, lifecycle):
 *   - a start/stop loop of a small instance (one bridge, two namespace ports), a ping in
 *     each cycle: every stop takes < 3 s, exits 0 and leaves nothing (namespaces, run
 *     files, processes);
 *   - SIGTERM during setup (right after the first namespace appears, and a little later)
 *     aborts setup and removes what was made, with and without the outer process;
 *   - a restart right after a SIGKILL of the process group, while the killed process is
 *     still a zombie (not reaped by the test yet), is not refused as "already running";
 *   - a data-plane crash tears down and exits 70 with the crash's stack in the log
 *     (TAPBRIDGE_TEST_HOOKS=1, POST /v1/debug/crash);
 *   - an over-limit control API body gets 413 with a JSON error, the instance lives on.
 *
 * All names start with tbt-<pid>-; addresses are 10.100.0.0/24 inside the test's
 * namespaces only; after() kills and removes whatever a failed test left behind.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { ping } from '../helpers/net.js';
import { PREFIX, ROOT, TAPBRIDGE, addNamespace, announceSkip, describeRun, integrationSkipReason, netnsList, run, sleep, waitFor } from '../helpers/sys.js';
import {
  Tapbridge,
  cleanupAll,
  pidAlive,
  namespacesOf,
  processesMentioning,
  runFiles,
  statePid,
  stateResources,
  trackNamespace,
  writeConfig,
  type ConfigDoc,
  type Exit,
} from '../helpers/tapbridge.js';
import { requireTools } from '../helpers/tools.js';

const SKIP = integrationSkipReason();
if (SKIP !== null) announceSkip('lifecycle integration tests', SKIP);

const STOP_LIMIT_MS = 3000;
const CYCLES = 20;

/** One bridge, ports a (10.100.0.2) and b (10.100.0.3) in namespaces <p>a, <p>b; tapbridge in <p>host unless `inOuter` is false. */
function smallConfig(tag: string, opts: { inOwnNamespace?: boolean } = {}): ConfigDoc {
  const p = `${PREFIX}${tag}-`;
  return {
    instance: `${PREFIX}${tag}`,
    ...(opts.inOwnNamespace === false ? {} : { namespace: { name: `${p}host`, create: true } }),
    bridges: [
      {
        name: 'br0',
        ports: [
          { type: 'namespace', name: 'a', namespace: `${p}a`, addresses: ['10.100.0.2/24'] },
          { type: 'namespace', name: 'b', namespace: `${p}b`, addresses: ['10.100.0.3/24'] },
        ],
      },
    ],
  };
}

const ours = async (tag: string) => (await netnsList()).filter((n) => n.startsWith(`${PREFIX}${tag}-`)).sort();

/** Everything an instance may leave: namespaces of the tag (but `keep`), run files, live processes of its config. */
async function leftovers(tag: string, tb: Tapbridge, pids: (number | null)[], keep: string[] = []): Promise<string[]> {
  const out: string[] = [];
  for (const n of await ours(tag)) if (!keep.includes(n)) out.push(`namespace ${n}`);
  for (const f of runFiles(tb.instance)) out.push(`file ${f}`);
  for (const pid of pids) if (pid !== null && pidAlive(pid)) out.push(`process ${pid}`);
  for (const p of processesMentioning(tb.configFile)) out.push(`process ${p.pid}: ${p.cmdline}`);
  return out;
}

/** SIGTERM, then wait (bounded) for the exit; returns it and how long it took. */
async function timedStop(tb: Tapbridge): Promise<{ exit: Exit; ms: number }> {
  const t0 = performance.now();
  const exit = await tb.stop(10_000);
  return { exit, ms: Math.round(performance.now() - t0) };
}

function stepLogs(tb: Tapbridge): string {
  return tb
    .logs()
    .filter((l) => typeof l.step === 'string')
    .map((l) => `${String(l.step)}=${String(l.ms)}ms`)
    .join(' ');
}

describe('tapbridge start/stop lifecycle', { skip: SKIP ?? false, timeout: 240_000 }, () => {
  before(() => requireTools(['ping', 'curl']));
  after(async () => {
    await cleanupAll();
  });

  test(`a start/stop loop of ${CYCLES} cycles: each stop < ${STOP_LIMIT_MS} ms, exit 0, nothing left`, async (t) => {
    const cfg = smallConfig('loop');
    const times: number[] = [];
    for (let i = 0; i < CYCLES; i++) {
      const tb = await Tapbridge.start(cfg);
      const inner = statePid(tb.instance, 'inner');
      const r = await ping(`${PREFIX}loop-a`, '10.100.0.3', { count: 1, waitS: 2 });
      assert.equal(r.received, 1, `cycle ${i}: a -> b through the switch:\n${describeRun(r)}\n${tb.describe()}`);
      const { exit, ms } = await timedStop(tb);
      times.push(ms);
      assert.deepEqual(exit, { code: 0, signal: null }, `cycle ${i}: exit status\n${tb.describe()}`);
      assert.ok(ms < STOP_LIMIT_MS, `cycle ${i}: stop took ${ms} ms (limit ${STOP_LIMIT_MS}); steps: ${stepLogs(tb)}\n${tb.describe()}`);
      assert.deepEqual(await leftovers('loop', tb, [tb.child.pid ?? null, inner]), [], `cycle ${i}: left behind\n${tb.describe()}`);
      const steps = tb.logs().filter((l) => typeof l.step === 'string' && typeof l.ms === 'number');
      assert.ok(steps.length >= 5, `cycle ${i}: teardown steps are logged with their durations: ${stepLogs(tb)}`);
    }
    const sorted = [...times].sort((a, b) => a - b);
    t.diagnostic(`stop times (ms) over ${CYCLES} cycles: min ${sorted[0]}, median ${sorted[Math.floor(sorted.length / 2)]}, max ${sorted[sorted.length - 1]}; all: ${times.join(' ')}`);
  });

  /**
   * Start, SIGTERM `delayMs` after `trigger` appears, and check that it exits 0 and removes
   * everything. Returns what the log says about where the stop came.
   */
  async function sigtermDuringSetup(t: TestContext, tag: string, cfg: ConfigDoc, trigger: string, delayMs: number, netns?: string): Promise<void> {
    const tb = Tapbridge.spawn(cfg, netns === undefined ? {} : { netns });
    await waitFor(`${trigger} to appear`, () => existsSync(`/run/netns/${trigger}`) || tb.exitInfo !== null, { timeoutMs: 15_000, intervalMs: 2 });
    assert.equal(tb.exitInfo, null, `exited before ${trigger} appeared:\n${tb.describe()}`);
    if (delayMs > 0) await sleep(delayMs);
    const inner = statePid(tb.instance, 'inner');
    const services = stateResources(tb.instance, 'inner').flatMap((r) => (r.type === 'pid' && r.pid !== undefined ? [r.pid] : []));
    const { exit, ms } = await timedStop(tb);
    const ready = tb.output.includes('tapbridge ready');
    t.diagnostic(`${tag}: SIGTERM ${delayMs} ms after ${trigger} appeared (${ready ? 'after' : 'before'} ready): exit ${JSON.stringify(exit)} after ${ms} ms`);
    assert.deepEqual(exit, { code: 0, signal: null }, tb.describe());
    assert.ok(ms < STOP_LIMIT_MS, `stop took ${ms} ms\n${tb.describe()}`);
    assert.deepEqual(await leftovers(tag, tb, [tb.child.pid ?? null, inner, ...services], netns === undefined ? [] : [netns]), [], `left behind\n${tb.describe()}`);
  }

  test('SIGTERM during setup (tapbridge as one process, in a sandbox namespace): setup stops, everything is removed', async (t) => {
    const sandbox = `${PREFIX}sa-sb`;
    trackNamespace(sandbox);
    await addNamespace(sandbox);
    for (const delay of [0, 20, 60, 150]) await sigtermDuringSetup(t, 'sa', smallConfig('sa', { inOwnNamespace: false }), `${PREFIX}sa-a`, delay, sandbox);
  });

  test('SIGTERM during setup (outer and inner process): setup stops, everything is removed', async (t) => {
    // the outer's own namespace (the outer is setting up or starting the inner), then the
    // inner's first port namespace (the inner is setting up)
    const cases: [string, number][] = [['host', 0], ['host', 40], ['a', 0], ['a', 30], ['a', 100], ['a', 250]];
    for (const [ns, delay] of cases) await sigtermDuringSetup(t, 'sb', smallConfig('sb'), `${PREFIX}sb-${ns}`, delay);
  });

  test('a restart right after SIGKILL of the process group is not refused while the killed process is a zombie', async () => {
    const cfg = smallConfig('zz');
    const file = writeConfig(cfg);
    for (const n of namespacesOf(cfg)) trackNamespace(n); // after() removes them if this test fails half-way
    // the first run in its own process group, a child of this process (so it stays a zombie until reaped)
    const first = spawn(process.execPath, [TAPBRIDGE, 'run', '--config', file, '--json-logs'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    first.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
    first.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
    try {
      await waitFor('the first run to be ready', () => output.includes('tapbridge ready') || first.exitCode !== null, { timeoutMs: 20_000, intervalMs: 50 });
      assert.ok(output.includes('tapbridge ready'), output);
      const inner = statePid(cfg.instance!, 'inner');
      process.kill(-first.pid!, 'SIGKILL');
      // Block this event loop (spawnSync) at once: Node cannot reap the killed child meanwhile,
      // so the state file's pid is a zombie the whole time the second run starts.
      const second = spawnSync(process.execPath, [TAPBRIDGE, 'run', '--config', file, '--json-logs'], { cwd: ROOT, encoding: 'utf8', timeout: 8000, killSignal: 'SIGTERM' });
      const out2 = `${second.stdout}${second.stderr}`;
      assert.doesNotMatch(out2, /already running/, `the zombie counted as a running instance:\n${out2}`);
      assert.match(out2, /removed leftovers of an earlier run/, out2);
      assert.match(out2, /tapbridge ready/, out2);
      assert.equal(second.status, 0, `the second run (stopped by SIGTERM after 8 s): status ${second.status}, signal ${second.signal}\n${out2}`);
      await waitFor('the killed processes to be gone', () => !pidAlive(first.pid!) && (inner === null || !pidAlive(inner)), { timeoutMs: 5000 });
      assert.deepEqual(await ours('zz'), [], out2);
      assert.deepEqual(runFiles(cfg.instance!), [], out2);
    } finally {
      try {
        process.kill(-first.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
      for (const f of runFiles(cfg.instance!)) rmSync(f, { force: true });
    }
  });

  test('a data-plane crash: the stack is logged, everything is removed, exit 70', async () => {
    const cfg = smallConfig('crash');
    const tb = await Tapbridge.start(cfg, { env: { TAPBRIDGE_TEST_HOOKS: '1' } });
    const inner = statePid(tb.instance, 'inner');
    const r = await tb.ctl('api', 'POST', '/v1/debug/crash');
    if (/unknown method 'debug_crash'/.test(r.stderr + r.stdout))
      assert.fail(`the data plane has no API method 'debug_crash' yet (src/dataplane/api.ts: it must throw from a timer when TAPBRIDGE_TEST_HOOKS=1):\n${describeRun(r)}`);
    assert.ok(r.code === 0 || /data plane stopped/.test(r.stderr), `POST /v1/debug/crash:\n${describeRun(r)}`);
    const e = await Promise.race([tb.exited, sleep(10_000).then(() => null)]);
    assert.notEqual(e, null, `still running 10 s after the crash:\n${tb.describe()}`);
    assert.deepEqual(e, { code: 70, signal: null }, tb.describe());
    const crash = tb.logs().find((l) => /data-plane crash/.test(l.msg ?? ''));
    assert.ok(crash !== undefined && /debug crash/.test(String(crash.stack)), `the crash is logged with its stack:\n${tb.describe()}`);
    assert.deepEqual(await leftovers('crash', tb, [tb.child.pid ?? null, inner]), [], tb.describe());
  });

  test('an over-limit control API body gets 413 with a JSON error; the instance keeps serving', async () => {
    const tb = await Tapbridge.start(smallConfig('big'));
    const body = JSON.stringify({ pad: 'x'.repeat(2 << 20) }); // 2 MiB, the limit is 1 MiB
    const file = writeConfig(body, 'big.json');
    // curl, with and without `Expect: 100-continue`
    for (const expect of [[], ['-H', 'Expect:']]) {
      const c = await run('curl', ['-sS', '--max-time', '10', '--unix-socket', tb.socket, '-H', 'content-type: application/json', ...expect, '--data-binary', `@${file}`, '-w', '\n%{http_code}', 'http://localhost/v1/forwards']);
      assert.equal(c.code, 0, describeRun(c));
      const lines = c.stdout.trimEnd().split('\n');
      assert.equal(lines.pop(), '413', describeRun(c));
      assert.match(JSON.parse(lines.join('\n')).error, /too large/, describeRun(c));
    }
    // node's http client, chunked (no content-length: the limit is found while reading)
    const answer = await new Promise<{ status: number; text: string; connection: string | undefined }>((resolve, reject) => {
      const req = request({ socketPath: tb.socket, method: 'POST', path: '/v1/forwards', headers: { 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text, connection: res.headers.connection }));
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err); // writing on after the answer: expected
      });
      req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
      for (let i = 0; i < 32; i++) req.write('x'.repeat(64 << 10));
      req.end();
    });
    assert.equal(answer.status, 413, JSON.stringify(answer));
    assert.equal(answer.connection, 'close', JSON.stringify(answer));
    assert.match(JSON.parse(answer.text).error, /too large/);
    const ports = await tb.ctlJson<{ name: string }[]>('ports');
    assert.deepEqual(ports.map((p) => p.name).sort(), ['a', 'b'], 'the instance still answers');
    const { exit } = await timedStop(tb);
    assert.deepEqual(exit, { code: 0, signal: null }, tb.describe());
    assert.ok(!tb.logs().some((l) => (l.level ?? 0) >= 50), `errors in the log:\n${tb.output}`);
  });
});
