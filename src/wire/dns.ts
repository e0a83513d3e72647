/*
 * DNS message (RFC 1035) with EDNS0 (RFC 6891), the payload of UDP/TCP port 53.
 *
 * DnsView.checkLen() walks the whole message once: header, questions, and the answer,
 * authority and additional records (owner names, fixed parts, rdata lengths), so after it
 * every offset it recorded is in bounds. It also notes what a forwarder needs without a
 * second pass: the first question (type, class, end of the question section), the OPT
 * record (EDNS UDP payload size, version, DO), the minimum answer TTL (for caching) and the
 * negative-caching TTL of an SOA in the authority section (RFC 2308 5: min(TTL, MINIMUM)).
 * Names: labels of at most 63 bytes, at most 255 bytes in all, compression pointers only
 * strictly backward of the run of labels that contains them (so no loop can be followed),
 * never into the header, at most 127 per name. Decoded names are presentation text without the final dot ('' = root),
 * with '.', '\' and non-printable bytes escaped as \. \\ \DDD.
 * DnsReplyWriter builds an answer in place from a checked query (header + question copied,
 * answers pointing at the question name) and falls back to a TC=1 header + question when
 * the answer would exceed the client's limit (512 without EDNS), so the client retries
 * over TCP. parseDns/emitDns are the plain-object form (emit compresses owner names).
 * TCP framing (RFC 1035 4.2.2 / RFC 7766): a 2-byte length before each message.
 */

import { readU16, readU32, writeU16, writeU32 } from './bytes.js';
import { DROP_DNS_BAD_NAME, DROP_DNS_BAD_OPT, DROP_DNS_BAD_POINTER, DROP_DNS_TOO_SHORT, DROP_DNS_TRUNCATED } from './drop.js';
import { parseIp4 } from './ip4.js';
import { WireView } from './view.js';

export const DNS_ID = 0;
export const DNS_FLAGS = 2;
export const DNS_QDCOUNT = 4;
export const DNS_ANCOUNT = 6;
export const DNS_NSCOUNT = 8;
export const DNS_ARCOUNT = 10;
export const DNS_HEADER_LEN = 12;
/** type + class + TTL + rdlength after a record's owner name. */
export const DNS_RR_FIXED_LEN = 10;
export const DNS_RR_TTL = 4; // offsets inside the fixed part
export const DNS_RR_RDLEN = 8;
/** Offset of the first question's name: what a pointer to "the question name" holds. */
export const DNS_QNAME_PTR = 0xc000 | DNS_HEADER_LEN;

export const DNS_PORT = 53;
/** Largest UDP answer a client without EDNS accepts (RFC 1035 4.2.1). */
export const DNS_UDP_LIMIT = 512;
export const DNS_MAX_NAME_LEN = 255;
export const DNS_MAX_LABEL_LEN = 63;
/** OPT record without options: root name, type, class, TTL, rdlength. */
export const DNS_OPT_LEN = 11;

export const DNS_FLAG_QR = 0x8000;
export const DNS_OPCODE_MASK = 0x7800;
export const DNS_FLAG_AA = 0x0400;
export const DNS_FLAG_TC = 0x0200;
export const DNS_FLAG_RD = 0x0100;
export const DNS_FLAG_RA = 0x0080;
export const DNS_FLAG_AD = 0x0020;
export const DNS_FLAG_CD = 0x0010;
export const DNS_RCODE_MASK = 0x000f;
export const DNS_EDNS_DO = 0x8000; // in the OPT TTL's low 16 bits

export const DNS_OPCODE_QUERY = 0;
export const DNS_RCODE_NOERROR = 0;
export const DNS_RCODE_FORMERR = 1;
export const DNS_RCODE_SERVFAIL = 2;
export const DNS_RCODE_NXDOMAIN = 3;
export const DNS_RCODE_NOTIMP = 4;
export const DNS_RCODE_REFUSED = 5;

export const DNS_TYPE_A = 1;
export const DNS_TYPE_NS = 2;
export const DNS_TYPE_CNAME = 5;
export const DNS_TYPE_SOA = 6;
export const DNS_TYPE_PTR = 12;
export const DNS_TYPE_MX = 15;
export const DNS_TYPE_TXT = 16;
export const DNS_TYPE_AAAA = 28;
export const DNS_TYPE_OPT = 41;
export const DNS_TYPE_ANY = 255;
export const DNS_CLASS_IN = 1;
export const DNS_CLASS_ANY = 255;

