/*
 * BOOTP / DHCPv4 message (RFC 951, RFC 2131, options RFC 2132), the UDP payload on ports
 * 67/68. DhcpView.checkLen() validates the fixed header, the magic cookie and the whole
 * option walk once (pad, end, lengths in bounds, fixed-size options of the right size,
 * option overload 52 followed into the file/sname areas) and records where each option's
 * first instance is; after it every accessor is in bounds and option lookups are O(1).
 * A missing END is tolerated (the area's end closes the list); long options split over
 * several instances (RFC 3396) are read as their first instance.
 * parseDhcp/emitDhcp are the plain-object form for the DHCP server and tests; emit writes
 * options in a fixed order, ends with END and pads to the 300-byte BOOTP minimum.
 */

import { readU16, readU32, writeU16, writeU32 } from './bytes.js';
import {
  DROP_DHCP_BAD_COOKIE, DROP_DHCP_BAD_HLEN, DROP_DHCP_BAD_OP, DROP_DHCP_BAD_OPTION, DROP_DHCP_BAD_OVERLOAD,
  DROP_DHCP_TOO_SHORT,
} from './drop.js';
import { readMac, writeMac } from './mac.js';
import { WireView } from './view.js';

export const DHCP_OP = 0;
export const DHCP_HTYPE = 1;
export const DHCP_HLEN = 2;
export const DHCP_HOPS = 3;
export const DHCP_XID = 4;
export const DHCP_SECS = 8;
export const DHCP_FLAGS = 10;
export const DHCP_CIADDR = 12;
export const DHCP_YIADDR = 16;
export const DHCP_SIADDR = 20;
export const DHCP_GIADDR = 24;
export const DHCP_CHADDR = 28; // 16 bytes
export const DHCP_SNAME = 44; // 64 bytes
export const DHCP_FILE = 108; // 128 bytes
export const DHCP_COOKIE = 236;
export const DHCP_OPTIONS = 240;
export const DHCP_CHADDR_LEN = 16;
export const DHCP_SNAME_LEN = 64;
export const DHCP_FILE_LEN = 128;
/** Fixed header + cookie: the least a DHCP message can be. */
export const DHCP_MIN_LEN = DHCP_OPTIONS;
/** BOOTP's minimum message (RFC 951 vend area of 64 bytes); emit pads replies to it. */
export const BOOTP_MIN_LEN = 300;
export const DHCP_MAGIC_COOKIE = 0x63825363;

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
export const HTYPE_ETHERNET = 1;
export const DHCP_FLAG_BROADCAST = 0x8000;

// Message types (option 53).
export const DHCPDISCOVER = 1;
export const DHCPOFFER = 2;
export const DHCPREQUEST = 3;
export const DHCPDECLINE = 4;
export const DHCPACK = 5;
export const DHCPNAK = 6;
export const DHCPRELEASE = 7;
export const DHCPINFORM = 8;

// Options.
export const DHCP_OPT_PAD = 0;
export const DHCP_OPT_SUBNET_MASK = 1;
export const DHCP_OPT_ROUTER = 3;
export const DHCP_OPT_DNS = 6;
export const DHCP_OPT_HOST_NAME = 12;
export const DHCP_OPT_DOMAIN_NAME = 15;
export const DHCP_OPT_MTU = 26;
export const DHCP_OPT_BROADCAST = 28;
export const DHCP_OPT_REQUESTED_IP = 50;
export const DHCP_OPT_LEASE_TIME = 51;
export const DHCP_OPT_OVERLOAD = 52; // 1 = file holds options, 2 = sname, 3 = both
export const DHCP_OPT_MSG_TYPE = 53;
export const DHCP_OPT_SERVER_ID = 54;
export const DHCP_OPT_PARAM_REQUEST = 55;
export const DHCP_OPT_MESSAGE = 56;
export const DHCP_OPT_MAX_MSG_SIZE = 57;
export const DHCP_OPT_RENEWAL_TIME = 58; // T1
export const DHCP_OPT_REBINDING_TIME = 59; // T2
export const DHCP_OPT_CLIENT_ID = 61;
export const DHCP_OPT_END = 255;

const OVERLOAD_FILE = 1;
const OVERLOAD_SNAME = 2;

