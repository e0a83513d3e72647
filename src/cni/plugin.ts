/*
 * The CNI commands of `tapbridge-cni` (type "tapbridge"), against a running tapbridge over
 * its control socket:
 *   ADD      IPAM ADD (the delegated plugin in CNI_PATH), then POST /v1/ports: the TAP in
 *            CNI_NETNS with the addresses and routes, published portMappings, bandwidth as
 *            rate faults (all in that one request); the result for the network's version. A failure releases the IPAM.
 *   DEL      DELETE the port (gone already, or tapbridge down: fine), IPAM DEL.
 *   CHECK    the port exists, its namespace has the interface, MAC, addresses and routes of
 *            prevResult; IPAM CHECK.
 *   STATUS   code 50 while tapbridge or the bridge is not reachable.
 *   GC       removes this network's ports not in cni.dev/valid-attachments (IPAM DEL each).
 *   VERSION  the supported versions.
 * The IPAM plugin is called with the highest version both support (host-local of
 * Debian 12 stops at 1.0.0), and its answer is read in either form.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { apiRequest, ClientError, resolveSocket } from '../control/client.js';
import { RUN_DIR } from '../lab/resources.js';
import { IP, NSENTER } from '../lab/ip.js';
import { CNI_ERR, CniError, dnsNamesOf, labelsOf, portNameOf, SUPPORTED_VERSIONS, type CniEnv, type NetConf } from './config.js';
import { attachmentRoutes, buildResult, portRoutes, readIpamResult, type IpamResult } from './result.js';

const IPAM_TIMEOUT_MS = 20_000;

function socketOf(c: NetConf): string {
  if (c.socket !== undefined) return c.socket;
  if (c.instance !== undefined) return `${RUN_DIR}/${c.instance}.sock`;
  try {
    return resolveSocket({});
  } catch (err) {
    throw new CniError(CNI_ERR.tryAgainLater, 'no tapbridge instance to talk to: set "socket" or "instance" in the network config', (err as Error).message);
  }
}

/** A control-API call; an unreachable tapbridge is CNI's "try again later", a refusal names the HTTP status. */
async function api<T>(c: NetConf, method: string, path: string, body?: unknown): Promise<T> {
  const sock = socketOf(c);
  try {
    return (await apiRequest(sock, method, path, body)) as T;
  } catch (err) {
    if (err instanceof ClientError && err.status === 0) throw new CniError(CNI_ERR.tryAgainLater, `tapbridge is not reachable at ${sock}`, err.message);
    if (err instanceof ClientError) throw new CniError(CNI_ERR.tapbridgeFailed, `tapbridge refused ${method} ${path} (HTTP ${err.status})`, err.message);
    throw new CniError(CNI_ERR.ioFailure, `talking to tapbridge at ${sock} failed`, (err as Error).message);
  }
}

/* ------------------------------------------------------------------ IPAM */

function findPlugin(env: CniEnv, type: string): string {
  for (const d of env.path) {
    const p = join(d, type);
    if (existsSync(p)) return p;
  }
  throw new CniError(CNI_ERR.invalidConfig, `ipam.type: no plugin '${type}' in CNI_PATH`, `CNI_PATH=${env.path.join(':')}`);
}

function exec(plugin: string, command: string, stdin: string, over: Record<string, string> = {}): { code: number; out: string; err: string } {
  const r = spawnSync(plugin, [], {
    input: stdin,
    encoding: 'utf8',
    timeout: IPAM_TIMEOUT_MS,
    env: { ...process.env, CNI_COMMAND: command, ...over },
  });
  // A plugin may exit without reading all of its stdin (the reference plugins answer VERSION
  // so): writing it then fails with EPIPE, but the exit status and output are the answer.
  const unread = (r.error as NodeJS.ErrnoException | undefined)?.code === 'EPIPE' && r.status !== null;
  if (r.error !== undefined && !unread) throw new CniError(CNI_ERR.ioFailure, `cannot run the IPAM plugin ${plugin}`, r.error.message);
  return { code: r.status ?? 1, out: r.stdout ?? '', err: r.stderr ?? '' };
}

