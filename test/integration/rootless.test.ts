/*
 * Rootless mode (issue 10, parts 1, 4, 5): `tapbridge run --rootless` as a throwaway
 * unprivileged user, started inside a namespace `hostsim` (the "host" it must not need
 * privileges in; 198.51.100.1/24 on a veth to a namespace `client`, .2, is its network). Nothing of the instance
 * runs as root: the parent (data plane, control socket), unshare, the agent (root of its user
 * namespace only) and the lab service all have the user's uid. Checked: red -> blue and red ->
 * the gateway through tapbridge's switch, blue -> red's lab HTTP server, `tapbridge exec`
 * passing the exit code on, `ctl ports` without --socket; through the socket uplink, from red:
 * UDP echo, DNS forwarded to hostsim's resolver (dnsmasq, named by /etc/netns/<hostsim>/resolv.conf),
 * ping (and the counted refusal once ping_group_range excludes the user), iperf3 both ways, a
 * storm of short connections and 1000 held at once; the clean stop on SIGTERM (no process of
 * the user, no socket in hostsim, no socket, state or agent file left), and the error that names
 * /dev/net/tun and its fix when it is mode 0600.
 *
 * Setup (undone in after(), also when a test fails): /dev/net/tun mode 0666 (the old mode is
 * restored), the user tbt<pid> (userdel; its /etc/subuid and /etc/subgid lines), its XDG_RUNTIME_DIR under /tmp, the namespaces
 * tbt-<pid>-hostsim and tbt-<pid>-client, hostsim's servers (HTTP and UDP echo, iperf3, dnsmasq) and
 * its resolv.conf, and a copy of what the user
 * runs (bin, dist, node_modules, package.json, scripts, the native addon) in a directory under /tmp
 * readable by everyone: CI's checkout may sit under /root (mode 0700), out of the user's reach.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { IP, PREFIX, ROOT, addNamespace, announceSkip, deleteNamespacesSync, describeRun, integrationSkipReason, ip, run, waitFor, type RunResult } from '../helpers/sys.js';
import { parseIperf } from '../helpers/nat-lab.js';
import { HTTP_GETS_SCRIPT } from '../helpers/net.js';
import { requireTools } from '../helpers/tools.js';

const SKIP = integrationSkipReason();
if (SKIP !== null) announceSkip('rootless integration tests', SKIP);

const USER = `tbt${process.pid}`;
const HOSTSIM = `${PREFIX}hostsim`;
/** A machine on hostsim's network (198.51.100.2), joined by a veth. */
const CLIENT = `${PREFIX}client`;
const XDG = `/tmp/${PREFIX}xdg`;
const RUN_DIR = `${XDG}/tapbridge`;
const READY_MS = 20_000;
/** The published port the client uses (the default's 8000 is on 127.0.0.1: one port per proto, whatever the host address). */
const PUBLISH = '198.51.100.1:8001=10.100.0.2:8000';
/** The copy of the checkout the user runs (see stageApp). */
const APP = `/tmp/${PREFIX}app`;
const TAPBRIDGE = `${APP}/bin/tapbridge.js`;
const LAB_SERVICE = `${APP}/dist/src/lab/service.js`;
const HOST_IP = '198.51.100.1';
/** hostsim's own resolv.conf (ip netns exec bind-mounts it over /etc/resolv.conf): the gateway's upstream is dnsmasq there. */
const NETNS_ETC = `/etc/netns/${HOSTSIM}`;
/** The answer hostsim's dnsmasq gives for *.wan.test. */
const WAN_ANSWER = '198.51.100.77';
/** Connections held open at once from red (the default maxSocketsPerTenant is 1024). */
const CONCURRENT = 1000;

/** `node -e UDP_ECHO HOST PORT`: one datagram to the echo server, its answer printed. */
const UDP_ECHO = `
const s = require('node:dgram').createSocket('udp4');
s.on('message', (m) => { console.log(m.toString()); process.exit(0); });
s.send('hello over udp', Number(process.argv[2]), process.argv[1]);
setTimeout(() => { console.log('no answer'); process.exit(1); }, 3000);
`;

