/*
 * Corruption of a fault stage: flip 1..maxBits distinct random bits after the 14-byte
 * Ethernet header. With fixChecksums the IPv4 header and TCP/UDP/ICMP checksums are
 * recomputed afterwards (for NEEDS_CSUM frames the pseudo-header sum) and flips are kept out
 * of the checksum fields (a flip there would just be undone). No allocation.
 */
import { VNET_F_NEEDS_CSUM, VNET_FLAGS, VNET_HDR_LEN } from '../core/frame.js';
import { fixIpv4Checksums, locateChecksums } from './checksum.js';
import type { Prng } from './prng.js';

const MAX_FLIP_ATTEMPTS = 16;

export class Corrupter {
  percent = 0;
  fixChecksums = false;
  maxBits = 1;
  private readonly picked = new Int32Array(64);
  private readonly csumPos = new Int32Array(3);

  constructor(private readonly rng: Prng) {}

  /** Corrupt the frame at buf[off, off+len) (Ethernet first) with the configured probability; true if it did. */
  maybe(buf: Uint8Array, off: number, len: number, vnetHdr: boolean): boolean {
    if (len <= 14 || this.rng.nextFloat() >= this.percent) return false;
    const rng = this.rng;
    const flips = this.maxBits > 1 ? 1 + rng.nextBelow(this.maxBits) : 1;
    const span = (len - 14) * 8;
    const picked = this.picked;
    const cs = this.csumPos;
    if (this.fixChecksums) locateChecksums(buf, off, len, cs);
    else cs[0] = cs[1] = -1;
    let nPicked = 0;
    for (let i = 0; i < flips; i++) {
      let bitIdx = 0;
      let pos = 0;
      for (let attempt = 0; attempt < MAX_FLIP_ATTEMPTS; attempt++) {
        bitIdx = rng.nextBelow(span);
        pos = off + 14 + (bitIdx >> 3);
        let clash = pos === cs[0] || pos === cs[0] + 1 || pos === cs[1] || pos === cs[1] + 1;
        for (let k = 0; k < nPicked && !clash; k++) clash = picked[k] === bitIdx;
        if (!clash) break;
      }
      picked[nPicked++] = bitIdx;
      buf[pos] ^= 1 << (bitIdx & 7);
    }
    if (this.fixChecksums) {
      const partial = vnetHdr && off >= VNET_HDR_LEN && (buf[off - VNET_HDR_LEN + VNET_FLAGS] & VNET_F_NEEDS_CSUM) !== 0;
      fixIpv4Checksums(buf, off, len, partial);
    }
    return true;
  }
}
