/*
 * Fault manager (data-plane worker): one FaultStage per port and direction, created on first
 * use, registered with the engine's FaultScheduler and hung on the port's hooks.
 *
 * set(port, direction, spec)  replaces the spec (validated on a scratch stage first, so a bad
 *                             spec changes nothing, for either direction); `merge` updates
 *                             only the given faults (null removes one).
 * clear(port, direction)      turns the faults off; the stage is unhooked once its timer
 *                             queue has drained (held frames are still delivered), so an
 *                             unfaulted port is back on the zero-cost path.
 * list()                      every stage ever made: spec, active, counters (kept across
 *                             clear/set, like the port's fault_* drop counters).
 * Ports without their own fd (the gateway's internal port) cannot carry faults: their frames
 * do not pass through the port hooks.
 */
import { FaultStage, type FaultCounters, type FaultSpec } from '../faults/faults.js';
import type { Engine } from '../engine/engine.js';
import type { Port } from '../engine/port.js';
import { DIR_EGRESS, DIR_INGRESS } from '../engine/hooks.js';
import { ApiError } from '../engine/dataplane-errors.js';
import type { Direction } from './schema.js';

export interface FaultRow {
  port: string;
  direction: 'ingress' | 'egress';
  active: boolean;
  spec: FaultSpec;
  counters: FaultCounters;
  summary: string;
}

interface Entry {
  port: Port;
  direction: 'ingress' | 'egress';
  stage: FaultStage;
  hooked: boolean;
}

export function expandDirection(d: Direction): ('ingress' | 'egress')[] {
  return d === 'both' ? ['ingress', 'egress'] : [d];
}

/** One-line description of a spec: "loss 10% delay 100ms±10ms rate 10Mbit/s". */
export function describeSpec(s: FaultSpec): string {
  const parts: string[] = [];
  if (s.down) parts.push('down');
  if (s.loss !== undefined) {
    if ('percent' in s.loss) parts.push(`loss ${s.loss.percent}%`);
    else parts.push(`loss GE(p=${s.loss.gilbertElliott.p},r=${s.loss.gilbertElliott.r})`);
  }
  if (s.delay !== undefined)
    parts.push(`delay ${s.delay.ms}ms${s.delay.jitterMs ? `±${s.delay.jitterMs}ms${s.delay.distribution && s.delay.distribution !== 'uniform' ? ` ${s.delay.distribution}` : ''}` : ''}`);
  if (s.reorder !== undefined) parts.push(`reorder ${s.reorder.percent}%${s.reorder.gapMs !== undefined ? ` gap ${s.reorder.gapMs}ms` : ''}`);
  if (s.duplicate !== undefined) parts.push(`duplicate ${s.duplicate.percent}%`);
  if (s.corrupt !== undefined) parts.push(`corrupt ${s.corrupt.percent}%${s.corrupt.fixChecksums ? ' (checksums fixed)' : ''}`);
  if (s.rate !== undefined) parts.push(`rate ${fmtRate(s.rate.bitsPerSecond)}`);
  if (s.dropEveryNth) parts.push(`drop every ${s.dropEveryNth}th`);
  if (s.dropFilter) parts.push(`drop '${s.dropFilter}'`);
  if (s.seed !== undefined) parts.push(`seed ${s.seed}`);
  return parts.length === 0 ? 'off' : parts.join(', ');
}

function fmtRate(bps: number): string {
  for (const [div, unit] of [
    [1e9, 'Gbit/s'],
    [1e6, 'Mbit/s'],
    [1e3, 'kbit/s'],
  ] as const)
    if (bps >= div) return `${+(bps / div).toFixed(3)}${unit}`;
  return `${bps}bit/s`;
}

