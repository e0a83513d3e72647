/*
 * Service port (svc): the DHCPv4 server (UDP 67) and the DNS resolver (UDP and TCP 53) at
 * the gateway address of the bridges that enable them, on the router's local delivery path.
 *
 * Ports:
 *   input  `local`        packets the router found addressed to tapbridge (router[local])
 *   input  `bcast`        DHCP broadcasts from gw/BRIDGE[dhcp] (to 255.255.255.255 or the
 *                         subnet broadcast, often from 0.0.0.0), anno.inIf set
 *   input  `local6`       IPv6 packets router6 delivers to tapbridge (router6[local])
 *   output `pass`         everything that is not for a service, to local delivery (`local`),
 *                         which answers it as before (echo, RST, port unreachable)
 *   output `reply`        DNS answers as IPv4 packets (UDP datagrams, TCP segments), to the
 *                         router's local input
 *   output `pass6`        IPv6 packets not for a service, to local6
 *   output `reply6`       DNS answers over IPv6 (UDP), to router6's local input
 *   output `wire-BRIDGE`  DHCP replies as Ethernet frames into the bridge's switch, to the
 *                         client's MAC or broadcast (RFC 2131 4.1: the server says where)
 * Does: only traffic entering through a bridge with the service, to that bridge's gateway
 *   address (or a DHCP broadcast on it), is taken; the checks cost a few reads on packets for
 *   tapbridge and nothing on forwarded ones. DHCP: the lease manager (dhcp-server.ts) on the
 *   UDP payload, wall clock. DNS over UDP: the resolver (dns-resolver.ts); forwarded queries
 *   leave through `hooks.upstream` (sockets of the worker, dataplane/services.ts), whose
 *   answers come back through upstreamAnswer(). DNS over TCP: a minimal responder, no
 *   retransmission: SYN -> SYN-ACK, in-order data reassembled into length-prefixed queries
 *   (at most TCP_QUERY_MAX bytes buffered), each answered in PSH segments of at most one MSS,
 *   FIN answered with FIN; at most TCP_MAX_CONNS connections, idle ones closed after
 *   TCP_IDLE_MS. Control-rate traffic: a peer object per DNS query, a Map entry per TCP
 *   connection; ordinary traffic allocates nothing. Over IPv6 (the gateway's IPv6 address,
 *   what router advertisements name as RDNSS): DNS over UDP only, without extension headers.
 * Config: one ServiceBridge per bridge with DHCP or DNS (built by dataplane/services.ts).
 * Counters: element counters below; drops on the bridge's gateway port record: the wire
 *   reasons of malformed IPv4/UDP/TCP/DHCP/DNS, dhcp_* and dns_* of the server and resolver,
 *   dns_tcp_full, dns_tcp_too_long, no_frame_slot.
 */
import { slotOf } from '../core/anno.js';
import { ACCOUNT_CONTROL } from '../core/arena.js';
import { DROP_DNS_TCP_FULL, DROP_DNS_TCP_TOO_LONG, DROP_NO_FRAME_SLOT } from '../core/drops.js';
import { Element, type DataPlaneContext, type PortRecord } from '../core/element.js';
import { VNET_F_NEEDS_CSUM, VNET_FLAGS, VNET_HDR_LEN } from '../core/frame.js';
import { readU16, writeU16, writeU32 } from '../wire/bytes.js';
import { fillL4Checksum, fillL4Checksum6, verifyL4Checksum, verifyL4Checksum6 } from '../wire/checksum.js';
import { IPV6_HEADER_LEN, Ipv6View, writeIpv6Header } from '../wire/ipv6.js';
import { BOOTREQUEST, DHCP_CLIENT_PORT, DHCP_SERVER_PORT, DHCPDISCOVER, DHCPRELEASE, DHCPREQUEST, emitDhcp, HTYPE_ETHERNET, type DhcpFields } from '../wire/dhcp.js';
import { parseIp4 } from '../wire/ip4.js';
import { macToString } from '../wire/mac.js';
import { appendEdnsOpt, DNS_PORT } from '../wire/dns.js';
import { DROP_IPV4_BAD_CSUM, DROP_TCP_BAD_CSUM, DROP_UDP_BAD_CSUM } from '../wire/drop.js';
import { ETH_HEADER_LEN, ETHERTYPE_IPV4, writeEthernetHeader } from '../wire/ethernet.js';
import { IPPROTO_TCP, IPPROTO_UDP, IPV4_FLAG_DF, Ipv4View, writeIpv4Header } from '../wire/ipv4.js';
import { TCP_FLAG_ACK, TCP_FLAG_FIN, TCP_FLAG_PSH, TCP_FLAG_RST, TCP_FLAG_SYN, TcpView } from '../wire/tcp.js';
import { UDP_HEADER_LEN, UdpView } from '../wire/udp.js';
import type { DhcpResult, DhcpServer } from './dhcp-server.js';
import { DNS_DROP, DNS_FORWARD, DNS_REPLY, type DnsResolver, type DnsResult } from './dns-resolver.js';

