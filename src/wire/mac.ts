/*
 * MAC addresses as plain numbers: hi16 * 2^32 + lo32 (exact in a double), so the fast path
 * compares and hashes them without strings. Strings only for config, logs and tests.
 */

const TWO32 = 0x100000000;

export const BROADCAST_MAC = 0xffffffffffff;

export function readMac(buf: Uint8Array, off: number): number {
  return (
    ((buf[off] << 8) | buf[off + 1]) * TWO32 +
    (((buf[off + 2] << 24) | (buf[off + 3] << 16) | (buf[off + 4] << 8) | buf[off + 5]) >>> 0)
  );
}

export function writeMac(buf: Uint8Array, off: number, mac: number): void {
  const hi = Math.floor(mac / TWO32);
  const lo = mac >>> 0;
  buf[off] = hi >>> 8;
  buf[off + 1] = hi;
  buf[off + 2] = lo >>> 24;
  buf[off + 3] = lo >>> 16;
  buf[off + 4] = lo >>> 8;
  buf[off + 5] = lo;
}

/** Group bit (I/G) of the first octet: multicast and broadcast. */
export function isMulticast(mac: number): boolean {
  return (Math.floor(mac / 0x10000000000) & 1) === 1;
}

/** Group bit straight from the buffer (no number built). */
export function isMulticastAt(buf: Uint8Array, off: number): boolean {
  return (buf[off] & 1) === 1;
}

/** U/L bit of the first octet: locally administered address. */
export function isLocalMac(mac: number): boolean {
  return (Math.floor(mac / 0x10000000000) & 2) === 2;
}

/** "aa:bb:cc:dd:ee:ff" */
export function macToString(mac: number): string {
  let s = '';
  for (let i = 5; i >= 0; i--) {
    const b = Math.floor(mac / 2 ** (8 * i)) & 0xff;
    s += (b < 16 ? '0' : '') + b.toString(16) + (i > 0 ? ':' : '');
  }
  return s;
}

/** Parse "aa:bb:cc:dd:ee:ff" (or with '-' separators, any case); null if malformed. */
export function parseMac(s: string): number | null {
  const m = /^([0-9a-f]{2})([:-])([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/i.exec(s);
  if (m === null) return null;
  let v = 0;
  for (const i of [1, 3, 4, 5, 6, 7]) v = v * 256 + parseInt(m[i], 16);
  return v;
}
