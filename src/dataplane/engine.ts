/*
 * The data-plane engine: owns the frame arena, the element graph built from the spec, and
 * the clock; runs in the data-plane worker thread.
 *
 * Per RX batch (one native callback on one device): the device stamps the clock and pushes
 * each frame through its `rx` link; when the batch is done, the engine lets elements finish
 * the batch (endBatch: what they send then leaves with the rest), flushes every device with
 * queued frames and re-arms the one timer of the delay lines, all before the callback
 * returns, because the RX ring slots are reused by the next read. A batch of host-socket
 * events (the socket uplink) ends the same way. A tick (every TICK_MS) ages tables, expires flows and drives the other
 * periodic work (tick hooks).
 */
import { ACCOUNT_CONTROL, Arena } from '../core/arena.js';
import { snapshot } from '../core/counters.js';
import { makeClock, PortRecord, Tracer, type DataPlaneContext, type Element } from '../core/element.js';
import { Graph } from '../core/graph.js';
import { GatewayInterface } from '../gateway/interface.js';
import { GatewayInterface6 } from '../gateway/interface6.js';
import { DevicePort, RX_BUDGET } from '../io/device.js';
import { native } from '../io/native.js';
import { Switch } from '../switch/switch.js';
import { SocketUplink } from '../uplink/socket-uplink.js';
import { macToString, parseMac } from '../wire/mac.js';
import { parseIp4 } from '../wire/ip4.js';
import { parseCidrIp6, parseIp6 } from '../wire/ip6.js';
import { PortSecurity } from '../switch/security.js';
import { buildShared, factories, MAX_PORTS, NEIGHBOUR_QUEUE_SLOTS_PER_PORT, type SharedState } from './build.js';
import type { BridgeInfo, FdbRow, PortInfo } from './messages.js';
import { devName, planGraph, SOCKET_UPLINK_NAME, switchName } from './plan.js';
import { gatewayPortName, UPLINK_PORT, type DataPlaneSpec, type PortSpec } from './spec.js';

export const POOL_SLOTS = 512;
/** Rank of the port-security element on a port's ingress link: after the port's faults, before a bridge capture (faults.ts has the others). */
export const RANK_SECURITY = 25;
export const TICK_MS = 100;
/** RX rings kept free for ports added at runtime. */
export const SPARE_RINGS = 4;

/** An element whose frames wait for a time (fault delay lines). */
export interface TimedElement extends Element {
  nextDeadline(): number;
  release(now: number): void;
}

export class Engine {
  readonly arena: Arena;
  readonly ctx: DataPlaneContext;
  readonly graph = new Graph();
  readonly shared: SharedState;
  readonly devices: DevicePort[] = [];
  readonly switches: Switch[] = [];
  readonly gateways: GatewayInterface[] = [];
  readonly gateways6: GatewayInterface6[] = [];
  /** Called on every tick after the elements (captures, drained faults, MTU following). */
  readonly tickHooks: ((now: number) => void)[] = [];
  /** Called first when the engine stops (e.g. captures complete their files). */
  readonly stopHooks: (() => void)[] = [];
  onFatal: (message: string) => void = () => {};
  private readonly timed = new Set<TimedElement>();
  private timer: NodeJS.Timeout | null = null;
  private armedFor = Infinity;
  private tickTimer: NodeJS.Timeout | null = null;
  private tickers: Element[] = [];
  private batchEnders: Element[] = [];
  private readonly afterBatch = (): void => this.endBatch();

  constructor(
    readonly spec: DataPlaneSpec,
    clock: () => number = () => performance.now(),
  ) {
    const devicePorts = spec.ports.length + (spec.uplink !== undefined ? 1 : 0);
    this.arena = new Arena((devicePorts + (spec.runtimePorts ?? SPARE_RINGS)) * RX_BUDGET, POOL_SLOTS);
    this.ctx = { arena: this.arena, u8: this.arena.u8, clock: makeClock(clock), tracer: new Tracer() };
    this.shared = buildShared(spec, this.ctx);
    this.graph.build(planGraph(spec), factories(spec, this.ctx, this.shared));
    for (const e of this.graph.elements) {
      if (e instanceof DevicePort) this.devices.push(e);
      else if (e instanceof Switch) this.switches.push(e);
      else if (e instanceof GatewayInterface) this.gateways.push(e);
      else if (e instanceof GatewayInterface6) this.gateways6.push(e);
    }
    for (const b of spec.bridges) {
      const sw = this.switchOf(b.name)!;
      if (b.gateway !== undefined) sw.fdb.addStatic(parseMac(b.gateway.mac)!, sw.portIndex(gatewayPortName(b.name)));
      for (const s of b.static) {
        const i = sw.portIndex(s.port);
        if (i < 0) throw new Error(`static entry: no port '${s.port}' on bridge ${b.name}`);
        sw.fdb.addStatic(parseMac(s.mac)!, i);
      }
    }
    this.secure(spec);
    this.refreshElementLists();
    if (spec.uplink !== undefined && spec.uplink.fd >= 0) this.followMtu(spec.uplink.ifname);
  }

