/*
 * `tapbridge run`: bring an instance up in the foreground and tear it down on exit.
 *
 * With `namespace:` in the config (the default lab has tb-host) the process first makes
 * sure that namespace exists, then re-executes itself inside it (`ip netns exec`) and
 * waits: the inner process creates the devices, runs the data plane and the control
 * socket. Both record what they create (Resources), so SIGINT/SIGTERM, an error half-way
 * through setup, or a crash followed by a new start all end with nothing left behind.
 *
 * Both install their signal handlers before creating anything (lifecycle.ts): a signal
 * during setup aborts it at the next step and tears down what was made. Teardown is a list
 * of bounded steps, each logged with its duration; the inner process is done within
 * INNER_TEARDOWN_MS, the outer one SIGKILLs it after INNER_STOP_MS, so a stop takes < 3 s.
 * A data-plane crash (the worker's fatal message, logged with its stack) tears down and
 * exits with EXIT_DATAPLANE_CRASH (70); the outer process passes the inner's code on.
 *
 * With `--user NAME` there is always an outer process (also without `namespace:`): once
 * setup is done the inner one becomes NAME with no capabilities (privileges.ts) and leaves
 * what needs root at the end (namespaces, links, lab services, its files in /run/tapbridge)
 * to the outer one, which stays root and removes it all after the inner exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { IP, NSENTER, inNetns } from '../lab/ip.js';
import { cleanLeftovers, processStart, Resources, RUN_DIR } from '../lab/resources.js';
import { ensureNamespace, setupLabVeths, setupPorts } from '../lab/setup.js';
import { native } from '../io/native.js';
import { DataPlaneWorker, STOP_GRACE_MS, httpCaller } from '../control/dataplane-client.js';
import { ControlServer, type Route } from '../control/server.js';
import { apiRoutes } from '../control/routes.js';
import { RuntimePorts } from '../control/runtime-ports.js';
import { LocalhostProxy, type ProxyTarget } from '../control/localhost-proxy.js';
import { dataPlaneSpec } from '../control/spec.js';
import { openExperimentCaptures } from '../control/experiment-requests.js';
import { EXIT_DATAPLANE_CRASH, EXIT_ERROR, EXIT_OK, SetupAborted, StopRequest, describeStop, runSteps, type StopReason } from './lifecycle.js';
import { dropPrivileges, effectiveCapabilities, type RunUser } from './privileges.js';

export function socketPathOf(cfg: Config): string {
  return cfg.socket ?? `${RUN_DIR}/${cfg.instance}.sock`;
}

function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('tapbridge run needs root (CAP_NET_ADMIN to create TAPs and namespaces); try sudo');
}

/** How long the inner process may take to stop before the outer one SIGKILLs it. */
const INNER_STOP_MS = 2300;
/** Time budget of the inner process's teardown (the outer adds its own namespace on top). */
const INNER_TEARDOWN_MS = 2000;
/** Time limit of each asynchronous teardown step of the inner process. */
const SOCKET_STEP_MS = 200;

export function closeFds(fds: number[]): void {
  for (const fd of fds) {
    try {
      native.close(fd);
    } catch {
      /* already closed */
    }
  }
  fds.length = 0;
}