/** Whether an option of this code may have value length l (RFC 2132 sizes). */
function optionLengthOk(code: number, l: number): boolean {
  switch (code) {
    case DHCP_OPT_SUBNET_MASK:
    case DHCP_OPT_BROADCAST:
    case DHCP_OPT_REQUESTED_IP:
    case DHCP_OPT_LEASE_TIME:
    case DHCP_OPT_SERVER_ID:
    case DHCP_OPT_RENEWAL_TIME:
    case DHCP_OPT_REBINDING_TIME:
      return l === 4;
    case DHCP_OPT_MTU:
    case DHCP_OPT_MAX_MSG_SIZE:
      return l === 2;
    case DHCP_OPT_OVERLOAD:
    case DHCP_OPT_MSG_TYPE:
      return l === 1;
    case DHCP_OPT_ROUTER:
    case DHCP_OPT_DNS:
      return l >= 4 && (l & 3) === 0;
    case DHCP_OPT_CLIENT_ID:
      return l >= 2;
    case DHCP_OPT_HOST_NAME:
    case DHCP_OPT_DOMAIN_NAME:
    case DHCP_OPT_PARAM_REQUEST:
    case DHCP_OPT_MESSAGE:
      return l >= 1;
    default:
      return true;
  }
}

/** len: bytes available for the message (the UDP payload length). */
export class DhcpView extends WireView {
  /** Absolute offset of each option's first instance (its code byte), -1 if absent; set by checkLen. */
  private readonly at = new Int32Array(256).fill(-1);
  /** Option 52's value (0 = none), set by checkLen. */
  overload = 0;

  /**
   * 0 if the header, cookie and every option are sound and in bounds, else a DROP_* code.
   * Records the first instance of each option for option()/optionLength().
   */
  checkLen(): number {
    this.at.fill(-1);
    this.overload = 0;
    if (this.len < DHCP_MIN_LEN) return DROP_DHCP_TOO_SHORT;
    const b = this.buf;
    const o = this.off;
    if (b[o + DHCP_OP] !== BOOTREQUEST && b[o + DHCP_OP] !== BOOTREPLY) return DROP_DHCP_BAD_OP;
    if (b[o + DHCP_HLEN] > DHCP_CHADDR_LEN) return DROP_DHCP_BAD_HLEN;
    if (readU32(b, o + DHCP_COOKIE) !== DHCP_MAGIC_COOKIE) return DROP_DHCP_BAD_COOKIE;
    let e = this.walk(o + DHCP_OPTIONS, o + this.len, true);
    // RFC 2131 4.1: options continue in 'file', then in 'sname'.
    if (e === 0 && (this.overload & OVERLOAD_FILE) !== 0) e = this.walk(o + DHCP_FILE, o + DHCP_FILE + DHCP_FILE_LEN, false);
    if (e === 0 && (this.overload & OVERLOAD_SNAME) !== 0) e = this.walk(o + DHCP_SNAME, o + DHCP_SNAME + DHCP_SNAME_LEN, false);
    return e;
  }

  private walk(o: number, end: number, main: boolean): number {
    const b = this.buf;
    while (o < end) {
      const c = b[o];
      if (c === DHCP_OPT_END) return 0;
      if (c === DHCP_OPT_PAD) {
        o++;
        continue;
      }
      if (o + 2 > end) return DROP_DHCP_BAD_OPTION;
      const l = b[o + 1];
      if (o + 2 + l > end || !optionLengthOk(c, l)) return DROP_DHCP_BAD_OPTION;
      if (c === DHCP_OPT_OVERLOAD) {
        if (!main || b[o + 2] < 1 || b[o + 2] > 3) return DROP_DHCP_BAD_OVERLOAD;
        if (this.overload === 0) this.overload = b[o + 2];
      }
      if (this.at[c] < 0) this.at[c] = o;
      o += 2 + l;
    }
    return 0;
  }

