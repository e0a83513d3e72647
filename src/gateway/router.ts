/*
 * Router: the gateway stack of the bridges plus the uplink, IPv4 only.
 *
 * Interfaces: one per bridge that has a gateway address (an internal port on that bridge,
 *   answering for the gateway IP/MAC) and optionally the uplink (an AF_PACKET port on the
 *   host NIC where tapbridge owns its external address: it answers ARP for it itself).
 * Inputs:  receive(port, off, len)        frames the switch delivered to a gateway port
 *          receiveUplink(port, off, len)  frames from the uplink socket
 * Outputs: a bridge (through its gateway port) or the uplink port; ICMP errors and ARP
 *   requests/replies are built in pool slots.
 * Does: ARP replies for owned addresses only, gratuitous ARP at start, a neighbour cache
 *   with pending queues and host-unreachable on failure; ICMP echo replies for owned
 *   addresses; forwarding with TTL decrement and time-exceeded, frag-needed for DF packets
 *   larger than the egress MTU (GSO frames are checked per segment), fragmentation of
 *   non-DF packets; longest-prefix routes (connected, configured, default via the uplink);
 *   NAT hooks (prerouting before the route lookup, postrouting after it).
 * Bad checksums and malformed headers are dropped and counted; IP options are forwarded
 *   unchanged (copied options are repeated in every fragment).
 * Counters: drops by reason on the interface's port; `counters` for router-level events.
 */
import type { Port } from '../engine/port.js';
import type { Arena } from '../engine/arena.js';
import type { Bridge } from '../switch/bridge.js';
import { DROP_BASE, dropReason } from '../engine/counters.js';
import {
  VNET_CSUM_OFFSET,
  VNET_CSUM_START,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_NONE,
  VNET_GSO_SIZE,
  VNET_GSO_TYPE,
  VNET_HDR_LEN,
} from '../engine/frame.js';
import { csumReplace16, fold16, ipv4HeaderChecksum, sum16, completePartialChecksum, finishChecksum, pseudoHeaderSum } from '../wire/checksum.js';
import { readU16, readU32, writeU16, writeU32 } from '../wire/bytes.js';
import {
  NEIGH_STATE_NAMES as NEIGH_NAMES,
  NeighborTable,
  NEIGH_FAILED,
  NEIGH_INCOMPLETE,
  NEIGH_STALE,
  QUEUE_PER_NEIGHBOR,
  type NeighborInfo,
} from './neighbors.js';
import { ip4ToString } from '../wire/ip4.js';
import { macToString } from '../wire/mac.js';
import type { TraceHolder } from '../trace/decision.js';
import { Ipv4View } from '../wire/ipv4.js';
import { TcpView } from '../wire/tcp.js';
import { UdpView } from '../wire/udp.js';
import { DROP_IPV4_BAD_CSUM, DROP_IPV4_TOO_SHORT } from '../wire/drop.js';

const TWO_POW_32 = 4294967296;
const ETH = 14;
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_ARP = 0x0806;

export const DROP_NOT_FOR_GATEWAY = dropReason('l2_not_for_gateway');
export const DROP_VLAN_NOT_ROUTED = dropReason('vlan_not_routed');
export const DROP_ARP_BAD = dropReason('arp_bad');
export const DROP_ARP_NOT_OURS = dropReason('arp_not_for_us');
export const DROP_IPV4_NOT_UNICAST = dropReason('ipv4_not_unicast');
export const DROP_BAD_SOURCE = dropReason('ipv4_bad_source');
export const DROP_TTL_EXCEEDED = dropReason('ttl_exceeded');
export const DROP_NO_ROUTE = dropReason('no_route');
export const DROP_MTU_EXCEEDED = dropReason('mtu_exceeded');
export const DROP_NEIGH_QUEUE_FULL = dropReason('arp_queue_full');
export const DROP_NEIGH_FAILED = dropReason('arp_failed');
export const DROP_NEIGH_TABLE_FULL = dropReason('arp_table_full');
export const DROP_LOCAL_UNSUPPORTED = dropReason('local_proto_unreachable');
export const DROP_LOCAL_ICMP = dropReason('local_icmp_ignored');
export const DROP_BRIDGE_ISOLATION = dropReason('bridge_isolation');
export const DROP_UPLINK_NOT_OURS = dropReason('uplink_not_for_us');
export const DROP_UNKNOWN_ETHERTYPE = dropReason('unknown_ethertype');
export const DROP_NO_FRAME_SLOT = dropReason('no_frame_slot');
export const DROP_GSO_FRAGMENT = dropReason('gso_cannot_fragment');
export const DROP_ICMP_BAD = dropReason('icmp_bad');


/** NAT as seen by the router (implemented by src/nat). 0 = accept, else a drop code of the NAT's own table. */
export interface NatHooks {
  prerouting(buf: Uint8Array, ipOff: number, ipLen: number, partialCsum: boolean, ingressIf: number, nowMs: number): number;
  postrouting(buf: Uint8Array, ipOff: number, ipLen: number, partialCsum: boolean, egressIf: number, nowMs: number): number;
  abortPending(): void;
  /** Put back what prerouting rewrote (before quoting the packet in an ICMP error). */
  undoPrerouting(buf: Uint8Array, ipOff: number, ipLen: number, partialCsum: boolean): void;
  tick(nowMs: number): void;
  /** Trace only: what the last prerouting did in conntrack ("new flow ...", "hit, reply direction"). */
  describeLast?(): string;
}

