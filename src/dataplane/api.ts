/*
 * The data plane's API: one method per control request, answered synchronously on the
 * worker's thread between batches. The control plane validates request bodies against the
 * config schemas first (src/control/); these methods still check what they are given and
 * answer bad input with an ApiError (400/404/409), never a crash. Methods that return long
 * lists take a limit (and a starting point) so one call never stalls forwarding.
 *
 *   ports, ports.add {PortSpec} (a device port joins a running bridge), ports.remove {name}, bridges, fdb {bridge?}, link {port, up}, graph, drops
 *   arp, neigh (IPv6 neighbours), leases (DHCP), routes (both families), router, conntrack {limit?, from?}, forwards, forwards.add {PublishSpec},
 *   forwards.remove {proto, port}, trace {TraceRequest}, stats
 *   faults {port?}, faults_set {port, direction, spec, merge?}, faults_clear {port, direction}
 *   captures, capture {id}, capture_start {CaptureStartSpec}, capture_stop {id, reason?}
 *   stats_sample (compact counters for the main thread's rate sampler), experiment_stats
 */
import { native, type BusyPollStats } from '../io/native.js';
import { ACCOUNT_GENERAL, type PoolAccountInfo } from '../core/arena.js';
import { C_RX_BYTES, C_RX_PACKETS, C_TX_BYTES, C_TX_PACKETS, totalDrops } from '../core/counters.js';
import { dropReasons } from '../core/drops.js';
import { unconnectedDrops } from '../core/element.js';
import type { FaultSpec } from '../faults/spec.js';
import { ip4ToString, parseIp4 } from '../wire/ip4.js';
import { parseMac } from '../wire/mac.js';
import { ip6ToString, parseIp6 } from '../wire/ip6.js';
import type { NatEngine } from '../nat/index.js';
import { toForward, toForward6 } from './build.js';
import { CaptureControl, type PostToMain } from './captures.js';
import type { Engine } from './engine.js';
import { ApiError } from './errors.js';
import { FaultControl, type Direction } from './faults.js';
import type { CaptureStartSpec, PortSpec, PublishSpec } from './spec.js';
import { runTrace, type TraceRequest } from './trace.js';
import { leaseRows, servicePort, servicePortAdded, servicePortRemoved } from './services.js';

export type ApiMethod = (params: Record<string, unknown>) => unknown;

/** Longest conntrack listing per call. */
export const CONNTRACK_PAGE_MAX = 10_000;

function str(params: Record<string, unknown>, key: string, required = true): string | undefined {
  const v = params[key];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || v === '') throw new ApiError(400, `'${key}' must be a non-empty string`);
  return v;
}

function direction(v: unknown, dflt: Direction): Direction {
  if (v === undefined) return dflt;
  if (v !== 'ingress' && v !== 'egress' && v !== 'both') throw new ApiError(400, `direction: expected 'ingress', 'egress' or 'both', got ${JSON.stringify(v)}`);
  return v;
}

function captureId(v: unknown): number {
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw new ApiError(400, `'id' must be a capture id (a positive integer), got ${JSON.stringify(v)}`);
  return n;
}

export interface DataPlaneApi {
  methods: Record<string, ApiMethod>;
  faults: FaultControl;
  captures: CaptureControl;
}