const IN_BCAST = 1;
const IN_LOCAL6 = 2;
const OUT_PASS = 0;
const OUT_REPLY = 1;
const OUT_PASS6 = 2;
const OUT_REPLY6 = 3;
const FIRST_WIRE_OUT = 4;
const IP_HDR = 20;
const TCP_HDR = 20;

export const TCP_MAX_CONNS = 64;
export const TCP_QUERY_MAX = 2 + 1024;
export const TCP_IDLE_MS = 10_000;

const ST_SYN_RCVD = 0;
const ST_ESTABLISHED = 1;
const ST_LAST_ACK = 2;

/** Who asked a DNS question: where its answer goes. */
export class DnsPeer {
  constructor(
    readonly ip: number,
    readonly port: number,
    readonly bridge: number,
    readonly tcp: TcpConn | null,
    /** An IPv6 client's address (ip is then 0). */
    readonly ip6: Uint32Array | null = null,
  ) {}
}

export class TcpConn {
  state = ST_SYN_RCVD;
  rcvNxt = 0;
  sndNxt = 0;
  lastSeen = 0;
  fill = 0;
  /** The client's MSS option (536 without one, RFC 9293 3.7.1). */
  mss = 536;
  readonly buf = new Uint8Array(TCP_QUERY_MAX);
  readonly peer: DnsPeer;
  constructor(
    readonly key: number,
    readonly clientIp: number,
    readonly clientPort: number,
    readonly serverIp: number,
    readonly iss: number,
    bridge: number,
  ) {
    this.peer = new DnsPeer(clientIp, clientPort, bridge, this);
  }
}

export interface ServiceBridge {
  name: string;
  /** Router interface id of the bridge. */
  ifId: number;
  address: number;
  /** The gateway's IPv6 address on the bridge, if any (DNS over IPv6). */
  address6: Uint32Array | null;
  mac: number;
  mtu: number;
  record: PortRecord;
  dhcp: DhcpServer | null;
  dns: DnsResolver<DnsPeer> | null;
}

export interface ServiceHooks {
  /** Send a forwarded query (buf[0, len)) to the bridge's upstream resolver. */
  upstream(bridge: number, buf: Uint8Array, len: number): void;
  /** A DHCP exchange bound, renewed or released an address. */
  lease(bridge: number, r: DhcpResult): void;
}

export class ServicePort extends Element {
  readonly kind = 'ServicePort';
  override counters = { dhcpIn: 0, dhcpReplies: 0, dnsUdp: 0, dnsTcpSegments: 0, dnsTcpConns: 0, dnsAnswers: 0, forwarded: 0, upstreamAnswers: 0, servFailTimeouts: 0 };
  hooks: ServiceHooks = { upstream: () => {}, lease: () => {} };
  /** Bridge index by router interface id (-1: no service there). */
  private readonly byIf: Int32Array;
  private readonly wireOut: number[] = [];
  private readonly conns = new Map<number, TcpConn>();
  private readonly ip = new Ipv4View();
  private readonly ip6 = new Ipv6View();
  private readonly udp = new UdpView();
  private readonly tcp = new TcpView();
  /** Where the resolver writes (a reply is copied into a frame from here). */
  private readonly scratch = new Uint8Array(0x10002); // a TCP answer gets its 2-byte prefix in place
  private ipId = 1;

