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
 * They also need the system tools of test/helpers/tools.ts (ping, arping, iperf3, curl,
 * tcpdump, tshark, traceroute, tracepath, scapy, ...). Before the integration tests every
 * one is checked; as root with apt-get, the missing ones are installed (apt-get update
 * once, then apt-get install -y --no-install-recommends PACKAGES, named in the output);
 * whatever is still missing FAILS the run, naming the tool and its apt package. No test
 * is ever skipped because a tool is missing.
 *
 * Before running, leftovers of earlier test runs that crashed are removed and listed:
 * tapbridge processes started by a test process that is gone, namespaces named tbt-<pid>-*
 * or tbn-<pid>-* whose <pid> is gone, and /run/tapbridge/tbt-* (tbn-*) state/socket files
 * of dead instances, throwaway users tbt<pid> (the rootless test's) with their processes, and
 * /etc/netns/tbt-<pid>-* (a test namespace's own resolv.conf).
 * Nothing of a test run that is still alive is touched; a process that
 * is a zombie counts as gone.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'dist', 'test');
const RUN_DIR = process.env.TAPBRIDGE_RUN_DIR ?? '/run/tapbridge';
const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => existsSync(p));
/** Name prefixes of what tests create: tbt-<pid>- (test/helpers) and tbn-<pid>- (native tests, benches). */
const PREFIXES = ['tbt-', 'tbn-'];
const hasPrefix = (name) => PREFIXES.some((p) => name.startsWith(p));

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

/** The state letter of a /proc/PID/stat line (after the last ')': the name may hold anything). */
function procState(stat) {
  const i = stat.lastIndexOf(')');
  return i < 0 ? '' : stat.slice(i + 2).split(' ')[0];
}

/** A live process: kill(pid, 0) works AND it is not a zombie (Z) or dying (X). */
function pidAlive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if (err.code !== 'EPERM') return false;
  }
  let stat;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false; // gone meanwhile
  }
  const state = procState(stat);
  return state !== 'Z' && state !== 'X' && state !== 'x';
}

