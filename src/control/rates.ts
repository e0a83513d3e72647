/*
 * Rates from counter samples (main thread): the control plane samples the data plane's
 * counters once a second (stats_sample) and keeps the last few samples; a rate is the
 * counter difference between the newest sample and the one about `windowMs` older.
 * Pure logic, no timers (the sampler in routes.ts drives it).
 */

/** stats_sample answer: [name, rxPackets, rxBytes, txPackets, txBytes, drops] per port. */
export interface CounterSample {
  t: number;
  ports: [string, number, number, number, number, number][];
  bridges: [string, number, number][];
}

export interface PortRates {
  rx_pps: number;
  rx_bps: number;
  tx_pps: number;
  tx_bps: number;
  drop_pps: number;
}

export interface BridgeRates {
  forwarded_pps: number;
  flooded_pps: number;
}

export interface RateView {
  /** Seconds actually covered (0 until two samples exist). */
  windowSeconds: number;
  ports: Record<string, PortRates>;
  bridges: Record<string, BridgeRates>;
}

const ZERO_PORT: PortRates = { rx_pps: 0, rx_bps: 0, tx_pps: 0, tx_bps: 0, drop_pps: 0 };

export class RateTracker {
  private readonly samples: CounterSample[] = [];

  constructor(private readonly keepMs = 6500) {}

  add(s: CounterSample): void {
    const last = this.samples[this.samples.length - 1];
    if (last !== undefined && s.t <= last.t) return;
    this.samples.push(s);
    while (this.samples.length > 2 && s.t - this.samples[1].t >= this.keepMs) this.samples.shift();
  }

  get size(): number {
    return this.samples.length;
  }

  /** Rates over about `windowMs` (the oldest sample at most windowMs + 500 ms back). */
  rates(windowMs: number): RateView {
    const n = this.samples.length;
    const out: RateView = { windowSeconds: 0, ports: {}, bridges: {} };
    if (n === 0) return out;
    const newest = this.samples[n - 1];
    let base = newest;
    for (let i = n - 2; i >= 0; i--) {
      if (newest.t - this.samples[i].t > windowMs + 500) break;
      base = this.samples[i];
    }
    const dt = (newest.t - base.t) / 1000;
    out.windowSeconds = Math.round(dt * 10) / 10;
    const old = new Map(base.ports.map((p) => [p[0], p]));
    for (const p of newest.ports) {
      const o = old.get(p[0]);
      if (dt <= 0 || o === undefined) {
        out.ports[p[0]] = { ...ZERO_PORT };
        continue;
      }
      out.ports[p[0]] = {
        rx_pps: round((p[1] - o[1]) / dt),
        rx_bps: round(((p[2] - o[2]) * 8) / dt),
        tx_pps: round((p[3] - o[3]) / dt),
        tx_bps: round(((p[4] - o[4]) * 8) / dt),
        drop_pps: round((p[5] - o[5]) / dt),
      };
    }
    const oldB = new Map(base.bridges.map((b) => [b[0], b]));
    for (const b of newest.bridges) {
      const o = oldB.get(b[0]);
      out.bridges[b[0]] = dt <= 0 || o === undefined ? { forwarded_pps: 0, flooded_pps: 0 } : { forwarded_pps: round((b[1] - o[1]) / dt), flooded_pps: round((b[2] - o[2]) / dt) };
    }
    return out;
  }
}

function round(v: number): number {
  return v < 0 ? 0 : Math.round(v * 10) / 10;
}