  get op(): number {
    return this.buf[this.off + DHCP_OP];
  }
  get htype(): number {
    return this.buf[this.off + DHCP_HTYPE];
  }
  get hlen(): number {
    return this.buf[this.off + DHCP_HLEN];
  }
  get hops(): number {
    return this.buf[this.off + DHCP_HOPS];
  }
  get xid(): number {
    return readU32(this.buf, this.off + DHCP_XID);
  }
  get secs(): number {
    return readU16(this.buf, this.off + DHCP_SECS);
  }
  get flags(): number {
    return readU16(this.buf, this.off + DHCP_FLAGS);
  }
  /** The client asked for broadcast replies (it cannot receive unicast before configuring). */
  get broadcast(): boolean {
    return (this.buf[this.off + DHCP_FLAGS] & 0x80) !== 0;
  }
  get ciaddr(): number {
    return readU32(this.buf, this.off + DHCP_CIADDR);
  }
  get yiaddr(): number {
    return readU32(this.buf, this.off + DHCP_YIADDR);
  }
  get siaddr(): number {
    return readU32(this.buf, this.off + DHCP_SIADDR);
  }
  get giaddr(): number {
    return readU32(this.buf, this.off + DHCP_GIADDR);
  }
  /** The first 6 bytes of chaddr as a MAC number (the client's MAC when htype 1, hlen 6). */
  get chaddr(): number {
    return readMac(this.buf, this.off + DHCP_CHADDR);
  }
  get cookie(): number {
    return readU32(this.buf, this.off + DHCP_COOKIE);
  }

  /** Absolute offset of the first instance's value, or -1 when the option is absent. */
  option(code: number): number {
    const a = this.at[code];
    return a < 0 ? -1 : a + 2;
  }
  /** Value length of the first instance, or -1 when absent. */
  optionLength(code: number): number {
    const a = this.at[code];
    return a < 0 ? -1 : this.buf[a + 1];
  }
  /** Value of a 4-byte option (address or seconds), or dflt when absent. */
  u32Option(code: number, dflt: number): number {
    const v = this.option(code);
    return v < 0 || this.buf[v - 1] !== 4 ? dflt : readU32(this.buf, v);
  }
  /** Option 53, or 0 for a plain BOOTP message. */
  get messageType(): number {
    const v = this.option(DHCP_OPT_MSG_TYPE);
    return v < 0 ? 0 : this.buf[v];
  }
  /** Option 50, 0 when absent. */
  get requestedIp(): number {
    return this.u32Option(DHCP_OPT_REQUESTED_IP, 0);
  }
  /** Option 54, 0 when absent. */
  get serverId(): number {
    return this.u32Option(DHCP_OPT_SERVER_ID, 0);
  }
  /** Option 51 in seconds, -1 when absent. */
  get leaseTime(): number {
    return this.u32Option(DHCP_OPT_LEASE_TIME, -1);
  }
}

export interface DhcpOptions {
  messageType?: number; // 53
  subnetMask?: number; // 1
  routers?: number[]; // 3
  dnsServers?: number[]; // 6
  hostName?: string; // 12 (trailing NULs dropped)
  domainName?: string; // 15
  mtu?: number; // 26
  broadcastAddr?: number; // 28
  requestedIp?: number; // 50
  leaseTime?: number; // 51, seconds
  serverId?: number; // 54
  paramRequestList?: number[]; // 55
  message?: string; // 56
  maxMessageSize?: number; // 57
  renewalTime?: number; // 58, T1 seconds
  rebindingTime?: number; // 59, T2 seconds
  clientId?: Uint8Array; // 61 (type byte + identifier)
  /** Any other option (first instance, value bytes), in code order. */
  other?: { code: number; data: Uint8Array }[];
}

export interface DhcpFields {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  /** Raw flags word; DHCP_FLAG_BROADCAST is the only defined bit. */
  flags: number;
  ciaddr: number;
  yiaddr: number;
  siaddr: number;
  giaddr: number;
  /** MAC number from the first 6 chaddr bytes; emit writes it and zeroes the other 10. */
  chaddr: number;
  /** Server host name / boot file (up to the first NUL); absent when overloaded or empty. */
  sname?: string;
  file?: string;
  options: DhcpOptions;
}

function latin1(b: Uint8Array, from: number, to: number): string {
  let s = '';
  for (let i = from; i < to; i++) s += String.fromCharCode(b[i]);
  return s;
}

/** Text up to the first NUL in b[from, to); undefined if empty. */
function cString(b: Uint8Array, from: number, to: number): string | undefined {
  let e = from;
  while (e < to && b[e] !== 0) e++;
  return e === from ? undefined : latin1(b, from, e);
}

function addrList(b: Uint8Array, v: number, l: number): number[] {
  const out: number[] = [];
  for (let i = 0; i + 4 <= l; i += 4) out.push(readU32(b, v + i));
  return out;
}

