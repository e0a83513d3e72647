/*
 * Builds the data plane from a validated config plus the opened devices, and exposes
 * the control API the worker serves: each method answers one control request.
 * Runs inside the data-plane worker thread (worker.ts), or in-process for tests.
 */
import type { Config } from '../config/schema.js';
import { Engine, type PortSpec } from './engine.js';
import type { SetupResult } from '../lab/setup.js';
import { buildRouter, toForward } from '../gateway/build.js';
import { publishSchema } from '../config/schema.js';
import { formatPath } from '../config/load.js';
import { ip4ToString } from '../wire/ip4.js';
import { experimentApi, type PostToMain } from '../experiments/api.js';

import { ApiError } from './dataplane-errors.js';
import { TraceHolder } from '../trace/decision.js';
import { runTrace, type TraceRequest } from '../trace/run-trace.js';
export { ApiError };

export type ApiMethod = (params: Record<string, unknown>) => unknown;

export interface DataPlane {
  engine: Engine;
  api: Record<string, ApiMethod>;
  stop(): void;
}

function str(params: Record<string, unknown>, key: string, required = true): string | undefined {
  const v = params[key];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || v === '') throw new ApiError(400, `'${key}' must be a non-empty string`);
  return v;
}

export function buildDataPlane(cfg: Config, setup: Pick<SetupResult, 'ports' | 'uplink'>, post: PostToMain = () => {}): DataPlane {
  const engine = new Engine({
    bridges: cfg.bridges.map((b) => ({
      name: b.name,
      agingSeconds: b.agingSeconds,
      macTableSize: b.macTableSize,
      macLimitPerPort: b.macLimitPerPort,
      static: b.static,
    })),
    ports: setup.ports as PortSpec[],
  });
  const routing = buildRouter(cfg, engine, setup);
  const traceHolder = new TraceHolder();
  for (const b of engine.bridges) b.trace = traceHolder;
  if (routing !== null) routing.router.trace = traceHolder;
  engine.start();
  routing?.router.announce();
  engine.flush();

  const portOrThrow = (name: string) => {
    const p = engine.port(name);
    if (p === undefined) throw new ApiError(404, `no port named '${name}'`);
    return p;
  };

  const api: Record<string, ApiMethod> = {
    ports: () => engine.portInfo(),
    bridges: () => engine.bridgeInfo(),
    fdb: (p) => {
      const bridge = str(p, 'bridge', false);
      if (bridge !== undefined && engine.bridge(bridge) === undefined) throw new ApiError(404, `no bridge named '${bridge}'`);
      return engine.fdbRows(bridge);
    },
    link: (p) => {
      const port = portOrThrow(str(p, 'port')!);
      if (typeof p.up !== 'boolean') throw new ApiError(400, "'up' must be true or false");
      engine.setPortUp(port.name, p.up);
      return { port: port.name, up: port.up };
    },
    trace: (p) => runTrace(engine, routing?.router ?? null, cfg, traceHolder, p as unknown as TraceRequest, routing?.nat ?? null),
    conntrack: (p) => {
      const nat = routing?.nat;
      if (!nat) throw new ApiError(404, 'NAT is not configured');
      const limit = p.limit === undefined ? 10000 : Number(p.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new ApiError(400, "'limit' must be a positive integer");
      return { size: nat.size, max: nat.maxFlows, counters: nat.counters, flows: nat.list(engine.now, limit) };
    },
    forwards: () => {
      const nat = routing?.nat;
      if (!nat) throw new ApiError(404, 'NAT is not configured');
      return nat.listForwards().map((f) => ({
        proto: f.proto === 6 ? 'tcp' : 'udp',
        port: f.externalPort,
        portEnd: f.externalPortEnd,
        to: ip4ToString(f.internalIp),
        toPort: f.internalPort,
      }));
    },
    'forwards.add': (p) => {
      const nat = routing?.nat;
      if (!nat) throw new ApiError(404, 'NAT is not configured');
      const r = publishSchema.safeParse(p);
      if (!r.success) throw new ApiError(400, r.error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`).join('; '));
      const f = toForward(r.data);
      if (f.externalPortEnd < f.externalPort) throw new ApiError(400, 'portEnd: range ends before it starts');
      const taken = nat.listForwards().find((x) => x.proto === f.proto && x.externalPort <= f.externalPortEnd && f.externalPort <= x.externalPortEnd);
      if (taken) throw new ApiError(409, `${r.data.proto}/${taken.externalPort} is already published`);
      nat.addForward(f);
      return { added: r.data };
    },
    'forwards.remove': (p) => {
      const nat = routing?.nat;
      if (!nat) throw new ApiError(404, 'NAT is not configured');
      const proto = p.proto === 'udp' ? 17 : p.proto === 'tcp' || p.proto === undefined ? 6 : -1;
      const port = Number(p.port);
      if (proto < 0) throw new ApiError(400, "'proto' must be tcp or udp");
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ApiError(400, "'port' must be a port number");
      if (!nat.removeForward(proto, port)) throw new ApiError(404, `${p.proto ?? 'tcp'}/${port} is not published`);
      return { removed: `${p.proto ?? 'tcp'}/${port}` };
    },
    arp: () => routing?.router.neighbors() ?? [],
    routes: () => routing?.router.routeTable() ?? [],
    router: () => routing?.router.counters ?? null,
    stats: () => ({ bridges: engine.bridgeInfo(), ports: engine.portInfo(), pool: { free: engine.arena.poolFree, total: engine.arena.poolSlots } }),
  };
  Object.assign(api, experimentApi({ engine, post, config: cfg }));
  return { engine, api, stop: () => engine.stop() };
}