export function dataPlaneApi(engine: Engine, post: PostToMain): DataPlaneApi {
  const faults = new FaultControl(engine);
  const captures = new CaptureControl(engine, faults, post);
  const natOrThrow = (): void => {
    if (engine.nats.length === 0) throw new ApiError(404, 'NAT is not configured');
  };
  const router = () => engine.graph.element('router');

  /** Names in the bridge's DNS of each port added at runtime. */
  const runtimeNames = new Map<string, { bridge: string; names: string[] }>();
  const methods: Record<string, ApiMethod> = {
    ports: () => engine.portInfo(),
    'ports.add': (p) => {
      const spec = p as unknown as PortSpec;
      if (typeof spec.name !== 'string' || typeof spec.bridge !== 'string' || typeof spec.fd !== 'number' || typeof spec.mac !== 'string')
        throw new ApiError(400, 'expected a PortSpec {"name","kind","bridge","fd","vnetHdr","ifname","mac","addresses"}');
      if (engine.switchOf(spec.bridge) === undefined) throw new ApiError(404, `no bridge named '${spec.bridge}'`);
      if (engine.record(spec.name) !== undefined) throw new ApiError(409, `a port named '${spec.name}' exists already`);
      try {
        engine.addPort({ ...spec, addresses: Array.isArray(spec.addresses) ? spec.addresses : [] });
      } catch (err) {
        throw new ApiError(400, (err as Error).message);
      }
      // its names in the bridge's DNS (aliases first: the port's own name names its DHCP client)
      const names = [...(Array.isArray(spec.dnsNames) ? spec.dnsNames : []), spec.name];
      runtimeNames.set(spec.name, { bridge: spec.bridge, names });
      const hosts = (Array.isArray(spec.addresses) ? spec.addresses : []).map((a) => a.split('/')[0]);
      for (const n of names) servicePortAdded(engine, spec.bridge, n, spec.mac, hosts);
      return engine.portInfo().find((x) => x.name === spec.name);
    },
    'ports.remove': (p) => {
      const name = str(p, 'name')!;
      if (engine.device(name) === undefined) throw new ApiError(404, `no device port named '${name}'`);
      faults.forget(name);
      captures.stopPort(name, 'port removed');
      engine.removePort(name);
      const named = runtimeNames.get(name);
      runtimeNames.delete(name);
      for (const n of named?.names ?? []) servicePortRemoved(engine, named!.bridge, n);
      return { removed: name };
    },
    bridges: () => engine.bridgeInfo(),
    fdb: (p) => {
      const bridge = str(p, 'bridge', false);
      if (bridge !== undefined && engine.switchOf(bridge) === undefined) throw new ApiError(404, `no bridge named '${bridge}'`);
      return engine.fdbRows(bridge);
    },
    link: (p) => {
      const name = str(p, 'port')!;
      if (engine.record(name) === undefined) throw new ApiError(404, `no port named '${name}'`);
      if (typeof p.up !== 'boolean') throw new ApiError(400, "'up' must be true or false");
      const carrier = engine.setPortUp(name, p.up);
      return { port: name, up: engine.record(name)!.up, ...(carrier ? {} : { carrier: 'unchanged: changing a TAP carrier needs CAP_NET_ADMIN, which this instance dropped (--user); the port is down in the data plane only' }) };
    },
    graph: () => ({ ...engine.graph.describe(), unconnectedDrops: unconnectedDrops() }),
    drops: () => dropReasons().slice(1),
    trace: (p) => runTrace(engine, p as unknown as TraceRequest),
    conntrack: (p) => {
      const nats = engine.nats;
      if (nats.length === 0) throw new ApiError(404, 'NAT is not configured');
      const limit = p.limit === undefined ? CONNTRACK_PAGE_MAX : Number(p.limit);
      const from = p.from === undefined ? 0 : Number(p.from);
      if (!Number.isInteger(limit) || limit < 1) throw new ApiError(400, "'limit' must be a positive integer");
      if (!Number.isInteger(from) || from < 0) throw new ApiError(400, "'from' must be a flow id (an integer >= 0)");
      return conntrackPage(engine, Math.min(limit, CONNTRACK_PAGE_MAX), from);
    },
    forwards: () => {
      const sockup = engine.socketUplink;
      if (sockup !== undefined)
        return sockup.listForwards().map((f) => ({ proto: f.proto, port: f.port, portEnd: f.portEnd ?? f.port, to: f.to, toPort: f.toPort ?? f.port, family: 'ipv4', hostAddress: f.hostAddress ?? '0.0.0.0' }));
      natOrThrow();
      return listForwards(engine);
    },
    'forwards.add': (p) => {
      const spec = p as unknown as PublishSpec;
      const sockup = engine.socketUplink;
      if (sockup !== undefined) {
        if ((spec.proto !== 'tcp' && spec.proto !== 'udp') || !Number.isInteger(spec.port) || typeof spec.to !== 'string' || parseIp4(spec.to) === null)
          throw new ApiError(400, 'expected {"proto":"tcp|udp","port":N,"to":"a.b.c.d","toPort"?:N,"portEnd"?:N,"hostAddress"?:"a.b.c.d"}');
        try {
          sockup.addForward(spec);
        } catch (err) {
          throw new ApiError(/already published/.test((err as Error).message) ? 409 : 400, (err as Error).message);
        }
        return { added: spec };
      }
      const v6 = typeof spec.to === 'string' && parseIp6(spec.to) !== null;
      if ((spec.proto !== 'tcp' && spec.proto !== 'udp') || !Number.isInteger(spec.port) || typeof spec.to !== 'string' || (!v6 && parseIp4(spec.to) === null))
        throw new ApiError(400, 'expected {"proto":"tcp|udp","port":N,"to":"a.b.c.d or an IPv6 address","toPort"?:N,"portEnd"?:N}');
      const nat = v6 ? engine.nat6 : engine.nat;
      if (nat === null) throw new ApiError(404, v6 ? 'NAT66 is not configured (NAT and an IPv6 uplink address)' : 'NAT is not configured');
      const f = toForward({ ...spec, to: v6 ? '0.0.0.0' : spec.to });
      if (f.externalPortEnd < f.externalPort) throw new ApiError(400, 'portEnd: range ends before it starts');
      const taken = nat.listForwards().find((x) => x.proto === f.proto && x.externalPort <= f.externalPortEnd && f.externalPort <= x.externalPortEnd);
      if (taken) throw new ApiError(409, `${spec.proto}/${taken.externalPort} is already published${v6 ? ' (IPv6)' : ''}`);
      try {
        if (v6) engine.nat6!.addForward(toForward6(spec));
        else engine.nat!.addForward(f);
      } catch (err) {
        throw new ApiError(400, (err as Error).message);
      }
      return { added: spec };
    },
    'forwards.remove': (p) => {
      const proto = p.proto === 'udp' ? 17 : p.proto === 'tcp' || p.proto === undefined ? 6 : -1;
      const port = Number(p.port);
      if (proto < 0) throw new ApiError(400, "'proto' must be tcp or udp");
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ApiError(400, "'port' must be a port number");
      const sockup = engine.socketUplink;
      if (sockup !== undefined) {
        if (!sockup.removeForward(proto === 6 ? 'tcp' : 'udp', port)) throw new ApiError(404, `${p.proto ?? 'tcp'}/${port} is not published`);
        return { removed: `${p.proto ?? 'tcp'}/${port}`, families: ['ipv4'] };
      }
      natOrThrow();
      // One port number may be published in both families: both go.
      const removed = engine.nats.filter((n) => n.removeForward(proto, port));
      if (removed.length === 0) throw new ApiError(404, `${p.proto ?? 'tcp'}/${port} is not published`);
      return { removed: `${p.proto ?? 'tcp'}/${port}`, families: removed.map((n) => (n === engine.nat6 ? 'ipv6' : 'ipv4')) };
    },
    arp: () => engine.gateways.flatMap((g) => g.neighbors()),
    neigh: () => engine.gateways6.flatMap((g) => g.neighbors()),
    leases: () => leaseRows(engine),
    'leases.acquire': (p) => {
      const bridge = str(p, 'bridge')!;
      const mac = parseMac(str(p, 'mac') ?? '');
      const hostName = str(p, 'hostName', false);
      if (mac === null) throw new ApiError(400, 'mac: expected aa:bb:cc:dd:ee:ff');
      const svc = servicePort(engine);
      if (svc === undefined) throw new ApiError(404, 'no bridge has a DHCP server (gateway.dhcp)');
      const r = svc.leaseFor(bridge, mac, hostName);
      if (typeof r === 'string') throw new ApiError(r.includes('no DHCP server') ? 404 : 409, r);
      const o = r.options;
      let prefixLen = 0; // the mask's leading one bits
      while (prefixLen < 32 && ((o.subnetMask ?? 0) >>> (31 - prefixLen)) & 1) prefixLen++;
      return {
        address: ip4ToString(r.ip),
        prefixLen,
        gateway: o.routers?.[0] !== undefined ? ip4ToString(o.routers[0]) : null,
        dns: (o.dnsServers ?? []).map(ip4ToString),
        domain: o.domainName ?? null,
        leaseTime: o.leaseTime ?? null,
      };
    },
    'leases.release': (p) => {
      const mac = parseMac(str(p, 'mac') ?? '');
      if (mac === null) throw new ApiError(400, 'mac: expected aa:bb:cc:dd:ee:ff');
      return { released: servicePort(engine)?.releaseFor(str(p, 'bridge')!, mac) ?? false };
    },
    routes: () => [...engine.shared.routes.table(), ...engine.shared.routes6.table()],
    router: () => (router() === undefined ? null : routerCounters(engine)),
    stats: () => ({ bridges: engine.bridgeInfo(), ports: engine.portInfo(), pool: poolInfo(engine), poll: pollInfo() }),

    faults: (p) => {
      if (p.port !== undefined) faults.hookablePort(str(p, 'port')!);
      return faults.list(p.port as string | undefined);
    },
    faults_set: (p) => {
      if (p.spec === null || typeof p.spec !== 'object' || Array.isArray(p.spec)) throw new ApiError(400, "'spec' must be an object of faults, e.g. {\"loss\": {\"percent\": 10}}");
      return faults.set(str(p, 'port')!, direction(p.direction, 'both'), p.spec as FaultSpec, p.merge === true);
    },
    faults_clear: (p) => faults.clear(str(p, 'port')!, direction(p.direction, 'both')),
    captures: () => captures.list(),
    capture: (p) => captures.get(captureId(p.id)),
    capture_start: (p) => {
      const s = p as unknown as CaptureStartSpec;
      if (typeof s.target !== 'string' || s.target === '') throw new ApiError(400, "'target' must be a port or 'bridge:NAME'");
      return captures.start({ ...s, direction: direction(s.direction, 'both'), fd: typeof s.fd === 'number' ? s.fd : -1, snaplen: typeof s.snaplen === 'number' ? s.snaplen : 262144 });
    },
    capture_stop: (p) => captures.stop(captureId(p.id), typeof p.reason === 'string' && p.reason !== '' ? p.reason : 'stopped by user'),
    debug_crash: () => {
      // Test hook (TAPBRIDGE_TEST_HOOKS=1): an exception escapes the data plane, as a bug in an element would.
      if (process.env.TAPBRIDGE_TEST_HOOKS !== '1') throw new ApiError(404, "unknown method 'debug_crash'");
      setImmediate(() => {
        throw new Error('debug crash (TAPBRIDGE_TEST_HOOKS)');
      });
      return { crashing: true };
    },
    stats_sample: () => ({
      t: performance.timeOrigin + performance.now(),
      ports: [...engine.shared.records.values()].map((r) => {
        const c = r.counters;
        return [r.name, c[C_RX_PACKETS], c[C_RX_BYTES], c[C_TX_PACKETS], c[C_TX_BYTES], totalDrops(c)];
      }),
      bridges: engine.bridgeInfo().map((b) => [b.name, b.forwarded, b.flooded]),
    }),
    experiment_stats: () => ({
      t: performance.timeOrigin + performance.now(),
      ports: engine.portInfo(),
      bridges: engine.bridgeInfo(),
      pool: poolInfo(engine),
      poll: pollInfo(),
      faults: faults.list(),
      captures: captures.list(),
    }),
  };
  return { methods, faults, captures };
}

