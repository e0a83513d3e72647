/*
 * DNS resolver logic for the gateway: local names, a forwarder with id remapping, and a
 * cache. No I/O and no timers; the caller passes its ms clock (`now`) and the buffers.
 *
 * Inputs:  handleQuery(buf, off, len, peer, now, out, outOff, tcp)  a client's query
 *          handleUpstream(buf, off, len, now, out, outOff)          an upstream's answer
 *          expire(now, out, outOff)                                  (call in a loop on a tick)
 * Output:  the resolver's DnsResult (reused; valid until the next call): DNS_REPLY (send
 *          out[outOff, +len) to `peer`), DNS_FORWARD (send it to the upstream), DNS_DROP
 *          (`drop` is the reason, counted in `drops`) or DNS_NONE. `out` may be the input
 *          buffer itself (in place); it must hold a query of `len` bytes, and bounds replies
 *          too (a longer one is truncated).
 * Does:    A/AAAA (and ANY) for registered hosts under `domain` ("red.tapbridge.internal")
 *          and as a bare single label ("red"); NXDOMAIN for unknown names in the domain,
 *          NODATA for other types, both with the zone's SOA (RFC 2308); PTR for registered
 *          addresses (in-addr.arpa, ip6.arpa) and NXDOMAIN for unknown ones inside
 *          `localNetworks`. Everything else: the cache, else forwarded upstream with a
 *          fresh random id (concurrent clients using the same id do not clash); the answer
 *          must match the transaction's id and question, goes back with the client's id,
 *          and is cut to header + question with TC when larger than the client's limit
 *          (512, or its EDNS size capped at `udpPayloadSize`; 65535 over TCP). A
 *          transaction unanswered for `queryTimeoutMs` gets SERVFAIL. Opcodes other than
 *          QUERY get NOTIMP, qdcount != 1 FORMERR; malformed queries are dropped. The EDNS
 *          version is not checked (no BADVERS).
 * Cache:   key (name, type, class, DO); positive answers live min(answer TTLs, maxTtlS),
 *          negative ones (NXDOMAIN / NODATA with an SOA) min(SOA TTL, MINIMUM,
 *          negativeTtlCapS); no SOA, TC, TTL 0 or other rcodes: not cached. Served with
 *          the client's id, RD and question, TTLs aged, our OPT when the client sent EDNS.
 *          Bounded by entries and bytes, least recently used evicted first.
 * Bounds:  maxInFlight transactions (beyond: SERVFAIL), maxHosts names. Transactions expire
 *          in the order they were made (one timeout for all, `now` never going back).
 * Caller:  sends forwarded queries to one upstream and passes only that upstream's answers
 *          to handleUpstream (the id + question match is the resolver's part of the check).
 * Config:  DnsResolverConfig. Counters: `counters` by event, `drops` by reason name.
 */

import { randomInt } from 'node:crypto';
import {
  DNS_CLASS_ANY, DNS_CLASS_IN, DNS_FLAG_AA, DNS_FLAG_CD, DNS_FLAG_QR, DNS_FLAG_RA, DNS_FLAG_RD, DNS_FLAG_TC,
  DNS_HEADER_LEN, DNS_OPCODE_MASK, DNS_OPCODE_QUERY, DNS_RCODE_FORMERR, DNS_RCODE_NOERROR, DNS_RCODE_NOTIMP,
  DNS_RCODE_NXDOMAIN, DNS_RCODE_REFUSED, DNS_RCODE_SERVFAIL, DNS_TYPE_A, DNS_TYPE_AAAA, DNS_TYPE_ANY, DNS_TYPE_PTR,
  DNS_TYPE_SOA, DNS_UDP_LIMIT, DnsReplyWriter, DnsView, encodeName, parseReverseName4, parseReverseName6, soaRdata,
} from '../wire/dns.js';
import { bytesToHex, readU16, writeU16 } from '../wire/bytes.js';
import { countDrop, DROP_DNS_NOT_QUERY, DROP_DNS_UNEXPECTED_REPLY } from '../core/drops.js';
import { inPrefix } from '../wire/ip4.js';