/** The root supervisor: makes tapbridge's namespace (if any), runs the inner process in it, removes what the inner left. */
export async function runOuter(cfg: Config, argv: string[], log: Logger, user: RunUser | null = null): Promise<number> {
  requireRoot();
  const stop = new StopRequest(log); // before anything is created: a signal from here on tears down
  const ns = cfg.namespace;
  for (const role of ['inner', 'outer']) {
    const cleaned = cleanLeftovers(cfg.instance, role);
    if (cleaned.length > 0) log.warn({ cleaned }, 'removed leftovers of an earlier run that did not exit cleanly');
  }
  const res = new Resources(cfg.instance, 'outer');
  let child: ChildProcess | null = null;
  let childExit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> = Promise.resolve({ code: 0, signal: null });
  let code = EXIT_ERROR;
  try {
    if (ns !== undefined) ensureNamespace(ns.name, ns.create, res, 'namespace');
    await stop.checkpoint();
    const script = process.argv[1] ?? fileURLToPath(new URL('../../../bin/tapbridge.js', import.meta.url));
    // nsenter (not `ip netns exec`): keep the root mount namespace, so namespaces the inner
    // process creates (their /run/netns bind mounts) are visible to the user's shell.
    // The node flags this process got (--cpu-prof, --trace-gc, --perf-basic-prof ...) go to the
    // inner process too: it is the one that runs the data plane.
    const inner = [process.execPath, ...process.execArgv, script, ...argv, '--inside'];
    const c = ns !== undefined ? spawn(NSENTER, [`--net=/run/netns/${ns.name}`, '--', ...inner], { stdio: 'inherit' }) : spawn(inner[0], inner.slice(1), { stdio: 'inherit' });
    child = c;
    childExit = new Promise((resolve) => {
      c.on('exit', (exitCode, signal) => resolve({ code: exitCode, signal }));
      c.on('error', (err) => {
        log.error({ err: err.message }, `cannot start the inner process (${NSENTER})`);
        resolve({ code: EXIT_ERROR, signal: null });
      });
    });
    let forwarded: NodeJS.Signals | null = null;
    let killTimer: NodeJS.Timeout | undefined;
    void stop.stopped.then((reason) => {
      forwarded = reason.kind === 'signal' ? reason.signal : 'SIGTERM';
      c.kill(forwarded);
      killTimer = setTimeout(() => {
        log.error({ pid: c.pid, ms: INNER_STOP_MS }, 'inner process did not stop in time; killing it');
        c.kill('SIGKILL');
      }, INNER_STOP_MS);
    });
    const e = await childExit;
    clearTimeout(killTimer);
    if (e.code !== null) code = e.code;
    else if (forwarded !== null && e.signal === forwarded) code = EXIT_OK; // it died of our stop before its handlers were up
    else {
      log.error({ signal: e.signal, pid: c.pid }, `inner process was killed by ${e.signal}; removing what it left`);
      code = EXIT_ERROR;
    }
  } catch (err) {
    if (!(err instanceof SetupAborted)) throw err;
    log.info({ reason: describeStop(err.reason) }, 'stop requested during setup');
    code = EXIT_OK;
  } finally {
    const t0 = performance.now();
    const problems = await runSteps(log, [
      { step: 'inner process', timeoutMs: INNER_STOP_MS + 300, run: () => (child !== null && child.exitCode === null && child.signalCode === null ? childExit : undefined) },
      {
        step: 'inner leftovers', // the inner run crashed: what it recorded goes too
        timeoutMs: 1000,
        run: () => {
          const done = cleanLeftovers(cfg.instance, 'inner');
          // Without privileges the inner process leaves its namespaces, links and services to us.
          if (done.length > 0 && user === null) log.warn({ cleaned: done }, 'removed what the inner process left');
          else if (done.length > 0) log.info({ cleaned: done.length }, `removed what the inner process (${user!.name}) could not`);
          if (user !== null) rmSync(socketPathOf(cfg), { force: true });
        },
      },
      { step: 'resources', timeoutMs: 1000, run: () => res.teardown(Date.now() + 600) },
    ]);
    if (problems.length > 0) log.warn({ problems }, 'teardown problems');
    log.info({ ms: Math.round(performance.now() - t0), exitCode: code }, 'outer process done');
  }
  return code;
}

