/*
 * Gateway interface element (gw/BRIDGE, gw/uplink): the link-layer side of one router
 * interface: the bridge's gateway port, or tapbridge's own address on the uplink NIC.
 *
 * Ports:
 *   input  `wire`         frames from the switch (or from the uplink device)
 *   output `wire`         frames to the switch (or to the uplink device): ARP, routed packets
 *   output `ip`           IPv4 packets for the router, checked (ipv4-input.ts), annotated with
 *                         this interface as inIf
 *   input  `ip`           routed IPv4 packets to send, with anno.nextHop: the neighbour is
 *                         resolved (ARP), the Ethernet header written, the frame sent; while
 *                         resolving, up to QUEUE_PER_NEIGHBOR packets wait (pool slots)
 *   output `unreachable`  packets whose next hop never answered (to ICMP host unreachable)
 *   output `ip6`          IPv6 frames, on an interface with an IPv6 address (to gw6/IF, which
 *                         does neighbour discovery and the IPv6 input checks)
 *   output `dhcp`         broadcast IPv4 UDP to port 67 on a bridge with a DHCP server
 *                         (`dhcpOn`), annotated with inIf, to the service port (svc)
 * Does: ARP replies for its own address only; gratuitous ARP at start; a neighbour cache
 *   (neighbors.ts) refreshed by any ARP from the subnet, created by requests for us, resolved
 *   by replies to our requests; a known address claimed from another port is refused, and
 *   on a bridge an ARP whose sender MAC is not the frame's source is dropped; unresolved
 *   entries and queued frames are charged to the ingress port (bounded per port); on the
 *   uplink, only frames to its own MAC and address are taken (the host's kernel shares the wire).
 *   Transmit and the waiting packets are link.ts's (shared with gw6/IF).
 * Config: the RouterIface (address, prefix, MAC, MTU) and the port record drops count into.
 * Counters (on the record): l2_not_for_gateway, uplink_not_for_us, vlan_not_routed,
 *   unknown_ethertype, arp_* (queue_full, failed, table_full, pending_limit, takeover_refused,
 *   sha_mismatch, not_for_us), the IPv4 input reasons, no_frame_slot; element counters
 *   arpRequestsSent, arpRepliesSent. For the internal gateway port the record's tx counts
 *   the frames the switch delivered to it and rx those it sent into the switch.
 */
import { C_TX_BYTES, C_TX_PACKETS } from '../core/counters.js';
import {
  DROP_ARP_NOT_OURS,
  DROP_IPV4_NOT_UNICAST,
  DROP_ARP_SHA_MISMATCH,
  DROP_ARP_TAKEOVER,
  DROP_NEIGH_FAILED,
  DROP_NEIGH_PORT_LIMIT,
  DROP_NEIGH_QUEUE_FULL,
  DROP_NEIGH_TABLE_FULL,
  DROP_NO_FRAME_SLOT,
  DROP_NO_IPV4,
  DROP_NOT_FOR_GATEWAY,
  DROP_UNKNOWN_ETHERTYPE,
  DROP_UPLINK_NOT_OURS,
  DROP_VLAN_NOT_ROUTED,
} from '../core/drops.js';
import type { DataPlaneContext } from '../core/element.js';
import { VNET_HDR_LEN } from '../core/frame.js';
import { ACCOUNT_CONTROL } from '../core/arena.js';
import { slotOf } from '../core/anno.js';
import { ARP_OP_REPLY, ARP_OP_REQUEST, ARP_SHA, ArpView, writeArp } from '../wire/arp.js';
import { DROP_ETH_TOO_SHORT } from '../wire/drop.js';
import { ETH_HEADER_LEN, ETH_MIN_FRAME_LEN, ETH_SRC, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, isVlanTpid, writeEthernetHeader } from '../wire/ethernet.js';
import { ip4ToString } from '../wire/ip4.js';
import { IPV4_DST } from '../wire/ipv4.js';
import { readU16, readU32 } from '../wire/bytes.js';
import { BROADCAST_MAC, macToString, readMac } from '../wire/mac.js';
import { describePacket } from '../wire/describe.js';
import type { RouterIface } from './ifaces.js';
import { Ipv4InputCheck } from './ipv4-input.js';
import {
  CONFIRM_TAKEOVER,
  CREATE_PORT_LIMIT,
  NEIGH_FAILED,
  NEIGH_INCOMPLETE,
  NEIGH_STALE,
  NEIGH_STATE_NAMES,
  NeighborTable,
  type NeighborInfo,
} from './neighbors.js';
import { InterfaceLink, OUT_IP } from './link.js';