export const DNS_NONE = 0;
export const DNS_REPLY = 1;
export const DNS_FORWARD = 2;
export const DNS_DROP = 3;

export interface DnsResolverConfig {
  /** The local zone, e.g. "tapbridge.internal". */
  domain: string;
  /** TTL of local answers and the SOA MINIMUM of the zone (default 10 s). */
  localTtlS?: number;
  /** IPv4 networks whose reverse names are answered locally (NXDOMAIN when unknown). */
  localNetworks?: { addr: number; prefixLen: number }[];
  maxHosts?: number; // default 4096
  maxInFlight?: number; // default 256
  queryTimeoutMs?: number; // default 3000
  cacheMaxEntries?: number; // default 1024
  cacheMaxBytes?: number; // default 1 MiB
  maxTtlS?: number; // default 1 day
  negativeTtlCapS?: number; // default 15 min
  /** Our EDNS UDP payload size: the cap on a client's (default 1232, at least 512). */
  udpPayloadSize?: number;
  /** Source of upstream ids (0..65535); default node:crypto randomInt. */
  randomId?: () => number;
}

export class DnsResult<P> {
  action = DNS_NONE;
  len = 0;
  drop = 0;
  peer: P | undefined = undefined;
}

interface Txn<P> {
  upstreamId: number;
  peer: P;
  /** The client's header + question (client id; an/ns/ar counts zeroed). */
  query: Uint8Array;
  key: string;
  limit: number;
  ednsSize: number;
  deadline: number;
}

interface CacheEntry {
  flags: number;
  an: number;
  ns: number;
  ar: number;
  /** The records after the question (no OPT), pointers relative to a same-length question. */
  body: Uint8Array;
  storedAt: number;
  expires: number;
  size: number;
}

interface Host {
  v4: number[];
  v6: Uint8Array[];
}

const LABELS = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

function lower(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
}

function positive(v: number | undefined, dflt: number, field: string, min = 1): number {
  const x = v ?? dflt;
  if (!Number.isInteger(x) || x < min) throw new Error(`dns config: ${field}: must be an integer >= ${min}`);
  return x;
}

export class DnsResolver<P = unknown> {
  readonly domain: string;
  readonly localTtlS: number;
  readonly maxHosts: number;
  readonly maxInFlight: number;
  readonly queryTimeoutMs: number;
  readonly cacheMaxEntries: number;
  readonly cacheMaxBytes: number;
  readonly maxTtlS: number;
  readonly negativeTtlCapS: number;
  readonly udpPayloadSize: number;
  private readonly localNetworks: { addr: number; prefixLen: number }[];
  private readonly randomId: () => number;
  private readonly zoneOwner: Uint8Array;
  private readonly zoneSoa: Uint8Array;

  private readonly hostTable = new Map<string, Host>();
  private readonly byAddr4 = new Map<number, Uint8Array>();
  private readonly byAddr6 = new Map<string, Uint8Array>();
  private readonly txns = new Map<number, Txn<P>>();
  private readonly cache = new Map<string, CacheEntry>();
  private cacheBytesUsed = 0;

  private readonly qv = new DnsView();
  private readonly ov = new DnsView();
  private readonly writer = new DnsReplyWriter();
  private readonly res = new DnsResult<P>();

  readonly counters = {
    queries: 0,
    localAnswers: 0,
    localNxdomain: 0,
    localNodata: 0,
    cacheHits: 0,
    cacheStored: 0,
    cacheNegativeStored: 0,
    cacheEvicted: 0,
    cacheExpired: 0,
    forwarded: 0,
    upstreamReplies: 0,
    timeouts: 0,
    inFlightFull: 0,
    truncated: 0,
    formErr: 0,
    notImp: 0,
    refused: 0,
    servFail: 0,
    dropped: 0,
  };
  readonly drops: Record<string, number> = {};

