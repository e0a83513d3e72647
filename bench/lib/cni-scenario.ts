/*
 * Scenario "cni": how long a container waits for its network. Each attach is one CNI ADD
 * run exactly as a runtime runs it (CNI_COMMAND, CNI_NETNS, CNI_IFNAME, CNI_CONTAINERID,
 * CNI_PATH, the config on stdin), timed from the plugin's start to the first ping reply from
 * the gateway inside the new container's namespace, then DEL and the namespace removed.
 *
 *   kernel:    the reference `bridge` plugin (containernetworking-plugins) with host-local
 *              IPAM, run inside ${prefix}-cb so its bridge cni0 lives there, never in the
 *              root namespace; containers ${prefix}-cbN
 *   tapbridge: tapbridge-cni (bin/tapbridge-cni.js) with host-local IPAM against a tapbridge
 *              in ${prefix}-ct-host (bridge br0, gateway 10.100.0.1); containers ${prefix}-ctN
 *
 * Metric `attach`: the median over ATTACHES attaches (ms, lower is better), p90 in the detail.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onCleanup } from './cleanup.js';
import { createNetns, deleteNetns } from './netns.js';
import { IP, run, runIn, sleep } from './proc.js';
import { METRICS, type Measurement, type Metric, type MetricId, type Scenario, type ScenarioContext, type Topology } from './scenario.js';
import { median } from './stats.js';
import { REPO_ROOT, startTapbridge } from './tapbridge.js';

const CNI_PATH = '/usr/lib/cni';
const ATTACHES = 12;
const GATEWAY = '10.100.0.1';
const PLUGIN = join(REPO_ROOT, 'bin', 'tapbridge-cni.js');

/** What the attach metric needs from a topology. */
interface AttachEndpoints {
  clientNs: string;
  serverNs: string;
  serverAddr: string;
  cni: { conf: Record<string, unknown>; plugin: string[]; nsPrefix: string; runIn?: string };
}

function hostLocal(dir: string): Record<string, unknown> {
  return { type: 'host-local', dataDir: dir, ranges: [[{ subnet: '10.100.0.0/24', rangeStart: '10.100.0.100', rangeEnd: '10.100.0.199', gateway: GATEWAY }]], routes: [{ dst: '0.0.0.0/0' }] };
}

async function cniRun(ep: AttachEndpoints['cni'], command: string, id: string, netns: string): Promise<void> {
  const env = [`CNI_COMMAND=${command}`, `CNI_CONTAINERID=${id}`, `CNI_NETNS=/run/netns/${netns}`, 'CNI_IFNAME=eth0', `CNI_PATH=${CNI_PATH}`];
  const cmd = ep.runIn !== undefined ? [IP, 'netns', 'exec', ep.runIn, 'env', ...env, ...ep.plugin] : ['env', ...env, ...ep.plugin];
  await run(cmd[0], cmd.slice(1), { timeoutMs: 30_000, input: JSON.stringify(ep.conf) });
}

const attach: Metric = {
  id: 'attach' as MetricId,
  label: `container attach, CNI ADD to the first ping reply (median of ${ATTACHES})`,
  unit: 'ms',
  better: 'lower',
  decimals: 1,
  async measure(ep0): Promise<Measurement> {
    const ep = (ep0 as unknown as Partial<AttachEndpoints>).cni;
    if (ep === undefined) throw new Error('metric attach needs a CNI topology (scenario cni)');
    const times: number[] = [];
    for (let i = 0; i < ATTACHES; i++) {
      const ns = await createNetns(`${ep.nsPrefix}${i}`);
      const id = `bench-${i}`;
      try {
        const t0 = performance.now();
        await cniRun(ep, 'ADD', id, ns);
        for (;;) {
          const p = await runIn(ns, 'ping', ['-c', '1', '-W', '1', GATEWAY], { timeoutMs: 5000, check: false });
          if (p.code === 0) break;
          if (performance.now() - t0 > 10_000) throw new Error(`attach ${i}: no ping reply from ${GATEWAY} within 10 s`);
        }
        times.push(performance.now() - t0);
      } finally {
        await cniRun(ep, 'DEL', id, ns).catch(() => {});
        await deleteNetns(ns);
      }
    }
    const sorted = [...times].sort((a, b) => a - b);
    return { value: median(times), detail: { attaches: times.length, timesMs: times.map((t) => Math.round(t * 10) / 10), p90Ms: sorted[Math.floor(sorted.length * 0.9)] } };
  },
};
(METRICS as Record<string, Metric>).attach ??= attach;

