/*
 * Checksum repair for the fault stage (after corruption with fixChecksums) on top of the
 * wire layer's checksum primitives; no allocation.
 *
 * locateChecksums(buf, off, len, out)
 *   Frame at buf[off..off+len) (Ethernet first, up to two VLAN tags). Writes the absolute
 *   positions of the IPv4 header checksum and the L4 (TCP/UDP/ICMP) checksum field into
 *   out[0], out[1] (-1 when absent: not IPv4, malformed, a fragment, or a header that does
 *   not fit), and the IPv4 header offset into out[2].
 * fixIpv4Checksums(buf, off, len, partialL4)
 *   Recomputes the IPv4 header checksum and, where located, the L4 checksum. partialL4: the
 *   frame carries virtio NEEDS_CSUM, so the L4 field gets the uncomplemented pseudo-header
 *   sum (the kernel completes it) instead. Returns FIXED_IP | FIXED_L4 bits.
 */
import { fold16, ipv4HeaderChecksum, pseudoHeaderSum, sum16, finishChecksum } from '../wire/checksum.js';
import { readU32 } from '../wire/bytes.js';

export const FIXED_IP = 1;
export const FIXED_L4 = 2;

export function locateChecksums(buf: Uint8Array, off: number, len: number, out: Int32Array): void {
  out[0] = -1;
  out[1] = -1;
  out[2] = -1;
  const end = off + len;
  if (len < 14) return;
  let p = off + 12;
  let et = (buf[p] << 8) | buf[p + 1];
  let tags = 0;
  while ((et === 0x8100 || et === 0x88a8) && tags < 2 && p + 6 <= end) {
    p += 4;
    et = (buf[p] << 8) | buf[p + 1];
    tags++;
  }
  if (et !== 0x0800) return;
  const ip = p + 2;
  if (ip + 20 > end) return;
  const vihl = buf[ip];
  const ihl = (vihl & 15) << 2;
  if (vihl >> 4 !== 4 || ihl < 20 || ip + ihl > end) return;
  out[0] = ip + 10;
  out[2] = ip;
  const totLen = (buf[ip + 2] << 8) | buf[ip + 3];
  if ((((buf[ip + 6] << 8) | buf[ip + 7]) & 0x3fff) !== 0 || totLen < ihl || ip + totLen > end) return;
  const l4 = ip + ihl;
  const l4len = totLen - ihl;
  const proto = buf[ip + 9];
  if (proto === 6 && l4len >= 20) out[1] = l4 + 16;
  else if (proto === 17 && l4len >= 8) out[1] = l4 + 6;
  else if (proto === 1 && l4len >= 8) out[1] = l4 + 2;
}

const where = new Int32Array(3);

export function fixIpv4Checksums(buf: Uint8Array, off: number, len: number, partialL4: boolean): number {
  locateChecksums(buf, off, len, where);
  const ip = where[2];
  if (ip < 0) return 0;
  const ihl = (buf[ip] & 15) << 2;
  const hc = ipv4HeaderChecksum(buf, ip, ihl);
  buf[ip + 10] = hc >> 8;
  buf[ip + 11] = hc & 0xff;
  const at = where[1];
  if (at < 0) return FIXED_IP;
  const proto = buf[ip + 9];
  const l4 = ip + ihl;
  const l4len = ((buf[ip + 2] << 8) | buf[ip + 3]) - ihl;
  if (proto === 17 && buf[at] === 0 && buf[at + 1] === 0 && !partialL4) return FIXED_IP; // UDP: no checksum
  const pseudo = proto === 1 ? 0 : pseudoHeaderSum(readU32(buf, ip + 12), readU32(buf, ip + 16), proto, l4len);
  if (partialL4 && proto !== 1) {
    const v = fold16(pseudo);
    buf[at] = v >> 8;
    buf[at + 1] = v & 0xff;
    return FIXED_IP | FIXED_L4;
  }
  buf[at] = 0;
  buf[at + 1] = 0;
  let c = finishChecksum(sum16(buf, l4, l4len, pseudo));
  if (proto === 17 && c === 0) c = 0xffff;
  buf[at] = c >> 8;
  buf[at + 1] = c & 0xff;
  return FIXED_IP | FIXED_L4;
}
