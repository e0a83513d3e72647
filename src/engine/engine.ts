/*
 * The data-plane engine: owns the frame arena, the ports, the bridges and (when
 * configured) the router. It runs in the data-plane worker thread.
 *
 * Per RX batch (one native callback): stamp the clock once, push each frame through the
 * port's bridge (or the uplink stack), then flush every port that has queued frames —
 * all before returning, because the RX ring slots are reused by the next read.
 * A tick (every TICK_MS) ages the MAC tables and drives the other stages' timers.
 */
import { Arena } from './arena.js';
import { C_RX_BYTES, C_RX_PACKETS, DROP_BASE, DROP_ETH_TOO_LONG, snapshot, type CounterSnapshot } from './counters.js';
import { MAX_FRAME_LEN, SLOT_SIZE } from './frame.js';
import { Port, type FrameReceiver, type PortKind } from './port.js';
import { FaultScheduler, ingressHooked } from './hooks.js';
import { Bridge } from '../switch/bridge.js';
import { native } from '../io/native.js';
import { macToString, parseMac } from '../wire/mac.js';

export const RX_BUDGET = 64;
export const POOL_SLOTS = 512;
export const TICK_MS = 100;

/** A port as handed over by the control plane: the fd is already open. */
export interface PortSpec {
  name: string;
  kind: PortKind;
  bridge: string;
  fd: number;
  vnetHdr: boolean;
  ifname: string;
  mac: string;
}

export interface BridgeSpec {
  name: string;
  agingSeconds: number;
  macTableSize: number;
  macLimitPerPort: number;
  static: { mac: string; port: string }[];
}

export interface EngineSpec {
  bridges: BridgeSpec[];
  ports: PortSpec[];
}

/** Stages that hook into the engine (the router, captures) implement this. */
export interface EngineStage {
  tick(now: number): void;
}

export interface PortInfo {
  name: string;
  kind: PortKind;
  bridge: string | null;
  ifname: string;
  mac: string;
  up: boolean;
  offload: boolean;
  macs: number;
  counters: CounterSnapshot;
}

export interface BridgeInfo {
  name: string;
  ports: string[];
  macs: number;
  macTableSize: number;
  agingSeconds: number;
  forwarded: number;
  flooded: number;
  learned: number;
  moved: number;
  aged: number;
  learnRefused: number;
  learnRefusedPortLimit: number;
}

export interface FdbRow {
  bridge: string;
  mac: string;
  port: string;
  ageSeconds: number;
  type: 'static' | 'learned';
}

export type Clock = () => number;
export const monotonicMs: Clock = () => performance.now();

export class Engine {
  readonly arena: Arena;
  readonly ports: Port[] = [];
  readonly bridges: Bridge[] = [];
  readonly stages: EngineStage[] = [];
  now: number;
  private readonly portsByName = new Map<string, Port>();
  private tickTimer: NodeJS.Timeout | null = null;
  private lastSweep = 0;
  onFatal: (message: string) => void = () => {};
  readonly faults: FaultScheduler;
  /** Delivery function of each port (bridge or uplink stack), by port id. */
  private readonly deliverers: ((port: Port, off: number, len: number) => void)[] = [];

  constructor(
    spec: EngineSpec,
    readonly clock: Clock = monotonicMs,
    extraPorts = 4,
  ) {
    this.now = clock();
    this.faults = new FaultScheduler(
      this,
      (port, off, len) => this.deliverers[port.id](port, off, len),
      () => this.flush(),
    );
    const fdPorts = spec.ports.filter((p) => p.fd >= 0).length + extraPorts;
    this.arena = new Arena(fdPorts * RX_BUDGET, POOL_SLOTS);
    spec.bridges.forEach((b, i) => {
      this.bridges.push(
        new Bridge(i, this.arena.u8, {
          name: b.name,
          agingMs: b.agingSeconds * 1000,
          macTableSize: b.macTableSize,
          macLimitPerPort: b.macLimitPerPort,
          maxPorts: 64,
          clock: this,
        }),
      );
    });
    for (const p of spec.ports) this.addPort(p, null);
    spec.bridges.forEach((b, i) => {
      for (const s of b.static) {
        const port = this.portsByName.get(s.port);
        if (port === undefined) throw new Error(`static entry: no port '${s.port}'`);
        this.bridges[i].fdb.addStatic(parseMac(s.mac)!, port.bridgePort);
      }
    });
  }

  bridge(name: string): Bridge | undefined {
    return this.bridges.find((b) => b.name === name);
  }

  port(name: string): Port | undefined {
    return this.portsByName.get(name);
  }

  /** Create a port; `receiver` makes it an internal port (no fd). */
  addPort(spec: PortSpec, receiver: FrameReceiver | null): Port {
    if (this.portsByName.has(spec.name)) throw new Error(`port '${spec.name}' exists already`);
    const mac = parseMac(spec.mac);
    const port = new Port(this.ports.length, spec.name, spec.kind, this.arena, spec.fd, spec.vnetHdr, receiver, spec.ifname, mac ?? 0);
    port.clock = this;
    if (spec.bridge !== '') {
      const bridge = this.bridge(spec.bridge);
      if (bridge === undefined) throw new Error(`port '${spec.name}': no bridge '${spec.bridge}'`);
      bridge.attach(port);
    }
    this.ports.push(port);
    this.portsByName.set(spec.name, port);
    return port;
  }

