/*
 * Port hooks: captures and fault injection, wrapped around a port's ingress and egress.
 *
 * They cost nothing when off: a port without hooks never reaches this file (one boolean
 * test in the RX loop and in Port.output). With hooks:
 *   ingress: capture taps see the frame as received (before faults), then the fault
 *            stage decides: pass / drop (counted as fault_<kind>) / duplicate / hold in
 *            its timer queue (copied into a pool slot) until the release time;
 *   egress:  the fault stage decides first, capture taps see what is actually sent
 *            (after faults), then the frame is queued for transmission.
 * Frames shared with other ports (flooding) are copied before an egress fault corrupts
 * them. One engine timer (FaultScheduler) serves every fault queue: it is armed for the
 * earliest deadline, not once per packet.
 */
import type { CaptureWriter } from '../trace/pcap.js';
import type { PacketFilter } from '../trace/filter.js';
import { FaultStage, QUEUE, DUPLICATE, isDrop, DROP_LOSS, DROP_NTH, DROP_FILTER, DROP_RATE_QUEUE_FULL, DROP_DOWN } from '../faults/faults.js';
import { DROP_BASE, DROP_NO_POOL_SLOT, dropReason } from './counters.js';
import { VNET_HDR_LEN } from './frame.js';
import type { Port } from './port.js';
import { describeFrame } from '../trace/run-trace.js';

export const DIR_INGRESS = 1;
export const DIR_EGRESS = 2;

const FAULT_DROP_REASON: Record<number, number> = {
  [DROP_LOSS]: dropReason('fault_loss'),
  [DROP_NTH]: dropReason('fault_every_nth'),
  [DROP_FILTER]: dropReason('fault_filter'),
  [DROP_RATE_QUEUE_FULL]: dropReason('fault_rate_queue_full'),
  [DROP_DOWN]: dropReason('fault_link_down'),
};
const DROP_FAULT_QUEUE_FULL = dropReason('fault_queue_full');
const faultDropReason = new Int32Array(32);
for (const [k, v] of Object.entries(FAULT_DROP_REASON)) faultDropReason[Number(k)] = v;

/** One capture attached to a port or bridge. */
export class CaptureTap {
  constructor(
    readonly id: number,
    readonly writer: CaptureWriter,
    readonly filter: PacketFilter | null,
    /** DIR_INGRESS | DIR_EGRESS */
    readonly directions: number,
    /** pcapng interface index of this port inside the writer. */
    readonly ifIndex: number,
    /** Comment ids (pcapng) for ingress and egress records, -1 for none. */
    readonly commentIn: number,
    readonly commentOut: number,
  ) {}

  see(u8: Uint8Array, slotOff: number, len: number, nowMs: number, dir: number): void {
    const e = slotOff + VNET_HDR_LEN;
    if (this.filter !== null && !this.filter.match(u8, e, len)) return;
    this.writer.write(this.ifIndex, u8, e, len, nowMs, dir === DIR_INGRESS ? 0 : 1, dir === DIR_INGRESS ? this.commentIn : this.commentOut);
  }
}

/** Releases held frames of every fault stage when due, with one timer. */
export class FaultScheduler {
  private readonly stages: { port: Port; stage: FaultStage; dir: number }[] = [];
  private timer: NodeJS.Timeout | null = null;
  private armedFor = Infinity;
  private readonly outSlots = new Int32Array(1024);
  private readonly outLens = new Int32Array(1024);

  constructor(
    private readonly clock: { now: number; refreshClock(): number },
    private readonly deliverIngress: (port: Port, off: number, len: number) => void,
    private readonly flush: () => void,
  ) {}

  register(port: Port, stage: FaultStage, dir: number): void {
    if (!this.stages.some((s) => s.stage === stage)) this.stages.push({ port, stage, dir });
  }

  unregister(stage: FaultStage): void {
    const i = this.stages.findIndex((s) => s.stage === stage);
    if (i >= 0) this.stages.splice(i, 1);
  }

  get hasStages(): boolean {
    return this.stages.length !== 0;
  }

  /** Arm the timer for the earliest deadline (called after each batch when stages exist). */
  arm(): void {
    let next = Infinity;
    for (const s of this.stages) {
      const d = s.stage.nextDeadline();
      if (d < next) next = d;
    }
    if (next === Infinity || next >= this.armedFor) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.armedFor = next;
    this.timer = setTimeout(() => this.fire(), Math.max(0, next - this.clock.now));
  }