/** RFC 2181 8: a TTL with the top bit set counts as 0. */
function ttlOf(v: number): number {
  return v > 0x7fffffff ? 0 : v;
}

function appendLabel(s: string, b: Uint8Array, o: number, n: number): string {
  for (let i = o; i < o + n; i++) {
    const c = b[i];
    if (c === 0x2e || c === 0x5c) s += '\\' + String.fromCharCode(c);
    else if (c <= 0x20 || c >= 0x7f) s += '\\' + String(c).padStart(3, '0');
    else s += String.fromCharCode(c);
  }
  return s;
}

/** Pointers followed in one name at most (a name has at most 127 labels): bounds the work per name. */
const MAX_POINTER_HOPS = 127;

/**
 * Reads one (possibly compressed) name. read() returns 0 or a DROP_DNS_* code; after a 0,
 * `end` is the offset just after the name where it stands and `wireLen` its uncompressed
 * length; with decode, `name` is its presentation text (case kept). Reused, never allocated
 * per name.
 */
export class DnsNameReader {
  end = 0;
  wireLen = 0;
  name = '';

  /** The name at `at` of the message buf[msg, msgEnd). */
  read(buf: Uint8Array, msg: number, msgEnd: number, at: number, decode: boolean): number {
    let o = at;
    let run = at; // start of the current run of labels: a pointer must lead before it
    let end = -1;
    let wire = 1;
    let hops = 0;
    let s = '';
    for (;;) {
      if (o >= msgEnd) return DROP_DNS_BAD_NAME;
      const c = buf[o];
      if (c === 0) break;
      if ((c & 0xc0) === 0xc0) {
        if (o + 1 >= msgEnd) return DROP_DNS_BAD_NAME;
        const target = msg + (((c & 0x3f) << 8) | buf[o + 1]);
        if (target >= run || target < msg + DNS_HEADER_LEN || ++hops > MAX_POINTER_HOPS) return DROP_DNS_BAD_POINTER;
        if (end < 0) end = o + 2;
        o = run = target;
        continue;
      }
      if ((c & 0xc0) !== 0) return DROP_DNS_BAD_NAME; // extended / reserved label types
      wire += c + 1;
      if (wire > DNS_MAX_NAME_LEN || o + 1 + c > msgEnd) return DROP_DNS_BAD_NAME;
      if (decode) s = appendLabel(s.length > 0 ? s + '.' : s, buf, o + 1, c);
      o += 1 + c;
    }
    this.end = end < 0 ? o + 1 : end;
    this.wireLen = wire;
    if (decode) this.name = s;
    return 0;
  }
}

/** Wire form of a presentation name ('' or '.' = root; escapes \. \\ \DDD). Throws on an invalid name. */
export function encodeName(name: string): Uint8Array {
  const out: number[] = [];
  let label: number[] = [];
  const close = (): void => {
    if (label.length === 0 || label.length > DNS_MAX_LABEL_LEN) throw new Error(`dns name "${name}": label length ${label.length}`);
    out.push(label.length, ...label);
    label = [];
  };
  const n = name.endsWith('.') && !name.endsWith('\\.') ? name.length - 1 : name.length;
  for (let i = 0; i < n; i++) {
    let c = name.charCodeAt(i);
    if (c === 0x2e) {
      close();
      continue;
    }
    if (c === 0x5c) {
      const d = name.slice(i + 1, i + 4);
      if (/^\d{3}$/.test(d) && Number(d) < 256) {
        c = Number(d);
        i += 3;
      } else if (i + 1 < n) {
        c = name.charCodeAt(++i);
      }
    }
    if (c > 0xff) throw new Error(`dns name "${name}": not a byte string`);
    label.push(c);
  }
  if (n > 0) close();
  out.push(0);
  if (out.length > DNS_MAX_NAME_LEN) throw new Error(`dns name "${name}": longer than 255 bytes`);
  return Uint8Array.from(out);
}

