/*
 * `tapbridge run --rootless`: the lab without root, split in two processes
 * (docs/architecture.md, "Rootless mode"):
 *
 *   parent  `tapbridge run --rootless`, the ordinary user, in the network namespace it was
 *           started in: the data-plane worker, the control socket (and the host sockets of a
 *           socket uplink). It needs no privilege and never creates a device.
 *   agent   `unshare --user --map-root-user --mount --net --pid --fork --kill-child --
 *           tapbridge rootless-agent`: root of a new user namespace. It mounts a tmpfs on
 *           /run (for /run/netns), creates the tenant namespaces and their TAPs with the lab
 *           code of the root mode, starts the lab services, sends every TAP fd with its
 *           PortSpec to the parent over a unix socket pair (SCM_RIGHTS, native/fdpass.cc)
 *           and waits. It never handles a packet.
 *
 * Messages on the pair (SOCK_SEQPACKET, one JSON object each): parent -> agent `{config}`;
 * agent -> parent `{port: PortSpec}` + the TAP fd, then `{ready: true}` or `{error}`.
 * Supervision: SIGINT/SIGTERM or a data-plane crash in the parent -> SIGTERM to the agent,
 * SIGKILL after AGENT_STOP_MS; the agent dying -> the parent stops with an error; the parent
 * dying -> the agent sees EOF on the pair and tears down. The agent is pid 1 of its own pid
 * namespace, so even a SIGKILLed agent takes every process it started with it, and its
 * namespaces go with the last process in them. Files (the user's runtime directory, 0700):
 * the control socket, the parent's state file (the agent's pids) and <instance>.agent, the
 * agent's host pid for `tapbridge exec`.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, lstatSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { PortSpec } from '../dataplane/spec.js';
import { native } from '../io/native.js';
import { cleanLeftovers, processStart, Resources, RUN_DIR } from '../lab/resources.js';
import { setupPorts } from '../lab/setup.js';
import { DataPlaneWorker, STOP_GRACE_MS } from '../control/dataplane-client.js';
import { ControlServer, HttpError, type Route } from '../control/server.js';
import { apiRoutes } from '../control/routes.js';
import { dataPlaneSpec } from '../control/spec.js';
import { openExperimentCaptures } from '../control/experiment-requests.js';
import { EXIT_DATAPLANE_CRASH, EXIT_ERROR, EXIT_OK, SetupAborted, StopRequest, describeStop, runSteps, type StopReason } from './lifecycle.js';
import { closeFds, socketPathOf, startDhcpClients, startServices } from './run.js';

/** The agent's end of the socket pair, in the agent. */
const AGENT_FD = 3;
/** How long the agent may take to stop after SIGTERM before it is SIGKILLed. */
const AGENT_STOP_MS = 2500;
/** Longest wait for the agent's devices (it creates namespaces, TAPs, addresses). */
const AGENT_SETUP_MS = 30000;
/** How often the agent looks for EOF on the pair (its parent gone). */
const PARENT_CHECK_MS = 200;
const SOCKET_STEP_MS = 200;

type AgentMessage = { port: PortSpec } | { ready: true } | { error: string };

/** The file naming a rootless instance's agent (read by `tapbridge exec`). */
export function agentFileOf(instance: string): string {
  return `${RUN_DIR}/${instance}.agent`;
}

export interface AgentRecord {
  /** Host pid of the agent (pid 1 of the sandbox's pid namespace). */
  pid: number;
  start: number;
}

function readFirst(file: string): string | null {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
}

/** What keeps this user from running rootless, each with its fix; empty when nothing does. */
export function rootlessProblems(): string[] {
  const problems: string[] = [];
  if (readFirst('/proc/sys/kernel/unprivileged_userns_clone') === '0')
    problems.push('user namespaces are disabled for ordinary users (kernel.unprivileged_userns_clone = 0); fix: sudo sysctl -w kernel.unprivileged_userns_clone=1');
  const max = readFirst('/proc/sys/user/max_user_namespaces');
  if (max === '0') problems.push('user namespaces are disabled (user.max_user_namespaces = 0); fix: sudo sysctl -w user.max_user_namespaces=15000');
  if (problems.length === 0) {
    const trial = spawnSync('unshare', ['--user', 'true'], { encoding: 'utf8', timeout: 3000 });
    if (trial.error !== undefined) problems.push(`cannot run unshare (${trial.error.message}); install util-linux`);
    else if (trial.status !== 0)
      problems.push(
        `cannot create a user namespace (unshare --user true: ${trial.stderr.trim() || `exit ${trial.status}`}); on Ubuntu 24.04+ AppArmor may restrict them (kernel.apparmor_restrict_unprivileged_userns)`,
      );
  }
  if (!existsSync('/dev/net/tun')) problems.push('/dev/net/tun does not exist; fix: sudo modprobe tun');
  else {
    try {
      accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
    } catch {
      problems.push('/dev/net/tun is not readable and writable by this user; fix: sudo chmod 0666 /dev/net/tun (the mode Debian ships)');
    }
  }
  return problems;
}