/** The version to speak with the IPAM plugin: ours if it has it, else the highest it has that we have. */
function ipamVersion(plugin: string, want: string): string {
  const r = exec(plugin, 'VERSION', JSON.stringify({ cniVersion: want }));
  let supported: string[] = [];
  try {
    supported = (JSON.parse(r.out) as { supportedVersions?: string[] }).supportedVersions ?? [];
  } catch {
    /* an old plugin: try ours */
  }
  if (supported.length === 0 || supported.includes(want)) return want;
  const common = [...SUPPORTED_VERSIONS].reverse().find((v) => supported.includes(v));
  if (common === undefined) throw new CniError(CNI_ERR.incompatibleVersion, `the IPAM plugin ${plugin} supports none of ${SUPPORTED_VERSIONS.join(', ')}`, `it supports ${supported.join(', ')}`);
  return common;
}

/** Run an IPAM command; returns its parsed stdout (ADD) or null. Its errors keep their code. */
function ipam(c: NetConf, env: CniEnv, command: 'ADD' | 'DEL' | 'CHECK', over: Record<string, string> = {}): unknown {
  if (c.ipam === undefined) return null;
  const plugin = findPlugin(env, c.ipam.type);
  const version = ipamVersion(plugin, c.cniVersion);
  const conf: Record<string, unknown> = { ...c.raw, cniVersion: version };
  delete conf.prevResult; // the IPAM's own view is the config; our prevResult has our interfaces
  const r = exec(plugin, command, JSON.stringify(conf), over);
  let parsed: unknown = null;
  try {
    parsed = r.out.trim() === '' ? null : JSON.parse(r.out);
  } catch {
    if (r.code === 0) throw new CniError(CNI_ERR.decodeFailed, `the IPAM plugin ${c.ipam.type} printed no JSON`, r.out.slice(0, 500));
  }
  if (r.code !== 0) {
    const e = (parsed ?? {}) as { code?: number; msg?: string; details?: string };
    throw new CniError(typeof e.code === 'number' ? e.code : CNI_ERR.ioFailure, `IPAM ${c.ipam.type} ${command}: ${e.msg ?? 'failed'}`, e.details ?? r.err.trim().slice(0, 500));
  }
  return parsed;
}

/** The IPAM type served by tapbridge itself: a lease of the bridge's DHCP server for the container's MAC. */
export const TAPBRIDGE_IPAM = 'tapbridge-dhcp';

/** The container's MAC: the configured one, else one derived from the container id and ifname (stable across ADD, CHECK and DEL, locally administered). */
export function containerMac(c: NetConf, env: CniEnv): string | undefined {
  const mac = c.runtimeConfig.mac ?? c.mac;
  if (mac !== undefined || c.ipam?.type !== TAPBRIDGE_IPAM) return mac;
  const h = createHash('sha256').update(`${env.containerId}/${env.ifname}`).digest();
  return ['02', ...[...h.subarray(0, 5)].map((x) => x.toString(16).padStart(2, '0'))].join(':');
}

/** IPAM: delegated (ipam()), or tapbridge's DHCP leases for `ipam: {"type": "tapbridge-dhcp"}`. */
async function ipamFor(c: NetConf, env: CniEnv, command: 'ADD' | 'DEL' | 'CHECK', over: Record<string, string> = {}): Promise<unknown> {
  if (c.ipam?.type !== TAPBRIDGE_IPAM) return ipam(c, env, command, over);
  const mac = containerMac({ ...c, runtimeConfig: { ...c.runtimeConfig } }, { ...env, containerId: over.CNI_CONTAINERID ?? env.containerId, ifname: over.CNI_IFNAME ?? env.ifname })!;
  if (command === 'DEL') {
    await api(c, 'DELETE', `/v1/leases/${c.bridge}/${mac}`).catch(() => {}); // idempotent: gone, or tapbridge down
    return null;
  }
  if (command === 'CHECK') {
    const leases = await api<{ bridge: string; mac: string; state: string }[]>(c, 'GET', '/v1/leases');
    if (!leases.some((l) => l.bridge === c.bridge && l.mac === mac && l.state === 'bound')) throw new CniError(CNI_ERR.checkFailed, `no DHCP lease on ${c.bridge} for ${mac}`);
    return null;
  }
  const l = await api<{ address: string; prefixLen: number; gateway: string | null; dns: string[]; domain: string | null }>(c, 'POST', '/v1/leases', { bridge: c.bridge, mac, hostName: dnsNamesOf(c.runtimeConfig.aliases, env.args)[0] });
  return {
    cniVersion: '1.0.0',
    ips: [{ address: `${l.address}/${l.prefixLen}`, ...(l.gateway !== null ? { gateway: l.gateway } : {}) }],
    routes: l.gateway !== null ? [{ dst: '0.0.0.0/0' }] : [],
    dns: { nameservers: l.dns, ...(l.domain !== null ? { domain: l.domain, search: [l.domain] } : {}) },
  };
}

