/*
 * A data plane without devices for unit tests: an Engine built from a DataPlaneSpec whose
 * ports have no fd (fd -1), so nothing touches the kernel. Frames are injected as if a
 * port's device had received them (through its rx link, with every element and wrapper of
 * the real graph on the way), and what devices would transmit is taken from their TX queues.
 */
import assert from 'node:assert/strict';
import { DROP_BASE } from '../../src/core/counters.js';
import { DROP_REASONS, dropName } from '../../src/core/drops.js';
import { slotOf } from '../../src/core/anno.js';
import { SLOT_SIZE, VNET_HDR_LEN } from '../../src/core/frame.js';
import { RX_BUDGET } from '../../src/io/device.js';
import { Engine } from '../../src/dataplane/engine.js';
import type { BridgeSpec, DataPlaneSpec, PortSpec } from '../../src/dataplane/spec.js';

export interface Sent {
  port: string;
  bytes: Buffer;
}

export function bridgeSpec(name: string, over: Partial<BridgeSpec> = {}): BridgeSpec {
  return { name, agingSeconds: 300, macTableSize: 64, macLimitPerPort: 0, static: [], ...over };
}

let macSeq = 0x10;
export function portSpec(name: string, bridge: string, over: Partial<PortSpec> = {}): PortSpec {
  const m = (macSeq++).toString(16).padStart(2, '0');
  return { name, kind: 'tap', bridge, fd: -1, vnetHdr: true, ifname: `tbu-${name}`, mac: `02:00:00:00:01:${m}`, addresses: [], ...over };
}

export class TestPlane {
  readonly engine: Engine;
  readonly clock = { t: 1000 };

  constructor(spec: Partial<DataPlaneSpec> & Pick<DataPlaneSpec, 'bridges' | 'ports'>) {
    this.engine = new Engine({ routes: [], ...spec }, () => this.clock.t);
  }

  /** Switch layout: bridge name -> port names (tap ports without fds). */
  static switches(layout: Record<string, string[]>, bridge: Partial<BridgeSpec> = {}): TestPlane {
    return new TestPlane({
      bridges: Object.keys(layout).map((b) => bridgeSpec(b, bridge)),
      ports: Object.entries(layout).flatMap(([b, ports]) => ports.map((p) => portSpec(p, b))),
    });
  }

  /** Put bytes in a pool slot (0xa5 around them) and push them out of `port`'s device rx at time `now`. */
  inject(port: string, bytes: Uint8Array, now = this.clock.t, mutate?: (b: Uint8Array, e: number) => void): void {
    const dev = this.engine.device(port);
    assert.ok(dev, `no device port ${port}`);
    const arena = this.engine.arena;
    const slot = arena.alloc();
    assert.ok(slot >= 0, 'arena exhausted');
    arena.u8.fill(0xa5, slot, slot + VNET_HDR_LEN + bytes.length + 64);
    arena.u8.fill(0, slot, slot + VNET_HDR_LEN);
    arena.u8.set(bytes, slot + VNET_HDR_LEN);
    mutate?.(arena.u8, slot + VNET_HDR_LEN);
    arena.anno.port[slotOf(slot)] = dev.record.index; // as a slot of the device's RX ring would be
    this.clock.t = now;
    this.engine.ctx.clock.refresh();
    dev.out[0].push(slot, bytes.length);
    arena.release(slot);
  }

  /** Run every element's tick at the current test time, without flushing the TX queues (so they can be read). */
  tickElements(): void {
    const now = this.engine.ctx.clock.refresh();
    for (const e of this.engine.graph.elements) e.tick?.(now);
  }

  private readonly rings = new Map<string, { off: number; next: number }>();

  /**
   * Like inject, but the frame sits in a slot of an RX ring (reserved for the device on first
   * use, slots taken round robin), as the native reader hands it over: whoever keeps it must
   * copy it into a pool slot of an account. Take or flush before 64 frames are in flight.
   */
  injectRx(port: string, bytes: Uint8Array, now = this.clock.t): void {
    const dev = this.engine.device(port)!;
    const arena = this.engine.arena;
    let ring = this.rings.get(port);
    if (ring === undefined) {
      ring = { off: arena.reserveRing(RX_BUDGET), next: 0 };
      this.rings.set(port, ring);
    }
    const slot = ring.off + (ring.next++ % RX_BUDGET) * SLOT_SIZE;
    arena.u8.fill(0, slot, slot + VNET_HDR_LEN);
    arena.u8.set(bytes, slot + VNET_HDR_LEN);
    arena.anno.port[slotOf(slot)] = dev.record.index;
    this.clock.t = now;
    this.engine.ctx.clock.refresh();
    dev.out[0].push(slot, bytes.length);
  }

  /** Frames queued on every device since the last take, in port order; then the queues are flushed (tx counters). */
  take(): Sent[] {
    const out: Sent[] = [];
    for (const d of this.engine.devices) {
      const n = d.txCount;
      for (let i = 0; i < n; i++) {
        const off = d.txOffsets[i] + VNET_HDR_LEN;
        out.push({ port: d.record.name, bytes: Buffer.from(this.engine.arena.u8.subarray(off, off + d.txLengths[i])) });
      }
    }
    this.engine.endBatch();
    return out;
  }

  /** Frames queued on one device (then its queue is emptied without counting). */
  sent(port: string): Buffer[] {
    return this.engine.device(port)!.takeQueued().map((b) => Buffer.from(b));
  }

  drops(port: string): Record<string, number> {
    const c = this.engine.record(port)!.counters;
    const r: Record<string, number> = {};
    for (let i = 1; i < DROP_REASONS; i++) if (c[DROP_BASE + i] > 0) r[dropName(i)] = c[DROP_BASE + i];
    return r;
  }

  counter(port: string, index: number): number {
    return this.engine.record(port)!.counters[index];
  }
}

export const names = (recs: Sent[]) => recs.map((r) => r.port).sort();
