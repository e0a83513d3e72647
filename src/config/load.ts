/*
 * Loading and validating a configuration as a whole. Nothing is created from a config
 * that has not passed every check here; errors name the field:
 *   bridges[0].ports[1].mac: not a MAC address (expected aa:bb:cc:dd:ee:ff)
 */
import { readFileSync } from 'node:fs';
import { parsePublishSpec } from './publish-spec.js';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { asList, byFamily, familyOf, inSubnet, overlaps, subnetOf, type Subnet } from './addresses.js';
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

/** gateway.dhcp / gateway.dns against the gateway's IPv4 subnet. */
function checkDhcp(b: Config['bridges'][number], bi: number, gw4: string | undefined, issue: (path: (string | number)[], message: string) => void): void {
  const g = b.gateway!;
  const at = ['bridges', bi, 'gateway'];
  if (g.dns !== undefined && g.dns.enabled && gw4 === undefined) issue([...at, 'dns'], 'DNS is served at the gateway\'s IPv4 address: the gateway has none');
  const d = g.dhcp;
  if (d === undefined) return;
  if (gw4 === undefined) return issue([...at, 'dhcp'], 'DHCPv4 needs an IPv4 gateway address');
  const sub = subnetOf(gw4);
  const num = (ip: string) => ip.split('.').reduce((n, x) => n * 256 + Number(x), 0);
  const prefix = Number(gw4.split('/')[1]);
  const hostBits = prefix >= 32 ? 0 : 2 ** (32 - prefix) - 1;
  const host = (ip: string, path: (string | number)[]) => {
    const low = num(ip) % (hostBits + 1);
    if (!inSubnet(ip, sub)) issue(path, `${ip} is not inside the gateway subnet ${gw4}`);
    else if (ip === gw4.split('/')[0]) issue(path, `${ip} is the gateway's own address`);
    else if (low === 0 || low === hostBits) issue(path, `${ip} is the subnet's ${low === 0 ? 'network' : 'broadcast'} address`);
  };
  host(d.pool.start, [...at, 'dhcp', 'pool', 'start']);
  host(d.pool.end, [...at, 'dhcp', 'pool', 'end']);
  if (num(d.pool.start) > num(d.pool.end)) issue([...at, 'dhcp', 'pool', 'end'], `before pool.start ${d.pool.start}`);
  const macs = new Set<string>();
  const ips = new Set<string>();
  d.static.forEach((s, si) => {
    host(s.address, [...at, 'dhcp', 'static', si, 'address']);
    const m = s.mac.toLowerCase();
    if (macs.has(m)) issue([...at, 'dhcp', 'static', si, 'mac'], `duplicate MAC ${s.mac}`);
    if (ips.has(s.address)) issue([...at, 'dhcp', 'static', si, 'address'], `duplicate address ${s.address}`);
    macs.add(m);
    ips.add(s.address);
  });
  if (d.router !== undefined && d.router !== null && !inSubnet(d.router, sub)) issue([...at, 'dhcp', 'router'], `${d.router} is not inside the gateway subnet ${gw4}`);
}

