/*
 * Loading and validating a configuration as a whole. Nothing is created from a config
 * that has not passed every check here; errors name the field:
 *   bridges[0].ports[1].mac: not a MAC address (expected aa:bb:cc:dd:ee:ff)
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { Address4 } from 'ip-address';
import { configSchema, type Config } from './schema.js';
import { checkExperiment } from './experiment.js';

/** Device ports one instance may have (RX rings: 64 slots of 64 KiB each, in a 1 GiB arena with the pool). */
export const MAX_DEVICE_PORTS = 200;

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid configuration (${source}):\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(top level)' : out;
}

interface Subnet {
  net: number;
  prefix: number;
}

/** IPv4 text to uint32; NaN when invalid (cross checks then skip the comparison). */
export function ipToU32(s: string): number {
  if (typeof s !== 'string' || !Address4.isValid(s)) return NaN;
  return Number(new Address4(s).bigInt()) >>> 0;
}

export function parseCidr(s: string): { address: number; prefix: number; network: number } {
  const [ip, len] = String(s).split('/');
  const prefix = Number(len);
  const address = ipToU32(ip);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { address, prefix, network: (address & mask) >>> 0 };
}

function inSubnet(ip: number, s: Subnet): boolean {
  const mask = s.prefix === 0 ? 0 : (0xffffffff << (32 - s.prefix)) >>> 0;
  return ((ip & mask) >>> 0) === s.net;
}

function crossCheck(cfg: Config, issue: (path: (string | number)[], message: string) => void): void {
  const bridgeNames = new Map<string, number>();
  const portNames = new Map<string, string>();
  const nsIfnames = new Map<string, string>();
  const localIfnames = new Map<string, string>();
  const gatewaySubnets: Subnet[] = [];
  const hostNs = cfg.namespace?.name;

  cfg.bridges.forEach((b, bi) => {
    if (bridgeNames.has(b.name)) issue(['bridges', bi, 'name'], `duplicate bridge name '${b.name}'`);
    bridgeNames.set(b.name, bi);
    const local = new Set<string>();
    b.ports.forEach((p, pi) => {
      const at = ['bridges', bi, 'ports', pi];
      const prev = portNames.get(p.name);
      if (prev !== undefined) issue([...at, 'name'], `duplicate port name '${p.name}' (also ${prev})`);
      portNames.set(p.name, formatPath(at));
      local.add(p.name);
      if (p.type === 'namespace') {
        if (p.namespace === hostNs)
          issue([...at, 'namespace'], `'${p.namespace}' is tapbridge's own namespace; use a port of type tap`);
        const key = `${p.namespace}/${p.ifname}`;
        const other = nsIfnames.get(key);
        if (other !== undefined) issue([...at, 'ifname'], `'${p.ifname}' in namespace '${p.namespace}' is also used by ${other}`);
        nsIfnames.set(key, formatPath(at));
        if (p.defaultRoute !== undefined && !p.addresses.some((a) => inSubnet(ipToU32(p.defaultRoute!), cidrSubnet(a))))
          issue([...at, 'defaultRoute'], `${p.defaultRoute} is not inside any of the port's addresses`);
      } else {
        const name = p.type === 'tap' ? p.ifname : p.interface;
        const other = localIfnames.get(name);
        if (other !== undefined) issue([...at, p.type === 'tap' ? 'ifname' : 'interface'], `interface '${name}' is also used by ${other}`);
        localIfnames.set(name, formatPath(at));
      }
    });
    b.static.forEach((s, si) => {
      if (!local.has(s.port)) issue(['bridges', bi, 'static', si, 'port'], `no port named '${s.port}' in bridge '${b.name}'`);
    });
    if (b.gateway !== undefined) {
      const sub = cidrSubnet(b.gateway.address);
      if (sub.prefix > 30) issue(['bridges', bi, 'gateway', 'address'], 'prefix too long for a gateway subnet (max /30)');
      for (const other of gatewaySubnets)
        if (inSubnet(sub.net, other) || inSubnet(other.net, sub))
          issue(['bridges', bi, 'gateway', 'address'], 'overlaps the subnet of another bridge');
      gatewaySubnets.push(sub);
    }
  });

  const devicePorts = cfg.bridges.reduce((n, b) => n + b.ports.length, 0);
  if (devicePorts > MAX_DEVICE_PORTS)
    issue(['bridges'], `${devicePorts} ports: at most ${MAX_DEVICE_PORTS} per instance (each has a 4 MiB receive ring in a 1 GiB frame arena); split them over instances`);
  for (const [name, bi] of bridgeNames) {
    if (cfg.uplink !== undefined && name === 'uplink') issue(['bridges', bi, 'name'], "'uplink' names the uplink's router interface; call the bridge something else");
    if (name === 'local') issue(['bridges', bi, 'name'], "'local' names the router's own input; call the bridge something else");
  }

  if (cfg.uplink !== undefined) {
    const u = cfg.uplink;
    const other = localIfnames.get(u.interface);
    if (other !== undefined) issue(['uplink', 'interface'], `interface '${u.interface}' is also used by ${other}`);
    if (!inSubnet(ipToU32(u.gateway), cidrSubnet(u.address)))
      issue(['uplink', 'gateway'], `${u.gateway} is not inside ${u.address}`);
    for (const s of gatewaySubnets)
      if (inSubnet(ipToU32(u.address.split('/')[0]), s)) issue(['uplink', 'address'], 'overlaps a bridge subnet');
  }
  if (cfg.nat !== undefined) {
    const n = cfg.nat;
    if (cfg.uplink === undefined) issue(['nat'], 'NAT needs an uplink');
    if (n.portRange[0] > n.portRange[1]) issue(['nat', 'portRange'], 'first port is above the last');
    const seen = new Set<string>();
    n.publish.forEach((p, i) => {
      const end = p.portEnd ?? p.port;
      if (end < p.port) issue(['nat', 'publish', i, 'portEnd'], 'range ends before it starts');
      if ((p.toPort ?? p.port) + (end - p.port) > 65535) issue(['nat', 'publish', i, 'toPort'], 'range runs past 65535');
      if (!gatewaySubnets.some((s) => inSubnet(ipToU32(p.to), s)))
        issue(['nat', 'publish', i, 'to'], `${p.to} is not inside any bridge's gateway subnet`);
      for (let port = p.port; port <= end; port++) {
        const key = `${p.proto}/${port}`;
        if (seen.has(key)) {
          issue(['nat', 'publish', i, 'port'], `${key} is published twice`);
          break;
        }
        seen.add(key);
      }
    });
  }
  cfg.routes.forEach((r, i) => {
    const via = ipToU32(r.via);
    const reachable =
      gatewaySubnets.some((s) => inSubnet(via, s)) ||
      (cfg.uplink !== undefined && inSubnet(via, cidrSubnet(cfg.uplink.address)));
    if (!reachable) issue(['routes', i, 'via'], `next hop ${r.via} is not on a directly connected subnet`);
  });
  cfg.lab?.veths.forEach((v, i) => {
    const other = localIfnames.get(v.peer);
    if (other !== undefined) issue(['lab', 'veths', i, 'peer'], `interface '${v.peer}' is also used by ${other}`);
    if (v.namespace === hostNs) issue(['lab', 'veths', i, 'namespace'], "the veth's far end cannot be tapbridge's own namespace");
  });
  checkExperiment(cfg, issue);
}