/** The test process a name like tbt-<pid>-... (or tbn-<pid>-...) belongs to, or null. */
function ownerPid(name) {
  const m = /^tb[tn]-(\d+)-/.exec(name);
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
    const m = cfg === undefined ? null : /\/(tb[tn]-\d+-[^/]*)\//.exec(cfg);
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
    const files = readdirSync(RUN_DIR).filter(hasPrefix);
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
  // 3. namespaces tbt-<pid>-* / tbn-<pid>-* of dead test processes, unless a live instance uses them
  if (IP !== undefined) {
    const r = ipRun(['netns', 'list']);
    const names = (r.stdout ?? '').split('\n').map((l) => l.split(' ')[0]).filter(hasPrefix);
    for (const ns of names) {
      if (!leftoverOf(ns) || protectedNs.has(ns)) continue;
      const d = ipRun(['netns', 'del', ns]);
      removed.push(d.status === 0 ? `namespace ${ns}` : `namespace ${ns} (could not delete: ${(d.stderr ?? '').trim()})`);
    }
  }
  // 4. temp dirs of dead test processes (configs written by test/helpers)
  for (const d of readdirSync(tmpdir())) {
    if (!hasPrefix(d) || !leftoverOf(d)) continue;
    const path = join(tmpdir(), d);
    if ([...cands.keys()].some((pid) => !stale.has(pid) && cands.get(pid).argv.some((a) => a.startsWith(path + '/')))) continue;
    rmSync(path, { recursive: true, force: true });
    removed.push(`temp dir ${path}`);
  }
  // 5. throwaway users tbt<pid> of dead test processes (test/integration/rootless.test.ts):
  //    their processes (by uid), the account, its /etc/subuid and /etc/subgid lines
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const [user, , uidText] = line.split(':');
    const m = /^tbt(\d+)$/.exec(user ?? '');
    if (m === null || pidAlive(Number(m[1]))) continue;
    const uid = Number(uidText);
    for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
      try {
        if (Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${d}/status`, 'utf8'))[1]) === uid) process.kill(Number(d), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    const del = spawnSync('userdel', [user], { encoding: 'utf8', timeout: 10_000 });
    for (const f of ['/etc/subuid', '/etc/subgid']) {
      if (!existsSync(f)) continue;
      const text = readFileSync(f, 'utf8');
      if (text.split('\n').some((l) => l.startsWith(`${user}:`))) writeFileSync(f, text.split('\n').filter((l) => !l.startsWith(`${user}:`)).join('\n'));
    }
    removed.push(del.status === 0 ? `user ${user}` : `user ${user} (could not delete: ${(del.stderr ?? '').trim()})`);
  }
  // 6. /etc/netns/<namespace> of dead test processes (a namespace's own resolv.conf, rootless.test.ts)
  if (existsSync('/etc/netns')) {
    for (const d of readdirSync('/etc/netns')) {
      if (!hasPrefix(d) || !leftoverOf(d)) continue;
      rmSync(join('/etc/netns', d), { recursive: true, force: true });
      removed.push(`/etc/netns/${d}`);
    }
  }
  return removed;
}

/**
 * Make sure every system tool of the integration tests is there (test/helpers/tools.ts).
 * As root with apt-get: install the missing packages (apt-get update once first). Returns
 * the tools still missing ([] = all there).
 */
async function ensureTools() {
  const { missingTools, describeTools } = await import(join(DIST, 'helpers', 'tools.js'));
  let missing = missingTools();
  if (missing.length === 0) {
    process.stderr.write('run-tests: every system tool the integration tests use is installed\n');
    return [];
  }
  const aptGet = ['/usr/bin/apt-get', '/bin/apt-get'].find((p) => existsSync(p));
  if (process.getuid?.() !== 0 || aptGet === undefined) return missing;
  const packages = [...new Set(missing.map((t) => t.apt))];
  process.stderr.write(`run-tests: missing ${describeTools(missing)}\nrun-tests: installing apt packages: ${packages.join(' ')}\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (args, timeoutMs) => {
    process.stderr.write(`run-tests: $ apt-get ${args.join(' ')}\n`);
    const r = spawnSync(aptGet, ['-o', 'Acquire::Retries=3', ...args], { stdio: ['ignore', 'inherit', 'inherit'], env, timeout: timeoutMs, killSignal: 'SIGKILL' });
    if (r.status !== 0) process.stderr.write(`run-tests: apt-get ${args[0]} failed (${r.error?.message ?? `exit ${r.status}${r.signal ? `, ${r.signal}` : ''}`})\n`);
  };
  // tshark asks whether non-root users may capture: answer it up front (no), as .ci/run does
  if (packages.includes('tshark')) spawnSync('debconf-set-selections', { input: 'wireshark-common wireshark-common/install-setuid boolean false\n', timeout: 20_000 });
  apt(['update'], 20 * 60_000);
  apt(['install', '-y', '--no-install-recommends', ...packages], 30 * 60_000);
  missing = missingTools();
  if (missing.length === 0) process.stderr.write(`run-tests: installed ${packages.join(' ')}\n`);
  return missing;
}

function integrationSkipReason() {
  const missing = [];
  if (process.platform !== 'linux') missing.push('not Linux');
  if (process.getuid?.() !== 0) missing.push('not root (they create namespaces and TAP devices; run: sudo npm test)');
  if (!existsSync('/dev/net/tun')) missing.push('/dev/net/tun is missing');
  if (IP === undefined) missing.push("iproute2's `ip` was not found");
  return missing.length > 0 ? missing.join('; ') : null;
}

async function main() {
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
    const missing = integration.length > 0 ? await ensureTools() : [];
    if (missing.length > 0) {
      const { describeTools } = await import(join(DIST, 'helpers', 'tools.js'));
      banner([
        'INTEGRATION TESTS CANNOT RUN: system tools are missing',
        ...missing.map((t) => `  ${describeTools([t])}`),
        existsSync('/usr/bin/apt-get') ? 'apt-get could not install them (see above).' : 'There is no apt-get here: install them by hand.',
        'This run FAILS (no test is skipped for a missing tool).',
      ]);
      process.exit(4);
    }
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

await main();