/** Parse a DHCP message (first instance of each option); null if checkLen fails. */
export function parseDhcp(buf: Uint8Array, off: number, len: number): DhcpFields | null {
  const v = new DhcpView().reset(buf, off, len);
  if (v.checkLen() !== 0) return null;
  const opts: DhcpOptions = {};
  const other: { code: number; data: Uint8Array }[] = [];
  for (let code = 1; code < DHCP_OPT_END; code++) {
    const o = v.option(code);
    if (o < 0) continue;
    const l = buf[o - 1];
    switch (code) {
      case DHCP_OPT_MSG_TYPE: opts.messageType = buf[o]; break;
      case DHCP_OPT_SUBNET_MASK: opts.subnetMask = readU32(buf, o); break;
      case DHCP_OPT_ROUTER: opts.routers = addrList(buf, o, l); break;
      case DHCP_OPT_DNS: opts.dnsServers = addrList(buf, o, l); break;
      case DHCP_OPT_HOST_NAME: opts.hostName = cString(buf, o, o + l) ?? ''; break;
      case DHCP_OPT_DOMAIN_NAME: opts.domainName = cString(buf, o, o + l) ?? ''; break;
      case DHCP_OPT_MTU: opts.mtu = readU16(buf, o); break;
      case DHCP_OPT_BROADCAST: opts.broadcastAddr = readU32(buf, o); break;
      case DHCP_OPT_REQUESTED_IP: opts.requestedIp = readU32(buf, o); break;
      case DHCP_OPT_LEASE_TIME: opts.leaseTime = readU32(buf, o); break;
      case DHCP_OPT_SERVER_ID: opts.serverId = readU32(buf, o); break;
      case DHCP_OPT_PARAM_REQUEST: opts.paramRequestList = Array.from(buf.subarray(o, o + l)); break;
      case DHCP_OPT_MESSAGE: opts.message = latin1(buf, o, o + l); break;
      case DHCP_OPT_MAX_MSG_SIZE: opts.maxMessageSize = readU16(buf, o); break;
      case DHCP_OPT_RENEWAL_TIME: opts.renewalTime = readU32(buf, o); break;
      case DHCP_OPT_REBINDING_TIME: opts.rebindingTime = readU32(buf, o); break;
      case DHCP_OPT_CLIENT_ID: opts.clientId = buf.slice(o, o + l); break;
      case DHCP_OPT_OVERLOAD: break; // structural: reflected by the absence of sname/file
      default: other.push({ code, data: buf.slice(o, o + l) });
    }
  }
  if (other.length > 0) opts.other = other;
  const f: DhcpFields = {
    op: v.op, htype: v.htype, hlen: v.hlen, hops: v.hops, xid: v.xid, secs: v.secs, flags: v.flags,
    ciaddr: v.ciaddr, yiaddr: v.yiaddr, siaddr: v.siaddr, giaddr: v.giaddr, chaddr: v.chaddr, options: opts,
  };
  const sname = (v.overload & OVERLOAD_SNAME) === 0 ? cString(buf, off + DHCP_SNAME, off + DHCP_SNAME + DHCP_SNAME_LEN) : undefined;
  const file = (v.overload & OVERLOAD_FILE) === 0 ? cString(buf, off + DHCP_FILE, off + DHCP_FILE + DHCP_FILE_LEN) : undefined;
  if (sname !== undefined) f.sname = sname;
  if (file !== undefined) f.file = file;
  return f;
}

/** Writes options one at a time at `o`; bytes are checked against the buffer's end. */
class OptionWriter {
  o = 0;
  constructor(readonly buf: Uint8Array) {}

  private head(code: number, l: number): number {
    if (l > 255 || code === DHCP_OPT_PAD || code === DHCP_OPT_END) throw new RangeError(`DHCP option ${code}: ${l} bytes`);
    const o = this.o;
    if (o + 2 + l > this.buf.length) throw new RangeError('DHCP emit: buffer too small');
    this.buf[o] = code;
    this.buf[o + 1] = l;
    this.o = o + 2 + l;
    return o + 2;
  }
  u8(code: number, v: number | undefined): void {
    if (v !== undefined) this.buf[this.head(code, 1)] = v;
  }
  u16(code: number, v: number | undefined): void {
    if (v !== undefined) writeU16(this.buf, this.head(code, 2), v);
  }
  u32(code: number, v: number | undefined): void {
    if (v !== undefined) writeU32(this.buf, this.head(code, 4), v);
  }
  addrs(code: number, v: number[] | undefined): void {
    if (v === undefined || v.length === 0) return;
    const o = this.head(code, 4 * v.length);
    for (let i = 0; i < v.length; i++) writeU32(this.buf, o + 4 * i, v[i]);
  }
  bytes(code: number, v: ArrayLike<number> | undefined): void {
    if (v !== undefined) this.buf.set(v, this.head(code, v.length));
  }
  text(code: number, v: string | undefined): void {
    if (v !== undefined) writeLatin1(this.buf, this.head(code, v.length), v);
  }
}