export interface RouterIfaceSpec {
  name: string;
  kind: 'bridge' | 'uplink';
  address: number;
  prefixLen: number;
  mac: number;
  mtu: number;
  port: Port;
  bridge: Bridge | null;
}

export class RouterIface {
  readonly net: number;
  readonly mask: number;
  readonly broadcast: number;
  readonly neigh: NeighborTable;
  readonly macHi: number;
  readonly macLo: number;
  constructor(
    readonly id: number,
    readonly name: string,
    readonly kind: 'bridge' | 'uplink',
    readonly address: number,
    readonly prefixLen: number,
    readonly mac: number,
    public mtu: number,
    readonly port: Port,
    readonly bridge: Bridge | null,
  ) {
    this.mask = prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
    this.net = (address & this.mask) >>> 0;
    this.broadcast = (this.net | ~this.mask) >>> 0;
    this.neigh = new NeighborTable(1024);
    this.macHi = Math.floor(mac / TWO_POW_32);
    this.macLo = mac >>> 0;
  }
}

export interface RouteSpec {
  net: number;
  prefixLen: number;
  iface: number;
  via: number; // 0 = directly connected
  origin: 'connected' | 'static' | 'default';
}

export interface RouteInfo {
  destination: string;
  via: string;
  iface: string;
  origin: string;
}

export class Router {
  readonly ifaces: RouterIface[] = [];
  /** Sorted by prefix length, longest first. */
  private routes: RouteSpec[] = [];
  private routeNet = new Uint32Array(0);
  private routeMask = new Uint32Array(0);
  private routeIface = new Int32Array(0);
  private routeVia = new Uint32Array(0);
  nat: NatHooks | null = null;
  natDropMap: Int32Array = new Int32Array(0);
  /** Forwarding between two different bridges (L3) is refused unless allowed, like Docker networks. */
  isolateBridges = true;
  private readonly u8: Uint8Array;
  private ipId = 1;
  private icmpTokens = 50;
  private icmpLast = 0;
  /** Next hop chosen by lookupRoute. */
  private nextHop = 0;
  /** Decision tracing (ctl trace); `current` is null when off. */
  trace: TraceHolder | null = null;
  /* Header views, reset per packet (the wire layer's checks; drop codes count as is). */
  private readonly ipv4 = new Ipv4View();
  private readonly tcp = new TcpView();
  private readonly udp = new UdpView();

  readonly counters = {
    forwarded: 0,
    localDelivered: 0,
    echoReplies: 0,
    icmpErrorsSent: 0,
    icmpRateLimited: 0,
    arpRequestsSent: 0,
    arpRepliesSent: 0,
    fragmentsCreated: 0,
  };

  constructor(
    readonly arena: Arena,
    /** The engine: its `now` is stamped once per RX batch and tick. */
    private readonly clock: { now: number },
  ) {
    this.u8 = arena.u8;
  }

  addIface(s: RouterIfaceSpec): RouterIface {
    const iface = new RouterIface(this.ifaces.length, s.name, s.kind, s.address, s.prefixLen, s.mac, s.mtu, s.port, s.bridge);
    this.ifaces.push(iface);
    this.addRoute({ net: iface.net, prefixLen: s.prefixLen, iface: iface.id, via: 0, origin: 'connected' });
    return iface;
  }

  addRoute(r: RouteSpec): void {
    this.routes.push(r);
    this.routes.sort((a, b) => b.prefixLen - a.prefixLen);
    const n = this.routes.length;
    this.routeNet = new Uint32Array(n);
    this.routeMask = new Uint32Array(n);
    this.routeIface = new Int32Array(n);
    this.routeVia = new Uint32Array(n);
    this.routes.forEach((x, i) => {
      this.routeNet[i] = x.net;
      this.routeMask[i] = x.prefixLen === 0 ? 0 : (0xffffffff << (32 - x.prefixLen)) >>> 0;
      this.routeIface[i] = x.iface;
      this.routeVia[i] = x.via;
    });
  }

  /** Egress interface for dst (and this.nextHop), or -1. */
  lookupRoute(dst: number): number {
    const n = this.routeNet.length;
    for (let i = 0; i < n; i++) {
      if (((dst & this.routeMask[i]) >>> 0) === this.routeNet[i]) {
        const via = this.routeVia[i];
        this.nextHop = via === 0 ? dst : via;
        return this.routeIface[i];
      }
    }
    return -1;
  }

  /** Interface owning `ip` as its address, or -1. */
  localIface(ip: number): number {
    const ifs = this.ifaces;
    for (let i = 0; i < ifs.length; i++) if (ifs[i].address === ip) return i;
    return -1;
  }

  private drop(iface: RouterIface, reason: number): void {
    iface.port.counters[DROP_BASE + reason]++;
  }

  /* ------------------------------------------------------------------ input */

