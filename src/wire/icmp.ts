/*
 * ICMPv4 (RFC 792). Echo request/reply carry id/seq in bytes 4..7; errors (dest unreachable,
 * time exceeded, ...) carry the original IP header + at least 8 bytes of its payload from
 * ICMP_ERR_IP on; "fragmentation needed" puts the next-hop MTU in bytes 6..7 (RFC 1191).
 * The checksum covers the whole ICMP message, no pseudo header.
 */

import { readU16, readU32, writeU16, writeU32 } from './bytes.js';
import { finishChecksum, fold16, sum16 } from './checksum.js';
import { DROP_ICMP_TOO_SHORT } from './drop.js';
import { WireView } from './view.js';

export const ICMP_TYPE = 0;
export const ICMP_CODE = 1;
export const ICMP_CSUM = 2;
export const ICMP_REST = 4; // 32-bit "rest of header"
export const ICMP_ID = 4;
export const ICMP_SEQ = 6;
export const ICMP_MTU = 6; // next-hop MTU of DEST_UNREACH/FRAG_NEEDED
export const ICMP_HEADER_LEN = 8;
/** Offset of the quoted original IP header in an error message. */
export const ICMP_ERR_IP = 8;
/** Minimum error message: header + original IP header (20) + 8 bytes of its payload. */
export const ICMP_ERR_MIN_LEN = ICMP_HEADER_LEN + 20 + 8;

export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACH = 3;
export const ICMP_REDIRECT = 5;
export const ICMP_ECHO_REQUEST = 8;
export const ICMP_TIME_EXCEEDED = 11;
export const ICMP_PARAM_PROBLEM = 12;

// DEST_UNREACH codes
export const ICMP_NET_UNREACH = 0;
export const ICMP_HOST_UNREACH = 1;
export const ICMP_PROT_UNREACH = 2;
export const ICMP_PORT_UNREACH = 3;
export const ICMP_FRAG_NEEDED = 4;
export const ICMP_ADMIN_PROHIBITED = 13;
// TIME_EXCEEDED codes
export const ICMP_TTL_EXCEEDED = 0;
export const ICMP_FRAG_TIME_EXCEEDED = 1;

/** Error types that quote the original datagram. */
export function isIcmpError(type: number): boolean {
  return type === ICMP_DEST_UNREACH || type === ICMP_TIME_EXCEEDED || type === ICMP_PARAM_PROBLEM ||
    type === ICMP_REDIRECT || type === 4 /* source quench */;
}

/** Query types with an identifier (what NAT maps like a port): echo, timestamp, info, mask. */
export function isIcmpQuery(type: number): boolean {
  return type === ICMP_ECHO_REQUEST || type === ICMP_ECHO_REPLY || (type >= 13 && type <= 18);
}

/** len: the ICMP message length (the IPv4 payload length). */
export class IcmpView extends WireView {
  /** 0 if the 8-byte header fits, else DROP_ICMP_TOO_SHORT. Errors: see ICMP_ERR_MIN_LEN. */
  checkLen(): number {
    return this.len < ICMP_HEADER_LEN ? DROP_ICMP_TOO_SHORT : 0;
  }

  get type(): number {
    return this.buf[this.off + ICMP_TYPE];
  }
  set type(v: number) {
    this.buf[this.off + ICMP_TYPE] = v;
  }
  get code(): number {
    return this.buf[this.off + ICMP_CODE];
  }
  set code(v: number) {
    this.buf[this.off + ICMP_CODE] = v;
  }
  get checksum(): number {
    return readU16(this.buf, this.off + ICMP_CSUM);
  }
  set checksum(v: number) {
    writeU16(this.buf, this.off + ICMP_CSUM, v);
  }
  get rest(): number {
    return readU32(this.buf, this.off + ICMP_REST);
  }
  set rest(v: number) {
    writeU32(this.buf, this.off + ICMP_REST, v);
  }
  get id(): number {
    return readU16(this.buf, this.off + ICMP_ID);
  }
  set id(v: number) {
    writeU16(this.buf, this.off + ICMP_ID, v);
  }
  get seq(): number {
    return readU16(this.buf, this.off + ICMP_SEQ);
  }
  set seq(v: number) {
    writeU16(this.buf, this.off + ICMP_SEQ, v);
  }
  get mtu(): number {
    return readU16(this.buf, this.off + ICMP_MTU);
  }
  set mtu(v: number) {
    writeU16(this.buf, this.off + ICMP_MTU, v);
  }
  get isError(): boolean {
    return isIcmpError(this.type);
  }
  /** Absolute offset of the quoted IP header (errors) or of the echo data. */
  get payloadOffset(): number {
    return this.off + ICMP_HEADER_LEN;
  }
  get payloadLength(): number {
    return this.len - ICMP_HEADER_LEN;
  }

  verifyChecksum(): boolean {
    return fold16(sum16(this.buf, this.off, this.len)) === 0xffff;
  }
  fillChecksum(): void {
    this.checksum = 0;
    this.checksum = finishChecksum(sum16(this.buf, this.off, this.len));
  }
}

export interface IcmpFields {
  type: number;
  code: number;
  /** Parse: as found. Emit: written as given, or computed over header + payload when absent. */
  checksum?: number;
  /** Bytes 4..5: echo identifier (0 in errors). */
  id: number;
  /** Bytes 6..7: echo sequence number; the next-hop MTU for FRAG_NEEDED (0 in other errors). */
  seq: number;
  /** Everything after the 8-byte header; parse always fills it (a copy). */
  payload?: Uint8Array;
}

export function parseIcmp(buf: Uint8Array, off: number, len: number): IcmpFields | null {
  const v = new IcmpView().reset(buf, off, len);
  if (v.checkLen() !== 0) return null;
  return {
    type: v.type,
    code: v.code,
    checksum: v.checksum,
    id: v.id,
    seq: v.seq,
    payload: buf.slice(off + ICMP_HEADER_LEN, off + len),
  };
}

/** Write header + payload; returns bytes written. */
export function emitIcmp(f: IcmpFields, buf: Uint8Array, off: number): number {
  const n = ICMP_HEADER_LEN + (f.payload?.length ?? 0);
  buf[off + ICMP_TYPE] = f.type;
  buf[off + ICMP_CODE] = f.code;
  writeU16(buf, off + ICMP_CSUM, 0);
  writeU16(buf, off + ICMP_ID, f.id);
  writeU16(buf, off + ICMP_SEQ, f.seq);
  if (f.payload) buf.set(f.payload, off + ICMP_HEADER_LEN);
  writeU16(buf, off + ICMP_CSUM, f.checksum ?? finishChecksum(sum16(buf, off, n)));
  return n;
}