export async function runInner(cfg: Config, log: Logger, user: RunUser | null = null): Promise<number> {
  requireRoot();
  const stop = new StopRequest(log); // before anything is created: a signal from here on tears down
  if (cfg.namespace !== undefined && !inNetns(cfg.namespace.name))
    throw new Error(`expected to run inside namespace '${cfg.namespace.name}'`);
  const cleaned = cleanLeftovers(cfg.instance, 'inner');
  if (cleaned.length > 0) log.warn({ cleaned }, 'removed leftovers of an earlier run that did not exit cleanly');

  const res = new Resources(cfg.instance, 'inner');
  const fds: number[] = [];
  const worker = new DataPlaneWorker(log);
  const control = new ControlServer(socketPathOf(cfg));
  const proxy = new LocalhostProxy(log);
  let stopping = false;
  /** Privileges dropped (--user): what needs root at the end is the outer process's. */
  let dropped = false;
  worker.onExit = (c) => {
    if (stopping) return;
    log.error({ code: c, crash: worker.fatalMessage }, 'data-plane worker died; tearing down');
    stop.request({ kind: 'crash', message: worker.fatalMessage ?? `worker exited with code ${c}` });
  };
  /** Bounded teardown (INNER_TEARDOWN_MS), each step logged with its duration. */
  const teardown = async (reason: StopReason): Promise<number> => {
    stopping = true;
    const t0 = performance.now();
    const deadline = Date.now() + INNER_TEARDOWN_MS;
    log.info({ reason: describeStop(reason) }, 'stopping');
    const problems = await runSteps(log, [
      { step: 'localhost proxy', timeoutMs: SOCKET_STEP_MS, run: () => proxy.stop() },
      { step: 'control socket', timeoutMs: SOCKET_STEP_MS, run: () => control.close() },
      { step: 'data plane', timeoutMs: 2 * STOP_GRACE_MS + 100, run: async () => ((await worker.stop()) === 'abandoned' ? ['data-plane worker abandoned (did not exit)'] : []) },
      { step: 'devices', timeoutMs: SOCKET_STEP_MS, run: () => closeFds(fds) },
      { step: 'resources', timeoutMs: INNER_TEARDOWN_MS, run: () => (dropped ? undefined : res.teardown(deadline)) },
    ]);
    const ms = Math.round(performance.now() - t0);
    const exitCode = reason.kind === 'crash' || worker.crashed ? EXIT_DATAPLANE_CRASH : reason.kind === 'error' ? EXIT_ERROR : EXIT_OK;
    if (problems.length > 0) log.warn({ problems, ms, exitCode }, 'stopped, with teardown problems');
    else if (dropped) log.info({ ms, exitCode }, 'stopped; the supervisor removes the namespaces, links and services');
    else log.info({ ms, exitCode }, 'stopped; everything created was removed');
    return exitCode;
  };

  try {
    await stop.checkpoint();
    await setupLabVeths(cfg, res, stop.checkpoint);
    const setup = await setupPorts(cfg, res, fds, stop.checkpoint);
    await stop.checkpoint();
    await worker.start(dataPlaneSpec(cfg, setup, openExperimentCaptures(cfg)));
    await stop.checkpoint();
    control.add(new RuntimePorts(worker, cfg, fds).routes());
    control.add(apiRoutes(worker, control, cfg));
    if (process.env.TAPBRIDGE_TEST_HOOKS === '1') control.add(testHookRoutes(worker));
    await control.listen();
    await stop.checkpoint();
    startServices(cfg, res, log, () => stopping);
    startDhcpClients(cfg, res, log, () => stopping);
    await stop.checkpoint();
    // A socket uplink's published ports are host sockets already (127.0.0.1 included).
    if (cfg.nat !== undefined && cfg.nat.localhostProxy && cfg.uplink?.type !== 'socket') {
      await proxy.start(
        cfg.nat.publish.flatMap((p) => {
          const end = p.portEnd ?? p.port;
          const out: ProxyTarget[] = [];
          for (let port = p.port; port <= end; port++) out.push({ proto: p.proto, listenPort: port, toAddress: p.to, toPort: (p.toPort ?? p.port) + (port - p.port) });
          return out;
        }),
      );
      await stop.checkpoint();
    }
    if (user !== null) {
      control.chown(user.uid, user.gid);
      dropPrivileges(user);
      dropped = true;
      log.info({ user: user.name, uid: user.uid, gid: user.gid, capabilities: effectiveCapabilities() }, `running as ${user.name} without privileges; the supervisor removes the lab at exit`);
    }
  } catch (err) {
    if (err instanceof SetupAborted) {
      log.info({ reason: describeStop(err.reason) }, 'stop requested during setup; removing what was made');
      return teardown(err.reason);
    }
    const code = await teardown(worker.crashed ? { kind: 'crash', message: worker.fatalMessage ?? (err as Error).message } : { kind: 'error', message: (err as Error).message });
    if (code === EXIT_DATAPLANE_CRASH) return code; // the data plane died while starting: logged with its stack
    throw err;
  }
  log.info(
    {
      instance: cfg.instance,
      bridges: cfg.bridges.map((b) => b.name),
      ports: cfg.bridges.flatMap((b) => b.ports.map((p) => p.name)),
      socket: control.socketPath,
    },
    `tapbridge ready: ${cfg.bridges.length} bridge(s), ${cfg.bridges.reduce((n, b) => n + b.ports.length, 0)} port(s); control: tapbridge ctl --socket ${control.socketPath} ports`,
  );
  return teardown(await stop.stopped);
}