/** len: bytes of the message (the UDP payload, or a TCP frame without its length prefix). */
export class DnsView extends WireView {
  /** Set by checkLen: absolute end of the question section, i.e. where the answers start. */
  questionEnd = 0;
  authorityOff = 0;
  additionalOff = 0;
  /** Absolute end of the last record (trailing bytes after it are ignored). */
  end = 0;
  /** First question's type and class (0 when qdcount is 0). */
  qtype = 0;
  qclass = 0;
  /** Offset of the OPT record, -1 without EDNS. */
  optOff = -1;
  /** EDNS UDP payload size (at least 512), 0 without EDNS. */
  ednsUdpSize = 0;
  /** The OPT record's TTL field: extended rcode (8 bits), version (8), DO (1), Z (15). */
  ednsTtl = 0;
  /** Least TTL in the answer section, -1 if it is empty. */
  minAnswerTtl = -1;
  /** min(TTL, MINIMUM) of the first SOA in the authority section, -1 if none. */
  negativeTtl = -1;
  readonly names = new DnsNameReader();

  /** 0 if the whole message is sound and in bounds, else a DROP_DNS_* code. */
  checkLen(): number {
    return this.walk(0);
  }

  /** Age every record's TTL (except OPT's) by `seconds`, not below 0; call after checkLen passed. */
  ageTtls(seconds: number): void {
    this.walk(seconds);
  }

  private walk(age: number): number {
    this.optOff = -1;
    this.ednsUdpSize = 0;
    this.ednsTtl = 0;
    this.minAnswerTtl = -1;
    this.negativeTtl = -1;
    this.qtype = 0;
    this.qclass = 0;
    if (this.len < DNS_HEADER_LEN) return DROP_DNS_TOO_SHORT;
    const b = this.buf;
    const m = this.off;
    const end = m + this.len;
    const nr = this.names;
    let o = m + DNS_HEADER_LEN;
    const qd = readU16(b, m + DNS_QDCOUNT);
    for (let i = 0; i < qd; i++) {
      const e = nr.read(b, m, end, o, false);
      if (e !== 0) return e;
      o = nr.end;
      if (o + 4 > end) return DROP_DNS_TRUNCATED;
      if (i === 0) {
        this.qtype = readU16(b, o);
        this.qclass = readU16(b, o + 2);
      }
      o += 4;
    }
    this.questionEnd = o;
    for (let s = 0; s < 3; s++) {
      if (s === 1) this.authorityOff = o;
      else if (s === 2) this.additionalOff = o;
      const n = readU16(b, m + DNS_ANCOUNT + 2 * s);
      for (let i = 0; i < n; i++) {
        const owner = o;
        const e = nr.read(b, m, end, o, false);
        if (e !== 0) return e;
        o = nr.end;
        if (o + DNS_RR_FIXED_LEN > end) return DROP_DNS_TRUNCATED;
        const type = readU16(b, o);
        const rd = o + DNS_RR_FIXED_LEN;
        const rdl = readU16(b, o + DNS_RR_RDLEN);
        if (rd + rdl > end) return DROP_DNS_TRUNCATED;
        if (type === DNS_TYPE_OPT) {
          if (s !== 2 || this.optOff >= 0 || b[owner] !== 0) return DROP_DNS_BAD_OPT;
          this.optOff = owner;
          this.ednsUdpSize = Math.max(DNS_UDP_LIMIT, readU16(b, o + 2));
          this.ednsTtl = readU32(b, o + DNS_RR_TTL);
        } else {
          let ttl = ttlOf(readU32(b, o + DNS_RR_TTL));
          if (age > 0) {
            ttl = Math.max(0, ttl - age);
            writeU32(b, o + DNS_RR_TTL, ttl);
          }
          if (s === 0) this.minAnswerTtl = this.minAnswerTtl < 0 ? ttl : Math.min(this.minAnswerTtl, ttl);
          else if (s === 1 && type === DNS_TYPE_SOA && this.negativeTtl < 0 && rdl >= 22) {
            this.negativeTtl = Math.min(ttl, ttlOf(readU32(b, rd + rdl - 4)));
          }
        }
        o = rd + rdl;
      }
    }
    this.end = o;
    return 0;
  }

