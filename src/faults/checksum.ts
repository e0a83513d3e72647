/*
 * Internet checksum helpers for the fault stage (recomputing checksums after corruption).
 * Self-contained on purpose (src/wire/ may grow its own); no allocation.
 *
 * onesSum(buf, start, end, acc)  16-bit one's-complement sum (unfolded accumulator)
 * fold(sum)                      fold to 16 bits (not complemented)
 * fixIpv4Checksums(buf, off, len, partialL4)
 *   Frame at buf[off..off+len) (Ethernet first, up to two VLAN tags). Recomputes the IPv4
 *   header checksum and, for unfragmented TCP/UDP/ICMP whose header fits, the L4 checksum.
 *   partialL4: the frame carries VNET NEEDS_CSUM, so the L4 field must hold the
 *   uncomplemented pseudo-header sum (the receiver/kernel completes it) instead.
 *   Returns a bit set: 1 = IPv4 header fixed, 2 = L4 fixed.
 * locateChecksums(buf, off, len, out)
 *   Writes the absolute positions of the IPv4 header checksum and the L4 checksum field into
 *   out[0], out[1] (-1 when absent), using the same rules as fixIpv4Checksums.
 */

export function onesSum(buf: Uint8Array, start: number, end: number, acc: number): number {
  let s = acc;
  let i = start;
  for (; i + 1 < end; i += 2) s += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) s += buf[i]! << 8;
  return s; // < 2^32 for any frame up to 64 KiB: exact as a double

}

export function fold(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65536);
  return s;
}

export const FIXED_IP = 1;
export const FIXED_L4 = 2;

export function locateChecksums(buf: Uint8Array, off: number, len: number, out: Int32Array): void {
  out[0] = -1;
  out[1] = -1;
  const end = off + len;
  if (len < 14) return;
  let p = off + 12;
  let et = (buf[p]! << 8) | buf[p + 1]!;
  let tags = 0;
  while ((et === 0x8100 || et === 0x88a8) && tags < 2 && p + 6 <= end) {
    p += 4;
    et = (buf[p]! << 8) | buf[p + 1]!;
    tags++;
  }
  if (et !== 0x0800) return;
  const ip = p + 2;
  if (ip + 20 > end) return;
  const vihl = buf[ip]!;
  const ihl = (vihl & 15) << 2;
  if (vihl >> 4 !== 4 || ihl < 20 || ip + ihl > end) return;
  out[0] = ip + 10;
  const totLen = (buf[ip + 2]! << 8) | buf[ip + 3]!;
  if ((((buf[ip + 6]! << 8) | buf[ip + 7]!) & 0x3fff) !== 0 || totLen < ihl || ip + totLen > end) return;
  const l4 = ip + ihl;
  const l4len = totLen - ihl;
  const proto = buf[ip + 9]!;
  if (proto === 6 && l4len >= 20) out[1] = l4 + 16;
  else if (proto === 17 && l4len >= 8) out[1] = l4 + 6;
  else if (proto === 1 && l4len >= 8) out[1] = l4 + 2;
}

export function fixIpv4Checksums(buf: Uint8Array, off: number, len: number, partialL4: boolean): number {
  const end = off + len;
  if (len < 14) return 0;
  let p = off + 12;
  let et = (buf[p]! << 8) | buf[p + 1]!;
  let tags = 0;
  while ((et === 0x8100 || et === 0x88a8) && tags < 2 && p + 6 <= end) {
    p += 4;
    et = (buf[p]! << 8) | buf[p + 1]!;
    tags++;
  }
  if (et !== 0x0800) return 0;
  const ip = p + 2;
  if (ip + 20 > end) return 0;
  const vihl = buf[ip]!;
  const ihl = (vihl & 15) << 2;
  if (vihl >> 4 !== 4 || ihl < 20 || ip + ihl > end) return 0;
  buf[ip + 10] = 0;
  buf[ip + 11] = 0;
  const hc = ~fold(onesSum(buf, ip, ip + ihl, 0)) & 0xffff;
  buf[ip + 10] = hc >> 8;
  buf[ip + 11] = hc & 0xff;
  let res = FIXED_IP;

  const totLen = (buf[ip + 2]! << 8) | buf[ip + 3]!;
  const flagsFrag = (buf[ip + 6]! << 8) | buf[ip + 7]!;
  if ((flagsFrag & 0x3fff) !== 0) return res; // fragment: L4 checksum spans fragments
  if (totLen < ihl || ip + totLen > end) return res;
  const l4 = ip + ihl;
  const l4len = totLen - ihl;
  const proto = buf[ip + 9]!;
  let csumAt: number;
  let pseudo: boolean;
  if (proto === 6 && l4len >= 20) {
    csumAt = l4 + 16;
    pseudo = true;
  } else if (proto === 17 && l4len >= 8) {
    csumAt = l4 + 6;
    pseudo = true;
    if (buf[csumAt]! === 0 && buf[csumAt + 1]! === 0 && !partialL4) return res; // UDP: no checksum
  } else if (proto === 1 && l4len >= 8) {
    csumAt = l4 + 2;
    pseudo = false;
  } else return res;

  let ps = 0;
  if (pseudo) {
    ps = onesSum(buf, ip + 12, ip + 20, 0) + proto + l4len;
  }
  if (partialL4 && pseudo) {
    const v = fold(ps);
    buf[csumAt] = v >> 8;
    buf[csumAt + 1] = v & 0xff;
    return res | FIXED_L4;
  }
  buf[csumAt] = 0;
  buf[csumAt + 1] = 0;
  let c = ~fold(onesSum(buf, l4, l4 + l4len, ps)) & 0xffff;
  if (proto === 17 && c === 0) c = 0xffff;
  buf[csumAt] = c >> 8;
  buf[csumAt + 1] = c & 0xff;
  return res | FIXED_L4;
}
