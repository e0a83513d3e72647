/*
 * NatEngine: connection tracking + NAT for the router (netfilter-like, IPv4).
 *
 * Hooks (called by the router for every IPv4 packet it routes; see src/gateway/router.ts):
 *   prerouting(pkt, ingressIf)  before the route lookup: look the packet's tuple up (both
 *       directions of every flow are indexed), update the flow's state and timeout, apply
 *       the destination half of the translation (DNAT of published ports, de-NAT of replies),
 *       translate ICMP errors about tracked flows (outer dst + quoted header's src). A new flow
 *       stays *pending* (not in the table) until postrouting confirms it.
 *   postrouting(pkt, egressIf)  after the route lookup: decide SNAT for a pending flow
 *       (masquerade out of the uplink; hairpin SNAT to the gateway address for a DNAT flow
 *       going back out of the bridge it came from), pick a free port, confirm (index both
 *       tuples, arm the expiry timer), then apply the source half of the translation.
 *   abortPending()              the router dropped the packet (or delivered it locally).
 *   tick(now)                   expiry via a timer wheel: amortised O(expired).
 * Config: NatConfig (uplink interface id, per-interface addresses, masqueraded subnets, SNAT
 *   port range, table size, timeouts, published ports).
 * Counters: `counters` (created, expired, refusedFull, earlyDropped, invalid, ...).
 *
 * Data layout: struct-of-arrays typed arrays sized for maxFlows, a free-id stack, an
 * open-addressing tuple index (flow-index.ts), a timer wheel (timer-wheel.ts) and a FIFO of
 * non-assured flows for early drop. No allocation per packet.
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
 *  - Fragments: first fragments are tracked by their ports; the flow is remembered by
 *    (src, dst, IP id, proto) in a small direct-mapped cache so later fragments get the same
 *    address translation (their L4 checksum lives in the first fragment). A non-first fragment
 *    with no cached first fragment (lost, reordered, or for untracked traffic) is dropped:
 *    NAT_DROP_FRAGMENT.
 *  - ICMP errors (dest unreachable incl. frag needed, time exceeded, parameter problem) whose
 *    quoted header belongs to a tracked flow are translated like netfilter: outer dst (and src
 *    when the flow has a source translation in that direction), the quoted header's addresses
 *    and ports, its IP checksum, its UDP/TCP/ICMP checksum when present, and the outer ICMP
 *    checksum -- all incrementally. They do not refresh the flow.
 *  - Port choice: keep the source port (or echo id) when the reply tuple is free, else scan
 *    portRange linearly from a pseudo-random start, at most MAX_PORT_TRIES candidates.
 */

import { readU16, readU32, writeU16, writeU32 } from '../wire/bytes.js';
import {
  csumReplace16,
  csumReplace32,
  partialReplace32,
  udpCsumReplace16,
  udpCsumReplace32,
} from '../wire/checksum.js';
import { ip4ToString } from '../wire/ip4.js';
import { FlowIndex, KP_ICMP_REP, KP_ICMP_REQ } from './flow-index.js';
import { TimerWheel, WHEEL_SLOTS } from './timer-wheel.js';
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

/* ---------------------------------------------------------------- verdicts */

export const NAT_ACCEPT = 0;
/** Truncated/unsound IPv4 or L4 header. */
export const NAT_DROP_MALFORMED = 1;
/** Non-first fragment whose first fragment was not seen (see header). */
export const NAT_DROP_FRAGMENT = 2;
/** New flow refused: table full and no non-assured flow to early-drop. */
export const NAT_DROP_TABLE_FULL = 3;
/** TCP packet invalid for the flow's state (or SYN/ACK, FIN, RST without a flow). */
export const NAT_DROP_TCP_INVALID = 4;
/** No free SNAT port for the reply tuple. */
export const NAT_DROP_NO_PORT = 5;
/** The new flow's reply tuple is taken and cannot be remapped. */
export const NAT_DROP_CLASH = 6;
/** Untracked packet from a masqueraded source leaving through the uplink. */
export const NAT_DROP_UNTRACKED = 7;

export const NAT_DROP_REASON_NAMES: readonly string[] = [
  'ok',
  'nat_malformed',
  'nat_fragment_untracked',
  'nat_table_full',
  'nat_tcp_invalid',
  'nat_no_port',
  'nat_clash',
  'nat_untracked_leak',
];

/* ---------------------------------------------------------------- config */

export interface PortForward {
  proto: 6 | 17;
  externalPort: number;
  /** Inclusive; equal to externalPort for a single port. Ranges map port by port. */
  externalPortEnd: number;
  internalIp: number;
  internalPort: number;
}

/** Seconds. */
export interface Timeouts {
  tcpSynSent: number;
  tcpSynRecv: number;
  tcpEstablished: number;
  tcpFinWait: number;
  tcpCloseWait: number;
  tcpLastAck: number;
  tcpTimeWait: number;
  tcpClose: number;
  tcpSynSent2: number;
  /** Cap for TCP flows that have not seen a reply (netfilter's "unacknowledged"). */
  tcpUnack: number;
  udpUnreplied: number;
  udpReplied: number;
  icmp: number;
  generic: number;
}

export const DEFAULT_TIMEOUTS: Readonly<Timeouts> = {
  tcpSynSent: 120,
  tcpSynRecv: 60,
  tcpEstablished: 432000,
  tcpFinWait: 120,
  tcpCloseWait: 60,
  tcpLastAck: 30,
  tcpTimeWait: 120,
  tcpClose: 10,
  tcpSynSent2: 120,
  tcpUnack: 300,
  udpUnreplied: 30,
  udpReplied: 120,
  icmp: 30,
  generic: 600,
};

export interface NatConfig {
  /** Interface id of the uplink; -1: none (no masquerade, no DNAT). */
  uplinkIf: number;
  /** Own address per interface id: the gateway IP of a bridge, the external IP of the uplink. */
  ifAddr: Uint32Array;
  masqueradeSources: { net: number; prefixLen: number }[];
  /** SNAT ports (and ICMP ids) to pick from when the original one is taken. Default 32768..60999. */
  portRange?: [number, number];
  maxFlows: number;
  timeouts?: Partial<Timeouts>;
  forwards?: PortForward[];
  /** Seed for the hash and the port picker (default: random). */
  seed?: number;
}

export interface FlowInfo {
  id: number;
  proto: number;
  protoName: string;
  state: string;
  secondsLeft: number;
  /** conntrack style: "src=10.100.0.2 dst=203.0.113.1 sport=40000 dport=80". */
  original: string;
  reply: string;
  packetsOrig: number;
  bytesOrig: number;
  packetsReply: number;
  bytesReply: number;
  /** ASSURED, SEEN_REPLY (else UNREPLIED), SNAT, DNAT, HAIRPIN. */
  flags: string[];
  ingressIf: number;
}

