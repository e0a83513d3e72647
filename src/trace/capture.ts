/*
 * Capture element (tap/PORT/in, tap/PORT/out, tap/BRIDGE/PORT): spliced into a link, it
 * writes every frame that passes (and matches each capture's filter) to its captures'
 * writers (pcap.ts), then passes the frame on unchanged.
 *
 * Ports:  input `in`, output `out`.
 * Where:  port ingress: on the device's rx link, before ingress faults; port egress: on the
 *         link into the device, after egress faults; bridge: on every input link of the
 *         switch, after the ingress port's faults. Several captures at one place share one
 *         element (its `taps`); the element is removed with its last tap.
 * While a decision trace runs nothing is recorded. Cost when no capture runs: none (no
 * element on the link).
 */
import { Wrapper, type DataPlaneContext } from '../core/element.js';
import { VNET_HDR_LEN } from '../core/frame.js';
import type { PacketFilter } from './filter.js';
import { DIR_IN, DIR_OUT, type CaptureWriter } from './pcap.js';

/** One capture at one place. */
export class CaptureTap {
  constructor(
    readonly id: number,
    readonly writer: CaptureWriter,
    readonly filter: PacketFilter | null,
    /** pcapng interface index of this place inside the writer. */
    readonly ifIndex: number,
    /** pcapng comment id for this place's records, -1 for none. */
    readonly commentId: number,
  ) {}
}

export class CaptureElement extends Wrapper {
  readonly kind = 'Capture';
  /** Replaced, never edited in place: a push may be iterating the old array. */
  taps: CaptureTap[] = [];

  constructor(
    name: string,
    ctx: DataPlaneContext,
    readonly direction: 'ingress' | 'egress',
  ) {
    super(name, ctx);
  }

  override config(): string {
    return `${this.taps.length} capture(s): ${this.taps.map((t) => `#${t.id}`).join(', ')}`;
  }

  push(_input: number, off: number, len: number): void {
    if (!this.ctx.tracer.active) {
      const u8 = this.ctx.u8;
      const e = off + VNET_HDR_LEN;
      const now = this.ctx.clock.now;
      const dir = this.direction === 'ingress' ? DIR_IN : DIR_OUT;
      const taps = this.taps;
      for (let i = 0; i < taps.length; i++) {
        const t = taps[i];
        if (t.filter === null || t.filter.match(u8, e, len)) t.writer.write(t.ifIndex, u8, e, len, now, dir, t.commentId);
      }
    }
    this.out[0].push(off, len);
  }
}
