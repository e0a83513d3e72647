/*
 * A port of the data plane: one fd (TAP or AF_PACKET) with its RX ring in the arena and a
 * bounded TX queue, or an internal port (the gateway) whose "transmit" is a function call.
 *
 * Output path: `output(off, len)` queues a frame (slot offset, frame length) for the next
 * flush; a full queue drops and counts (tx_queue_full), never blocks. Pool slots are
 * retained while queued and released after the flush. Frames carrying offload metadata
 * (virtio NEEDS_CSUM / GSO) are fixed up for ports without offload: the checksum is
 * completed in software; GSO frames are dropped and counted (gso_to_non_offload_port).
 *
 * Counters: rx/tx packets and bytes, flooded, drops by reason (counters.ts).
 */
import type { Arena } from './arena.js';
import {
  C_TX_BYTES,
  C_TX_PACKETS,
  DROP_BASE,
  DROP_GSO_UNSUPPORTED,
  DROP_PORT_DOWN,
  DROP_TX_BUSY,
  DROP_TX_ERROR,
  DROP_TX_QUEUE_FULL,
  newCounters,
} from './counters.js';
import {
  VNET_CSUM_OFFSET,
  VNET_CSUM_START,
  VNET_F_NEEDS_CSUM,
  VNET_FLAGS,
  VNET_GSO_NONE,
  VNET_GSO_TYPE,
  VNET_HDR_LEN,
} from './frame.js';
import { FdKind, native, type NativeReader } from '../io/native.js';
import { finishChecksum, sum16 } from '../wire/checksum.js';
import type { FaultStage } from '../faults/faults.js';
import type { DecisionTrace } from '../trace/decision.js';
import { egressHooked, type CaptureTap } from './hooks.js';

export const PORT_NAMESPACE = 'namespace';
export const PORT_TAP = 'tap';
export const PORT_PACKET = 'packet';
export const PORT_INTERNAL = 'internal';
export type PortKind = 'namespace' | 'tap' | 'packet' | 'internal' | 'uplink';

/** Receives frames "transmitted" to an internal port (the gateway). */
export interface FrameReceiver {
  receive(from: Port, off: number, len: number): void;
}

export const TX_QUEUE_LEN = 1024;

export class Port {
  readonly counters = newCounters();
  /** Index of this port inside its bridge (-1 when not on a bridge). */
  bridgePort = -1;
  bridgeId = -1;
  up = true;
  reader: NativeReader | null = null;
  ringOffset = 0;
  ringSlots = 0;
  rxLengths: Int32Array = new Int32Array(0);

  readonly txOffsets = new Int32Array(TX_QUEUE_LEN);
  readonly txLengths = new Int32Array(TX_QUEUE_LEN);
  /** Frames queued for the next flush (the engine flushes ports with txCount > 0 after a batch). */
  txCount = 0;
  private readonly txStatus = new Int32Array(3);

  /* Hooks (captures, faults): `hooked` is the only test on the fast path. */
  hooked = false;
  ingressTaps: CaptureTap[] = [];
  egressTaps: CaptureTap[] = [];
  ingressFaults: FaultStage | null = null;
  egressFaults: FaultStage | null = null;
  /** Set while a decision trace runs: record instead of transmitting. */
  dryRun: DecisionTrace | null = null;
  /** The engine's clock (stamped per batch), for hooks. */
  clock: { now: number } = { now: 0 };

  updateHooked(): void {
    this.hooked = this.ingressTaps.length > 0 || this.egressTaps.length > 0 || this.ingressFaults !== null || this.egressFaults !== null;
  }

  constructor(
    readonly id: number,
    readonly name: string,
    readonly kind: PortKind,
    readonly arena: Arena,
    readonly fd: number,
    readonly vnetHdr: boolean,
    readonly receiver: FrameReceiver | null,
    readonly ifname: string,
    readonly mac: number,
  ) {}

  get fdKind(): FdKind {
    return this.kind === 'packet' || this.kind === 'uplink' ? FdKind.Packet : FdKind.Tap;
  }

  countDrop(reason: number): void {
    this.counters[DROP_BASE + reason]++;
  }

  /** Send a frame out of this port (hooks, then the TX queue; or the internal receiver). */
  output(off: number, len: number): void {
    if (this.receiver !== null) {
      this.counters[C_TX_PACKETS]++;
      this.counters[C_TX_BYTES] += len;
      this.receiver.receive(this, off, len);
      return;
    }
    if (this.hooked) egressHooked(this, off, len, this.clock.now);
    else this.enqueue(off, len);
  }

  /** Queue a frame for the next flush. */
  enqueue(off: number, len: number): void {
    if (!this.up) {
      this.counters[DROP_BASE + DROP_PORT_DOWN]++;
      return;
    }
    if (this.txCount === TX_QUEUE_LEN) {
      this.counters[DROP_BASE + DROP_TX_QUEUE_FULL]++;
      return;
    }
    const arena = this.arena;
    if (!this.vnetHdr && arena.u8[off + VNET_FLAGS] !== 0 && !this.completeOffloads(off, len)) return;
    if (off >= arena.poolBase) arena.retain(off);
    const n = this.txCount++;
    this.txOffsets[n] = off;
    this.txLengths[n] = len;
  }

  /** Software fallback for a frame with offload metadata going to a port without it. */
  private completeOffloads(off: number, len: number): boolean {
    const u8 = this.arena.u8;
    if (u8[off + VNET_GSO_TYPE] !== VNET_GSO_NONE) {
      this.counters[DROP_BASE + DROP_GSO_UNSUPPORTED]++;
      return false;
    }
    if ((u8[off + VNET_FLAGS] & VNET_F_NEEDS_CSUM) !== 0) {
      const start = u8[off + VNET_CSUM_START] | (u8[off + VNET_CSUM_START + 1] << 8);
      const at = start + (u8[off + VNET_CSUM_OFFSET] | (u8[off + VNET_CSUM_OFFSET + 1] << 8));
      const frame = off + VNET_HDR_LEN;
      if (at + 2 <= len) {
        const c = finishChecksum(sum16(u8, frame + start, len - start));
        u8[frame + at] = c >>> 8;
        u8[frame + at + 1] = c & 0xff;
      }
    }
    // Every queue shares these bytes: clear the metadata so no port sees a stale flag.
    u8.fill(0, off, off + VNET_HDR_LEN);
    return true;
  }

  /** Hand queued frames to the kernel; called by the engine once per batch. */
  flush(): void {
    const count = this.txCount;
    if (count === 0) return;
    const arena = this.arena;
    const status = this.txStatus;
    const sent = native.transmit(this.fd, this.fdKind, this.vnetHdr, arena.buffer, this.txOffsets, this.txLengths, count, status);
    const c = this.counters;
    let bytes = 0;
    for (let i = 0; i < count; i++) {
      bytes += this.txLengths[i];
      const off = this.txOffsets[i];
      if (off >= arena.poolBase) arena.release(off);
    }
    const errors = status[0];
    const busy = status[2];
    c[C_TX_PACKETS] += sent;
    if (errors === 0 && busy === 0) c[C_TX_BYTES] += bytes;
    else {
      // rare path: recount bytes of the frames that went out is not tracked per frame
      c[C_TX_BYTES] += (bytes * sent) / count;
      c[DROP_BASE + DROP_TX_ERROR] += errors;
      c[DROP_BASE + DROP_TX_BUSY] += busy;
    }
    this.txCount = 0;
  }
}