  constructor(
    name: string,
    ctx: DataPlaneContext,
    readonly bridges: ServiceBridge[],
  ) {
    super(name, ctx, ['local', 'bcast', 'local6'], ['pass', 'reply', 'pass6', 'reply6', ...bridges.map((b) => `wire-${b.name}`)]);
    const maxIf = Math.max(0, ...bridges.map((b) => b.ifId));
    this.byIf = new Int32Array(maxIf + 1).fill(-1);
    bridges.forEach((b, i) => {
      this.byIf[b.ifId] = i;
      this.wireOut.push(FIRST_WIRE_OUT + i);
    });
  }

  override config(): string {
    return this.bridges.map((b) => `${b.name}:${b.dhcp !== null ? ' dhcp' : ''}${b.dns !== null ? ` dns ${b.dns.domain}` : ''}`).join(', ');
  }

  push(input: number, off: number, len: number): void {
    const inIf = this.ctx.arena.anno.inIf[slotOf(off)];
    const bi = inIf >= 0 && inIf < this.byIf.length ? this.byIf[inIf] : -1;
    if (input === IN_BCAST) {
      if (bi >= 0) this.broadcast(bi, off, len);
      return;
    }
    if (input === IN_LOCAL6) return this.local6(bi, off, len);
    const b = this.ctx.u8;
    const v = this.ip.reset(b, off + VNET_HDR_LEN + ETH_HEADER_LEN, len - ETH_HEADER_LEN);
    if (bi < 0 || v.dst !== this.bridges[bi].address || v.isFragment) return this.out[OUT_PASS].push(off, len);
    const sb = this.bridges[bi];
    const proto = v.protocol;
    if (proto !== IPPROTO_UDP && proto !== IPPROTO_TCP) return this.out[OUT_PASS].push(off, len);
    const dport = readU16(b, v.payloadOffset + 2); // the gateway checked the L4 header
    const dhcp = proto === IPPROTO_UDP && dport === DHCP_SERVER_PORT && sb.dhcp !== null;
    const dns = dport === DNS_PORT && sb.dns !== null;
    if (!dhcp && !dns) return this.out[OUT_PASS].push(off, len);
    if ((b[off + VNET_FLAGS] & VNET_F_NEEDS_CSUM) === 0 && !verifyL4Checksum(b, v.off)) return sb.record.countDrop(proto === IPPROTO_TCP ? DROP_TCP_BAD_CSUM : DROP_UDP_BAD_CSUM);
    if (this.ctx.tracer.active) {
      this.ctx.tracer.note(this.name, `${dhcp ? 'DHCP' : proto === IPPROTO_TCP ? 'DNS over TCP' : 'DNS'} to the gateway of ${sb.name}: answered by the service`);
      return;
    }
    if (proto === IPPROTO_TCP) return this.dnsTcp(bi, v);
    const u = this.udp.reset(b, v.payloadOffset, v.payloadLength);
    if (dhcp) return this.dhcp(bi, u.off + UDP_HEADER_LEN, u.length - UDP_HEADER_LEN, false);
    this.counters.dnsUdp++;
    const peer = new DnsPeer(v.src, u.srcPort, bi, null);
    this.dnsResult(bi, sb.dns!.handleQuery(b, u.off + UDP_HEADER_LEN, u.length - UDP_HEADER_LEN, peer, this.ctx.clock.now, this.scratch, 0, false));
  }