  constructor(cfg: DnsResolverConfig) {
    this.domain = cfg.domain.toLowerCase().replace(/\.$/, '');
    if (!LABELS.test(this.domain)) throw new Error(`dns config: domain: "${cfg.domain}" is not a host name`);
    this.localTtlS = positive(cfg.localTtlS, 10, 'localTtlS', 0);
    this.maxHosts = positive(cfg.maxHosts, 4096, 'maxHosts');
    this.maxInFlight = positive(cfg.maxInFlight, 256, 'maxInFlight');
    if (this.maxInFlight > 32768) throw new Error('dns config: maxInFlight: at most 32768');
    this.queryTimeoutMs = positive(cfg.queryTimeoutMs, 3000, 'queryTimeoutMs');
    this.cacheMaxEntries = positive(cfg.cacheMaxEntries, 1024, 'cacheMaxEntries', 0);
    this.cacheMaxBytes = positive(cfg.cacheMaxBytes, 1 << 20, 'cacheMaxBytes', 0);
    this.maxTtlS = positive(cfg.maxTtlS, 86400, 'maxTtlS');
    this.negativeTtlCapS = positive(cfg.negativeTtlCapS, 900, 'negativeTtlCapS', 0);
    this.udpPayloadSize = positive(cfg.udpPayloadSize, 1232, 'udpPayloadSize', DNS_UDP_LIMIT);
    if (this.udpPayloadSize > 65535) throw new Error('dns config: udpPayloadSize: at most 65535');
    this.localNetworks = (cfg.localNetworks ?? []).map((n) => ({ addr: n.addr >>> 0, prefixLen: n.prefixLen }));
    this.randomId = cfg.randomId ?? (() => randomInt(0, 65536));
    this.zoneOwner = encodeName(this.domain);
    this.zoneSoa = soaRdata(this.domain, `hostmaster.${this.domain}`, 1, 3600, 600, 86400, this.localTtlS);
  }

  /** Transactions waiting for an upstream answer. */
  get inFlight(): number {
    return this.txns.size;
  }
  get cacheEntries(): number {
    return this.cache.size;
  }
  get cacheBytes(): number {
    return this.cacheBytesUsed;
  }

  /** "red", "red.tapbridge.internal" or "red.tapbridge.internal." -> "red"; null if not a valid host name. */
  private hostKey(name: string): string | null {
    let n = name.toLowerCase().replace(/\.$/, '');
    if (n.endsWith(`.${this.domain}`)) n = n.slice(0, -this.domain.length - 1);
    return LABELS.test(n) && n.length + this.domain.length + 2 <= 255 ? n : null;
  }

  /**
   * Register (or replace) a host's addresses (IPv4 as uint32, IPv6 as 16 bytes). Returns
   * false for an invalid name (e.g. a DHCP client's odd host name) or a full table.
   */
  setHost(name: string, v4: number[], v6: Uint8Array[] = []): boolean {
    const h = this.hostKey(name);
    if (h === null || (!this.hostTable.has(h) && this.hostTable.size >= this.maxHosts)) return false;
    this.removeHost(h);
    const fqdn = encodeName(`${h}.${this.domain}`);
    const host: Host = { v4: v4.map((a) => a >>> 0), v6: v6.map((a) => a.slice(0, 16)) };
    this.hostTable.set(h, host);
    for (const a of host.v4) this.byAddr4.set(a, fqdn);
    for (const a of host.v6) this.byAddr6.set(bytesToHex(a), fqdn);
    return true;
  }

  removeHost(name: string): boolean {
    const h = this.hostKey(name);
    const host = h === null ? undefined : this.hostTable.get(h);
    if (host === undefined) return false;
    this.hostTable.delete(h!);
    for (const a of host.v4) this.byAddr4.delete(a);
    for (const a of host.v6) this.byAddr6.delete(bytesToHex(a));
    return true;
  }

  hosts(): { name: string; v4: number[]; v6: Uint8Array[] }[] {
    return [...this.hostTable].map(([h, x]) => ({ name: `${h}.${this.domain}`, v4: [...x.v4], v6: x.v6.map((a) => a.slice()) }));
  }

  /** Drop every cached answer. */
  flushCache(): void {
    this.cache.clear();
    this.cacheBytesUsed = 0;
  }

