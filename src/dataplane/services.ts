/*
 * The worker's half of DHCP and DNS at the gateway (the svc element is built from the spec by
 * service-bridges.ts): attachServices() gives the element what is not packet work:
 *   - one UDP socket per DNS bridge towards its upstreams (answers only from them are taken;
 *     forwarded queries go to the first upstream, a timeout tries the next one next time);
 *   - the local names: port names with their addresses, DHCP clients as they bind (named after
 *     their port, else their host name option), removed when released or expired;
 *   - port security: the port whose MAC got a lease may send from that address;
 *   - the lease file: read at start (a missing file is an empty table), rewritten at most once
 *     a second after a change, and at stop.
 * leaseRows() answers `ctl leases`; servicePortAdded/Removed keep the names of ports attached
 * or removed at runtime.
 */
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { DhcpResult } from '../services/dhcp-server.js';
import { ServicePort } from '../services/service-port.js';
import { PortSecurity } from '../switch/security.js';
import { parseIp4 } from '../wire/ip4.js';
import { parseMac } from '../wire/mac.js';
import type { Engine } from './engine.js';
import { hostAddresses } from './service-bridges.js';

/** Port name by MAC, per served bridge (index as in svc.bridges), of each engine with services. */
const portNamesOf = new WeakMap<Engine, Map<number, string>[]>();

/**
 * A port attached at runtime: its name answers in DNS with its static addresses (text, no
 * prefix), and names the DHCP client with its MAC. No-op on a bridge without DNS.
 */
export function servicePortAdded(engine: Engine, bridge: string, name: string, mac: string, addresses: string[]): void {
  const svc = servicePort(engine);
  const bi = svc?.bridges.findIndex((b) => b.name === bridge) ?? -1;
  const dns = bi >= 0 ? svc!.bridges[bi].dns : null;
  if (dns === null) return;
  const m = parseMac(mac);
  if (m !== null) portNamesOf.get(engine)?.[bi].set(m, name);
  const a = hostAddresses(addresses);
  if (a.v4.length + a.v6.length > 0) dns.setHost(name, a.v4, a.v6);
}

/** A port removed at runtime: its name no longer answers. */
export function servicePortRemoved(engine: Engine, bridge: string, name: string): void {
  const svc = servicePort(engine);
  const bi = svc?.bridges.findIndex((b) => b.name === bridge) ?? -1;
  if (bi < 0) return;
  svc!.bridges[bi].dns?.removeHost(name);
  const names = portNamesOf.get(engine)?.[bi];
  for (const [mac, n] of names ?? []) if (n === name) names!.delete(mac);
}

interface Upstream {
  host: string;
  port: number;
}

function upstreamOf(text: string): Upstream {
  const [host, port] = text.split(':');
  return { host, port: port === undefined ? 53 : Number(port) };
}

export interface LeaseRow {
  bridge: string;
  mac: string;
  ip: string;
  state: string;
  hostName?: string;
  /** Seconds left (negative: expired). */
  expiresIn: number;
  client: string;
}

/** The svc element of an engine, if DHCP or DNS is on. */
export function servicePort(engine: Engine): ServicePort | undefined {
  const e = engine.graph.element('svc');
  return e instanceof ServicePort ? e : undefined;
}

export function leaseRows(engine: Engine): LeaseRow[] {
  const svc = servicePort(engine);
  const now = Date.now();
  const rows: LeaseRow[] = [];
  for (const sb of svc?.bridges ?? []) {
    for (const l of sb.dhcp?.leases(now) ?? []) {
      rows.push({ bridge: sb.name, mac: l.mac, ip: l.ip, state: l.state, ...(l.hostName !== undefined ? { hostName: l.hostName } : {}), expiresIn: Math.round((l.expires - now) / 1000), client: l.client });
    }
  }
  return rows;
}