const IN_WIRE = 0; // input 1: ip
const OUT_IP6 = 3;
const OUT_DHCP = 4;

export const NEIGHBOR_CAPACITY = 1024;

export class GatewayInterface extends InterfaceLink {
  readonly kind = 'GatewayInterface';
  readonly neigh: NeighborTable;
  override counters = { arpRequestsSent: 0, arpRepliesSent: 0 };
  private readonly arp = new ArpView();
  private readonly ipCheck = new Ipv4InputCheck();
  /** Broadcast DHCP requests go out of `dhcp` (a DHCP server serves this bridge). */
  dhcpOn = false;

  constructor(name: string, ctx: DataPlaneContext, iface: RouterIface, queueAccounts: Int32Array) {
    super(name, ctx, ['wire', 'ip'], ['wire', 'ip', 'unreachable', 'ip6', 'dhcp'], iface, queueAccounts, { failed: DROP_NEIGH_FAILED, queueFull: DROP_NEIGH_QUEUE_FULL });
    this.neigh = new NeighborTable(NEIGHBOR_CAPACITY);
  }

  override config(): string {
    const f = this.iface;
    return `${f.hasV4 ? `${ip4ToString(f.address)}/${f.prefixLen}` : 'no IPv4'} ${macToString(f.mac)} mtu ${f.mtu}`;
  }

  push(input: number, off: number, len: number): void {
    if (input === IN_WIRE) this.fromWire(off, len);
    else this.sendIp(off, len);
  }

  /* ------------------------------------------------------------------ input */

  private fromWire(off: number, len: number): void {
    const b = this.ctx.u8;
    const e = off + VNET_HDR_LEN;
    const c = this.iface.record.counters;
    if (this.countsTraffic) {
      c[C_TX_PACKETS]++;
      c[C_TX_BYTES] += len;
    }
    if (len < ETH_HEADER_LEN) return this.drop(DROP_ETH_TOO_SHORT);
    const uplink = this.iface.kind === 'uplink';
    const multicast = (b[e] & 1) !== 0;
    const etype = readU16(b, e + 12);
    if (!multicast && !this.isOurMac(e)) return this.drop(uplink ? DROP_UPLINK_NOT_OURS : DROP_NOT_FOR_GATEWAY);
    if (etype === ETHERTYPE_IPV6 && this.iface.address6 !== null) return this.out[OUT_IP6].push(off, len);
    if (!this.iface.hasV4) {
      if (etype === ETHERTYPE_IPV4 || etype === ETHERTYPE_ARP) return this.drop(DROP_NO_IPV4);
    } else if (etype === ETHERTYPE_ARP) return this.arpInput(off, len);
    else if (etype === ETHERTYPE_IPV4) {
      if (multicast) {
        if (this.dhcpOn && this.isDhcpRequest(e, len)) {
          this.ctx.arena.anno.begin(off, this.iface.id);
          return this.out[OUT_DHCP].push(off, len);
        }
        return this.drop(uplink ? DROP_UNKNOWN_ETHERTYPE : DROP_IPV4_NOT_UNICAST);
      }
      // Only our own address is ours on the uplink; the kernel's traffic shares this wire.
      if (uplink && len >= ETH_HEADER_LEN + 20 && readU32(b, e + ETH_HEADER_LEN + IPV4_DST) !== this.iface.address) return this.drop(DROP_UPLINK_NOT_OURS);
      return this.ipInput(off, len);
    }
    if (!uplink && isVlanTpid(etype)) return this.drop(DROP_VLAN_NOT_ROUTED);
    if (multicast && !uplink) return this.drop(DROP_NOT_FOR_GATEWAY);
    this.drop(DROP_UNKNOWN_ETHERTYPE);
  }