  /** Port security: an element on each secured port's ingress link; its switch keeps the port's MACs there. */
  private secure(spec: DataPlaneSpec): void {
    for (const p of spec.ports) this.securePort(spec, p);
  }

  private securePort(spec: DataPlaneSpec, p: PortSpec): void {
    {
      if (p.security === undefined) return;
      const dev = this.device(p.name)!;
      const el = new PortSecurity(`security/${p.name}`, this.ctx, {
        record: dev.record,
        macs: p.security.macs.map((m) => parseMac(m)!),
        learn: p.security.learn,
        ipv4: p.security.ipv4.map((a) => parseIp4(a)!),
        ipv6: (p.security.ipv6 ?? []).map((a) => parseIp6(a)!),
        prefixes6: slaacPrefixes(spec, p.bridge),
      });
      this.graph.wrap(dev, 0, el, RANK_SECURITY);
      const sw = this.switchOf(p.bridge);
      sw?.lockPort(sw.portIndex(p.name));
    }
  }

  /* ------------------------------------------------------------ ports at runtime */

  /**
   * Add a device port to a running bridge (between batches): a record at a free index, its
   * device element, both links to a switch slot, port security; the RX ring comes from the
   * arena's spare rings. Nothing else in the graph changes, so other ports see no gap.
   */
  addPort(p: PortSpec): PortRecord {
    const sw = this.switchOf(p.bridge);
    if (sw === undefined) throw new Error(`no bridge named '${p.bridge}'`);
    if (this.shared.records.has(p.name)) throw new Error(`a port named '${p.name}' exists already`);
    const mac = parseMac(p.mac);
    if (mac === null) throw new Error(`port ${p.name}: bad MAC ${p.mac}`);
    if (p.fd >= 0 && this.arena.ringsLeft(RX_BUDGET) === 0) throw new Error(`no RX ring left for another port (runtimePorts in the config sets how many ports can be added at runtime)`);
    const used = new Set([...this.shared.records.values()].map((r) => r.index));
    let index = 0;
    while (used.has(index)) index++;
    if (index >= MAX_PORTS) throw new Error(`at most ${MAX_PORTS} ports`);
    const record = new PortRecord(p.name, p.kind, p.ifname, mac, p.vnetHdr, p.bridge);
    record.index = index;
    record.isolated = p.isolated === true;
    const accounts = this.shared.neighbourAccounts;
    if (accounts[index] === ACCOUNT_CONTROL) accounts[index] = this.arena.newAccount(`neighbour-queue/${p.name}`, NEIGHBOUR_QUEUE_SLOTS_PER_PORT);
    else this.arena.renameAccount(accounts[index], `neighbour-queue/${p.name}`);
    this.shared.records.set(p.name, record);
    const dev = new DevicePort(devName(p.name), this.ctx, { fd: p.fd, kind: p.kind === 'packet' ? 'packet' : 'tap', vnetHdr: p.vnetHdr, record });
    this.graph.add(dev);
    const slot = sw.attach(record);
    this.graph.connect(dev, 0, sw, slot);
    this.graph.connect(sw, slot, dev, 0);
    this.devices.push(dev);
    this.spec.ports.push(p);
    this.securePort(this.spec, p);
    this.refreshElementLists();
    if (this.tickTimer !== null && dev.fd >= 0) {
      dev.onFatal = (m) => this.onFatal(m);
      dev.startRx(this.afterBatch);
    }
    return record;
  }

