/*
 * TCP header (RFC 9293) with options. TcpView.findOption() locates an option (e.g. MSS for
 * clamping) without allocating. The checksum covers the IPv4 or IPv6 pseudo header: see
 * checksum.ts (l4Checksum, l4Checksum6).
 */

import { readU16, readU32, writeU16, writeU32 } from './bytes.js';
import { DROP_TCP_BAD_OFF, DROP_TCP_TOO_SHORT } from './drop.js';
import { WireView } from './view.js';

export const TCP_SRC_PORT = 0;
export const TCP_DST_PORT = 2;
export const TCP_SEQ = 4;
export const TCP_ACK = 8;
export const TCP_DATA_OFF = 12; // high nibble: header length in 32-bit words
export const TCP_FLAGS = 13;
export const TCP_WINDOW = 14;
export const TCP_CSUM = 16;
export const TCP_URG_PTR = 18;
export const TCP_MIN_HEADER_LEN = 20;
export const TCP_OPTIONS = 20;

export const TCP_FLAG_FIN = 0x01;
export const TCP_FLAG_SYN = 0x02;
export const TCP_FLAG_RST = 0x04;
export const TCP_FLAG_PSH = 0x08;
export const TCP_FLAG_ACK = 0x10;
export const TCP_FLAG_URG = 0x20;
export const TCP_FLAG_ECE = 0x40;
export const TCP_FLAG_CWR = 0x80;

export const TCP_OPT_END = 0;
export const TCP_OPT_NOP = 1;
export const TCP_OPT_MSS = 2;
export const TCP_OPT_WSCALE = 3;
export const TCP_OPT_SACK_PERM = 4;
export const TCP_OPT_SACK = 5;
export const TCP_OPT_TIMESTAMP = 8;

/** len: bytes of the segment (the IPv4 payload length). */
export class TcpView extends WireView {
  /** 0 if the header including options fits in len, else a DROP_* code. */
  checkLen(): number {
    if (this.len < TCP_MIN_HEADER_LEN) return DROP_TCP_TOO_SHORT;
    const hl = this.headerLen;
    return hl < TCP_MIN_HEADER_LEN || hl > this.len ? DROP_TCP_BAD_OFF : 0;
  }

  get srcPort(): number {
    return readU16(this.buf, this.off + TCP_SRC_PORT);
  }
  set srcPort(v: number) {
    writeU16(this.buf, this.off + TCP_SRC_PORT, v);
  }
  get dstPort(): number {
    return readU16(this.buf, this.off + TCP_DST_PORT);
  }
  set dstPort(v: number) {
    writeU16(this.buf, this.off + TCP_DST_PORT, v);
  }
  get seq(): number {
    return readU32(this.buf, this.off + TCP_SEQ);
  }
  set seq(v: number) {
    writeU32(this.buf, this.off + TCP_SEQ, v);
  }
  get ack(): number {
    return readU32(this.buf, this.off + TCP_ACK);
  }
  set ack(v: number) {
    writeU32(this.buf, this.off + TCP_ACK, v);
  }
  /** Header length in 32-bit words. */
  get dataOffset(): number {
    return this.buf[this.off + TCP_DATA_OFF] >>> 4;
  }
  /** Header length in bytes. */
  get headerLen(): number {
    return (this.buf[this.off + TCP_DATA_OFF] >>> 4) << 2;
  }
  /** The 8 flag bits (CWR..FIN); test with TCP_FLAG_SYN etc. */
  get flags(): number {
    return this.buf[this.off + TCP_FLAGS];
  }
  set flags(v: number) {
    this.buf[this.off + TCP_FLAGS] = v;
  }
  get window(): number {
    return readU16(this.buf, this.off + TCP_WINDOW);
  }
  set window(v: number) {
    writeU16(this.buf, this.off + TCP_WINDOW, v);
  }
  get checksum(): number {
    return readU16(this.buf, this.off + TCP_CSUM);
  }
  set checksum(v: number) {
    writeU16(this.buf, this.off + TCP_CSUM, v);
  }
  get urgentPtr(): number {
    return readU16(this.buf, this.off + TCP_URG_PTR);
  }
  set urgentPtr(v: number) {
    writeU16(this.buf, this.off + TCP_URG_PTR, v);
  }
  get payloadOffset(): number {
    return this.off + this.headerLen;
  }
  get payloadLength(): number {
    return this.len - this.headerLen;
  }

  /**
   * Absolute offset of the first option of this kind (its kind byte), or -1 if absent or the
   * option list is malformed (an option running past the header).
   */
  findOption(kind: number): number {
    const b = this.buf;
    const end = this.off + this.headerLen;
    let o = this.off + TCP_OPTIONS;
    while (o < end) {
      const k = b[o];
      if (k === TCP_OPT_END) return -1;
      if (k === TCP_OPT_NOP) {
        o++;
        continue;
      }
      if (o + 1 >= end) return -1;
      const l = b[o + 1];
      if (l < 2 || o + l > end) return -1;
      if (k === kind) return o;
      o += l;
    }
    return -1;
  }
}

export interface TcpFields {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  /** Emit: written as given (default 0); fill it with checksum.ts fillL4Checksum. */
  checksum?: number;
  urgentPtr?: number;
  /** Raw option bytes, padded by the caller to a multiple of 4; parse always fills it. */
  options?: Uint8Array;
  /** Data after the header; parse always fills it (a copy). */
  payload?: Uint8Array;
}

export function parseTcp(buf: Uint8Array, off: number, len: number): TcpFields | null {
  const v = new TcpView().reset(buf, off, len);
  if (v.checkLen() !== 0) return null;
  return {
    srcPort: v.srcPort,
    dstPort: v.dstPort,
    seq: v.seq,
    ack: v.ack,
    flags: v.flags,
    window: v.window,
    checksum: v.checksum,
    urgentPtr: v.urgentPtr,
    options: buf.slice(off + TCP_OPTIONS, v.payloadOffset),
    payload: buf.slice(v.payloadOffset, off + len),
  };
}

/** Write header (with options) + payload; returns bytes written. */
export function emitTcp(f: TcpFields, buf: Uint8Array, off: number): number {
  const hl = TCP_MIN_HEADER_LEN + (f.options?.length ?? 0);
  writeU16(buf, off + TCP_SRC_PORT, f.srcPort);
  writeU16(buf, off + TCP_DST_PORT, f.dstPort);
  writeU32(buf, off + TCP_SEQ, f.seq);
  writeU32(buf, off + TCP_ACK, f.ack);
  buf[off + TCP_DATA_OFF] = (hl >>> 2) << 4;
  buf[off + TCP_FLAGS] = f.flags;
  writeU16(buf, off + TCP_WINDOW, f.window);
  writeU16(buf, off + TCP_CSUM, f.checksum ?? 0);
  writeU16(buf, off + TCP_URG_PTR, f.urgentPtr ?? 0);
  if (f.options) buf.set(f.options, off + TCP_OPTIONS);
  if (f.payload) buf.set(f.payload, off + hl);
  return hl + (f.payload?.length ?? 0);
}
