#!/usr/bin/env node
/*
 * Test entry point (`npm test` runs `tsc -p . && node scripts/run-tests.js`).
 *
 *   node scripts/run-tests.js [filter...] [-- node-test-args...]
 *
 * Runs `node --test --test-concurrency=1` over the compiled tests: every *.test.js under
 * dist/test/unit, then dist/test/integration (Node 20 does not glob, so files are found
 * here and passed explicitly). A filter argument keeps the files whose path contains it
 * (`node scripts/run-tests.js fdb switch`); arguments starting with '-' go to node --test.
 *
 * Integration tests need root, /dev/net/tun and iproute2. Without them the run says so
 * loudly, runs the unit tests only and FAILS, unless TAPBRIDGE_ALLOW_SKIP=1.
 *
 * Before running, leftovers of earlier test runs that crashed are removed and listed:
 * tapbridge processes started by a test process that is gone, namespaces named tbt-<pid>-*
 * whose <pid> is gone, and /run/tapbridge/tbt-* state/socket files of dead instances.
 * Nothing of a test run that is still alive is touched.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'dist', 'test');
const RUN_DIR = process.env.TAPBRIDGE_RUN_DIR ?? '/run/tapbridge';
const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => existsSync(p));
const PREFIX = 'tbt-';

function findTests(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...findTests(p));
    else if (entry.isFile() && entry.name.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

function banner(lines) {
  const width = Math.max(...lines.map((l) => l.length)) + 4;
  const bar = '!'.repeat(width + 4);
  process.stderr.write(`\n${bar}\n${bar}\n`);
  for (const l of lines) process.stderr.write(`!! ${l.padEnd(width)} !!\n`);
  process.stderr.write(`${bar}\n${bar}\n\n`);
}

function pidAlive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/** The test process a name like tbt-<pid>-... belongs to, or null. */
function ownerPid(name) {
  const m = /^tbt-(\d+)-/.exec(name);
  return m ? Number(m[1]) : null;
}

function leftoverOf(name) {
  const owner = ownerPid(name);
  return owner === null || !pidAlive(owner);
}

function ipRun(args) {
  return spawnSync(IP, args, { encoding: 'utf8', timeout: 15000 });
}

function readState(path) {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return null;
  }
}

function ppidOf(pid) {
  try {
    const m = /^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : -1;
  } catch {
    return -1;
  }
}

/**
 * Remove what crashed test runs left behind; returns a list of what was removed.
 * A leftover belongs to a test process tbt-<pid> that is gone AND is not in use by a live
 * tapbridge: processes must be orphans (their test process died), namespaces must not be
 * listed in the state file of a live instance.
 */
function cleanStale() {
  const removed = [];
  // 1. orphaned tapbridge processes whose config lives in a dead test run's temp dir
  const cands = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    let argv;
    try {
      argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!argv.some((a) => a.endsWith('bin/tapbridge.js'))) continue;
    const cfg = argv.find((a, i) => i > 0 && (argv[i - 1] === '--config' || argv[i - 1] === '-c'));
    const m = cfg === undefined ? null : /\/(tbt-\d+-[^/]*)\//.exec(cfg);
    if (m === null || !leftoverOf(m[1])) continue;
    cands.set(Number(d), { ppid: ppidOf(Number(d)), argv });
  }
  const stale = new Set();
  for (let changed = true; changed; ) {
    changed = false;
    for (const [pid, c] of cands)
      if (!stale.has(pid) && (c.ppid <= 1 || stale.has(c.ppid) || !pidAlive(c.ppid))) {
        stale.add(pid);
        changed = true;
      }
  }
  for (const pid of stale) {
    try {
      process.kill(pid, 'SIGKILL');
      removed.push(`process ${pid} (${cands.get(pid).argv.filter(Boolean).join(' ')})`);
    } catch {
      /* gone meanwhile */
    }
  }
  for (const deadline = Date.now() + 3000; [...stale].some(pidAlive) && Date.now() < deadline; ) spawnSync('sleep', ['0.05']);

  // 2. state and socket files of dead tbt-* instances (kill the lab services they list)
  const protectedNs = new Set();
  if (existsSync(RUN_DIR)) {
    const files = readdirSync(RUN_DIR).filter((f) => f.startsWith(PREFIX));
    const liveInstances = new Set();
    for (const f of files.filter((x) => x.endsWith('.json'))) {
      const state = readState(join(RUN_DIR, f));
      if (state === null || !pidAlive(state.pid)) continue;
      liveInstances.add(f.replace(/\.(inner|outer)\.json$/, ''));
      for (const r of state.resources ?? []) if (r.type === 'netns') protectedNs.add(r.name);
    }
    for (const f of files) {
      const path = join(RUN_DIR, f);
      const inst = f.replace(/\.(inner|outer)\.json(\.tmp)?$/, '').replace(/\.sock$/, '');
      if (liveInstances.has(inst) || !leftoverOf(inst)) continue;
      if (f.endsWith('.json')) {
        for (const r of readState(path)?.resources ?? []) {
          if (r.type === 'pid' && pidAlive(r.pid)) {
            try {
              process.kill(r.pid, 'SIGKILL');
              removed.push(`process ${r.pid} (${r.what})`);
            } catch {
              /* gone */
            }
          }
        }
      }
      rmSync(path, { force: true });
      removed.push(`${f.endsWith('.sock') ? 'socket' : 'state file'} ${path}`);
    }
  }
  // 3. namespaces tbt-<pid>-* of dead test processes, unless a live instance uses them
  if (IP !== undefined) {
    const r = ipRun(['netns', 'list']);
    const names = (r.stdout ?? '').split('\n').map((l) => l.split(' ')[0]).filter((n) => n.startsWith(PREFIX));
    for (const ns of names) {
      if (!leftoverOf(ns) || protectedNs.has(ns)) continue;
      const d = ipRun(['netns', 'del', ns]);
      removed.push(d.status === 0 ? `namespace ${ns}` : `namespace ${ns} (could not delete: ${(d.stderr ?? '').trim()})`);
    }
  }
  // 4. temp dirs of dead test processes (configs written by test/helpers)
  for (const d of readdirSync(tmpdir())) {
    if (!d.startsWith(PREFIX) || !leftoverOf(d)) continue;
    const path = join(tmpdir(), d);
    if ([...cands.keys()].some((pid) => !stale.has(pid) && cands.get(pid).argv.some((a) => a.startsWith(path + '/')))) continue;
    rmSync(path, { recursive: true, force: true });
    removed.push(`temp dir ${path}`);
  }
  return removed;
}

