/*
 * Port counters: one Float64Array per port, fixed indices for the traffic counters followed
 * by one slot per drop reason of the registry (drops.ts). Elements count into the array of
 * the port a frame is attributed to (the ingress port for the switch and the router, the
 * egress port for transmit drops); `snapshot` turns it into a plain object for the control
 * plane.
 */
import { DROP_REASONS, dropName } from './drops.js';

export const C_RX_PACKETS = 0;
export const C_RX_BYTES = 1;
export const C_TX_PACKETS = 2;
export const C_TX_BYTES = 3;
export const C_FLOODED = 4; // frames this port received that were flooded
export const TRAFFIC_NAMES = ['rx_packets', 'rx_bytes', 'tx_packets', 'tx_bytes', 'flooded'];
export const DROP_BASE = TRAFFIC_NAMES.length;
export const COUNTER_SLOTS = DROP_BASE + DROP_REASONS;

export function newCounters(): Float64Array {
  return new Float64Array(COUNTER_SLOTS);
}

export interface CounterSnapshot {
  rx_packets: number;
  rx_bytes: number;
  tx_packets: number;
  tx_bytes: number;
  flooded: number;
  drops: Record<string, number>;
  dropped: number;
}

export function snapshot(c: Float64Array): CounterSnapshot {
  const drops: Record<string, number> = {};
  let dropped = 0;
  for (let code = 1; code < DROP_REASONS; code++) {
    const v = c[DROP_BASE + code];
    if (v > 0) {
      drops[dropName(code)] = v;
      dropped += v;
    }
  }
  return {
    rx_packets: c[C_RX_PACKETS],
    rx_bytes: c[C_RX_BYTES],
    tx_packets: c[C_TX_PACKETS],
    tx_bytes: c[C_TX_BYTES],
    flooded: c[C_FLOODED],
    drops,
    dropped,
  };
}

/** Sum of every drop counter. */
export function totalDrops(c: Float64Array): number {
  let n = 0;
  for (let i = DROP_BASE; i < COUNTER_SLOTS; i++) n += c[i];
  return n;
}