  private fire(): void {
    this.timer = null;
    this.armedFor = Infinity;
    const now = this.clock.refreshClock();
    const slots = this.outSlots;
    const lens = this.outLens;
    for (const s of this.stages) {
      let n: number;
      do {
        n = s.stage.poll(now, slots, lens);
        const arena = s.port.arena;
        for (let i = 0; i < n; i++) {
          if (s.dir === DIR_INGRESS) this.deliverIngress(s.port, slots[i], lens[i]);
          else egressFinal(s.port, slots[i], lens[i], now);
          arena.release(slots[i]);
        }
      } while (n === slots.length);
    }
    this.flush();
    this.arm();
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** Ingress with hooks: capture (before faults), then the fault stage. */
export function ingressHooked(port: Port, off: number, len: number, now: number, deliver: (port: Port, off: number, len: number) => void): void {
  const u8 = port.arena.u8;
  const taps = port.ingressTaps;
  for (let i = 0; i < taps.length; i++) taps[i].see(u8, off, len, now, DIR_INGRESS);
  const f = port.ingressFaults;
  if (f === null || (!f.active && f.queued === 0)) return deliver(port, off, len);
  const action = f.decide(u8, off + VNET_HDR_LEN, len, now);
  if (action === 0) return deliver(port, off, len);
  if (isDrop(action)) {
    port.counters[DROP_BASE + faultDropReason[action]]++;
    return;
  }
  if ((action & QUEUE) !== 0) return hold(port, f, off, len, (action & DUPLICATE) !== 0);
  // DUPLICATE now: deliver a copy too (delivery may rewrite the frame in place).
  const copy = port.arena.copyToPool(off, len, VNET_HDR_LEN);
  deliver(port, off, len);
  if (copy < 0) {
    port.counters[DROP_BASE + DROP_NO_POOL_SLOT]++;
    return;
  }
  deliver(port, copy, len);
  port.arena.release(copy);
}

/** Egress with hooks: the fault stage, then captures (after faults), then the TX queue. */
export function egressHooked(port: Port, off: number, len: number, now: number): void {
  if (port.dryRun !== null) {
    port.dryRun.outputs.push(`port ${port.name} (${port.ifname}): ${describeFrame(port.arena.u8, off, len)}`);
    return;
  }
  const f = port.egressFaults;
  if (f === null || (!f.active && f.queued === 0)) return egressFinal(port, off, len, now);
  const arena = port.arena;
  // The frame may be shared with other ports: copy it before it can be corrupted.
  let owned = -1;
  if (f.config.corrupt !== undefined) {
    owned = arena.copyToPool(off, len, VNET_HDR_LEN);
    if (owned < 0) {
      port.counters[DROP_BASE + DROP_NO_POOL_SLOT]++;
      return;
    }
    off = owned;
  }
  const action = f.decide(arena.u8, off + VNET_HDR_LEN, len, now);
  if (isDrop(action)) port.counters[DROP_BASE + faultDropReason[action]]++;
  else if ((action & QUEUE) !== 0) hold(port, f, off, len, (action & DUPLICATE) !== 0);
  else {
    egressFinal(port, off, len, now);
    if ((action & DUPLICATE) !== 0) egressFinal(port, off, len, now);
  }
  if (owned >= 0) arena.release(owned);
}

export function egressFinal(port: Port, off: number, len: number, now: number): void {
  const taps = port.egressTaps;
  const u8 = port.arena.u8;
  for (let i = 0; i < taps.length; i++) taps[i].see(u8, off, len, now, DIR_EGRESS);
  port.enqueue(off, len);
}

function hold(port: Port, f: FaultStage, off: number, len: number, twice: boolean): void {
  const arena = port.arena;
  for (let copies = twice ? 2 : 1; copies > 0; copies--) {
    let slot: number;
    if (arena.isPooled(off)) {
      arena.retain(off);
      slot = off;
    } else {
      slot = arena.copyToPool(off, len, VNET_HDR_LEN);
      if (slot < 0) {
        port.counters[DROP_BASE + DROP_NO_POOL_SLOT]++;
        return;
      }
    }
    if (!f.enqueue(slot, len, f.releaseTime)) {
      arena.release(slot);
      port.counters[DROP_BASE + DROP_FAULT_QUEUE_FULL]++;
    }
  }
}