/** Flow ids of the IPv6 table in a conntrack page: offset past every IPv4 id. */
export const CONNTRACK_ID6_BASE = 1 << 30;

/** One page of both conntrack tables: IPv4 flows, then IPv6 ones (ids from CONNTRACK_ID6_BASE); totals and counters summed, each table's own too. */
function conntrackPage(engine: Engine, limit: number, from: number) {
  const now = engine.ctx.clock.refresh();
  const parts = [
    { nat: engine.nat, family: 'ipv4', base: 0 },
    { nat: engine.nat6, family: 'ipv6', base: CONNTRACK_ID6_BASE },
  ].filter((x) => x.nat !== null);
  const flows: (ReturnType<NatEngine['list']>[number] & { family: string })[] = [];
  for (const x of parts) {
    const room = limit - flows.length;
    const end = x.base === 0 ? CONNTRACK_ID6_BASE : Infinity;
    if (room <= 0 || from >= end) continue;
    for (const f of x.nat!.list(now, room, Math.max(0, from - x.base))) flows.push({ ...f, id: f.id + x.base, family: x.family });
  }
  const counters: Record<string, number> = {};
  for (const x of parts) for (const [k, v] of Object.entries(x.nat!.counters)) counters[k] = (counters[k] ?? 0) + v;
  const tables = parts.map((x) => ({ family: x.family, size: x.nat!.size, max: x.nat!.maxFlows, counters: x.nat!.counters }));
  const full = flows.length === limit;
  return {
    size: tables.reduce((n, t) => n + t.size, 0),
    max: tables.reduce((n, t) => n + t.max, 0),
    counters,
    tables,
    flows,
    next: full ? flows[flows.length - 1].id + 1 : null,
  };
}