function integrationSkipReason() {
  const missing = [];
  if (process.platform !== 'linux') missing.push('not Linux');
  if (process.getuid?.() !== 0) missing.push('not root (they create namespaces and TAP devices; run: sudo npm test)');
  if (!existsSync('/dev/net/tun')) missing.push('/dev/net/tun is missing');
  if (IP === undefined) missing.push("iproute2's `ip` was not found");
  return missing.length > 0 ? missing.join('; ') : null;
}

function main() {
  const args = process.argv.slice(2);
  const sep = args.indexOf('--');
  const mine = sep >= 0 ? args.slice(0, sep) : args;
  const nodeArgs = [...(sep >= 0 ? args.slice(sep + 1) : []), ...mine.filter((a) => a.startsWith('-'))];
  const filters = mine.filter((a) => !a.startsWith('-'));
  const pick = (files) => (filters.length === 0 ? files : files.filter((f) => filters.some((x) => relative(ROOT, f).includes(x))));

  if (!existsSync(DIST) || !statSync(DIST).isDirectory()) {
    process.stderr.write(`run-tests: ${relative(ROOT, DIST)} does not exist: build first (npx tsc -p .)\n`);
    process.exit(1);
  }
  const unit = pick(findTests(join(DIST, 'unit')));
  let integration = pick(findTests(join(DIST, 'integration')));

  const skip = integrationSkipReason();
  let skipped = false;
  if (skip !== null && integration.length > 0) {
    banner([
      `INTEGRATION TESTS SKIPPED: ${skip}`,
      `${integration.length} integration test file(s) were NOT run; only the unit tests run.`,
      process.env.TAPBRIDGE_ALLOW_SKIP === '1'
        ? 'TAPBRIDGE_ALLOW_SKIP=1 is set: the run may still pass.'
        : 'This run will FAIL because of that (set TAPBRIDGE_ALLOW_SKIP=1 to accept it).',
    ]);
    integration = [];
    skipped = true;
  } else if (skip === null) {
    const removed = cleanStale();
    if (removed.length > 0) process.stderr.write(`run-tests: removed leftovers of earlier test runs:\n  ${removed.join('\n  ')}\n`);
    else process.stderr.write('run-tests: no leftovers of earlier test runs\n');
  }

  const files = [...unit, ...integration];
  if (files.length === 0) {
    process.stderr.write(`run-tests: no test files match${filters.length ? ` ${filters.join(' ')}` : ''}\n`);
    process.exit(1);
  }
  process.stderr.write(`run-tests: ${unit.length} unit + ${integration.length} integration file(s)\n`);
  const child = spawn(process.execPath, ['--test', '--test-concurrency=1', ...nodeArgs, ...files], { cwd: ROOT, stdio: 'inherit' });
  const forward = (sig) => child.kill(sig);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  child.on('exit', (code, signal) => {
    let rc = code ?? (signal ? 128 + 1 : 1);
    if (skipped) {
      banner([`REMINDER: INTEGRATION TESTS WERE SKIPPED (${skip})`]);
      if (rc === 0 && process.env.TAPBRIDGE_ALLOW_SKIP !== '1') rc = 3;
    }
    process.exit(rc);
  });
}

main();
