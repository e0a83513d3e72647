/*
 * The CNI side of tapbridge, pure parts: the spec's versions and error codes, the error
 * JSON, the network configuration of a `type: tapbridge` network (the reference bridge
 * plugin's keys where they mean the same) and the environment of one invocation. Nothing
 * here does I/O, so the unit tests cover it all.
 *
 * Network config keys: name, cniVersion, type "tapbridge", socket | instance (the running
 * tapbridge), bridge (default br0), isGateway, isDefaultGateway, ipMasq, hairpinMode, mtu,
 * mac, portIsolation, macspoofchk, ipam {type, ...}; runtimeConfig: portMappings, mac, ips,
 * bandwidth; prevResult (CHECK); cni.dev/valid-attachments (GC).
 */
import { createHash } from 'node:crypto';

export const SUPPORTED_VERSIONS = ['0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];

/** The spec's well-known error codes (SPEC.md, "Error"); 100+ are this plugin's. */
export const CNI_ERR = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  containerUnknown: 3,
  invalidEnv: 4,
  ioFailure: 5,
  decodeFailed: 6,
  invalidConfig: 7,
  tryAgainLater: 11,
  /** STATUS: the plugin cannot serve ADDs now. */
  notAvailable: 50,
  /** CHECK found the attachment not as the result said. */
  checkFailed: 100,
  /** tapbridge refused or failed a request. */
  tapbridgeFailed: 101,
} as const;

export class CniError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly details = '',
  ) {
    super(message);
  }
}

/** The error JSON of the spec: {cniVersion, code, msg, details}. */
export function errorJson(err: unknown, cniVersion: string): { cniVersion: string; code: number; msg: string; details?: string } {
  const e = err instanceof CniError ? err : new CniError(999, 'internal error in the tapbridge CNI plugin', (err as Error)?.message ?? String(err));
  return { cniVersion, code: e.code, msg: e.message, ...(e.details !== '' ? { details: e.details } : {}) };
}

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
  hostIP?: string;
}

export interface Bandwidth {
  ingressRate?: number;
  ingressBurst?: number;
  egressRate?: number;
  egressBurst?: number;
}

export interface NetConf {
  cniVersion: CniVersion;
  name: string;
  socket?: string;
  instance?: string;
  bridge: string;
  isGateway: boolean;
  isDefaultGateway: boolean;
  ipMasq: boolean;
  hairpinMode: boolean;
  mtu?: number;
  mac?: string;
  portIsolation: boolean;
  macspoofchk: boolean;
  ipam?: { type: string } & Record<string, unknown>;
  runtimeConfig: { portMappings: PortMapping[]; mac?: string; ips: string[]; bandwidth?: Bandwidth; aliases: string[] };
  prevResult?: Record<string, unknown>;
  validAttachments?: { containerID: string; ifname: string }[];
  /** The config as it came (handed to the IPAM plugin). */
  raw: Record<string, unknown>;
}

const KNOWN = new Set([
  'cniVersion', 'name', 'type', 'socket', 'instance', 'bridge', 'isGateway', 'isDefaultGateway', 'ipMasq', 'hairpinMode', 'mtu', 'mac',
  'portIsolation', 'macspoofchk', 'ipam', 'dns', 'runtimeConfig', 'capabilities', 'args', 'prevResult', 'cni.dev/valid-attachments',
  'cni.dev/attachments', 'disableCheck', 'disableGC', 'promiscMode', 'forceAddress', 'vlan', 'preserveDefaultVlan', 'enabledad',
]);
const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function bool(o: Record<string, unknown>, k: string, dflt: boolean): boolean {
  const v = o[k];
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new CniError(CNI_ERR.invalidConfig, `${k}: expected true or false, got ${JSON.stringify(v)}`);
  return v;
}

