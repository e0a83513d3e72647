/*
 * Device element (dev/NAME): one fd, a TAP or an AF_PACKET socket, as a graph element.
 *
 * Ports:   output `rx`  every frame the kernel hands over (one native callback per batch of
 *                       up to RX_BUDGET frames, read into this device's RX ring in the arena);
 *          input  `tx`  frames to send: queued (bounded) and handed to the kernel in one
 *                       native call per batch by flush().
 * Config:  fd, kind (tap | packet), vnetHdr (IFF_VNET_HDR / PACKET_VNET_HDR offloads),
 *          the PortRecord it counts into (shared with the port's switch slot).
 * Counters (on the PortRecord): rx/tx packets and bytes; drops eth_too_long, port_down,
 *          tx_queue_full, gso_to_non_offload_port, tx_error, tx_busy.
 *
 * Ring slots are reused by the next read, so everything downstream of `rx` runs before the
 * batch callback returns; the engine flushes every device after each batch. A full TX queue
 * drops and counts, never blocks. Frames carrying offload metadata (virtio NEEDS_CSUM/GSO)
 * for a device without offloads get the checksum completed in software; GSO frames are
 * dropped and counted. While a decision trace runs, tx records the frame instead.
 */
import { C_RX_BYTES, C_RX_PACKETS, C_TX_BYTES, C_TX_PACKETS, DROP_BASE } from '../core/counters.js';
import {
  DROP_ETH_TOO_LONG,
  DROP_GSO_UNSUPPORTED,
  DROP_PORT_DOWN,
  DROP_TX_BUSY,
  DROP_TX_ERROR,
  DROP_TX_QUEUE_FULL,
} from '../core/drops.js';
import { slotOf } from '../core/anno.js';
import { Element, type DataPlaneContext, type PortRecord } from '../core/element.js';
import { MAX_FRAME_LEN, SLOT_SIZE, VNET_CSUM_OFFSET, VNET_CSUM_START, VNET_F_NEEDS_CSUM, VNET_FLAGS, VNET_GSO_NONE, VNET_GSO_TYPE, VNET_HDR_LEN } from '../core/frame.js';
import { finishChecksum, sum16 } from '../wire/checksum.js';
import { describeFrame } from '../wire/describe.js';
import { FdKind, native, type NativeReader } from './native.js';

export const RX_BUDGET = 64;
export const TX_QUEUE_LEN = 1024;

export interface DeviceParams {
  fd: number;
  kind: 'tap' | 'packet';
  vnetHdr: boolean;
  record: PortRecord;
}

export class DevicePort extends Element {
  readonly kind = 'Device';
  readonly fd: number;
  readonly fdKind: FdKind;
  readonly vnetHdr: boolean;
  readonly record: PortRecord;
  reader: NativeReader | null = null;
  ringOffset = 0;
  rxLengths: Int32Array = new Int32Array(0);

  readonly txOffsets = new Int32Array(TX_QUEUE_LEN);
  readonly txLengths = new Int32Array(TX_QUEUE_LEN);
  /** Frames queued for the next flush. */
  txCount = 0;
  private readonly txStatus = new Int32Array(3);
  private readonly counters32: Float64Array;

  constructor(name: string, ctx: DataPlaneContext, p: DeviceParams) {
    super(name, ctx, ['tx'], ['rx']);
    this.fd = p.fd;
    this.fdKind = p.kind === 'packet' ? FdKind.Packet : FdKind.Tap;
    this.vnetHdr = p.vnetHdr;
    this.record = p.record;
    this.counters32 = p.record.counters;
  }

  override config(): string {
    return `${this.fdKind === FdKind.Packet ? 'AF_PACKET' : 'TAP'} fd ${this.fd} ${this.record.ifname}${this.vnetHdr ? ', offload' : ''}`;
  }

