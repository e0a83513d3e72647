/*
 * DHCPv4 server logic for one bridge (RFC 2131): a lease table over an address pool, no I/O
 * and no timers; the caller passes its ms clock (`now`) into every call.
 *
 * Input:  handle(req, now, viaBroadcast) with a parsed request (wire/dhcp.ts parseDhcp), or
 *         handlePacket(buf, off, len, ...) with the UDP payload (checked with a DhcpView).
 * Output: a DhcpResult: the reply to emit (emitDhcp) from serverIp:67 to dstIp:68 / dstMac
 *         per RFC 2131 4.1, or none; `drop` names why a request was not served; `binding` /
 *         `released` tell the caller (e.g. the DNS resolver) what changed.
 * Does:   DISCOVER -> OFFER (the client's static, current or previous address, else its
 *         requested one, else a never-used pool address, else the one free the longest);
 *         REQUEST in SELECTING (server id: ours -> ACK/NAK, another -> our offer withdrawn),
 *         INIT-REBOOT (requested IP), RENEWING / REBINDING (ciaddr) -> ACK, or NAK when the
 *         address is wrong, on another network or unavailable (silent for unknown clients
 *         unless `authoritative`); RELEASE frees; DECLINE (only from the client holding
 *         the address) quarantines a pool address for `declineHoldMs` (a static one is
 *         offered again); INFORM -> ACK with options only. Pool exhaustion: no OFFER
 *         (drop dhcp_pool_exhausted), NAK for REQUEST.
 * Bounds: at most `maxClients` entries (free ones are evicted oldest first, else
 *         dhcp_table_full); offers expire after `offerTimeoutMs`; expired and released
 *         entries are remembered (so a client gets its address back) until reused or evicted;
 *         the pool scan is O(pool), the eviction scan O(maxClients). Control-rate traffic:
 *         replies are small fresh objects.
 * Config: DhcpServerConfig (validated in the constructor; errors name the field). Replies
 *         carry every configured option whatever the parameter request list (55) asks.
 * Counters: `counters` by event, `drops` by drop reason name.
 * Persistence: serialize() -> plain JSON object, load(obj, now); the caller writes the file.
 *         Times are in the caller's clock: use a wall clock (Date.now()) if leases must
 *         survive a restart.
 */

import {
  BOOTREPLY, BOOTREQUEST, DHCP_FLAG_BROADCAST, DhcpView, DHCPACK, DHCPDECLINE, DHCPDISCOVER, DHCPINFORM, DHCPNAK,
  DHCPOFFER, DHCPRELEASE, DHCPREQUEST, HTYPE_ETHERNET, parseDhcp, type DhcpFields, type DhcpOptions,
} from '../wire/dhcp.js';
import {
  countDrop, DROP_DHCP_BAD_MSG_TYPE, DROP_DHCP_BAD_REQUEST, DROP_DHCP_NOT_ETHERNET, DROP_DHCP_NOT_REQUEST,
  DROP_DHCP_POOL_EXHAUSTED, DROP_DHCP_RELAYED, DROP_DHCP_TABLE_FULL,
} from '../core/drops.js';
import { DROP_OK } from '../wire/drop.js';
import { bytesToHex } from '../wire/bytes.js';
import { broadcastOf, inPrefix, ip4ToString, maskOf, networkOf, parseIp4 } from '../wire/ip4.js';
import { BROADCAST_MAC, macToString, parseMac } from '../wire/mac.js';

export interface DhcpStaticLease {
  mac: number;
  ip: number;
  hostName?: string;
}

export interface DhcpServerConfig {
  /** Our address on the bridge: server identifier (54), and the default router and DNS. */
  serverIp: number;
  /** Prefix length of the bridge's subnet (which serverIp, the pool and statics are in). */
  prefixLen: number;
  poolFirst: number;
  poolLast: number;
  /** Lease time in seconds (default 3600); a client's requested time is clamped to [minLeaseTimeS, this]. */
  leaseTimeS?: number;
  minLeaseTimeS?: number; // default 60
  /** Router option (3); default serverIp, null for none. */
  router?: number | null;
  /** DNS servers (6); default [serverIp], [] for none. */
  dnsServers?: number[];
  domainName?: string; // 15
  mtu?: number; // 26
  staticLeases?: DhcpStaticLease[];
  offerTimeoutMs?: number; // default 60 s
  declineHoldMs?: number; // default 10 min
  maxClients?: number; // default 1024
  /** Answer REQUESTs of clients we have no record of (the only server on the bridge); default true. */
  authoritative?: boolean;
}

