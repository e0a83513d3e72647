/*
 * Scenarios "switch" and "switch6": two namespaces on one L2 segment, MTU 1500, one module for
 * both address families (`l2Scenario(family)`, the addresses from L2_PLANS):
 *   switch   10.100.0.2/24 -> 10.100.0.3/24
 *   switch6  2001:db8:100::2/64 -> 2001:db8:100::3/64 (no gateway: no router advertisements;
 *            static addresses without DAD on both peers, as tapbridge's lab adds them)
 *
 *   kernel:    ${prefix}-k1 eth0 <veth> vk1 [br0 in ${prefix}-kbr] vk2 <veth> eth0 ${prefix}-k2
 *   tapbridge: ${prefix}-t1 eth0 (TAP) <- tapbridge in ${prefix}-host, bridge br0 -> (TAP) eth0 ${prefix}-t2
 *   C loop:    ${prefix}-cv1 eth0 (TAP) <- cfwd in ${prefix}-cvh (read/write, nothing else) -> (TAP) eth0 ${prefix}-cv2
 *              with --vnet-hdr on; ${prefix}-cp1/-cph/-cp2 the same with --vnet-hdr off (plain frames)
 *              (IPv4 only: a copy loop does not care about the family, and the run stays short)
 * IPv6 namespaces are named with a 6 (${prefix}-k61, -k62, -k6br, -t61, -t62, -host6): e2e.ts
 * builds both families at once and alternates their runs. The tapbridge ports use offload (IFF_VNET_HDR: checksum offload and 64 KiB GSO frames);
 * the C loop with VNET_HDR is what a copy-based forwarder reaches with the same offloads.
 * switch6's TCP and ping targets compare tapbridge with its own switch (IPv4) figures of the
 * same run; its UDP keeps the kernel-relative target.
 */
import type { Family } from '../../src/config/addresses.js';
import { bridgePort, createKernelBridge, createNetns, createVeth, deleteNetns } from './netns.js';
import type { Scenario, ScenarioContext, Target, Topology } from './scenario.js';
import { attachTap, startCfwd } from './cloop.js';
import { setupOvsSwitch } from './ovs.js';
import { startTapbridge } from './tapbridge.js';

export const MTU = 1500;

/** The addresses of one family: the client (1) and the server (2) on one subnet. */
export interface L2Plan {
  family: Family;
  /** Scenario name (`--scenario`). */
  name: string;
  /** Inserted into namespace names, so both families' topologies can coexist. */
  tag: string;
  addr1: string;
  addr2: string;
  prefixLen: number;
}

export const L2_PLANS: Record<Family, L2Plan> = {
  4: { family: 4, name: 'switch', tag: '', addr1: '10.100.0.2', addr2: '10.100.0.3', prefixLen: 24 },
  6: { family: 6, name: 'switch6', tag: '6', addr1: '2001:db8:100::2', addr2: '2001:db8:100::3', prefixLen: 64 },
};

/** IPv6 against tapbridge's own IPv4 figures of the same run (issue 9). */
const FAMILY_TARGETS: Scenario['targets'] = {
  tcp: { kind: 'family', scenario: L2_PLANS[4].name, min: 0.9 } satisfies Target,
  ping: { kind: 'family', scenario: L2_PLANS[4].name, max: 1.1 } satisfies Target,
};

async function setupKernel(ctx: ScenarioContext, plan: L2Plan): Promise<Topology> {
  const k1 = `${ctx.prefix}-k${plan.tag}1`;
  const k2 = `${ctx.prefix}-k${plan.tag}2`;
  const kbr = `${ctx.prefix}-k${plan.tag}br`;
  const made: string[] = [];
  const teardown = async () => {
    for (const ns of made.reverse()) await deleteNetns(ns);
  };
  try {
    for (const ns of [kbr, k1, k2]) made.push(await createNetns(ns));
    await createKernelBridge(kbr, 'br0', { mtu: MTU });
    await createVeth({ ns: kbr, ifname: 'vk1', mtu: MTU }, { ns: k1, ifname: 'eth0', mtu: MTU, addresses: [`${plan.addr1}/${plan.prefixLen}`] });
    await createVeth({ ns: kbr, ifname: 'vk2', mtu: MTU }, { ns: k2, ifname: 'eth0', mtu: MTU, addresses: [`${plan.addr2}/${plan.prefixLen}`] });
    await bridgePort(kbr, 'br0', 'vk1');
    await bridgePort(kbr, 'br0', 'vk2');
  } catch (err) {
    await teardown();
    throw err;
  }
  return {
    endpoints: { clientNs: k1, serverNs: k2, serverAddr: plan.addr2 },
    info: { namespaces: [k1, k2, kbr], bridge: `${kbr}:br0`, family: plan.family, mtu: MTU },
    teardown,
  };
}

