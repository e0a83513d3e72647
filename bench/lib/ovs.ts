/*
 * The Open vSwitch peer of the IPv4 switch scenario: OVS's userspace datapath
 * (`datapath_type=netdev`, the other userspace forwarder people run), with its own
 * ovsdb-server and ovs-vswitchd inside a namespace of the run and a private directory for
 * their database, sockets, pid and log files (OVS_RUNDIR/OVS_DBDIR/OVS_LOGDIR), so nothing
 * touches a system OVS or the root namespace.
 *
 *   ${prefix}-o1 eth0 10.100.0.2 <veth> ov1 ┐
 *                                           ├ br0 (netdev) in ${prefix}-oh: ovsdb-server + ovs-vswitchd
 *   ${prefix}-o2 eth0 10.100.0.3 <veth> ov2 ┘
 *
 * The netdev datapath reads and writes the veths over AF_PACKET and computes no checksums,
 * so TX checksum offload is turned off on the namespaces' ends (`ethtool -K eth0 tx off`),
 * as its documentation asks. apt's `openvswitch-switch`; without it the peer fails with that
 * message and the others are measured.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onCleanup } from './cleanup.js';
import { createNetns, createVeth, deleteNetns, ipCmd } from './netns.js';
import { IP, run, runIn, sleep, startBackground, type Background } from './proc.js';
import type { ScenarioContext, Topology } from './scenario.js';

const find = (name: string) => [`/usr/sbin/${name}`, `/usr/bin/${name}`, `/sbin/${name}`, `/bin/${name}`].find((p) => existsSync(p)) ?? null;
const SCHEMA = ['/usr/share/openvswitch/vswitch.ovsschema', '/usr/local/share/openvswitch/vswitch.ovsschema'].find((p) => existsSync(p)) ?? null;

export interface OvsPlan {
  addr1: string;
  addr2: string;
  prefixLen: number;
  mtu: number;
}

export async function setupOvsSwitch(ctx: ScenarioContext, plan: OvsPlan): Promise<Topology> {
  const tools = { vswitchd: find('ovs-vswitchd'), ovsdb: find('ovsdb-server'), vsctl: find('ovs-vsctl'), dbtool: find('ovsdb-tool'), ethtool: find('ethtool') };
  const missing = Object.entries(tools).filter(([, p]) => p === null).map(([k]) => k);
  if (missing.length > 0 || SCHEMA === null) throw new Error(`Open vSwitch not found (${[...missing, ...(SCHEMA === null ? ['vswitch.ovsschema'] : [])].join(', ')}): apt-get install openvswitch-switch`);
  const oh = `${ctx.prefix}-oh`;
  const o1 = `${ctx.prefix}-o1`;
  const o2 = `${ctx.prefix}-o2`;
  const dir = mkdtempSync(join(tmpdir(), `${ctx.prefix}-ovs-`));
  const env = { ...process.env, OVS_RUNDIR: dir, OVS_DBDIR: dir, OVS_LOGDIR: dir, OVS_PKGDATADIR: dir };
  const db = `unix:${join(dir, 'db.sock')}`;
  const vsctl = (args: string[]) => run(tools.vsctl!, [`--db=${db}`, '--timeout=10', ...args], { timeoutMs: 15_000, env });
  const made: string[] = [];
  const procs: Background[] = [];
  let vswitchdPid: number | undefined;
  const teardown = async () => {
    for (const p of procs.reverse()) await p.stop('SIGTERM', 3000);
    procs.length = 0;
    for (const ns of made.reverse()) await deleteNetns(ns);
    made.length = 0;
    rmSync(dir, { recursive: true, force: true });
  };
  onCleanup(`stop Open vSwitch in ${oh}`, teardown);
  try {
    for (const ns of [oh, o1, o2]) made.push(await createNetns(ns));
    await run(tools.dbtool!, ['create', join(dir, 'conf.db'), SCHEMA], { timeoutMs: 10_000, env });
    const ovsdb = startBackground(`ovsdb-server in ${oh}`, IP, ['netns', 'exec', oh, tools.ovsdb!, join(dir, 'conf.db'), `--remote=p${db}`, `--pidfile=${join(dir, 'ovsdb-server.pid')}`, `--unixctl=${join(dir, 'ovsdb-server.ctl')}`, `--log-file=${join(dir, 'ovsdb-server.log')}`], 30 * 60_000, env);
    procs.push(ovsdb);
    for (let i = 0; !existsSync(join(dir, 'db.sock')); i++) {
      if (i > 100) throw new Error(`ovsdb-server did not start: ${ovsdb.stderr.trim().slice(-300)}`);
      await sleep(50);
    }
    await vsctl(['--no-wait', 'init']);
    const vswitchd = startBackground(`ovs-vswitchd in ${oh}`, IP, ['netns', 'exec', oh, tools.vswitchd!, db, `--pidfile=${join(dir, 'ovs-vswitchd.pid')}`, `--unixctl=${join(dir, 'ovs-vswitchd.ctl')}`, `--log-file=${join(dir, 'ovs-vswitchd.log')}`], 30 * 60_000, env);
    procs.push(vswitchd);
    vswitchdPid = vswitchd.child.pid;
    await vsctl(['add-br', 'br0', '--', 'set', 'bridge', 'br0', 'datapath_type=netdev']);
    for (const [ns, port, addr] of [[o1, 'ov1', plan.addr1], [o2, 'ov2', plan.addr2]] as const) {
      await createVeth({ ns: oh, ifname: port, mtu: plan.mtu }, { ns, ifname: 'eth0', mtu: plan.mtu, addresses: [`${addr}/${plan.prefixLen}`] });
      await runIn(ns, tools.ethtool!, ['-K', 'eth0', 'tx', 'off'], { timeoutMs: 10_000 });
      await vsctl(['add-port', 'br0', port]);
    }
    await ipCmd(['link', 'set', 'dev', 'br0', 'up'], oh).catch(() => {});
    // ports are added asynchronously by ovs-vswitchd: wait until o1 reaches o2
    for (let i = 0; ; i++) {
      const p = await runIn(o1, 'ping', ['-c', '1', '-W', '1', plan.addr2], { timeoutMs: 5000, check: false });
      if (p.code === 0) break;
      if (i > 10) throw new Error(`Open vSwitch bridge does not forward: ${vswitchd.stderr.trim().slice(-300)}`);
      await sleep(300);
    }
  } catch (err) {
    await teardown();
    throw err;
  }
  return {
    endpoints: { clientNs: o1, serverNs: o2, serverAddr: plan.addr2 },
    cpuPid: vswitchdPid,
    info: { namespaces: [o1, o2, oh], datapath: 'netdev', vswitchd: tools.vswitchd, txChecksumOffload: 'off in the namespaces', mtu: plan.mtu },
    teardown,
  };
}