  /** Start polling a port's fd; `deliver` handles each received frame. */
  startRx(port: Port, deliver: (port: Port, off: number, len: number) => void): void {
    this.deliverers[port.id] = deliver;
    port.ringSlots = RX_BUDGET;
    port.ringOffset = this.arena.reserveRing(RX_BUDGET);
    port.rxLengths = new Int32Array(RX_BUDGET);
    const ringOffset = port.ringOffset;
    const lengths = port.rxLengths;
    const counters = port.counters;
    const onBatch = (count: number): void => {
      this.now = this.clock();
      for (let i = 0; i < count; i++) {
        const len = lengths[i];
        counters[C_RX_PACKETS]++;
        counters[C_RX_BYTES] += len;
        if (len > MAX_FRAME_LEN) {
          counters[DROP_BASE + DROP_ETH_TOO_LONG]++;
          continue;
        }
        if (port.hooked) ingressHooked(port, ringOffset + i * SLOT_SIZE, len, this.now, deliver);
        else deliver(port, ringOffset + i * SLOT_SIZE, len);
      }
      this.flush();
      if (this.faults.hasStages) this.faults.arm();
    };
    const onError = (errno: number, message: string): void => {
      port.up = false;
      this.onFatal(`port ${port.name} (${port.ifname}): receive failed: ${message} (errno ${errno})`);
    };
    port.reader = new native.Reader(port.fd, port.fdKind, port.vnetHdr, this.arena.buffer, ringOffset, SLOT_SIZE, RX_BUDGET, RX_BUDGET, lengths, onBatch, onError);
    port.reader.start();
  }

  /** Default delivery: into the port's bridge. */
  readonly toBridge = (port: Port, off: number, len: number): void => {
    this.bridges[port.bridgeId].input(port, off, len);
  };

  start(): void {
    for (const p of this.ports) if (p.fd >= 0 && p.bridgeId >= 0 && p.reader === null) this.startRx(p, this.toBridge);
    this.tickTimer = setInterval(() => this.tick(), TICK_MS);
  }

  /** The function that handles frames received on `port` (bridge or uplink stack). */
  deliverer(port: Port): ((port: Port, off: number, len: number) => void) | undefined {
    return this.deliverers[port.id];
  }

  /** Re-read the clock (timers call this; RX batches stamp it themselves). */
  refreshClock(): number {
    return (this.now = this.clock());
  }

  flush(): void {
    const ports = this.ports;
    for (let i = 0; i < ports.length; i++) if (ports[i].txCount !== 0) ports[i].flush();
  }

  tick(): void {
    const now = (this.now = this.clock());
    if (now - this.lastSweep >= 1000) {
      this.lastSweep = now;
      for (const b of this.bridges) b.fdb.sweep(now);
    }
    for (const s of this.stages) s.tick(now);
    this.flush();
  }

  stop(): void {
    if (this.tickTimer !== null) clearInterval(this.tickTimer);
    this.faults.stop();
    this.tickTimer = null;
    for (const p of this.ports) {
      p.reader?.close();
      p.reader = null;
    }
  }

  /* ---- control-plane views (allocation is fine here) ---- */

  portInfo(): PortInfo[] {
    return this.ports.map((p) => ({
      name: p.name,
      kind: p.kind,
      bridge: p.bridgeId >= 0 ? this.bridges[p.bridgeId].name : null,
      ifname: p.ifname,
      mac: macToString(p.mac),
      up: p.up,
      offload: p.vnetHdr,
      macs: p.bridgeId >= 0 ? this.bridges[p.bridgeId].fdb.portCount(p.bridgePort) : 0,
      counters: snapshot(p.counters),
    }));
  }

  fdbRows(bridgeName?: string): FdbRow[] {
    const rows: FdbRow[] = [];
    for (const b of this.bridges) {
      if (bridgeName !== undefined && b.name !== bridgeName) continue;
      for (const e of b.fdb.entries(this.clock())) {
        rows.push({
          bridge: b.name,
          mac: macToString(e.mac),
          port: b.ports[e.port]?.name ?? `#${e.port}`,
          ageSeconds: Math.round(e.ageSeconds * 10) / 10,
          type: e.isStatic ? 'static' : 'learned',
        });
      }
    }
    return rows;
  }

  bridgeInfo(): BridgeInfo[] {
    return this.bridges.map((b) => ({
      name: b.name,
      ports: b.ports.map((p) => p.name),
      macs: b.fdb.size,
      macTableSize: b.fdb.capacity,
      agingSeconds: b.fdb.agingMs / 1000,
      forwarded: b.forwarded,
      flooded: b.flooded,
      learned: b.fdb.learned,
      moved: b.fdb.moved,
      aged: b.fdb.aged,
      learnRefused: b.fdb.learnRefused,
      learnRefusedPortLimit: b.fdb.learnRefusedPortLimit,
    }));
  }

  setPortUp(name: string, up: boolean): void {
    const p = this.portsByName.get(name);
    if (p === undefined) throw new Error(`no port '${name}'`);
    p.up = up;
    if (!up && p.bridgeId >= 0) this.bridges[p.bridgeId].fdb.flushPort(p.bridgePort);
    if (p.kind !== 'packet' && p.kind !== 'uplink' && p.fd >= 0) native.setTapCarrier(p.fd, up);
  }
}