function crossCheck(cfg: Config, issue: (path: (string | number)[], message: string) => void): void {
  const bridgeNames = new Map<string, number>();
  const portNames = new Map<string, string>();
  const nsIfnames = new Map<string, string>();
  const localIfnames = new Map<string, string>();
  /** Gateway subnets of every bridge, both families. */
  const gatewaySubnets: Subnet[] = [];
  const hostNs = cfg.namespace?.name;
  /** One address per family in `list` (at `path`); problems named there. */
  const perFamily = (list: unknown, path: (string | number)[]) => {
    const f = byFamily(asList(list));
    if (f.duplicate !== undefined) issue(path, `two IPv${f.duplicate} entries: at most one of each family`);
    return f;
  };

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
        const routes = perFamily(p.defaultRoute, [...at, 'defaultRoute']);
        for (const via of [routes.v4, routes.v6]) {
          // An IPv6 next hop may be link-local (fe80::/10): on-link by definition.
          if (via === undefined || isLinkLocal(via)) continue;
          if (p.addresses === 'dhcp') issue([...at, 'defaultRoute'], 'a port with addresses: dhcp takes its default route from DHCP');
          else if (!asList(p.addresses).some((a) => inSubnet(via, subnetOf(a))))
            issue([...at, 'defaultRoute'], `${via} is not inside any of the port's addresses`);
        }
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
      const at = ['bridges', bi, 'gateway', 'address'];
      const f = perFamily(b.gateway.address, at);
      for (const a of [f.v4, f.v6]) {
        const sub = a === undefined ? null : subnetOf(a);
        if (sub === null) continue;
        if (sub.prefix > (sub.family === 4 ? 30 : 126)) issue(at, `prefix too long for a gateway subnet (max /${sub.family === 4 ? 30 : 126})`);
        if (gatewaySubnets.some((other) => overlaps(sub, other))) issue(at, 'overlaps the subnet of another bridge');
        gatewaySubnets.push(sub);
      }
      checkDhcp(b, bi, f.v4, issue);
    }
    b.ports.forEach((p, pi) => {
      if (p.type === 'namespace' && p.addresses === 'dhcp' && b.gateway?.dhcp === undefined)
        issue(['bridges', bi, 'ports', pi, 'addresses'], `dhcp: bridge '${b.name}' has no gateway.dhcp server`);
    });
  });

  const devicePorts = cfg.bridges.reduce((n, b) => n + b.ports.length, 0);
  if (devicePorts > MAX_DEVICE_PORTS)
    issue(['bridges'], `${devicePorts} ports: at most ${MAX_DEVICE_PORTS} per instance (each has a 4 MiB receive ring in a 1 GiB frame arena); split them over instances`);
  for (const [name, bi] of bridgeNames) {
    if (cfg.uplink !== undefined && name === 'uplink') issue(['bridges', bi, 'name'], "'uplink' names the uplink's router interface; call the bridge something else");
    if (name === 'local') issue(['bridges', bi, 'name'], "'local' names the router's own input; call the bridge something else");
  }

  const uplinkSubnets: Subnet[] = [];
  if (cfg.uplink?.type === 'packet') {
    const u = cfg.uplink;
    const other = localIfnames.get(u.interface);
    if (other !== undefined) issue(['uplink', 'interface'], `interface '${u.interface}' is also used by ${other}`);
    const addrs = perFamily(u.address, ['uplink', 'address']);
    const gws = perFamily(u.gateway, ['uplink', 'gateway']);
    for (const [addr, gw, fam] of [[addrs.v4, gws.v4, 4], [addrs.v6, gws.v6, 6]] as const) {
      const sub = addr === undefined ? null : subnetOf(addr);
      if (sub !== null) {
        uplinkSubnets.push(sub);
        if (gatewaySubnets.some((s) => inSubnet(addr!, s))) issue(['uplink', 'address'], `${addr} overlaps a bridge subnet`);
      }
      if (gw === undefined) continue;
      if (addr === undefined) issue(['uplink', 'gateway'], `${gw}: the uplink has no IPv${fam} address`);
      else if (!inSubnet(gw, sub) && !isLinkLocal(gw)) issue(['uplink', 'gateway'], `${gw} is not inside ${addr}`);
    }
  }
  if (cfg.nat !== undefined) {
    const n = cfg.nat;
    if (cfg.uplink === undefined) issue(['nat'], 'NAT needs an uplink');
    // A socket uplink has no address to masquerade to and routes nothing: only nat.publish applies.
    if (cfg.uplink?.type === 'socket' && n.masquerade !== undefined) issue(['nat', 'masquerade'], 'not used with a socket uplink (its connections are host sockets); remove it');
    if (cfg.uplink?.type === 'socket' && n.routed.length > 0) issue(['nat', 'routed'], 'not used with a socket uplink (no IPv6 is routed); remove it');
    if (n.portRange[0] > n.portRange[1]) issue(['nat', 'portRange'], 'first port is above the last');
    const seen = new Set<string>();
    n.publish.forEach((p, i) => {
      const end = p.portEnd ?? p.port;
      const fam = familyOf(p.to);
      if (end < p.port) issue(['nat', 'publish', i, 'portEnd'], 'range ends before it starts');
      if ((p.toPort ?? p.port) + (end - p.port) > 65535) issue(['nat', 'publish', i, 'toPort'], 'range runs past 65535');
      if (!gatewaySubnets.some((s) => inSubnet(p.to, s)))
        issue(['nat', 'publish', i, 'to'], `${p.to} is not inside any bridge's gateway subnet`);
      else if (fam === 6 && cfg.uplink?.type === 'socket') issue(['nat', 'publish', i, 'to'], 'a socket uplink publishes IPv4 ports only');
      else if (fam !== 0 && cfg.uplink?.type === 'packet' && byFamily(asList(cfg.uplink.address))[fam === 4 ? 'v4' : 'v6'] === undefined)
        issue(['nat', 'publish', i, 'to'], `an IPv${fam} port needs an IPv${fam} uplink address`);
      for (let port = p.port; port <= end; port++) {
        const key = `IPv${fam} ${p.proto}/${port}`;
        if (seen.has(key)) {
          issue(['nat', 'publish', i, 'port'], `${p.proto}/${port} is published twice`);
          break;
        }
        seen.add(key);
      }
    });
    asList(n.routed).forEach((r, i) => {
      const sub = subnetOf(r);
      if (sub !== null && !gatewaySubnets.some((g) => g.family === 6 && g.prefix <= sub.prefix && overlaps(g, sub)))
        issue(['nat', 'routed', i], `${r} is not a bridge's IPv6 prefix (or inside one)`);
    });
  }
  cfg.routes.forEach((r, i) => {
    const to = subnetOf(r.to);
    const fam = familyOf(r.via);
    if (to !== null && fam !== 0 && to.family !== fam) return issue(['routes', i, 'via'], `next hop ${r.via} is not of the destination's family`);
    const reachable = [...gatewaySubnets, ...uplinkSubnets].some((s) => inSubnet(r.via, s));
    if (!reachable) issue(['routes', i, 'via'], `next hop ${r.via} is not on a directly connected subnet`);
  });
  cfg.lab?.veths.forEach((v, i) => {
    const other = localIfnames.get(v.peer);
    if (other !== undefined) issue(['lab', 'veths', i, 'peer'], `interface '${v.peer}' is also used by ${other}`);
    if (v.namespace === hostNs) issue(['lab', 'veths', i, 'namespace'], "the veth's far end cannot be tapbridge's own namespace");
  });
  checkExperiment(cfg, issue);
}