export interface DhcpReply {
  msg: DhcpFields;
  /** Destination IP / MAC: 0xffffffff and BROADCAST_MAC for a broadcast reply. */
  dstIp: number;
  dstMac: number;
}

export interface DhcpBinding {
  ip: number;
  mac: number;
  hostName?: string;
  expires: number;
}

export interface DhcpResult {
  /** DROP_OK, or why the request got no reply (also counted in `drops`). */
  drop: number;
  reply: DhcpReply | null;
  /** Set on an ACK that bound or renewed a lease. */
  binding: DhcpBinding | null;
  /** Address given back by RELEASE or DECLINE (0: none). */
  released: number;
}

export interface DhcpLeaseInfo {
  client: string;
  mac: string;
  ip: string;
  state: 'offered' | 'bound' | 'free';
  /** Caller's clock, ms. */
  expires: number;
  hostName?: string;
}

export interface DhcpLeaseFile {
  version: 1;
  leases: DhcpLeaseInfo[];
}

const ST_FREE = 0; // released, expired, withdrawn offer: remembered, reusable by others
const ST_OFFERED = 1;
const ST_BOUND = 2;
const STATE_NAMES = ['free', 'offered', 'bound'] as const;

class Entry {
  state = ST_FREE;
  expires = 0;
  hostName: string | undefined = undefined;
  constructor(
    readonly key: string,
    public mac: number,
    public ip: number,
  ) {}
}

/** Lease-table key: the client identifier (61) if sent, else the hardware address. */
export function dhcpClientKey(req: DhcpFields): string {
  const id = req.options.clientId;
  return id !== undefined ? `id:${bytesToHex(id)}` : `mac:${macToString(req.chaddr)}`;
}

function need(cond: boolean, field: string, why: string): void {
  if (!cond) throw new Error(`dhcp config: ${field}: ${why}`);
}

function result(drop: number, released = 0): DhcpResult {
  return { drop, reply: null, binding: null, released };
}

export class DhcpServer {
  readonly serverIp: number;
  readonly prefixLen: number;
  readonly mask: number;
  readonly poolFirst: number;
  readonly poolLast: number;
  readonly leaseTimeS: number;
  readonly minLeaseTimeS: number;
  readonly router: number | null;
  readonly dnsServers: number[];
  readonly domainName: string | undefined;
  readonly mtu: number | undefined;
  readonly offerTimeoutMs: number;
  readonly declineHoldMs: number;
  readonly maxClients: number;
  readonly authoritative: boolean;

  private readonly staticByMac = new Map<number, DhcpStaticLease>();
  private readonly staticIps = new Set<number>();
  private readonly leasesByKey = new Map<string, Entry>();
  private readonly byIp = new Map<number, Entry>();
  /** Declined address -> time it may be offered again. */
  private readonly quarantine = new Map<number, number>();
  private cursor = 0;
  private readonly view = new DhcpView();

  readonly counters = {
    received: 0,
    discover: 0,
    offer: 0,
    request: 0,
    requestSelecting: 0,
    requestOtherServer: 0,
    requestInitReboot: 0,
    requestRenewing: 0,
    requestRebinding: 0,
    ack: 0,
    nak: 0,
    release: 0,
    decline: 0,
    inform: 0,
    /** Requests answered with silence by RFC (unknown client, not authoritative; foreign server id). */
    silent: 0,
    poolExhausted: 0,
    tableFull: 0,
    /** A free entry of another client whose address was given to someone else. */
    reclaimed: 0,
    evicted: 0,
    quarantined: 0,
    offerExpired: 0,
    leaseExpired: 0,
    dropped: 0,
  };
  readonly drops: Record<string, number> = {};