  /** IPv6 to the gateway: DNS over UDP (no extension headers) to the bridge's address, else local6. */
  private local6(bi: number, off: number, len: number): void {
    const b = this.ctx.u8;
    const v = this.ip6.reset(b, off + VNET_HDR_LEN + ETH_HEADER_LEN, len - ETH_HEADER_LEN);
    const sb = bi >= 0 ? this.bridges[bi] : null;
    const l4 = v.off + IPV6_HEADER_LEN;
    if (sb === null || sb.dns === null || sb.address6 === null || v.nextHeader !== IPPROTO_UDP || !v.dstEquals(sb.address6) || v.payloadLength < UDP_HEADER_LEN || readU16(b, l4 + 2) !== DNS_PORT)
      return this.out[OUT_PASS6].push(off, len);
    const u = this.udp.reset(b, l4, v.payloadLength);
    let bad = u.checkLen();
    if (bad === 0 && (b[off + VNET_FLAGS] & VNET_F_NEEDS_CSUM) === 0 && !verifyL4Checksum6(b, v.off, IPPROTO_UDP, l4, u.length)) bad = DROP_UDP_BAD_CSUM;
    if (bad !== 0) return sb.record.countDrop(bad);
    if (this.ctx.tracer.active) return this.ctx.tracer.note(this.name, `DNS over IPv6 to the gateway of ${sb.name}: answered by the service`);
    this.counters.dnsUdp++;
    const peer = new DnsPeer(0, u.srcPort, bi, null, v.getSrc(new Uint32Array(4)));
    this.dnsResult(bi, sb.dns.handleQuery(b, l4 + UDP_HEADER_LEN, u.length - UDP_HEADER_LEN, peer, this.ctx.clock.now, this.scratch, 0, false));
  }

  /** A broadcast from gw/BRIDGE: checked here (the gateway's IPv4 input checks refuse broadcasts). */
  private broadcast(bi: number, off: number, len: number): void {
    const sb = this.bridges[bi];
    const b = this.ctx.u8;
    const v = this.ip.reset(b, off + VNET_HDR_LEN + ETH_HEADER_LEN, len - ETH_HEADER_LEN);
    let bad = v.checkLen();
    if (bad === 0 && !v.verifyChecksum()) bad = DROP_IPV4_BAD_CSUM;
    if (bad !== 0) return sb.record.countDrop(bad);
    if (v.protocol !== IPPROTO_UDP || v.isFragment) return;
    const u = this.udp.reset(b, v.payloadOffset, v.payloadLength);
    bad = u.checkLen();
    if (bad === 0 && (b[off + VNET_FLAGS] & VNET_F_NEEDS_CSUM) === 0 && !verifyL4Checksum(b, v.off)) bad = DROP_UDP_BAD_CSUM;
    if (bad !== 0) return sb.record.countDrop(bad);
    if (this.ctx.tracer.active) return this.ctx.tracer.note(this.name, `DHCP broadcast on ${sb.name}: answered by the server`);
    this.dhcp(bi, u.off + UDP_HEADER_LEN, u.length - UDP_HEADER_LEN, true);
  }

  /* ------------------------------------------------------------------ DHCP */

  /**
   * A lease for `mac` without a DHCP client (IPAM for the CNI plugin): the same server, pool,
   * lease file and names as a client's DISCOVER + REQUEST would get. Returns the ACK's fields,
   * or why there is none (no DHCP on the bridge, pool exhausted).
   */
  leaseFor(bridge: string, mac: number, hostName: string | undefined): { ip: number; options: DhcpFields['options'] } | string {
    const bi = this.bridges.findIndex((b) => b.name === bridge);
    const server = bi >= 0 ? this.bridges[bi].dhcp : null;
    if (server === null) return `bridge ${bridge} has no DHCP server (gateway.dhcp)`;
    const now = Date.now();
    const ask = (messageType: number, extra: Partial<DhcpFields['options']>): DhcpResult =>
      server.handle({ op: BOOTREQUEST, htype: HTYPE_ETHERNET, hlen: 6, hops: 0, xid: (mac % 0x7fffffff) >>> 0, secs: 0, flags: 0, ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: 0, chaddr: mac, options: { messageType, ...(hostName !== undefined ? { hostName } : {}), ...extra } }, now, true);
    const offer = ask(DHCPDISCOVER, {});
    if (offer.reply === null) return `no address offered on ${bridge} (${offer.drop !== 0 ? 'pool exhausted or refused' : 'no reply'})`;
    const ack = ask(DHCPREQUEST, { requestedIp: offer.reply.msg.yiaddr, serverId: this.bridges[bi].address });
    if (ack.binding === null || ack.reply === null) return `the DHCP server on ${bridge} did not acknowledge ${offer.reply.msg.yiaddr}`;
    this.hooks.lease(bi, ack);
    return { ip: ack.binding.ip, options: ack.reply.msg.options };
  }

