/*
 * IPv4 addresses as uint32 numbers (always `>>> 0`): string conversion and prefix helpers.
 */

export function readIp4(buf: Uint8Array, off: number): number {
  return ((buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0;
}

export function writeIp4(buf: Uint8Array, off: number, addr: number): void {
  buf[off] = addr >>> 24;
  buf[off + 1] = addr >>> 16;
  buf[off + 2] = addr >>> 8;
  buf[off + 3] = addr;
}

/** "10.100.0.1" */
export function ip4ToString(addr: number): string {
  return `${addr >>> 24}.${(addr >>> 16) & 0xff}.${(addr >>> 8) & 0xff}.${addr & 0xff}`;
}

/** Parse dotted-quad (exactly four decimal parts 0-255, no leading zeros); null if malformed. */
export function parseIp4(s: string): number | null {
  const m = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/.exec(s);
  if (m === null) return null;
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const p = Number(m[i]);
    if (p > 255) return null;
    v = v * 256 + p;
  }
  return v;
}

/** Netmask for a prefix length 0..32 as uint32 (maskOf(24) = 0xffffff00). */
export function maskOf(prefixLen: number): number {
  return prefixLen <= 0 ? 0 : prefixLen >= 32 ? 0xffffffff : (0xffffffff << (32 - prefixLen)) >>> 0;
}

/** Prefix length of a contiguous netmask, or -1 if the mask is not contiguous. */
export function prefixLenOf(mask: number): number {
  const inv = ~mask >>> 0;
  if ((inv & (inv + 1)) !== 0) return -1;
  return Math.clz32(inv);
}

export function networkOf(addr: number, prefixLen: number): number {
  return (addr & maskOf(prefixLen)) >>> 0;
}

export function broadcastOf(addr: number, prefixLen: number): number {
  return (addr | ~maskOf(prefixLen)) >>> 0;
}

export function inPrefix(addr: number, net: number, prefixLen: number): boolean {
  const m = maskOf(prefixLen);
  return ((addr ^ net) & m) === 0;
}

/** Parse "a.b.c.d/len" (len 0..32); null if malformed. The address keeps its host bits. */
export function parseCidr(s: string): { addr: number; prefixLen: number } | null {
  const slash = s.indexOf('/');
  if (slash < 0) return null;
  const addr = parseIp4(s.slice(0, slash));
  const lenStr = s.slice(slash + 1);
  if (addr === null || !/^(\d|[12]\d|3[0-2])$/.test(lenStr)) return null;
  return { addr, prefixLen: Number(lenStr) };
}

export function isMulticastIp4(addr: number): boolean {
  return addr >>> 28 === 0xe;
}
