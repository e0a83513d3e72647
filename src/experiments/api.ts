/*
 * Worker-side API of the experiment features (faults, captures, statistics snapshots),
 * merged into the data plane's API (src/engine/dataplane.ts). Each method answers one
 * control request synchronously; bad input is an ApiError (400/404/409).
 *
 *   faults {port?}                          list fault stages with spec and counters
 *   faults_set {port, direction, spec, merge?}
 *   faults_clear {port, direction}
 *   captures / capture {id}                 list / one capture
 *   capture_start {target|port|bridge, file | streamToken, direction, filter, snaplen,
 *                  maxPackets, maxBytes, format, durationSeconds}
 *   capture_stop {id, reason?}
 *   stats_sample                            compact counters for the main thread's rate sampler
 *   experiment_stats                        ports, bridges, pool, faults, captures
 *   experiment_config                       the metrics listener setting (for the main thread)
 *
 * `config.experiment` (faults, then captures) is applied when the API is built, i.e. at
 * start; a failure there fails the start. Engine ticks flush captures and unhook drained
 * fault stages; Engine.stop ends every capture first, so files are complete.
 */
import type { Engine } from '../engine/engine.js';
import type { ApiMethod } from '../engine/dataplane.js';
import { ApiError } from '../engine/dataplane-errors.js';
import type { Config } from '../config/schema.js';
import { C_RX_BYTES, C_RX_PACKETS, C_TX_BYTES, C_TX_PACKETS, DROP_BASE } from '../engine/counters.js';
import { captureRequestSchema, directionSchema, faultSpecSchema, toFaultSpec, zodProblems, type CaptureRequest, type Direction } from './schema.js';
import { FaultManager } from './fault-manager.js';
import type { FaultSpec } from '../faults/faults.js';
import { CaptureManager } from './capture-manager.js';

/** Posts a message to the control plane (e.g. capture stream chunks). */
export type PostToMain = (message: unknown, transfer?: ArrayBuffer[]) => void;

export interface ExperimentContext {
  engine: Engine;
  post: PostToMain;
  /** The whole validated config; `config.experiment` is applied when the API is built. */
  config?: Config;
}

interface State {
  faults: FaultManager;
  captures: CaptureManager;
}

const states = new WeakMap<Engine, State>();

function stateOf(ctx: ExperimentContext): State {
  let s = states.get(ctx.engine);
  if (s !== undefined) return s;
  const engine = ctx.engine;
  const faults = new FaultManager(engine);
  const captures = new CaptureManager(engine, faults, ctx.post);
  s = { faults, captures };
  states.set(engine, s);
  engine.stages.push({
    tick: () => {
      captures.tick();
      faults.tick();
    },
  });
  const stop = engine.stop.bind(engine);
  engine.stop = () => {
    captures.stopAll('tapbridge stopping');
    stop();
  };
  return s;
}

function reqString(p: Record<string, unknown>, key: string): string {
  const v = p[key];
  if (typeof v !== 'string' || v === '') throw new ApiError(400, `'${key}' must be a non-empty string`);
  return v;
}

function parseDirection(v: unknown, dflt: Direction): Direction {
  if (v === undefined) return dflt;
  const r = directionSchema.safeParse(v);
  if (!r.success) throw new ApiError(400, `direction: expected 'ingress', 'egress' or 'both', got ${JSON.stringify(v)}`);
  return r.data;
}

function parseId(v: unknown): number {
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw new ApiError(400, `'id' must be a capture id (a positive integer), got ${JSON.stringify(v)}`);
  return n;
}

/** Validate a spec (or, with merge, a patch where null removes a fault). */
function parseSpec(v: unknown, merge: boolean): Record<string, unknown> {
  if (v === undefined) v = {};
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ApiError(400, "'spec' must be an object of faults, e.g. {\"loss\": {\"percent\": 10}}");
  const removals: string[] = [];
  const given: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(v)) {
    if (val === null && merge) removals.push(k);
    else given[k] = val;
  }
  const r = faultSpecSchema.safeParse(given);
  if (!r.success) throw new ApiError(400, zodProblems(r.error));
  const spec: Record<string, unknown> = { ...toFaultSpec(r.data) };
  for (const k of removals) {
    if (!Object.hasOwn(faultSpecSchema.shape, k)) throw new ApiError(400, `unknown field '${k}'`);
    spec[k] = null;
  }
  return spec;
}

