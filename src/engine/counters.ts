import { DROP_REASON_NAMES } from '../wire/drop.js';

/*
 * Counter layout shared by every port: a Float64Array per port with fixed indices for
 * traffic counters followed by one slot per drop reason. Reasons are registered once at
 * module load (below) so every stage counts into the same, named table; `snapshot` turns
 * it into a plain object for the control plane.
 */

export const C_RX_PACKETS = 0;
export const C_RX_BYTES = 1;
export const C_TX_PACKETS = 2;
export const C_TX_BYTES = 3;
export const C_FLOODED = 4; // frames this port received that were flooded
const TRAFFIC_NAMES = ['rx_packets', 'rx_bytes', 'tx_packets', 'tx_bytes', 'flooded'];
export const DROP_BASE = TRAFFIC_NAMES.length;

/* The wire layer's reasons come first, so a view's checkLen() code counts as is. */
const dropNames: string[] = ['', ...DROP_REASON_NAMES.slice(1)];
/** Register a drop reason; returns its code (>= 1). Call at module load only. */
export function dropReason(name: string): number {
  const existing = dropNames.indexOf(name);
  if (existing > 0) return existing;
  dropNames.push(name);
  return dropNames.length - 1;
}

/* Reasons of the switching path. Gateway/NAT/fault reasons register in their modules. */
export const DROP_ETH_TOO_SHORT = dropReason('eth_too_short');
export const DROP_ETH_TOO_LONG = dropReason('eth_too_long');
export const DROP_SRC_MAC_MULTICAST = dropReason('src_mac_multicast');
export const DROP_SAME_PORT = dropReason('same_port');
export const DROP_TX_QUEUE_FULL = dropReason('tx_queue_full');
export const DROP_TX_ERROR = dropReason('tx_error');
export const DROP_TX_BUSY = dropReason('tx_busy');
export const DROP_PORT_DOWN = dropReason('port_down');
export const DROP_GSO_UNSUPPORTED = dropReason('gso_to_non_offload_port');
export const DROP_NO_POOL_SLOT = dropReason('no_frame_slot');

/** Max reasons a counter array has room for (registered lazily, so leave headroom). */
export const MAX_DROP_REASONS = 128;
export const COUNTER_SLOTS = DROP_BASE + MAX_DROP_REASONS;

export function newCounters(): Float64Array {
  return new Float64Array(COUNTER_SLOTS);
}

export function dropName(code: number): string {
  return dropNames[code] ?? `reason_${code}`;
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
  for (let code = 1; code < dropNames.length; code++) {
    const v = c[DROP_BASE + code];
    if (v > 0) {
      drops[dropNames[code]] = v;
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
export { TRAFFIC_NAMES };