function optString(o: Record<string, unknown>, k: string, where = ''): string | undefined {
  const v = o[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw new CniError(CNI_ERR.invalidConfig, `${where}${k}: expected a non-empty string`);
  return v;
}

/** Only the version, for VERSION and for errors before the config is understood. */
export function versionOf(text: string): string {
  try {
    const v = (JSON.parse(text) as { cniVersion?: unknown }).cniVersion;
    return typeof v === 'string' ? v : '1.1.0';
  } catch {
    return '1.1.0';
  }
}

/** Parse and check a network config (stdin). Errors carry the spec's codes and name the field. */
export function parseNetConf(text: string): NetConf {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (err) {
    throw new CniError(CNI_ERR.decodeFailed, 'the network configuration on stdin is not JSON', (err as Error).message);
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new CniError(CNI_ERR.decodeFailed, 'the network configuration must be a JSON object');
  const c = o as Record<string, unknown>;
  const version = c.cniVersion;
  if (typeof version !== 'string') throw new CniError(CNI_ERR.invalidConfig, 'cniVersion: missing');
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(version))
    throw new CniError(CNI_ERR.incompatibleVersion, `cniVersion ${version} is not supported`, `supported: ${SUPPORTED_VERSIONS.join(', ')}`);
  const name = optString(c, 'name');
  if (name === undefined || !NAME_RE.test(name)) throw new CniError(CNI_ERR.invalidConfig, 'name: expected a network name (letters, digits, _ . -)');
  if (c.type !== undefined && c.type !== 'tapbridge') throw new CniError(CNI_ERR.invalidConfig, `type: expected "tapbridge", got ${JSON.stringify(c.type)}`);
  for (const k of Object.keys(c)) if (!KNOWN.has(k)) throw new CniError(CNI_ERR.unsupportedField, `${k}: not a field of a tapbridge network`, `known fields: ${[...KNOWN].join(', ')}`);
  const socket = optString(c, 'socket');
  const instance = optString(c, 'instance');
  if (socket !== undefined && instance !== undefined) throw new CniError(CNI_ERR.invalidConfig, 'socket, instance: give one of them');
  const mtu = c.mtu;
  if (mtu !== undefined && (typeof mtu !== 'number' || !Number.isInteger(mtu) || mtu < 68 || mtu > 65521)) throw new CniError(CNI_ERR.invalidConfig, 'mtu: expected an integer 68..65521');
  const mac = optString(c, 'mac');
  if (mac !== undefined && !MAC_RE.test(mac)) throw new CniError(CNI_ERR.invalidConfig, 'mac: not a MAC address');
  let ipam: NetConf['ipam'];
  if (c.ipam !== undefined) {
    if (c.ipam === null || typeof c.ipam !== 'object' || Array.isArray(c.ipam)) throw new CniError(CNI_ERR.invalidConfig, 'ipam: expected an object');
    const t = optString(c.ipam as Record<string, unknown>, 'type', 'ipam.');
    if (t === undefined || !/^[A-Za-z0-9_.-]+$/.test(t)) throw new CniError(CNI_ERR.invalidConfig, 'ipam.type: expected the name of an IPAM plugin (host-local, static, ...)');
    ipam = { ...(c.ipam as Record<string, unknown>), type: t };
  }
  const bridge = optString(c, 'bridge') ?? 'br0';
  const isGateway = bool(c, 'isGateway', true);
  return {
    cniVersion: version as CniVersion,
    name,
    socket,
    instance,
    bridge,
    isGateway,
    isDefaultGateway: bool(c, 'isDefaultGateway', isGateway),
    ipMasq: bool(c, 'ipMasq', false),
    hairpinMode: bool(c, 'hairpinMode', false),
    mtu: mtu as number | undefined,
    mac,
    portIsolation: bool(c, 'portIsolation', false),
    macspoofchk: bool(c, 'macspoofchk', false),
    ipam,
    runtimeConfig: parseRuntimeConfig(c.runtimeConfig, name),
    prevResult: c.prevResult !== undefined && typeof c.prevResult === 'object' && c.prevResult !== null ? (c.prevResult as Record<string, unknown>) : undefined,
    validAttachments: parseAttachments(c['cni.dev/valid-attachments']),
    raw: c,
  };
}

function parseRuntimeConfig(v: unknown, network: string): NetConf['runtimeConfig'] {
  const out: NetConf['runtimeConfig'] = { portMappings: [], ips: [], aliases: [] };
  if (v === undefined) return out;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new CniError(CNI_ERR.invalidConfig, 'runtimeConfig: expected an object');
  const r = v as Record<string, unknown>;
  if (r.portMappings !== undefined) {
    if (!Array.isArray(r.portMappings)) throw new CniError(CNI_ERR.invalidConfig, 'runtimeConfig.portMappings: expected a list');
    out.portMappings = r.portMappings.map((m: unknown, i) => {
      const x = (m ?? {}) as Record<string, unknown>;
      const port = (k: string) => {
        const n = x[k];
        if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) throw new CniError(CNI_ERR.invalidConfig, `runtimeConfig.portMappings[${i}].${k}: expected a port 1..65535`);
        return n;
      };
      const protocol = x.protocol === undefined ? 'tcp' : String(x.protocol).toLowerCase();
      if (protocol !== 'tcp' && protocol !== 'udp') throw new CniError(CNI_ERR.invalidConfig, `runtimeConfig.portMappings[${i}].protocol: expected tcp or udp`);
      return { hostPort: port('hostPort'), containerPort: port('containerPort'), protocol, ...(typeof x.hostIP === 'string' && x.hostIP !== '' ? { hostIP: x.hostIP } : {}) };
    });
  }
  if (r.mac !== undefined) {
    if (typeof r.mac !== 'string' || !MAC_RE.test(r.mac)) throw new CniError(CNI_ERR.invalidConfig, 'runtimeConfig.mac: not a MAC address');
    out.mac = r.mac;
  }
  if (r.ips !== undefined) {
    if (!Array.isArray(r.ips) || r.ips.some((a) => typeof a !== 'string')) throw new CniError(CNI_ERR.invalidConfig, 'runtimeConfig.ips: expected a list of addresses');
    out.ips = r.ips as string[];
  }
  if (r.aliases !== undefined) {
    // the `aliases` capability: {"<network>": ["name", ...]} (as Podman passes it), or a plain list
    const list = Array.isArray(r.aliases) ? r.aliases : r.aliases !== null && typeof r.aliases === 'object' ? (r.aliases as Record<string, unknown>)[network] ?? [] : null;
    if (!Array.isArray(list) || list.some((a) => typeof a !== 'string' || !DNS_LABEL_RE.test(a)))
      throw new CniError(CNI_ERR.invalidConfig, `runtimeConfig.aliases: expected {"${network}": [names]} or a list of DNS labels`);
    out.aliases = list as string[];
  }
  if (r.bandwidth !== undefined) {
    const b = r.bandwidth as Record<string, unknown>;
    const bw: Bandwidth = {};
    for (const k of ['ingressRate', 'ingressBurst', 'egressRate', 'egressBurst'] as const) {
      if (b?.[k] === undefined) continue;
      if (typeof b[k] !== 'number' || (b[k] as number) < 0) throw new CniError(CNI_ERR.invalidConfig, `runtimeConfig.bandwidth.${k}: expected a number >= 0 (bits per second, bits)`);
      bw[k] = b[k] as number;
    }
    out.bandwidth = bw;
  }
  return out;
}