/** What a config may not ask of the rootless mode (it cannot be done without root). */
function rootlessConfigProblems(cfg: Config): string[] {
  const problems: string[] = [];
  if (cfg.namespace !== undefined) problems.push('namespace: not supported with --rootless (tapbridge stays in the namespace it was started in)');
  if ((cfg.lab?.veths.length ?? 0) > 0) problems.push('lab.veths: not supported with --rootless (they would join the sandbox to a namespace it cannot reach)');
  for (const b of cfg.bridges)
    for (const p of b.ports) if (p.type !== 'namespace') problems.push(`bridges.${b.name}.ports.${p.name}: only namespace ports are possible with --rootless (type ${p.type} needs root here)`);
  if (cfg.uplink !== undefined && cfg.uplink.type !== 'socket') problems.push("uplink: an AF_PACKET uplink needs root; use uplink: { type: socket } with --rootless");
  return problems;
}

/** The user's runtime directory: created 0700, and refused when someone else owns it or others may write to it. */
function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  const uid = process.getuid?.() ?? 0;
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o022) !== 0)
    throw new Error(`${dir}: must be a directory owned by uid ${uid} and not writable by others (set TAPBRIDGE_RUN_DIR or XDG_RUNTIME_DIR elsewhere)`);
}

/** The subordinate id range of this user in /etc/subuid or /etc/subgid (name or uid), if any. */
function hasSubordinateIds(file: string, names: string[]): boolean {
  const text = readFirst(file) ?? '';
  return text.split('\n').some((l) => names.includes(l.split(':')[0]));
}

/** unshare's id-mapping flags: the user as root, plus its subordinate ranges when newuidmap can map them. */
function idMapFlags(): string[] {
  const names = [String(process.getuid?.() ?? 0), userInfo().username];
  const helpers = ['/usr/bin/newuidmap', '/usr/bin/newgidmap'].every((p) => existsSync(p));
  const subIds = hasSubordinateIds('/etc/subuid', names) && hasSubordinateIds('/etc/subgid', names);
  return helpers && subIds ? ['--map-root-user', '--map-auto'] : ['--map-root-user'];
}

function signalPid(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone meanwhile */
  }
}

/**
 * The host pid of the agent: the child of unshare that has exec'd node `rootless-agent`
 * (with --map-auto, unshare also forks a helper that runs newuidmap/newgidmap).
 */
