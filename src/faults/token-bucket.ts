/*
 * Rate limit of a fault stage (tbf-like): a token bucket in bytes on the engine's ms clock.
 * A frame that does not fit waits behind the earlier ones (its departure time is returned);
 * when the bytes already waiting plus this frame exceed the queue limit it is refused.
 */
export class TokenBucket {
  on = false;
  private bytesPerMs = 0;
  private burst = 0;
  private queueLimit = 0;
  private tokens = 0;
  private tokensAt = -Infinity;
  private lastDeparture = -Infinity;

  /** bitsPerSecond 0 turns it off. A changed rate or burst starts with a full bucket. */
  configure(bitsPerSecond: number, burstBytes: number, queueLimitBytes: number): void {
    const bpms = bitsPerSecond / 8 / 1000;
    if (bpms > 0 && (!this.on || bpms !== this.bytesPerMs || burstBytes !== this.burst)) {
      this.tokens = burstBytes;
      this.tokensAt = -Infinity; // first frame: bucket full
      this.lastDeparture = -Infinity;
    }
    this.on = bpms > 0;
    this.bytesPerMs = bpms;
    this.burst = burstBytes;
    this.queueLimit = queueLimitBytes;
  }

  /** Departure time (ms) of `bytes` arriving at nowMs, or -1 when the backlog is over the limit. */
  admit(bytes: number, nowMs: number): number {
    const bpms = this.bytesPerMs;
    const t0 = nowMs > this.lastDeparture ? nowMs : this.lastDeparture;
    let tok = this.tokensAt === -Infinity ? this.burst : this.tokens + (t0 - this.tokensAt) * bpms;
    if (tok > this.burst) tok = this.burst;
    let depart = t0;
    if (tok < bytes) depart = t0 + (bytes - tok) / bpms;
    if (depart > nowMs && (t0 - nowMs) * bpms + bytes > this.queueLimit) return -1;
    if (tok >= bytes) {
      this.tokens = tok - bytes;
      this.tokensAt = t0;
    } else {
      this.tokens = 0;
      this.tokensAt = depart;
    }
    this.lastDeparture = depart;
    return depart;
  }
}

/** Defaults of a rate fault: burst = max(3028 B, 10 ms of rate), queue limit = max(128 KiB, 100 ms of rate). */
export function defaultBurst(bitsPerSecond: number): number {
  return Math.max(3028, (bitsPerSecond / 8 / 1000) * 10);
}
export function defaultQueueLimit(bitsPerSecond: number): number {
  return Math.max(131072, (bitsPerSecond / 8 / 1000) * 100);
}