  constructor(cfg: DhcpServerConfig) {
    const u32 = (v: number | undefined, field: string): number => {
      need(Number.isInteger(v) && v! >= 0 && v! <= 0xffffffff, field, 'not an IPv4 address (uint32)');
      return v! >>> 0;
    };
    this.serverIp = u32(cfg.serverIp, 'serverIp');
    need(Number.isInteger(cfg.prefixLen) && cfg.prefixLen >= 1 && cfg.prefixLen <= 30, 'prefixLen', 'must be 1..30');
    this.prefixLen = cfg.prefixLen;
    this.mask = maskOf(cfg.prefixLen);
    this.poolFirst = u32(cfg.poolFirst, 'poolFirst');
    this.poolLast = u32(cfg.poolLast, 'poolLast');
    const net = networkOf(this.serverIp, this.prefixLen);
    const bcast = broadcastOf(this.serverIp, this.prefixLen);
    for (const [f, v] of [['poolFirst', this.poolFirst], ['poolLast', this.poolLast]] as const) {
      need(this.inSubnet(v) && v !== net && v !== bcast, f, `${ip4ToString(v)} is not a host address of the subnet`);
    }
    need(this.poolFirst <= this.poolLast, 'poolLast', 'before poolFirst');
    this.leaseTimeS = cfg.leaseTimeS ?? 3600;
    this.minLeaseTimeS = cfg.minLeaseTimeS ?? 60;
    need(Number.isInteger(this.leaseTimeS) && this.leaseTimeS >= 1 && this.leaseTimeS < 0xffffffff, 'leaseTimeS', 'must be 1..2^32-2 seconds');
    need(Number.isInteger(this.minLeaseTimeS) && this.minLeaseTimeS >= 1 && this.minLeaseTimeS <= this.leaseTimeS, 'minLeaseTimeS', 'must be 1..leaseTimeS');
    this.router = cfg.router === null ? null : u32(cfg.router ?? this.serverIp, 'router');
    this.dnsServers = (cfg.dnsServers ?? [this.serverIp]).map((a, i) => u32(a, `dnsServers[${i}]`));
    need(this.dnsServers.length <= 63, 'dnsServers', 'at most 63');
    this.domainName = cfg.domainName;
    need(this.domainName === undefined || (this.domainName.length >= 1 && this.domainName.length <= 255), 'domainName', 'must be 1..255 characters');
    this.mtu = cfg.mtu;
    need(this.mtu === undefined || (Number.isInteger(this.mtu) && this.mtu >= 68 && this.mtu <= 65535), 'mtu', 'must be 68..65535');
    this.offerTimeoutMs = cfg.offerTimeoutMs ?? 60_000;
    this.declineHoldMs = cfg.declineHoldMs ?? 600_000;
    this.maxClients = cfg.maxClients ?? 1024;
    need(this.offerTimeoutMs > 0, 'offerTimeoutMs', 'must be > 0');
    need(this.declineHoldMs >= 0, 'declineHoldMs', 'must be >= 0');
    need(Number.isInteger(this.maxClients) && this.maxClients >= 1, 'maxClients', 'must be >= 1');
    this.authoritative = cfg.authoritative ?? true;
    (cfg.staticLeases ?? []).forEach((s, i) => {
      const f = `staticLeases[${i}]`;
      need(Number.isInteger(s.mac) && s.mac >= 0 && s.mac <= BROADCAST_MAC, `${f}.mac`, 'not a MAC number');
      const ip = u32(s.ip, `${f}.ip`);
      need(this.inSubnet(ip) && ip !== net && ip !== bcast && ip !== this.serverIp, `${f}.ip`, `${ip4ToString(ip)} is not a free host address of the subnet`);
      need(!this.staticByMac.has(s.mac), `${f}.mac`, 'duplicate');
      need(!this.staticIps.has(ip), `${f}.ip`, 'duplicate');
      this.staticByMac.set(s.mac, { mac: s.mac, ip, hostName: s.hostName });
      this.staticIps.add(ip);
    });
  }