  /** A client's query (UDP payload, or a TCP message without its length prefix). */
  handleQuery(buf: Uint8Array, off: number, len: number, peer: P, now: number, out: Uint8Array, outOff: number, tcp = false): DnsResult<P> {
    const r = this.result(peer);
    this.counters.queries++;
    const q = this.qv.reset(buf, off, len);
    const e = q.checkLen();
    if (e !== 0) return this.drop(e);
    if (q.qr) return this.drop(DROP_DNS_NOT_QUERY);
    const ednsSize = q.ednsUdpSize > 0 ? this.udpPayloadSize : 0;
    const limit = tcp ? 0xffff : q.ednsUdpSize > 0 ? Math.min(q.ednsUdpSize, this.udpPayloadSize) : DNS_UDP_LIMIT;
    if (q.opcode !== DNS_OPCODE_QUERY) {
      this.counters.notImp++;
      return this.reply(q, DNS_RCODE_NOTIMP, out, outOff, limit, ednsSize);
    }
    if (q.qdcount !== 1) {
      this.counters.formErr++;
      return this.reply(q, DNS_RCODE_FORMERR, out, outOff, limit, ednsSize);
    }
    const name = q.questionName();
    if (this.answerLocal(q, name, out, outOff, limit, ednsSize)) return r;
    const key = `${name}|${q.qtype}|${q.qclass}|${q.ednsDo ? 1 : 0}`;
    const c = this.cacheGet(key, now);
    if (c !== undefined) {
      this.counters.cacheHits++;
      return this.serveCached(q, c, now, out, outOff, limit, ednsSize);
    }
    if (this.txns.size >= this.maxInFlight) {
      this.counters.inFlightFull++;
      this.counters.servFail++;
      return this.reply(q, DNS_RCODE_SERVFAIL, out, outOff, limit, ednsSize);
    }
    const id = this.newId();
    const query = buf.slice(off, q.questionEnd);
    query.fill(0, 6, DNS_HEADER_LEN); // an/ns/ar counts: the copy holds the question only
    this.txns.set(id, { upstreamId: id, peer, query, key, limit, ednsSize, deadline: now + this.queryTimeoutMs });
    if (out !== buf || outOff !== off) out.set(buf.subarray(off, off + len), outOff);
    writeU16(out, outOff, id);
    this.counters.forwarded++;
    r.action = DNS_FORWARD;
    r.len = len;
    return r;
  }

  /** An upstream's answer: back to the client of the matching transaction (and into the cache). */
  handleUpstream(buf: Uint8Array, off: number, len: number, now: number, out: Uint8Array, outOff: number): DnsResult<P> {
    const r = this.result(undefined);
    this.counters.upstreamReplies++;
    const v = this.qv.reset(buf, off, len);
    const e = v.checkLen();
    if (e !== 0) return this.drop(e);
    const t = v.qr ? this.txns.get(v.id) : undefined;
    if (t === undefined || !this.sameQuestion(v, t.query)) return this.drop(DROP_DNS_UNEXPECTED_REPLY);
    this.txns.delete(t.upstreamId);
    this.cacheStore(v, t, now);
    r.peer = t.peer;
    r.action = DNS_REPLY;
    if (len <= Math.min(t.limit, out.length - outOff)) {
      if (out !== buf || outOff !== off) out.set(buf.subarray(off, off + len), outOff);
      r.len = len;
    } else {
      this.counters.truncated++;
      const w = this.writer.begin(v, out, outOff, t.limit, v.flags, t.ednsSize);
      w.truncate();
      r.len = w.finish();
    }
    writeU16(out, outOff, readU16(t.query, 0)); // the client's id
    return r;
  }

  /**
   * The oldest transaction past its deadline, answered with SERVFAIL (DNS_REPLY to its
   * peer), or DNS_NONE when none is due. Call until DNS_NONE.
   */
  expire(now: number, out: Uint8Array, outOff: number): DnsResult<P> {
    const r = this.result(undefined);
    for (const t of this.txns.values()) {
      if (t.deadline > now) break;
      this.txns.delete(t.upstreamId);
      this.counters.timeouts++;
      this.counters.servFail++;
      const q = this.ov.reset(t.query, 0, t.query.length);
      q.checkLen();
      this.reply(q, DNS_RCODE_SERVFAIL, out, outOff, t.limit, t.ednsSize);
      r.peer = t.peer;
      return r;
    }
    return r;
  }