  /** UDP to port 67 (the service port checks the rest). */
  private isDhcpRequest(e: number, len: number): boolean {
    const b = this.ctx.u8;
    const ip = e + ETH_HEADER_LEN;
    const ihl = (b[ip] & 15) << 2;
    return len >= ETH_HEADER_LEN + ihl + 8 && ihl >= 20 && b[ip + 9] === 17 && readU16(b, ip + ihl + 2) === 67;
  }

  private isOurMac(e: number): boolean {
    const b = this.ctx.u8;
    return readU16(b, e) === this.iface.macHi && readU32(b, e + 2) === this.iface.macLo;
  }

  private ipInput(off: number, len: number): void {
    const ip = off + VNET_HDR_LEN + ETH_HEADER_LEN;
    const bad = this.ipCheck.check(this.ctx.u8, ip, len - ETH_HEADER_LEN, this.iface.broadcast);
    if (bad !== 0) return this.drop(bad);
    const tracer = this.ctx.tracer;
    if (tracer.active) tracer.note(this.name, `IPv4 ${describePacket(this.ctx.u8, ip)} ttl ${this.ipCheck.ip.ttl}${(this.ctx.u8[off] & 1) !== 0 ? ' (partial checksum)' : ''}`);
    this.ctx.arena.anno.begin(off, this.iface.id);
    this.out[OUT_IP].push(off, len);
  }

  private arpInput(off: number, len: number): void {
    const b = this.ctx.u8;
    const e = off + VNET_HDR_LEN;
    const a = this.arp.reset(b, e + ETH_HEADER_LEN, len - ETH_HEADER_LEN);
    const bad = a.checkLen();
    if (bad !== 0) return this.drop(bad);
    const f = this.iface;
    const op = a.op;
    const sha = a.sha;
    const spa = a.spa;
    const forUs = a.tpa === f.address;
    // On a bridge a host's ARP names the MAC it sends from; anything else is someone speaking for another.
    if (f.kind === 'bridge' && sha !== readMac(b, e + ETH_SRC)) return this.drop(DROP_ARP_SHA_MISMATCH);
    if (spa !== 0 && (b[a.off + ARP_SHA] & 1) === 0 && f.onLink(spa) && spa !== f.address && !this.ctx.tracer.active) {
      // Refresh known neighbours on any ARP (replies resolve the ones we asked for); create
      // entries only for requests to us. Another port claiming a known address is refused.
      const i = this.neigh.confirm(spa, sha, this.ctx.clock.now, forUs && op === ARP_OP_REQUEST, this.ctx.arena.anno.port[slotOf(off)]);
      if (i === CONFIRM_TAKEOVER) return this.drop(DROP_ARP_TAKEOVER);
      if (i >= 0 && this.neigh.queueCount[i] > 0) this.flushNeighborQueue(i, sha);
    }
    if (op === ARP_OP_REQUEST && forUs) this.sendArp(ARP_OP_REPLY, sha, f.address, sha, spa);
    else if (op === ARP_OP_REQUEST) this.drop(DROP_ARP_NOT_OURS);
  }

  /* ----------------------------------------------------------------- output */

  private writeHeader(e: number, dstMac: number): void {
    writeEthernetHeader(this.ctx.u8, e, dstMac, this.iface.mac, ETHERTYPE_IPV4);
  }