  /** Give back the lease of `mac` (RELEASE); false when it had none. */
  releaseFor(bridge: string, mac: number): boolean {
    const bi = this.bridges.findIndex((b) => b.name === bridge);
    const server = bi >= 0 ? this.bridges[bi].dhcp : null;
    if (server === null) return false;
    const now = Date.now();
    const macText = macToString(mac);
    const lease = server.leases(now).find((l) => l.mac === macText && l.state === 'bound');
    if (lease === undefined) return false;
    const r = server.handle({ op: BOOTREQUEST, htype: HTYPE_ETHERNET, hlen: 6, hops: 0, xid: 0, secs: 0, flags: 0, ciaddr: parseIp4(lease.ip)!, yiaddr: 0, siaddr: 0, giaddr: 0, chaddr: mac, options: { messageType: DHCPRELEASE, serverId: this.bridges[bi].address } }, now, false);
    if (r.released !== 0) this.hooks.lease(bi, r);
    return r.released !== 0;
  }

  private dhcp(bi: number, off: number, len: number, viaBroadcast: boolean): void {
    const sb = this.bridges[bi];
    this.counters.dhcpIn++;
    const r = sb.dhcp!.handlePacket(this.ctx.u8, off, len, Date.now(), viaBroadcast);
    if (r.drop !== 0) sb.record.countDrop(r.drop);
    if (r.binding !== null || r.released !== 0) this.hooks.lease(bi, r);
    if (r.reply === null) return;
    const arena = this.ctx.arena;
    const slot = arena.alloc(ACCOUNT_CONTROL);
    if (slot < 0) return sb.record.countDrop(DROP_NO_FRAME_SLOT);
    const b = this.ctx.u8;
    b.fill(0, slot, slot + VNET_HDR_LEN);
    const e = slot + VNET_HDR_LEN;
    writeEthernetHeader(b, e, r.reply.dstMac, sb.mac, ETHERTYPE_IPV4);
    const ip = e + ETH_HEADER_LEN;
    const udp = ip + IP_HDR;
    const n = emitDhcp(r.reply.msg, b, udp + UDP_HEADER_LEN);
    writeIpv4Header(b, ip, IP_HDR + UDP_HEADER_LEN + n, this.ipId++ & 0xffff, 0, 64, IPPROTO_UDP, sb.address, r.reply.dstIp);
    writeU16(b, udp, DHCP_SERVER_PORT);
    writeU16(b, udp + 2, DHCP_CLIENT_PORT);
    writeU16(b, udp + 4, UDP_HEADER_LEN + n);
    writeU16(b, udp + 6, 0);
    fillL4Checksum(b, ip);
    arena.anno.begin(slot, -1);
    this.counters.dhcpReplies++;
    this.out[this.wireOut[bi]].push(slot, ETH_HEADER_LEN + IP_HDR + UDP_HEADER_LEN + n);
    arena.release(slot);
  }

  /* ------------------------------------------------------------------- DNS */

  /** An upstream's answer for bridge bi (from the worker's socket, outside a batch). */
  upstreamAnswer(bi: number, buf: Uint8Array, len: number): void {
    const dns = this.bridges[bi]?.dns;
    if (dns == null) return;
    this.counters.upstreamAnswers++;
    this.dnsResult(bi, dns.handleUpstream(buf, 0, len, this.ctx.clock.now, this.scratch, 0));
  }

  private dnsResult(bi: number, r: DnsResult<DnsPeer>): void {
    if (r.action === DNS_REPLY) this.answer(r.peer!, this.scratch, r.len);
    else if (r.action === DNS_FORWARD) {
      this.counters.forwarded++;
      // Without EDNS the upstream would cut answers at 512 bytes, also for a TCP client.
      this.hooks.upstream(bi, this.scratch, appendEdnsOpt(this.scratch, 0, r.len, this.bridges[bi].dns!.udpPayloadSize));
    } else if (r.action === DNS_DROP) this.bridges[bi].record.countDrop(r.drop);
  }

