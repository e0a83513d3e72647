/*
 * Ethernet II header with up to two VLAN tags (802.1Q 0x8100, 802.1ad 0x88a8), outermost first.
 * EthernetView.reset() walks the tags once; etherType is the inner ethertype, payloadOffset
 * the absolute offset of the L3 header, vlanId the outermost tag's VID (or -1).
 */

import { DROP_ETH_TOO_SHORT } from './drop.js';
import { readMac, writeMac } from './mac.js';

export const ETH_DST = 0;
export const ETH_SRC = 6;
export const ETH_TYPE = 12; // ethertype or TPID of the first tag
export const ETH_HEADER_LEN = 14;
export const VLAN_TAG_LEN = 4; // TPID (2) + TCI (2)
export const ETH_MIN_FRAME_LEN = 60; // without FCS

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_IPV6 = 0x86dd;
export const ETHERTYPE_VLAN = 0x8100; // 802.1Q C-tag
export const ETHERTYPE_QINQ = 0x88a8; // 802.1ad S-tag

export const VLAN_VID_MASK = 0x0fff;

export function isVlanTpid(t: number): boolean {
  return t === ETHERTYPE_VLAN || t === ETHERTYPE_QINQ;
}

export class EthernetView {
  buf: Uint8Array = new Uint8Array(0);
  off = 0;
  len = 0;
  /** Number of VLAN tags found (0..2). */
  tagCount = 0;
  private err = DROP_ETH_TOO_SHORT;

  reset(buf: Uint8Array, off: number, len: number): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    let n = 0;
    let t = 0;
    if (len >= ETH_HEADER_LEN) {
      t = (buf[off + 12] << 8) | buf[off + 13];
      while (n < 2 && isVlanTpid(t) && ETH_HEADER_LEN + (n + 1) * VLAN_TAG_LEN <= len) {
        n++;
        t = (buf[off + 12 + 4 * n] << 8) | buf[off + 13 + 4 * n];
      }
    }
    this.tagCount = n;
    // Too short: no room for the header, or a tag whose inner ethertype is cut off.
    this.err = len < ETH_HEADER_LEN || (n < 2 && isVlanTpid(t)) ? DROP_ETH_TOO_SHORT : 0;
    return this;
  }

  /** 0 if the header (with its tags) fits in len, else a DROP_* code. */
  checkLen(): number {
    return this.err;
  }

  get headerLen(): number {
    return ETH_HEADER_LEN + this.tagCount * VLAN_TAG_LEN;
  }
  /** Absolute offset of the L3 header. */
  get payloadOffset(): number {
    return this.off + this.headerLen;
  }
  get payloadLength(): number {
    return this.len - this.headerLen;
  }

  get dst(): number {
    return readMac(this.buf, this.off);
  }
  set dst(mac: number) {
    writeMac(this.buf, this.off, mac);
  }
  get src(): number {
    return readMac(this.buf, this.off + ETH_SRC);
  }
  set src(mac: number) {
    writeMac(this.buf, this.off + ETH_SRC, mac);
  }
  /** Destination has the group bit set (multicast or broadcast). */
  get isMulticast(): boolean {
    return (this.buf[this.off] & 1) === 1;
  }

  /** Inner ethertype (after the tags). */
  get etherType(): number {
    const o = this.off + ETH_TYPE + this.tagCount * VLAN_TAG_LEN;
    return (this.buf[o] << 8) | this.buf[o + 1];
  }
  set etherType(t: number) {
    const o = this.off + ETH_TYPE + this.tagCount * VLAN_TAG_LEN;
    this.buf[o] = t >>> 8;
    this.buf[o + 1] = t;
  }

  /** TCI (PCP/DEI/VID) of tag i (0 = outermost), or -1 if there is no such tag. */
  tci(i: number): number {
    if (i >= this.tagCount) return -1;
    const o = this.off + ETH_TYPE + 2 + i * VLAN_TAG_LEN;
    return (this.buf[o] << 8) | this.buf[o + 1];
  }
  /** TPID of tag i, or -1. */
  tpid(i: number): number {
    if (i >= this.tagCount) return -1;
    const o = this.off + ETH_TYPE + i * VLAN_TAG_LEN;
    return (this.buf[o] << 8) | this.buf[o + 1];
  }
  /** VID of the outermost tag, or -1 if untagged. */
  get vlanId(): number {
    return this.tagCount > 0 ? this.tci(0) & VLAN_VID_MASK : -1;
  }
  /** Rewrite the VID of the outermost tag (keeps PCP/DEI). No-op when untagged. */
  set vlanId(vid: number) {
    if (this.tagCount === 0) return;
    const o = this.off + ETH_TYPE + 2;
    this.buf[o] = (this.buf[o] & 0xf0) | ((vid >>> 8) & 0x0f);
    this.buf[o + 1] = vid;
  }
  /** VID of the second (inner) tag, or -1. */
  get innerVlanId(): number {
    return this.tagCount > 1 ? this.tci(1) & VLAN_VID_MASK : -1;
  }
}