/** Published ports of both families. */
function listForwards(engine: Engine) {
  const row = (f: { proto: number; externalPort: number; externalPortEnd: number; internalPort: number }, to: string, family: string) => ({ proto: f.proto === 6 ? 'tcp' : 'udp', port: f.externalPort, portEnd: f.externalPortEnd, to, toPort: f.internalPort, family });
  return [
    ...(engine.nat?.listForwards().map((f) => row(f, ip4ToString(f.internalIp), 'ipv4')) ?? []),
    ...(engine.nat6?.listForwards().map((f) => row(f, ip6ToString(f.internalIp), 'ipv6')) ?? []),
  ];
}

/** The data-plane thread's busy poll counters and its kernel tid (the thread that polls). */
function pollInfo(): PollInfo {
  return { ...native.busyPollStats(), thread: native.threadId() };
}

export type PollInfo = BusyPollStats & { thread: number };

/** The frame pool: free slots, the control reserve, and use by account (busy accounts only, at most 64). */
function poolInfo(engine: Engine): { free: number; total: number; reserve: number; accounts: PoolAccountInfo[] } {
  const a = engine.arena;
  const accounts = a.accounts().filter((x, i) => i <= ACCOUNT_GENERAL || x.used > 0 || x.refused > 0).slice(0, 64);
  return { free: a.poolFree, total: a.poolSlots, reserve: a.reserve, accounts };
}