  private result(peer: P | undefined): DnsResult<P> {
    const r = this.res;
    r.action = DNS_NONE;
    r.len = 0;
    r.drop = 0;
    r.peer = peer;
    return r;
  }

  private drop(code: number): DnsResult<P> {
    this.counters.dropped++;
    countDrop(this.drops, code);
    this.res.action = DNS_DROP;
    this.res.drop = code;
    return this.res;
  }

  private replyFlags(q: DnsView, rcode: number, aa: boolean): number {
    return DNS_FLAG_QR | (q.flags & (DNS_OPCODE_MASK | DNS_FLAG_RD | DNS_FLAG_CD)) | DNS_FLAG_RA | (aa ? DNS_FLAG_AA : 0) | rcode;
  }

  /** Header + question with an rcode (errors). */
  private reply(q: DnsView, rcode: number, out: Uint8Array, outOff: number, limit: number, ednsSize: number): DnsResult<P> {
    this.res.action = DNS_REPLY;
    this.res.len = this.writer.begin(q, out, outOff, limit, this.replyFlags(q, rcode, false), ednsSize).finish();
    return this.res;
  }

  /** Local zone and local reverse names; false when the name is not ours. */
  private answerLocal(q: DnsView, name: string, out: Uint8Array, outOff: number, limit: number, ednsSize: number): boolean {
    const d = this.domain;
    let host: Host | undefined;
    let ptr: Uint8Array | undefined;
    const apex = name === d;
    const zone = apex || name.endsWith(`.${d}`) || (!name.includes('.') && this.hostTable.has(name));
    if (zone) {
      host = apex ? undefined : this.hostTable.get(name.endsWith(`.${d}`) ? name.slice(0, -d.length - 1) : name);
    } else {
      const a4 = parseReverseName4(name);
      if (a4 >= 0) {
        ptr = this.byAddr4.get(a4);
        if (ptr === undefined && !this.localNetworks.some((n) => inPrefix(a4, n.addr, n.prefixLen))) return false;
      } else {
        const a6 = name.endsWith('.ip6.arpa') ? parseReverseName6(name) : null;
        ptr = a6 === null ? undefined : this.byAddr6.get(bytesToHex(a6));
        if (ptr === undefined) return false;
      }
    }
    this.counters.localAnswers++;
    if (q.qclass !== DNS_CLASS_IN && q.qclass !== DNS_CLASS_ANY) {
      this.counters.refused++;
      this.reply(q, DNS_RCODE_REFUSED, out, outOff, limit, ednsSize);
      return true;
    }
    const known = apex || host !== undefined || ptr !== undefined;
    const w = this.writer.begin(q, out, outOff, limit, this.replyFlags(q, known ? DNS_RCODE_NOERROR : DNS_RCODE_NXDOMAIN, true), ednsSize);
    const t = q.qtype;
    const any = t === DNS_TYPE_ANY;
    const ttl = this.localTtlS;
    let n = 0;
    if (host !== undefined && (t === DNS_TYPE_A || any)) for (const a of host.v4) w.rr(0, null, DNS_TYPE_A, ttl, a), n++;
    if (host !== undefined && (t === DNS_TYPE_AAAA || any)) for (const a of host.v6) w.rr(0, null, DNS_TYPE_AAAA, ttl, a), n++;
    if (ptr !== undefined && (t === DNS_TYPE_PTR || any)) w.rr(0, null, DNS_TYPE_PTR, ttl, ptr), n++;
    if (apex && (t === DNS_TYPE_SOA || any)) w.rr(0, null, DNS_TYPE_SOA, ttl, this.zoneSoa), n++;
    if (!known) this.counters.localNxdomain++;
    else if (n === 0) this.counters.localNodata++;
    // Negative answers in the zone carry its SOA so clients cache them (RFC 2308).
    if (n === 0 && zone) w.rr(1, this.zoneOwner, DNS_TYPE_SOA, ttl, this.zoneSoa);
    if (w.truncated) this.counters.truncated++;
    this.res.action = DNS_REPLY;
    this.res.len = w.finish();
    return true;
  }