  private answer(peer: DnsPeer, buf: Uint8Array, len: number): void {
    this.counters.dnsAnswers++;
    const c = peer.tcp;
    if (c === null) return peer.ip6 !== null ? this.udpReply6(peer, buf, len) : this.udpReply(peer, buf, len);
    if (this.conns.get(c.key) !== c || c.state === ST_LAST_ACK) return; // the client left meanwhile
    // Length prefix + message, in segments of at most one MSS.
    const total = 2 + len;
    buf.copyWithin(2, 0, len);
    writeU16(buf, 0, len);
    const mss = Math.min(c.mss, this.bridges[peer.bridge].mtu - IP_HDR - TCP_HDR);
    for (let o = 0; o < total; o += mss) this.segment(c, TCP_FLAG_ACK | TCP_FLAG_PSH, buf, o, Math.min(mss, total - o));
  }

  private udpReply(peer: DnsPeer, buf: Uint8Array, len: number): void {
    const sb = this.bridges[peer.bridge];
    const ip = this.ipSlot(sb, IPPROTO_UDP, sb.address, peer.ip, UDP_HEADER_LEN + len);
    if (ip < 0) return;
    this.writeDnsUdp(ip + IP_HDR, peer.port, buf, len);
    this.sendIp(ip, UDP_HEADER_LEN + len);
  }

  /** UDP header from port 53 (checksum 0, filled later) and the answer. */
  private writeDnsUdp(udp: number, dport: number, buf: Uint8Array, len: number): void {
    const b = this.ctx.u8;
    writeU16(b, udp, DNS_PORT);
    writeU16(b, udp + 2, dport);
    writeU16(b, udp + 4, UDP_HEADER_LEN + len);
    writeU16(b, udp + 6, 0);
    b.set(buf.subarray(0, len), udp + UDP_HEADER_LEN);
  }

  private udpReply6(peer: DnsPeer, buf: Uint8Array, len: number): void {
    const sb = this.bridges[peer.bridge];
    const arena = this.ctx.arena;
    const slot = arena.alloc(ACCOUNT_CONTROL);
    if (slot < 0) return sb.record.countDrop(DROP_NO_FRAME_SLOT);
    const b = this.ctx.u8;
    const ip = slot + VNET_HDR_LEN + ETH_HEADER_LEN;
    b.fill(0, slot, ip);
    writeIpv6Header(b, ip, UDP_HEADER_LEN + len, IPPROTO_UDP, 64, sb.address6!, peer.ip6!);
    const udp = ip + IPV6_HEADER_LEN;
    this.writeDnsUdp(udp, peer.port, buf, len);
    fillL4Checksum6(b, ip, IPPROTO_UDP, udp, UDP_HEADER_LEN + len);
    const s = arena.anno.begin(slot, -1);
    arena.anno.outIf[s] = sb.ifId; // as local6 does: a link-local client is on this bridge
    this.out[OUT_REPLY6].push(slot, ETH_HEADER_LEN + IPV6_HEADER_LEN + UDP_HEADER_LEN + len);
    arena.release(slot);
  }

  /** A pool slot with an IPv4 header for l4len bytes of payload: the IPv4 header's offset, or -1 (counted). */
  private ipSlot(sb: ServiceBridge, proto: number, src: number, dst: number, l4len: number): number {
    const slot = this.ctx.arena.alloc(ACCOUNT_CONTROL);
    if (slot < 0) {
      sb.record.countDrop(DROP_NO_FRAME_SLOT);
      return -1;
    }
    const ip = slot + VNET_HDR_LEN + ETH_HEADER_LEN;
    this.ctx.u8.fill(0, slot, ip);
    writeIpv4Header(this.ctx.u8, ip, IP_HDR + l4len, this.ipId++ & 0xffff, IPV4_FLAG_DF, 64, proto, src, dst);
    return ip;
  }

  /** Checksum the L4 header of the packet ipSlot() began, route it (router[local]) and free the slot. */
  private sendIp(ip: number, l4len: number): void {
    const slot = ip - VNET_HDR_LEN - ETH_HEADER_LEN;
    fillL4Checksum(this.ctx.u8, ip);
    this.ctx.arena.anno.begin(slot, -1);
    this.out[OUT_REPLY].push(slot, ETH_HEADER_LEN + IP_HDR + l4len);
    this.ctx.arena.release(slot);
  }