  inSubnet(ip: number): boolean {
    return inPrefix(ip, this.serverIp, this.prefixLen);
  }
  private inPool(ip: number): boolean {
    return ip >= this.poolFirst && ip <= this.poolLast && ip !== this.serverIp && !this.staticIps.has(ip);
  }

  /** Number of tracked clients (offered, bound and remembered free entries). */
  get size(): number {
    return this.leasesByKey.size;
  }

  /** Check the UDP payload with a DhcpView, then handle() it; malformed input is a drop code. */
  handlePacket(buf: Uint8Array, off: number, len: number, now: number, viaBroadcast = true): DhcpResult {
    const e = this.view.reset(buf, off, len).checkLen();
    if (e !== 0) {
      this.counters.received++;
      return this.drop(e);
    }
    return this.handle(parseDhcp(buf, off, len)!, now, viaBroadcast);
  }

  /**
   * One client message. `viaBroadcast`: it arrived broadcast (tells REBINDING from RENEWING
   * in the counters; both are answered alike).
   */
  handle(req: DhcpFields, now: number, viaBroadcast = true): DhcpResult {
    this.counters.received++;
    if (req.op !== BOOTREQUEST) return this.drop(DROP_DHCP_NOT_REQUEST);
    if (req.htype !== HTYPE_ETHERNET || req.hlen !== 6) return this.drop(DROP_DHCP_NOT_ETHERNET);
    if (req.giaddr !== 0) return this.drop(DROP_DHCP_RELAYED);
    const key = dhcpClientKey(req);
    const e = this.leasesByKey.get(key);
    if (e !== undefined) this.settle(e, now);
    switch (req.options.messageType) {
      case DHCPDISCOVER:
        return this.discover(req, key, e, now);
      case DHCPREQUEST:
        return this.request(req, key, e, now, viaBroadcast);
      case DHCPRELEASE:
        return this.release(req, e, now);
      case DHCPDECLINE:
        return this.decline(req, e, now);
      case DHCPINFORM:
        this.counters.inform++;
        return this.answer(req, DHCPACK, 0, -1);
      default:
        return this.drop(DROP_DHCP_BAD_MSG_TYPE);
    }
  }

  private discover(req: DhcpFields, key: string, e: Entry | undefined, now: number): DhcpResult {
    this.counters.discover++;
    const ip = this.pick(req, key, e, now);
    if (ip === 0) {
      this.counters.poolExhausted++;
      return this.drop(DROP_DHCP_POOL_EXHAUSTED);
    }
    const c = this.claim(key, e, req, ip, now);
    if (c === null) return this.drop(DROP_DHCP_TABLE_FULL);
    if (c.state !== ST_BOUND) {
      c.state = ST_OFFERED;
      c.expires = now + this.offerTimeoutMs;
    }
    this.counters.offer++;
    return this.answer(req, DHCPOFFER, ip, this.leaseSeconds(req));
  }

  private request(req: DhcpFields, key: string, e: Entry | undefined, now: number, viaBroadcast: boolean): DhcpResult {
    this.counters.request++;
    const sid = req.options.serverId;
    const rip = req.options.requestedIp;
    if (sid !== undefined) {
      if (sid !== this.serverIp) {
        // SELECTING another server: withdraw our offer (the address stays remembered).
        this.counters.requestOtherServer++;
        if (e !== undefined && e.state === ST_OFFERED) e.state = ST_FREE;
        return this.silent();
      }
      this.counters.requestSelecting++;
      if (rip === undefined || req.ciaddr !== 0) return this.drop(DROP_DHCP_BAD_REQUEST);
      return this.confirm(req, key, e, rip, now, true);
    }
    if (rip !== undefined) {
      this.counters.requestInitReboot++;
      return this.confirm(req, key, e, rip, now, false);
    }
    if (req.ciaddr !== 0) {
      if (viaBroadcast) this.counters.requestRebinding++;
      else this.counters.requestRenewing++;
      return this.confirm(req, key, e, req.ciaddr, now, false);
    }
    return this.drop(DROP_DHCP_BAD_REQUEST);
  }