/** `node -e HOLD HOST PORT N`: N connections at once, held for 3 s once all are up (or 15 s passed); prints {connected, failed}. */
const HOLD = `
const net = require('node:net');
const [host, port, n] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
let connected = 0, failed = 0;
const socks = [];
const report = () => { console.log(JSON.stringify({ connected, failed })); socks.forEach((s) => s.destroy()); process.exit(0); };
const settled = () => { if (connected + failed === n) setTimeout(report, 3000); };
for (let i = 0; i < n; i++) {
  const s = net.connect(port, host);
  socks.push(s);
  s.on('connect', () => { connected++; settled(); });
  s.on('error', () => { failed++; settled(); });
}
setTimeout(report, 15000);
`;
/** What a run needs, relative to the checkout; the addon keeps its path (src/io/native.ts walks up from dist/src/io to find it). */
const STAGED = ['bin', 'dist', 'node_modules', 'package.json', 'scripts', 'native/build/Release/tapbridge.node'];

/** Copies STAGED from the checkout to APP, every directory on the way mode 0755. */
function stageApp(): void {
  mkdirSync(APP, { mode: 0o755 });
  chmodSync(APP, 0o755); // not narrowed by the umask
  for (const rel of STAGED) {
    if (!existsSync(`${ROOT}/${rel}`)) throw new Error(`rootless test cannot run: ${ROOT}/${rel} is missing (npm run build)`);
    cpSync(`${ROOT}/${rel}`, `${APP}/${rel}`, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  }
  for (let dir = `${APP}/native/build/Release`; dir !== APP; dir = dir.slice(0, dir.lastIndexOf('/'))) chmodSync(dir, 0o755);
}

/** `CMD ARGS` as USER (no groups, no capabilities, a clean environment), inside hostsim. */
function asUserArgv(args: string[]): string[] {
  return ['netns', 'exec', HOSTSIM, 'setpriv', '--reuid', USER, '--regid', USER, '--init-groups', 'env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/tmp', `XDG_RUNTIME_DIR=${XDG}`, ...args];
}

function asUser(args: string[], timeoutMs = 10_000): Promise<RunResult> {
  return run(IP, asUserArgv(args), { timeoutMs });
}

const tapbridge = (args: string[], timeoutMs?: number) => asUser([process.execPath, TAPBRIDGE, ...args], timeoutMs);

function uidOf(name: string): number {
  const r = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  return Number(r.stdout.trim());
}

/** Real, effective, saved and filesystem uid of a process (/proc/PID/status), or null when it is gone. */
function uidsOf(pid: number): number[] | null {
  try {
    return /^Uid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1].trim().split(/\s+/).map(Number);
  } catch {
    return null;
  }
}

