/*
 * NatEngineBase: connection tracking + NAT (netfilter-like) for one address family. NatEngine
 * (engine.ts, IPv4) and NatEngine6 (engine6.ts, IPv6) are this engine with their family
 * (family.ts: key parsing, header rewriting, address policy); the nat/pre, nat/post and
 * nat/local elements and their nat6/* twins (element.ts) call it on the routed path; it keeps
 * the per-packet result in a small integer state the elements carry in the frame's
 * annotations between the two hooks.
 *
 *   prerouting(pkt, ingressIf)  before the route lookup: look the packet's tuple up (both
 *       directions of every flow are indexed), update the flow's state and timeout, apply
 *       the destination half of the translation (DNAT of published ports, de-NAT of replies),
 *       translate ICMP errors about tracked flows (icmp-related.ts). A new flow stays
 *       *pending* (not in the table) until postrouting confirms it; a pending flow whose
 *       packet never reaches postrouting is released by the next prerouting or endBatch().
 *   postrouting(pkt, egressIf)  after the route lookup: decide SNAT for a pending flow
 *       (masquerade out of the uplink; hairpin SNAT to the gateway address for a DNAT flow
 *       going back out of the bridge it came from), pick a free port (ports.ts), confirm
 *       (index both tuples, arm the expiry timer), then apply the source half.
 *   translateLocalError(pkt, related)  an ICMP error tapbridge generated about a packet it
 *       had translated: the quote and the destination are put back to the sender's view.
 *   tick(now)   expiry on the timer wheel: amortised O(expired).
 * Config: NatCommonConfig (types.ts) and the family's own part. Counters: `counters`
 *   (created, expired, refusedFull, earlyDropped, invalid, ...).
 *
 * Addresses are 32-bit "address values" everywhere in here: the IPv4 address itself, or the
 * interned id of an IPv6 address (addr-table.ts), so the flow table, its index, the port
 * picker and the fragment cache are the same for both families.
 *
 * Choices:
 *  - TCP: see tcp-state.ts (netfilter's table, loose pick-up of mid-stream ACKs, no window
 *    tracking). Invalid TCP packets are dropped (NAT_DROP_TCP_INVALID).
 *  - UDP: flows ASSURED after the first reply. ICMP echo: the identifier is the "port" on both
 *    sides; an unmatched echo reply is left untracked. Other ICMP queries are untracked.
 *    Other IP protocols are tracked by address only ("generic", 600 s); masquerading one
 *    only works while the reply tuple (proto, remote, external address) is free.
 *  - Packets to one of our own addresses that are not DNATed are not tracked (local input).
 *  - Untracked packets are accepted, except when a masqueraded source would leave through the
 *    uplink untranslated (NAT_DROP_UNTRACKED), so inside addresses never leak.
 *  - Fragments: first fragments are tracked by their ports; later ones follow the first
 *    through fragments.ts, or are dropped (NAT_DROP_FRAGMENT) when it was not seen.
 *  - Tenants: a new flow is refused when its ingress port or its source address already has
 *    maxFlowsPerPort / maxFlowsPerSource confirmed flows (connlimit), so one namespace (or one
 *    flood from outside, which all enters through the uplink port) cannot take the whole
 *    table; early drop of unreplied flows when the table is full stays.
 */
import { IPPROTO_TCP, IPPROTO_UDP } from '../wire/ipv4.js';
import { PK_ICMP_ERROR, PK_LATER_FRAGMENT, PK_MALFORMED, PK_UNTRACKED, type HeaderRewriter, type KeyParser, type NatFamily } from './family.js';
import { KP_ICMP_REP, KP_ICMP_REQ } from './flow-index.js';
import { F_ASSURED, F_CONFIRMED, F_DNAT, F_HAIRPIN, F_SEEN_REPLY, F_SNAT, F_USED, FlowTable } from './flow-table.js';
import { FragmentCache } from './fragments.js';
import { IcmpRelated } from './icmp-related.js';
import { PortPicker, PublishedPorts } from './ports.js';
import {
  TCP_CLOSE,
  TCP_ESTABLISHED,
  TCP_IGNORE,
  TCP_INVALID,
  TCP_STATE_NAMES,
  TCP_SYN_RECV,
  TCP_SYN_SENT,
  TCP_TIME_WAIT,
  TCP_TRANSITIONS,
  TCPI_RST,
  tcpFlagIndex,
} from './tcp-state.js';
import {
  DEFAULT_TIMEOUTS,
  NAT_ACCEPT,
  NAT_DROP_CLASH,
  NAT_DROP_FRAGMENT,
  NAT_DROP_MALFORMED,
  NAT_DROP_NO_PORT,
  NAT_DROP_PORT_LIMIT,
  NAT_DROP_SOURCE_LIMIT,
  NAT_DROP_TABLE_FULL,
  NAT_DROP_TCP_INVALID,
  NAT_DROP_UNTRACKED,
  type FlowInfo,
  type NatCommonConfig,
  type Timeouts,
} from './types.js';