  /** ACK (bind) ip for the client, NAK when it cannot have it, or silence (no record, not authoritative). */
  private confirm(req: DhcpFields, key: string, e: Entry | undefined, ip: number, now: number, selecting: boolean): DhcpResult {
    if (!this.inSubnet(ip)) return this.nak(req, 'wrong network');
    const mine = e !== undefined && e.ip === ip;
    if (!mine && !selecting && !this.authoritative && (e === undefined || e.state === ST_FREE)) return this.silent();
    if (!this.assignable(ip, key, req.chaddr, now)) return this.nak(req, 'address not available');
    if (!mine && e !== undefined && e.state !== ST_FREE) return this.nak(req, 'client holds another address');
    const c = this.claim(key, e, req, ip, now);
    if (c === null) return this.drop(DROP_DHCP_TABLE_FULL);
    const leaseS = this.leaseSeconds(req);
    c.state = ST_BOUND;
    c.expires = now + leaseS * 1000;
    this.counters.ack++;
    const r = this.answer(req, DHCPACK, ip, leaseS);
    r.binding = { ip, mac: c.mac, hostName: c.hostName, expires: c.expires };
    return r;
  }

  private release(req: DhcpFields, e: Entry | undefined, now: number): DhcpResult {
    this.counters.release++;
    const sid = req.options.serverId;
    if ((sid !== undefined && sid !== this.serverIp) || e === undefined || e.ip !== req.ciaddr || e.state !== ST_BOUND) {
      return this.silent();
    }
    e.state = ST_FREE;
    e.expires = now;
    return result(DROP_OK, e.ip);
  }

  private decline(req: DhcpFields, e: Entry | undefined, now: number): DhcpResult {
    this.counters.decline++;
    const ip = req.options.requestedIp;
    if (ip === undefined) return this.drop(DROP_DHCP_BAD_REQUEST);
    const sid = req.options.serverId;
    // Only the client the address was offered/leased to can decline it (no pool poisoning).
    if ((sid !== undefined && sid !== this.serverIp) || e === undefined || e.ip !== ip) return this.silent();
    this.forget(e);
    if (this.inPool(ip)) {
      this.quarantine.set(ip, now + this.declineHoldMs);
      this.counters.quarantined++;
    }
    return result(DROP_OK, ip);
  }

  /** The address to offer this client, or 0 when the pool is exhausted. */
  private pick(req: DhcpFields, key: string, e: Entry | undefined, now: number): number {
    const st = this.staticByMac.get(req.chaddr);
    if (st !== undefined) return st.ip;
    if (e !== undefined && this.assignable(e.ip, key, req.chaddr, now)) return e.ip;
    const rip = req.options.requestedIp;
    if (rip !== undefined && this.assignable(rip, key, req.chaddr, now)) return rip;
    const n = this.poolLast - this.poolFirst + 1;
    for (let i = 0; i < n; i++) {
      const ip = this.poolFirst + ((this.cursor + i) % n);
      if (!this.byIp.has(ip) && this.inPool(ip) && !this.quarantined(ip, now)) return ip;
    }
    // Every pool address has been used: take the one free the longest.
    let best: Entry | undefined;
    for (const o of this.leasesByKey.values()) {
      this.settle(o, now);
      if (o.state !== ST_FREE || !this.inPool(o.ip) || this.quarantined(o.ip, now)) continue;
      if (best === undefined || o.expires < best.expires) best = o;
    }
    return best === undefined ? 0 : best.ip;
  }

  /** Whether the client (key, mac) may have ip now. */
  private assignable(ip: number, key: string, mac: number, now: number): boolean {
    const st = this.staticByMac.get(mac);
    if (st !== undefined) return ip === st.ip;
    if (!this.inPool(ip) || this.quarantined(ip, now)) return false;
    const o = this.byIp.get(ip);
    if (o === undefined || o.key === key) return true;
    this.settle(o, now);
    return o.state === ST_FREE;
  }