  /* ------------------------------------------------------------- DNS / TCP */

  private dnsTcp(bi: number, v: Ipv4View): void {
    const sb = this.bridges[bi];
    const b = this.ctx.u8;
    const t = this.tcp.reset(b, v.payloadOffset, v.payloadLength);
    this.counters.dnsTcpSegments++;
    const flags = t.flags;
    const key = v.src * 65536 + t.srcPort;
    let c = this.conns.get(key);
    const now = this.ctx.clock.now;
    if ((flags & TCP_FLAG_RST) !== 0) {
      if (c !== undefined) this.conns.delete(key);
      return;
    }
    if ((flags & TCP_FLAG_SYN) !== 0) {
      if (c === undefined) {
        if (this.conns.size >= TCP_MAX_CONNS) return sb.record.countDrop(DROP_DNS_TCP_FULL);
        c = new TcpConn(key, v.src, t.srcPort, sb.address, (Math.random() * 0x100000000) >>> 0, bi);
        c.rcvNxt = (t.seq + 1) >>> 0;
        c.mss = this.clientMss(t);
        this.conns.set(key, c);
        this.counters.dnsTcpConns++;
      }
      c.lastSeen = now;
      c.sndNxt = c.iss; // a retransmitted SYN gets the same SYN-ACK
      this.segment(c, TCP_FLAG_SYN | TCP_FLAG_ACK, null, 0, 0);
      c.sndNxt = (c.iss + 1) >>> 0;
      return;
    }
    if (c === undefined) return this.resetFor(bi, v, t);
    c.lastSeen = now;
    if ((flags & TCP_FLAG_ACK) !== 0) {
      if (c.state === ST_SYN_RCVD && t.ack === c.sndNxt) c.state = ST_ESTABLISHED;
      else if (c.state === ST_LAST_ACK && t.ack === c.sndNxt) {
        this.conns.delete(key);
        return;
      }
    }
    const plen = t.payloadLength;
    if (plen > 0) {
      if (t.seq !== c.rcvNxt || c.state === ST_LAST_ACK) return this.segment(c, TCP_FLAG_ACK, null, 0, 0); // duplicate or out of order
      if (c.fill + plen > c.buf.length) {
        this.conns.delete(key);
        this.segment(c, TCP_FLAG_RST | TCP_FLAG_ACK, null, 0, 0);
        return sb.record.countDrop(DROP_DNS_TCP_TOO_LONG);
      }
      c.buf.set(b.subarray(t.payloadOffset, t.payloadOffset + plen), c.fill);
      c.fill += plen;
      c.rcvNxt = (c.rcvNxt + plen) >>> 0;
      if (!this.tcpQueries(bi, c)) return;
      if (this.conns.get(key) !== c) return;
    }
    if ((flags & TCP_FLAG_FIN) !== 0 && c.state !== ST_LAST_ACK && ((t.seq + plen) >>> 0) === c.rcvNxt) {
      c.rcvNxt = (c.rcvNxt + 1) >>> 0;
      this.segment(c, TCP_FLAG_FIN | TCP_FLAG_ACK, null, 0, 0);
      c.sndNxt = (c.sndNxt + 1) >>> 0;
      c.state = ST_LAST_ACK;
    } else if (plen > 0 && c.fill > 0) this.segment(c, TCP_FLAG_ACK, null, 0, 0); // part of a query: acknowledge it
  }

  /** The MSS option of a SYN (bounded to 536..65495), else 536. */
  private clientMss(t: TcpView): number {
    const b = this.ctx.u8;
    const end = t.off + t.headerLen;
    for (let o = t.off + TCP_HDR; o < end; ) {
      const kind = b[o];
      if (kind === 0) break;
      if (kind === 1) {
        o++;
        continue;
      }
      const l = o + 1 < end ? b[o + 1] : 0;
      if (l < 2 || o + l > end) break;
      if (kind === 2 && l === 4) return Math.max(536, Math.min(65495, readU16(b, o + 2)));
      o += l;
    }
    return 536;
  }

