/*
 * Live statistics (main thread): samples the data plane's counters once a second for rates
 * (RateTracker), and assembles one snapshot for `ctl stats`, `top` and /metrics: ports and
 * bridges with counters and rates (last ~5 s and last ~1 s), MAC-table sizes, frame pool,
 * faults with their counters, captures, router counters (IPv4 and IPv6), neighbour-cache
 * sizes (ARP and IPv6 NDP) and conntrack sizes.
 * Conntrack comes from the data plane's `conntrack` method ({size, max, ...}; called with
 * limit 1) when NAT is configured; without it `conntrack` is null (looked up again every 30 s).
 */
import type { DataPlaneWorker } from './dataplane-client.js';
import { CallError } from './dataplane-client.js';
import type { BridgeInfo, PortInfo } from '../dataplane/messages.js';
import type { FaultRow } from '../dataplane/faults.js';
import type { CaptureInfo } from '../dataplane/captures.js';
import { RateTracker, type BridgeRates, type CounterSample, type PortRates } from './rates.js';

export const SAMPLE_MS = 1000;
export const RATE_WINDOW_MS = 5000;

/** A bridge as GET /v1/bridges answers it (the engine's BridgeInfo; the event counters may be absent). */
export type BridgeInfoView = Pick<BridgeInfo, 'name' | 'ports' | 'macs' | 'macTableSize' | 'agingSeconds' | 'forwarded' | 'flooded'> &
  Partial<BridgeInfo>;

export interface LiveStats {
  time: string;
  rateWindowSeconds: number;
  ports: (PortInfo & { rates: PortRates; rates1s: PortRates })[];
  bridges: (BridgeInfoView & { rates: BridgeRates })[];
  pool: { free: number; total: number; reserve?: number; accounts?: { name: string; used: number; limit: number; peak: number; refused: number }[] };
  faults: FaultRow[];
  captures: CaptureInfo[];
  router: Record<string, unknown> | null;
  /** ARP entries (null: not answered). */
  neighbors: number | null;
  /** IPv6 neighbour (NDP) entries; absent or null: not answered (a data plane without `neigh`). */
  neighbors6?: number | null;
  /** Busy poll counters and the data-plane thread's tid. */
  poll?: { micros: number; spins: number; spinFrames: number; spinMicros: number; thread: number };
  conntrack: { flows: number; max?: number } | null;
}

const NO_PORT_RATES: PortRates = { rx_pps: 0, rx_bps: 0, tx_pps: 0, tx_bps: 0, drop_pps: 0 };

/** Pull a flow count out of whatever the NAT's `conntrack` method answers. */
export function conntrackSize(v: unknown): { flows: number; max?: number } | null {
  if (Array.isArray(v)) return { flows: v.length };
  if (typeof v === 'number') return { flows: v };
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const max = typeof o.maxFlows === 'number' ? o.maxFlows : typeof o.max === 'number' ? o.max : undefined;
    const keys = ['size', 'flows', 'count', 'entries', 'active'];
    for (const k of keys) if (typeof o[k] === 'number') return { flows: o[k] as number, ...(max !== undefined ? { max } : {}) };
    for (const k of keys) if (Array.isArray(o[k])) return { flows: (o[k] as unknown[]).length, ...(max !== undefined ? { max } : {}) };
  }
  return null;
}

export class LiveStatsSource {
  readonly rates = new RateTracker();
  private timer: NodeJS.Timeout | null = null;
  private conntrackMissingUntil = 0;

  constructor(private readonly dp: DataPlaneWorker) {}

  start(): void {
    if (this.timer !== null) return;
    void this.sample();
    this.timer = setInterval(() => void this.sample(), SAMPLE_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private async sample(): Promise<void> {
    try {
      this.rates.add((await this.dp.call('stats_sample', {}, 2000)) as CounterSample);
    } catch {
      /* data plane busy or stopping: skip this sample */
    }
  }

  private async optional(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    try {
      return await this.dp.call(method, params, 2000);
    } catch (err) {
      if (err instanceof CallError && err.status === 404) return undefined;
      throw err;
    }
  }

  private async conntrack(): Promise<{ flows: number; max?: number } | null> {
    if (Date.now() < this.conntrackMissingUntil) return null;
    // the NAT's `conntrack` lists flows: ask for one, only the size matters here
    const w = await this.optional('conntrack', { limit: 1 }).catch(() => undefined);
    if (w === undefined) {
      this.conntrackMissingUntil = Date.now() + 30_000;
      return null;
    }
    return conntrackSize(w);
  }

  async collect(): Promise<LiveStats> {
    const base = (await this.dp.call('experiment_stats')) as {
      t: number;
      ports: PortInfo[];
      bridges: BridgeInfoView[];
      pool: LiveStats['pool'];
      poll: LiveStats['poll'];
      faults: FaultRow[];
      captures: CaptureInfo[];
    };
    const [router, arp, neigh, conntrack] = await Promise.all([
      this.optional('router').catch(() => null),
      this.optional('arp').catch(() => null),
      this.optional('neigh').catch(() => null),
      this.conntrack(),
    ]);
    const r5 = this.rates.rates(RATE_WINDOW_MS);
    const r1 = this.rates.rates(SAMPLE_MS);
    return {
      time: new Date(base.t).toISOString(),
      rateWindowSeconds: r5.windowSeconds,
      ports: base.ports.map((p) => ({ ...p, rates: r5.ports[p.name] ?? { ...NO_PORT_RATES }, rates1s: r1.ports[p.name] ?? { ...NO_PORT_RATES } })),
      bridges: base.bridges.map((b) => ({ ...b, rates: r5.bridges[b.name] ?? { forwarded_pps: 0, flooded_pps: 0 } })),
      pool: base.pool,
      poll: base.poll,
      faults: base.faults,
      captures: base.captures,
      router: router !== null && typeof router === 'object' ? (router as Record<string, unknown>) : null,
      neighbors: Array.isArray(arp) ? arp.length : null,
      neighbors6: Array.isArray(neigh) ? neigh.length : null,
      conntrack,
    };
  }
}