/* ------------------------------------------------------------------ commands */

interface RuntimeRow {
  name: string;
  path: string;
  ifname: string;
  mac: string;
  addresses: string[];
  labels: Record<string, string>;
  netnsPresent: boolean;
}

export async function cmdAdd(c: NetConf, env: CniEnv): Promise<Record<string, unknown>> {
  const bridges = await api<{ name: string }[]>(c, 'GET', '/v1/bridges');
  if (!bridges.some((b) => b.name === c.bridge)) throw new CniError(CNI_ERR.invalidConfig, `bridge: tapbridge has no bridge '${c.bridge}'`, `bridges: ${bridges.map((b) => b.name).join(', ')}`);
  if (!existsSync(env.netns!)) throw new CniError(CNI_ERR.containerUnknown, `CNI_NETNS ${env.netns} does not exist`);
  const name = portNameOf(env.containerId!, env.ifname!);
  const result: IpamResult = readIpamResult(await ipamFor(c, env, 'ADD'));
  try {
    const routes = attachmentRoutes(result, c.isDefaultGateway);
    const r = portRoutes(result, routes);
    const body: Record<string, unknown> = {
      name,
      bridge: c.bridge,
      netns: env.netns,
      ifname: env.ifname,
      addresses: result.ips.map((i) => i.address),
      routes: r.routes,
      labels: labelsOf(c.name, env.containerId!, env.ifname!),
      dnsNames: dnsNamesOf(c.runtimeConfig.aliases, env.args),
      publish: c.runtimeConfig.portMappings.map((m) => ({ proto: m.protocol, port: m.hostPort, toPort: m.containerPort })),
    };
    if (r.defaultRoute.length > 0) body.defaultRoute = r.defaultRoute.length === 1 ? r.defaultRoute[0] : r.defaultRoute;
    const mac = containerMac(c, env);
    if (mac !== undefined) body.mac = mac;
    if (c.mtu !== undefined) body.mtu = c.mtu;
    if (c.portIsolation) body.isolated = true;
    if (c.macspoofchk) body.security = true;
    const bw = c.runtimeConfig.bandwidth;
    // ingress = towards the container: the port's egress; egress = from it: the port's ingress
    const faults: Record<string, unknown>[] = [];
    if (bw?.ingressRate) faults.push({ direction: 'egress', rate: { bitsPerSecond: bw.ingressRate, ...(bw.ingressBurst ? { burstBytes: Math.max(1, Math.ceil(bw.ingressBurst / 8)) } : {}) } });
    if (bw?.egressRate) faults.push({ direction: 'ingress', rate: { bitsPerSecond: bw.egressRate, ...(bw.egressBurst ? { burstBytes: Math.max(1, Math.ceil(bw.egressBurst / 8)) } : {}) } });
    if (faults.length > 0) body.faults = faults;
    const port = await api<{ mac: string }>(c, 'POST', '/v1/ports', body);
    return buildResult(c.cniVersion, { name: env.ifname!, mac: port.mac, sandbox: env.netns!, mtu: c.mtu }, result, routes);
  } catch (err) {
    try {
      await ipamFor(c, env, 'DEL');
    } catch {
      /* the ADD's error is the one to report */
    }
    throw err;
  }
}

export async function cmdDel(c: NetConf, env: CniEnv): Promise<void> {
  const name = portNameOf(env.containerId!, env.ifname!);
  try {
    await api(c, 'DELETE', `/v1/ports/${name}`);
  } catch (err) {
    // gone already (404), or tapbridge is down (its ports went with it): DEL is idempotent
    if (!(err instanceof CniError) || (err.code !== CNI_ERR.tryAgainLater && !/HTTP 404/.test(err.message))) throw err;
  }
  await ipamFor(c, env, 'DEL');
}

function inNetns(netns: string, args: string[]): unknown {
  const r = spawnSync(NSENTER, [`--net=${netns}`, '--', IP, '-j', ...args], { encoding: 'utf8', timeout: 5000 });
  if (r.status !== 0) throw new CniError(CNI_ERR.checkFailed, `ip ${args.join(' ')} in ${netns} failed`, (r.stderr ?? '').trim());
  return JSON.parse(r.stdout || '[]');
}