  /** Answer every complete query buffered on c; false when the connection was reset. */
  private tcpQueries(bi: number, c: TcpConn): boolean {
    const sb = this.bridges[bi];
    while (c.fill >= 2) {
      const n = readU16(c.buf, 0);
      if (2 + n > c.buf.length) {
        this.conns.delete(c.key);
        this.segment(c, TCP_FLAG_RST | TCP_FLAG_ACK, null, 0, 0);
        sb.record.countDrop(DROP_DNS_TCP_TOO_LONG);
        return false;
      }
      if (c.fill < 2 + n) break;
      const r = sb.dns!.handleQuery(c.buf, 2, n, c.peer, this.ctx.clock.now, this.scratch, 0, true);
      c.buf.copyWithin(0, 2 + n, c.fill);
      c.fill -= 2 + n;
      if (r.action === DNS_DROP) {
        sb.record.countDrop(r.drop);
        this.conns.delete(c.key);
        this.segment(c, TCP_FLAG_RST | TCP_FLAG_ACK, null, 0, 0);
        return false;
      }
      this.dnsResult(bi, r);
      if (r.action === DNS_FORWARD) this.segment(c, TCP_FLAG_ACK, null, 0, 0); // the answer follows later
    }
    return true;
  }

  /** A segment that belongs to no connection: the closed-port reset of local delivery. */
  private resetFor(bi: number, v: Ipv4View, t: TcpView): void {
    const c = new TcpConn(-1, v.src, t.srcPort, v.dst, 0, bi);
    const segLen = t.payloadLength + ((t.flags & TCP_FLAG_FIN) !== 0 ? 1 : 0);
    if ((t.flags & TCP_FLAG_ACK) !== 0) {
      c.sndNxt = t.ack;
      this.segment(c, TCP_FLAG_RST, null, 0, 0);
    } else {
      c.rcvNxt = (t.seq + segLen) >>> 0;
      this.segment(c, TCP_FLAG_RST | TCP_FLAG_ACK, null, 0, 0);
    }
  }

  /** One segment from c.sndNxt acknowledging c.rcvNxt; data advances sndNxt. */
  private segment(c: TcpConn, flags: number, data: Uint8Array | null, dOff: number, dLen: number): void {
    const ip = this.ipSlot(this.bridges[c.peer.bridge], IPPROTO_TCP, c.serverIp, c.clientIp, TCP_HDR + dLen);
    if (ip < 0) return;
    const b = this.ctx.u8;
    const t = ip + IP_HDR;
    writeU16(b, t, DNS_PORT);
    writeU16(b, t + 2, c.clientPort);
    writeU32(b, t + 4, c.sndNxt);
    writeU32(b, t + 8, (flags & TCP_FLAG_ACK) !== 0 ? c.rcvNxt : 0);
    b[t + 12] = (TCP_HDR >>> 2) << 4;
    b[t + 13] = flags;
    writeU16(b, t + 14, 0xffff);
    writeU32(b, t + 16, 0); // checksum, urgent pointer
    if (data !== null && dLen > 0) b.set(data.subarray(dOff, dOff + dLen), t + TCP_HDR);
    c.sndNxt = (c.sndNxt + dLen) >>> 0;
    this.sendIp(ip, TCP_HDR + dLen);
  }

  /** Open TCP connections (ctl). */
  get tcpConnections(): number {
    return this.conns.size;
  }

  /** Upstream timeouts answered with SERVFAIL, idle TCP connections closed. */
  override tick(now: number): void {
    for (let bi = 0; bi < this.bridges.length; bi++) {
      const dns = this.bridges[bi].dns;
      if (dns === null || dns.inFlight === 0) continue;
      for (let i = 0; i < 1024; i++) {
        const r = dns.expire(now, this.scratch, 0);
        if (r.action !== DNS_REPLY) break;
        this.counters.servFailTimeouts++;
        this.answer(r.peer!, this.scratch, r.len);
      }
    }
    for (const c of this.conns.values()) if (now - c.lastSeen > TCP_IDLE_MS) this.conns.delete(c.key);
  }
}