/** fe80::/10: on-link by definition, a valid next hop without a matching prefix. */
function isLinkLocal(ip: string): boolean {
  return /^fe[89ab][0-9a-f]?:/i.test(ip);
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
  return validateConfig(readConfigDocument(file), file);
}

/**
 * The config of `tapbridge run`: FILE, else `fallback` (an embedded default), with the
 * `--publish` SPECs appended to nat.publish (a `nat: {}` made when absent) and validated with
 * the rest; a SPEC that does not parse is an error naming the flag.
 */
export function loadRunConfig(file: string | undefined, fallback: { doc: object; source: string }, publish: string[] = []): Config {
  const source = file ?? fallback.source;
  const doc = (file !== undefined ? readConfigDocument(file) : structuredClone(fallback.doc)) as { nat?: { publish?: unknown[] } } | null;
  if (publish.length === 0) return validateConfig(doc, source);
  const specs = publish.map((spec) => {
    try {
      return parsePublishSpec(spec);
    } catch (err) {
      throw new ConfigError(source, [`--publish: ${(err as Error).message}`]);
    }
  });
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ConfigError(source, ['expected a mapping at the top']);
  doc.nat ??= {};
  doc.nat.publish = [...(doc.nat.publish ?? []), ...specs];
  return validateConfig(doc, `${source} + --publish`);
}

/** Read a YAML or JSON file into a document, not yet validated (the caller may add to it first). */
export function readConfigDocument(file: string): unknown {
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
  return doc;
}
