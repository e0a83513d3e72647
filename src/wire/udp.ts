/*
 * UDP header (RFC 768). A checksum of 0 means "none" (IPv4 only); a computed 0 is sent as
 * 0xffff. The checksum covers the IPv4 pseudo header: see checksum.ts l4Checksum (over
 * IPv6: l4Checksum6, and the checksum is mandatory).
 */

import { readU16, writeU16 } from './bytes.js';
import { DROP_UDP_BAD_LEN, DROP_UDP_TOO_SHORT } from './drop.js';
import { WireView } from './view.js';

export const UDP_SRC_PORT = 0;
export const UDP_DST_PORT = 2;
export const UDP_LEN = 4;
export const UDP_CSUM = 6;
export const UDP_HEADER_LEN = 8;

/** len: bytes available for the datagram (the IPv4 payload length). */
export class UdpView extends WireView {
  /** 0 if the header fits and 8 <= length field <= len, else a DROP_* code. */
  checkLen(): number {
    if (this.len < UDP_HEADER_LEN) return DROP_UDP_TOO_SHORT;
    const l = this.length;
    return l < UDP_HEADER_LEN || l > this.len ? DROP_UDP_BAD_LEN : 0;
  }

  get srcPort(): number {
    return readU16(this.buf, this.off + UDP_SRC_PORT);
  }
  set srcPort(v: number) {
    writeU16(this.buf, this.off + UDP_SRC_PORT, v);
  }
  get dstPort(): number {
    return readU16(this.buf, this.off + UDP_DST_PORT);
  }
  set dstPort(v: number) {
    writeU16(this.buf, this.off + UDP_DST_PORT, v);
  }
  /** The length field (header + data). */
  get length(): number {
    return readU16(this.buf, this.off + UDP_LEN);
  }
  set length(v: number) {
    writeU16(this.buf, this.off + UDP_LEN, v);
  }
  get checksum(): number {
    return readU16(this.buf, this.off + UDP_CSUM);
  }
  set checksum(v: number) {
    writeU16(this.buf, this.off + UDP_CSUM, v);
  }
  get payloadOffset(): number {
    return this.off + UDP_HEADER_LEN;
  }
  get payloadLength(): number {
    return this.length - UDP_HEADER_LEN;
  }
}

export interface UdpFields {
  srcPort: number;
  dstPort: number;
  /** Emit: defaults to 8 + payload length. */
  length?: number;
  /** Emit: written as given (default 0 = none); fill it with checksum.ts fillL4Checksum. */
  checksum?: number;
  /** Data after the header; parse always fills it (a copy, `length` bytes worth). */
  payload?: Uint8Array;
}

export function parseUdp(buf: Uint8Array, off: number, len: number): UdpFields | null {
  const v = new UdpView().reset(buf, off, len);
  if (v.checkLen() !== 0) return null;
  return {
    srcPort: v.srcPort,
    dstPort: v.dstPort,
    length: v.length,
    checksum: v.checksum,
    payload: buf.slice(v.payloadOffset, off + v.length),
  };
}

/** Write header + payload; returns bytes written. */
export function emitUdp(f: UdpFields, buf: Uint8Array, off: number): number {
  const n = UDP_HEADER_LEN + (f.payload?.length ?? 0);
  writeU16(buf, off + UDP_SRC_PORT, f.srcPort);
  writeU16(buf, off + UDP_DST_PORT, f.dstPort);
  writeU16(buf, off + UDP_LEN, f.length ?? n);
  writeU16(buf, off + UDP_CSUM, f.checksum ?? 0);
  if (f.payload) buf.set(f.payload, off + UDP_HEADER_LEN);
  return n;
}
