/*
 * A rootful Podman that touches none of the machine's podman state, for the Podman end to
 * end test: its storage (`--root`, vfs: no overlay mounts), run state (`--runroot`), tmp dir,
 * event log and CNI network configs all live in one temp dir (tbt-<pid>-*), and its
 * containers.conf comes from CONTAINERS_CONF: the CNI network backend, the plugin dirs (a
 * `tapbridge cni install --dir` of its own, then Debian's /usr/lib/cni), cgroupfs, runc.
 *
 * runc, not crun: Debian 12's crun 1.8 refuses a hybrid cgroup layout ("cgroups in hybrid
 * mode not supported, drop all controllers from cgroupv2") even with --cgroups=disabled.
 * The ulimits are set because podman's defaults (nofile 1048576, nproc) exceed the hard
 * limits a CI container may have, and the runtime's setrlimit then fails with EPERM.
 *
 * The image is `podman import` of a rootfs with Debian's busybox-static and its applets,
 * plus /www/index.html for httpd: no registry. `cleanup()` removes every container, the
 * netns podman made (cni-*), any mount left under the temp dir, and the dir.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { IP, PREFIX, TAPBRIDGE, describeRun, run, type RunResult } from './sys.js';
import { toolPath } from './tools.js';

export const IMAGE = 'localhost/tbt-busybox:latest';
const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'ping', 'wget', 'nc', 'nslookup', 'httpd', 'sleep', 'cat', 'ls', 'ip', 'hostname'];
/** podman's netns for CNI containers (rootful), in /run/netns. */
/** libcni's cache of ADD results (podman 4.3 does not move it); an entry that stays means a DEL failed. */
const CNI_CACHE = '/var/lib/cni/results';
const SHARED_DIRS = ['/var/lib/containers', '/var/lib/cni'];
const CGROUP_ROOT = '/sys/fs/cgroup';
const PODMAN_NETNS = /^(cni|netns)-[0-9a-f-]+$/;

/** What /www/index.html of the image says (httpd serves it). */
export const WWW_TEXT = 'hello from a podman container on tapbridge\n';

export class IsolatedPodman {
  readonly dir = mkdtempSync(join(tmpdir(), `${PREFIX}podman-`));
  readonly confDir = join(this.dir, 'net.d');
  /** The cgroup (cgroupfs, every hierarchy) the containers and their conmon go under, removed by cleanup(). */
  readonly cgroupParent = `/${PREFIX}podman`;
  private readonly netnsBefore = new Set(listNetns());
  /** podman's state outside --root it does not let us move (blob info cache, libcni's result cache), when we create it. */
  private readonly sharedDirsCreated = SHARED_DIRS.filter((d) => !existsSync(d));

  /** Writes containers.conf and installs the plugin; `import()` then brings the image. */
  constructor() {
    for (const d of ['net.d', 'cni-bin', 'root', 'runroot', 'tmp']) mkdirSync(join(this.dir, d));
    writeFileSync(
      join(this.dir, 'containers.conf'),
      [
        '[containers]',
        'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]',
        '[network]',
        'network_backend = "cni"',
        `cni_plugin_dirs = ["${join(this.dir, 'cni-bin')}", "/usr/lib/cni"]`,
        `network_config_dir = "${this.confDir}"`,
        '[engine]',
        'cgroup_manager = "cgroupfs"',
        'runtime = "runc"',
        'events_logger = "file"',
        `events_logfile_path = "${join(this.dir, 'events.log')}"`,
        `tmp_dir = "${join(this.dir, 'tmp')}"`,
        '',
      ].join('\n'),
    );
  }

  /** `tapbridge cni install --dir` into this podman's plugin dir. */
  async installPlugin(): Promise<void> {
    const r = await run(process.execPath, [TAPBRIDGE, 'cni', 'install', '--dir', join(this.dir, 'cni-bin')], { timeoutMs: 20_000 });
    if (r.code !== 0) throw new Error(`tapbridge cni install failed:\n${describeRun(r)}`);
  }

  /** Write a network (conflist) podman finds by its name. */
  addNetwork(conflist: { name: string } & Record<string, unknown>): void {
    writeFileSync(join(this.confDir, `${conflist.name}.conflist`), JSON.stringify(conflist, null, 2));
  }