  /** A frame the switch delivered to gateway port `port` (bound to interface `iface`). */
  receiveFrom(iface: RouterIface, off: number, len: number): void {
    const b = this.u8;
    const e = off + VNET_HDR_LEN;
    if (len < ETH) return this.drop(iface, DROP_IPV4_TOO_SHORT);
    const multicast = (b[e] & 1) !== 0;
    if (!multicast && !this.isOurMac(iface, e)) return this.drop(iface, DROP_NOT_FOR_GATEWAY);
    const etype = (b[e + 12] << 8) | b[e + 13];
    if (etype === ETHERTYPE_ARP) this.arpInput(iface, off, len);
    else if (etype === ETHERTYPE_IPV4) {
      if (multicast) return this.drop(iface, DROP_IPV4_NOT_UNICAST);
      this.ipInput(iface, off, len);
    } else if (etype === 0x8100 || etype === 0x88a8) this.drop(iface, DROP_VLAN_NOT_ROUTED);
    else if (!multicast) this.drop(iface, DROP_UNKNOWN_ETHERTYPE);
    else this.drop(iface, DROP_NOT_FOR_GATEWAY);
  }

  private isOurMac(iface: RouterIface, e: number): boolean {
    const b = this.u8;
    return (
      ((b[e] << 8) | b[e + 1]) === iface.macHi && (((b[e + 2] << 24) | (b[e + 3] << 16) | (b[e + 4] << 8) | b[e + 5]) >>> 0) === iface.macLo
    );
  }

  private arpInput(iface: RouterIface, off: number, len: number): void {
    const b = this.u8;
    const a = off + VNET_HDR_LEN + ETH;
    if (len < ETH + 28) return this.drop(iface, DROP_ARP_BAD);
    if (readU16(b, a) !== 1 || readU16(b, a + 2) !== ETHERTYPE_IPV4 || b[a + 4] !== 6 || b[a + 5] !== 4)
      return this.drop(iface, DROP_ARP_BAD);
    const op = readU16(b, a + 6);
    const sha = ((b[a + 8] << 8) | b[a + 9]) * TWO_POW_32 + readU32(b, a + 10);
    const spa = readU32(b, a + 14);
    const tpa = readU32(b, a + 24);
    const forUs = tpa === iface.address;
    if (spa !== 0 && (b[a + 8] & 1) === 0 && ((spa & iface.mask) >>> 0) === iface.net && spa !== iface.address) {
      // Like Linux: refresh known neighbours on any ARP; create on requests for us and on replies.
      const i = iface.neigh.confirm(spa, sha, this.clock.now, forUs || op === 2);
      if (i >= 0 && iface.neigh.queueCount[i] > 0) this.flushNeighborQueue(iface, i, sha);
    }
    if (op === 1 && forUs) this.sendArp(iface, 2, sha, iface.address, sha, spa);
    else if (op === 1 && tpa !== iface.address) this.drop(iface, DROP_ARP_NOT_OURS);
  }