async function agentPidOf(unsharePid: number, deadline: number): Promise<number> {
  for (;;) {
    const kids = readFirst(`/proc/${unsharePid}/task/${unsharePid}/children`);
    if (kids === null) throw new Error('the agent exited while starting (see its log above)');
    const agent = kids
      .split(' ')
      .filter((k) => k !== '')
      .map(Number)
      .find((pid) => {
        const argv = (readFirst(`/proc/${pid}/cmdline`) ?? '').split('\0');
        return argv[0] === process.execPath && argv.includes('rootless-agent'); // exec'd: not a fork of unshare still
      });
    if (agent !== undefined) return agent;
    if (Date.now() > deadline) throw new Error('unshare did not start the agent');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Ports at runtime need devices the parent cannot make: a clear answer instead of a missing route. */
function noRuntimePorts(): Route[] {
  const refuse = () => {
    throw new HttpError(501, 'ports at runtime are not available in rootless mode (only the agent can create devices); list them in the config');
  };
  return [
    { method: 'POST', path: '/v1/ports', summary: 'not in rootless mode', handler: refuse },
    { method: 'GET', path: '/v1/ports/runtime', summary: 'not in rootless mode', handler: () => [] },
  ];
}

/** The parent: checks, spawns the agent, takes its TAPs, runs the data plane and the control socket. */
export async function runRootless(cfg: Config, log: Logger, agentArgv: string[]): Promise<number> {
  const problems = [...rootlessProblems(), ...rootlessConfigProblems(cfg)];
  if (problems.length > 0) throw new Error(`tapbridge run --rootless cannot start:\n  ${problems.join('\n  ')}`);
  ensurePrivateDir(RUN_DIR);
  const stop = new StopRequest(log); // before anything is created: a signal from here on tears down
  const cleaned = cleanLeftovers(cfg.instance, 'rootless');
  if (cleaned.length > 0) log.warn({ cleaned }, 'removed leftovers of an earlier run that did not exit cleanly');
  const res = new Resources(cfg.instance, 'rootless');
  const agentFile = agentFileOf(cfg.instance);
  const fds: number[] = [];
  const worker = new DataPlaneWorker(log);
  const control = new ControlServer(socketPathOf(cfg));
  let stopping = false;
  let agent: ChildProcess | null = null;
  let agentPid = -1;
  let agentExit: Promise<unknown> = Promise.resolve();
  const [mine, theirs] = native.socketPair();
  /** The agent's end while this process still holds it (closed once the agent has its copy). */
  const agentEnd = [theirs];
  worker.onExit = (c) => {
    if (stopping) return;
    log.error({ code: c, crash: worker.fatalMessage }, 'data-plane worker died; tearing down');
    stop.request({ kind: 'crash', message: worker.fatalMessage ?? `worker exited with code ${c}` });
  };

  const stopAgent = async (): Promise<void> => {
    if (agent === null || agent.exitCode !== null || agent.signalCode !== null) return;
    // Not forked yet: SIGTERM to unshare reaches the agent (--kill-child=SIGTERM).
    const signal = (sig: NodeJS.Signals) => (agentPid > 0 ? signalPid(agentPid, sig) : agent?.kill(sig));
    signal('SIGTERM');
    const timer = setTimeout(() => {
      log.error({ pid: agentPid, ms: AGENT_STOP_MS }, 'agent did not stop in time; killing it');
      signal('SIGKILL');
      agent?.kill('SIGKILL');
    }, AGENT_STOP_MS);
    await agentExit;
    clearTimeout(timer);
  };

  const teardown = async (reason: StopReason): Promise<number> => {
    stopping = true;
    const t0 = performance.now();
    log.info({ reason: describeStop(reason) }, 'stopping');
    const problems = await runSteps(log, [
      { step: 'control socket', timeoutMs: SOCKET_STEP_MS, run: () => control.close() },
      { step: 'data plane', timeoutMs: 2 * STOP_GRACE_MS + 100, run: async () => ((await worker.stop()) === 'abandoned' ? ['data-plane worker abandoned (did not exit)'] : []) },
      { step: 'devices', timeoutMs: SOCKET_STEP_MS, run: () => closeFds(fds) },
      { step: 'agent', timeoutMs: AGENT_STOP_MS + 500, run: stopAgent },
      { step: 'socket pair', timeoutMs: SOCKET_STEP_MS, run: () => closeFds([mine, ...agentEnd]) },
      { step: 'files', timeoutMs: 1000, run: () => (rmSync(agentFile, { force: true }), res.teardown(Date.now() + 800)) },
    ]);
    const ms = Math.round(performance.now() - t0);
    const exitCode = reason.kind === 'crash' || worker.crashed ? EXIT_DATAPLANE_CRASH : reason.kind === 'error' ? EXIT_ERROR : EXIT_OK;
    if (problems.length > 0) log.warn({ problems, ms, exitCode }, 'stopped, with teardown problems');
    else log.info({ ms, exitCode }, 'stopped; the agent and its namespaces are gone');
    return exitCode;
  };

  try {
    const script = process.argv[1] ?? fileURLToPath(new URL('../../../bin/tapbridge.js', import.meta.url));
    const unshareArgs = ['--user', ...idMapFlags(), '--mount', '--net', '--pid', '--mount-proc', '--fork', '--kill-child=SIGTERM', '--'];
    const c = spawn('unshare', [...unshareArgs, process.execPath, ...process.execArgv, script, 'rootless-agent', ...agentArgv], {
      stdio: ['inherit', 'inherit', 'inherit', theirs],
      env: { ...process.env, TAPBRIDGE_RUN_DIR: '/run/tapbridge' }, // the agent's own tmpfs
    });
    agent = c;
    agentExit = new Promise<void>((resolve) => {
      c.on('exit', (code, signal) => {
        if (!stopping) {
          log.error({ code, signal }, 'the rootless agent exited; stopping');
          stop.request({ kind: 'error', message: `the rootless agent exited (${signal ?? `code ${code}`})` });
        }
        resolve();
      });
      c.on('error', (err) => {
        log.error({ err: err.message }, 'cannot start unshare (util-linux)');
        stop.request({ kind: 'error', message: `cannot start unshare: ${err.message}` });
        resolve();
      });
    });
    closeFds(agentEnd); // the agent has its copy as fd 3
    if (c.pid === undefined) throw new Error('cannot start unshare (util-linux)');
    res.add({ type: 'pid', pid: c.pid, what: 'unshare of the rootless agent', start: processStart(c.pid) });
    const deadline = Date.now() + AGENT_SETUP_MS;
    agentPid = await agentPidOf(c.pid, deadline);
    const record: AgentRecord = { pid: agentPid, start: processStart(agentPid) };
    res.add({ type: 'pid', pid: agentPid, what: 'rootless agent', start: record.start });
    writeFileSync(agentFile, JSON.stringify(record), { mode: 0o600 });
    native.sendFds(mine, JSON.stringify({ config: cfg }), []);

    const ports: PortSpec[] = [];
    for (;;) {
      await stop.checkpoint();
      const m = native.recvFds(mine, 0);
      if (m === null) {
        if (Date.now() > deadline) throw new Error(`the rootless agent did not finish its setup within ${AGENT_SETUP_MS} ms`);
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      fds.push(...m.fds);
      if (m.data.length === 0) throw new Error('the rootless agent closed its socket during setup (see its log above)');
      const msg = JSON.parse(m.data.toString('utf8')) as AgentMessage;
      if ('error' in msg) throw new Error(`rootless agent: ${msg.error}`);
      if ('ready' in msg) break;
      if (m.fds.length !== 1) throw new Error(`rootless agent: port '${msg.port.name}' came with ${m.fds.length} fds`);
      ports.push({ ...msg.port, fd: m.fds[0] });
    }
    await worker.start(dataPlaneSpec(cfg, { ports, uplink: null }, openExperimentCaptures(cfg)));
    await stop.checkpoint();
    control.add(apiRoutes(worker, control, cfg));
    control.add(noRuntimePorts());
    await control.listen();
    await stop.checkpoint();
  } catch (err) {
    if (err instanceof SetupAborted) {
      log.info({ reason: describeStop(err.reason) }, 'stop requested during setup; removing what was made');
      return teardown(err.reason);
    }
    const code = await teardown(worker.crashed ? { kind: 'crash', message: worker.fatalMessage ?? (err as Error).message } : { kind: 'error', message: (err as Error).message });
    if (code === EXIT_DATAPLANE_CRASH) return code;
    throw err;
  }
  log.info(
    { instance: cfg.instance, ports: cfg.bridges.flatMap((b) => b.ports.map((p) => p.name)), socket: control.socketPath, agent: agentPid },
    `tapbridge ready (rootless): ${cfg.bridges.reduce((n, b) => n + b.ports.length, 0)} port(s); try: tapbridge exec ${cfg.bridges[0].ports[0]?.name ?? 'NAMESPACE'} -- ip addr`,
  );
  return teardown(await stop.stopped);
}

/** The agent: root of the user namespace; makes the namespaces and TAPs, hands the TAPs over, waits. */
export async function runAgent(log: Logger): Promise<number> {
  const stop = new StopRequest(log);
  const first = native.recvFds(AGENT_FD, 10000);
  if (first === null || first.data.length === 0) throw new Error('rootless agent: no config from the parent (fd 3); this command is internal to tapbridge run --rootless');
  const cfg = (JSON.parse(first.data.toString('utf8')) as { config: Config }).config;
  // /run/netns for `ip netns add`, and the agent's state file, on a tmpfs of this mount namespace.
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'mode=0755,size=4m', 'tapbridge', '/run'], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 5000 });
  const res = new Resources(cfg.instance, 'agent');
  const fds: number[] = [];
  let stopping = false;
  const send = (m: AgentMessage, withFds: number[] = []) => native.sendFds(AGENT_FD, JSON.stringify(m), withFds);
  const teardown = async (reason: StopReason): Promise<number> => {
    stopping = true;
    log.info({ reason: describeStop(reason) }, 'agent stopping');
    const problems = await runSteps(log, [
      { step: 'devices', timeoutMs: SOCKET_STEP_MS, run: () => closeFds(fds) },
      { step: 'namespaces and services', timeoutMs: 2000, run: () => res.teardown(Date.now() + 1800) },
    ]);
    if (problems.length > 0) log.warn({ problems }, 'agent stopped, with teardown problems');
    return reason.kind === 'signal' ? EXIT_OK : EXIT_ERROR;
  };
  try {
    const setup = await setupPorts(cfg, res, fds, stop.checkpoint);
    for (const p of setup.ports) send({ port: p }, [p.fd]);
    closeFds(fds); // the parent holds the TAPs now: they live as long as its fds
    startServices(cfg, res, log, () => stopping);
    startDhcpClients(cfg, res, log, () => stopping);
    send({ ready: true });
  } catch (err) {
    if (err instanceof SetupAborted) return teardown(err.reason);
    try {
      send({ error: (err as Error).message });
    } catch {
      /* the parent is gone */
    }
    return teardown({ kind: 'error', message: (err as Error).message });
  }
  const watch = setInterval(() => {
    const m = native.recvFds(AGENT_FD, 0);
    if (m !== null && m.data.length === 0) stop.request({ kind: 'error', message: 'the parent closed the socket pair (it exited)' });
  }, PARENT_CHECK_MS);
  const reason = await stop.stopped;
  clearInterval(watch);
  return teardown(reason);
}
