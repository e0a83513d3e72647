/*
 * Switch element (switch/BRIDGE): the L2 learning switch of one bridge.
 *
 * Ports:   one input and one output per bridge port, with the port's name (a device, or the
 *          bridge's gateway `gw-BRIDGE`). A frame from input i learns its source MAC on port
 *          i; known unicast goes to the one output the MAC was learned on; broadcast,
 *          multicast and unknown unicast are flooded to every other port that is up, never
 *          back out of port i. A bridge only knows its own ports: bridges are isolated.
 *          Isolated ports (PortRecord.isolated, Docker's icc=false, the Linux bridge's
 *          `isolated on`) reach non-isolated ports (the gateway) but never each other.
 *          On a bridge with a gateway, ARP and NDP from any other port that claim one of
 *          the gateway's addresses are dropped (GatewayGuard, gateway-guard.ts).
 * Config:  agingSeconds, macTableSize, macLimitPerPort, whenFull, static entries (MacTable, fdb.ts).
 * Counters: on the ingress port's record: eth_too_short, src_mac_multicast, src_mac_zero,
 *          mac_move_refused (the MAC belongs to a locked port), gateway_claimed, port_isolated, same_port
 *          (destination lives on the ingress port: filtered), flooded; element counters
 *          forwarded and flooded; on the table: learned, moved, aged, learn refusals.
 *
 * The fast path reads MACs straight from the arena as numbers; no allocation per frame.
 * While a decision trace runs the switch does not learn.
 */
import { C_FLOODED, DROP_BASE } from '../core/counters.js';
import { DROP_GATEWAY_CLAIMED, DROP_MAC_MOVE_REFUSED, DROP_PORT_ISOLATED, DROP_SAME_PORT, DROP_SRC_MAC_MULTICAST, DROP_SRC_MAC_ZERO } from '../core/drops.js';
import { Element, PortRecord, type DataPlaneContext } from '../core/element.js';
import { VNET_HDR_LEN } from '../core/frame.js';
import { ETH_HEADER_LEN } from '../wire/ethernet.js';
import { DROP_ETH_TOO_SHORT } from '../wire/drop.js';
import { macToString } from '../wire/mac.js';
import { LEARN_MOVE_REFUSED, MacTable, type WhenFull } from './fdb.js';
import type { GatewayGuard } from './gateway-guard.js';

const TWO_POW_32 = 4294967296;
/** Most ports one bridge can have (sizes the per-port MAC counters). */
export const MAX_BRIDGE_PORTS = 1024;

/** The placeholder of a port slot freed at runtime: down, so never flooded to. */
const FREE_SLOT = (() => {
  const r = new PortRecord('(free)', 'internal', '', 0, false, null);
  r.up = false;
  return r;
})();

export interface SwitchParams {
  agingSeconds: number;
  macTableSize: number;
  macLimitPerPort: number;
  whenFull?: WhenFull;
  ports: PortRecord[];
  /** The gateway's addresses, which only `gatewayPort` may claim. */
  guard?: GatewayGuard;
  gatewayPort?: string;
}

export class Switch extends Element {
  readonly kind = 'Switch';
  readonly fdb: MacTable;
  readonly ports: PortRecord[] = [];
  override counters = { forwarded: 0, flooded: 0 };
  private lastSweep = 0;
  private readonly guard: GatewayGuard | null;
  private readonly gatewayPort: string | undefined;
  /** Input index of the gateway's port (exempt from the guard), -1 without one. */
  private gatewayInput = -1;

  constructor(name: string, ctx: DataPlaneContext, p: SwitchParams) {
    super(name, ctx, [], []);
    this.fdb = new MacTable({ capacity: p.macTableSize, agingMs: p.agingSeconds * 1000, perPortLimit: p.macLimitPerPort, maxPorts: MAX_BRIDGE_PORTS, whenFull: p.whenFull });
    this.guard = p.guard !== undefined && !p.guard.empty ? p.guard : null;
    this.gatewayPort = p.gatewayPort;
    for (const port of p.ports) this.attach(port);
  }

  /** Add a port (an input and an output named after it; a slot freed by detach() is reused); returns its index. */
  attach(port: PortRecord): number {
    const free = this.ports.indexOf(FREE_SLOT);
    if (free >= 0) {
      this.ports[free] = port;
      this.inputs[free] = port.name;
      this.outputs[free] = port.name;
      return free;
    }
    if (this.ports.length >= MAX_BRIDGE_PORTS) throw new RangeError(`bridge ${this.name}: at most ${MAX_BRIDGE_PORTS} ports`);
    this.ports.push(port);
    if (port.name === this.gatewayPort) this.gatewayInput = this.ports.length - 1;
    this.addInput(port.name);
    return this.addOutput(port.name);
  }