  get id(): number {
    return readU16(this.buf, this.off + DNS_ID);
  }
  set id(v: number) {
    writeU16(this.buf, this.off + DNS_ID, v);
  }
  get flags(): number {
    return readU16(this.buf, this.off + DNS_FLAGS);
  }
  set flags(v: number) {
    writeU16(this.buf, this.off + DNS_FLAGS, v);
  }
  get qr(): boolean {
    return (this.flags & DNS_FLAG_QR) !== 0;
  }
  get opcode(): number {
    return (this.flags & DNS_OPCODE_MASK) >>> 11;
  }
  get tc(): boolean {
    return (this.flags & DNS_FLAG_TC) !== 0;
  }
  get rd(): boolean {
    return (this.flags & DNS_FLAG_RD) !== 0;
  }
  get rcode(): number {
    return this.flags & DNS_RCODE_MASK;
  }
  get qdcount(): number {
    return readU16(this.buf, this.off + DNS_QDCOUNT);
  }
  get ancount(): number {
    return readU16(this.buf, this.off + DNS_ANCOUNT);
  }
  get nscount(): number {
    return readU16(this.buf, this.off + DNS_NSCOUNT);
  }
  get arcount(): number {
    return readU16(this.buf, this.off + DNS_ARCOUNT);
  }
  get ednsVersion(): number {
    return (this.ednsTtl >>> 16) & 0xff;
  }
  get ednsDo(): boolean {
    return (this.ednsTtl & DNS_EDNS_DO) !== 0;
  }
  /** Whether the OPT record is the message's last record (it can then be cut off as a suffix). */
  get optIsLast(): boolean {
    return this.optOff >= 0 && this.optOff + DNS_OPT_LEN + readU16(this.buf, this.optOff + 9) === this.end;
  }
  /** The first question's name in lower case (valid after checkLen with qdcount >= 1). */
  questionName(): string {
    this.names.read(this.buf, this.off, this.off + this.len, this.off + DNS_HEADER_LEN, true);
    return this.names.name.toLowerCase();
  }
}

export interface DnsQuestion {
  name: string;
  type: number;
  class: number;
}

export interface DnsRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  /** rdata; names inside NS/CNAME/PTR/SOA/MX rdata are decompressed (standalone wire form). */
  data: Uint8Array;
}

export interface DnsMessage {
  id: number;
  flags: number;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
}

/** Leading rdata bytes before a name for types whose rdata holds names (-1: no name). */
function rdataNamePrefix(type: number): number {
  return type === DNS_TYPE_NS || type === DNS_TYPE_CNAME || type === DNS_TYPE_PTR || type === DNS_TYPE_SOA ? 0 : type === DNS_TYPE_MX ? 2 : -1;
}

/** Parse the whole message; null if checkLen fails or a name inside rdata is malformed. */
export function parseDns(buf: Uint8Array, off: number, len: number): DnsMessage | null {
  const v = new DnsView().reset(buf, off, len);
  if (v.checkLen() !== 0) return null;
  const nr = v.names;
  const end = off + len;
  const name = (at: number): string | null => (nr.read(buf, off, end, at, true) === 0 ? nr.name : null);
  const m: DnsMessage = { id: v.id, flags: v.flags, questions: [], answers: [], authorities: [], additionals: [] };
  let o = off + DNS_HEADER_LEN;
  for (let i = 0; i < v.qdcount; i++) {
    m.questions.push({ name: name(o)!, type: readU16(buf, nr.end), class: readU16(buf, nr.end + 2) });
    o = nr.end + 4;
  }
  const sections = [m.answers, m.authorities, m.additionals];
  for (let s = 0; s < 3; s++) {
    const n = readU16(buf, off + DNS_ANCOUNT + 2 * s);
    for (let i = 0; i < n; i++) {
      const owner = name(o)!;
      const f = nr.end;
      const type = readU16(buf, f);
      const rd = f + DNS_RR_FIXED_LEN;
      const rdEnd = rd + readU16(buf, f + DNS_RR_RDLEN);
      let data = buf.slice(rd, rdEnd);
      const pre = rdataNamePrefix(type);
      if (pre >= 0) {
        // Re-encode the name(s) without compression: SOA has two, then 20 fixed bytes.
        const parts: Uint8Array[] = [buf.slice(rd, rd + pre)];
        let p = rd + pre;
        for (let k = 0; k < (type === DNS_TYPE_SOA ? 2 : 1); k++) {
          const t = p < rdEnd ? name(p) : null;
          if (t === null || nr.end > rdEnd) return null;
          parts.push(encodeName(t));
          p = nr.end;
        }
        parts.push(buf.slice(p, rdEnd));
        data = Uint8Array.from(parts.flatMap((x) => Array.from(x)));
      }
      sections[s].push({ name: owner, type, class: readU16(buf, f + 2), ttl: readU32(buf, f + DNS_RR_TTL), data });
      o = rdEnd;
    }
  }
  return m;
}