  /** An IPv4 packet (frame at off, Ethernet header to be written) to anno.nextHop. */
  private sendIp(off: number, len: number): void {
    const nextHop = this.ctx.arena.anno.nextHop[slotOf(off)];
    const e = off + VNET_HDR_LEN;
    const neigh = this.neigh;
    const now = this.ctx.clock.now;
    const tracer = this.ctx.tracer;
    const existed = tracer.active ? neigh.find(nextHop) >= 0 : true;
    const port = this.ctx.arena.anno.port[slotOf(off)];
    const i = neigh.findOrCreate(nextHop, now, port);
    if (i < 0) return this.drop(i === CREATE_PORT_LIMIT ? DROP_NEIGH_PORT_LIMIT : DROP_NEIGH_TABLE_FULL);
    const stateBefore = neigh.states[i];
    const updatedBefore = neigh.updated[i];
    const mac = neigh.resolved(i, now);
    if (tracer.active) {
      const state = NEIGH_STATE_NAMES[neigh.states[i]];
      neigh.states[i] = stateBefore; // a trace leaves the entry as it found it (a use ages reachable to stale)
      neigh.updated[i] = updatedBefore;
      tracer.note(this.name, `ARP ${ip4ToString(nextHop)}: ${mac >= 0 ? `${macToString(mac)} (${state})` : `${state}: ${neigh.states[i] === NEIGH_FAILED ? 'ICMP host unreachable' : 'the packet would wait for an ARP reply'}`}`);
      if (mac < 0 && neigh.states[i] !== NEIGH_FAILED) {
        if (!existed) neigh.remove(i); // leave no trace of the trace
        return;
      }
    }
    if (mac >= 0) {
      this.writeHeader(e, mac);
      this.transmit(off, len);
      if (neigh.states[i] === NEIGH_STALE && !tracer.active && neigh.probeDue(i, now)) this.sendArp(ARP_OP_REQUEST, BROADCAST_MAC, this.iface.address, 0, nextHop);
      return;
    }
    if (neigh.states[i] === NEIGH_FAILED) return this.unreachable(off, len);
    // INCOMPLETE: a copy waits for the neighbour's answer, in a slot of its port's account.
    const slot = this.park(i, off, len, port);
    if (slot >= 0) this.writeHeader(slot + VNET_HDR_LEN, 0);
    if (neigh.probeDue(i, now)) this.sendArp(ARP_OP_REQUEST, BROADCAST_MAC, this.iface.address, 0, nextHop);
  }


  /** ARP request (to broadcast) or reply, built in a pool slot. */
  sendArp(op: number, ethDst: number, spa: number, tha: number, tpa: number): void {
    const arena = this.ctx.arena;
    const off = arena.alloc(ACCOUNT_CONTROL);
    if (off < 0) return this.drop(DROP_NO_FRAME_SLOT);
    const b = this.ctx.u8;
    b.fill(0, off, off + VNET_HDR_LEN + ETH_MIN_FRAME_LEN); // no offload metadata; zero padding
    const e = off + VNET_HDR_LEN;
    writeEthernetHeader(b, e, ethDst, this.iface.mac, ETHERTYPE_ARP);
    writeArp(b, e + ETH_HEADER_LEN, op, this.iface.mac, spa, tha, tpa);
    if (op === ARP_OP_REQUEST) this.counters.arpRequestsSent++;
    else this.counters.arpRepliesSent++;
    this.transmit(off, ETH_MIN_FRAME_LEN);
    arena.release(off);
  }

  /** Gratuitous ARP for the interface address (at start). */
  announce(): void {
    if (this.iface.hasV4) this.sendArp(ARP_OP_REQUEST, BROADCAST_MAC, this.iface.address, 0, this.iface.address);
  }

  /* ------------------------------------------------------------------ timers */

  override tick(now: number): void {
    const n = this.neigh;
    const t = n.timing;
    for (let i = 0; i < n.slots; i++) {
      const s = n.states[i];
      if (s === NEIGH_INCOMPLETE) {
        if (now - n.lastProbe[i] < t.retransMs) continue;
        if (n.probes[i] >= t.maxProbes) this.failNeighbor(i, now);
        else if (n.probeDue(i, now)) this.sendArp(ARP_OP_REQUEST, BROADCAST_MAC, this.iface.address, 0, n.ips[i]);
      } else if ((s === NEIGH_FAILED && now - n.updated[i] > t.failedHoldMs) || (s === NEIGH_STALE && now - n.updated[i] > t.staleMs)) {
        n.remove(i);
        i--; // backward shift may have moved an entry into i
      }
    }
  }


  /* -------------------------------------------------------- control plane */

  neighbors(): (NeighborInfo & { iface: string; ipText: string; macText: string })[] {
    return this.neigh.entries(this.ctx.clock.now).map((e) => ({ ...e, iface: this.iface.name, ipText: ip4ToString(e.ip), macText: e.mac === 0 ? '-' : macToString(e.mac) }));
  }
}
