/*
 * Fault element (fault/PORT/in, fault/PORT/out): a FaultStage (stage.ts) spliced into the
 * link of a port's ingress (device rx -> switch) or egress (switch -> device tx).
 *
 * Ports:  input `in`, output `out`. Frames pass, are dropped (counted on the port's record
 *         as fault_loss, fault_every_nth, fault_filter, fault_rate_queue_full,
 *         fault_link_down), duplicated, or held in the stage's delay line (copied into a
 *         pool slot, or the pool slot retained) and pushed to `out` when due: the engine's
 *         timer calls release() for the earliest deadline of all fault elements.
 * Egress frames may be shared with other ports (flooding): they are copied before the stage
 * can corrupt them. While a decision trace runs, or with no fault configured and nothing
 * held, frames pass untouched. A full delay line drops (fault_queue_full); no free slot
 * drops (no_frame_slot). The element holds at most half the frame pool (its own pool
 * account), so a delay on one port never takes the slots the gateway and the other ports need.
 */
import {
  DROP_FAULT_EVERY_NTH,
  DROP_FAULT_FILTER,
  DROP_FAULT_LINK_DOWN,
  DROP_FAULT_LOSS,
  DROP_FAULT_QUEUE_FULL,
  DROP_FAULT_RATE_QUEUE_FULL,
  DROP_NO_FRAME_SLOT,
} from '../core/drops.js';
import { Wrapper, type DataPlaneContext, type PortRecord } from '../core/element.js';
import { VNET_HDR_LEN } from '../core/frame.js';
import { describeSpec } from './describe.js';
import { DROP_DOWN, DROP_FILTER, DROP_LOSS, DROP_NTH, DROP_RATE_QUEUE_FULL, DUPLICATE, FaultStage, isDrop, QUEUE } from './stage.js';

/** Stage action -> registry drop code. */
const ACTION_DROP = new Int32Array(32);
ACTION_DROP[DROP_LOSS] = DROP_FAULT_LOSS;
ACTION_DROP[DROP_NTH] = DROP_FAULT_EVERY_NTH;
ACTION_DROP[DROP_FILTER] = DROP_FAULT_FILTER;
ACTION_DROP[DROP_RATE_QUEUE_FULL] = DROP_FAULT_RATE_QUEUE_FULL;
ACTION_DROP[DROP_DOWN] = DROP_FAULT_LINK_DOWN;

const RELEASE_BATCH = 1024;

export class FaultElement extends Wrapper {
  readonly kind = 'Fault';
  private readonly outSlots = new Int32Array(RELEASE_BATCH);
  private readonly outLens = new Int32Array(RELEASE_BATCH);

  /** Pool account of the frames this element holds or copies (its delay line's share of the pool). */
  private readonly account: number;

  constructor(
    name: string,
    ctx: DataPlaneContext,
    readonly stage: FaultStage,
    readonly record: PortRecord,
    readonly direction: 'ingress' | 'egress',
    poolShare = Math.floor(ctx.arena.poolSlots / 2),
  ) {
    super(name, ctx);
    this.account = ctx.arena.newAccount(name, poolShare);
  }

  override config(): string {
    return `${this.direction} of ${this.record.name}: ${describeSpec(this.stage.config)}`;
  }

  push(_input: number, off: number, len: number): void {
    const stage = this.stage;
    if (this.ctx.tracer.active || (!stage.active && stage.queued === 0)) return this.out[0].push(off, len);
    const arena = this.ctx.arena;
    // An egress frame may be shared with other ports: copy it before it can be corrupted.
    let owned = -1;
    if (this.direction === 'egress' && stage.config.corrupt !== undefined) {
      owned = arena.copyToPool(off, len, VNET_HDR_LEN, this.account);
      if (owned < 0) return this.record.countDrop(DROP_NO_FRAME_SLOT);
      off = owned;
    }
    const action = stage.decide(arena.u8, off + VNET_HDR_LEN, len, this.ctx.clock.now);
    if (isDrop(action)) this.record.countDrop(ACTION_DROP[action]);
    else if ((action & QUEUE) !== 0) this.hold(off, len, (action & DUPLICATE) !== 0);
    else if ((action & DUPLICATE) !== 0) this.duplicate(off, len);
    else this.out[0].push(off, len);
    if (owned >= 0) arena.release(owned);
  }

  /** Send the frame and a copy (delivery downstream may rewrite the frame in place). */
  private duplicate(off: number, len: number): void {
    const arena = this.ctx.arena;
    const copy = arena.copyToPool(off, len, VNET_HDR_LEN, this.account);
    this.out[0].push(off, len);
    if (copy < 0) return this.record.countDrop(DROP_NO_FRAME_SLOT);
    this.out[0].push(copy, len);
    arena.release(copy);
  }

  private hold(off: number, len: number, twice: boolean): void {
    const arena = this.ctx.arena;
    for (let copies = twice ? 2 : 1; copies > 0; copies--) {
      const slot = copies === 2 ? arena.copyToPool(off, len, VNET_HDR_LEN, this.account) : arena.hold(off, len, VNET_HDR_LEN, this.account);
      if (slot < 0) return this.record.countDrop(DROP_NO_FRAME_SLOT);
      if (!this.stage.enqueue(slot, len, this.stage.releaseTime)) {
        arena.release(slot);
        this.record.countDrop(DROP_FAULT_QUEUE_FULL);
      }
    }
  }

  /** Earliest release time of a held frame (Infinity: none). */
  nextDeadline(): number {
    return this.stage.nextDeadline();
  }

  /** Push every held frame that is due at `now`. */
  release(now: number): void {
    const arena = this.ctx.arena;
    let n: number;
    do {
      n = this.stage.poll(now, this.outSlots, this.outLens);
      for (let i = 0; i < n; i++) {
        this.out[0].push(this.outSlots[i], this.outLens[i]);
        arena.release(this.outSlots[i]);
      }
    } while (n === RELEASE_BATCH);
  }

  /** Free every held frame (the element is removed or the engine stops). */
  discardHeld(): void {
    const arena = this.ctx.arena;
    let n: number;
    do {
      n = this.stage.drainAll(this.outSlots, this.outLens);
      for (let i = 0; i < n; i++) arena.release(this.outSlots[i]);
    } while (n === RELEASE_BATCH);
  }
}