function lowerKey(w: Uint8Array, from: number): string {
  let s = '';
  for (let i = from; i < w.length; i++) {
    const c = w[i];
    s += String.fromCharCode(c >= 0x41 && c <= 0x5a ? c | 0x20 : c);
  }
  return s;
}

/** Writes at `o`, checked against the buffer's end; compresses names against the ones written. */
class MessageWriter {
  o: number;
  private readonly names = new Map<string, number>();
  constructor(
    readonly buf: Uint8Array,
    readonly start: number,
  ) {
    this.o = start;
  }
  room(n: number): number {
    if (this.o + n > this.buf.length) throw new RangeError('DNS emit: buffer too small');
    const at = this.o;
    this.o += n;
    return at;
  }
  bytes(b: ArrayLike<number>): void {
    this.buf.set(b, this.room(b.length));
  }
  u16(v: number): void {
    writeU16(this.buf, this.room(2), v);
  }
  u32(v: number): void {
    writeU32(this.buf, this.room(4), v);
  }
  name(n: string): void {
    const w = encodeName(n);
    let p = 0;
    let ptr = -1;
    while (w[p] !== 0) {
      const at = this.names.get(lowerKey(w, p));
      if (at !== undefined) {
        ptr = at;
        break;
      }
      p += w[p] + 1;
    }
    const rel = this.o - this.start;
    for (let q = 0; q < p; q += w[q] + 1) if (rel + q < 0x4000) this.names.set(lowerKey(w, q), rel + q);
    if (ptr < 0) {
      this.bytes(w);
      return;
    }
    this.bytes(w.subarray(0, p));
    this.u16(0xc000 | ptr);
  }
}

/** Write the message at off (owner and question names compressed); returns bytes written. Throws RangeError if it does not fit. */
export function emitDns(m: DnsMessage, buf: Uint8Array, off: number): number {
  const w = new MessageWriter(buf, off);
  w.u16(m.id);
  w.u16(m.flags);
  for (const n of [m.questions.length, m.answers.length, m.authorities.length, m.additionals.length]) w.u16(n);
  for (const q of m.questions) {
    w.name(q.name);
    w.u16(q.type);
    w.u16(q.class);
  }
  for (const r of [...m.answers, ...m.authorities, ...m.additionals]) {
    w.name(r.name);
    w.u16(r.type);
    w.u16(r.class);
    w.u32(r.ttl);
    w.u16(r.data.length);
    w.bytes(r.data);
  }
  return w.o - off;
}

export function dnsA(name: string, ttl: number, ip: number): DnsRecord {
  const data = new Uint8Array(4);
  writeU32(data, 0, ip);
  return { name, type: DNS_TYPE_A, class: DNS_CLASS_IN, ttl, data };
}

export function dnsAaaa(name: string, ttl: number, addr: Uint8Array): DnsRecord {
  return { name, type: DNS_TYPE_AAAA, class: DNS_CLASS_IN, ttl, data: addr.slice(0, 16) };
}

export function dnsPtr(name: string, ttl: number, target: string): DnsRecord {
  return { name, type: DNS_TYPE_PTR, class: DNS_CLASS_IN, ttl, data: encodeName(target) };
}

/** SOA rdata: mname, rname, serial, refresh, retry, expire, minimum. */
export function soaRdata(mname: string, rname: string, serial: number, refresh: number, retry: number, expire: number, minimum: number): Uint8Array {
  const a = encodeName(mname);
  const b = encodeName(rname);
  const out = new Uint8Array(a.length + b.length + 20);
  out.set(a, 0);
  out.set(b, a.length);
  [serial, refresh, retry, expire, minimum].forEach((v, i) => writeU32(out, a.length + b.length + 4 * i, v));
  return out;
}

const IN_ADDR_ARPA = '.in-addr.arpa';

/** "2.0.100.10.in-addr.arpa" for 10.100.0.2. */
export function reverseName4(ip: number): string {
  return `${ip & 0xff}.${(ip >>> 8) & 0xff}.${(ip >>> 16) & 0xff}.${ip >>> 24}${IN_ADDR_ARPA}`;
}

/** The 32-nibble ip6.arpa name of a 16-byte address. */
export function reverseName6(addr: Uint8Array): string {
  let s = '';
  for (let i = 15; i >= 0; i--) s += `${(addr[i] & 0xf).toString(16)}.${(addr[i] >>> 4).toString(16)}.`;
  return s + 'ip6.arpa';
}

