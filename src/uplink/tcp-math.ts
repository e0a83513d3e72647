/*
 * Pure TCP arithmetic of the socket uplink: sequence numbers modulo 2^32 (RFC 793 / RFC 1982
 * comparisons), the window tapbridge advertises from the host socket's free send space, and
 * the share of a segment that is new data. No state, no allocation: unit-tested on its own.
 */

/** a - b as a signed 32-bit distance (positive: a is after b). */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

export function seqLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

export function seqLeq(a: number, b: number): boolean {
  return ((a - b) | 0) <= 0;
}

export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

/** Window scale tapbridge offers (2^7: windows up to 8 MiB). */
export const OUR_WSCALE = 7;

/**
 * The 16-bit window field for `free` bytes of send space under shift `wscale`: rounded down,
 * at most 65535, 0 when full.
 */
export function windowField(free: number, wscale: number): number {
  if (free <= 0) return 0;
  const w = Math.floor(free / 2 ** wscale);
  return w > 0xffff ? 0xffff : w;
}

/**
 * Free send space of a host socket for the namespace's data: three quarters of SO_SNDBUF
 * (the rest is the kernel's own overhead per buffer) minus what is queued (SIOCOUTQ).
 */
export function sendSpace(sndbuf: number, outq: number): number {
  const usable = Math.floor((sndbuf * 3) / 4) - outq;
  return usable > 0 ? usable : 0;
}

/**
 * Of a segment at `seq` with `len` bytes, where the next byte expected is `rcvNxt`: the offset
 * of the first new byte (-1: nothing new, or a gap before it, so out of order).
 */
export function newDataOffset(seq: number, len: number, rcvNxt: number): number {
  const d = seqDiff(rcvNxt, seq);
  if (d < 0) return -1; // starts after a hole
  return d < len ? d : -1;
}

/** Retransmission timeout after `retries` timeouts: 200 ms doubling, capped at 60 s. */
export function rtoMs(retries: number): number {
  return Math.min(200 * 2 ** retries, 60_000);
}