export async function cmdCheck(c: NetConf, env: CniEnv): Promise<void> {
  const prev = c.prevResult;
  if (prev === undefined) throw new CniError(CNI_ERR.invalidConfig, 'prevResult: required for CHECK');
  const name = portNameOf(env.containerId!, env.ifname!);
  const rows = await api<RuntimeRow[]>(c, 'GET', '/v1/ports/runtime');
  const row = rows.find((r) => r.name === name);
  if (row === undefined) throw new CniError(CNI_ERR.checkFailed, `tapbridge has no port for container ${env.containerId} ${env.ifname} (${name})`);
  if (!existsSync(env.netns!)) throw new CniError(CNI_ERR.containerUnknown, `CNI_NETNS ${env.netns} does not exist`);
  const links = inNetns(env.netns!, ['addr', 'show', 'dev', env.ifname!]) as { address: string; operstate?: string; addr_info: { local: string; prefixlen: number }[] }[];
  if (links.length === 0) throw new CniError(CNI_ERR.checkFailed, `no interface ${env.ifname} in ${env.netns}`);
  const link = links[0];
  const ifaces = (Array.isArray(prev.interfaces) ? prev.interfaces : []) as { name: string; mac?: string; sandbox?: string }[];
  const mine = ifaces.findIndex((f) => f.name === env.ifname && f.sandbox !== undefined);
  if (mine >= 0 && ifaces[mine].mac !== undefined && ifaces[mine].mac!.toLowerCase() !== link.address.toLowerCase())
    throw new CniError(CNI_ERR.checkFailed, `${env.ifname}: MAC ${link.address}, the result says ${ifaces[mine].mac}`);
  if (link.address.toLowerCase() !== row.mac.toLowerCase()) throw new CniError(CNI_ERR.checkFailed, `${env.ifname}: MAC ${link.address}, tapbridge's port has ${row.mac}`);
  const have = new Set(link.addr_info.map((a) => `${a.local}/${a.prefixlen}`));
  const ips = readIpamResult(prev).ips;
  for (const ip of ips) if (!have.has(ip.address)) throw new CniError(CNI_ERR.checkFailed, `${env.ifname}: address ${ip.address} is missing`, `present: ${[...have].join(', ')}`);
  const prevRoutes = readIpamResult(prev).routes;
  for (const fam of ['-4', '-6']) {
    const want = prevRoutes.filter((r) => r.dst.includes(':') === (fam === '-6'));
    if (want.length === 0) continue;
    const table = inNetns(env.netns!, [fam, 'route', 'show']) as { dst: string; gateway?: string; dev: string }[];
    for (const r of want) {
      const dst = r.dst === '0.0.0.0/0' || r.dst === '::/0' ? 'default' : r.dst;
      const ok = table.some((t) => (t.dst === dst || t.dst === r.dst.replace(/\/(32|128)$/, '')) && (r.gw === undefined || t.gateway === r.gw));
      if (!ok) throw new CniError(CNI_ERR.checkFailed, `route ${r.dst}${r.gw ? ` via ${r.gw}` : ''} is missing in ${env.netns}`);
    }
  }
  await ipamFor(c, env, 'CHECK');
}

export async function cmdStatus(c: NetConf): Promise<void> {
  let bridges: { name: string }[];
  try {
    bridges = await api<{ name: string }[]>(c, 'GET', '/v1/bridges');
  } catch (err) {
    throw new CniError(CNI_ERR.notAvailable, 'tapbridge is not reachable: no ADD can succeed now', (err as Error).message + (err instanceof CniError && err.details ? `: ${err.details}` : ''));
  }
  if (!bridges.some((b) => b.name === c.bridge)) throw new CniError(CNI_ERR.notAvailable, `tapbridge has no bridge '${c.bridge}'`);
}

export async function cmdGc(c: NetConf, env: CniEnv): Promise<{ removed: string[] }> {
  const valid = new Set((c.validAttachments ?? []).map((a) => `${a.containerID}/${a.ifname}`));
  const rows = await api<RuntimeRow[]>(c, 'GET', '/v1/ports/runtime');
  const removed: string[] = [];
  for (const r of rows) {
    const id = r.labels['cni.containerID'];
    const ifname = r.labels['cni.ifname'];
    if (r.labels['cni.network'] !== c.name || id === undefined || ifname === undefined || valid.has(`${id}/${ifname}`)) continue;
    await api(c, 'DELETE', `/v1/ports/${r.name}`).catch(() => {});
    try {
      await ipamFor(c, env, 'DEL', { CNI_CONTAINERID: id, CNI_IFNAME: ifname, CNI_NETNS: '' });
    } catch {
      /* best effort: the address may be released already */
    }
    removed.push(r.name);
  }
  return { removed };
}