function parseAttachments(v: unknown): NetConf['validAttachments'] {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw new CniError(CNI_ERR.invalidConfig, 'cni.dev/valid-attachments: expected a list');
  return v.map((a: unknown, i) => {
    const x = (a ?? {}) as Record<string, unknown>;
    if (typeof x.containerID !== 'string' || typeof x.ifname !== 'string') throw new CniError(CNI_ERR.invalidConfig, `cni.dev/valid-attachments[${i}]: expected {containerID, ifname}`);
    return { containerID: x.containerID, ifname: x.ifname };
  });
}

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'STATUS' | 'GC' | 'VERSION';

export interface CniEnv {
  command: CniCommand;
  containerId?: string;
  netns?: string;
  ifname?: string;
  path: string[];
  args?: string;
}

/** The invocation's environment; ADD/CHECK need a container, a netns and an ifname, DEL a container and an ifname. */
export function parseEnv(env: Record<string, string | undefined>): CniEnv {
  const command = env.CNI_COMMAND;
  if (command === undefined || !['ADD', 'DEL', 'CHECK', 'STATUS', 'GC', 'VERSION'].includes(command))
    throw new CniError(CNI_ERR.invalidEnv, `CNI_COMMAND: expected ADD, DEL, CHECK, STATUS, GC or VERSION, got ${JSON.stringify(command ?? '')}`);
  const e: CniEnv = {
    command: command as CniCommand,
    containerId: env.CNI_CONTAINERID || undefined,
    netns: env.CNI_NETNS || undefined,
    ifname: env.CNI_IFNAME || undefined,
    path: (env.CNI_PATH ?? '').split(':').filter((p) => p !== ''),
    args: env.CNI_ARGS,
  };
  const need = (k: keyof CniEnv, name: string) => {
    if (e[k] === undefined) throw new CniError(CNI_ERR.invalidEnv, `${name}: required for ${command}`);
  };
  if (command === 'ADD' || command === 'CHECK') {
    need('containerId', 'CNI_CONTAINERID');
    need('netns', 'CNI_NETNS');
    need('ifname', 'CNI_IFNAME');
  }
  if (command === 'DEL') {
    need('containerId', 'CNI_CONTAINERID');
    need('ifname', 'CNI_IFNAME');
  }
  if (e.ifname !== undefined && !/^[A-Za-z0-9_.@-]{1,15}$/.test(e.ifname)) throw new CniError(CNI_ERR.invalidEnv, `CNI_IFNAME: not a valid interface name: ${e.ifname}`);
  return e;
}

/** The tapbridge port of an attachment: stable, so DEL and CHECK find it without state. */
/** One DNS label: what a container name or alias must be to answer in tapbridge's DNS. */
export const DNS_LABEL_RE = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** The names a container answers to in the bridge's DNS: its aliases, and K8S_POD_NAME from CNI_ARGS when it is a DNS label. */
export function dnsNamesOf(aliases: string[], cniArgs: string | undefined): string[] {
  const pod = /(?:^|;)K8S_POD_NAME=([^;]*)/.exec(cniArgs ?? '')?.[1];
  const names = [...aliases, ...(pod !== undefined && DNS_LABEL_RE.test(pod) ? [pod] : [])];
  return [...new Set(names)].slice(0, 16);
}

export function portNameOf(containerId: string, ifname: string): string {
  return `cni-${createHash('sha256').update(`${containerId}/${ifname}`).digest('hex').slice(0, 16)}`;
}

/** Labels tapbridge keeps with the port (GC and `ctl ports runtime` read them). */
export function labelsOf(network: string, containerId: string, ifname: string): Record<string, string> {
  return { 'cni.network': network, 'cni.containerID': containerId, 'cni.ifname': ifname };
}
