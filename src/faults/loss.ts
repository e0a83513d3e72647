/*
 * Loss models of a fault stage: Bernoulli (each frame lost with probability p) or
 * Gilbert-Elliott (a two-state Markov chain: p = P(good->bad), r = P(bad->good), with a loss
 * probability per state; mean bad burst = 1/r frames). Its own PRNG stream, so other faults
 * do not change which frames are lost.
 */
import type { Prng } from './prng.js';

export const LOSS_NONE = 0;
export const LOSS_BERNOULLI = 1;
export const LOSS_GE = 2;

export class LossModel {
  mode = LOSS_NONE;
  private p = 0;
  private geP = 0;
  private geR = 0;
  private lossGood = 0;
  private lossBad = 1;
  private bad = false;

  constructor(private readonly rng: Prng) {}

  bernoulli(p: number): void {
    if (this.mode !== LOSS_BERNOULLI) this.bad = false;
    this.mode = p > 0 ? LOSS_BERNOULLI : LOSS_NONE;
    this.p = p;
  }

  gilbertElliott(p: number, r: number, lossGood: number, lossBad: number): void {
    this.bad = false;
    this.mode = LOSS_GE;
    this.geP = p;
    this.geR = r;
    this.lossGood = lossGood;
    this.lossBad = lossBad;
  }

  off(): void {
    this.mode = LOSS_NONE;
  }

  /** Is this frame lost? */
  lose(): boolean {
    if (this.mode === LOSS_BERNOULLI) return this.rng.nextFloat() < this.p;
    if (this.mode !== LOSS_GE) return false;
    const pl = this.bad ? this.lossBad : this.lossGood;
    const lost = pl >= 1 || (pl > 0 && this.rng.nextFloat() < pl);
    if (this.bad) {
      if (this.rng.nextFloat() < this.geR) this.bad = false;
    } else if (this.rng.nextFloat() < this.geP) this.bad = true;
    return lost;
  }
}