/* What the current packet is to postrouting (the low 2 bits of the packet state). */
const K_NONE = 0;
const K_FLOW = 1;
const K_RELATED = 2;
const K_FRAG = 3;

/* describeLast() events. */
const EV_NONE = 0;
const EV_NEW = 1;
const EV_HIT = 2;
const EV_RELATED = 3;
const EV_FRAG = 4;
const EV_UNTRACKED = 5;
const EV_DROP = 6;

const TRACK_OK = 0;
const TRACK_INVALID = 1;
const TRACK_REOPEN = 2;

const UDP_UNREPLIED = 0;
const UDP_REPLIED = 1;

/** An interface without an address value (IPv6: a bridge without an IPv6 gateway address). */
export const NO_IF_ADDR = 0xffffffff;

/** A per-port or per-source share; 0, or one as large as the table, means no limit. */
function limitOf(v: number | undefined, field: string, max: number): number {
  if (v === undefined) return 0;
  if (!Number.isInteger(v) || v < 0) throw new Error(`nat.${field}: must be an integer >= 0, got ${v}`);
  return v >= max ? 0 : v;
}

/** Checks of the config both families share (before anything is allocated); returns the port range. */
export function checkCommonConfig(cfg: NatCommonConfig, interfaces: number): [number, number] {
  const max = cfg.maxFlows;
  if (!Number.isInteger(max) || max < 1 || max > 16_000_000) throw new Error(`nat.maxFlows: must be an integer 1..16000000, got ${max}`);
  if (interfaces > 65535) throw new Error('nat.ifAddr: too many interfaces');
  if (!Number.isInteger(cfg.uplinkIf) || cfg.uplinkIf < -1 || cfg.uplinkIf >= interfaces) {
    throw new Error(`nat.uplinkIf: ${cfg.uplinkIf} is not an interface id (0..${interfaces - 1}) or -1`);
  }
  const pr = cfg.portRange ?? [32768, 60999];
  if (!Number.isInteger(pr[0]) || !Number.isInteger(pr[1]) || pr[0] < 1 || pr[1] > 65535 || pr[0] > pr[1]) {
    throw new Error(`nat.portRange: need 1 <= lo <= hi <= 65535, got [${pr[0]}, ${pr[1]}]`);
  }
  return [pr[0], pr[1]];
}

export abstract class NatEngineBase {
  readonly maxFlows: number;
  readonly uplinkIf: number;

  /** Flow id / direction / kind of the packet between prerouting and postrouting (-1: none). */
  curFlow = -1;
  curDir = 0;
  curKind = K_NONE;
  /** Flow created by the last prerouting and not yet confirmed (-1: none). */
  pending = -1;
  /**
   * Dry run (a decision trace): packets are looked up and rewritten as they would be, but no
   * flow is created, confirmed, refreshed, counted or destroyed; a new flow lives in the
   * table's scratch record until the packet leaves postrouting.
   */
  readOnly = false;
  /** Ingress port index of the packet prerouting is about to see (-1: unknown); set by nat/pre. */
  ingressPort = -1;
  readonly maxFlowsPerPort: number;
  readonly maxFlowsPerSource: number;

  readonly counters = {
    created: 0, // flows confirmed
    expired: 0,
    earlyDropped: 0,
    refusedFull: 0,
    refusedPortLimit: 0,
    refusedSourceLimit: 0,
    invalid: 0,
    malformed: 0,
    reopened: 0,
    abandoned: 0, // pending flow whose packet never reached postrouting
    noPort: 0,
    clash: 0,
    untracked: 0,
    untrackedLeak: 0,
    snat: 0,
    dnat: 0,
    hairpin: 0,
    icmpRelated: 0,
    localErrorsTranslated: 0,
    fragTranslated: 0,
    fragDropped: 0,
  };

  protected readonly table: FlowTable;
  protected readonly published = new PublishedPorts();
  private readonly ports: PortPicker;
  private readonly frags = new FragmentCache();
  private readonly related: IcmpRelated;
  private readonly key: KeyParser;
  private readonly rw: HeaderRewriter;