  private serveCached(q: DnsView, c: CacheEntry, now: number, out: Uint8Array, outOff: number, limit: number, ednsSize: number): DnsResult<P> {
    const flags = (c.flags & ~(DNS_FLAG_RD | DNS_FLAG_TC | DNS_FLAG_AA)) | (q.flags & DNS_FLAG_RD);
    const w = this.writer.begin(q, out, outOff, limit, flags, ednsSize);
    w.copyRecords(c.body, 0, c.body.length, c.an, c.ns, c.ar);
    const truncated = w.truncated;
    const r = this.res;
    r.action = DNS_REPLY;
    r.len = w.finish();
    if (truncated) this.counters.truncated++;
    const age = Math.floor((now - c.storedAt) / 1000);
    if (!truncated && age > 0) {
      const v = this.ov.reset(out, outOff, r.len);
      if (v.checkLen() === 0) v.ageTtls(age);
    }
    return r;
  }

  private cacheGet(key: string, now: number): CacheEntry | undefined {
    const c = this.cache.get(key);
    if (c === undefined) return undefined;
    this.cache.delete(key);
    if (c.expires <= now) {
      this.cacheBytesUsed -= c.size;
      this.counters.cacheExpired++;
      return undefined;
    }
    this.cache.set(key, c); // most recently used last
    return c;
  }

  private cacheStore(v: DnsView, t: Txn<P>, now: number): void {
    const rcode = v.rcode;
    if (v.tc || (rcode !== DNS_RCODE_NOERROR && rcode !== DNS_RCODE_NXDOMAIN)) return;
    if (v.questionEnd - v.off !== t.query.length || (v.optOff >= 0 && !v.optIsLast)) return;
    let ttl: number;
    const negative = rcode === DNS_RCODE_NXDOMAIN || v.ancount === 0;
    if (!negative) ttl = Math.min(v.minAnswerTtl, this.maxTtlS);
    else if (v.negativeTtl >= 0) ttl = Math.min(v.negativeTtl, this.negativeTtlCapS, v.minAnswerTtl < 0 ? Infinity : v.minAnswerTtl);
    else return; // RFC 2308 5: no SOA, no negative caching
    if (ttl <= 0) return;
    const body = v.buf.slice(v.questionEnd, v.optOff >= 0 ? v.optOff : v.end);
    const size = body.length + 2 * t.key.length + 64;
    if (size > this.cacheMaxBytes || this.cacheMaxEntries === 0) return;
    const old = this.cache.get(t.key);
    if (old !== undefined) {
      this.cache.delete(t.key);
      this.cacheBytesUsed -= old.size;
    }
    const ar = v.arcount - (v.optOff >= 0 ? 1 : 0);
    this.cache.set(t.key, { flags: v.flags, an: v.ancount, ns: v.nscount, ar, body, storedAt: now, expires: now + ttl * 1000, size });
    this.cacheBytesUsed += size;
    if (negative) this.counters.cacheNegativeStored++;
    else this.counters.cacheStored++;
    for (const [k, c] of this.cache) {
      if (this.cache.size <= this.cacheMaxEntries && this.cacheBytesUsed <= this.cacheMaxBytes) break;
      this.cache.delete(k);
      this.cacheBytesUsed -= c.size;
      this.counters.cacheEvicted++;
    }
  }

  /** The answer's question equals the transaction's (ASCII case folded). */
  private sameQuestion(v: DnsView, query: Uint8Array): boolean {
    if (v.qdcount !== 1 || v.questionEnd - v.off !== query.length) return false;
    for (let i = DNS_HEADER_LEN; i < query.length; i++) if (lower(v.buf[v.off + i]) !== lower(query[i])) return false;
    return true;
  }

  private newId(): number {
    for (let i = 0; i < 32; i++) {
      const id = this.randomId() & 0xffff;
      if (!this.txns.has(id)) return id;
    }
    let id = this.randomId() & 0xffff;
    while (this.txns.has(id)) id = (id + 1) & 0xffff; // maxInFlight < 65536: terminates
    return id;
  }
}
