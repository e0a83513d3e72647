/*
 * Big-endian field access on Uint8Array without DataView or allocation. Callers bounds-check
 * (the views' checkLen); out-of-range reads yield garbage (undefined -> 0), never throw.
 */

export function readU16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

export function readU32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

export function writeU16(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 8;
  b[o + 1] = v;
}

/** Lower-case hex of the bytes (control plane: keys, logs). */
export function bytesToHex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += (b[i] < 16 ? '0' : '') + b[i].toString(16);
  return s;
}

export function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}

/**
 * Copy n bytes from src[sOff] to dst[dOff] without a subarray view; overlapping ranges in
 * the same array are copied as if through a temporary (copyWithin).
 */
export function copyBytes(dst: Uint8Array, dOff: number, src: Uint8Array, sOff: number, n: number): void {
  if (dst === src) {
    dst.copyWithin(dOff, sOff, sOff + n);
    return;
  }
  for (let i = 0; i < n; i++) dst[dOff + i] = src[sOff + i];
}