async function setupTapbridge(ctx: ScenarioContext, plan: L2Plan, extra: Record<string, unknown> = {}): Promise<Topology> {
  const host = `${ctx.prefix}-host${plan.tag}`;
  const t1 = `${ctx.prefix}-t${plan.tag}1`;
  const t2 = `${ctx.prefix}-t${plan.tag}2`;
  const config = {
    ...extra,
    instance: `${ctx.prefix}${plan.tag === '' ? '' : `-${plan.name}`}`,
    namespace: { name: host, create: true },
    bridges: [
      {
        name: 'br0',
        ports: [
          { type: 'namespace', name: 't1', namespace: t1, addresses: [`${plan.addr1}/${plan.prefixLen}`], mtu: MTU, offload: true },
          { type: 'namespace', name: 't2', namespace: t2, addresses: [`${plan.addr2}/${plan.prefixLen}`], mtu: MTU, offload: true },
        ],
      },
    ],
  };
  const tb = await startTapbridge({
    config,
    namespaces: [t1, t2, host],
    onLog: ctx.verbose ? (l) => ctx.log(`  tapbridge: ${l}`) : undefined,
  });
  return {
    endpoints: { clientNs: t1, serverNs: t2, serverAddr: plan.addr2 },
    tapbridge: tb,
    cpuPid: tb.proc.child.pid,
    info: { namespaces: [t1, t2, host], config, family: plan.family, mtu: MTU },
    teardown: () => tb.stop(),
  };
}

async function setupCloop(ctx: ScenarioContext, plan: L2Plan, o: { vnetHdr: boolean }): Promise<Topology> {
  const tag = `c${plan.tag}${o.vnetHdr ? 'v' : 'p'}`;
  const host = `${ctx.prefix}-${tag}h`;
  const n1 = `${ctx.prefix}-${tag}1`;
  const n2 = `${ctx.prefix}-${tag}2`;
  const made: string[] = [];
  let cfwd: Awaited<ReturnType<typeof startCfwd>> | null = null;
  const teardown = async () => {
    // cfwd first: its TAPs go with its fds, then the (now empty) namespaces.
    const rep = cfwd === null ? undefined : await cfwd.stop();
    for (const ns of made.reverse()) await deleteNetns(ns);
    made.length = 0;
    return rep;
  };
  try {
    for (const ns of [host, n1, n2]) made.push(await createNetns(ns));
    cfwd = await startCfwd({ ns: host, taps: ['cf1', 'cf2'], vnetHdr: o.vnetHdr });
    await attachTap(host, 'cf1', n1, 'eth0', { mtu: MTU, addresses: [`${plan.addr1}/${plan.prefixLen}`] });
    await attachTap(host, 'cf2', n2, 'eth0', { mtu: MTU, addresses: [`${plan.addr2}/${plan.prefixLen}`] });
  } catch (err) {
    await teardown();
    throw err;
  }
  return {
    endpoints: { clientNs: n1, serverNs: n2, serverAddr: plan.addr2 },
    cpuPid: cfwd.pid,
    info: { namespaces: [n1, n2, host], cfwd: { pid: cfwd.pid, args: cfwd.args, ...cfwd.build }, vnetHdr: o.vnetHdr, family: plan.family, mtu: MTU },
    teardown,
  };
}

/** The switch scenario of one address family. */
export function l2Scenario(family: Family): Scenario {
  const plan = L2_PLANS[family];
  return {
    name: plan.name,
    description: `namespace -> namespace through one bridge, IPv${family} (${plan.addr1} -> ${plan.addr2}, MTU ${MTU})`,
    setupKernel: (ctx) => setupKernel(ctx, plan),
    setupTapbridge: (ctx, extra) => setupTapbridge(ctx, plan, extra),
    ...(family === 4
      ? {
          setupCloop: (ctx: ScenarioContext, o: { vnetHdr: boolean }) => setupCloop(ctx, plan, o),
          setupOvs: (ctx: ScenarioContext) => setupOvsSwitch(ctx, { addr1: plan.addr1, addr2: plan.addr2, prefixLen: plan.prefixLen, mtu: MTU }),
        }
      : {}),
    metrics: ['tcp', 'udp', 'ping'],
    ...(family === 6 ? { targets: FAMILY_TARGETS } : {}),
  };
}