  /** Address value of each interface (NO_IF_ADDR: none) and of the uplink. */
  protected readonly ifVal: Uint32Array;
  protected readonly extVal: number;
  /** The uplink has an address: published ports can be reached. */
  private readonly extOk: boolean;

  /* timeouts in ms */
  private readonly tcpTimeoutMs: Float64Array;
  private readonly tcpUnackMs: number;
  private readonly udpUnrepliedMs: number;
  private readonly udpRepliedMs: number;
  private readonly icmpMs: number;
  private readonly genericMs: number;
  private readonly icmpProto: number;
  /** 4 or 6: the IP version this engine tracks. */
  readonly ipVersion: 4 | 6;

  private lastEvent = EV_NONE;
  private lastCode = 0;

  /**
   * cfg checked by checkCommonConfig; ifVal: the address value of each interface id
   * (NO_IF_ADDR: none), which the family keeps valid for the engine's life.
   */
  protected constructor(
    cfg: NatCommonConfig,
    protected readonly fam: NatFamily,
    ifVal: Uint32Array,
  ) {
    const max = cfg.maxFlows;
    const [lo, hi] = checkCommonConfig(cfg, ifVal.length);
    this.maxFlows = max;
    this.maxFlowsPerPort = limitOf(cfg.maxFlowsPerPort, 'maxFlowsPerPort', max);
    this.maxFlowsPerSource = limitOf(cfg.maxFlowsPerSource, 'maxFlowsPerSource', max);
    this.uplinkIf = cfg.uplinkIf;
    this.ifVal = ifVal;
    this.extOk = cfg.uplinkIf >= 0 && ifVal[cfg.uplinkIf] !== NO_IF_ADDR && ifVal[cfg.uplinkIf] !== 0;
    this.extVal = this.extOk ? ifVal[cfg.uplinkIf] : -1;
    this.key = fam.key;
    this.rw = fam.rw;
    this.icmpProto = fam.info.icmpProto;
    this.ipVersion = fam.info.version;

    const t: Timeouts = { ...DEFAULT_TIMEOUTS, ...(cfg.timeouts ?? {}) };
    for (const [k, v] of Object.entries(t)) {
      if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) throw new Error(`nat.timeouts.${k}: must be a positive number of seconds`);
    }
    const tt = (this.tcpTimeoutMs = new Float64Array(10));
    tt[0] = t.tcpClose * 1000;
    tt[TCP_SYN_SENT] = t.tcpSynSent * 1000;
    tt[TCP_SYN_RECV] = t.tcpSynRecv * 1000;
    tt[TCP_ESTABLISHED] = t.tcpEstablished * 1000;
    tt[4] = t.tcpFinWait * 1000;
    tt[5] = t.tcpCloseWait * 1000;
    tt[6] = t.tcpLastAck * 1000;
    tt[TCP_TIME_WAIT] = t.tcpTimeWait * 1000;
    tt[TCP_CLOSE] = t.tcpClose * 1000;
    tt[9] = t.tcpSynSent2 * 1000;
    this.tcpUnackMs = t.tcpUnack * 1000;
    this.udpUnrepliedMs = t.udpUnreplied * 1000;
    this.udpRepliedMs = t.udpReplied * 1000;
    this.icmpMs = t.icmp * 1000;
    this.genericMs = t.generic * 1000;

