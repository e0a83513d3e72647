/*
 * Builds the data plane from a validated config plus the opened devices, and exposes
 * the control API the worker serves: each method answers one control request.
 * Runs inside the data-plane worker thread (worker.ts), or in-process for tests.
 */
import type { Config } from '../config/schema.js';
import { Engine, type PortSpec } from './engine.js';
import type { SetupResult } from '../lab/setup.js';
import { buildRouter } from '../gateway/build.js';
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
    trace: (p) => runTrace(engine, routing?.router ?? null, cfg, traceHolder, p as unknown as TraceRequest),
    arp: () => routing?.router.neighbors() ?? [],
    routes: () => routing?.router.routeTable() ?? [],
    router: () => routing?.router.counters ?? null,
    stats: () => ({ bridges: engine.bridgeInfo(), ports: engine.portInfo(), pool: { free: engine.arena.poolFree, total: engine.arena.poolSlots } }),
  };
  Object.assign(api, experimentApi({ engine, post, config: cfg }));
  return { engine, api, stop: () => engine.stop() };
}