/** The router's counters with those of the elements around it (ICMP errors, local delivery, ARP, fragmentation). */
function routerCounters(engine: Engine): Record<string, number> {
  const sum = (kind: string, key: string) => engine.graph.elements.filter((e) => e.kind === kind).reduce((n, e) => n + (e.counters[key] ?? 0), 0);
  const r = engine.graph.element('router')!.counters;
  return {
    forwarded: r.forwarded,
    localDelivered: r.localDelivered,
    localSent: r.localSent,
    localUnroutable: r.localUnroutable,
    echoReplies: sum('LocalDelivery', 'echoReplies'),
    resetsSent: sum('LocalDelivery', 'resetsSent'),
    icmpErrorsSent: sum('IcmpError', 'sent'),
    icmpErrorsSuppressed: sum('IcmpError', 'suppressed'),
    icmpRateLimited: engine.shared.budget.limited,
    arpRequestsSent: sum('GatewayInterface', 'arpRequestsSent'),
    arpRepliesSent: sum('GatewayInterface', 'arpRepliesSent'),
    fragmentsCreated: sum('Fragmenter', 'fragmentsCreated'),
    ...router6Counters(engine, sum),
  };
}

/** The IPv6 half (absent without an IPv6 interface). */
function router6Counters(engine: Engine, sum: (kind: string, key: string) => number): Record<string, number> {
  const r = engine.graph.element('router6')?.counters;
  if (r === undefined) return {};
  return {
    forwarded6: r.forwarded,
    localDelivered6: r.localDelivered,
    localSent6: r.localSent,
    localUnroutable6: r.localUnroutable,
    echoReplies6: sum('LocalDelivery6', 'echoReplies'),
    resetsSent6: sum('LocalDelivery6', 'resetsSent'),
    icmp6ErrorsSent: sum('Icmp6Error', 'sent'),
    icmp6ErrorsSuppressed: sum('Icmp6Error', 'suppressed'),
    icmp6RateLimited: engine.shared.budget6.limited,
    neighborSolicitsSent: sum('GatewayInterface6', 'nsSent'),
    neighborAdvertsSent: sum('GatewayInterface6', 'naSent'),
    routerAdvertsSent: sum('GatewayInterface6', 'raSent'),
    routerSolicitsReceived: sum('GatewayInterface6', 'rsReceived'),
  };
}

/** Apply the spec's experiment section (at start, before ready). Errors name the entry. */
export function applyExperiment(engine: Engine, api: DataPlaneApi): void {
  const ex = engine.spec.experiment;
  if (ex === undefined) return;
  ex.faults.forEach((f, i) => {
    try {
      api.faults.set(f.port, f.direction, f.spec);
    } catch (err) {
      throw new Error(`experiment.faults[${i}]: ${(err as Error).message}`);
    }
  });
  ex.captures.forEach((c, i) => {
    try {
      api.captures.start(c);
    } catch (err) {
      throw new Error(`experiment.captures[${i}]: ${(err as Error).message}`);
    }
  });
}

/** Messages besides calls (stream acks); true when handled. */
export function onStreamMessage(api: DataPlaneApi, m: { type: string; token?: unknown; bytes?: unknown; reason?: unknown }): boolean {
  if (m.type === 'capture_ack' && typeof m.token === 'string' && typeof m.bytes === 'number') {
    api.captures.ack(m.token, m.bytes);
    return true;
  }
  if (m.type === 'capture_client_gone' && typeof m.token === 'string') {
    api.captures.stopStream(m.token, typeof m.reason === 'string' ? m.reason : 'client disconnected');
    return true;
  }
  return false;
}