/**
 * Insert an outermost tag by moving the MAC addresses 4 bytes down: the frame then starts at
 * off - 4 (the caller owns that headroom) and is 4 bytes longer. Returns the new offset.
 */
export function pushVlanTag(buf: Uint8Array, off: number, tpid: number, tci: number): number {
  const n = off - VLAN_TAG_LEN;
  buf.copyWithin(n, off, off + 12);
  buf[n + 12] = tpid >>> 8;
  buf[n + 13] = tpid;
  buf[n + 14] = tci >>> 8;
  buf[n + 15] = tci;
  return n;
}

/**
 * Remove the outermost tag by moving the MAC addresses 4 bytes up: the frame then starts at
 * off + 4 and is 4 bytes shorter. Returns the new offset. The caller checked a tag is there.
 */
export function popVlanTag(buf: Uint8Array, off: number): number {
  buf.copyWithin(off + VLAN_TAG_LEN, off, off + 12);
  return off + VLAN_TAG_LEN;
}

export interface VlanTag {
  tpid: number; // ETHERTYPE_VLAN or ETHERTYPE_QINQ
  vid: number;
  pcp: number;
  dei: number;
}

export interface EthernetFields {
  dst: number;
  src: number;
  etherType: number; // inner ethertype
  vlans?: VlanTag[]; // outermost first, at most 2 (parse always fills it)
}

export function parseEthernet(buf: Uint8Array, off: number, len: number): EthernetFields | null {
  const v = new EthernetView().reset(buf, off, len);
  if (v.checkLen() !== 0) return null;
  const vlans: VlanTag[] = [];
  for (let i = 0; i < v.tagCount; i++) {
    const tci = v.tci(i);
    vlans.push({ tpid: v.tpid(i), vid: tci & VLAN_VID_MASK, pcp: tci >>> 13, dei: (tci >>> 12) & 1 });
  }
  return { dst: v.dst, src: v.src, etherType: v.etherType, vlans };
}

/** Write the header (with tags); returns bytes written (14 + 4 per tag). */
export function emitEthernet(f: EthernetFields, buf: Uint8Array, off: number): number {
  writeMac(buf, off + ETH_DST, f.dst);
  writeMac(buf, off + ETH_SRC, f.src);
  let o = off + ETH_TYPE;
  for (const t of f.vlans ?? []) {
    const tci = ((t.pcp & 7) << 13) | ((t.dei & 1) << 12) | (t.vid & VLAN_VID_MASK);
    buf[o] = t.tpid >>> 8;
    buf[o + 1] = t.tpid;
    buf[o + 2] = tci >>> 8;
    buf[o + 3] = tci;
    o += VLAN_TAG_LEN;
  }
  buf[o] = f.etherType >>> 8;
  buf[o + 1] = f.etherType;
  return o + 2 - off;
}

/** Write an untagged Ethernet header at off (no allocation); returns its length. */
export function writeEthernetHeader(buf: Uint8Array, off: number, dst: number, src: number, etherType: number): number {
  writeMac(buf, off + ETH_DST, dst);
  writeMac(buf, off + ETH_SRC, src);
  buf[off + ETH_TYPE] = etherType >>> 8;
  buf[off + ETH_TYPE + 1] = etherType;
  return ETH_HEADER_LEN;
}