  /** An IPv4 packet addressed to one of our MACs. */
  private ipInput(iface: RouterIface, off: number, len: number): void {
    const b = this.u8;
    const ip = off + VNET_HDR_LEN + ETH;
    const v = this.ipv4.reset(b, ip, len - ETH);
    const bad = v.checkLen();
    if (bad !== 0) return this.drop(iface, bad);
    if (!v.verifyChecksum()) return this.drop(iface, DROP_IPV4_BAD_CSUM);
    const hl = v.headerLen;
    const total = v.totalLength;
    const src = readU32(b, ip + 12);
    if (src === 0 || src >>> 28 === 14 || src === 0xffffffff || src >>> 24 === 127) return this.drop(iface, DROP_BAD_SOURCE);
    let dst = readU32(b, ip + 16);
    if (dst >>> 28 === 14 || dst === 0xffffffff || dst === iface.broadcast) return this.drop(iface, DROP_IPV4_NOT_UNICAST);
    const partial = (b[off] & VNET_F_NEEDS_CSUM) !== 0;
    // L4 header sanity for first fragments / whole packets (NAT and forwarding rely on it).
    if (!v.isLaterFragment) {
      const proto = v.protocol;
      const l4bad =
        proto === 6 ? this.tcp.reset(b, ip + hl, total - hl).checkLen() : proto === 17 && !v.moreFragments ? this.udp.reset(b, ip + hl, total - hl).checkLen() : 0;
      if (l4bad !== 0) return this.drop(iface, l4bad);
    }
    const tr = this.trace?.current ?? null;
    if (tr !== null) tr.note(`gateway ${iface.name}`, `IPv4 ${describePacket(b, ip)} ttl ${b[ip + 8]}${partial ? ' (partial checksum)' : ''}`);

    const nat = this.nat;
    if (nat !== null) {
      const before = tr !== null ? describePacket(b, ip) : '';
      const v = nat.prerouting(b, ip, total, partial, iface.id, this.clock.now);
      if (tr !== null) tr.note('nat prerouting', v !== 0 ? `refused (reason ${v})` : natChange(before, describePacket(b, ip)) + natFlowNote(nat));
      if (v !== 0) return this.drop(iface, this.natDropMap[v]);
      dst = readU32(b, ip + 16);
    }
    if (this.localIface(dst) >= 0) {
      nat?.abortPending();
      if (tr !== null) tr.note('route', `${ip4ToString(dst)} is an address of tapbridge: local delivery`);
      return this.localInput(iface, off, ip, hl, total);
    }
    const out = this.lookupRoute(dst);
    if (tr !== null) tr.note('route', out < 0 ? `no route to ${ip4ToString(dst)}: ICMP net unreachable` : this.describeRoute(dst, out));
    if (out < 0) {
      nat?.undoPrerouting(b, ip, total, partial);
      nat?.abortPending();
      this.drop(iface, DROP_NO_ROUTE);
      return this.sendIcmpError(off, ip, 3, 0, 0);
    }
    const egress = this.ifaces[out];
    if (this.isolateBridges && egress !== iface && egress.kind === 'bridge' && iface.kind === 'bridge') {
      if (tr !== null) tr.note('route', `${iface.name} -> ${egress.name}: bridges are isolated at L3`);
      nat?.abortPending();
      return this.drop(iface, DROP_BRIDGE_ISOLATION);
    }
    const ttl = b[ip + 8];
    if (ttl <= 1) {
      if (tr !== null) tr.note('forward', `TTL ${ttl} expires here: ICMP time exceeded to the source`);
      nat?.undoPrerouting(b, ip, total, partial);
      nat?.abortPending();
      this.drop(iface, DROP_TTL_EXCEEDED);
      return this.sendIcmpError(off, ip, 11, 0, 0);
    }
    // MTU check before NAT postrouting, so an ICMP error quotes the header the sender sent.
    const gso = b[off + 1] !== VNET_GSO_NONE;
    const onWire = gso ? this.gsoSegmentLen(off, ip, hl, total) : total;
    const df = (b[ip + 6] & 0x40) !== 0;
    if (onWire > egress.mtu && (df || gso)) {
      if (tr !== null) tr.note('forward', `${onWire} bytes > MTU ${egress.mtu} with DF: ICMP fragmentation needed`);
      nat?.undoPrerouting(b, ip, total, partial);
      nat?.abortPending();
      this.drop(iface, DROP_MTU_EXCEEDED);
      return this.sendIcmpError(off, ip, 3, 4, egress.mtu);
    }
    // TTL - 1 with an incremental header checksum update.
    const oldWord = (b[ip + 8] << 8) | b[ip + 9];
    b[ip + 8] = ttl - 1;
    writeU16(b, ip + 10, csumReplace16(readU16(b, ip + 10), oldWord, ((ttl - 1) << 8) | b[ip + 9]));
    const nextHop = this.nextHop;
    if (nat !== null) {
      const before = tr !== null ? describePacket(b, ip) : '';
      const v = nat.postrouting(b, ip, total, partial, out, this.clock.now);
      if (tr !== null) tr.note('nat postrouting', v !== 0 ? `refused (reason ${v})` : natChange(before, describePacket(b, ip)));
      if (v !== 0) return this.drop(iface, this.natDropMap[v]);
    }
    if (tr !== null) tr.note('forward', `TTL ${ttl} -> ${ttl - 1}; out of ${egress.name} (MTU ${egress.mtu}) to next hop ${ip4ToString(nextHop)}`);
    this.counters.forwarded++;
    const frameLen = ETH + total; // drop Ethernet padding
    if (onWire > egress.mtu) return this.fragmentAndSend(egress, nextHop, off, frameLen, hl);
    this.sendIp(egress, nextHop, off, frameLen);
  }

  /**
   * IP length of each segment a GSO frame becomes: IP header + L4 header + gso_size.
   * (virtio's hdr_len is not used: TAPs report the skb's linear length there.)
   */
  private gsoSegmentLen(off: number, ip: number, hl: number, total: number): number {
    const b = this.u8;
    const l4 = ip + hl;
    const l4hl = b[ip + 9] === 6 ? (b[l4 + 12] >>> 4) << 2 : 8;
    return Math.min(total, hl + l4hl + readLe16(b, off + VNET_GSO_SIZE));
  }