async function setupKernel(ctx: ScenarioContext): Promise<Topology> {
  if (!existsSync(join(CNI_PATH, 'bridge')) || !existsSync(join(CNI_PATH, 'host-local'))) throw new Error(`the reference CNI plugins are missing in ${CNI_PATH} (apt-get install containernetworking-plugins)`);
  const cb = await createNetns(`${ctx.prefix}-cb`);
  const dir = mkdtempSync(join(tmpdir(), `${ctx.prefix}-cnik-`));
  onCleanup(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  const conf = { cniVersion: '1.0.0', name: 'tbbench', type: 'bridge', bridge: 'cni0', isGateway: true, ipam: hostLocal(dir) };
  const endpoints: AttachEndpoints = { clientNs: cb, serverNs: cb, serverAddr: GATEWAY, cni: { conf, plugin: [join(CNI_PATH, 'bridge')], nsPrefix: `${ctx.prefix}-cb`, runIn: cb } };
  return {
    endpoints,
    info: { namespaces: [cb], plugin: 'bridge (containernetworking-plugins)', ipam: 'host-local' },
    teardown: async () => {
      await deleteNetns(cb);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function setupTapbridge(ctx: ScenarioContext, extra: Record<string, unknown> = {}): Promise<Topology> {
  if (!existsSync(join(CNI_PATH, 'host-local'))) throw new Error(`host-local is missing in ${CNI_PATH} (apt-get install containernetworking-plugins)`);
  const host = `${ctx.prefix}-ct-host`;
  const anchor = `${ctx.prefix}-ct-anchor`;
  const config = {
    ...extra,
    instance: `${ctx.prefix}-cni`,
    namespace: { name: host, create: true },
    runtimePorts: 4,
    // a bridge needs one port from the config: a namespace beside the attached ones
    bridges: [{ name: 'br0', gateway: { address: `${GATEWAY}/24` }, ports: [{ type: 'namespace', name: 'anchor', namespace: anchor, addresses: ['10.100.0.2/24'] }] }],
  };
  const tb = await startTapbridge({ config, namespaces: [host, anchor], onLog: ctx.verbose ? (l) => ctx.log(`  tapbridge: ${l}`) : undefined });
  const dir = mkdtempSync(join(tmpdir(), `${ctx.prefix}-cnit-`));
  onCleanup(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  const conf = { cniVersion: '1.0.0', name: 'tbbench', type: 'tapbridge', socket: tb.socket, bridge: 'br0', isGateway: true, ipam: hostLocal(dir) };
  const endpoints: AttachEndpoints = { clientNs: host, serverNs: host, serverAddr: GATEWAY, cni: { conf, plugin: [process.execPath, PLUGIN], nsPrefix: `${ctx.prefix}-ct` } };
  await sleep(200);
  return {
    endpoints,
    tapbridge: tb,
    cpuPid: tb.proc.child.pid,
    info: { namespaces: [host, anchor], config, plugin: 'tapbridge-cni', ipam: 'host-local' },
    teardown: async () => {
      const r = await tb.stop();
      rmSync(dir, { recursive: true, force: true });
      return r;
    },
  };
}

export function cniScenario(): Scenario {
  return {
    name: 'cni',
    description: `container attach time: CNI ADD (host-local IPAM) to the first ping reply from ${GATEWAY}; kernel: the reference bridge plugin`,
    setupKernel,
    setupTapbridge,
    metrics: ['attach' as MetricId],
  };
}