  /** The client's entry, now holding ip (another client's entry for ip is dropped); null if the table is full. */
  private claim(key: string, e: Entry | undefined, req: DhcpFields, ip: number, now: number): Entry | null {
    const o = this.byIp.get(ip);
    if (o !== undefined && o !== e) {
      this.forget(o);
      this.counters.reclaimed++;
    }
    if (e === undefined) {
      if (this.leasesByKey.size >= this.maxClients && !this.evictOne(now)) {
        this.counters.tableFull++;
        return null;
      }
      e = new Entry(key, req.chaddr, ip);
      this.leasesByKey.set(key, e);
    } else if (e.ip !== ip) {
      if (this.byIp.get(e.ip) === e) this.byIp.delete(e.ip);
      e.ip = ip;
      e.state = ST_FREE;
    }
    this.byIp.set(ip, e);
    if (this.inPool(ip)) this.cursor = (ip - this.poolFirst + 1) % (this.poolLast - this.poolFirst + 1);
    e.mac = req.chaddr;
    const hn = req.options.hostName ?? this.staticByMac.get(req.chaddr)?.hostName;
    if (hn !== undefined) e.hostName = hn;
    return e;
  }

  private evictOne(now: number): boolean {
    let best: Entry | undefined;
    for (const o of this.leasesByKey.values()) {
      this.settle(o, now);
      if (o.state === ST_FREE && (best === undefined || o.expires < best.expires)) best = o;
    }
    if (best === undefined) return false;
    this.forget(best);
    this.counters.evicted++;
    return true;
  }

  private forget(e: Entry): void {
    this.leasesByKey.delete(e.key);
    if (this.byIp.get(e.ip) === e) this.byIp.delete(e.ip);
  }

  /** An offer or lease past its time becomes free. */
  private settle(e: Entry, now: number): void {
    if (e.state === ST_FREE || e.expires > now) return;
    if (e.state === ST_OFFERED) this.counters.offerExpired++;
    else this.counters.leaseExpired++;
    e.state = ST_FREE;
  }

  private quarantined(ip: number, now: number): boolean {
    const t = this.quarantine.get(ip);
    if (t === undefined) return false;
    if (t > now) return true;
    this.quarantine.delete(ip);
    return false;
  }

  private leaseSeconds(req: DhcpFields): number {
    const r = req.options.leaseTime;
    return r === undefined ? this.leaseTimeS : Math.min(this.leaseTimeS, Math.max(this.minLeaseTimeS, r));
  }

  private nak(req: DhcpFields, message: string): DhcpResult {
    this.counters.nak++;
    const r = this.answer(req, DHCPNAK, 0, -1);
    r.reply!.msg.options.message = message;
    return r;
  }

  private silent(): DhcpResult {
    this.counters.silent++;
    return result(DROP_OK);
  }

  private drop(code: number): DhcpResult {
    this.counters.dropped++;
    countDrop(this.drops, code);
    return result(code);
  }

  /** Build an OFFER/ACK/NAK (leaseS < 0: no lease options, as for INFORM) and its destination. */
  private answer(req: DhcpFields, type: number, yiaddr: number, leaseS: number): DhcpResult {
    const o: DhcpOptions = { messageType: type, serverId: this.serverIp };
    if (type !== DHCPNAK) {
      if (leaseS >= 0) {
        o.leaseTime = leaseS;
        o.renewalTime = Math.floor(leaseS / 2);
        o.rebindingTime = Math.floor((leaseS * 7) / 8);
      }
      o.subnetMask = this.mask;
      o.broadcastAddr = broadcastOf(this.serverIp, this.prefixLen);
      if (this.router !== null) o.routers = [this.router];
      if (this.dnsServers.length > 0) o.dnsServers = this.dnsServers;
      if (this.domainName !== undefined) o.domainName = this.domainName;
      if (this.mtu !== undefined) o.mtu = this.mtu;
    }
    const msg: DhcpFields = {
      op: BOOTREPLY, htype: req.htype, hlen: req.hlen, hops: 0, xid: req.xid, secs: 0, flags: req.flags,
      ciaddr: type === DHCPACK ? req.ciaddr : 0, yiaddr, siaddr: 0, giaddr: 0, chaddr: req.chaddr, options: o,
    };
    // RFC 2131 4.1 (giaddr 0): NAK broadcast; to ciaddr when set; broadcast when asked; else to yiaddr at chaddr.
    let dstIp: number;
    let dstMac = req.chaddr;
    if (type === DHCPNAK || (req.ciaddr === 0 && ((req.flags & DHCP_FLAG_BROADCAST) !== 0 || yiaddr === 0))) {
      dstIp = 0xffffffff;
      dstMac = BROADCAST_MAC;
    } else {
      dstIp = req.ciaddr !== 0 ? req.ciaddr : yiaddr;
    }
    return { drop: DROP_OK, reply: { msg, dstIp, dstMac }, binding: null, released: 0 };
  }

