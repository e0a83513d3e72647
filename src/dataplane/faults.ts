/*
 * Fault control (data-plane side): one fault element per port and direction, created on
 * first use and spliced into the port's ingress link (device rx -> switch) or egress link
 * (-> device tx); registered with the engine's delay timer while spliced.
 *
 *   set(port, direction, spec, merge)  replaces the spec (validated on a scratch stage first,
 *                                      so a bad spec changes nothing, for either direction);
 *                                      `merge` updates only the given faults (null removes one)
 *   clear(port, direction)             turns the faults off; the element leaves the link once
 *                                      its delay line has drained (held frames are still
 *                                      delivered), so the port is back on the zero-cost path
 *   list()                             every stage ever made: spec, active, counters (kept
 *                                      across clear/set, like the port's fault_* counters)
 * Ports without a device of their own (the gateway's internal port) cannot carry faults.
 */
import type { Element, PortRecord } from '../core/element.js';
import { describeSpec } from '../faults/describe.js';
import { FaultElement } from '../faults/element.js';
import { FaultStage, type FaultCounters, type FaultSpec } from '../faults/stage.js';
import type { DevicePort } from '../io/device.js';
import type { Engine } from './engine.js';
import { ApiError } from './errors.js';

export type Direction = 'ingress' | 'egress' | 'both';

/** Wrapper ranks on a port's links: ingress capture, ingress faults, bridge capture; egress faults, egress capture. */
export const RANK_CAPTURE_INGRESS = 10;
export const RANK_FAULT_INGRESS = 20;
export const RANK_CAPTURE_BRIDGE = 30;
export const RANK_FAULT_EGRESS = 10;
export const RANK_CAPTURE_EGRESS = 20;

export interface FaultRow {
  port: string;
  direction: 'ingress' | 'egress';
  active: boolean;
  spec: FaultSpec;
  counters: FaultCounters;
  summary: string;
}

export function expandDirection(d: Direction): ('ingress' | 'egress')[] {
  return d === 'both' ? ['ingress', 'egress'] : [d];
}

/** Where a wrapper of `device` goes: its rx link (ingress) or the link into its tx (egress). */
export function portEdge(engine: Engine, device: DevicePort, direction: 'ingress' | 'egress'): { from: Element; output: number } {
  if (direction === 'ingress') return { from: device, output: 0 };
  const e = engine.graph.edgeInto(device, 0);
  if (e === null) throw new ApiError(409, `port '${device.record.name}' has nothing linked to its transmit side`);
  return e;
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

interface Entry {
  device: DevicePort;
  direction: 'ingress' | 'egress';
  element: FaultElement;
  spliced: boolean;
}

export class FaultControl {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly engine: Engine) {
    engine.tickHooks.push(() => this.tick());
    engine.stopHooks.push(() => {
      for (const e of this.entries.values()) e.element.discardHeld();
    });
  }

  /** The device of a port that can carry faults and captures, or ApiError 404/400. */
  hookablePort(name: string): DevicePort {
    const device = this.engine.device(name);
    if (device !== undefined) return device;
    const record: PortRecord | undefined = this.engine.record(name);
    if (record !== undefined)
      throw new ApiError(400, `port '${name}' is internal (the gateway): its frames do not pass port hooks; use a capture on its bridge or faults on the other ports`);
    throw new ApiError(404, `no port named '${name}' (ports: ${this.engine.devices.map((d) => d.record.name).join(', ')})`);
  }

  private entry(device: DevicePort, direction: 'ingress' | 'egress', seed: number | undefined): Entry {
    const key = `${device.record.name}/${direction}`;
    let e = this.entries.get(key);
    if (e === undefined) {
      const name = `fault/${device.record.name}/${direction === 'ingress' ? 'in' : 'out'}`;
      e = { device, direction, element: new FaultElement(name, this.engine.ctx, new FaultStage({ seed: seed ?? 1 }), device.record, direction), spliced: false };
      this.entries.set(key, e);
    }
    return e;
  }

  /** Replace (or with merge, update) the faults of a port in one or both directions. */
  set(portName: string, direction: Direction, spec: FaultSpec, merge = false): FaultRow[] {
    const device = this.hookablePort(portName);
    const planned = expandDirection(direction).map((d) => {
      const current = this.entries.get(`${device.record.name}/${d}`)?.element.stage.config ?? {};
      const next = merge ? mergeSpec(current, spec as Record<string, unknown>) : spec;
      try {
        new FaultStage({ queueCapacity: 1 }).configure(next);
      } catch (err) {
        throw new ApiError(400, (err as Error).message);
      }
      return { d, next };
    });
    for (const { d, next } of planned) {
      const e = this.entry(device, d, next.seed);
      e.element.stage.configure(next);
      if (e.element.stage.active) this.splice(e);
      else this.unspliceIfIdle(e);
    }
    return this.list(device.record.name);
  }

  clear(portName: string, direction: Direction): FaultRow[] {
    const device = this.hookablePort(portName);
    for (const d of expandDirection(direction)) {
      const e = this.entries.get(`${device.record.name}/${d}`);
      if (e === undefined) continue;
      e.element.stage.configure({});
      this.unspliceIfIdle(e);
    }
    return this.list(device.record.name);
  }

  /** The port goes away: its fault elements leave the graph, frames they hold are dropped. */
  forget(portName: string): void {
    for (const [key, e] of this.entries) {
      if (e.device.record.name !== portName) continue;
      e.element.discardHeld();
      if (e.spliced) this.engine.graph.unwrap(e.element);
      this.engine.removeTimed(e.element);
      this.entries.delete(key);
    }
  }

  list(portName?: string): FaultRow[] {
    const rows: FaultRow[] = [];
    for (const e of this.entries.values()) {
      if (portName !== undefined && e.device.record.name !== portName) continue;
      const stage = e.element.stage;
      rows.push({ port: e.device.record.name, direction: e.direction, active: stage.active, spec: stage.config, counters: stage.counters(), summary: describeSpec(stage.config) });
    }
    return rows;
  }

  /** Engine tick: take cleared stages whose delay line has drained off their link. */
  private tick(): void {
    for (const e of this.entries.values()) if (e.spliced && !e.element.stage.active) this.unspliceIfIdle(e);
  }

  private splice(e: Entry): void {
    if (e.spliced) return;
    const at = portEdge(this.engine, e.device, e.direction);
    this.engine.graph.wrap(at.from, at.output, e.element, e.direction === 'ingress' ? RANK_FAULT_INGRESS : RANK_FAULT_EGRESS);
    this.engine.addTimed(e.element);
    e.spliced = true;
  }

  private unspliceIfIdle(e: Entry): void {
    if (!e.spliced || e.element.stage.active || e.element.stage.queued !== 0) return;
    this.engine.graph.unwrap(e.element);
    this.engine.removeTimed(e.element);
    e.spliced = false;
  }
}
