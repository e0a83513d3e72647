/*
 * ARP for Ethernet/IPv4 only (RFC 826: htype 1, ptype 0x0800, hlen 6, plen 4): 28 bytes.
 * Hardware addresses are MAC numbers, protocol addresses uint32.
 */

import { readU16, readU32, writeU16, writeU32 } from './bytes.js';
import { DROP_ARP_BAD, DROP_ARP_TOO_SHORT } from './drop.js';
import { readMac, writeMac } from './mac.js';
import { WireView } from './view.js';

export const ARP_HTYPE = 0;
export const ARP_PTYPE = 2;
export const ARP_HLEN = 4;
export const ARP_PLEN = 5;
export const ARP_OP = 6;
export const ARP_SHA = 8;
export const ARP_SPA = 14;
export const ARP_THA = 18;
export const ARP_TPA = 24;
export const ARP_LEN = 28;

export const ARP_HTYPE_ETHERNET = 1;
export const ARP_PTYPE_IPV4 = 0x0800;
export const ARP_OP_REQUEST = 1;
export const ARP_OP_REPLY = 2;

/** len: bytes available for the ARP packet (the Ethernet payload length). */
export class ArpView extends WireView {
  /** 0 if this is a complete Ethernet/IPv4 ARP packet, else a DROP_* code. */
  /** The address types first (an ARP for other hardware is bad, whatever its length), then the length. */
  checkLen(): number {
    const b = this.buf;
    const o = this.off;
    if (this.len >= ARP_OP &&
        (readU16(b, o + ARP_HTYPE) !== ARP_HTYPE_ETHERNET || readU16(b, o + ARP_PTYPE) !== ARP_PTYPE_IPV4 || b[o + ARP_HLEN] !== 6 || b[o + ARP_PLEN] !== 4)) {
      return DROP_ARP_BAD;
    }
    return this.len < ARP_LEN ? DROP_ARP_TOO_SHORT : 0;
  }

  get op(): number {
    return readU16(this.buf, this.off + ARP_OP);
  }
  set op(v: number) {
    writeU16(this.buf, this.off + ARP_OP, v);
  }
  get sha(): number {
    return readMac(this.buf, this.off + ARP_SHA);
  }
  set sha(mac: number) {
    writeMac(this.buf, this.off + ARP_SHA, mac);
  }
  get spa(): number {
    return readU32(this.buf, this.off + ARP_SPA);
  }
  set spa(addr: number) {
    writeU32(this.buf, this.off + ARP_SPA, addr);
  }
  get tha(): number {
    return readMac(this.buf, this.off + ARP_THA);
  }
  set tha(mac: number) {
    writeMac(this.buf, this.off + ARP_THA, mac);
  }
  get tpa(): number {
    return readU32(this.buf, this.off + ARP_TPA);
  }
  set tpa(addr: number) {
    writeU32(this.buf, this.off + ARP_TPA, addr);
  }
}

export interface ArpFields {
  op: number;
  sha: number;
  spa: number;
  tha: number;
  tpa: number;
}

export function parseArp(buf: Uint8Array, off: number, len: number): ArpFields | null {
  const v = new ArpView().reset(buf, off, len);
  if (v.checkLen() !== 0) return null;
  return { op: v.op, sha: v.sha, spa: v.spa, tha: v.tha, tpa: v.tpa };
}

/** Write a complete 28-byte ARP packet; returns ARP_LEN. */
export function emitArp(f: ArpFields, buf: Uint8Array, off: number): number {
  return writeArp(buf, off, f.op, f.sha, f.spa, f.tha, f.tpa);
}

/** Write an Ethernet/IPv4 ARP message at off (no allocation); returns its length. */
export function writeArp(buf: Uint8Array, off: number, op: number, sha: number, spa: number, tha: number, tpa: number): number {
  writeU16(buf, off + ARP_HTYPE, ARP_HTYPE_ETHERNET);
  writeU16(buf, off + ARP_PTYPE, ARP_PTYPE_IPV4);
  buf[off + ARP_HLEN] = 6;
  buf[off + ARP_PLEN] = 4;
  writeU16(buf, off + ARP_OP, op);
  writeMac(buf, off + ARP_SHA, sha);
  writeU32(buf, off + ARP_SPA, spa);
  writeMac(buf, off + ARP_THA, tha);
  writeU32(buf, off + ARP_TPA, tpa);
  return ARP_LEN;
}