function writeLatin1(buf: Uint8Array, at: number, s: string): void {
  for (let i = 0; i < s.length; i++) buf[at + i] = s.charCodeAt(i);
}

function writeCString(buf: Uint8Array, at: number, max: number, s: string | undefined): void {
  buf.fill(0, at, at + max);
  if (s !== undefined) writeLatin1(buf, at, s.slice(0, max - 1));
}

/**
 * Write the message at off: header, cookie, options (53, 54, 50, 61, 57, 51, 58, 59, 1, 28,
 * 3, 6, 15, 12, 26, 55, 56, then `other`), END, zero padding up to BOOTP_MIN_LEN.
 * Returns bytes written; throws RangeError if the buffer is too small (a caller error).
 */
export function emitDhcp(f: DhcpFields, buf: Uint8Array, off: number): number {
  if (off + BOOTP_MIN_LEN > buf.length) throw new RangeError('DHCP emit: buffer too small');
  buf[off + DHCP_OP] = f.op;
  buf[off + DHCP_HTYPE] = f.htype;
  buf[off + DHCP_HLEN] = f.hlen;
  buf[off + DHCP_HOPS] = f.hops;
  writeU32(buf, off + DHCP_XID, f.xid);
  writeU16(buf, off + DHCP_SECS, f.secs);
  writeU16(buf, off + DHCP_FLAGS, f.flags);
  writeU32(buf, off + DHCP_CIADDR, f.ciaddr);
  writeU32(buf, off + DHCP_YIADDR, f.yiaddr);
  writeU32(buf, off + DHCP_SIADDR, f.siaddr);
  writeU32(buf, off + DHCP_GIADDR, f.giaddr);
  buf.fill(0, off + DHCP_CHADDR, off + DHCP_CHADDR + DHCP_CHADDR_LEN);
  writeMac(buf, off + DHCP_CHADDR, f.chaddr);
  writeCString(buf, off + DHCP_SNAME, DHCP_SNAME_LEN, f.sname);
  writeCString(buf, off + DHCP_FILE, DHCP_FILE_LEN, f.file);
  writeU32(buf, off + DHCP_COOKIE, DHCP_MAGIC_COOKIE);
  const p = f.options;
  const w = new OptionWriter(buf);
  w.o = off + DHCP_OPTIONS;
  w.u8(DHCP_OPT_MSG_TYPE, p.messageType);
  w.u32(DHCP_OPT_SERVER_ID, p.serverId);
  w.u32(DHCP_OPT_REQUESTED_IP, p.requestedIp);
  w.bytes(DHCP_OPT_CLIENT_ID, p.clientId);
  w.u16(DHCP_OPT_MAX_MSG_SIZE, p.maxMessageSize);
  w.u32(DHCP_OPT_LEASE_TIME, p.leaseTime);
  w.u32(DHCP_OPT_RENEWAL_TIME, p.renewalTime);
  w.u32(DHCP_OPT_REBINDING_TIME, p.rebindingTime);
  w.u32(DHCP_OPT_SUBNET_MASK, p.subnetMask);
  w.u32(DHCP_OPT_BROADCAST, p.broadcastAddr);
  w.addrs(DHCP_OPT_ROUTER, p.routers);
  w.addrs(DHCP_OPT_DNS, p.dnsServers);
  w.text(DHCP_OPT_DOMAIN_NAME, p.domainName);
  w.text(DHCP_OPT_HOST_NAME, p.hostName);
  w.u16(DHCP_OPT_MTU, p.mtu);
  w.bytes(DHCP_OPT_PARAM_REQUEST, p.paramRequestList);
  w.text(DHCP_OPT_MESSAGE, p.message);
  for (const x of p.other ?? []) w.bytes(x.code, x.data);
  if (w.o >= buf.length) throw new RangeError('DHCP emit: buffer too small');
  buf[w.o++] = DHCP_OPT_END;
  const end = Math.max(w.o, off + BOOTP_MIN_LEN);
  buf.fill(0, w.o, end);
  return end - off;
}