/** pid and every descendant of it (through /proc/PID/task/TID/children). */
function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let tids: string[] = [];
    try {
      tids = readdirSync(`/proc/${out[i]}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      try {
        const kids = readFileSync(`/proc/${out[i]}/task/${tid}/children`, 'utf8').trim();
        if (kids !== '') out.push(...kids.split(' ').map(Number));
      } catch {
        /* gone */
      }
    }
  }
  return out;
}

/** Live processes whose real uid is `uid`. */
function processesOf(uid: number): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => {
      try {
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        return Number(/^Uid:\s+(\d+)/m.exec(status)![1]) === uid && !/^State:\s+Z/m.test(status);
      } catch {
        return false; // gone meanwhile
      }
    });
}

/** SIGKILL each of pids (the gone ones ignored). */
function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

const SUBID_FILES = ['/etc/subuid', '/etc/subgid'];

/** Give USER a subordinate id range (as useradd does for ordinary users), or take it away again. */
function addSubordinateIds(): void {
  for (const f of SUBID_FILES) appendFileSync(f, `${USER}:300000:65536\n`);
}
function removeSubordinateIds(): void {
  for (const f of SUBID_FILES) {
    const text = existsSync(f) ? readFileSync(f, 'utf8') : '';
    if (text.split('\n').some((l) => l.startsWith(`${USER}:`))) writeFileSync(f, text.split('\n').filter((l) => !l.startsWith(`${USER}:`)).join('\n'));
  }
}

class RootlessRun {
  readonly child: ChildProcess;
  output = '';
  readonly exited: Promise<number | null>;

  /** `detached`: in a process group of its own, as a shell runs it (for a Ctrl-C to the whole group). */
  constructor(extra: string[] = [], detached = false) {
    this.child = spawn(IP, asUserArgv([process.execPath, TAPBRIDGE, 'run', '--rootless', '--json-logs', ...extra]), { stdio: ['ignore', 'pipe', 'pipe'], detached });
    for (const s of [this.child.stdout!, this.child.stderr!]) s.on('data', (d: Buffer) => (this.output += d.toString('utf8')));
    this.exited = new Promise((r) => this.child.on('exit', (code) => r(code)));
  }

  ready(): Promise<boolean> {
    return waitFor('tapbridge ready (rootless)', () => this.output.includes('tapbridge ready (rootless)') || (this.child.exitCode !== null ? Promise.reject(new Error(`exited ${this.child.exitCode}:\n${this.output}`)) : false), { timeoutMs: READY_MS, intervalMs: 100 });
  }

  describe(): string {
    return `--- tapbridge run --rootless output ---\n${this.output.slice(-6000)}`;
  }
}

describe('tapbridge run --rootless', { skip: SKIP ?? undefined, timeout: 90_000 }, () => {
  let tunMode = -1;
  let uid = -1;
  let tb: RootlessRun | null = null;
  let hadNetnsEtc = true;
  const started: number[] = [];

  before(async () => {
    requireTools(['setpriv', 'nsenter', 'ping', 'curl', 'dig', 'newuidmap', 'newgidmap', 'iperf3', 'dnsmasq', 'ss']);
    for (const bin of ['useradd', 'userdel', 'unshare'])
      if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) throw new Error(`rootless test cannot run: ${bin} is missing (apt: ${bin === 'unshare' ? 'util-linux' : 'passwd'})`);
    tunMode = statSync('/dev/net/tun').mode & 0o7777;
    chmodSync('/dev/net/tun', 0o666);
    const add = spawnSync('useradd', ['-M', '-r', '-s', '/usr/sbin/nologin', USER], { encoding: 'utf8' });
    if (add.status !== 0) throw new Error(`rootless test cannot run: useradd ${USER} failed: ${add.stderr}`);
    uid = uidOf(USER);
    stageApp();
    mkdirSync(XDG, { mode: 0o700 });
    chownSync(XDG, uid, uid);
    await addNamespace(HOSTSIM);
    await addNamespace(CLIENT);
    await ip('-n', HOSTSIM, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', CLIENT);
    await ip('-n', HOSTSIM, 'addr', 'add', '198.51.100.1/24', 'dev', 'eth0');
    await ip('-n', HOSTSIM, 'link', 'set', 'dev', 'eth0', 'up');
    await ip('-n', CLIENT, 'addr', 'add', '198.51.100.2/24', 'dev', 'eth0');
    await ip('-n', CLIENT, 'link', 'set', 'dev', 'eth0', 'up');
    await run(IP, ['netns', 'exec', HOSTSIM, 'sysctl', '-qw', 'net.ipv4.ping_group_range=0 2147483647']);
    hadNetnsEtc = existsSync('/etc/netns');
    mkdirSync(NETNS_ETC, { recursive: true });
    writeFileSync(`${NETNS_ETC}/resolv.conf`, `nameserver ${HOST_IP}\n`);
    const servers: [string, string[]][] = [
      [process.execPath, [LAB_SERVICE, '--http', '8080', '--udp-echo', '9000']],
      ['iperf3', ['-s', '-B', HOST_IP, '-p', '5201']],
      ['dnsmasq', ['--keep-in-foreground', '--conf-file=/dev/null', '--no-hosts', '--no-resolv', `--address=/wan.test/${WAN_ANSWER}`, '-p', '53', '--listen-address', HOST_IP, '--bind-interfaces', '--pid-file=']],
    ];
    for (const [cmd, args] of servers) {
      const server = spawn(IP, ['netns', 'exec', HOSTSIM, cmd, ...args], { stdio: 'ignore', env: { ...process.env, TAPBRIDGE_NS: 'hostsim' } });
      started.push(server.pid!);
    }
    await waitFor('the HTTP server in hostsim', async () => (await run(IP, ['netns', 'exec', HOSTSIM, 'curl', '-sS', '-m', '1', `http://${HOST_IP}:8080/`])).code === 0, { timeoutMs: 5000 });
    await waitFor('iperf3 and dnsmasq in hostsim', async () => {
      const l = await run(IP, ['netns', 'exec', HOSTSIM, 'ss', '-Hlntu']);
      return [':5201 ', ':53 ', ':9000 '].every((p) => l.stdout.includes(p));
    }, { timeoutMs: 5000 });
    const readable = await asUser(['test', '-r', TAPBRIDGE]);
    if (readable.code !== 0) throw new Error(`rootless test cannot run: ${USER} cannot read ${TAPBRIDGE}, the copy in ${APP}`);
    const why = await asUser(['unshare', '--user', '--map-root-user', 'true']);
    if (why.code !== 0) throw new Error(`rootless test cannot run: user namespaces are not usable by ${USER} here:\n${describeRun(why)}`);
  });

  after(() => {
    killAll(started.flatMap((p) => processTree(p)).reverse());
    // whatever of the user outlived its parent (a lab service or client the agent's death orphaned)
    if (uid >= 0) killAll(processesOf(uid));
    removeSubordinateIds();
    rmSync(NETNS_ETC, { recursive: true, force: true });
    if (!hadNetnsEtc) {
      try {
        rmdirSync('/etc/netns'); // only when empty: another test may have put its namespace's files there meanwhile
      } catch {
        /* not empty */
      }
    }
    deleteNamespacesSync([HOSTSIM, CLIENT]);
    if (uid >= 0) spawnSync('userdel', [USER]);
    rmSync(XDG, { recursive: true, force: true });
    rmSync(APP, { recursive: true, force: true });
    if (tunMode >= 0) chmodSync('/dev/net/tun', tunMode);
  });

  test('the default lab runs as the user alone: switch, gateway, lab service, socket uplink, published ports, exec, ctl', async () => {
    tb = new RootlessRun(['--publish', PUBLISH]);
    started.push(tb.child.pid!);
    await tb.ready();
    const tree = processTree(tb.child.pid!);
    assert.ok(tree.length >= 4, `parent, unshare, agent and the lab service: ${tree.join(' ')}\n${tb.describe()}`);
    for (const pid of tree) {
      const uids = uidsOf(pid);
      if (uids !== null) assert.deepEqual(uids, [uid, uid, uid, uid], `process ${pid} (${readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ')}) runs as ${USER}`);
    }
    const agent = JSON.parse(readFileSync(`${RUN_DIR}/rootless.agent`, 'utf8')) as { pid: number };
    assert.ok(tree.includes(agent.pid), 'the agent file names the agent of this run');

    const toBlue = await tapbridge(['exec', 'red', '--', 'ping', '-c1', '-W2', '10.100.0.3']);
    assert.equal(toBlue.code, 0, `red -> blue\n${describeRun(toBlue)}\n${tb.describe()}`);
    const toGateway = await tapbridge(['exec', 'red', '--', 'ping', '-c1', '-W2', '10.100.0.1']);
    assert.equal(toGateway.code, 0, `red -> the gateway\n${describeRun(toGateway)}`);
    const http = await tapbridge(['exec', 'blue', '--', 'curl', '-sS', '-m', '5', 'http://10.100.0.2:8000/']);
    assert.equal(http.code, 0, describeRun(http));
    assert.match(http.stdout, /hello from red, you are 10\.100\.0\.3:/);
    const dns = await tapbridge(['exec', 'red', '--', 'dig', '+short', '+time=2', '+tries=1', '@10.100.0.1', 'blue.tapbridge.internal']);
    assert.equal(dns.stdout.trim(), '10.100.0.3', `DNS at the gateway answers the port names\n${describeRun(dns)}`);
    const out = await tapbridge(['exec', 'red', '--', 'curl', '-sS', '-m', '5', 'http://198.51.100.1:8080/']);
    assert.equal(out.code, 0, `red -> the host's server through the socket uplink\n${describeRun(out)}\n${tb.describe()}`);
    assert.match(out.stdout, /hello from hostsim, you are 198\.51\.100\.1:/, 'the host sees its own socket');
    const published = await run(IP, ['netns', 'exec', CLIENT, 'curl', '-sS', '-m', '5', 'http://198.51.100.1:8001/']);
    assert.equal(published.code, 0, `client -> red through --publish ${PUBLISH}\n${describeRun(published)}\n${tb.describe()}`);
    assert.match(published.stdout, /hello from red, you are 198\.51\.100\.2:/, "red's server sees the client's own address");
    const added = await tapbridge(['ctl', 'forwards', 'add', '198.51.100.1:8002/tcp=10.100.0.2:8000']);
    assert.equal(added.code, 0, `ctl forwards add at runtime\n${describeRun(added)}`);
    const runtime = await run(IP, ['netns', 'exec', CLIENT, 'curl', '-sS', '-m', '5', 'http://198.51.100.1:8002/']);
    assert.match(runtime.stdout, /hello from red, you are 198\.51\.100\.2:/, `client -> red through the forward added at runtime\n${describeRun(runtime)}`);
    const portsAdd = await tapbridge(['ctl', 'ports', 'add', 'green', '--netns', 'green']);
    assert.notEqual(portsAdd.code, 0, describeRun(portsAdd));
    assert.match(portsAdd.stderr, /not available in rootless mode/, describeRun(portsAdd));
    const loopback = await asUser(['curl', '-sS', '-m', '5', 'http://127.0.0.1:8000/']);
    assert.equal(loopback.code, 0, `the default's 127.0.0.1:8000 -> red\n${describeRun(loopback)}`);
    assert.match(loopback.stdout, /hello from red/);
    const code = await tapbridge(['exec', 'red', '--', 'sh', '-c', 'exit 7']);
    assert.equal(code.code, 7, `exec passes the exit code on\n${describeRun(code)}`);
    const ports = await tapbridge(['ctl', 'ports']);
    assert.equal(ports.code, 0, `ctl finds the rootless instance without --socket\n${describeRun(ports)}`);
    assert.match(ports.stdout, /^red\s+br0\s+namespace/m);
    assert.match(ports.stdout, /^blue\s+br0\s+namespace/m);

    const missing = await tapbridge(['exec', 'nosuch', '--', 'true']);
    assert.notEqual(missing.code, 0, describeRun(missing));
    assert.match(missing.stderr, /no namespace 'nosuch' in the rootless instance \(it has: .*red/, describeRun(missing));
  });

  test('through the socket uplink as the user: UDP echo, DNS to the upstream, ping and its refusal counted', async () => {
    assert.ok(tb !== null, 'the instance of the first test runs');
    const udp = await tapbridge(['exec', 'red', '--', process.execPath, '-e', UDP_ECHO, HOST_IP, '9000']);
    assert.equal(udp.code, 0, `red -> hostsim's UDP echo\n${describeRun(udp)}\n${tb.describe()}`);
    assert.match(udp.stdout, /^echo from hostsim to 198\.51\.100\.1:\d+: hello over udp$/m, 'the echo server sees the host socket');
    const dns = await tapbridge(['exec', 'red', '--', 'dig', '+short', '+time=2', '+tries=2', '@10.100.0.1', 'x.wan.test', 'A']);
    assert.equal(dns.stdout.trim(), WAN_ANSWER, `the gateway forwards x.wan.test to hostsim's dnsmasq\n${describeRun(dns)}\n${tb.describe()}`);
    const ping = await tapbridge(['exec', 'red', '--', 'ping', '-c2', '-i0.2', '-W2', HOST_IP]);
    assert.equal(ping.code, 0, `red pings hostsim through a ping socket\n${describeRun(ping)}\n${tb.describe()}`);
    const refusals = async (): Promise<number> => {
      const r = await tapbridge(['ctl', '--json', 'ports']);
      assert.equal(r.code, 0, describeRun(r));
      const ports = JSON.parse(r.stdout) as { name: string; counters: { drops: Record<string, number> } }[];
      return ports.find((p) => p.name === 'uplink')?.counters.drops.icmp_echo_not_permitted ?? 0;
    };
    const before = await refusals();
    await run(IP, ['netns', 'exec', HOSTSIM, 'sysctl', '-qw', 'net.ipv4.ping_group_range=1 0']);
    try {
      const refused = await tapbridge(['exec', 'red', '--', 'ping', '-c1', '-W1', HOST_IP]);
      assert.notEqual(refused.code, 0, `no ping once ping_group_range excludes the user\n${describeRun(refused)}`);
      assert.ok((await refusals()) > before, 'icmp_echo_not_permitted counted');
    } finally {
      await run(IP, ['netns', 'exec', HOSTSIM, 'sysctl', '-qw', 'net.ipv4.ping_group_range=0 2147483647']);
    }
  });

  test('through the socket uplink as the user: iperf3 both ways', async () => {
    assert.ok(tb !== null, 'the instance of the first test runs');
    for (const reverse of [false, true]) {
      const r = await tapbridge(['exec', 'red', '--', 'iperf3', '-c', HOST_IP, '-p', '5201', '-t', '2', '-J', ...(reverse ? ['-R'] : [])], 20_000);
      const j = parseIperf(r, `iperf3${reverse ? ' -R' : ''}`);
      assert.equal(r.code, 0, `iperf3${reverse ? ' -R' : ''} exits 0\n${describeRun(r)}\n${tb.describe()}`);
      assert.equal(j.error, undefined, `iperf3 error: ${j.error}`);
      assert.ok((j.end?.sum_received?.bytes ?? 0) > 0, `iperf3${reverse ? ' -R' : ''} moved data: ${JSON.stringify(j.end?.sum_received)}`);
    }
  });

  test(`through the socket uplink as the user: a storm of 400 short connections and ${CONCURRENT} held at once`, async () => {
    assert.ok(tb !== null, 'the instance of the first test runs');
    const limit = await tapbridge(['exec', 'red', '--', 'sh', '-c', 'ulimit -n']);
    assert.ok(Number(limit.stdout.trim()) > CONCURRENT + 100, `the user's RLIMIT_NOFILE (ulimit -n: ${limit.stdout.trim()}) must allow ${CONCURRENT} sockets`);
    const storm = await tapbridge(['exec', 'red', '--', process.execPath, '-e', HTTP_GETS_SCRIPT, `http://${HOST_IP}:8080/`, '400', '20'], 40_000);
    assert.equal(storm.stdout.trim().split(' ').slice(0, 4).join(' '), 'ok 400 fail 0', `the storm\n${describeRun(storm)}\n${tb.describe()}`);

    const established = async (): Promise<number> => {
      const r = await run(IP, ['netns', 'exec', HOSTSIM, 'ss', '-Htn', 'state', 'established', '( sport = :8080 )']);
      return r.stdout.split('\n').filter((l) => l.trim() !== '').length;
    };
    const holding = tapbridge(['exec', 'red', '--', process.execPath, '-e', HOLD, HOST_IP, '8080', String(CONCURRENT)], 30_000);
    let most = 0;
    let done = false;
    void holding.then(() => (done = true));
    while (!done && most < CONCURRENT) {
      most = Math.max(most, await established());
      await new Promise((r) => setTimeout(r, 200));
    }
    const held = await holding;
    assert.equal(held.code, 0, describeRun(held));
    assert.deepEqual(JSON.parse(held.stdout), { connected: CONCURRENT, failed: 0 }, `${CONCURRENT} concurrent connections from red\n${tb.describe()}`);
    assert.equal(most, CONCURRENT, `hostsim's server held all ${CONCURRENT} at once (ss -tn state established)`);
  });

  test('clean stop on SIGTERM: no process of the user, no socket in hostsim, no run-dir file', async () => {
    assert.ok(tb !== null, 'the instance of the first test runs');
    const agent = JSON.parse(readFileSync(`${RUN_DIR}/rootless.agent`, 'utf8')) as { pid: number };
    const parent = tb.child.pid!;
    try {
      tb.child.kill('SIGTERM');
      const exit = await Promise.race([tb.exited, new Promise<'late'>((r) => setTimeout(() => r('late'), 8000))]);
      assert.equal(exit, 0, `clean stop on SIGTERM\n${tb.describe()}`);
      assert.doesNotMatch(tb.output, /"level":(40|50)/, `no warning or error from start to stop\n${tb.describe()}`);
      await waitFor(`no process of ${USER} left`, () => processesOf(uid).length === 0 || undefined, { timeoutMs: 3000 });
      assert.deepEqual(readdirSync(RUN_DIR), [], 'no socket, state or agent file left');
      assert.ok(!existsSync(`/proc/${agent.pid}`) || uidsOf(agent.pid)?.[0] !== uid, 'the agent is gone');
      const sockets = await run(IP, ['netns', 'exec', HOSTSIM, 'ss', '-Htuanp']);
      assert.doesNotMatch(sockets.stdout, new RegExp(`pid=${parent},`), `no socket of the parent left in hostsim:\n${sockets.stdout}`);
      assert.doesNotMatch(sockets.stdout, /^tcp\s+(ESTAB|LISTEN)\s.*:800[012]\s/m, `no published port or connection left:\n${sockets.stdout}`);
      const live = sockets.stdout.split('\n').filter((l) => /^tcp\s+ESTAB/.test(l));
      assert.deepEqual(live, [], 'no connection left open in hostsim');
    } finally {
      // a failure above leaves the instance running: the later tests need the run dir to themselves
      killAll(processesOf(uid));
      await waitFor(`no process of ${USER} left`, () => processesOf(uid).length === 0 || undefined, { timeoutMs: 3000 });
    }
  });

  test('the parent SIGKILLed: the agent sees EOF and takes everything with it; the next start cleans up and runs', async () => {
    const first = new RootlessRun();
    started.push(first.child.pid!);
    await first.ready();
    const agent = JSON.parse(readFileSync(`${RUN_DIR}/rootless.agent`, 'utf8')) as { pid: number };
    first.child.kill('SIGKILL');
    await waitFor(`no process of ${USER} left after the parent's death`, () => processesOf(uid).length === 0 || undefined, { timeoutMs: 5000 });
    assert.equal(uidsOf(agent.pid), null, 'the agent is gone');
    const second = new RootlessRun();
    started.push(second.child.pid!);
    await second.ready();
    assert.match(second.output, /removed leftovers of an earlier run/, second.describe());
    second.child.kill('SIGTERM');
    assert.equal(await second.exited, 0, second.describe());
    assert.deepEqual(readdirSync(RUN_DIR), [], 'no socket, state or agent file left');
  });

  test('Ctrl-C (SIGINT to the whole process group): parent and agent stop together, cleanly', async () => {
    const run = new RootlessRun([], true);
    started.push(run.child.pid!);
    await run.ready();
    process.kill(-run.child.pid!, 'SIGINT');
    const exit = await Promise.race([run.exited, new Promise<'late'>((r) => setTimeout(() => r('late'), 8000))]);
    assert.equal(exit, 0, `exit 0 after Ctrl-C\n${run.describe()}`);
    assert.doesNotMatch(run.output, /"level":(40|50)/, `no warning or error on the way down\n${run.describe()}`);
    await waitFor(`no process of ${USER} left`, () => processesOf(uid).length === 0 || undefined, { timeoutMs: 3000 });
    assert.deepEqual(readdirSync(RUN_DIR), [], 'no socket, state or agent file left');
  });

  test('the agent SIGKILLed: the parent stops with an error and removes its files', async () => {
    const run = new RootlessRun();
    started.push(run.child.pid!);
    await run.ready();
    const agent = JSON.parse(readFileSync(`${RUN_DIR}/rootless.agent`, 'utf8')) as { pid: number };
    process.kill(agent.pid, 'SIGKILL');
    const exit = await Promise.race([run.exited, new Promise<'late'>((r) => setTimeout(() => r('late'), 8000))]);
    assert.equal(exit, 1, `exit code 1 once the agent died\n${run.describe()}`);
    assert.match(run.output, /the rootless agent exited/, run.describe());
    await waitFor(`no process of ${USER} left`, () => processesOf(uid).length === 0 || undefined, { timeoutMs: 3000 });
    assert.deepEqual(readdirSync(RUN_DIR), [], 'no socket, state or agent file left');
  });

  test('with subordinate ids in /etc/subuid and /etc/subgid the sandbox maps them too (newuidmap)', async () => {
    addSubordinateIds();
    try {
      const withRange = new RootlessRun();
      started.push(withRange.child.pid!);
      await withRange.ready();
      const map = await tapbridge(['exec', 'red', '--', 'cat', '/proc/self/uid_map', '/proc/self/gid_map']);
      assert.equal(map.code, 0, describeRun(map));
      const rows = map.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '));
      assert.deepEqual(rows, [`0 ${uid} 1`, '1 300000 65535', `0 ${uid} 1`, '1 300000 65535'], withRange.describe());
      const ping = await tapbridge(['exec', 'red', '--', 'ping', '-c1', '-W2', '10.100.0.3']);
      assert.equal(ping.code, 0, describeRun(ping));
      withRange.child.kill('SIGTERM');
      assert.equal(await withRange.exited, 0, withRange.describe());
    } finally {
      removeSubordinateIds();
    }
  });

  test('--publish: a bad SPEC is a config error naming the flag', async () => {
    const r = await tapbridge(['run', '--rootless', '--publish', 'nonsense']);
    assert.equal(r.code, 2, describeRun(r));
    assert.match(r.stderr, /--publish: cannot parse 'nonsense'/, describeRun(r));
  });

  test('exec in root mode: ip netns exec, the exit code passed on, a clear error for a missing namespace', async () => {
    const r = await run(process.execPath, [TAPBRIDGE, 'exec', HOSTSIM, '--', 'ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /198\.51\.100\.1\/24/);
    const seven = await run(process.execPath, [TAPBRIDGE, 'exec', HOSTSIM, '--', 'sh', '-c', 'exit 7']);
    assert.equal(seven.code, 7, describeRun(seven));
    const missing = await run(process.execPath, [TAPBRIDGE, 'exec', `${PREFIX}nosuch`, '--', 'true']);
    assert.equal(missing.code, 1, describeRun(missing));
    assert.match(missing.stderr, new RegExp(`no namespace '${PREFIX}nosuch'`));
  });

  test('/dev/net/tun not usable: the error names it and the fix', async () => {
    chmodSync('/dev/net/tun', 0o600);
    try {
      const r = await tapbridge(['run', '--rootless'], 15_000);
      assert.notEqual(r.code, 0, describeRun(r));
      assert.match(r.stderr, /\/dev\/net\/tun is not readable and writable by this user; fix: sudo chmod 0666 \/dev\/net\/tun/, describeRun(r));
      assert.deepEqual(processesOf(uid), [], 'nothing left running');
    } finally {
      chmodSync('/dev/net/tun', 0o666);
    }
  });
});
