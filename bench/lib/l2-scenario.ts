/*
 * Scenario "switch": two namespaces on one L2 segment, 10.100.0.2/24 -> 10.100.0.3/24, MTU 1500.
 *   kernel:    ${prefix}-k1 eth0 <veth> vk1 [br0 in ${prefix}-kbr] vk2 <veth> eth0 ${prefix}-k2
 *   tapbridge: ${prefix}-t1 eth0 (TAP) <- tapbridge in ${prefix}-host, bridge br0 -> (TAP) eth0 ${prefix}-t2
 *   C loop:    ${prefix}-cv1 eth0 (TAP) <- cfwd in ${prefix}-cvh (read/write, nothing else) -> (TAP) eth0 ${prefix}-cv2
 *              with --vnet-hdr on; ${prefix}-cp1/-cph/-cp2 the same with --vnet-hdr off (plain frames)
 * The tapbridge ports use offload (IFF_VNET_HDR: checksum offload and 64 KiB GSO frames); the
 * C loop with VNET_HDR is what a copy-based forwarder reaches with the same offloads.
 */
import { bridgePort, createKernelBridge, createNetns, createVeth, deleteNetns } from './netns.js';
import type { Scenario, ScenarioContext, Topology } from './scenario.js';
import { attachTap, startCfwd } from './cloop.js';
import { startTapbridge } from './tapbridge.js';

export const ADDR_1 = '10.100.0.2';
export const ADDR_2 = '10.100.0.3';
export const PREFIX_LEN = 24;
export const MTU = 1500;

async function setupKernel(ctx: ScenarioContext): Promise<Topology> {
  const k1 = `${ctx.prefix}-k1`;
  const k2 = `${ctx.prefix}-k2`;
  const kbr = `${ctx.prefix}-kbr`;
  const made: string[] = [];
  const teardown = async () => {
    for (const ns of made.reverse()) await deleteNetns(ns);
  };
  try {
    for (const ns of [kbr, k1, k2]) made.push(await createNetns(ns));
    await createKernelBridge(kbr, 'br0', { mtu: MTU });
    await createVeth({ ns: kbr, ifname: 'vk1', mtu: MTU }, { ns: k1, ifname: 'eth0', mtu: MTU, addresses: [`${ADDR_1}/${PREFIX_LEN}`] });
    await createVeth({ ns: kbr, ifname: 'vk2', mtu: MTU }, { ns: k2, ifname: 'eth0', mtu: MTU, addresses: [`${ADDR_2}/${PREFIX_LEN}`] });
    await bridgePort(kbr, 'br0', 'vk1');
    await bridgePort(kbr, 'br0', 'vk2');
  } catch (err) {
    await teardown();
    throw err;
  }
  return {
    endpoints: { clientNs: k1, serverNs: k2, serverAddr: ADDR_2 },
    info: { namespaces: [k1, k2, kbr], bridge: `${kbr}:br0`, mtu: MTU },
    teardown,
  };
}

async function setupTapbridge(ctx: ScenarioContext): Promise<Topology> {
  const host = `${ctx.prefix}-host`;
  const t1 = `${ctx.prefix}-t1`;
  const t2 = `${ctx.prefix}-t2`;
  const config = {
    instance: ctx.prefix,
    namespace: { name: host, create: true },
    bridges: [
      {
        name: 'br0',
        ports: [
          { type: 'namespace', name: 't1', namespace: t1, addresses: [`${ADDR_1}/${PREFIX_LEN}`], mtu: MTU, offload: true },
          { type: 'namespace', name: 't2', namespace: t2, addresses: [`${ADDR_2}/${PREFIX_LEN}`], mtu: MTU, offload: true },
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
    endpoints: { clientNs: t1, serverNs: t2, serverAddr: ADDR_2 },
    tapbridge: tb,
    info: { namespaces: [t1, t2, host], config, mtu: MTU },
    teardown: () => tb.stop(),
  };
}

async function setupCloop(ctx: ScenarioContext, o: { vnetHdr: boolean }): Promise<Topology> {
  const tag = o.vnetHdr ? 'cv' : 'cp';
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
    await attachTap(host, 'cf1', n1, 'eth0', { mtu: MTU, addresses: [`${ADDR_1}/${PREFIX_LEN}`] });
    await attachTap(host, 'cf2', n2, 'eth0', { mtu: MTU, addresses: [`${ADDR_2}/${PREFIX_LEN}`] });
  } catch (err) {
    await teardown();
    throw err;
  }
  return {
    endpoints: { clientNs: n1, serverNs: n2, serverAddr: ADDR_2 },
    info: { namespaces: [n1, n2, host], cfwd: { pid: cfwd.pid, args: cfwd.args, ...cfwd.build }, vnetHdr: o.vnetHdr, mtu: MTU },
    teardown,
  };
}

export const l2Scenario: Scenario = {
  name: 'switch',
  description: `namespace -> namespace through one bridge (${ADDR_1} -> ${ADDR_2}, MTU ${MTU})`,
  setupKernel,
  setupTapbridge,
  setupCloop,
  metrics: ['tcp', 'udp', 'ping'],
};