/** The IPv4 address of a full in-addr.arpa name (lower case), or -1. */
export function parseReverseName4(name: string): number {
  if (!name.endsWith(IN_ADDR_ARPA)) return -1;
  return parseIp4(name.slice(0, -IN_ADDR_ARPA.length).split('.').reverse().join('.')) ?? -1;
}

/** The 16-byte address of a full ip6.arpa name (lower case), or null. */
export function parseReverseName6(name: string): Uint8Array | null {
  if (!/^([0-9a-f]\.){32}ip6\.arpa$/.test(name)) return null;
  const a = new Uint8Array(16);
  for (let i = 0; i < 32; i++) {
    const nib = parseInt(name[2 * i], 16);
    const byte = 15 - (i >> 1);
    a[byte] |= (i & 1) === 0 ? nib : nib << 4;
  }
  return a;
}

/**
 * Builds a reply in a caller buffer from a checked query (DnsView after checkLen):
 * begin() copies the header and the question section and sets the flags; rr() adds records
 * in section order (answers, then authority, then additional); finish() closes with an OPT
 * record when ednsSize > 0 and returns the length. A record that would pass `limit` turns
 * the reply into header + question (+ OPT) with TC set. Reused, no allocation.
 */
export class DnsReplyWriter {
  private buf: Uint8Array = new Uint8Array(0);
  private start = 0;
  private o = 0;
  private limit = 0;
  private qEnd = 0;
  private ednsSize = 0;
  private overflow = false;
  private readonly counts = [0, 0, 0];

  begin(q: DnsView, out: Uint8Array, outOff: number, limit: number, flags: number, ednsSize: number): this {
    const n = q.questionEnd - q.off;
    const opt = ednsSize > 0 ? DNS_OPT_LEN : 0;
    if (outOff + n + opt > out.length) throw new RangeError('DNS reply: buffer too small');
    this.buf = out;
    this.start = outOff;
    this.limit = Math.min(limit, out.length - outOff) - opt;
    this.ednsSize = ednsSize;
    this.overflow = false;
    this.counts.fill(0);
    if (out === q.buf) out.copyWithin(outOff, q.off, q.questionEnd);
    else out.set(q.buf.subarray(q.off, q.questionEnd), outOff);
    writeU16(out, outOff + DNS_FLAGS, flags);
    this.qEnd = this.o = outOff + n;
    return this;
  }

  /** Mark the reply truncated: finish() writes header + question only, with TC. */
  truncate(): void {
    this.overflow = true;
  }

  get truncated(): boolean {
    return this.overflow;
  }

  /**
   * Add a record to section 0 (answer), 1 (authority) or 2 (additional). owner: wire-form
   * name bytes, or null for a pointer to the question name. rdata: bytes, or a number for a
   * 4-byte address (A).
   */
  rr(section: number, owner: Uint8Array | null, type: number, ttl: number, rdata: Uint8Array | number): void {
    const ownerLen = owner === null ? 2 : owner.length;
    const rdl = typeof rdata === 'number' ? 4 : rdata.length;
    if (this.overflow || this.o + ownerLen + DNS_RR_FIXED_LEN + rdl - this.start > this.limit) {
      this.overflow = true;
      return;
    }
    const b = this.buf;
    let o = this.o;
    if (owner === null) writeU16(b, o, DNS_QNAME_PTR);
    else b.set(owner, o);
    o += ownerLen;
    writeU16(b, o, type);
    writeU16(b, o + 2, DNS_CLASS_IN);
    writeU32(b, o + DNS_RR_TTL, ttl);
    writeU16(b, o + DNS_RR_RDLEN, rdl);
    o += DNS_RR_FIXED_LEN;
    if (typeof rdata === 'number') writeU32(b, o, rdata);
    else b.set(rdata, o);
    this.o = o + rdl;
    this.counts[section]++;
  }

  /** Copy records (already in wire form, `counts` per section) from src[from, to) after the question. */
  copyRecords(src: Uint8Array, from: number, to: number, an: number, ns: number, ar: number): void {
    if (this.overflow || this.o + (to - from) - this.start > this.limit) {
      this.overflow = true;
      return;
    }
    this.buf.set(src.subarray(from, to), this.o);
    this.o += to - from;
    this.counts[0] += an;
    this.counts[1] += ns;
    this.counts[2] += ar;
  }