  /** Settle every entry (counting expiries) and prune the quarantine; for the caller's tick. */
  sweep(now: number): void {
    for (const e of this.leasesByKey.values()) this.settle(e, now);
    for (const [ip, t] of this.quarantine) if (t <= now) this.quarantine.delete(ip);
  }

  /** Quarantined (declined) addresses still held back. */
  quarantinedAddresses(now: number): number[] {
    return [...this.quarantine.keys()].filter((ip) => this.quarantined(ip, now));
  }

  /** The lease table as plain objects (control plane, persistence). */
  leases(now: number): DhcpLeaseInfo[] {
    const out: DhcpLeaseInfo[] = [];
    for (const e of this.leasesByKey.values()) {
      this.settle(e, now);
      const l: DhcpLeaseInfo = { client: e.key, mac: macToString(e.mac), ip: ip4ToString(e.ip), state: STATE_NAMES[e.state], expires: e.expires };
      if (e.hostName !== undefined) l.hostName = e.hostName;
      out.push(l);
    }
    return out;
  }

  /** The lease table as a JSON-ready object (offers are saved as free entries). */
  serialize(now: number): DhcpLeaseFile {
    return { version: 1, leases: this.leases(now).map((l) => (l.state === 'offered' ? { ...l, state: 'free' } : l)) };
  }

  /**
   * Replace the lease table with a serialized one. Entries that do not fit the current
   * config (address outside the pool and not the client's static one, duplicates, bad
   * fields) or beyond maxClients are skipped. Throws if `data` is not a lease file.
   */
  load(data: unknown, now: number): { loaded: number; skipped: number } {
    const d = data as DhcpLeaseFile;
    if (typeof d !== 'object' || d === null || d.version !== 1 || !Array.isArray(d.leases)) {
      throw new Error('dhcp lease file: expected { version: 1, leases: [...] }');
    }
    this.leasesByKey.clear();
    this.byIp.clear();
    let loaded = 0;
    let skipped = 0;
    for (const l of d.leases as unknown[]) {
      const e = this.entryFrom(l, now);
      if (e === null) {
        skipped++;
        continue;
      }
      this.leasesByKey.set(e.key, e);
      this.byIp.set(e.ip, e);
      loaded++;
    }
    return { loaded, skipped };
  }

  private entryFrom(x: unknown, now: number): Entry | null {
    if (typeof x !== 'object' || x === null || this.leasesByKey.size >= this.maxClients) return null;
    const l = x as Partial<DhcpLeaseInfo>;
    const mac = typeof l.mac === 'string' ? parseMac(l.mac) : null;
    const ip = typeof l.ip === 'string' ? parseIp4(l.ip) : null;
    const state = STATE_NAMES.indexOf(l.state as (typeof STATE_NAMES)[number]);
    if (typeof l.client !== 'string' || l.client.length > 600 || mac === null || ip === null || state < 0) return null;
    if (typeof l.expires !== 'number' || !Number.isFinite(l.expires) || this.leasesByKey.has(l.client) || this.byIp.has(ip)) return null;
    const st = this.staticByMac.get(mac);
    if (st !== undefined ? st.ip !== ip : !this.inPool(ip)) return null;
    const e = new Entry(l.client, mac, ip);
    e.state = state === ST_BOUND && l.expires > now ? ST_BOUND : ST_FREE;
    e.expires = l.expires;
    if (typeof l.hostName === 'string') e.hostName = l.hostName;
    return e;
  }
}