/* ---------------------------------------------------------------- internals */

const F_USED = 1;
const F_CONFIRMED = 2;
const F_SEEN_REPLY = 4;
const F_ASSURED = 8;
const F_SNAT = 16;
const F_DNAT = 32;
const F_HAIRPIN = 64;
const F_IN_UNREPLIED = 128;

/* What the current packet is to postrouting. */
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

/*
 * RECORD: the per-flow record, 64 bytes at f * 64.
 *   f64[0] deadline (ms)   f64[1] packets ORIG   f64[2] bytes ORIG   f64[3] packets REPLY
 *   f64[4] bytes REPLY     f64[5] timer-wheel second (owned by TimerWheel)
 *   u32[12] generation (bumped on every allocation; validates fragment-cache entries)
 *   u8[56] proto   u8[57] state   u8[58] flags   u16[30] (bytes 60..61) ingress interface
 */
const RECORD = 64;
const Q_WHEEL = 5;
const W_GEN = 12;
const B_PROTO = 56;
const B_STATE = 57;
const B_FLAGS = 58;
const H_INIF = 30;

/** f64 index of entry e's packet counter (bytes at + 1). */
function pktsAt(e: number): number {
  return ((e >>> 1) << 3) + 1 + ((e & 1) << 1);
}

const TRACK_OK = 0;
const TRACK_INVALID = 1;
const TRACK_REOPEN = 2;

const UDP_UNREPLIED = 0;
const UDP_REPLIED = 1;

export const MAX_PORT_TRIES = 1024;
const FRAG_SLOTS = 1024;
const FRAG_TIMEOUT_MS = 30_000;

export class NatEngine {
  readonly maxFlows: number;
  readonly uplinkIf: number;
  readonly ifAddr: Uint32Array;
  /** Address of the uplink (0 when there is none). */
  readonly extAddr: number;

  /** Flow id / direction / kind of the packet between prerouting and postrouting (-1: none). */
  curFlow = -1;
  curDir = 0;
  curKind = K_NONE;
  /** Flow created by the last prerouting and not yet confirmed (-1: none). */
  pending = -1;

  readonly counters = {
    created: 0, // flows confirmed
    expired: 0,
    earlyDropped: 0,
    refusedFull: 0,
    invalid: 0,
    malformed: 0,
    reopened: 0,
    aborted: 0, // abortPending() with a pending flow
    abandoned: 0, // pending flow found by the next prerouting (postrouting never came)
    noPort: 0,
    clash: 0,
    untracked: 0,
    untrackedLeak: 0,
    snat: 0,
    dnat: 0,
    hairpin: 0,
    icmpRelated: 0,
    fragTranslated: 0,
    fragDropped: 0,
  };

  /* Per-flow record: 64 bytes (one cache line) in one buffer, seen through four views (see RECORD). */
  private readonly m64: Float64Array;
  private readonly m32: Uint32Array;
  private readonly m16: Uint16Array;
  private readonly m8: Uint8Array;
  /* FIFO of non-assured flows (early-drop victims), touched only on confirm/assure/destroy. */
  private readonly uNext: Int32Array;
  private readonly uPrev: Int32Array;
  private uHead = -1;
  private uTail = -1;

  private readonly idx: FlowIndex;
  private readonly wheel: TimerWheel;
  private readonly freeStack: Int32Array;
  private freeTop: number;
  private confirmed = 0;

  private readonly masqNet: Uint32Array;
  private readonly masqMask: Uint32Array;
  private readonly portLo: number;
  private readonly portHi: number;
  private rng: number;

  /* timeouts in ms */
  private readonly tcpTimeoutMs: Float64Array;
  private readonly tcpUnackMs: number;
  private readonly udpUnrepliedMs: number;
  private readonly udpRepliedMs: number;
  private readonly icmpMs: number;
  private readonly genericMs: number;

  /* published ports: index (proto === 17 ? 65536 : 0) + external port */
  private readonly fwdIp: Uint32Array;
  private readonly fwdPort: Int32Array;
  private forwards: PortForward[] = [];

  /* first-fragment cache */
  private readonly fragSrc: Uint32Array;
  private readonly fragDst: Uint32Array;
  private readonly fragKey: Int32Array; // (id << 8) | proto, -1 empty
  private readonly fragEntry: Int32Array;
  private readonly fragGen: Uint32Array;
  private readonly fragExp: Float64Array;

  private lastEvent = EV_NONE;
  private lastCode = 0;

  constructor(cfg: NatConfig) {
    const max = cfg.maxFlows;
    if (!Number.isInteger(max) || max < 1 || max > 16_000_000) throw new Error(`nat.maxFlows: must be an integer 1..16000000, got ${max}`);
    if (!(cfg.ifAddr instanceof Uint32Array)) throw new Error('nat.ifAddr: must be a Uint32Array');
    if (!Number.isInteger(cfg.uplinkIf) || cfg.uplinkIf < -1 || cfg.uplinkIf >= cfg.ifAddr.length) {
      throw new Error(`nat.uplinkIf: ${cfg.uplinkIf} is not an interface id (0..${cfg.ifAddr.length - 1}) or -1`);
    }
    if (cfg.ifAddr.length > 65535) throw new Error('nat.ifAddr: too many interfaces');
    const pr = cfg.portRange ?? [32768, 60999];
    if (!Number.isInteger(pr[0]) || !Number.isInteger(pr[1]) || pr[0] < 1 || pr[1] > 65535 || pr[0] > pr[1]) {
      throw new Error(`nat.portRange: need 1 <= lo <= hi <= 65535, got [${pr[0]}, ${pr[1]}]`);
    }
    this.maxFlows = max;
    this.uplinkIf = cfg.uplinkIf;
    this.ifAddr = cfg.ifAddr;
    this.extAddr = cfg.uplinkIf >= 0 ? cfg.ifAddr[cfg.uplinkIf] : 0;
    this.portLo = pr[0];
    this.portHi = pr[1];

    const ms = cfg.masqueradeSources;
    this.masqNet = new Uint32Array(ms.length);
    this.masqMask = new Uint32Array(ms.length);
    ms.forEach((m, i) => {
      if (!Number.isInteger(m.prefixLen) || m.prefixLen < 0 || m.prefixLen > 32) {
        throw new Error(`nat.masqueradeSources[${i}].prefixLen: must be 0..32, got ${m.prefixLen}`);
      }
      const mask = m.prefixLen === 0 ? 0 : (0xffffffff << (32 - m.prefixLen)) >>> 0;
      this.masqMask[i] = mask;
      this.masqNet[i] = (m.net & mask) >>> 0;
    });

    const t: Timeouts = { ...DEFAULT_TIMEOUTS, ...(cfg.timeouts ?? {}) };
    for (const [k, v] of Object.entries(t)) {
      if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) throw new Error(`nat.timeouts.${k}: must be a positive number of seconds`);
    }
    this.tcpTimeoutMs = new Float64Array(10);
    const tt = this.tcpTimeoutMs;
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
    this.rng = (seed >>> 0) || 0x6d2b79f5;