function cidrSubnet(s: string): Subnet {
  const c = parseCidr(s);
  return { net: c.network, prefix: c.prefix };
}

/**
 * Validate an already-parsed document. Throws ConfigError listing every problem.
 * Two phases: field-level checks (zod), then cross-field checks on well-formed data only.
 */
export function validateConfig(doc: unknown, source = 'config'): Config {
  const result = configSchema.safeParse(doc);
  const problems: string[] = [];
  const report = (path: ReadonlyArray<PropertyKey>, message: string) => problems.push(`${formatPath(path)}: ${message}`);
  if (result.success) {
    crossCheck(result.data as Config, report);
    if (problems.length === 0) return result.data as Config;
  } else {
    for (const i of result.error.issues) report(i.path, issueMessage(i));
    // Cross-field rules on the document as written, skipping whatever is too broken to check.
    try {
      crossCheck(withDefaults(doc), report);
    } catch {
      /* the field errors above already explain it */
    }
  }
  throw new ConfigError(source, [...new Set(problems)]);
}

/** The raw document with list fields defaulted, for best-effort cross checks. */
function withDefaults(doc: unknown): Config {
  const d = (doc ?? {}) as Config;
  for (const b of Array.isArray(d.bridges) ? d.bridges : []) {
    b.static ??= [];
    for (const p of Array.isArray(b.ports) ? b.ports : []) if (p.type === 'namespace') p.ifname ??= 'eth0';
  }
  (d as { routes?: unknown }).routes ??= [];
  if (d.nat !== undefined && d.nat !== null && typeof d.nat === 'object') {
    d.nat.portRange ??= [32768, 60999];
    d.nat.publish ??= [];
    for (const p of Array.isArray(d.nat.publish) ? d.nat.publish : []) p.proto ??= 'tcp';
  }
  return d;
}

function issueMessage(i: z.core.$ZodIssue): string {
  if (i.code === 'unrecognized_keys') return `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `'${k}'`).join(', ')}`;
  if (i.code === 'invalid_type' && i.message.includes('received undefined')) return `required (${i.expected})`;
  return i.message;
}

/** Read a YAML or JSON file (JSON is YAML) and validate it. */
export function loadConfigFile(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot read: ${(err as Error).message}`]);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true });
  } catch (err) {
    throw new ConfigError(file, [`not valid YAML/JSON: ${(err as Error).message.split('\n')[0]}`]);
  }
  return validateConfig(doc, file);
}