  /** Build the busybox rootfs and `podman import` it as IMAGE. */
  async importImage(): Promise<void> {
    const rootfs = join(this.dir, 'rootfs');
    for (const d of ['bin', 'etc', 'www', 'tmp']) mkdirSync(join(rootfs, d), { recursive: true });
    copyFileSync(BUSYBOX, join(rootfs, 'bin', 'busybox'));
    for (const a of APPLETS) symlinkSync('busybox', join(rootfs, 'bin', a));
    writeFileSync(join(rootfs, 'www', 'index.html'), WWW_TEXT);
    const tar = join(this.dir, 'rootfs.tar');
    const t = await run(toolPath('tar') ?? 'tar', ['-C', rootfs, '-cf', tar, '.'], { timeoutMs: 20_000 });
    if (t.code !== 0) throw new Error(`tar of the rootfs failed:\n${describeRun(t)}`);
    await this.check(['import', '--change', 'CMD ["/bin/sh"]', tar, IMAGE], 30_000);
  }

  /** podman GLOBAL-FLAGS ARGS (never throws). */
  podman(args: string[], timeoutMs = 30_000): Promise<RunResult> {
    return run(
      'env',
      [
        `CONTAINERS_CONF=${join(this.dir, 'containers.conf')}`,
        toolPath('podman') ?? 'podman',
        '--root', join(this.dir, 'root'),
        '--runroot', join(this.dir, 'runroot'),
        '--storage-driver', 'vfs',
        '--cgroup-manager', 'cgroupfs',
        '--events-backend', 'file',
        ...args,
      ],
      { timeoutMs },
    );
  }

  /** `podman run --cgroup-parent <ours> ARGS`. */
  run(args: string[], timeoutMs = 30_000): Promise<RunResult> {
    return this.podman(['run', '--cgroup-parent', this.cgroupParent, ...args], timeoutMs);
  }

  /** `podman run -d ARGS` (our cgroup parent); throws unless it started; the container id. */
  async runDetached(args: string[]): Promise<string> {
    const r = await this.run(['-d', ...args]);
    if (r.code !== 0) throw new Error(`podman run -d failed:\n${describeRun(r)}`);
    return r.stdout.trim();
  }

  /** Like podman() but throws with the whole run unless it exits 0; the stdout. */
  async check(args: string[], timeoutMs = 30_000): Promise<string> {
    const r = await this.podman(args, timeoutMs);
    if (r.code !== 0) throw new Error(`podman failed:\n${describeRun(r)}`);
    return r.stdout;
  }

  /** Remove all containers, the netns podman left, mounts under the dir, and the dir. Returns what went wrong. */
  async cleanup(): Promise<string[]> {
    const problems: string[] = [];
    const rm = await this.podman(['rm', '-af', '-t', '0'], 60_000);
    if (rm.code !== 0) problems.push(describeRun(rm));
    for (const n of listNetns())
      if (PODMAN_NETNS.test(n) && !this.netnsBefore.has(n)) {
        const r = spawnSync(IP, ['netns', 'del', n], { encoding: 'utf8', timeout: 10_000 });
        if (r.status !== 0) problems.push(`ip netns del ${n}: ${r.stderr}`);
      }
    const mounts = readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1])
      .filter((m) => m !== undefined && m.startsWith(this.dir))
      .sort()
      .reverse();
    for (const m of mounts) spawnSync('umount', ['-l', m], { timeout: 10_000 });
    for (const f of listDir(CNI_CACHE))
      if (readFileSync(join(CNI_CACHE, f), 'utf8').includes(this.dir)) {
        problems.push(`a CNI DEL failed: libcni kept its cached result ${f}`);
        rmSync(join(CNI_CACHE, f));
      }
    for (const d of this.sharedDirsCreated) rmSync(d, { recursive: true, force: true });
    rmSync(this.dir, { recursive: true, force: true });
    problems.push(...removeCgroupTree(this.cgroupParent));
    return problems;
  }
}

/** rmdir a cgroup and the ones below it (children first) in every cgroupfs hierarchy; the errors. */
function removeCgroupTree(cgroup: string): string[] {
  const errors: string[] = [];
  const rmTree = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rmTree(join(dir, e.name));
    try {
      rmdirSync(dir);
    } catch (e) {
      errors.push(`rmdir ${dir}: ${(e as Error).message}`);
    }
  };
  for (const h of readdirSync(CGROUP_ROOT)) if (existsSync(join(CGROUP_ROOT, h, cgroup))) rmTree(join(CGROUP_ROOT, h, cgroup));
  return errors;
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

const listNetns = () => listDir('/run/netns');
