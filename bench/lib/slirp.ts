/*
 * The slirp4netns peer of the IPv4 NAT scenario: the usual answer for rootless networking
 * (issue 10 compares tapbridge's socket uplink with it), measured on the same rows as the
 * kernel's MASQUERADE/DNAT and tapbridge's NAT.
 *
 *   ${prefix}-sr  tap0 10.100.0.100/24 (slirp4netns --configure --cidr 10.100.0.0/24: its
 *                 gateway is 10.100.0.2) <- slirp4netns, run in ${prefix}-sh, which has
 *                 eth0 203.0.113.2/24 <veth> eth0 203.0.113.1 ${prefix}-sw (the wan)
 *
 * Outbound connections are slirp's own sockets in sh (so the wan sees 203.0.113.2, as with
 * masquerade); the published port is slirp4netns's API `add_hostfwd` 203.0.113.2:5201 ->
 * the guest's :5201, tcp and udp. MTU 1500 as in the other peers (slirp4netns allows 65520,
 * which is faster for TCP but not what the row compares). slirp4netns is apt's
 * `slirp4netns`; without it the peer fails with that message and the others are measured.
 */
import { existsSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { onCleanup } from './cleanup.js';
import { createNetns, createVeth, deleteNetns, ipCmd } from './netns.js';
import { IP, sleep, startBackground } from './proc.js';
import type { Endpoints } from './iperf.js';
import type { ScenarioContext, Topology } from './scenario.js';

const SLIRP = ['/usr/bin/slirp4netns', '/usr/local/bin/slirp4netns', '/bin/slirp4netns'].find((p) => existsSync(p)) ?? null;
/** Where slirp4netns puts the guest in its --cidr (x.y.z.100). */
const GUEST_HOST = 100;

export interface SlirpNatPlan {
  wan: string;
  external: string;
  prefixLen: number;
  mtu: number;
  publishedPort: number;
  httpPort: number;
}

/** One request on slirp4netns's API socket; resolves with its JSON answer, rejects on an error answer. */
export function slirpApi(socket: string, request: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const c = createConnection(socket);
    let answer = '';
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`slirp4netns API ${socket}: no answer in 5 s`));
    }, 5000);
    c.on('connect', () => c.end(JSON.stringify(request)));
    c.setEncoding('utf8').on('data', (d: string) => (answer += d));
    c.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    c.on('close', () => {
      clearTimeout(timer);
      try {
        const j = JSON.parse(answer) as { error?: { desc?: string } };
        if (j.error !== undefined) reject(new Error(`slirp4netns API: ${j.error.desc ?? JSON.stringify(j.error)}`));
        else resolve(j);
      } catch {
        reject(new Error(`slirp4netns API: unparsable answer ${JSON.stringify(answer.slice(0, 200))}`));
      }
    });
  });
}

export async function setupSlirpNat(ctx: ScenarioContext, plan: SlirpNatPlan): Promise<Topology> {
  if (SLIRP === null) throw new Error('slirp4netns not found (apt-get install slirp4netns)');
  const sr = `${ctx.prefix}-sr`;
  const sh = `${ctx.prefix}-sh`;
  const sw = `${ctx.prefix}-sw`;
  const made: string[] = [];
  const api = `/tmp/${ctx.prefix}-slirp.sock`;
  let stopSlirp: (() => Promise<void>) | null = null;
  let pid: number | undefined;
  const teardown = async () => {
    await stopSlirp?.();
    stopSlirp = null;
    for (const ns of made.reverse()) await deleteNetns(ns);
    made.length = 0;
    rmSync(api, { force: true }); // slirp4netns leaves its API socket behind
  };
  try {
    for (const ns of [sh, sr, sw]) made.push(await createNetns(ns));
    await createVeth({ ns: sh, ifname: 'eth0', mtu: plan.mtu, addresses: [`${plan.external}/${plan.prefixLen}`] }, { ns: sw, ifname: 'eth0', mtu: plan.mtu, addresses: [`${plan.wan}/${plan.prefixLen}`] });
    const args = ['netns', 'exec', sh, SLIRP, '--configure', `--mtu=${plan.mtu}`, '--cidr=10.100.0.0/24', '--disable-host-loopback', `--api-socket=${api}`, '--netns-type=path', `/run/netns/${sr}`, 'tap0'];
    const proc = startBackground(`slirp4netns for ${sr}`, IP, args, 30 * 60_000);
    pid = proc.child.pid; // ip netns exec execs slirp4netns in place: the same pid
    stopSlirp = () => proc.stop('SIGTERM', 3000);
    onCleanup(`stop slirp4netns for ${sr}`, () => stopSlirp?.());
    // --configure: tap0 is up with the guest address once slirp4netns has started
    const deadline = Date.now() + 10_000;
    for (;;) {
      const a = await ipCmd(['-4', '-o', 'addr', 'show', 'dev', 'tap0'], sr).catch(() => null);
      if (a !== null && a.stdout.includes(`10.100.0.${GUEST_HOST}/`) && existsSync(api)) break;
      if (Date.now() > deadline) throw new Error(`slirp4netns did not configure tap0 in 10 s: ${proc.stderr.trim().slice(-300)}`);
      await sleep(100);
    }
    for (const proto of ['tcp', 'udp'])
      await slirpApi(api, { execute: 'add_hostfwd', arguments: { proto, host_addr: plan.external, host_port: plan.publishedPort, guest_port: plan.publishedPort } });
  } catch (err) {
    await teardown();
    throw err;
  }
  const endpoints = {
      clientNs: sr,
      serverNs: sw,
      serverAddr: plan.wan,
      inbound: { clientNs: sw, serverNs: sr, serverAddr: plan.external, serverPort: plan.publishedPort },
      http: { serverNs: sw, addr: plan.wan, port: plan.httpPort },
      conntrack: { kernelNs: sh },
      log: ctx.log,
  };
  return {
    endpoints: endpoints as Endpoints,
    cpuPid: pid,
    info: { namespaces: [sr, sh, sw], slirp4netns: SLIRP, mtu: plan.mtu, guest: `10.100.0.${GUEST_HOST}` },
    teardown,
  };
}