    const seed = cfg.seed ?? Math.floor(Math.random() * 0x100000000);
    this.table = new FlowTable(max, seed, this.counters, fam.refs);
    this.ports = new PortPicker(this.table.idx, this.published, this.extVal, lo, hi, seed);
    this.related = new IcmpRelated(this.table, fam.quotedKey, fam.quote, fam.outer);
  }

  /** Confirmed flows in the table. */
  get size(): number {
    return this.table.size;
  }

  /** Bytes of preallocated table memory (flow records, tuples, index, timers, lists, forwards, addresses). */
  get memoryBytes(): number {
    return this.table.memoryBytes + this.published.memoryBytes + FragmentCache.memoryBytes + this.fam.memoryBytes;
  }

  /** Verdict names (types.ts order): the registry's drop reasons for this family. */
  get dropNames(): readonly string[] {
    return this.fam.info.dropNames;
  }

  /* ============================================================ packet state */

  /** The current packet's conntrack state as one integer (-1: none), for the frame's annotations. */
  get packetState(): number {
    return this.curFlow < 0 ? -1 : (this.curFlow << 3) | (this.curDir << 2) | this.curKind;
  }

  /** Make `state` (from packetState) the current packet's again, before postrouting. */
  setPacketState(state: number): void {
    if (state < 0) {
      this.curFlow = -1;
      this.curKind = K_NONE;
      this.curDir = 0;
    } else {
      this.curFlow = state >>> 3;
      this.curDir = (state >>> 2) & 1;
      this.curKind = state & 3;
    }
  }

  /* ============================================================ prerouting */

  prerouting(buf: Uint8Array, ipOff: number, ipLen: number, partialCsum: boolean, ingressIf: number, nowMs: number): number {
    this.releasePending();
    this.curFlow = -1;
    this.curKind = K_NONE;
    this.curDir = 0;
    this.table.startClock(nowMs);
    const k = this.key;
    const what = k.parse(buf, ipOff, ipLen);
    if (what === PK_MALFORMED) return this.malformed();
    if (what === PK_LATER_FRAGMENT) return this.fragmentPre(buf, ipOff, nowMs);
    if (what === PK_ICMP_ERROR) return this.icmpErrorPre(buf, ipOff, nowMs);
    if (what === PK_UNTRACKED) return this.untracked();

    const table = this.table;
    const idx = table.idx;
    let e = idx.lookup(k.kp, k.src, k.dst, k.sport, k.dport);
    if (e >= 0) {
      const f = e >>> 1;
      const dir = e & 1;
      if (table.deadline(f) <= nowMs) {
        if (!this.readOnly) {
          this.counters.expired++;
          table.destroy(f);
        }
        e = -1;
      } else {
        const r = k.proto === IPPROTO_TCP ? this.tcpVerdict(f, dir, k.tcpFlags) : TRACK_OK;
        if (r === TRACK_INVALID) {
          this.counters.invalid++;
          return this.dropped(NAT_DROP_TCP_INVALID);
        }
        if (r === TRACK_REOPEN) {
          if (!this.readOnly) {
            this.counters.reopened++;
            table.destroy(f);
          }
          e = -1;
        } else {
          if (!this.readOnly) {
            if (k.proto === IPPROTO_TCP) this.tcpTrack(f, dir, k.tcpFlags, nowMs);
            else this.otherTrack(f, dir, k.proto, nowMs);
            table.count(e, k.total);
            if (k.more) this.frags.remember(k.src, k.dst, k.fragId, k.fragProto, e, table.generation(f), nowMs);
          }
          // Destination half of the translation: dst := other tuple's src.
          const o = e ^ 1;
          const rw = this.rw.reset(buf, ipOff, ipLen, partialCsum);
          rw.setDst(idx.src(o));
          if (k.proto === IPPROTO_TCP || k.proto === IPPROTO_UDP) rw.setDstPort(idx.sport(o));
          else if (k.proto === this.icmpProto && dir === 1) rw.setIcmpId(idx.sport(o));
          return this.current(f, dir, K_FLOW, EV_HIT);
        }
      }
    }
    return this.newFlow(buf, ipOff, ipLen, partialCsum, ingressIf, nowMs);
  }

  /** A packet with no flow (the key is in this.key): create a pending one. */
  private newFlow(buf: Uint8Array, ipOff: number, ipLen: number, partial: boolean, ingressIf: number, now: number): number {
    const k = this.key;
    if (k.kp === KP_ICMP_REP) return this.untracked(); // echo reply without a request
    const proto = k.proto;
    let dnatPort = -1;
    let dnatIp = 0;
    if ((proto === IPPROTO_TCP || proto === IPPROTO_UDP) && k.dst === this.extVal && this.extOk) {
      dnatPort = this.published.port(proto, k.dport);
      dnatIp = this.published.ip(proto, k.dport);
    }
    if (dnatPort < 0 && this.isLocal(k.dst)) return this.untracked();
    let st = 0;
    let timeout: number;
    if (proto === IPPROTO_TCP) {
      st = TCP_TRANSITIONS[tcpFlagIndex(k.tcpFlags) * 10]; // ORIGINAL row, state NONE
      if (st === TCP_INVALID) {
        this.counters.invalid++;
        return this.dropped(NAT_DROP_TCP_INVALID);
      }
      timeout = Math.min(this.tcpTimeoutMs[st], this.tcpUnackMs);
    } else if (proto === IPPROTO_UDP) {
      st = UDP_UNREPLIED;
      timeout = this.udpUnrepliedMs;
    } else timeout = proto === this.icmpProto ? this.icmpMs : this.genericMs;
    const table = this.table;
    const port = this.ingressPort;
    if (this.maxFlowsPerPort > 0 && port >= 0 && table.perPort[port] >= this.maxFlowsPerPort) {
      this.counters.refusedPortLimit++;
      return this.dropped(NAT_DROP_PORT_LIMIT);
    }
    if (this.maxFlowsPerSource > 0 && table.perSource.get(k.src) >= this.maxFlowsPerSource) {
      this.counters.refusedSourceLimit++;
      return this.dropped(NAT_DROP_SOURCE_LIMIT);
    }
    const f = this.readOnly ? table.scratch : table.alloc();
    if (f < 0) {
      this.counters.refusedFull++;
      return this.dropped(NAT_DROP_TABLE_FULL);
    }
    this.fam.bindKey(this.readOnly); // after alloc: an early drop may have released addresses
    const idx = table.idx;
    const eo = f << 1;
    idx.setTuple(eo, k.kp, k.src, k.dst, k.sport, k.dport);
    if (dnatPort >= 0) idx.setTuple(eo | 1, k.kp, dnatIp, k.src, dnatPort, k.sport);
    else idx.setTuple(eo | 1, k.kp === KP_ICMP_REQ ? KP_ICMP_REP : k.kp, k.dst, k.src, k.dport, k.sport);
    table.init(f, proto, st, dnatPort >= 0 ? F_DNAT : 0, ingressIf, port, now + timeout, k.total);
    this.pending = f;
    if (dnatPort >= 0) {
      const rw = this.rw.reset(buf, ipOff, ipLen, partial);
      rw.setDst(dnatIp);
      rw.setDstPort(dnatPort);
    }
    if (k.more && !this.readOnly) this.frags.remember(k.src, k.dst, k.fragId, k.fragProto, eo, table.generation(f), now);
    return this.current(f, 0, K_FLOW, EV_NEW);
  }

  /* ============================================================ postrouting */

  postrouting(buf: Uint8Array, ipOff: number, ipLen: number, partialCsum: boolean, egressIf: number, nowMs: number): number {
    const f = this.curFlow;
    const kind = this.curKind;
    this.curFlow = -1;
    this.curKind = K_NONE;
    if (f < 0) {
      if (egressIf === this.uplinkIf && this.fam.leaks(buf, ipOff, ipLen)) {
        this.counters.untrackedLeak++;
        return this.dropped(NAT_DROP_UNTRACKED);
      }
      return NAT_ACCEPT;
    }
    if (f === this.pending) {
      const r = this.confirm(f, egressIf);
      if (r !== NAT_ACCEPT) return this.dropped(r);
    }
    const idx = this.table.idx;
    const dir = this.curDir;
    const o = ((f << 1) | dir) ^ 1;
    const rw = this.rw.reset(buf, ipOff, ipLen, partialCsum);
    const proto = rw.proto;
    if (kind === K_FLOW) {
      // Source half of the translation: src := other tuple's dst.
      rw.setSrc(idx.dst(o));
      if (proto === IPPROTO_TCP || proto === IPPROTO_UDP) rw.setSrcPort(idx.dport(o));
      else if (proto === this.icmpProto && dir === 0) rw.setIcmpId(idx.dport(o));
    } else if (kind === K_RELATED) {
      this.related.post(buf, ipOff, rw.l4, rw.l4len, (f << 1) | dir);
    } else if (kind === K_FRAG) {
      rw.setSrc(idx.dst(o), true);
    }
    return NAT_ACCEPT;
  }

  /** Decide SNAT for pending flow f, pick its port, index it. */
  private confirm(f: number, egressIf: number): number {
    const table = this.table;
    const idx = table.idx;
    const eo = f << 1;
    const er = eo | 1;
    let add = 0;
    let snat = false;
    if (egressIf === this.uplinkIf && this.fam.isMasqSource(idx.src(eo))) {
      if (!this.extOk) {
        // no external address of this family: it would leave untranslated
        this.counters.untrackedLeak++;
        this.releasePending(false);
        return NAT_DROP_UNTRACKED;
      }
      snat = true;
      idx.setDst(er, this.extVal);
      add = F_SNAT;
    } else if ((table.flags(f) & F_DNAT) !== 0 && egressIf === table.ingressIf(f) && egressIf !== this.uplinkIf && egressIf < this.ifVal.length && this.ifVal[egressIf] !== NO_IF_ADDR) {
      snat = true;
      idx.setDst(er, this.ifVal[egressIf]);
      add = F_SNAT | F_HAIRPIN;
    }
    const p = table.proto(f);
    if (snat && (p === IPPROTO_TCP || p === IPPROTO_UDP || p === this.icmpProto)) {
      const port = this.ports.pick(er, idx.sport(eo));
      if (port < 0) {
        this.counters.noPort++;
        this.releasePending(false);
        return NAT_DROP_NO_PORT;
      }
      idx.setPorts(er, p === this.icmpProto ? port : idx.sport(er), port);
    } else if (idx.lookup(idx.kp(er), idx.src(er), idx.dst(er), idx.sport(er), idx.dport(er)) >= 0) {
      this.counters.clash++;
      this.releasePending(false);
      return NAT_DROP_CLASH;
    }
    if (this.readOnly) {
      // a dry run: the tuples are final for the rewrite, but the flow joins nothing
      table.setFlags(f, table.flags(f) | add);
      return NAT_ACCEPT;
    }
    table.confirm(f, add);
    this.pending = -1;
    const fl = table.flags(f);
    const c = this.counters;
    c.created++;
    if ((fl & F_SNAT) !== 0) c.snat++;
    if ((fl & F_DNAT) !== 0) c.dnat++;
    if ((fl & F_HAIRPIN) !== 0) c.hairpin++;
    return NAT_ACCEPT;
  }

  /**
   * Release a flow created by prerouting whose packet never reached postrouting (dropped or
   * delivered locally by the router). Called by the next prerouting and at the end of every
   * batch; `abandoned` counts them.
   */
  releasePending(abandoned = true): void {
    const f = this.pending;
    if (f < 0) return;
    this.pending = -1;
    if (abandoned) this.counters.abandoned++;
    this.table.destroy(f);
    if (this.curFlow === f) {
      this.curFlow = -1;
      this.curKind = K_NONE;
    }
  }

  /* ============================================================ local errors */

  /**
   * An ICMP error tapbridge generated (at ipOff) about a packet whose packet state was
   * `related` (see packetState): restore the quoted header to what its sender sent and
   * address the error to that sender. Does nothing when the packet was untracked, or is not
   * of this engine's IP version.
   */
  translateLocalError(buf: Uint8Array, ipOff: number, ipLen: number, related: number): void {
    if (related < 0 || (related & 3) === K_RELATED || buf[ipOff] >>> 4 !== this.ipVersion) return;
    const f = related >>> 3;
    if (f > this.maxFlows || (this.table.flags(f) & F_USED) === 0) return;
    const rw = this.rw.reset(buf, ipOff, ipLen, false);
    if (rw.proto !== this.icmpProto) return;
    this.related.local(buf, ipOff, rw.l4, rw.l4len, (f << 1) | ((related >>> 2) & 1));
    this.counters.localErrorsTranslated++;
  }

  /* ============================================================ tracking */

  /** What a TCP segment does to flow f, without changing anything: TRACK_OK, TRACK_INVALID or TRACK_REOPEN. */
  private tcpVerdict(f: number, dir: number, tcpFlags: number): number {
    const old = this.table.state(f);
    const nw = TCP_TRANSITIONS[(dir * 6 + tcpFlagIndex(tcpFlags)) * 10 + old];
    if (nw === TCP_INVALID) return TRACK_INVALID;
    if (nw === TCP_SYN_SENT && old >= TCP_TIME_WAIT && old <= TCP_CLOSE) return TRACK_REOPEN;
    return TRACK_OK;
  }

  /** Apply a TCP segment that tcpVerdict accepted to flow f: state, reply seen, assured, timeout. */
  private tcpTrack(f: number, dir: number, tcpFlags: number, now: number): void {
    const table = this.table;
    const old = table.state(f);
    const fi = tcpFlagIndex(tcpFlags);
    const nw = TCP_TRANSITIONS[(dir * 6 + fi) * 10 + old];
    // The steady state (an assured flow staying in its state): only the timeout moves. Kept
    // small so it is inlined into prerouting; everything else is tcpChange.
    if (nw === old && (table.flags(f) & (F_SEEN_REPLY | F_ASSURED)) === (F_SEEN_REPLY | F_ASSURED)) table.setDeadline(f, now + this.tcpTimeoutMs[nw]);
    else this.tcpChange(f, dir, fi, old, nw, now);
  }

  /** tcpTrack for a state change, a flow not yet assured, or one without a reply. */
  private tcpChange(f: number, dir: number, fi: number, old: number, nw: number, now: number): void {
    const table = this.table;
    const fl = table.flags(f);
    const seen = (fl & F_SEEN_REPLY) !== 0;
    if (nw === TCP_IGNORE) {
      if (dir === 1 && !seen) table.setFlags(f, fl | F_SEEN_REPLY);
      return;
    }
    table.setState(f, nw);
    if (fi === TCPI_RST && !seen) {
      // Only a RST seen before any reply: not a connection; kill at once (netfilter does).
      if (dir === 1) table.setFlags(f, fl | F_SEEN_REPLY);
      table.setDeadline(f, now);
      return;
    }
    if (!seen) {
      if (dir === 1) table.setFlags(f, fl | F_SEEN_REPLY);
    } else if ((fl & F_ASSURED) === 0 && (old === TCP_SYN_RECV || old === TCP_ESTABLISHED) && nw === TCP_ESTABLISHED) {
      table.assure(f);
    }
    let t = this.tcpTimeoutMs[nw];
    if (!seen && t > this.tcpUnackMs) t = this.tcpUnackMs;
    table.setDeadline(f, now + t);
  }

  private otherTrack(f: number, dir: number, proto: number, now: number): void {
    const table = this.table;
    let fl = table.flags(f);
    if (dir === 1 && (fl & F_SEEN_REPLY) === 0) {
      fl |= F_SEEN_REPLY;
      table.setFlags(f, fl);
      if (proto !== this.icmpProto) {
        table.setState(f, UDP_REPLIED);
        table.assure(f);
      }
    }
    let t: number;
    if (proto === IPPROTO_UDP) t = (fl & F_SEEN_REPLY) !== 0 ? this.udpRepliedMs : this.udpUnrepliedMs;
    else if (proto === this.icmpProto) t = this.icmpMs;
    else t = this.genericMs;
    table.setDeadline(f, now + t);
  }

  /* ============================================================ ICMP errors, fragments */

  private icmpErrorPre(buf: Uint8Array, ipOff: number, now: number): number {
    const k = this.key;
    const icmp = k.l4;
    const len = k.l4len;
    const e = this.related.find(buf, icmp, len);
    if (e < 0) return this.untracked();
    const f = e >>> 1;
    if (this.table.deadline(f) <= now) {
      if (!this.readOnly) {
        this.counters.expired++;
        this.table.destroy(f);
      }
      return this.untracked();
    }
    this.related.pre(buf, ipOff, icmp, len, e);
    this.counters.icmpRelated++;
    return this.current(f, e & 1, K_RELATED, EV_RELATED);
  }

  private fragmentPre(buf: Uint8Array, ipOff: number, now: number): number {
    const k = this.key;
    const e = this.frags.find(k.src, k.dst, k.fragId, k.fragProto, now);
    if (e >= 0) {
      const f = e >>> 1;
      if (this.table.generation(f) === this.frags.foundGeneration && this.table.isLive(f, now)) {
        if (!this.readOnly) this.table.count(e, k.total);
        this.rw.reset(buf, ipOff, k.total, false).setDst(this.table.idx.src(e ^ 1), true);
        this.counters.fragTranslated++;
        return this.current(f, e & 1, K_FRAG, EV_FRAG);
      }
    }
    this.counters.fragDropped++;
    return this.dropped(NAT_DROP_FRAGMENT);
  }

  /* ============================================================ helpers */

  /** Flow f (direction dir) is the current packet's, as `kind` for postrouting; accepts. */
  private current(f: number, dir: number, kind: number, ev: number): number {
    this.curFlow = f;
    this.curDir = dir;
    this.curKind = kind;
    this.lastEvent = ev;
    return NAT_ACCEPT;
  }

  private isLocal(a: number): boolean {
    const ia = this.ifVal;
    for (let i = 0; i < ia.length; i++) if (ia[i] === a) return true;
    return false;
  }

  private malformed(): number {
    this.counters.malformed++;
    return this.dropped(NAT_DROP_MALFORMED);
  }

  private untracked(): number {
    this.counters.untracked++;
    this.lastEvent = EV_UNTRACKED;
    return NAT_ACCEPT;
  }

  private dropped(code: number): number {
    this.lastEvent = EV_DROP;
    this.lastCode = code;
    return code;
  }

  /* ============================================================ timers */

  /** Expire flows whose deadline passed. */
  tick(nowMs: number): void {
    this.table.expire(nowMs);
  }

  /** Remove every flow (published ports stay). */
  flush(): void {
    this.table.clear();
    this.pending = -1;
    this.curFlow = -1;
    this.curKind = K_NONE;
    this.frags.clear();
  }

  /** Remove one flow now (control plane: e.g. the flow a decision trace created). */
  removeFlow(f: number): boolean {
    if (f < 0 || f >= this.maxFlows || (this.table.flags(f) & F_USED) === 0) return false;
    if (this.pending === f) this.pending = -1;
    this.table.destroy(f);
    return true;
  }

  /* ============================================================ published ports */

  /** Remove the published range containing externalPort. Existing flows keep their mapping until they end. */
  removeForward(proto: number, externalPort: number): boolean {
    return this.published.remove(proto, externalPort) !== null;
  }

  /* ============================================================ control plane */

  /** Flow id whose tuple (key proto, address values, ports) is the ORIGINAL or REPLY one, or -1. */
  protected findFlow(proto: number, src: number, dst: number, sport: number, dport: number, icmpType: number): number {
    const kp = proto === this.icmpProto ? (icmpType === this.fam.info.echoReply ? KP_ICMP_REP : KP_ICMP_REQ) : proto;
    const e = this.table.idx.lookup(kp, src, dst, sport, dport);
    return e < 0 ? -1 : e >>> 1;
  }

  /** One flow's record (null when f is not a confirmed flow). */
  info(f: number, nowMs: number): FlowInfo | null {
    const table = this.table;
    if (f < 0 || f >= this.maxFlows || (table.flags(f) & F_CONFIRMED) === 0) return null;
    const fl = table.flags(f);
    const p = table.proto(f);
    const e = f << 1;
    const flags: string[] = [];
    if ((fl & F_ASSURED) !== 0) flags.push('ASSURED');
    flags.push((fl & F_SEEN_REPLY) !== 0 ? 'SEEN_REPLY' : 'UNREPLIED');
    if ((fl & F_SNAT) !== 0) flags.push('SNAT');
    if ((fl & F_DNAT) !== 0) flags.push('DNAT');
    if ((fl & F_HAIRPIN) !== 0) flags.push('HAIRPIN');
    let state = '';
    if (p === IPPROTO_TCP) state = TCP_STATE_NAMES[table.state(f)];
    else if (p === IPPROTO_UDP) state = table.state(f) === UDP_REPLIED ? 'REPLIED' : 'UNREPLIED';
    return {
      id: f,
      proto: p,
      protoName: p === IPPROTO_TCP ? 'tcp' : p === IPPROTO_UDP ? 'udp' : p === this.icmpProto ? this.fam.info.icmpName : `proto-${p}`,
      state,
      secondsLeft: Math.max(0, Math.ceil((table.deadline(f) - nowMs) / 1000)),
      original: this.tupleString(e),
      reply: this.tupleString(e | 1),
      packetsOrig: table.packets(e),
      bytesOrig: table.bytes(e),
      packetsReply: table.packets(e | 1),
      bytesReply: table.bytes(e | 1),
      flags,
      ingressIf: table.ingressIf(f),
    };
  }

  /** Confirmed flows from id `from` on, at most `limit` (control plane: bounded work per call). */
  list(nowMs: number, limit = Infinity, from = 0): FlowInfo[] {
    const out: FlowInfo[] = [];
    for (let f = from; f < this.maxFlows && out.length < limit; f++) {
      const i = this.info(f, nowMs);
      if (i !== null) out.push(i);
    }
    return out;
  }

  private tupleString(e: number): string {
    const idx = this.table.idx;
    const s = `src=${this.fam.addrText(idx.src(e))} dst=${this.fam.addrText(idx.dst(e))}`;
    const kp = idx.kp(e);
    if (kp === KP_ICMP_REQ || kp === KP_ICMP_REP) return `${s} type=${kp === KP_ICMP_REQ ? this.fam.info.echoRequest : this.fam.info.echoReply} id=${idx.sport(e)}`;
    if (kp === IPPROTO_TCP || kp === IPPROTO_UDP) return `${s} sport=${idx.sport(e)} dport=${idx.dport(e)}`;
    return s;
  }

  /** Trace only: what the last prerouting/postrouting did (allocates; not for the fast path). */
  describeLast(): string {
    const f = this.curFlow;
    switch (this.lastEvent) {
      case EV_NEW:
        if (this.readOnly) return 'new flow (a dry run: not created)';
        return f >= 0 ? `new flow #${f} (confirmed in postrouting)` : 'new flow';
      case EV_HIT:
        return f >= 0 ? `flow #${f}, ${this.curDir === 0 ? 'original' : 'reply'} direction${this.table.proto(f) === IPPROTO_TCP ? `, ${TCP_STATE_NAMES[this.table.state(f)]}` : ''}` : 'flow hit';
      case EV_RELATED:
        return f >= 0 ? `ICMP error related to flow #${f} (${this.curDir === 0 ? 'original' : 'reply'} direction)` : 'ICMP error related to a flow';
      case EV_FRAG:
        return f >= 0 ? `fragment of flow #${f}` : 'fragment';
      case EV_UNTRACKED:
        return 'untracked';
      case EV_DROP:
        return `dropped: ${this.fam.info.dropNames[this.lastCode] ?? this.lastCode}`;
      default:
        return '';
    }
  }
}
