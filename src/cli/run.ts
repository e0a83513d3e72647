/*
 * `tapbridge run`: bring an instance up in the foreground and tear it down on exit.
 *
 * With `namespace:` in the config (the default lab has tb-host) the process first makes
 * sure that namespace exists, then re-executes itself inside it (`ip netns exec`) and
 * waits: the inner process creates the devices, runs the data plane and the control
 * socket. Both record what they create (Resources), so SIGINT/SIGTERM, an error half-way
 * through setup, or a crash followed by a new start all end with nothing left behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { IP, NSENTER, inNetns } from '../lab/ip.js';
import { cleanLeftovers, processStart, Resources, RUN_DIR } from '../lab/resources.js';
import { ensureNamespace, setupLabVeths, setupPorts } from '../lab/setup.js';
import { native } from '../io/native.js';
import { DataPlaneWorker } from '../control/dataplane-client.js';
import { ControlServer } from '../control/server.js';
import { apiRoutes } from '../control/routes.js';
import { LocalhostProxy, type ProxyTarget } from '../control/localhost-proxy.js';
import { dataPlaneSpec } from '../control/spec.js';
import { openExperimentCaptures } from '../control/experiment-requests.js';

export function socketPathOf(cfg: Config): string {
  return cfg.socket ?? `${RUN_DIR}/${cfg.instance}.sock`;
}

function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('tapbridge run needs root (CAP_NET_ADMIN to create TAPs and namespaces); try sudo');
}

/**
 * Resolves at the first SIGINT/SIGTERM. Later signals are absorbed (a terminal's Ctrl-C
 * reaches both the outer and the inner process) so teardown is never cut short.
 */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let first = true;
    const on = (sig: NodeJS.Signals) => {
      if (first) resolve(sig);
      first = false;
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

export async function runOuter(cfg: Config, argv: string[], log: Logger): Promise<number> {
  requireRoot();
  const ns = cfg.namespace!;
  for (const role of ['inner', 'outer']) {
    const cleaned = cleanLeftovers(cfg.instance, role);
    if (cleaned.length > 0) log.warn({ cleaned }, 'removed leftovers of an earlier run that did not exit cleanly');
  }
  const res = new Resources(cfg.instance, 'outer');
  let code = 1;
  try {
    ensureNamespace(ns.name, ns.create, res, 'namespace');
    const script = process.argv[1] ?? fileURLToPath(new URL('../../../bin/tapbridge.js', import.meta.url));
    // nsenter (not `ip netns exec`): keep the root mount namespace, so namespaces the inner
    // process creates (their /run/netns bind mounts) are visible to the user's shell.
    const child: ChildProcess = spawn(NSENTER, [`--net=/run/netns/${ns.name}`, '--', process.execPath, script, ...argv, '--inside'], { stdio: 'inherit' });
    const exited = new Promise<number>((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 128 + 1 : 1))));
    let killTimer: NodeJS.Timeout | undefined;
    const forward = (sig: NodeJS.Signals) => {
      child.kill(sig);
      killTimer ??= setTimeout(() => child.kill('SIGKILL'), 15000).unref();
    };
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    code = await exited;
    clearTimeout(killTimer);
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
  } finally {
    cleanLeftovers(cfg.instance, 'inner'); // the inner run crashed: its namespaces go too
    const problems = res.teardown();
    if (problems.length > 0) log.warn({ problems }, 'teardown problems');
  }
  return code;
}

export async function runInner(cfg: Config, log: Logger): Promise<number> {
  requireRoot();
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
  const teardown = async (): Promise<void> => {
    stopping = true;
    await proxy.stop().catch(() => {});
    await control.close().catch(() => {});
    await worker.stop().catch(() => {});
    for (const fd of fds) {
      try {
        native.close(fd);
      } catch {
        /* already closed */
      }
    }
    const problems = res.teardown();
    if (problems.length > 0) log.warn({ problems }, 'teardown problems');
  };

  try {
    setupLabVeths(cfg, res);
    const setup = setupPorts(cfg, res, fds);
    await worker.start(dataPlaneSpec(cfg, setup, openExperimentCaptures(cfg)));
    worker.onExit = (c) => {
      if (!stopping) {
        log.error({ code: c }, 'data-plane worker exited unexpectedly; shutting down');
        process.kill(process.pid, 'SIGTERM');
      }
    };
    control.add(apiRoutes(worker, control, cfg));
    await control.listen();
    startServices(cfg, res, log, () => stopping);
    if (cfg.nat !== undefined && cfg.nat.localhostProxy) {
      await proxy.start(
        cfg.nat.publish.flatMap((p) => {
          const end = p.portEnd ?? p.port;
          const out: ProxyTarget[] = [];
          for (let port = p.port; port <= end; port++) out.push({ proto: p.proto, listenPort: port, toAddress: p.to, toPort: (p.toPort ?? p.port) + (port - p.port) });
          return out;
        }),
      );
    }
  } catch (err) {
    await teardown();
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
  const sig = await untilSignal();
  log.info({ signal: sig }, 'stopping');
  await teardown();
  log.info('stopped; everything created was removed');
  return 0;
}

function startServices(cfg: Config, res: Resources, log: Logger, stopping: () => boolean): void {
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