  /** Packets for one of our addresses: ICMP echo; others get protocol/port unreachable. */
  private localInput(iface: RouterIface, off: number, ip: number, hl: number, total: number): void {
    const b = this.u8;
    this.counters.localDelivered++;
    if ((readU16(b, ip + 6) & 0x3fff) !== 0) return this.drop(iface, DROP_LOCAL_UNSUPPORTED); // fragments
    const proto = b[ip + 9];
    if (proto === 1) {
      const icmp = ip + hl;
      const icmpLen = total - hl;
      if (icmpLen < 8 || fold16(sum16(b, icmp, icmpLen)) !== 0xffff) return this.drop(iface, DROP_ICMP_BAD);
      if (b[icmp] !== 8) return this.drop(iface, DROP_LOCAL_ICMP);
      // Echo reply in place: swap addresses (header checksum unchanged), type 8 -> 0, swap MACs.
      const src = readU32(b, ip + 12);
      writeU32(b, ip + 12, readU32(b, ip + 16));
      writeU32(b, ip + 16, src);
      b[ip + 8] = 64;
      writeU16(b, ip + 10, 0);
      writeU16(b, ip + 10, ipv4HeaderChecksum(b, ip, hl));
      b[icmp] = 0;
      writeU16(b, icmp + 2, csumReplace16(readU16(b, icmp + 2), 0x0800, 0x0000));
      const e = off + VNET_HDR_LEN;
      b.copyWithin(e, e + 6, e + 12);
      this.writeSrcMac(iface, e);
      b.fill(0, off, off + VNET_HDR_LEN);
      this.counters.echoReplies++;
      this.trace?.current?.note('local', 'ICMP echo request: reply');
      // Reply along the route back to the source (the requester may be behind a next hop).
      const out = this.lookupRoute(src);
      if (out < 0) return this.drop(iface, DROP_NO_ROUTE);
      return this.sendIp(this.ifaces[out], this.nextHop, off, ETH + total);
    }
    this.trace?.current?.note('local', `protocol ${proto} to a tapbridge address: not served (${proto === 17 ? 'ICMP port unreachable' : proto === 6 ? 'TCP reset' : 'ICMP protocol unreachable'})`);
    this.drop(iface, DROP_LOCAL_UNSUPPORTED);
    if (proto === 6) this.sendTcpReset(ip, hl, total);
    else if (proto === 17) this.sendIcmpError(off, ip, 3, 3, 0);
    else if (proto !== 6) this.sendIcmpError(off, ip, 3, 2, 0);
  }

  /** A frame received on the uplink socket. */
  receiveUplink(iface: RouterIface, off: number, len: number): void {
    const b = this.u8;
    const e = off + VNET_HDR_LEN;
    if (len < ETH) return this.drop(iface, DROP_IPV4_TOO_SHORT);
    const etype = (b[e + 12] << 8) | b[e + 13];
    if ((b[e] & 1) === 0) {
      if (!this.isOurMac(iface, e)) return this.drop(iface, DROP_UPLINK_NOT_OURS);
      if (etype === ETHERTYPE_IPV4) return this.ipInputUplink(iface, off, len);
      if (etype === ETHERTYPE_ARP) return this.arpInput(iface, off, len);
      return this.drop(iface, DROP_UNKNOWN_ETHERTYPE);
    }
    if (etype === ETHERTYPE_ARP) return this.arpInput(iface, off, len);
    this.drop(iface, DROP_UPLINK_NOT_OURS);
  }

  private ipInputUplink(iface: RouterIface, off: number, len: number): void {
    // Only our external address is ours; the kernel's traffic shares this wire.
    const ip = off + VNET_HDR_LEN + ETH;
    if (len >= ETH + 20 && readU32(this.u8, ip + 16) !== iface.address) return this.drop(iface, DROP_UPLINK_NOT_OURS);
    this.ipInput(iface, off, len);
  }

  /* ----------------------------------------------------------------- output */

  private writeSrcMac(iface: RouterIface, e: number): void {
    const b = this.u8;
    b[e + 6] = iface.macHi >>> 8;
    b[e + 7] = iface.macHi & 0xff;
    writeU32(b, e + 8, iface.macLo);
  }

  private writeDstMac(e: number, mac: number): void {
    const b = this.u8;
    const hi = Math.floor(mac / TWO_POW_32);
    b[e] = hi >>> 8;
    b[e + 1] = hi & 0xff;
    writeU32(b, e + 2, mac >>> 0);
  }

  /** Put a complete frame (Ethernet header included) on an interface's wire. */
  private transmit(iface: RouterIface, off: number, len: number): void {
    if (iface.bridge !== null) iface.bridge.input(iface.port, off, len);
    else iface.port.output(off, len);
  }

  /** Send an IPv4 packet (frame at off, Ethernet header to be filled) to nextHop via iface. */
  sendIp(iface: RouterIface, nextHop: number, off: number, len: number): void {
    const b = this.u8;
    const e = off + VNET_HDR_LEN;
    const neigh = iface.neigh;
    const now = this.clock.now;
    const i = neigh.findOrCreate(nextHop, now);
    if (i < 0) return this.drop(iface, DROP_NEIGH_TABLE_FULL);
    const mac = neigh.resolved(i, now);
    const tr = this.trace?.current ?? null;
    if (tr !== null) {
      tr.note('arp', `${ip4ToString(nextHop)} on ${iface.name}: ${mac >= 0 ? `${macToString(mac)} (${NEIGH_NAMES[neigh.states[i]]})` : `${NEIGH_NAMES[neigh.states[i]]}: ${neigh.states[i] === NEIGH_FAILED ? 'ICMP host unreachable' : 'the packet would wait for an ARP reply'}`}`);
      if (mac < 0 && neigh.states[i] !== NEIGH_FAILED) {
        if (neigh.queueCount[i] === 0 && neigh.probes[i] === 0) neigh.remove(i); // leave no trace of the trace
        return;
      }
    }
    if (mac >= 0) {
      this.writeDstMac(e, mac);
      this.writeSrcMac(iface, e);
      b[e + 12] = 0x08;
      b[e + 13] = 0x00;
      this.transmit(iface, off, len);
      if (neigh.states[i] === NEIGH_STALE && neigh.probeDue(i, now)) this.sendArp(iface, 1, 0xffffffffffff, iface.address, 0, nextHop);
      return;
    }
    if (neigh.states[i] === NEIGH_FAILED) {
      this.drop(iface, DROP_NEIGH_FAILED);
      return this.sendIcmpError(off, e + ETH, 3, 1, 0);
    }
    // INCOMPLETE: hold the packet until the neighbour answers.
    let slot = off;
    if (this.arena.isPooled(off)) this.arena.retain(off);
    else {
      slot = this.arena.copyToPool(off, len, VNET_HDR_LEN);
      if (slot < 0) return this.drop(iface, DROP_NO_FRAME_SLOT);
    }
    b[slot + VNET_HDR_LEN + 12] = 0x08;
    b[slot + VNET_HDR_LEN + 13] = 0x00;
    if (!neigh.enqueue(i, slot, len)) {
      this.arena.release(slot);
      this.drop(iface, DROP_NEIGH_QUEUE_FULL);
    }
    if (neigh.probeDue(i, now)) this.sendArp(iface, 1, 0xffffffffffff, iface.address, 0, nextHop);
  }