  /** Start polling the fd; `afterBatch` runs once the batch's frames are all handled (the engine's flush). */
  startRx(afterBatch: () => void): void {
    const arena = this.ctx.arena;
    const clock = this.ctx.clock;
    this.ringOffset = arena.reserveRing(RX_BUDGET);
    for (let i = 0; i < RX_BUDGET; i++) arena.anno.port[slotOf(this.ringOffset + i * SLOT_SIZE)] = this.record.index;
    this.rxLengths = new Int32Array(RX_BUDGET);
    const ringOffset = this.ringOffset;
    const lengths = this.rxLengths;
    const counters = this.counters32;
    const rx = this.out[0];
    const onBatch = (count: number): void => {
      clock.refresh();
      for (let i = 0; i < count; i++) {
        const len = lengths[i];
        counters[C_RX_PACKETS]++;
        counters[C_RX_BYTES] += len;
        if (len > MAX_FRAME_LEN) {
          counters[DROP_BASE + DROP_ETH_TOO_LONG]++;
          continue;
        }
        rx.push(ringOffset + i * SLOT_SIZE, len);
      }
      afterBatch();
    };
    const onError = (errno: number, message: string): void => {
      this.record.up = false;
      this.onFatal(`port ${this.record.name} (${this.record.ifname}): receive failed: ${message} (errno ${errno})`);
    };
    this.reader = new native.Reader(this.fd, this.fdKind, this.vnetHdr, arena.buffer, ringOffset, SLOT_SIZE, RX_BUDGET, RX_BUDGET, lengths, onBatch, onError);
    this.reader.start();
  }

  /** Reports a dead fd (set by the engine). */
  onFatal: (message: string) => void = () => {};

  stopRx(): void {
    this.reader?.close();
    this.reader = null;
  }

  push(_input: number, off: number, len: number): void {
    if (this.ctx.tracer.active) return this.traceOutput(off, len);
    if (!this.record.up) {
      this.counters32[DROP_BASE + DROP_PORT_DOWN]++;
      return;
    }
    if (this.txCount === TX_QUEUE_LEN) {
      this.counters32[DROP_BASE + DROP_TX_QUEUE_FULL]++;
      return;
    }
    const arena = this.ctx.arena;
    if (!this.vnetHdr && arena.u8[off + VNET_FLAGS] !== 0 && !this.completeOffloads(off, len)) return;
    if (off >= arena.poolBase) arena.retain(off);
    const n = this.txCount++;
    this.txOffsets[n] = off;
    this.txLengths[n] = len;
  }

  /** A decision trace: record what would be sent (kept out of push so push stays small enough to inline). */
  private traceOutput(off: number, len: number): void {
    this.ctx.tracer.outputs.push(`port ${this.record.name} (${this.record.ifname}): ${describeFrame(this.ctx.u8, off + VNET_HDR_LEN, len)}`);
  }

  /** Software fallback for a frame with offload metadata going to a device without it. */
  private completeOffloads(off: number, len: number): boolean {
    const u8 = this.ctx.u8;
    if (u8[off + VNET_GSO_TYPE] !== VNET_GSO_NONE) {
      this.counters32[DROP_BASE + DROP_GSO_UNSUPPORTED]++;
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

  /** Hand queued frames to the kernel (the engine calls this after every batch). */
  flush(): void {
    const count = this.txCount;
    if (count === 0) return;
    const arena = this.ctx.arena;
    const status = this.txStatus;
    const sent = this.fd >= 0 ? native.transmit(this.fd, this.fdKind, this.vnetHdr, arena.buffer, this.txOffsets, this.txLengths, count, status) : count;
    const c = this.counters32;
    let bytes = 0;
    for (let i = 0; i < count; i++) {
      bytes += this.txLengths[i];
      const off = this.txOffsets[i];
      if (off >= arena.poolBase) arena.release(off);
    }
    const errors = this.fd >= 0 ? status[0] : 0;
    const busy = this.fd >= 0 ? status[2] : 0;
    c[C_TX_PACKETS] += sent;
    if (errors === 0 && busy === 0) c[C_TX_BYTES] += bytes;
    else {
      // rare path: bytes of the frames that went out are not tracked per frame
      c[C_TX_BYTES] += (bytes * sent) / count;
      c[DROP_BASE + DROP_TX_ERROR] += errors;
      c[DROP_BASE + DROP_TX_BUSY] += busy;
    }
    this.txCount = 0;
  }

  /** Frames queued now, copied out, and the queue emptied (tests of devices without an fd). */
  takeQueued(): Uint8Array[] {
    const out: Uint8Array[] = [];
    const arena = this.ctx.arena;
    for (let i = 0; i < this.txCount; i++) {
      const off = this.txOffsets[i] + VNET_HDR_LEN;
      out.push(arena.u8.slice(off, off + this.txLengths[i]));
      if (this.txOffsets[i] >= arena.poolBase) arena.release(this.txOffsets[i]);
    }
    this.txCount = 0;
    return out;
  }
}