/**
 * Routes that exist only with TAPBRIDGE_TEST_HOOKS=1 (tests of failure paths):
 *   POST /v1/debug/crash  make the data plane throw (its API method debug_crash).
 */
function testHookRoutes(worker: DataPlaneWorker): Route[] {
  const call = httpCaller(worker);
  return [{ method: 'POST', path: '/v1/debug/crash', summary: 'test hook: make the data plane crash (TAPBRIDGE_TEST_HOOKS=1 only)', handler: () => call('debug_crash') }];
}

/** busybox udhcpc: the udhcpc package's, else busybox's applet. */
function udhcpcCommand(): string[] {
  for (const p of ['/usr/sbin/udhcpc', '/sbin/udhcpc', '/usr/bin/udhcpc']) if (existsSync(p)) return [p];
  for (const p of ['/usr/bin/busybox', '/bin/busybox']) if (existsSync(p)) return [p, 'udhcpc'];
  throw new Error('addresses: dhcp needs busybox udhcpc (apt: udhcpc or busybox)');
}

/** `addresses: dhcp` ports: udhcpc in the namespace, once the data plane answers; stopped at teardown like the lab services. */
export function startDhcpClients(cfg: Config, res: Resources, log: Logger, stopping: () => boolean): void {
  const script = fileURLToPath(new URL('../../../scripts/udhcpc-script.sh', import.meta.url));
  for (const b of cfg.bridges) {
    for (const p of b.ports) {
      if (p.type !== 'namespace' || p.addresses !== 'dhcp') continue;
      const cmd = udhcpcCommand();
      const args = [...cmd.slice(1), '-f', '-i', p.ifname, '-s', script, '-x', `hostname:${p.name}`, '-t', '10', '-T', '1', '-A', '3'];
      const child = spawn(IP, ['netns', 'exec', p.namespace, cmd[0], ...args], { stdio: 'ignore', detached: true });
      if (child.pid !== undefined) res.add({ type: 'pid', pid: child.pid, what: `udhcpc in ${p.namespace}`, start: processStart(child.pid) });
      child.on('exit', (code, signal) => {
        if (!stopping() && signal !== 'SIGTERM') log.warn({ namespace: p.namespace, code, signal }, 'udhcpc exited');
      });
      log.info({ port: p.name, namespace: p.namespace, ifname: p.ifname }, 'udhcpc started');
    }
  }
}

export function startServices(cfg: Config, res: Resources, log: Logger, stopping: () => boolean): void {
  const script = fileURLToPath(new URL('../lab/service.js', import.meta.url));
  for (const s of cfg.lab?.services ?? []) {
    const args: string[] = [];
    if (s.http !== undefined) args.push('--http', String(s.http));
    if (s.udpEcho !== undefined) args.push('--udp-echo', String(s.udpEcho));
    if (args.length === 0) continue;
    const child = spawn(IP, ['netns', 'exec', s.namespace, process.execPath, script, ...args], {
      stdio: 'ignore',
      detached: true, // its own process group: a terminal's Ctrl-C must not kill it before teardown
      env: { ...process.env, TAPBRIDGE_NS: s.namespace },
    });
    if (child.pid !== undefined) res.add({ type: 'pid', pid: child.pid, what: `lab service in ${s.namespace}`, start: processStart(child.pid) });
    child.on('exit', (code, signal) => {
      if (!stopping() && signal !== 'SIGTERM') log.warn({ namespace: s.namespace, code, signal }, 'lab service exited');
    });
    log.info({ namespace: s.namespace, http: s.http, udpEcho: s.udpEcho }, 'lab service started');
  }
}