    const rec = new ArrayBuffer(max * RECORD);
    this.m64 = new Float64Array(rec);
    this.m32 = new Uint32Array(rec);
    this.m16 = new Uint16Array(rec);
    this.m8 = new Uint8Array(rec);
    this.uNext = new Int32Array(max).fill(-1);
    this.uPrev = new Int32Array(max).fill(-1);
    this.idx = new FlowIndex(max, seed ^ 0x5bd1e995);
    this.wheel = new TimerWheel(max, this.m64, RECORD / 8, Q_WHEEL);
    this.freeStack = new Int32Array(max);
    for (let i = 0; i < max; i++) this.freeStack[i] = max - 1 - i; // pop gives 0, 1, 2, ...
    this.freeTop = max;

    this.fwdIp = new Uint32Array(2 * 65536);
    this.fwdPort = new Int32Array(2 * 65536).fill(-1);
    for (const f of cfg.forwards ?? []) this.addForward(f);

    this.fragSrc = new Uint32Array(FRAG_SLOTS);
    this.fragDst = new Uint32Array(FRAG_SLOTS);
    this.fragKey = new Int32Array(FRAG_SLOTS).fill(-1);
    this.fragEntry = new Int32Array(FRAG_SLOTS);
    this.fragGen = new Uint32Array(FRAG_SLOTS);
    this.fragExp = new Float64Array(FRAG_SLOTS);
  }

  /** Confirmed flows in the table. */
  get size(): number {
    return this.confirmed;
  }

  /** Bytes of preallocated table memory (flow records, tuples, index, timers, lists, forwards). */
  get memoryBytes(): number {
    const w = this.wheel;
    return (
      this.m8.byteLength + this.idx.tup.byteLength + this.idx.slots.byteLength +
      w.heads.byteLength + w.next.byteLength + w.prev.byteLength +
      this.uNext.byteLength + this.uPrev.byteLength + this.freeStack.byteLength +
      this.fwdIp.byteLength + this.fwdPort.byteLength +
      FRAG_SLOTS * (4 + 4 + 4 + 4 + 4 + 8)
    );
  }

  /* ============================================================ prerouting */

  prerouting(buf: Uint8Array, ipOff: number, ipLen: number, partialCsum: boolean, ingressIf: number, nowMs: number): number {
    if (this.pending >= 0) {
      this.counters.abandoned++;
      this.releasePending();
    }
    this.curFlow = -1;
    this.curKind = K_NONE;
    this.curDir = 0;
    if (this.wheel.cursor < 0) this.wheel.start(nowMs);

    if (ipLen < 20) return this.malformed();
    const vi = buf[ipOff];
    const ihl = (vi & 15) << 2;
    if (vi >>> 4 !== 4 || ihl < 20) return this.malformed();
    const tot = readU16(buf, ipOff + 2);
    if (tot < ihl || tot > ipLen) return this.malformed();
    const proto = buf[ipOff + 9];
    const src = readU32(buf, ipOff + 12);
    const dst = readU32(buf, ipOff + 16);
    const frag = readU16(buf, ipOff + 6);
    if ((frag & 0x1fff) !== 0) return this.fragmentPre(buf, ipOff, tot, proto, src, dst, nowMs);

    const l4 = ipOff + ihl;
    const l4len = tot - ihl;
    let kp: number;
    let sp = 0;
    let dp = 0;
    let tcpFlags = 0;
    if (proto === 6) {
      if (l4len < 20) return this.malformed();
      sp = readU16(buf, l4);
      dp = readU16(buf, l4 + 2);
      tcpFlags = buf[l4 + 13];
      kp = 6;
    } else if (proto === 17) {
      if (l4len < 8) return this.malformed();
      sp = readU16(buf, l4);
      dp = readU16(buf, l4 + 2);
      kp = 17;
    } else if (proto === 1) {
      if (l4len < 8) return this.malformed();
      const type = buf[l4];
      if (type === 8) kp = KP_ICMP_REQ;
      else if (type === 0) kp = KP_ICMP_REP;
      else if (type === 3 || type === 11 || type === 12) return this.icmpErrorPre(buf, ipOff, ihl, tot, nowMs);
      else return this.untracked();
      sp = dp = readU16(buf, l4 + 4);
    } else {
      kp = proto;
    }

    const idx = this.idx;
    let e = idx.lookup(kp, src, dst, sp, dp);
    if (e >= 0) {
      const f = e >>> 1;
      const dir = e & 1;
      if (this.m64[f << 3] <= nowMs) {
        this.counters.expired++;
        this.destroy(f);
        e = -1;
      } else {
        let r = TRACK_OK;
        if (proto === 6) r = this.tcpTrack(f, dir, tcpFlags, nowMs);
        else this.otherTrack(f, dir, proto, nowMs);
        if (r === TRACK_INVALID) {
          this.counters.invalid++;
          return this.dropped(NAT_DROP_TCP_INVALID);
        }
        if (r === TRACK_REOPEN) {
          this.counters.reopened++;
          this.destroy(f);
          e = -1;
        } else {
          this.m64[pktsAt(e)]++;
          this.m64[pktsAt(e) + 1] += tot;
          // Destination half of the translation: dst := other tuple's src.
          const o = e ^ 1;
          this.setAddr(buf, ipOff, 16, idx.src(o), proto, l4, partialCsum, true);
          if (proto === 6 || proto === 17) this.setPort(buf, l4, 2, idx.sport(o), proto, partialCsum);
          else if (proto === 1 && dir === 1) this.setIcmpId(buf, l4, idx.sport(o), partialCsum);
          if ((frag & 0x2000) !== 0) this.fragRemember(src, dst, readU16(buf, ipOff + 4), proto, e, nowMs);
          this.curFlow = f;
          this.curDir = dir;
          this.curKind = K_FLOW;
          this.lastEvent = EV_HIT;
          return NAT_ACCEPT;
        }
      }
    }
    return this.newFlow(buf, ipOff, l4, tot, partialCsum, ingressIf, nowMs, proto, kp, src, dst, sp, dp, tcpFlags, frag);
  }

  private newFlow(
    buf: Uint8Array,
    ipOff: number,
    l4: number,
    tot: number,
    partial: boolean,
    ingressIf: number,
    now: number,
    proto: number,
    kp: number,
    src: number,
    dst: number,
    sp: number,
    dp: number,
    tcpFlags: number,
    frag: number,
  ): number {
    if (kp === KP_ICMP_REP) return this.untracked(); // echo reply without a request
    let dnatPort = -1;
    let dnatIp = 0;
    if ((proto === 6 || proto === 17) && dst === this.extAddr && dst !== 0) {
      const k = (proto === 17 ? 65536 : 0) + dp;
      dnatPort = this.fwdPort[k];
      dnatIp = this.fwdIp[k];
    }
    if (dnatPort < 0 && this.isLocal(dst)) return this.untracked();
    let st = 0;
    let timeout: number;
    if (proto === 6) {
      st = TCP_TRANSITIONS[tcpFlagIndex(tcpFlags) * 10]; // ORIGINAL row, state NONE
      if (st === TCP_INVALID) {
        this.counters.invalid++;
        return this.dropped(NAT_DROP_TCP_INVALID);
      }
      timeout = this.tcpTimeoutMs[st];
      if (timeout > this.tcpUnackMs) timeout = this.tcpUnackMs;
    } else if (proto === 17) {
      st = UDP_UNREPLIED;
      timeout = this.udpUnrepliedMs;
    } else if (proto === 1) {
      timeout = this.icmpMs;
    } else {
      timeout = this.genericMs;
    }
    const f = this.allocFlow();
    if (f < 0) {
      this.counters.refusedFull++;
      return this.dropped(NAT_DROP_TABLE_FULL);
    }
    const idx = this.idx;
    const eo = f << 1;
    idx.setTuple(eo, kp, src, dst, sp, dp);
    if (dnatPort >= 0) idx.setTuple(eo | 1, kp, dnatIp, src, dnatPort, sp);
    else idx.setTuple(eo | 1, kp === KP_ICMP_REQ ? KP_ICMP_REP : kp, dst, src, dp, sp);
    this.m8[(f << 6) + B_PROTO] = proto;
    this.m8[(f << 6) + B_STATE] = st;
    this.m8[(f << 6) + B_FLAGS] = dnatPort >= 0 ? F_USED | F_DNAT : F_USED;
    this.m16[(f << 5) + H_INIF] = ingressIf;
    this.m64[f << 3] = now + timeout;
    this.m64[pktsAt(eo)] = 1;
    this.m64[pktsAt(eo) + 1] = tot;
    this.m64[pktsAt(eo | 1)] = 0;
    this.m64[pktsAt(eo | 1) + 1] = 0;
    this.pending = f;
    this.curFlow = f;
    this.curDir = 0;
    this.curKind = K_FLOW;
    this.lastEvent = EV_NEW;
    if (dnatPort >= 0) {
      this.setAddr(buf, ipOff, 16, dnatIp, proto, l4, partial, true);
      this.setPort(buf, l4, 2, dnatPort, proto, partial);
    }
    if ((frag & 0x2000) !== 0) this.fragRemember(src, dst, readU16(buf, ipOff + 4), proto, eo, now);
    return NAT_ACCEPT;
  }

  /* ============================================================ postrouting */

  postrouting(buf: Uint8Array, ipOff: number, ipLen: number, partialCsum: boolean, egressIf: number, nowMs: number): number {
    const f = this.curFlow;
    const kind = this.curKind;
    this.curFlow = -1;
    this.curKind = K_NONE;
    if (f < 0) {
      if (egressIf === this.uplinkIf && ipLen >= 20 && this.isMasqSource(readU32(buf, ipOff + 12))) {
        this.counters.untrackedLeak++;
        return this.dropped(NAT_DROP_UNTRACKED);
      }
      return NAT_ACCEPT;
    }
    if (f === this.pending) {
      const r = this.confirm(f, egressIf);
      if (r !== NAT_ACCEPT) return this.dropped(r);
    }
    const idx = this.idx;
    const dir = this.curDir;
    const o = ((f << 1) | dir) ^ 1;
    const ihl = (buf[ipOff] & 15) << 2;
    const l4 = ipOff + ihl;
    const proto = buf[ipOff + 9];
    if (kind === K_FLOW) {
      // Source half of the translation: src := other tuple's dst.
      this.setAddr(buf, ipOff, 12, idx.dst(o), proto, l4, partialCsum, true);
      if (proto === 6 || proto === 17) this.setPort(buf, l4, 0, idx.dport(o), proto, partialCsum);
      else if (proto === 1 && dir === 0) this.setIcmpId(buf, l4, idx.dport(o), partialCsum);
    } else if (kind === K_RELATED) {
      this.icmpErrorPost(buf, ipOff, ihl, f, dir);
    } else if (kind === K_FRAG) {
      this.setAddr(buf, ipOff, 12, idx.dst(o), proto, l4, false, false);
    }
    return NAT_ACCEPT;
  }

  /** Decide SNAT for pending flow f, pick its port, index it. */
  private confirm(f: number, egressIf: number): number {
    const idx = this.idx;
    const eo = f << 1;
    const er = eo | 1;
    let fl = this.m8[(f << 6) + B_FLAGS];
    let snat = false;
    if (egressIf === this.uplinkIf && this.isMasqSource(idx.src(eo))) {
      snat = true;
      idx.setDst(er, this.extAddr);
      fl |= F_SNAT;
    } else if ((fl & F_DNAT) !== 0 && egressIf === this.m16[(f << 5) + H_INIF] && egressIf !== this.uplinkIf && egressIf < this.ifAddr.length) {
      snat = true;
      idx.setDst(er, this.ifAddr[egressIf]);
      fl |= F_SNAT | F_HAIRPIN;
    }
    const p = this.m8[(f << 6) + B_PROTO];
    if (snat && (p === 6 || p === 17 || p === 1)) {
      const port = this.pickPort(er, idx.sport(eo));
      if (port < 0) {
        this.counters.noPort++;
        this.releasePending();
        return NAT_DROP_NO_PORT;
      }
      idx.setPorts(er, p === 1 ? port : idx.sport(er), port);
    } else if (idx.lookup(idx.kp(er), idx.src(er), idx.dst(er), idx.sport(er), idx.dport(er)) >= 0) {
      this.counters.clash++;
      this.releasePending();
      return NAT_DROP_CLASH;
    }
    idx.insert(eo);
    idx.insert(er);
    this.m8[(f << 6) + B_FLAGS] = fl | F_CONFIRMED;
    this.wheel.insert(f, this.m64[f << 3]);
    this.unrepliedPush(f);
    this.pending = -1;
    this.confirmed++;
    const c = this.counters;
    c.created++;
    if ((fl & F_SNAT) !== 0) c.snat++;
    if ((fl & F_DNAT) !== 0) c.dnat++;
    if ((fl & F_HAIRPIN) !== 0) c.hairpin++;
    return NAT_ACCEPT;
  }

  /** A free port for reply entry er (its dport; for ICMP both ports), or -1. */
  private pickPort(er: number, preferred: number): number {
    const idx = this.idx;
    const kp = idx.kp(er);
    const s = idx.src(er);
    const d = idx.dst(er);
    const icmp = kp === KP_ICMP_REP;
    const rs = idx.sport(er);
    // Published ports of the external address are never used for SNAT: the reply tuple would
    // shadow the published port for that remote.
    const fwdBase = d === this.extAddr && (kp === 6 || kp === 17) ? (kp === 17 ? 65536 : 0) : -1;
    if ((fwdBase < 0 || this.fwdPort[fwdBase + preferred] < 0) && idx.lookup(kp, s, d, icmp ? preferred : rs, preferred) < 0) return preferred;
    const lo = this.portLo;
    const n = this.portHi - lo + 1;
    let x = this.rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rng = x >>> 0;
    const start = this.rng % n;
    const tries = n < MAX_PORT_TRIES ? n : MAX_PORT_TRIES;
    for (let i = 0; i < tries; i++) {
      const port = lo + ((start + i) % n);
      if (port === preferred || (fwdBase >= 0 && this.fwdPort[fwdBase + port] >= 0)) continue;
      if (idx.lookup(kp, s, d, icmp ? port : rs, port) < 0) return port;
    }
    return -1;
  }

  /**
   * Undo what prerouting did to the current packet's header (the destination half: DNAT of a
   * published port, de-NAT of a reply), so an ICMP error the router generates about it (TTL
   * exceeded, frag needed, unreachable) quotes the header the sender sent -- otherwise a
   * client of a published port would get an error quoting the inside address, which its
   * stack cannot match (breaking PMTU discovery). Call before abortPending(). Also undoes the
   * address of a translated non-first fragment.
   */
  undoPrerouting(buf: Uint8Array, ipOff: number, ipLen: number, partialCsum: boolean): void {
    const f = this.curFlow;
    if (f < 0 || ipLen < 20 || (this.curKind !== K_FLOW && this.curKind !== K_FRAG)) return;
    const idx = this.idx;
    const e = (f << 1) | this.curDir;
    const l4 = ipOff + ((buf[ipOff] & 15) << 2);
    const proto = buf[ipOff + 9];
    if (this.curKind === K_FRAG) {
      this.setAddr(buf, ipOff, 16, idx.dst(e), proto, l4, false, false);
      return;
    }
    this.setAddr(buf, ipOff, 16, idx.dst(e), proto, l4, partialCsum, true);
    if (proto === 6 || proto === 17) this.setPort(buf, l4, 2, idx.dport(e), proto, partialCsum);
    else if (proto === 1 && this.curDir === 1) this.setIcmpId(buf, l4, idx.sport(e), partialCsum);
  }

  /** The router dropped (or locally delivered) the packet after prerouting. */
  abortPending(): void {
    if (this.pending >= 0) {
      this.counters.aborted++;
      this.releasePending();
    }
    this.curFlow = -1;
    this.curKind = K_NONE;
  }

  /* ============================================================ tracking */

  private tcpTrack(f: number, dir: number, tcpFlags: number, now: number): number {
    const old = this.m8[(f << 6) + B_STATE];
    const fi = tcpFlagIndex(tcpFlags);
    const nw = TCP_TRANSITIONS[(dir * 6 + fi) * 10 + old];
    if (nw === TCP_INVALID) return TRACK_INVALID;
    const fl = this.m8[(f << 6) + B_FLAGS];
    const seen = (fl & F_SEEN_REPLY) !== 0;
    if (nw === TCP_IGNORE) {
      if (dir === 1 && !seen) this.m8[(f << 6) + B_FLAGS] = fl | F_SEEN_REPLY;
      return TRACK_OK;
    }
    if (nw === TCP_SYN_SENT && old >= TCP_TIME_WAIT && old <= TCP_CLOSE) return TRACK_REOPEN;
    this.m8[(f << 6) + B_STATE] = nw;
    if (fi === TCPI_RST && !seen) {
      // Only a RST seen before any reply: not a connection; kill at once (netfilter does).
      if (dir === 1) this.m8[(f << 6) + B_FLAGS] = fl | F_SEEN_REPLY;
      this.setDeadline(f, now);
      return TRACK_OK;
    }
    if (!seen) {
      if (dir === 1) this.m8[(f << 6) + B_FLAGS] = fl | F_SEEN_REPLY;
    } else if ((fl & F_ASSURED) === 0 && (old === TCP_SYN_RECV || old === TCP_ESTABLISHED) && nw === TCP_ESTABLISHED) {
      this.assure(f);
    }
    let t = this.tcpTimeoutMs[nw];
    if (!seen && t > this.tcpUnackMs) t = this.tcpUnackMs;
    this.setDeadline(f, now + t);
    return TRACK_OK;
  }

  private otherTrack(f: number, dir: number, proto: number, now: number): void {
    let fl = this.m8[(f << 6) + B_FLAGS];
    if (dir === 1 && (fl & F_SEEN_REPLY) === 0) {
      fl |= F_SEEN_REPLY;
      this.m8[(f << 6) + B_FLAGS] = fl;
      if (proto !== 1) {
        this.m8[(f << 6) + B_STATE] = UDP_REPLIED;
        this.assure(f);
      }
    }
    let t: number;
    if (proto === 17) t = (fl & F_SEEN_REPLY) !== 0 ? this.udpRepliedMs : this.udpUnrepliedMs;
    else if (proto === 1) t = this.icmpMs;
    else t = this.genericMs;
    this.setDeadline(f, now + t);
  }

  /** Lazy: the wheel is only touched when the deadline moves earlier (a shorter timeout). */
  private setDeadline(f: number, d: number): void {
    const old = this.m64[f << 3];
    this.m64[f << 3] = d;
    if (d < old && (this.m8[(f << 6) + B_FLAGS] & F_CONFIRMED) !== 0) this.wheel.update(f, d);
  }

  private assure(f: number): void {
    this.m8[(f << 6) + B_FLAGS] |= F_ASSURED;
    this.unrepliedUnlink(f);
  }

  /* ============================================================ ICMP errors */

  private icmpErrorPre(buf: Uint8Array, ipOff: number, ihl: number, tot: number, now: number): number {
    const icmp = ipOff + ihl;
    const len = tot - ihl;
    if (len < 8 + 20 + 8) return this.untracked();
    const inner = icmp + 8;
    const vi = buf[inner];
    const iihl = (vi & 15) << 2;
    if (vi >>> 4 !== 4 || iihl < 20 || 8 + iihl + 8 > len) return this.untracked();
    if ((readU16(buf, inner + 6) & 0x1fff) !== 0) return this.untracked();
    const ip = buf[inner + 9];
    const isrc = readU32(buf, inner + 12);
    const idst = readU32(buf, inner + 16);
    const il4 = inner + iihl;
    let kp: number;
    let sp = 0;
    let dp = 0;
    if (ip === 6 || ip === 17) {
      sp = readU16(buf, il4);
      dp = readU16(buf, il4 + 2);
      kp = ip;
    } else if (ip === 1) {
      const t = buf[il4];
      if (t === 8) kp = KP_ICMP_REP; // the quoted request, inverted, is a reply tuple
      else if (t === 0) kp = KP_ICMP_REQ;
      else return this.untracked();
      sp = dp = readU16(buf, il4 + 4);
    } else {
      kp = ip;
    }
    const idx = this.idx;
    const e = idx.lookup(kp, idst, isrc, dp, sp);
    if (e < 0) return this.untracked();
    const f = e >>> 1;
    if (this.m64[f << 3] <= now) {
      this.counters.expired++;
      this.destroy(f);
      return this.untracked();
    }
    const o = e ^ 1;
    // Outer destination, when the flow translates destinations in this direction.
    if (idx.src(o) !== idx.dst(e)) this.setAddr(buf, ipOff, 16, idx.src(o), 1, icmp, false, false);
    // Quoted header: it went out in the other direction; restore its source half.
    this.innerSetAddr(buf, icmp, len, inner, 12, idx.src(o), ip, il4);
    if (ip === 6 || ip === 17) this.innerSetPort(buf, icmp, len, il4, 0, idx.sport(o), ip);
    else if (ip === 1 && (e & 1) === 1) this.innerSetIcmpId(buf, icmp, il4, idx.sport(o));
    this.counters.icmpRelated++;
    this.curFlow = f;
    this.curDir = e & 1;
    this.curKind = K_RELATED;
    this.lastEvent = EV_RELATED;
    return NAT_ACCEPT;
  }

  private icmpErrorPost(buf: Uint8Array, ipOff: number, ihl: number, f: number, dir: number): void {
    const idx = this.idx;
    const e = (f << 1) | dir;
    const o = e ^ 1;
    const icmp = ipOff + ihl;
    const len = readU16(buf, ipOff + 2) - ihl;
    const inner = icmp + 8;
    const il4 = inner + ((buf[inner] & 15) << 2);
    const ip = buf[inner + 9];
    if (idx.dst(o) !== idx.src(e)) this.setAddr(buf, ipOff, 12, idx.dst(o), 1, icmp, false, false);
    this.innerSetAddr(buf, icmp, len, inner, 16, idx.dst(o), ip, il4);
    if (ip === 6 || ip === 17) this.innerSetPort(buf, icmp, len, il4, 2, idx.dport(o), ip);
    else if (ip === 1 && dir === 0) this.innerSetIcmpId(buf, icmp, il4, idx.dport(o));
  }

  /** Write a 16-bit word inside an ICMP message, keeping the ICMP checksum right. */
  private icmpPut16(buf: Uint8Array, icmp: number, pos: number, v: number): void {
    const old = readU16(buf, pos);
    if (old === v) return;
    writeU16(buf, pos, v);
    writeU16(buf, icmp + 2, csumReplace16(readU16(buf, icmp + 2), old, v));
  }

  private innerSetAddr(buf: Uint8Array, icmp: number, len: number, inner: number, at: number, v: number, ip: number, il4: number): void {
    const pos = inner + at;
    const old = readU32(buf, pos);
    if (old === v) return;
    this.icmpPut16(buf, icmp, pos, v >>> 16);
    this.icmpPut16(buf, icmp, pos + 2, v & 0xffff);
    this.icmpPut16(buf, icmp, inner + 10, csumReplace32(readU16(buf, inner + 10), old, v));
    if (ip === 6) {
      if (il4 + 18 <= icmp + len) this.icmpPut16(buf, icmp, il4 + 16, csumReplace32(readU16(buf, il4 + 16), old, v));
    } else if (ip === 17) {
      const c = readU16(buf, il4 + 6);
      if (c !== 0) this.icmpPut16(buf, icmp, il4 + 6, udpCsumReplace32(c, old, v));
    }
  }

  private innerSetPort(buf: Uint8Array, icmp: number, len: number, il4: number, at: number, v: number, ip: number): void {
    const old = readU16(buf, il4 + at);
    if (old === v) return;
    this.icmpPut16(buf, icmp, il4 + at, v);
    if (ip === 6) {
      if (il4 + 18 <= icmp + len) this.icmpPut16(buf, icmp, il4 + 16, csumReplace16(readU16(buf, il4 + 16), old, v));
    } else {
      const c = readU16(buf, il4 + 6);
      if (c !== 0) this.icmpPut16(buf, icmp, il4 + 6, udpCsumReplace16(c, old, v));
    }
  }

  private innerSetIcmpId(buf: Uint8Array, icmp: number, il4: number, v: number): void {
    const old = readU16(buf, il4 + 4);
    if (old === v) return;
    this.icmpPut16(buf, icmp, il4 + 4, v);
    this.icmpPut16(buf, icmp, il4 + 2, csumReplace16(readU16(buf, il4 + 2), old, v));
  }

  /* ============================================================ fragments */

  private fragSlot(src: number, dst: number, key: number): number {
    let h = Math.imul(src ^ key, 0x9e3779b1);
    h = Math.imul(h ^ (h >>> 15) ^ dst, 0x85ebca77);
    return (h ^ (h >>> 13)) & (FRAG_SLOTS - 1);
  }

  private fragRemember(src: number, dst: number, id: number, proto: number, e: number, now: number): void {
    const key = (id << 8) | proto;
    const s = this.fragSlot(src, dst, key);
    this.fragSrc[s] = src;
    this.fragDst[s] = dst;
    this.fragKey[s] = key;
    this.fragEntry[s] = e;
    this.fragGen[s] = this.m32[((e >>> 1) << 4) + W_GEN];
    this.fragExp[s] = now + FRAG_TIMEOUT_MS;
  }

  private fragmentPre(buf: Uint8Array, ipOff: number, tot: number, proto: number, src: number, dst: number, now: number): number {
    const key = (readU16(buf, ipOff + 4) << 8) | proto;
    const s = this.fragSlot(src, dst, key);
    if (this.fragKey[s] === key && this.fragSrc[s] === src && this.fragDst[s] === dst && this.fragExp[s] > now) {
      const e = this.fragEntry[s];
      const f = e >>> 1;
      if (this.m32[(f << 4) + W_GEN] === this.fragGen[s] && (this.m8[(f << 6) + B_FLAGS] & F_CONFIRMED) !== 0 && this.m64[f << 3] > now) {
        this.m64[pktsAt(e)]++;
        this.m64[pktsAt(e) + 1] += tot;
        this.setAddr(buf, ipOff, 16, this.idx.src(e ^ 1), proto, 0, false, false);
        this.counters.fragTranslated++;
        this.curFlow = f;
        this.curDir = e & 1;
        this.curKind = K_FRAG;
        this.lastEvent = EV_FRAG;
        return NAT_ACCEPT;
      }
    }
    this.counters.fragDropped++;
    return this.dropped(NAT_DROP_FRAGMENT);
  }

  /* ============================================================ rewriting */

  /** Set the IPv4 address at ipOff+at (12 src, 16 dst): header checksum, and the TCP/UDP pseudo header when withL4. */
  private setAddr(buf: Uint8Array, ipOff: number, at: number, v: number, proto: number, l4: number, partial: boolean, withL4: boolean): void {
    const old = readU32(buf, ipOff + at);
    if (old === v) return;
    writeU32(buf, ipOff + at, v);
    writeU16(buf, ipOff + 10, csumReplace32(readU16(buf, ipOff + 10), old, v));
    if (!withL4) return;
    if (proto === 6) {
      const c = l4 + 16;
      const cs = readU16(buf, c);
      writeU16(buf, c, partial ? partialReplace32(cs, old, v) : csumReplace32(cs, old, v));
    } else if (proto === 17) {
      const c = l4 + 6;
      const cs = readU16(buf, c);
      writeU16(buf, c, partial ? partialReplace32(cs, old, v) : udpCsumReplace32(cs, old, v));
    }
  }

  /** Set a TCP/UDP port (at 0 src, 2 dst). A partial checksum needs no update: ports are data. */
  private setPort(buf: Uint8Array, l4: number, at: number, v: number, proto: number, partial: boolean): void {
    const old = readU16(buf, l4 + at);
    if (old === v) return;
    writeU16(buf, l4 + at, v);
    if (partial) return;
    if (proto === 6) writeU16(buf, l4 + 16, csumReplace16(readU16(buf, l4 + 16), old, v));
    else writeU16(buf, l4 + 6, udpCsumReplace16(readU16(buf, l4 + 6), old, v));
  }

  private setIcmpId(buf: Uint8Array, l4: number, v: number, partial: boolean): void {
    const old = readU16(buf, l4 + 4);
    if (old === v) return;
    writeU16(buf, l4 + 4, v);
    if (!partial) writeU16(buf, l4 + 2, csumReplace16(readU16(buf, l4 + 2), old, v));
  }

  /* ============================================================ table */

  private allocFlow(): number {
    if (this.freeTop === 0) {
      const victim = this.uHead;
      if (victim < 0) return -1;
      this.counters.earlyDropped++;
      this.destroy(victim);
    }
    const f = this.freeStack[--this.freeTop];
    this.m32[(f << 4) + W_GEN]++;
    return f;
  }

  /** Remove flow f from everything and free its id. */
  /** Remove one flow now (control plane: e.g. the flow a decision trace created). */
  removeFlow(f: number): boolean {
    if (f < 0 || f >= this.maxFlows || (this.m8[(f << 6) + B_FLAGS] & F_USED) === 0) return false;
    this.destroy(f);
    return true;
  }

  private destroy(f: number): void {
    const fl = this.m8[(f << 6) + B_FLAGS];
    if ((fl & F_USED) === 0) return;
    if ((fl & F_CONFIRMED) !== 0) {
      this.idx.remove(f << 1);
      this.idx.remove((f << 1) | 1);
      this.wheel.unlink(f);
      this.unrepliedUnlink(f);
      this.confirmed--;
    }
    this.m8[(f << 6) + B_FLAGS] = 0;
    this.freeStack[this.freeTop++] = f;
  }

  private releasePending(): void {
    const f = this.pending;
    this.pending = -1;
    if (f >= 0) this.destroy(f);
    if (this.curFlow === f) {
      this.curFlow = -1;
      this.curKind = K_NONE;
    }
  }

  private unrepliedPush(f: number): void {
    if ((this.m8[(f << 6) + B_FLAGS] & F_ASSURED) !== 0) return;
    this.uNext[f] = -1;
    this.uPrev[f] = this.uTail;
    if (this.uTail >= 0) this.uNext[this.uTail] = f;
    else this.uHead = f;
    this.uTail = f;
    this.m8[(f << 6) + B_FLAGS] |= F_IN_UNREPLIED;
  }

  private unrepliedUnlink(f: number): void {
    if ((this.m8[(f << 6) + B_FLAGS] & F_IN_UNREPLIED) === 0) return;
    const n = this.uNext[f];
    const p = this.uPrev[f];
    if (p >= 0) this.uNext[p] = n;
    else this.uHead = n;
    if (n >= 0) this.uPrev[n] = p;
    else this.uTail = p;
    this.uNext[f] = -1;
    this.uPrev[f] = -1;
    this.m8[(f << 6) + B_FLAGS] &= ~F_IN_UNREPLIED;
  }

  private isLocal(a: number): boolean {
    const ia = this.ifAddr;
    for (let i = 0; i < ia.length; i++) if (ia[i] === a) return true;
    return false;
  }

  isMasqSource(a: number): boolean {
    const n = this.masqNet;
    const m = this.masqMask;
    for (let i = 0; i < n.length; i++) if (((a & m[i]) >>> 0) === n[i]) return true;
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

  /** Expire flows whose deadline passed. Amortised O(expired + re-filed far deadlines). */
  tick(nowMs: number): void {
    const w = this.wheel;
    if (w.cursor < 0) {
      w.start(nowMs);
      return;
    }
    const nowSec = Math.floor(nowMs / 1000);
    if (nowSec - w.cursor >= WHEEL_SLOTS) w.cursor = nowSec - WHEEL_SLOTS + 1;
    const m64 = this.m64;
    while (w.cursor <= nowSec) {
      const sec = w.cursor;
      let f: number;
      while ((f = w.pop(sec)) >= 0) {
        if (m64[f << 3] <= nowMs) {
          this.counters.expired++;
          this.destroy(f);
        } else {
          w.insert(f, m64[f << 3]);
        }
      }
      w.cursor = sec + 1;
    }
  }

  /** Remove every flow (published ports stay). */
  flush(): void {
    this.idx.clear();
    this.wheel.clear();
    for (let f = 0; f < this.maxFlows; f++) this.m8[(f << 6) + B_FLAGS] = 0;
    this.uNext.fill(-1);
    this.uPrev.fill(-1);
    this.uHead = this.uTail = -1;
    for (let i = 0; i < this.maxFlows; i++) this.freeStack[i] = this.maxFlows - 1 - i;
    this.freeTop = this.maxFlows;
    this.confirmed = 0;
    this.pending = -1;
    this.curFlow = -1;
    this.curKind = K_NONE;
    this.fragKey.fill(-1);
  }

  /* ============================================================ published ports */

  addForward(f: PortForward): void {
    const end = f.externalPortEnd ?? f.externalPort;
    if (f.proto !== 6 && f.proto !== 17) throw new Error(`nat.forwards: proto must be 6 or 17, got ${f.proto}`);
    if (!Number.isInteger(f.externalPort) || !Number.isInteger(end) || f.externalPort < 1 || end > 65535 || end < f.externalPort) {
      throw new Error(`nat.forwards: bad external port range ${f.externalPort}-${end}`);
    }
    if (!Number.isInteger(f.internalPort) || f.internalPort < 1 || f.internalPort + (end - f.externalPort) > 65535) {
      throw new Error(`nat.forwards: bad internal port ${f.internalPort} for a range of ${end - f.externalPort + 1}`);
    }
    if (!Number.isInteger(f.internalIp) || f.internalIp < 0 || f.internalIp > 0xffffffff) throw new Error('nat.forwards: bad internalIp');
    const base = f.proto === 17 ? 65536 : 0;
    for (let p = f.externalPort; p <= end; p++) {
      if (this.fwdPort[base + p] >= 0) throw new Error(`nat.forwards: ${f.proto === 6 ? 'tcp' : 'udp'} port ${p} is already published`);
    }
    for (let p = f.externalPort; p <= end; p++) {
      this.fwdPort[base + p] = f.internalPort + (p - f.externalPort);
      this.fwdIp[base + p] = f.internalIp >>> 0;
    }
    this.forwards.push({ proto: f.proto, externalPort: f.externalPort, externalPortEnd: end, internalIp: f.internalIp >>> 0, internalPort: f.internalPort });
  }

  /** Remove the published range containing externalPort. Existing flows keep their mapping until they end. */
  removeForward(proto: number, externalPort: number): boolean {
    const i = this.forwards.findIndex((f) => f.proto === proto && externalPort >= f.externalPort && externalPort <= f.externalPortEnd);
    if (i < 0) return false;
    const f = this.forwards[i];
    const base = f.proto === 17 ? 65536 : 0;
    for (let p = f.externalPort; p <= f.externalPortEnd; p++) {
      this.fwdPort[base + p] = -1;
      this.fwdIp[base + p] = 0;
    }
    this.forwards.splice(i, 1);
    return true;
  }

  listForwards(): PortForward[] {
    return this.forwards.map((f) => ({ ...f }));
  }

  /* ============================================================ control plane */

  /** Flow id whose ORIGINAL or REPLY tuple matches (ICMP: sport = dport = echo id, icmpType 8 or 0), or -1. */
  find(proto: number, src: number, dst: number, sport: number, dport: number, icmpType = 8): number {
    const kp = proto === 1 ? (icmpType === 0 ? KP_ICMP_REP : KP_ICMP_REQ) : proto;
    const e = this.idx.lookup(kp, src >>> 0, dst >>> 0, sport, dport);
    return e < 0 ? -1 : e >>> 1;
  }

  /** One flow's record (null when f is not a confirmed flow). */
  info(f: number, nowMs: number): FlowInfo | null {
    if (f < 0 || f >= this.maxFlows || (this.m8[(f << 6) + B_FLAGS] & F_CONFIRMED) === 0) return null;
    const fl = this.m8[(f << 6) + B_FLAGS];
    const p = this.m8[(f << 6) + B_PROTO];
    const e = f << 1;
    const flags: string[] = [];
    if ((fl & F_ASSURED) !== 0) flags.push('ASSURED');
    flags.push((fl & F_SEEN_REPLY) !== 0 ? 'SEEN_REPLY' : 'UNREPLIED');
    if ((fl & F_SNAT) !== 0) flags.push('SNAT');
    if ((fl & F_DNAT) !== 0) flags.push('DNAT');
    if ((fl & F_HAIRPIN) !== 0) flags.push('HAIRPIN');
    let state = '';
    if (p === 6) state = TCP_STATE_NAMES[this.m8[(f << 6) + B_STATE]];
    else if (p === 17) state = this.m8[(f << 6) + B_STATE] === UDP_REPLIED ? 'REPLIED' : 'UNREPLIED';
    return {
      id: f,
      proto: p,
      protoName: p === 6 ? 'tcp' : p === 17 ? 'udp' : p === 1 ? 'icmp' : `proto-${p}`,
      state,
      secondsLeft: Math.max(0, Math.ceil((this.m64[f << 3] - nowMs) / 1000)),
      original: this.tupleString(e),
      reply: this.tupleString(e | 1),
      packetsOrig: this.m64[pktsAt(e)],
      bytesOrig: this.m64[pktsAt(e) + 1],
      packetsReply: this.m64[pktsAt(e | 1)],
      bytesReply: this.m64[pktsAt(e | 1) + 1],
      flags,
      ingressIf: this.m16[(f << 5) + H_INIF],
    };
  }

  /** All confirmed flows (control plane; O(maxFlows)). */
  list(nowMs: number, limit = Infinity): FlowInfo[] {
    const out: FlowInfo[] = [];
    for (let f = 0; f < this.maxFlows && out.length < limit; f++) {
      if ((this.m8[(f << 6) + B_FLAGS] & F_CONFIRMED) === 0) continue;
      const i = this.info(f, nowMs);
      if (i !== null) out.push(i);
    }
    return out;
  }

  private tupleString(e: number): string {
    const idx = this.idx;
    const s = `src=${ip4ToString(idx.src(e))} dst=${ip4ToString(idx.dst(e))}`;
    const kp = idx.kp(e);
    if (kp === KP_ICMP_REQ || kp === KP_ICMP_REP) return `${s} type=${kp === KP_ICMP_REQ ? 8 : 0} id=${idx.sport(e)}`;
    if (kp === 6 || kp === 17) return `${s} sport=${idx.sport(e)} dport=${idx.dport(e)}`;
    return s;
  }

  /** Trace only: what the last prerouting/postrouting did (allocates; not for the fast path). */
  describeLast(): string {
    const f = this.curFlow;
    switch (this.lastEvent) {
      case EV_NEW:
        return f >= 0 ? `new flow #${f} (confirmed in postrouting)` : 'new flow';
      case EV_HIT:
        return f >= 0 ? `flow #${f}, ${this.curDir === 0 ? 'original' : 'reply'} direction${this.m8[(f << 6) + B_PROTO] === 6 ? `, ${TCP_STATE_NAMES[this.m8[(f << 6) + B_STATE]]}` : ''}` : 'flow hit';
      case EV_RELATED:
        return f >= 0 ? `ICMP error related to flow #${f} (${this.curDir === 0 ? 'original' : 'reply'} direction)` : 'ICMP error related to a flow';
      case EV_FRAG:
        return f >= 0 ? `fragment of flow #${f}` : 'fragment';
      case EV_UNTRACKED:
        return 'untracked';
      case EV_DROP:
        return `dropped: ${NAT_DROP_REASON_NAMES[this.lastCode] ?? this.lastCode}`;
      default:
        return '';
    }
  }
}