  private flushNeighborQueue(iface: RouterIface, i: number, mac: number): void {
    const neigh = iface.neigh;
    const n = neigh.queueCount[i];
    neigh.queueCount[i] = 0;
    for (let k = 0; k < n; k++) {
      const off = neigh.queueOff[i * QUEUE_PER_NEIGHBOR + k];
      const e = off + VNET_HDR_LEN;
      this.writeDstMac(e, mac);
      this.writeSrcMac(iface, e);
      this.transmit(iface, off, neigh.queueLen[i * QUEUE_PER_NEIGHBOR + k]);
      this.arena.release(off);
    }
  }

  /** ARP request (op 1, to broadcast) or reply (op 2). */
  sendArp(iface: RouterIface, op: number, ethDst: number, spa: number, tha: number, tpa: number): void {
    const off = this.arena.alloc();
    if (off < 0) return this.drop(iface, DROP_NO_FRAME_SLOT);
    const b = this.u8;
    b.fill(0, off, off + VNET_HDR_LEN);
    const e = off + VNET_HDR_LEN;
    this.writeDstMac(e, ethDst);
    this.writeSrcMac(iface, e);
    writeU16(b, e + 12, ETHERTYPE_ARP);
    const a = e + ETH;
    writeU16(b, a, 1);
    writeU16(b, a + 2, ETHERTYPE_IPV4);
    b[a + 4] = 6;
    b[a + 5] = 4;
    writeU16(b, a + 6, op);
    this.writeSrcMac(iface, a + 2); // sha at a+8: writeSrcMac writes at +6..+11 of its base
    writeU32(b, a + 14, spa);
    this.writeDstMac(a + 18, tha);
    writeU32(b, a + 24, tpa);
    b.fill(0, a + 28, e + 60); // pad to the 60-byte minimum
    if (op === 1) this.counters.arpRequestsSent++;
    else this.counters.arpRepliesSent++;
    this.transmit(iface, off, 60);
    this.arena.release(off);
  }

  /** Gratuitous ARP for every interface address (at start). */
  announce(): void {
    for (const iface of this.ifaces) this.sendArp(iface, 1, 0xffffffffffff, iface.address, 0, iface.address);
  }

  /**
   * ICMP error about the packet whose IP header is at `ip` (frame slot `off`), sent back to
   * its source. Never about ICMP errors, later fragments, or non-unicast sources (RFC 1812).
   */
  sendIcmpError(off: number, ip: number, type: number, code: number, mtu: number): void {
    const b = this.u8;
    const src = readU32(b, ip + 12);
    if (src === 0 || src >>> 28 === 14 || src === 0xffffffff) return;
    if ((readU16(b, ip + 6) & 0x1fff) !== 0) return;
    const hl = (b[ip] & 15) << 2;
    if (b[ip + 9] === 1) {
      const t = b[ip + hl];
      if (t !== 0 && t !== 8 && t !== 13 && t !== 14) return;
    }
    if (!this.errorBudget()) return;
    const out = this.lookupRoute(src);
    if (out < 0) return;
    const iface = this.ifaces[out];
    const nextHop = this.nextHop;
    const slot = this.arena.alloc();
    if (slot < 0) return;
    const total = readU16(b, ip + 2);
    const quote = Math.min(total, 520); // RFC 1812: as much as fits in 576 bytes
    b.fill(0, slot, slot + VNET_HDR_LEN);
    const e = slot + VNET_HDR_LEN;
    const nip = e + ETH;
    const icmp = nip + 20;
    b.copyWithin(icmp + 8, ip, ip + quote);
    b[nip] = 0x45;
    b[nip + 1] = 0xc0;
    writeU16(b, nip + 2, 20 + 8 + quote);
    writeU16(b, nip + 4, this.ipId++ & 0xffff);
    writeU16(b, nip + 6, 0);
    b[nip + 8] = 64;
    b[nip + 9] = 1;
    writeU32(b, nip + 12, iface.address);
    writeU32(b, nip + 16, src);
    writeU16(b, nip + 10, 0);
    writeU16(b, nip + 10, ipv4HeaderChecksum(b, nip, 20));
    b[icmp] = type;
    b[icmp + 1] = code;
    writeU16(b, icmp + 2, 0);
    writeU16(b, icmp + 4, 0);
    writeU16(b, icmp + 6, mtu);
    writeU16(b, icmp + 2, finishChecksum(sum16(b, icmp, 8 + quote)));
    this.counters.icmpErrorsSent++;
    this.sendIp(iface, nextHop, slot, ETH + 20 + 8 + quote);
    this.arena.release(slot);
  }