  /** Take a device port out (between batches): stop reading, unlink, free its switch slot, ring and index. The fd stays the caller's. */
  removePort(name: string): void {
    const dev = this.device(name);
    const record = this.shared.records.get(name);
    if (dev === undefined || record === undefined || record.bridge === null) throw new Error(`no device port named '${name}'`);
    if (dev.txCount !== 0) dev.flush();
    const hadRing = dev.reader !== null || dev.rxLengths.length > 0;
    dev.stopRx();
    if (hadRing) this.arena.releaseRing(dev.ringOffset, RX_BUDGET);
    const sw = this.switchOf(record.bridge);
    const slot = sw?.portIndex(name) ?? -1;
    this.graph.remove(dev.name);
    if (sw !== undefined && slot >= 0) sw.detach(slot);
    this.devices.splice(this.devices.indexOf(dev), 1);
    this.shared.records.delete(name);
    const i = this.spec.ports.findIndex((x) => x.name === name);
    if (i >= 0) this.spec.ports.splice(i, 1);
    record.up = false;
    this.refreshElementLists();
  }

  /** The uplink's MTU follows its NIC (PMTU experiments lower it at runtime), checked once a second. */
  private followMtu(ifname: string): void {
    const iface = this.shared.ifaces.byName(UPLINK_PORT)!;
    let last = 0;
    this.tickHooks.push((now) => {
      if (now - last < 1000) return;
      last = now;
      try {
        iface.mtu = native.ifInfo(ifname).mtu;
      } catch {
        /* interface gone: the reader reports it */
      }
    });
  }

  get now(): number {
    return this.ctx.clock.now;
  }

  get nat() {
    return this.shared.nat;
  }

  get nat6() {
    return this.shared.nat6;
  }

  /** The conntrack tables, IPv4 first. */
  get nats() {
    return [this.shared.nat, this.shared.nat6].filter((n) => n !== null);
  }

  switchOf(bridge: string): Switch | undefined {
    return this.graph.element(switchName(bridge)) as Switch | undefined;
  }

  record(port: string): PortRecord | undefined {
    return this.shared.records.get(port);
  }

  device(port: string): DevicePort | undefined {
    return this.devices.find((d) => d.record.name === port);
  }

  /** Recompute which elements tick and finish batches (after the graph changed). */
  refreshElementLists(): void {
    this.tickers = this.graph.elements.filter((e) => e.tick !== undefined);
    this.batchEnders = this.graph.elements.filter((e) => e.endBatch !== undefined);
  }

  start(): void {
    for (const d of this.devices) {
      if (d.fd < 0 || d.reader !== null) continue;
      d.onFatal = (m) => this.onFatal(m);
      d.startRx(this.afterBatch);
    }
    // Socket batches end like RX batches: the devices flush what the sockets produced.
    this.socketUplink?.start(this.afterBatch);
    this.tickTimer = setInterval(() => this.tick(), TICK_MS);
    for (const g of this.gateways) g.announce();
    for (const g of this.gateways6) g.announce();
    this.endBatch();
  }

  /**
   * After a batch: let elements finish (the socket uplink sends its coalesced ACKs here), then
   * hand every queued frame to the kernel, then re-arm the delay timer.
   */
  endBatch(): void {
    const enders = this.batchEnders;
    for (let i = 0; i < enders.length; i++) enders[i].endBatch!();
    const devs = this.devices;
    for (let i = 0; i < devs.length; i++) if (devs[i].txCount !== 0) devs[i].flush();
    if (this.timed.size !== 0) this.armTimer();
  }

  tick(): void {
    const now = this.ctx.clock.refresh();
    for (const e of this.tickers) e.tick!(now);
    for (const h of this.tickHooks) h(now);
    this.endBatch();
  }

  /* ------------------------------------------------------------ delay timers */

  addTimed(e: TimedElement): void {
    this.timed.add(e);
  }

  removeTimed(e: TimedElement): void {
    this.timed.delete(e);
  }

  /** One timer for the earliest deadline of every delay line (not one per packet). */
  private armTimer(): void {
    let next = Infinity;
    for (const e of this.timed) {
      const d = e.nextDeadline();
      if (d < next) next = d;
    }
    if (next === Infinity || next >= this.armedFor) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.armedFor = next;
    this.timer = setTimeout(() => this.fireTimer(), Math.max(0, next - this.ctx.clock.now));
  }