  finish(): number {
    const b = this.buf;
    const s = this.start;
    if (this.overflow) {
      this.o = this.qEnd;
      this.counts.fill(0);
      writeU16(b, s + DNS_FLAGS, readU16(b, s + DNS_FLAGS) | DNS_FLAG_TC);
    }
    if (this.ednsSize > 0) {
      const o = this.o;
      b[o] = 0;
      writeU16(b, o + 1, DNS_TYPE_OPT);
      writeU16(b, o + 3, this.ednsSize);
      writeU32(b, o + 5, 0);
      writeU16(b, o + 9, 0);
      this.o = o + DNS_OPT_LEN;
      this.counts[2]++;
    }
    writeU16(b, s + DNS_ANCOUNT, this.counts[0]);
    writeU16(b, s + DNS_NSCOUNT, this.counts[1]);
    writeU16(b, s + DNS_ARCOUNT, this.counts[2]);
    return this.o - s;
  }
}

/**
 * A query of len bytes at off without additional records gets an OPT record advertising
 * udpSize (a forwarder asks its upstream for answers as large as it can take); returns the
 * new length (len unchanged when there are additional records or no room in buf).
 */
export function appendEdnsOpt(buf: Uint8Array, off: number, len: number, udpSize: number): number {
  if (len < DNS_HEADER_LEN || readU16(buf, off + DNS_ARCOUNT) !== 0 || off + len + DNS_OPT_LEN > buf.length) return len;
  const o = off + len;
  buf[o] = 0; // root owner
  writeU16(buf, o + 1, DNS_TYPE_OPT);
  writeU16(buf, o + 3, udpSize);
  buf.fill(0, o + 5, o + DNS_OPT_LEN); // extended rcode, version, flags, rdlength
  writeU16(buf, off + DNS_ARCOUNT, 1);
  return len + DNS_OPT_LEN;
}

// ---- TCP framing ----

export const DNS_TCP_PREFIX_LEN = 2;

/** Length of the message whose frame starts at off if the whole frame is in buf[off, off+avail), else -1. */
export function dnsTcpFrameLength(buf: Uint8Array, off: number, avail: number): number {
  if (avail < DNS_TCP_PREFIX_LEN) return -1;
  const n = readU16(buf, off);
  return DNS_TCP_PREFIX_LEN + n <= avail ? n : -1;
}

/** Write the 2-byte length prefix for a message of msgLen bytes that follows at off + 2. */
export function writeDnsTcpPrefix(buf: Uint8Array, off: number, msgLen: number): void {
  writeU16(buf, off, msgLen);
}

/**
 * Reassembles length-prefixed messages from a TCP byte stream in a fixed buffer (room for
 * one maximal frame plus what follows it). push() accepts what fits; next() yields the next
 * complete message as (msgOff, msgLen) in `buf`, valid until the following next()/push().
 */
export class DnsTcpReader {
  readonly buf: Uint8Array;
  private head = 0;
  private tail = 0;
  msgOff = 0;
  msgLen = 0;

  constructor(capacity = 2 * (DNS_TCP_PREFIX_LEN + 0xffff)) {
    this.buf = new Uint8Array(Math.max(capacity, DNS_TCP_PREFIX_LEN + 0xffff));
  }

  /** Buffered bytes not yet returned as messages. */
  get buffered(): number {
    return this.tail - this.head;
  }

  /** Copy in up to len bytes of src at off; returns how many were taken (the rest: push again after next()). */
  push(src: Uint8Array, off: number, len: number): number {
    if (this.tail + len > this.buf.length && this.head > 0) {
      this.buf.copyWithin(0, this.head, this.tail);
      this.tail -= this.head;
      this.head = 0;
    }
    const n = Math.min(len, this.buf.length - this.tail);
    this.buf.set(src.subarray(off, off + n), this.tail);
    this.tail += n;
    return n;
  }

  /** true and msgOff/msgLen set if a complete message is buffered. */
  next(): boolean {
    const n = dnsTcpFrameLength(this.buf, this.head, this.tail - this.head);
    if (n < 0) return false;
    this.msgOff = this.head + DNS_TCP_PREFIX_LEN;
    this.msgLen = n;
    this.head += DNS_TCP_PREFIX_LEN + n;
    if (this.head === this.tail) this.head = this.tail = 0;
    return true;
  }
}
