/*
 * The element contract: every stage of the data plane (device ports, the switch, the gateway
 * interfaces, the router, NAT, ICMP errors, captures, faults) is an Element with named inputs
 * and outputs, and elements meet only through Links (Click's elements and connections,
 * Snabb's apps and links).
 *
 *   push(input, off, len)   a frame arrives on input `input` (index into `inputs`). The
 *                           frame is lent for the duration of the call: slot offset `off`
 *                           (the virtio header, see frame.ts), frame length `len`. An element
 *                           that keeps it (a queue) retains the pool slot or copies the frame
 *                           (Arena.hold); everything else is over when push returns.
 *   this.out[i].push(...)   hands the frame on through output i. An output that is not
 *                           linked drops the frame and counts `unconnected`.
 *
 * Every frame ends in exactly one place: transmitted by a device, held in a queue, or
 * dropped with a counted reason (drops.ts). Elements never import each other: the graph
 * (graph.ts) creates them from a plain spec and links them. State two elements share (the
 * conntrack table of nat/pre and nat/post, the router's interface table) is a plain object
 * given to both at build time.
 *
 * Decision traces (`ctl trace`): while `ctx.tracer.active`, links record the hops instead of
 * counting packets, elements note their decisions, devices record instead of transmitting,
 * and nothing may change lasting state (tables, counters, captures).
 */
import type { Arena } from './arena.js';
import { DROP_BASE, newCounters } from './counters.js';
import { DROP_UNCONNECTED } from './drops.js';

/* -------------------------------------------------------------------- tracing */

export interface TraceStep {
  stage: string;
  decision: string;
}

/** One link a traced packet took. */
export interface TraceHop {
  from: string;
  output: string;
  to: string;
  input: string;
}

/** Decision tracing state shared by every element of a graph. */
export class Tracer {
  active = false;
  steps: TraceStep[] = [];
  outputs: string[] = [];
  hops: TraceHop[] = [];

  begin(): void {
    this.active = true;
    this.steps = [];
    this.outputs = [];
    this.hops = [];
  }

  end(): void {
    this.active = false;
  }

  note(stage: string, decision: string): void {
    this.steps.push({ stage, decision });
  }

  hop(link: Link): void {
    this.hops.push({ from: link.from.name, output: link.from.outputs[link.fromOutput], to: link.to.name, input: link.to.inputs[link.toInput] });
  }
}

/** The data plane's clock in milliseconds: `now` is stamped once per RX batch and per timer run. */
export interface Clock {
  now: number;
  /** Read the time source and stamp `now`. */
  refresh(): number;
}

/** A clock over a time source (default: performance.now; tests pass their own). */
export function makeClock(source: () => number = () => performance.now()): Clock {
  return {
    now: source(),
    refresh() {
      return (this.now = source());
    },
  };
}

/** What every element of one data plane shares. */
export interface DataPlaneContext {
  readonly arena: Arena;
  readonly u8: Uint8Array;
  readonly clock: Clock;
  readonly tracer: Tracer;
}

/* -------------------------------------------------------------------- ports */

export type PortKind = 'namespace' | 'tap' | 'packet' | 'internal' | 'uplink';

/**
 * A port as users see it (`ctl ports`): its counters, carrier state and identity. Shared by
 * the elements that carry the port's traffic: its device element, its slot on the switch,
 * and the gateway interface for the internal gateway port.
 */
export class PortRecord {
  readonly counters = newCounters();
  up = true;
  /** Position among the data plane's ports (frame annotations, per-port accounts); set when it joins. */
  index = -1;
  /** An isolated port reaches the non-isolated ports of its bridge (the gateway), never another isolated one. */
  isolated = false;

  constructor(
    readonly name: string,
    readonly kind: PortKind,
    readonly ifname: string,
    readonly mac: number,
    readonly offload: boolean,
    readonly bridge: string | null,
  ) {}