  private fireTimer(): void {
    this.timer = null;
    this.armedFor = Infinity;
    const now = this.ctx.clock.refresh();
    for (const e of this.timed) e.release(now);
    this.endBatch();
  }

  stop(): void {
    for (const h of this.stopHooks) h();
    if (this.tickTimer !== null) clearInterval(this.tickTimer);
    if (this.timer !== null) clearTimeout(this.timer);
    this.tickTimer = null;
    this.timer = null;
    for (const d of this.devices) d.stopRx();
    this.socketUplink?.stop();
  }

  /** The socket uplink element, when the uplink is host sockets. */
  get socketUplink(): SocketUplink | undefined {
    const e = this.graph.element(SOCKET_UPLINK_NAME);
    return e instanceof SocketUplink ? e : undefined;
  }

  /* ---- control-plane views (allocation is fine here) ---- */

  portInfo(): PortInfo[] {
    return [...this.shared.records.values()].map((r) => {
      const sw = r.bridge !== null ? this.switchOf(r.bridge) : undefined;
      const i = sw?.portIndex(r.name) ?? -1;
      return {
        name: r.name,
        kind: r.kind,
        bridge: r.bridge,
        ifname: r.ifname,
        mac: macToString(r.mac),
        up: r.up,
        offload: r.offload,
        macs: sw !== undefined && i >= 0 ? sw.fdb.portCount(i) : 0,
        counters: snapshot(r.counters),
      };
    });
  }

  fdbRows(bridgeName?: string): FdbRow[] {
    const rows: FdbRow[] = [];
    const now = this.ctx.clock.refresh();
    for (const sw of this.switches) {
      const bridge = sw.name.slice('switch/'.length);
      if (bridgeName !== undefined && bridge !== bridgeName) continue;
      for (const e of sw.fdb.entries(now)) {
        rows.push({
          bridge,
          mac: macToString(e.mac),
          port: sw.ports[e.port]?.name ?? `#${e.port}`,
          ageSeconds: Math.round(e.ageSeconds * 10) / 10,
          type: e.isStatic ? 'static' : 'learned',
        });
      }
    }
    return rows;
  }

  bridgeInfo(): BridgeInfo[] {
    return this.switches.map((sw) => ({
      name: sw.name.slice('switch/'.length),
      ports: sw.ports.filter((p) => p.bridge !== null).map((p) => p.name),
      macs: sw.fdb.size,
      macTableSize: sw.fdb.capacity,
      agingSeconds: sw.fdb.agingMs / 1000,
      forwarded: sw.counters.forwarded,
      flooded: sw.counters.flooded,
      learned: sw.fdb.learned,
      moved: sw.fdb.moved,
      aged: sw.fdb.aged,
      learnRefused: sw.fdb.learnRefused,
      learnRefusedPortLimit: sw.fdb.learnRefusedPortLimit,
      macLimitPerPort: sw.fdb.perPortLimit,
      evicted: sw.fdb.evicted,
      moveRefused: sw.fdb.moveRefused,
    }));
  }

  /** Port up or down in the data plane, and the TAP's carrier with it; false when the carrier could not change (no CAP_NET_ADMIN). */
  setPortUp(name: string, up: boolean): boolean {
    const r = this.shared.records.get(name);
    if (r === undefined) throw new Error(`no port '${name}'`);
    r.up = up;
    if (!up && r.bridge !== null) {
      const sw = this.switchOf(r.bridge);
      const i = sw?.portIndex(name) ?? -1;
      if (sw !== undefined && i >= 0) sw.portDown(i);
    }
    const d = this.device(name);
    if (d === undefined || d.fd < 0 || r.kind === 'packet' || r.kind === 'uplink') return true;
    try {
      native.setTapCarrier(d.fd, up);
      return true;
    } catch (err) {
      // Without CAP_NET_ADMIN (tapbridge run --user) the carrier stays; the port is down in the data plane all the same.
      if (/EPERM|not permitted/i.test((err as Error).message)) return false;
      throw err;
    }
  }
}

/** The /64 a bridge advertises, whose SLAAC addresses its secured ports may use. */
function slaacPrefixes(spec: DataPlaneSpec, bridge: string): Uint32Array[] {
  const a = spec.bridges.find((b) => b.name === bridge)?.gateway?.address6;
  const c = a === undefined ? null : parseCidrIp6(a);
  return c !== null && c.prefixLen === 64 ? [c.addr] : [];
}