  /** Token bucket shared by ICMP errors and TCP resets: 1000/s, burst 50. */
  private errorBudget(): boolean {
    this.icmpTokens = Math.min(50, this.icmpTokens + (this.clock.now - this.icmpLast));
    this.icmpLast = this.clock.now;
    if (this.icmpTokens < 1) {
      this.counters.icmpRateLimited++;
      return false;
    }
    this.icmpTokens--;
    return true;
  }

  /** RFC 793 reset for a TCP segment to one of our addresses where nothing listens. */
  private sendTcpReset(ip: number, hl: number, total: number): void {
    const b = this.u8;
    const tcp = ip + hl;
    const flags = b[tcp + 13];
    if ((flags & 0x04) !== 0 || !this.errorBudget()) return; // never answer a reset
    const src = readU32(b, ip + 12);
    const out = this.lookupRoute(src);
    if (out < 0) return;
    const iface = this.ifaces[out];
    const nextHop = this.nextHop;
    const slot = this.arena.alloc();
    if (slot < 0) return;
    b.fill(0, slot, slot + VNET_HDR_LEN + ETH + 40);
    const nip = slot + VNET_HDR_LEN + ETH;
    const nt = nip + 20;
    b[nip] = 0x45;
    writeU16(b, nip + 2, 40);
    writeU16(b, nip + 4, this.ipId++ & 0xffff);
    b[nip + 8] = 64;
    b[nip + 9] = 6;
    writeU32(b, nip + 12, readU32(b, ip + 16));
    writeU32(b, nip + 16, src);
    writeU16(b, nip + 10, ipv4HeaderChecksum(b, nip, 20));
    writeU16(b, nt, readU16(b, tcp + 2));
    writeU16(b, nt + 2, readU16(b, tcp));
    if ((flags & 0x10) !== 0) {
      writeU32(b, nt + 4, readU32(b, tcp + 8)); // seq = their ack
      b[nt + 13] = 0x04;
    } else {
      const segLen = total - hl - ((b[tcp + 12] >>> 4) << 2) + (flags & 0x02 ? 1 : 0) + (flags & 0x01 ? 1 : 0);
      writeU32(b, nt + 8, (readU32(b, tcp + 4) + segLen) >>> 0);
      b[nt + 13] = 0x14; // RST|ACK
    }
    b[nt + 12] = 0x50;
    writeU16(b, nt + 16, finishChecksum(sum16(b, nt, 20, pseudoHeaderSum(readU32(b, nip + 12), src, 6, 20))));
    this.sendIp(iface, nextHop, slot, ETH + 40);
    this.arena.release(slot);
  }

  /** RFC 791 fragmentation of a non-DF packet into pool slots. */
  private fragmentAndSend(iface: RouterIface, nextHop: number, off: number, frameLen: number, hl: number): void {
    const b = this.u8;
    if (b[off + VNET_GSO_TYPE] !== VNET_GSO_NONE) return this.drop(iface, DROP_GSO_FRAGMENT);
    const ip = off + VNET_HDR_LEN + ETH;
    if ((b[off] & VNET_F_NEEDS_CSUM) !== 0) {
      // The L4 checksum must be final before the payload is split.
      const start = readLe16(b, off + VNET_CSUM_START);
      const field = start + readLe16(b, off + VNET_CSUM_OFFSET);
      const fe = off + VNET_HDR_LEN;
      completePartialChecksum(b, fe + start, fe + frameLen, fe + field);
    }
    const total = frameLen - ETH;
    const payload = total - hl;
    const baseOffset = readU16(b, ip + 6) & 0x1fff;
    const mfOrig = readU16(b, ip + 6) & 0x2000;
    const maxChunk = ((iface.mtu - hl) & ~7) >>> 0;
    if (maxChunk < 8) return this.drop(iface, DROP_MTU_EXCEEDED);
    // Header for later fragments: only options with the "copied" bit.
    let done = 0;
    while (done < payload) {
      const chunk = Math.min(maxChunk, payload - done);
      const last = done + chunk >= payload;
      const slot = this.arena.alloc();
      if (slot < 0) return this.drop(iface, DROP_NO_FRAME_SLOT);
      b.fill(0, slot, slot + VNET_HDR_LEN);
      const nip = slot + VNET_HDR_LEN + ETH;
      let nhl = hl;
      if (done === 0 || hl === 20) b.copyWithin(nip, ip, ip + hl);
      else nhl = copyCopiedOptions(b, ip, hl, nip);
      b.copyWithin(nip + nhl, ip + hl + done, ip + hl + done + chunk);
      b[nip] = 0x40 | (nhl >>> 2);
      writeU16(b, nip + 2, nhl + chunk);
      writeU16(b, nip + 6, (last ? mfOrig : 0x2000) | (baseOffset + (done >>> 3)));
      writeU16(b, nip + 10, 0);
      writeU16(b, nip + 10, ipv4HeaderChecksum(b, nip, nhl));
      this.counters.fragmentsCreated++;
      this.sendIp(iface, nextHop, slot, ETH + nhl + chunk);
      this.arena.release(slot);
      done += chunk;
    }
  }

