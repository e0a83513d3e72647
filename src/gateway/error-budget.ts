/*
 * Rate limit for the errors the gateway generates (ICMP errors and TCP resets), shared by
 * every element that sends one: a token bucket of 1000 per second with a burst of 50, on the
 * engine's clock. A decision trace spends no tokens.
 */
import type { DataPlaneContext } from '../core/element.js';

export class ErrorBudget {
  private tokens = 50;
  private last = 0;
  limited = 0;

  constructor(
    private readonly ctx: DataPlaneContext,
    readonly perSecond = 1000,
    readonly burst = 50,
  ) {}

  /** May one more error go out now? */
  take(): boolean {
    if (this.ctx.tracer.active) return true;
    const now = this.ctx.clock.now;
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.perSecond) / 1000);
    this.last = now;
    if (this.tokens < 1) {
      this.limited++;
      return false;
    }
    this.tokens--;
    return true;
  }
}
