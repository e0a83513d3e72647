/*
 * tapbridge port counters through the control socket (`tapbridge ctl --json ports`), and the
 * difference between two snapshots: which drop reasons rose on which port during a measurement.
 */
import type { TapbridgeInstance } from './tapbridge.js';

export interface PortCounters {
  name: string;
  counters: { rx_packets: number; tx_packets: number; drops: Record<string, number> };
}

export async function portCounters(tb: TapbridgeInstance): Promise<PortCounters[]> {
  return (await tb.ctl(['ports'])) as PortCounters[];
}

/** port -> reason -> increase, only non-zero increases. */
export function portDropsDelta(before: PortCounters[], after: PortCounters[]): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const a of after) {
    const b = before.find((p) => p.name === a.name);
    for (const [reason, v] of Object.entries(a.counters.drops)) {
      const d = v - (b?.counters.drops[reason] ?? 0);
      if (d > 0) (out[a.name] ??= {})[reason] = d;
    }
  }
  return out;
}

/** port -> {rx, tx} packet increases. */
export function portTrafficDelta(before: PortCounters[], after: PortCounters[]): Record<string, { rx: number; tx: number }> {
  const out: Record<string, { rx: number; tx: number }> = {};
  for (const a of after) {
    const b = before.find((p) => p.name === a.name);
    out[a.name] = { rx: a.counters.rx_packets - (b?.counters.rx_packets ?? 0), tx: a.counters.tx_packets - (b?.counters.tx_packets ?? 0) };
  }
  return out;
}