  countDrop(reason: number): void {
    this.counters[DROP_BASE + reason]++;
  }
}

/* -------------------------------------------------------------------- links */

/** One hop from an output of one element to an input of another, with a packet counter. */
export class Link {
  packets = 0;

  constructor(
    readonly from: Element,
    readonly fromOutput: number,
    public to: Element,
    public toInput: number,
    private readonly tracer: Tracer,
  ) {}

  push(off: number, len: number): void {
    if (this.tracer.active) this.tracer.hop(this);
    else this.packets++;
    this.to.push(this.toInput, off, len);
  }
}

/* -------------------------------------------------------------------- elements */

export interface ElementInfo {
  name: string;
  kind: string;
  config: string;
  inputs: string[];
  outputs: string[];
  counters: Record<string, number>;
}

export abstract class Element {
  abstract readonly kind: string;
  readonly out: Link[] = [];
  /** Event counters of the element itself (plain numbers: shown by `ctl graph`, restored after a trace). */
  counters: Record<string, number> = {};

  constructor(
    readonly name: string,
    readonly ctx: DataPlaneContext,
    readonly inputs: string[],
    readonly outputs: string[],
  ) {
    for (let i = 0; i < outputs.length; i++) this.out.push(new Link(this, i, UNCONNECTED, 0, ctx.tracer));
  }

  abstract push(input: number, off: number, len: number): void;

  /** Add an output at runtime (e.g. a port joins the switch); returns its index. */
  protected addOutput(name: string): number {
    this.outputs.push(name);
    this.out.push(new Link(this, this.outputs.length - 1, UNCONNECTED, 0, this.ctx.tracer));
    return this.outputs.length - 1;
  }

  protected addInput(name: string): number {
    this.inputs.push(name);
    return this.inputs.length - 1;
  }

  inputIndex(name: string): number {
    const i = this.inputs.indexOf(name);
    if (i < 0) throw new Error(`element ${this.name}: no input '${name}' (inputs: ${this.inputs.join(', ')})`);
    return i;
  }

  outputIndex(name: string): number {
    const i = this.outputs.indexOf(name);
    if (i < 0) throw new Error(`element ${this.name}: no output '${name}' (outputs: ${this.outputs.join(', ')})`);
    return i;
  }

  /** One line of configuration for `ctl graph`. */
  config(): string {
    return '';
  }

  /** Called every engine tick (100 ms) with the engine's clock. */
  tick?(now: number): void;

  /** Called after every RX batch and timer run, once the batch's frames are all handled. */
  endBatch?(): void;

  info(): ElementInfo {
    return { name: this.name, kind: this.kind, config: this.config(), inputs: [...this.inputs], outputs: [...this.outputs], counters: { ...this.counters } };
  }
}

/** Where unlinked outputs lead: counts `unconnected` and drops. */
class Unconnected extends Element {
  readonly kind = 'Unconnected';
  readonly drops = newCounters();
  push(): void {
    this.drops[DROP_BASE + DROP_UNCONNECTED]++;
  }
}

const NO_TRACE = new Tracer();
const UNCONNECTED: Element = new Unconnected('unconnected', { arena: null as unknown as Arena, u8: new Uint8Array(0), clock: makeClock(() => 0), tracer: NO_TRACE }, ['in'], []);

/** Point a link at nothing (frames pushed to it are counted as `unconnected`). */
export function disconnect(link: Link): void {
  link.to = UNCONNECTED;
  link.toInput = 0;
}

/** Frames pushed to unlinked outputs since start (any graph). */
export function unconnectedDrops(): number {
  return (UNCONNECTED as Unconnected).drops[DROP_BASE + DROP_UNCONNECTED];
}

/** An element with one input and one output that can be spliced into a link (captures, faults). */
export abstract class Wrapper extends Element {
  constructor(name: string, ctx: DataPlaneContext) {
    super(name, ctx, ['in'], ['out']);
  }
}