/** Sockets, names and lease files of the service port; `log` reports what went wrong (never throws after start). */
export function attachServices(engine: Engine, log: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void): void {
  const svc = servicePort(engine);
  if (svc === undefined) return;
  const specs = svc.bridges.map((sb) => engine.spec.bridges.find((b) => b.name === sb.name)!.gateway!);
  const sockets: (Socket | null)[] = [];
  const upstreams: Upstream[][] = specs.map((g) => (g.dns?.upstreams ?? []).map(upstreamOf));
  const current = specs.map(() => 0);
  const dirty = specs.map(() => false);
  /** Port name by MAC, per bridge: a DHCP client is named after its port. */
  const portNames = specs.map((g) => new Map((g.dns?.portMacs ?? []).map((p) => [parseMac(p.mac)!, p.name])));
  const dhcpNames = specs.map(() => new Map<number, string>());
  portNamesOf.set(engine, portNames);

  /** Port security of the port with this MAC lets the leased address through (0: the lease ended). */
  const secured = (mac: number, ip: number, released: boolean) => {
    for (const e of engine.graph.elements) {
      if (!(e instanceof PortSecurity) || !e.hasMac(mac)) continue;
      if (!released) e.leasedIpv4 = ip;
      else if (e.leasedIpv4 === ip) e.leasedIpv4 = 0;
    }
  };
  const leaseMacs = specs.map(() => new Map<number, number>()); // ip -> mac of the binding

  const named = (bi: number, ip: number, mac: number, hostName: string | undefined) => {
    secured(mac, ip, false);
    leaseMacs[bi].set(ip, mac);
    const dns = svc.bridges[bi].dns;
    if (dns === null) return;
    const name = portNames[bi].get(mac) ?? hostName;
    if (name !== undefined && dns.setHost(name, [ip])) dhcpNames[bi].set(ip, name);
  };

  svc.bridges.forEach((sb, bi) => {
    if (sb.dns === null) return sockets.push(null);
    const s = createSocket('udp4');
    s.on('message', (msg, rinfo) => {
      if (!upstreams[bi].some((u) => u.host === rinfo.address && u.port === rinfo.port)) return;
      engine.ctx.clock.refresh();
      svc.upstreamAnswer(bi, msg, msg.length);
      engine.endBatch();
    });
    s.on('error', (err) => log('warn', `dns upstream socket of ${sb.name}: ${err.message}`));
    s.bind(0);
    sockets.push(s);
    if (upstreams[bi].length === 0) log('warn', `dns on ${sb.name}: no upstream resolver (none configured, none in resolv.conf): names outside ${sb.dns.domain} get SERVFAIL`);
  });

  svc.hooks = {
    upstream(bi, buf, len) {
      const list = upstreams[bi];
      const s = sockets[bi];
      if (list.length === 0 || s === null) return; // the timeout answers SERVFAIL
      const u = list[current[bi] % list.length];
      s.send(Buffer.from(buf.subarray(0, len)), u.port, u.host);
    },
    lease(bi, r: DhcpResult) {
      dirty[bi] = true;
      if (r.binding !== null) named(bi, r.binding.ip, r.binding.mac, r.binding.hostName);
      if (r.released !== 0) {
        const mac = leaseMacs[bi].get(r.released);
        if (mac !== undefined) secured(mac, r.released, true);
        leaseMacs[bi].delete(r.released);
        const name = dhcpNames[bi].get(r.released);
        if (name !== undefined) {
          svc.bridges[bi].dns?.removeHost(name);
          dhcpNames[bi].delete(r.released);
        }
      }
    },
  };

  // Leases of the previous run; bound ones get their names again.
  specs.forEach((g, bi) => {
    const file = g.dhcp?.leaseFile;
    const dhcp = svc.bridges[bi].dhcp;
    if (file === undefined || dhcp === null) return;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return; // first run
    }
    try {
      const r = dhcp.load(JSON.parse(text), Date.now());
      log('info', `dhcp on ${svc.bridges[bi].name}: ${r.loaded} lease(s) from ${file}${r.skipped > 0 ? `, ${r.skipped} skipped (do not fit the config)` : ''}`);
      for (const l of dhcp.leases(Date.now())) if (l.state === 'bound') named(bi, parseIp4(l.ip)!, parseMac(l.mac)!, l.hostName);
    } catch (err) {
      log('warn', `dhcp on ${svc.bridges[bi].name}: lease file ${file} not read: ${(err as Error).message}`);
    }
  });

  /** Leases that ran out without a RELEASE: their names and port-security addresses go too. */
  const expireNames = (bi: number) => {
    const bound = new Set(svc.bridges[bi].dhcp!.leases(Date.now()).filter((l) => l.state === 'bound').map((l) => parseIp4(l.ip)!));
    for (const ip of [...leaseMacs[bi].keys()]) if (!bound.has(ip)) svc.hooks.lease(bi, { drop: 0, reply: null, binding: null, released: ip });
  };

  const save = (bi: number) => {
    const file = specs[bi].dhcp?.leaseFile;
    const dhcp = svc.bridges[bi].dhcp;
    dirty[bi] = false;
    if (file === undefined || dhcp === null) return;
    try {
      writeFileSync(`${file}.tmp`, `${JSON.stringify(dhcp.serialize(Date.now()), null, 1)}\n`);
      renameSync(`${file}.tmp`, file);
    } catch (err) {
      log('warn', `dhcp on ${svc.bridges[bi].name}: lease file ${file} not written: ${(err as Error).message}`);
    }
  };
  let lastSave = 0;
  let timeoutsBefore = specs.map(() => 0);
  engine.tickHooks.push((now) => {
    if (now - lastSave < 1000) return;
    lastSave = now;
    svc.bridges.forEach((sb, bi) => {
      if (dirty[bi]) save(bi);
      if (sb.dhcp !== null) {
        sb.dhcp.sweep(Date.now());
        if (leaseMacs[bi].size > 0) expireNames(bi);
      }
      // An upstream that let queries time out: the next queries try the next one.
      const timeouts = sb.dns?.counters.timeouts ?? 0;
      if (timeouts > timeoutsBefore[bi] && upstreams[bi].length > 1) current[bi]++;
      timeoutsBefore[bi] = timeouts;
    });
  });
  engine.stopHooks.push(() => {
    svc.bridges.forEach((_, bi) => {
      if (dirty[bi]) save(bi);
    });
    for (const s of sockets) s?.close();
  });
}
