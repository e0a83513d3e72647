/*
 * tapbridge command line:
 *   tapbridge run [--config FILE]     run an instance in the foreground (default: the lab)
 *   tapbridge run --rootless          the same as an ordinary user (user namespaces, rootless.ts)
 *   tapbridge exec NS -- CMD...       run a command in a tenant namespace (both modes)
 *   tapbridge ctl <command>           talk to a running instance over its control socket
 *   tapbridge config check|default    validate a file / print the embedded lab config
 * Exit codes (src/cli/lifecycle.ts): 0 ok, 70 the data plane crashed, 2 bad config, 1 other errors.
 */
import { Command, Option } from 'commander';
import { stringify } from 'yaml';
import { ConfigError, loadRunConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { DEFAULT_LAB, ROOTLESS_LAB } from '../lab/default-lab.js';
import { makeLogger } from './log.js';
import { runInner, runOuter } from './run.js';
import { resolveUser } from './privileges.js';
import { runAgent, runRootless } from './rootless.js';
import { runExec } from './exec.js';
import { registerCtl } from './ctl.js';
import { DEFAULT_CNI_DIR, installCni } from '../cni/install.js';
import { EXIT_CONFIG, EXIT_ERROR } from './lifecycle.js';

/** The config of `run`: a file, else the embedded default of the mode, with the --publish specs. */
function loadConfig(file: string | undefined, publish: string[] = [], rootless = false): Config {
  const fallback = rootless ? { doc: ROOTLESS_LAB, source: 'embedded rootless default' } : { doc: DEFAULT_LAB, source: 'embedded default lab' };
  return loadRunConfig(file, fallback, publish);
}

function fail(err: unknown): never {
  process.stderr.write(`tapbridge: ${(err as Error).message}\n`);
  process.exit(err instanceof ConfigError ? EXIT_CONFIG : EXIT_ERROR);
}

const program = new Command('tapbridge')
  .description('Userspace bridge, gateway and NAT for Linux network namespaces (TAP devices + AF_PACKET)')
  .version('0.1.0')
  .showHelpAfterError();

program
  .command('run')
  .description('bring up the configured bridges (default: the embedded lab) and run in the foreground until Ctrl-C; everything created is removed on exit')
  .option('-c, --config <file>', 'YAML or JSON configuration (default: the embedded lab, see `tapbridge config default`)')
  .option('--pretty', 'human-readable logs (default when stdout is a terminal)')
  .option('--json-logs', 'JSON logs even on a terminal')
  .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error']).default('info'))
  .option('--user <name>', 'after setup, run the data plane and control socket as this unprivileged user, with no capabilities (a root supervisor removes everything at exit)')
  .option('--rootless', 'run as an ordinary user: the namespaces and TAPs are made in a user namespace (needs user namespaces and a usable /dev/net/tun); default config: red and blue on br0 (instance rootless)')
  .option('--publish <spec>', 'publish a port, [HOSTADDR:]PORT[-END][/tcp|udp]=IP[:PORT] (repeatable; appended to nat.publish)', (v: string, acc: string[]) => [...acc, v], [] as string[])
  .addOption(new Option('--inside', 'internal: already re-executed inside the configured namespace').hideHelp())
  .action(async (opts: { config?: string; pretty?: boolean; jsonLogs?: boolean; logLevel: string; inside?: boolean; user?: string; rootless?: boolean; publish: string[] }) => {
    try {
      const cfg = loadConfig(opts.config, opts.publish, opts.rootless === true);
      if (opts.rootless) {
        if (opts.user !== undefined) throw new Error('--user and --rootless exclude each other (--rootless runs as the user who starts it)');
        const log = makeLogger({ level: opts.logLevel, pretty: opts.jsonLogs ? false : opts.pretty });
        const agentArgv = ['--log-level', opts.logLevel, ...(opts.jsonLogs ? ['--json-logs'] : opts.pretty ? ['--pretty'] : [])];
        process.exit(await runRootless(cfg, log, agentArgv));
      }
      const user = opts.user === undefined ? null : resolveUser(opts.user);
      const log = makeLogger({ level: opts.logLevel, pretty: opts.jsonLogs ? false : opts.pretty });
      const argv = process.argv.slice(2).filter((a) => a !== '--inside');
      const supervised = cfg.namespace !== undefined || user !== null;
      const code = supervised && !opts.inside ? await runOuter(cfg, argv, log, user) : await runInner(cfg, log, user);
      process.exit(code);
    } catch (err) {
      fail(err);
    }
  });

program
  .command('rootless-agent', { hidden: true })
  .description('internal: the namespace side of tapbridge run --rootless (its config and devices go over fd 3)')
  .option('--pretty', 'human-readable logs')
  .option('--json-logs', 'JSON logs even on a terminal')
  .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error']).default('info'))
  .action(async (opts: { pretty?: boolean; jsonLogs?: boolean; logLevel: string }) => {
    try {
      const log = makeLogger({ level: opts.logLevel, pretty: opts.jsonLogs ? false : opts.pretty }).child({ role: 'agent' });
      process.exit(await runAgent(log));
    } catch (err) {
      fail(err);
    }
  });

program
  .command('exec <namespace> <cmd...>')
  .description("run a command inside a tenant namespace (ip netns exec; for a rootless instance through its user namespace); its exit code is passed on. Example: tapbridge exec red -- ping -c1 10.100.0.3")
  .option('--instance <name>', "the rootless instance (default: rootless, the default's, else the only one running)")
  .action((namespace: string, cmd: string[], o: { instance?: string }) => {
    try {
      process.exit(runExec(namespace, cmd, o.instance));
    } catch (err) {
      fail(err);
    }
  });

const config = program.command('config').description('check a configuration file, or print the embedded default lab');
config
  .command('check <file>')
  .description('validate a configuration file; prints every problem with the field it concerns')
  .action((file: string) => {
    try {
      const cfg = loadConfig(file);
      process.stdout.write(`${file}: ok (${cfg.bridges.length} bridge(s), ${cfg.bridges.reduce((n, b) => n + b.ports.length, 0)} port(s))\n`);
    } catch (err) {
      fail(err);
    }
  });
config
  .command('default')
  .description('print the embedded default lab as YAML (a starting point for your own config)')
  .option('--rootless', 'the default of run --rootless instead')
  .action((o: { rootless?: boolean }) => {
    process.stdout.write(stringify(o.rootless ? ROOTLESS_LAB : DEFAULT_LAB));
  });

program
  .command('cni')
  .description('the CNI plugin (type "tapbridge") for Podman, containerd, CRI-O, cnitool')
  .command('install')
  .description('install the plugin executable `tapbridge` into the CNI plugin directory')
  .option('--dir <dir>', 'CNI plugin directory', DEFAULT_CNI_DIR)
  .action((o: { dir: string }) => {
    try {
      process.stdout.write(`installed ${installCni(o.dir)}\n`);
    } catch (err) {
      fail(err);
    }
  });

registerCtl(program, fail);

await program.parseAsync(process.argv);