export function experimentApi(ctx: ExperimentContext): Record<string, ApiMethod> {
  const { engine } = ctx;
  const { faults, captures } = stateOf(ctx);

  const startCapture = (p: Record<string, unknown>): ReturnType<CaptureManager['start']> => {
    const r = captureRequestSchema.safeParse(p);
    if (!r.success) throw new ApiError(400, zodProblems(r.error));
    return captures.start(r.data);
  };

  const api: Record<string, ApiMethod> = {
    faults: (p) => {
      if (p.port !== undefined) faults.hookablePort(reqString(p, 'port'));
      return faults.list(p.port as string | undefined);
    },
    faults_set: (p) => {
      const port = reqString(p, 'port');
      const merge = p.merge === true;
      const spec = parseSpec(p.spec, merge);
      return faults.set(port, parseDirection(p.direction, 'both'), spec as FaultSpec, merge);
    },
    faults_clear: (p) => faults.clear(reqString(p, 'port'), parseDirection(p.direction, 'both')),
    captures: () => captures.list(),
    capture: (p) => captures.get(parseId(p.id)),
    capture_start: (p) => startCapture(p),
    capture_stop: (p) => captures.stop(parseId(p.id), typeof p.reason === 'string' && p.reason !== '' ? p.reason : 'stopped by user'),
    stats_sample: () => ({
      t: performance.timeOrigin + performance.now(),
      ports: engine.ports.map((port) => {
        const c = port.counters;
        let drops = 0;
        for (let i = DROP_BASE; i < c.length; i++) drops += c[i];
        return [port.name, c[C_RX_PACKETS], c[C_RX_BYTES], c[C_TX_PACKETS], c[C_TX_BYTES], drops];
      }),
      bridges: engine.bridges.map((b) => [b.name, b.forwarded, b.flooded]),
    }),
    experiment_stats: () => ({
      t: performance.timeOrigin + performance.now(),
      ports: engine.portInfo(),
      bridges: engine.bridgeInfo(),
      pool: { free: engine.arena.poolFree, total: engine.arena.poolSlots },
      faults: faults.list(),
      captures: captures.list(),
    }),
    experiment_config: () => ({ metrics: ctx.config?.experiment?.metrics ?? null }),
  };

  applyConfig(ctx, faults, startCapture);
  return api;
}

/** Apply `config.experiment` (at start). Errors name the config field. */
function applyConfig(ctx: ExperimentContext, faults: FaultManager, startCapture: (p: Record<string, unknown>) => unknown): void {
  const ex = ctx.config?.experiment;
  if (ex === undefined) return;
  ex.faults.forEach((f, i) => {
    try {
      const { port, direction, ...spec } = f;
      faults.set(port, direction, toFaultSpec(spec));
    } catch (err) {
      throw new Error(`experiment.faults[${i}]: ${(err as Error).message}`);
    }
  });
  ex.captures.forEach((c, i) => {
    try {
      const req: Partial<CaptureRequest> = { ...c };
      startCapture(JSON.parse(JSON.stringify(req)) as Record<string, unknown>);
    } catch (err) {
      throw new Error(`experiment.captures[${i}]: ${(err as Error).message}`);
    }
  });
}

/** Messages the main thread sends to the worker besides API calls (stream acks). */
export function onWorkerMessage(ctx: ExperimentContext, message: { type: string }): boolean {
  const s = states.get(ctx.engine);
  if (s === undefined) return false;
  const m = message as { type: string; token?: unknown; bytes?: unknown; reason?: unknown };
  if (m.type === 'capture_ack' && typeof m.token === 'string' && typeof m.bytes === 'number') {
    s.captures.ack(m.token, m.bytes);
    return true;
  }
  if (m.type === 'capture_client_gone' && typeof m.token === 'string') {
    s.captures.stopStream(m.token, typeof m.reason === 'string' ? m.reason : 'client disconnected');
    return true;
  }
  return false;
}
