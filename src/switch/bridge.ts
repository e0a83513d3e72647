/*
 * Bridge: the L2 learning switch stage.
 *
 * Input:  input(inPort, off, len) — a frame received on one of the bridge's ports.
 * Output: ports[i].output(off, len) — known unicast to one port; broadcast, multicast and
 *         unknown unicast flooded to every other port that is up, never back out of the
 *         ingress port. Each bridge is isolated: it only knows its own ports.
 * Config: agingSeconds, macTableSize, macLimitPerPort, static entries.
 * Counters (on the ingress port): eth_too_short, src_mac_multicast, same_port (destination
 *         lives on the ingress port: filtered), flooded; on the table: learned, moved, aged,
 *         learn refusals.
 *
 * The fast path reads MACs straight from the arena as numbers; no allocation per frame.
 */
import type { Port } from '../engine/port.js';
import { MacTable } from './fdb.js';
import { C_FLOODED, DROP_BASE, DROP_ETH_TOO_SHORT, DROP_SAME_PORT, DROP_SRC_MAC_MULTICAST } from '../engine/counters.js';
import { VNET_HDR_LEN } from '../engine/frame.js';
import { DIR_INGRESS, type CaptureTap } from '../engine/hooks.js';
import type { TraceHolder } from '../trace/decision.js';
import { macToString } from '../wire/mac.js';

const TWO_POW_32 = 4294967296;
const ETH_HEADER_LEN = 14;

export interface BridgeOptions {
  name: string;
  agingMs: number;
  macTableSize: number;
  macLimitPerPort: number;
  maxPorts: number;
  /** The engine's clock, stamped once per batch. Read here, not passed per frame: a
   *  double argument to a call that is not inlined is boxed, i.e. allocated, per packet. */
  clock?: { now: number };
}

export class Bridge {
  readonly name: string;
  readonly fdb: MacTable;
  readonly ports: Port[] = [];
  forwarded = 0;
  flooded = 0;
  /** Bridge-wide captures: every frame entering the switch, from any port (gateway included). */
  taps: CaptureTap[] = [];
  /** Decision tracing (ctl trace); null `current` when off. */
  trace: TraceHolder | null = null;
  clock: { now: number };
  private readonly u8: Uint8Array;

  constructor(
    readonly id: number,
    u8: Uint8Array,
    opts: BridgeOptions,
  ) {
    this.name = opts.name;
    this.u8 = u8;
    this.clock = opts.clock ?? { now: 0 };
    this.fdb = new MacTable({
      capacity: opts.macTableSize,
      agingMs: opts.agingMs,
      perPortLimit: opts.macLimitPerPort,
      maxPorts: opts.maxPorts,
    });
  }

  attach(port: Port): number {
    port.bridgePort = this.ports.length;
    port.bridgeId = this.id;
    this.ports.push(port);
    return port.bridgePort;
  }

  /** Switch one frame (the time comes from `clock`, injectable in tests). */
  input(inPort: Port, off: number, len: number): void {
    const now = this.clock.now;
    if (len < ETH_HEADER_LEN) {
      inPort.counters[DROP_BASE + DROP_ETH_TOO_SHORT]++;
      return;
    }
    const b = this.u8;
    if (this.taps.length !== 0) for (const t of this.taps) t.see(b, off, len, now, DIR_INGRESS);
    const e = off + VNET_HDR_LEN;
    if ((b[e + 6] & 1) !== 0) {
      inPort.counters[DROP_BASE + DROP_SRC_MAC_MULTICAST]++;
      return;
    }
    const src = ((b[e + 6] << 8) | b[e + 7]) * TWO_POW_32 + (((b[e + 8] << 24) | (b[e + 9] << 16) | (b[e + 10] << 8) | b[e + 11]) >>> 0);
    this.fdb.learn(src, inPort.bridgePort, now);

    if ((b[e] & 1) === 0) {
      const dst = ((b[e] << 8) | b[e + 1]) * TWO_POW_32 + (((b[e + 2] << 24) | (b[e + 3] << 16) | (b[e + 4] << 8) | b[e + 5]) >>> 0);
      const out = this.fdb.lookup(dst, now);
      if (this.trace?.current) this.traceLookup(inPort, src, dst, out);
      if (out >= 0) {
        if (out === inPort.bridgePort) {
          inPort.counters[DROP_BASE + DROP_SAME_PORT]++;
          return;
        }
        this.forwarded++;
        this.ports[out].output(off, len);
        return;
      }
    } else if (this.trace?.current) this.trace.current.note(`switch ${this.name}`, `src ${macToString(src)} on ${inPort.name}; dst is broadcast/multicast: flood`);
    this.flood(inPort, off, len);
  }

  private traceLookup(inPort: Port, src: number, dst: number, out: number): void {
    const where = out < 0 ? 'unknown: flood to every other port' : out === inPort.bridgePort ? `on the ingress port ${inPort.name}: filtered (same_port)` : `known on port ${this.ports[out].name}`;
    this.trace!.current!.note(`switch ${this.name}`, `src ${macToString(src)} learned on ${inPort.name}; dst ${macToString(dst)} ${where}`);
  }

  flood(inPort: Port, off: number, len: number): void {
    this.flooded++;
    inPort.counters[C_FLOODED]++;
    const ports = this.ports;
    for (let i = 0; i < ports.length; i++) {
      const p = ports[i];
      if (p !== inPort && p.up) p.output(off, len);
    }
  }
}