export class FaultManager {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly engine: Engine) {}

  /** A port that can carry hooks (has an fd), or ApiError 404/400. */
  hookablePort(name: string): Port {
    const port = this.engine.port(name);
    if (port === undefined) throw new ApiError(404, `no port named '${name}' (ports: ${this.engine.ports.filter((p) => p.receiver === null).map((p) => p.name).join(', ')})`);
    if (port.receiver !== null)
      throw new ApiError(400, `port '${name}' is internal (the gateway): its frames do not pass port hooks; use a capture on its bridge or faults on the other ports`);
    return port;
  }

  private entry(port: Port, direction: 'ingress' | 'egress', seed: number | undefined): Entry {
    const key = `${port.name}/${direction}`;
    let e = this.entries.get(key);
    if (e === undefined) {
      e = { port, direction, stage: new FaultStage({ seed: seed ?? 1 }), hooked: false };
      this.entries.set(key, e);
    }
    return e;
  }

  /** Replace (or with merge, update) the faults of a port in one or both directions. */
  set(portName: string, direction: Direction, spec: FaultSpec, merge = false): FaultRow[] {
    const port = this.hookablePort(portName);
    const dirs = expandDirection(direction);
    // Compute and validate every resulting spec before touching anything.
    const planned = dirs.map((d) => {
      const current = this.entries.get(`${port.name}/${d}`)?.stage.config ?? {};
      const next = merge ? mergeSpec(current, spec as Record<string, unknown>) : spec;
      try {
        new FaultStage({ queueCapacity: 1 }).configure(next);
      } catch (err) {
        throw new ApiError(400, (err as Error).message);
      }
      return { d, next };
    });
    for (const { d, next } of planned) {
      const e = this.entry(port, d, next.seed);
      e.stage.configure(next);
      if (e.stage.active) this.hook(e);
      else this.unhookIfIdle(e);
    }
    return this.list(port.name);
  }

  clear(portName: string, direction: Direction): FaultRow[] {
    const port = this.hookablePort(portName);
    for (const d of expandDirection(direction)) {
      const e = this.entries.get(`${port.name}/${d}`);
      if (e === undefined) continue;
      e.stage.configure({});
      this.unhookIfIdle(e);
    }
    return this.list(port.name);
  }

  clearAll(): void {
    for (const e of this.entries.values()) {
      e.stage.configure({});
      this.unhookIfIdle(e);
    }
  }

  list(portName?: string): FaultRow[] {
    const rows: FaultRow[] = [];
    for (const e of this.entries.values()) {
      if (portName !== undefined && e.port.name !== portName) continue;
      rows.push({
        port: e.port.name,
        direction: e.direction,
        active: e.stage.active,
        spec: e.stage.config,
        counters: e.stage.counters(),
        summary: describeSpec(e.stage.config),
      });
    }
    return rows;
  }

  /** Engine tick: unhook stages that were cleared and have drained their queue. */
  tick(): void {
    for (const e of this.entries.values()) if (e.hooked && !e.stage.active) this.unhookIfIdle(e);
  }

  private hook(e: Entry): void {
    if (e.hooked) return;
    const p = e.port;
    if (e.direction === 'ingress') p.ingressFaults = e.stage;
    else p.egressFaults = e.stage;
    this.engine.faults.register(p, e.stage, e.direction === 'ingress' ? DIR_INGRESS : DIR_EGRESS);
    p.updateHooked();
    e.hooked = true;
  }

  private unhookIfIdle(e: Entry): void {
    if (!e.hooked || e.stage.active || e.stage.queued !== 0) return;
    const p = e.port;
    if (e.direction === 'ingress' && p.ingressFaults === e.stage) p.ingressFaults = null;
    if (e.direction === 'egress' && p.egressFaults === e.stage) p.egressFaults = null;
    this.engine.faults.unregister(e.stage);
    p.updateHooked();
    e.hooked = false;
  }
}

/** Shallow merge of fault specs: a key set to null (or undefined) in `patch` is removed. */
export function mergeSpec(current: FaultSpec, patch: Record<string, unknown>): FaultSpec {
  const out: Record<string, unknown> = { ...current };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null || v === undefined) delete out[k];
    else out[k] = v;
  }
  return out as FaultSpec;
}