  /**
   * A port leaves at runtime: its slot becomes a down placeholder (flooding skips it, no MAC
   * points at it), so the other ports keep their indices, their MAC entries and their links.
   */
  detach(index: number): void {
    this.fdb.releasePort(index);
    this.ports[index] = FREE_SLOT;
    this.inputs[index] = `(free ${index})`;
    this.outputs[index] = `(free ${index})`;
  }

  /** Index of a port by name, or -1. */
  portIndex(name: string): number {
    return this.ports.findIndex((p) => p.name === name);
  }

  override config(): string {
    return `aging ${this.fdb.agingMs / 1000}s, table ${this.fdb.capacity}${this.fdb.perPortLimit > 0 ? `, ${this.fdb.perPortLimit}/port` : ''}`;
  }

  push(input: number, off: number, len: number): void {
    const inPort = this.ports[input];
    if (len < ETH_HEADER_LEN) {
      inPort.counters[DROP_BASE + DROP_ETH_TOO_SHORT]++;
      return;
    }
    const b = this.ctx.u8;
    const e = off + VNET_HDR_LEN;
    if ((b[e + 6] & 1) !== 0) {
      inPort.counters[DROP_BASE + DROP_SRC_MAC_MULTICAST]++;
      return;
    }
    const now = this.ctx.clock.now;
    const tracer = this.ctx.tracer;
    const src = ((b[e + 6] << 8) | b[e + 7]) * TWO_POW_32 + (((b[e + 8] << 24) | (b[e + 9] << 16) | (b[e + 10] << 8) | b[e + 11]) >>> 0);
    if (src === 0) {
      inPort.counters[DROP_BASE + DROP_SRC_MAC_ZERO]++;
      return;
    }
    if (this.guard !== null && input !== this.gatewayInput && this.guard.claims(b, e, len)) {
      if (tracer.active) tracer.note(this.name, `${inPort.name} claims an address of the gateway (ARP/NDP): dropped`);
      inPort.counters[DROP_BASE + DROP_GATEWAY_CLAIMED]++;
      return;
    }
    if (!tracer.active && this.fdb.learn(src, input, now) === LEARN_MOVE_REFUSED) {
      inPort.counters[DROP_BASE + DROP_MAC_MOVE_REFUSED]++;
      return;
    }

    if ((b[e] & 1) === 0) {
      const dst = ((b[e] << 8) | b[e + 1]) * TWO_POW_32 + (((b[e + 2] << 24) | (b[e + 3] << 16) | (b[e + 4] << 8) | b[e + 5]) >>> 0);
      const out = this.fdb.lookup(dst, now);
      if (tracer.active) this.traceLookup(input, src, dst, out);
      if (out >= 0) {
        if (out === input) {
          inPort.counters[DROP_BASE + DROP_SAME_PORT]++;
          return;
        }
        if (inPort.isolated && this.ports[out].isolated) {
          inPort.counters[DROP_BASE + DROP_PORT_ISOLATED]++;
          return;
        }
        this.counters.forwarded++;
        this.out[out].push(off, len);
        return;
      }
    } else if (tracer.active) this.traceLookup(input, src, -1, -2);
    this.flood(input, off, len);
  }

  /** Trace note of a lookup (out -2: a multicast destination). */
  private traceLookup(input: number, src: number, dst: number, out: number): void {
    const inPort = this.ports[input];
    const learnt = `src ${macToString(src)} on ${inPort.name}${this.fdb.lookup(src, this.ctx.clock.now) === input ? '' : ' (would be learned)'}`;
    if (out === -2) return this.ctx.tracer.note(this.name, `${learnt}; dst is broadcast/multicast: flood`);
    const where = out < 0 ? 'unknown: flood to every other port' : out === input ? `on the ingress port ${inPort.name}: filtered (same_port)` : `known on port ${this.ports[out].name}`;
    this.ctx.tracer.note(this.name, `${learnt}; dst ${macToString(dst)} ${where}`);
  }

  private flood(input: number, off: number, len: number): void {
    this.counters.flooded++;
    this.ports[input].counters[C_FLOODED]++;
    const ports = this.ports;
    const isolated = ports[input].isolated;
    for (let i = 0; i < ports.length; i++) if (i !== input && ports[i].up && !(isolated && ports[i].isolated)) this.out[i].push(off, len);
  }

  /** Age the table (the engine's tick, once a second). */
  override tick(now: number): void {
    if (now - this.lastSweep < 1000) return;
    this.lastSweep = now;
    this.fdb.sweep(now);
  }

  /** Keep the MACs learned on port `index` there (port security). */
  lockPort(index: number): void {
    this.fdb.lockPort(index);
  }

  /** A port went down: forget what was learned on it. */
  portDown(index: number): void {
    this.fdb.flushPort(index);
  }
}