  /* ------------------------------------------------------------------ timers */

  tick(now: number): void {
    for (const iface of this.ifaces) this.neighborTimers(iface, now);
    this.nat?.tick(now);
  }

  private neighborTimers(iface: RouterIface, now: number): void {
    const n = iface.neigh;
    const t = n.timing;
    for (let i = 0; i < n.slots; i++) {
      const s = n.states[i];
      if (s === NEIGH_INCOMPLETE) {
        if (now - n.lastProbe[i] < t.retransMs) continue;
        if (n.probes[i] >= t.maxProbes) {
          n.states[i] = NEIGH_FAILED;
          n.updated[i] = now;
          const count = n.queueCount[i];
          n.queueCount[i] = 0;
          for (let k = 0; k < count; k++) {
            const off = n.queueOff[i * QUEUE_PER_NEIGHBOR + k];
            this.drop(iface, DROP_NEIGH_FAILED);
            this.sendIcmpError(off, off + VNET_HDR_LEN + ETH, 3, 1, 0);
            this.arena.release(off);
          }
        } else if (n.probeDue(i, now)) this.sendArp(iface, 1, 0xffffffffffff, iface.address, 0, n.ips[i]);
      } else if (s === NEIGH_FAILED && now - n.updated[i] > t.failedHoldMs) {
        n.remove(i);
        i--; // backward shift may have moved an entry into i
      } else if (s === NEIGH_STALE && now - n.updated[i] > t.staleMs) {
        n.remove(i);
        i--;
      }
    }
  }

  /* -------------------------------------------------------- control plane */

  describeRoute(dst: number, out: number): string {
    const i = this.routes.findIndex((r) => r.iface === out && ((dst & (r.prefixLen === 0 ? 0 : (0xffffffff << (32 - r.prefixLen)) >>> 0)) >>> 0) === r.net);
    const r = this.routes[i];
    return `${ip4ToString(dst)} matches ${ip4ToString(r.net)}/${r.prefixLen} (${r.origin})${r.via !== 0 ? ` via ${ip4ToString(r.via)}` : ''} dev ${this.ifaces[out].name}`;
  }

  neighbors(): (NeighborInfo & { iface: string; ipText: string; macText: string })[] {
    return this.ifaces.flatMap((f) =>
      f.neigh.entries(this.clock.now).map((e) => ({ ...e, iface: f.name, ipText: ip4ToString(e.ip), macText: e.mac === 0 ? '-' : macToString(e.mac) })),
    );
  }

  routeTable(): RouteInfo[] {
    return this.routes.map((r) => ({
      destination: `${ip4ToString(r.net)}/${r.prefixLen}`,
      via: r.via === 0 ? '-' : ip4ToString(r.via),
      iface: this.ifaces[r.iface].name,
      origin: r.origin,
    }));
  }
}

/** "tcp 10.100.0.2:40000 -> 203.0.113.1:80" (control plane / trace only). */
export function describePacket(b: Uint8Array, ip: number): string {
  const proto = b[ip + 9];
  const hl = (b[ip] & 15) << 2;
  const src = ip4ToString(readU32(b, ip + 12));
  const dst = ip4ToString(readU32(b, ip + 16));
  const l4 = ip + hl;
  if (proto === 6 || proto === 17) return `${proto === 6 ? 'tcp' : 'udp'} ${src}:${readU16(b, l4)} -> ${dst}:${readU16(b, l4 + 2)}`;
  if (proto === 1) return `icmp ${src} -> ${dst} type ${b[l4]} id ${readU16(b, l4 + 4)}`;
  return `proto ${proto} ${src} -> ${dst}`;
}

function natChange(before: string, after: string): string {
  return before === after ? 'no rewrite' : `rewrote ${before}  =>  ${after}`;
}

function natFlowNote(nat: NatHooks): string {
  const d = nat.describeLast?.();
  return d ? `; ${d}` : '';
}

function readLe16(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8);
}

/** Copy the header of `ip` to `dst` keeping only options with the copied flag; returns its length. */
function copyCopiedOptions(b: Uint8Array, ip: number, hl: number, dst: number): number {
  b.copyWithin(dst, ip, ip + 20);
  let w = dst + 20;
  let r = ip + 20;
  const end = ip + hl;
  while (r < end) {
    const type = b[r];
    if (type === 0) break;
    if (type === 1) {
      r++;
      continue;
    }
    const olen = r + 1 < end ? b[r + 1] : 0;
    if (olen < 2 || r + olen > end) break;
    if ((type & 0x80) !== 0) {
      b.copyWithin(w, r, r + olen);
      w += olen;
    }
    r += olen;
  }
  while ((w - dst) & 3) b[w++] = 0;
  return w - dst;
}
