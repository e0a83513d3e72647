/*
 * Socket uplink element (sockup, kind SocketUplink): the router's `uplink` interface ends in
 * host sockets, passt-style, instead of a device. Layer-4 translation, not NAT: each TCP
 * connection of a namespace is spliced to one host TCP socket, each UDP flow to one connected
 * UDP socket, each ping to a ping socket; published ports are listening host sockets whose
 * connections and datagrams enter the namespaces from the client's real address.
 *
 * Ports:
 *   input  `in`    IPv4 packets the router sends out of the uplink (Ethernet header first;
 *                  GSO super-frames from offloaded TAPs go to the socket in one send)
 *   output `out`   packets built toward the namespaces (pool slots; any MAC: the gateway
 *                  rewrites L2), to the router's `uplink` input
 * Does (TCP): SYN -> bounds (total, per source address) -> non-blocking connect; SYN-ACK once
 *   connected, RST when refused, ICMP host/net unreachable quoting the SYN when the
 *   destination is unreachable or the connect timed out. Namespace data: one send per frame, ACK of
 *   exactly what the socket took, window = the socket's free send space. Host data: peeked
 *   (SO_PEEK_OFF) straight into the frame's payload position while the namespace's window
 *   allows, discarded from the socket (recv MSG_TRUNC) only when the namespace ACKs it; RTO
 *   and 3 duplicate ACKs rewind the peek offset to the ACK point. FIN and RST both ways.
 *   The host-loopback alias (hostLoopback) is 127.0.0.1 on the host, both ways.
 * Counters: drops sockets_exhausted, tenant_sockets_exhausted, connect_failed, sockup_no_flow,
 *   sockup_unsupported, icmp_unsupported, icmp_echo_not_permitted, sockup_send_failed,
 *   sockup_tcp_invalid, no_frame_slot on the uplink record; element counters: sockets in
 *   use and their limits, flows by protocol, connections, resets, retransmissions.
 */
import type { PortRecord } from '../core/element.js';
import { Element, type DataPlaneContext } from '../core/element.js';
import {
  DROP_CONNECT_FAILED, DROP_ICMP_ECHO_NOT_PERMITTED, DROP_ICMP_UNSUPPORTED, DROP_NO_FRAME_SLOT, DROP_SOCKETS_EXHAUSTED, DROP_SOCKUP_NO_FLOW,
  DROP_SOCKUP_SEND_FAILED, DROP_SOCKUP_TCP_INVALID, DROP_SOCKUP_UNSUPPORTED, DROP_TENANT_SOCKETS_EXHAUSTED,
} from '../core/drops.js';
import { VNET_CSUM_OFFSET, VNET_CSUM_START, VNET_F_NEEDS_CSUM, VNET_FLAGS, VNET_GSO_SIZE, VNET_GSO_TCPV4, VNET_GSO_TYPE, VNET_HDR_LEN, VNET_HDR_LEN_FIELD } from '../core/frame.js';
import {
  EACCES, EAGAIN, EHOSTUNREACH, EINPROGRESS, ENETUNREACH, ETIMEDOUT, EV_ERR, EV_HUP, EV_IN, EV_OUT, hostSockets, IPPROTO_TCP as SOL_TCP, MSG_PEEK, MSG_TRUNC, SO_ERROR, SO_KEEPALIVE,
  SO_PEEK_OFF, SO_REUSEADDR, SO_SNDBUF, SocketKind, SOL_SOCKET, TCP_KEEPCNT, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_NODELAY, type HostSocketsAddon, type SocketWatcher,
} from '../io/host-sockets.js';
import { readU32, writeU16 } from '../wire/bytes.js';
import { fillL4Checksum, fold16, pseudoHeaderSum } from '../wire/checksum.js';
import { ETH_HEADER_LEN, ETHERTYPE_IPV4, writeEthernetHeader } from '../wire/ethernet.js';
import { ICMP_DEST_UNREACH, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, ICMP_HEADER_LEN, ICMP_HOST_UNREACH, ICMP_NET_UNREACH, IcmpView } from '../wire/icmp.js';
import { ip4ToString, parseIp4 } from '../wire/ip4.js';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPV4_FLAG_DF, Ipv4View, writeIpv4Header } from '../wire/ipv4.js';
import { TCP_FLAG_ACK, TCP_FLAG_FIN, TCP_FLAG_PSH, TCP_FLAG_RST, TCP_FLAG_SYN, TCP_OPT_MSS, TCP_OPT_WSCALE, TcpView } from '../wire/tcp.js';
import { UdpView, UDP_HEADER_LEN } from '../wire/udp.js';
import { FlowIndex } from './flow-index.js';
import { newDataOffset, OUR_WSCALE, rtoMs, sendSpace, seqAdd, seqDiff, seqLeq, seqLt, windowField } from './tcp-math.js';

/** Little-endian u16 (virtio header fields). */
function writeLe16(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = v >>> 8;
}

/** Payload of one TSO super-frame: whole MSS segments within the 64 KiB IPv4 limit. */
export function superFrameBytes(mss: number): number {
  return Math.floor((0xffff - IP_LEN - TCP_LEN) / mss) * mss;
}

/** MTU of the router's uplink interface: host sockets take 64 KiB sends. */
export const SOCKET_UPLINK_MTU = 65520;
const LOOPBACK = 0x7f000001;
const WATCH_BATCH = 256;
const IP_LEN = 20;
const TCP_LEN = 20;
const SYN_OPTS_LEN = 8; // MSS (4) + NOP + window scale (3)
const HDRS = ETH_HEADER_LEN + IP_LEN;
const TCP_PAYLOAD_AT = VNET_HDR_LEN + HDRS + TCP_LEN;
const UDP_PAYLOAD_AT = VNET_HDR_LEN + HDRS + UDP_HEADER_LEN;
const ICMP_AT = VNET_HDR_LEN + HDRS;
/** Largest UDP payload / echo message one slot takes. */
const MAX_DGRAM = 65507;
/** Segments one flow sends toward its namespace per event, so one flow cannot take the pool. */
const SEGMENTS_PER_PUSH = 64;
/** Pool slots the socket uplink's frames may hold at once (until the devices flush). */
const POOL_SHARE = 256;
const MAX_RETRIES = 8;
/** Bytes of the SYN an ICMP unreachable quotes: its IP and TCP headers, options included. */
const SYN_QUOTE_LEN = 60;
/** SO_SNDBUF of TCP sockets (the kernel caps it at net.core.wmem_max): the window the namespace may fill at once. */
const SEND_BUFFER = 4 << 20;

/* Flow states. */
const FREE = 0;
const TCP_CONNECTING = 1; // host connect() in progress, the namespace's SYN waits
const TCP_SYN_RCVD = 2; // SYN-ACK sent to the namespace, its ACK awaited
const TCP_SYN_SENT = 3; // published port: SYN sent into the namespace, its SYN-ACK awaited
const TCP_OPEN = 4; // data both ways (half-closed is flags on top)
const UDP_FLOW = 5;
const PING_FLOW = 6;

/* TCP flow flags. */
const F_NS_FIN = 1; // the namespace sent FIN (socket shut for writing)
const F_EOF = 2; // the host socket reached end of stream
const F_FIN_SENT = 4; // FIN sent to the namespace (at sndNxt)
const F_FIN_ACKED = 8;
const F_ACK_PENDING = 16; // an ACK is due at the end of the batch
const F_VIA_LISTENER = 32; // UDP from a published port: replies go out of the listener socket
const F_REPLIED = 64; // UDP: the remote answered
const F_INBOUND = 128; // accepted on a published port (the namespace is the server)
const F_MUTED = 256; // nothing more to read: the fd is out of the watcher
const F_OFFLOAD = 512; // the namespace's port takes GSO super-frames
const F_COUNTED = 1024; // holds one of maxSockets (and of its tenant's share)

export interface SocketUplinkParams {
  hostLoopback: number;
  maxSockets: number;
  maxSocketsPerTenant: number;
  tcpIdleTimeout: number;
  udpTimeout: number;
  udpRepliedTimeout: number;
  publish: SocketForward[];
  uplinkIf: number;
  records: Map<string, PortRecord>;
}

/** A published port (the data plane's PublishSpec): host port(s) -> an address and port in a namespace. */
export interface SocketForward {
  proto: 'tcp' | 'udp';
  port: number;
  portEnd?: number;
  to: string;
  toPort?: number;
  /** Where the listening socket binds (default 0.0.0.0); NAT publishes on the uplink's own address. */
  hostAddress?: string;
}

interface ListenerSocket {
  fd: number;
  proto: number;
  hostPort: number;
  toIp: number;
  toPort: number;
}

interface Forward {
  spec: SocketForward;
  sockets: ListenerSocket[];
}

export class SocketUplink extends Element {
  readonly kind = 'SocketUplink';
  override counters = {
    socketsInUse: 0, maxSockets: 0, maxSocketsPerTenant: 0, tcpFlows: 0, udpFlows: 0, pingFlows: 0, listeners: 0,
    connects: 0, accepted: 0, resetsToNamespace: 0, resetsToHost: 0, retransmits: 0, partialSends: 0, unreachablesSent: 0, idleClosed: 0,
  };
  private readonly p: SocketUplinkParams;
  private readonly record: PortRecord;
  private readonly account: number;
  private host: HostSocketsAddon | null = null;
  private watcher: SocketWatcher | null = null;
  private afterBatch: () => void = () => {};
  private readonly evFds = new Int32Array(WATCH_BATCH);
  private readonly evBits = new Int32Array(WATCH_BATCH);
  private readonly peer = new Int32Array(2);
  /** fd -> flow (>= 0) or listener socket (-1 - index into listenerSockets). */
  private readonly byFd = new Map<number, number>();
  private readonly listenerSockets: (ListenerSocket | null)[] = [];
  private readonly forwards: Forward[] = [];
  private readonly perTenant = new Map<number, number>();

  /* Flows: keys in the index, the rest here, all preallocated. */
  private readonly index: FlowIndex;
  private readonly state: Uint8Array;
  private readonly flags: Uint16Array;
  private readonly fd: Int32Array;
  /** The remote as the host sees it (remIp with the loopback alias undone). */
  private readonly hostIp: Uint32Array;
  private readonly sndUna: Uint32Array;
  private readonly sndNxt: Uint32Array;
  private readonly rcvNxt: Uint32Array;
  private readonly nsWnd: Float64Array;
  private readonly nsWscale: Uint8Array;
  private readonly ourWscale: Uint8Array;
  private readonly mss: Uint16Array;
  private readonly events: Int32Array;
  private readonly rtoAt: Float64Array;
  private readonly retries: Uint8Array;
  private readonly dupAcks: Uint8Array;
  private readonly lastSeen: Float64Array;
  /** Ping: the namespace's echo id (the socket has its own). */
  private readonly echoId: Uint16Array;
  /** SO_SNDBUF as the kernel reports it (fixed once set: no autotuning). */
  private readonly sndBuf: Int32Array;
  /** The namespace's SYN (IP and TCP header) while connecting: quoted by an ICMP unreachable. */
  private readonly synQuote: Uint8Array;
  private readonly synQuoteLen: Uint8Array;
  private readonly freeList: Int32Array;
  private freeTop: number;
  private highWater = 0;
  private readonly ackList: Int32Array;
  private ackCount = 0;

  private readonly ip = new Ipv4View();
  private readonly tcp = new TcpView();
  private readonly udp = new UdpView();
  private readonly icmp = new IcmpView();
  private readonly outTcp = new TcpView();
  private ipId = 1;

  constructor(name: string, ctx: DataPlaneContext, p: SocketUplinkParams) {
    super(name, ctx, ['in'], ['out']);
    this.p = p;
    this.record = p.records.get('uplink')!;
    this.account = ctx.arena.newAccount('socket-uplink', POOL_SHARE);
    this.counters.maxSockets = p.maxSockets;
    this.counters.maxSocketsPerTenant = p.maxSocketsPerTenant;
    const cap = p.maxSockets;
    this.index = new FlowIndex(cap);
    this.state = new Uint8Array(cap);
    this.flags = new Uint16Array(cap);
    this.fd = new Int32Array(cap).fill(-1);
    this.hostIp = new Uint32Array(cap);
    this.sndUna = new Uint32Array(cap);
    this.sndNxt = new Uint32Array(cap);
    this.rcvNxt = new Uint32Array(cap);
    this.nsWnd = new Float64Array(cap);
    this.nsWscale = new Uint8Array(cap);
    this.ourWscale = new Uint8Array(cap);
    this.mss = new Uint16Array(cap);
    this.events = new Int32Array(cap);
    this.rtoAt = new Float64Array(cap);
    this.retries = new Uint8Array(cap);
    this.dupAcks = new Uint8Array(cap);
    this.lastSeen = new Float64Array(cap);
    this.echoId = new Uint16Array(cap);
    this.sndBuf = new Int32Array(cap);
    this.synQuote = new Uint8Array(cap * SYN_QUOTE_LEN);
    this.synQuoteLen = new Uint8Array(cap);
    this.freeList = new Int32Array(cap);
    for (let i = 0; i < cap; i++) this.freeList[i] = cap - 1 - i;
    this.freeTop = cap;
    this.ackList = new Int32Array(cap);
  }

  override config(): string {
    return `host sockets (at most ${this.p.maxSockets}, ${this.p.maxSocketsPerTenant} per source), ${ip4ToString(this.p.hostLoopback)} = host 127.0.0.1`;
  }

  /* ------------------------------------------------------------ lifecycle */

  /** In the data-plane thread, at engine start: the watcher and the published ports; `afterBatch` flushes the devices. */
  start(afterBatch: () => void, host: HostSocketsAddon = hostSockets()): void {
    this.host = host;
    this.afterBatch = afterBatch;
    this.watcher = new this.host.SocketWatcher(this.evFds, this.evBits, (n) => this.onEvents(n));
    this.watcher.start();
    for (const f of this.p.publish) this.addForward(f);
  }

  stop(): void {
    for (let f = 0; f < this.highWater; f++) if (this.state[f] !== FREE) this.closeFlow(f, this.state[f] <= TCP_OPEN);
    for (const fw of [...this.forwards]) this.removeForward(fw.spec.proto, fw.spec.port);
    this.watcher?.close();
    this.watcher = null;
  }

  /* ------------------------------------------------------------ published ports */

  listForwards(): SocketForward[] {
    return this.forwards.map((f) => f.spec);
  }

  /** Listen on hostAddress:port (each port of a range) for a published port; throws with the reason when the host refuses. */
  addForward(spec: SocketForward): void {
    const host = this.must();
    const end = spec.portEnd ?? spec.port;
    const taken = this.forwards.find((f) => f.spec.proto === spec.proto && f.spec.port <= end && spec.port <= (f.spec.portEnd ?? f.spec.port));
    if (taken !== undefined) throw new Error(`${spec.proto}/${taken.spec.port} is already published`);
    const toIp = parseIp4(spec.to);
    const bindIp = parseIp4(spec.hostAddress ?? '0.0.0.0');
    if (toIp === null || bindIp === null) throw new Error(`publish: bad address in ${JSON.stringify(spec)}`);
    const proto = spec.proto === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP;
    const sockets: ListenerSocket[] = [];
    const undo = () => sockets.forEach((s) => this.closeListener(s));
    for (let port = spec.port; port <= end; port++) {
      const fd = host.sockOpen(proto === IPPROTO_TCP ? SocketKind.Tcp : SocketKind.Udp);
      if (fd < 0) {
        undo();
        throw new Error(`publish ${spec.proto}/${port}: no socket (errno ${-fd})`);
      }
      host.sockSetInt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
      let rc = host.sockBind4(fd, bindIp, port);
      if (rc === 0 && proto === IPPROTO_TCP) rc = host.sockListen(fd, 1024);
      if (rc < 0) {
        host.sockClose(fd);
        undo();
        throw new Error(`publish ${spec.proto}/${port} on ${spec.hostAddress ?? '0.0.0.0'}: ${rc === -98 ? 'address in use' : `errno ${-rc}`}`);
      }
      const ls: ListenerSocket = { fd, proto, hostPort: port, toIp, toPort: (spec.toPort ?? spec.port) + (port - spec.port) };
      let slot = this.listenerSockets.indexOf(null);
      if (slot < 0) slot = this.listenerSockets.push(null) - 1;
      this.listenerSockets[slot] = ls;
      this.byFd.set(fd, -1 - slot);
      this.watcher!.watch(fd, EV_IN);
      sockets.push(ls);
    }
    this.forwards.push({ spec, sockets });
    this.counters.listeners += sockets.length;
  }

  /** Stop listening; connections already accepted go on. False when not published. */
  removeForward(proto: 'tcp' | 'udp', port: number): boolean {
    const i = this.forwards.findIndex((f) => f.spec.proto === proto && f.spec.port === port);
    if (i < 0) return false;
    const [fw] = this.forwards.splice(i, 1);
    for (const s of fw.sockets) this.closeListener(s);
    this.counters.listeners -= fw.sockets.length;
    return true;
  }

  private closeListener(s: ListenerSocket): void {
    const slot = -1 - this.byFd.get(s.fd)!;
    this.listenerSockets[slot] = null;
    this.byFd.delete(s.fd);
    this.watcher?.unwatch(s.fd);
    // UDP flows answering through this socket end with it.
    for (let f = 0; f < this.highWater; f++) if (this.state[f] === UDP_FLOW && (this.flags[f] & F_VIA_LISTENER) !== 0 && this.fd[f] === s.fd) this.closeFlow(f, false);
    this.host!.sockClose(s.fd);
  }

  private must(): HostSocketsAddon {
    if (this.host === null) throw new Error('socket uplink: not started');
    return this.host;
  }

  /* ------------------------------------------------------------ flows */

  private newFlow(proto: number, nsIp: number, nsPort: number, remIp: number, remPort: number, needsSocket: boolean): number {
    if (needsSocket) {
      if (this.counters.socketsInUse >= this.p.maxSockets) return this.refuse(DROP_SOCKETS_EXHAUSTED);
      if ((this.perTenant.get(nsIp) ?? 0) >= this.p.maxSocketsPerTenant) return this.refuse(DROP_TENANT_SOCKETS_EXHAUSTED);
    }
    if (this.freeTop === 0) return this.refuse(DROP_SOCKETS_EXHAUSTED);
    const f = this.freeList[--this.freeTop];
    if (f >= this.highWater) this.highWater = f + 1;
    this.index.insert(f, proto, nsIp, nsPort, remIp, remPort);
    this.hostIp[f] = remIp === this.p.hostLoopback ? LOOPBACK : remIp;
    this.flags[f] = 0;
    this.fd[f] = -1;
    this.events[f] = 0;
    this.rtoAt[f] = 0;
    this.retries[f] = 0;
    this.dupAcks[f] = 0;
    this.lastSeen[f] = this.ctx.clock.now;
    if (needsSocket) {
      this.flags[f] = F_COUNTED;
      this.counters.socketsInUse++;
      this.perTenant.set(nsIp, (this.perTenant.get(nsIp) ?? 0) + 1);
    }
    return f;
  }

  private refuse(reason: number): number {
    this.record.countDrop(reason);
    return -1;
  }

  /** Give a flow's socket up (TCP: with a reset when `reset`) and free the flow. */
  private closeFlow(f: number, reset: boolean): void {
    const host = this.host!;
    const st = this.state[f];
    const fd = this.fd[f];
    const ownsSocket = fd >= 0 && (this.flags[f] & F_VIA_LISTENER) === 0;
    if (ownsSocket) {
      if ((this.flags[f] & F_MUTED) === 0) this.watcher?.unwatch(fd);
      this.byFd.delete(fd);
      if (reset) {
        host.sockResetOnClose(fd);
        this.counters.resetsToHost++;
      }
      host.sockClose(fd);
    }
    if ((this.flags[f] & F_COUNTED) !== 0) {
      this.counters.socketsInUse--;
      const t = this.index.nsIp[f];
      const n = (this.perTenant.get(t) ?? 1) - 1;
      if (n === 0) this.perTenant.delete(t);
      else this.perTenant.set(t, n);
    }
    if (st === UDP_FLOW) this.counters.udpFlows--;
    else if (st === PING_FLOW) this.counters.pingFlows--;
    else if (st !== FREE) this.counters.tcpFlows--;
    this.index.remove(f);
    this.state[f] = FREE;
    this.fd[f] = -1;
    this.flags[f] = 0;
    this.freeList[this.freeTop++] = f;
  }

  private setEvents(f: number, ev: number): void {
    if (this.events[f] === ev || (this.flags[f] & F_MUTED) !== 0) return;
    this.events[f] = ev;
    this.watcher!.modify(this.fd[f], ev);
  }

  /** Take a socket out of the watcher for good (end of stream seen, a hang-up would repeat). */
  private mute(f: number): void {
    if ((this.flags[f] & F_MUTED) !== 0) return;
    this.watcher!.unwatch(this.fd[f]);
    this.flags[f] |= F_MUTED;
  }

  /* ------------------------------------------------------------ from the namespaces */

  push(_input: number, off: number, len: number): void {
    if (this.host === null) return;
    const b = this.ctx.u8;
    const v = this.ip.reset(b, off + VNET_HDR_LEN + ETH_HEADER_LEN, len - ETH_HEADER_LEN);
    if (v.isFragment) return this.record.countDrop(DROP_SOCKUP_UNSUPPORTED);
    const proto = v.protocol;
    const tracer = this.ctx.tracer;
    if (tracer.active) {
      // A trace changes nothing: no socket is opened, no flow touched.
      const port = proto === IPPROTO_TCP || proto === IPPROTO_UDP ? `:${(b[v.payloadOffset + 2] << 8) | b[v.payloadOffset + 3]}` : '';
      const to = v.dst === this.p.hostLoopback ? `${ip4ToString(LOOPBACK)}${port} (the host loopback)` : `${ip4ToString(v.dst)}${port}`;
      tracer.note(this.name, proto === IPPROTO_TCP || proto === IPPROTO_UDP || proto === IPPROTO_ICMP ? `to a host socket toward ${to}` : `protocol ${proto}: not carried by host sockets`);
      tracer.outputs.push(`host socket toward ${to}`);
      return;
    }
    if (proto === IPPROTO_TCP) {
      const t = this.tcp.reset(b, v.payloadOffset, v.payloadLength);
      const bad = t.checkLen();
      if (bad !== 0) return this.record.countDrop(bad);
      return this.tcpInput(v, t, off);
    }
    if (proto === IPPROTO_UDP) {
      const u = this.udp.reset(b, v.payloadOffset, v.payloadLength);
      const bad = u.checkLen();
      if (bad !== 0) return this.record.countDrop(bad);
      return this.udpInput(v, u);
    }
    if (proto === IPPROTO_ICMP) return this.icmpInput(v);
    this.record.countDrop(DROP_SOCKUP_UNSUPPORTED);
  }

  private tcpInput(v: Ipv4View, t: TcpView, off: number): void {
    const f = this.index.find(IPPROTO_TCP, v.src, t.srcPort, v.dst, t.dstPort);
    const fl = t.flags;
    if (f < 0) {
      if ((fl & (TCP_FLAG_SYN | TCP_FLAG_ACK | TCP_FLAG_RST)) === TCP_FLAG_SYN) return this.tcpConnect(v, t, off);
      if ((fl & TCP_FLAG_RST) !== 0) return;
      this.record.countDrop(DROP_SOCKUP_NO_FLOW);
      return this.resetFor(v, t);
    }
    this.lastSeen[f] = this.ctx.clock.now;
    if ((fl & TCP_FLAG_RST) !== 0) return this.closeFlow(f, true);
    const st = this.state[f];
    if (st === TCP_CONNECTING) return; // a retransmitted SYN: the connect is under way
    if (st === TCP_SYN_SENT) return this.inboundSynAck(f, t, off);
    if ((fl & TCP_FLAG_SYN) !== 0) {
      if (st === TCP_SYN_RCVD) return this.sendSyn(f, TCP_FLAG_SYN | TCP_FLAG_ACK); // our SYN-ACK was lost
      return this.record.countDrop(DROP_SOCKUP_TCP_INVALID);
    }
    if ((fl & TCP_FLAG_ACK) === 0) return;
    if (st === TCP_SYN_RCVD) {
      if (t.ack !== this.sndNxt[f]) return this.record.countDrop(DROP_SOCKUP_TCP_INVALID);
      this.state[f] = TCP_OPEN;
    }
    this.tcpAck(f, t);
    if (this.state[f] === FREE) return;
    const plen = v.totalLength - v.headerLen - t.headerLen;
    if (plen > 0 || (fl & TCP_FLAG_FIN) !== 0) this.tcpData(f, t, plen, (fl & TCP_FLAG_FIN) !== 0);
    if (this.state[f] !== FREE) this.pushToNamespace(f);
  }

  /** A SYN to a new 4-tuple: a host socket connecting to the destination. */
  private tcpConnect(v: Ipv4View, t: TcpView, off: number): void {
    const f = this.newFlow(IPPROTO_TCP, v.src, t.srcPort, v.dst, t.dstPort, true);
    if (f < 0) return this.resetFor(v, t);
    const host = this.host!;
    this.state[f] = TCP_CONNECTING;
    this.counters.tcpFlows++;
    this.rcvNxt[f] = seqAdd(t.seq, 1);
    this.learnSynOptions(f, t, off);
    const quote = Math.min(SYN_QUOTE_LEN, v.headerLen + t.headerLen);
    this.synQuote.set(this.ctx.u8.subarray(v.off, v.off + quote), f * SYN_QUOTE_LEN);
    this.synQuoteLen[f] = quote;
    const fd = host.sockOpen(SocketKind.Tcp);
    if (fd < 0) {
      this.closeFlow(f, false);
      this.record.countDrop(DROP_SOCKETS_EXHAUSTED);
      return this.resetFor(v, t);
    }
    this.fd[f] = fd;
    this.byFd.set(fd, f);
    this.prepareTcp(f, fd);
    this.counters.connects++;
    const rc = host.sockConnect4(fd, this.hostIp[f], t.dstPort);
    if (rc !== 0 && rc !== -EINPROGRESS) {
      this.closeFlow(f, false);
      this.record.countDrop(DROP_CONNECT_FAILED);
      return this.resetFor(v, t);
    }
    this.events[f] = EV_OUT;
    this.watcher!.watch(fd, EV_OUT);
  }

  /** No Nagle (the namespace already chose its segments), peeks that continue where the last ended, a send buffer the window can be taken from, keepalive. */
  private prepareTcp(f: number, fd: number): void {
    const host = this.host!;
    host.sockSetInt(fd, SOL_TCP, TCP_NODELAY, 1);
    host.sockSetInt(fd, SOL_SOCKET, SO_PEEK_OFF, 0);
    host.sockSetInt(fd, SOL_SOCKET, SO_SNDBUF, SEND_BUFFER);
    const sndbuf = host.sockGetInt(fd, SOL_SOCKET, SO_SNDBUF);
    this.sndBuf[f] = sndbuf > 0 ? sndbuf : 0;
    host.sockSetInt(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
    host.sockSetInt(fd, SOL_TCP, TCP_KEEPIDLE, 60);
    host.sockSetInt(fd, SOL_TCP, TCP_KEEPINTVL, 10);
    host.sockSetInt(fd, SOL_TCP, TCP_KEEPCNT, 6);
  }

  /**
   * MSS and window scale of the namespace's SYN (or SYN-ACK; its window is never scaled
   * there), and whether its port takes offloads: a SYN with a partial checksum came from an
   * offloaded TAP, which takes TSO super-frames back.
   */
  private learnSynOptions(f: number, t: TcpView, off: number): void {
    const b = this.ctx.u8;
    if ((b[off + VNET_FLAGS] & VNET_F_NEEDS_CSUM) !== 0) this.flags[f] |= F_OFFLOAD;
    const m = t.findOption(TCP_OPT_MSS);
    const mss = m >= 0 && b[m + 1] === 4 ? (b[m + 2] << 8) | b[m + 3] : 536;
    this.mss[f] = Math.max(64, Math.min(mss, SOCKET_UPLINK_MTU - 40));
    const w = t.findOption(TCP_OPT_WSCALE);
    this.nsWscale[f] = w >= 0 && b[w + 1] === 3 ? Math.min(b[w + 2], 14) : 0;
    this.ourWscale[f] = w >= 0 ? OUR_WSCALE : 0;
    this.nsWnd[f] = t.window;
  }

  /** The namespace's ACK: discard what it acknowledged from the socket, count duplicates, learn its window. */
  private tcpAck(f: number, t: TcpView): void {
    const ack = t.ack;
    const una = this.sndUna[f];
    const finSent = (this.flags[f] & F_FIN_SENT) !== 0;
    const top = finSent ? seqAdd(this.sndNxt[f], 1) : this.sndNxt[f];
    const window = t.window * 2 ** this.nsWscale[f];
    if (seqLt(una, ack) && seqLeq(ack, top)) {
      let n = seqDiff(ack, una);
      if (finSent && ack === top) {
        this.flags[f] |= F_FIN_ACKED;
        n--;
      }
      if (n > 0) this.host!.sockRecv(this.fd[f], this.ctx.arena.buffer, 0, n, MSG_TRUNC);
      this.sndUna[f] = seqAdd(una, n);
      this.dupAcks[f] = 0;
      this.retries[f] = 0;
      this.rtoAt[f] = this.sndUna[f] === this.sndNxt[f] && (this.flags[f] & (F_FIN_SENT | F_FIN_ACKED)) !== F_FIN_SENT ? 0 : this.ctx.clock.now + rtoMs(0);
      if ((this.flags[f] & (F_FIN_ACKED | F_NS_FIN)) === (F_FIN_ACKED | F_NS_FIN)) {
        this.nsWnd[f] = window;
        return this.closeFlow(f, false);
      }
    } else if (ack === una && window === this.nsWnd[f] && una !== this.sndNxt[f] && t.payloadLength === 0) {
      if (++this.dupAcks[f] === 3) this.rewind(f);
    } else if (seqLt(top, ack)) {
      this.record.countDrop(DROP_SOCKUP_TCP_INVALID);
    }
    this.nsWnd[f] = window;
  }

  /** Send again from the namespace's ACK point: the peek offset goes back to the start of the unacknowledged data. */
  private rewind(f: number): void {
    this.host!.sockSetInt(this.fd[f], SOL_SOCKET, SO_PEEK_OFF, 0);
    this.sndNxt[f] = this.sndUna[f];
    // The peeks find the end of the stream again after the data, and the FIN follows it.
    if ((this.flags[f] & F_FIN_ACKED) === 0) this.flags[f] &= ~(F_FIN_SENT | F_EOF);
    this.dupAcks[f] = 0;
    this.counters.retransmits++;
  }

  /** Namespace data (and FIN): in-order bytes go to the socket, one send; ACK what it took. */
  private tcpData(f: number, t: TcpView, plen: number, fin: boolean): void {
    if ((this.flags[f] & F_NS_FIN) !== 0) return this.queueAck(f); // after its FIN: a retransmission
    const seq = t.seq;
    let taken = 0;
    if (plen > 0) {
      const at = newDataOffset(seq, plen, this.rcvNxt[f]);
      // Out of order (after bytes the socket did not take): a duplicate ACK right away, so
      // the namespace retransmits after three instead of waiting for its timeout.
      if (at < 0 && seqLt(this.rcvNxt[f], seq)) this.sendTcp(f, TCP_FLAG_ACK, this.sndNxt[f], 0);
      if (at >= 0) {
        const n = this.host!.sockSend(this.fd[f], this.ctx.arena.buffer, t.payloadOffset + at, plen - at, 0);
        if (n > 0) {
          this.rcvNxt[f] = seqAdd(this.rcvNxt[f], n);
          taken = n;
        }
        if (n < plen - at) {
          if (n < 0 && n !== -EAGAIN) return this.resetBoth(f);
          this.counters.partialSends++;
          this.setEvents(f, this.events[f] | EV_OUT); // full: a window update when space returns
        }
      }
    }
    if (fin && seqAdd(seq, plen) === this.rcvNxt[f]) {
      this.rcvNxt[f] = seqAdd(this.rcvNxt[f], 1);
      this.flags[f] |= F_NS_FIN;
      this.host!.sockShutdown(this.fd[f], 1);
      if ((this.flags[f] & F_FIN_ACKED) !== 0) {
        this.sendTcp(f, TCP_FLAG_ACK, this.sndNxt[f] + 1, 0);
        return this.closeFlow(f, false);
      }
    }
    if (taken > 0 || fin || plen > 0) this.queueAck(f);
  }

  private queueAck(f: number): void {
    if ((this.flags[f] & F_ACK_PENDING) !== 0) return;
    this.flags[f] |= F_ACK_PENDING;
    this.ackList[this.ackCount++] = f;
  }

  /** Host data toward the namespace while its window allows: peeked into the frame, sent, kept in the socket until ACKed. */
  private pushToNamespace(f: number): void {
    if (this.state[f] !== TCP_OPEN) return;
    const host = this.host!;
    const arena = this.ctx.arena;
    const fd = this.fd[f];
    const fl = this.flags[f];
    let sent = 0;
    while ((this.flags[f] & (F_EOF | F_FIN_SENT)) !== (F_EOF | F_FIN_SENT) && sent < SEGMENTS_PER_PUSH) {
      if ((this.flags[f] & F_EOF) !== 0) {
        if (this.sendFin(f)) sent++;
        break;
      }
      const room = this.nsWnd[f] - seqDiff(this.sndNxt[f], this.sndUna[f]);
      if (room <= 0) break;
      const slot = arena.alloc(this.account);
      if (slot < 0) {
        this.record.countDrop(DROP_NO_FRAME_SLOT);
        break;
      }
      const want = Math.min((this.flags[f] & F_OFFLOAD) !== 0 ? superFrameBytes(this.mss[f]) : this.mss[f], room);
      const n = host.sockRecv(fd, arena.buffer, slot + TCP_PAYLOAD_AT, want, MSG_PEEK);
      if (n > 0) {
        this.buildTcp(f, slot, TCP_FLAG_ACK | TCP_FLAG_PSH, this.sndNxt[f], n, 0);
        this.sndNxt[f] = seqAdd(this.sndNxt[f], n);
        if (this.rtoAt[f] === 0) this.rtoAt[f] = this.ctx.clock.now + rtoMs(this.retries[f]);
        sent++;
      }
      arena.release(slot);
      if (n === 0) this.flags[f] |= F_EOF;
      else if (n < 0) {
        if (n !== -EAGAIN) return this.resetBoth(f);
        break;
      }
    }
    // Read again only when everything sent is acknowledged (else the readable socket would
    // wake us for bytes already peeked): the ACK that empties the flight pushes the rest.
    const idle = this.sndNxt[f] === this.sndUna[f] && (this.flags[f] & F_EOF) === 0 && this.nsWnd[f] > 0;
    this.setEvents(f, (idle ? EV_IN : 0) | (this.events[f] & EV_OUT));
    if ((this.flags[f] & F_EOF) !== 0 && (fl & F_EOF) === 0) this.afterEof(f);
  }

  private afterEof(f: number): void {
    if ((this.flags[f] & F_NS_FIN) !== 0 && (this.events[f] & EV_OUT) === 0) this.mute(f);
  }

  private sendFin(f: number): boolean {
    if ((this.flags[f] & F_FIN_SENT) !== 0) return false;
    this.flags[f] |= F_FIN_SENT;
    this.sendTcp(f, TCP_FLAG_FIN | TCP_FLAG_ACK, this.sndNxt[f], 0);
    if (this.rtoAt[f] === 0) this.rtoAt[f] = this.ctx.clock.now + rtoMs(this.retries[f]);
    return true;
  }

  /** A published port's connection: the namespace's SYN-ACK to our SYN. */
  private inboundSynAck(f: number, t: TcpView, off: number): void {
    const fl = t.flags;
    if ((fl & (TCP_FLAG_SYN | TCP_FLAG_ACK)) !== (TCP_FLAG_SYN | TCP_FLAG_ACK) || t.ack !== seqAdd(this.sndNxt[f], 1)) return this.record.countDrop(DROP_SOCKUP_TCP_INVALID);
    this.sndNxt[f] = seqAdd(this.sndNxt[f], 1);
    this.sndUna[f] = this.sndNxt[f];
    this.rcvNxt[f] = seqAdd(t.seq, 1);
    this.learnSynOptions(f, t, off);
    this.state[f] = TCP_OPEN;
    this.rtoAt[f] = 0;
    this.retries[f] = 0;
    this.sendTcp(f, TCP_FLAG_ACK, this.sndNxt[f], 0);
    this.setEvents(f, EV_IN);
  }

  /* ------------------------------------------------------------ socket events */

  private onEvents(count: number): void {
    this.ctx.clock.refresh();
    for (let i = 0; i < count; i++) {
      const fd = this.evFds[i];
      const ev = this.evBits[i];
      const h = this.byFd.get(fd);
      if (h === undefined) continue;
      if (h < 0) {
        const ls = this.listenerSockets[-1 - h];
        if (ls === null) continue;
        if (ls.proto === IPPROTO_TCP) this.acceptAll(ls);
        else this.listenerDatagrams(ls);
        continue;
      }
      const st = this.state[h];
      if (st === TCP_CONNECTING) this.connected(h, ev);
      else if (st === TCP_OPEN) this.tcpSocketEvent(h, ev);
      else if (st === UDP_FLOW) this.udpReplies(h);
      else if (st === PING_FLOW) this.echoReplies(h);
    }
    this.afterBatch();
  }

  /** The host connect() finished: SYN-ACK to the namespace, or a reset. */
  private connected(f: number, ev: number): void {
    const err = this.host!.sockGetInt(this.fd[f], SOL_SOCKET, SO_ERROR);
    if (err !== 0 || ((ev & (EV_ERR | EV_HUP)) !== 0 && (ev & EV_OUT) === 0)) {
      this.record.countDrop(DROP_CONNECT_FAILED);
      if (err === EHOSTUNREACH || err === ENETUNREACH || err === ETIMEDOUT) this.sendUnreachable(f, err === ENETUNREACH ? ICMP_NET_UNREACH : ICMP_HOST_UNREACH);
      else {
        this.sendTcp(f, TCP_FLAG_RST | TCP_FLAG_ACK, 0, 0);
        this.counters.resetsToNamespace++;
      }
      return this.closeFlow(f, false);
    }
    const isn = (Math.random() * 0x100000000) >>> 0;
    this.sndUna[f] = seqAdd(isn, 1);
    this.sndNxt[f] = isn;
    this.state[f] = TCP_SYN_RCVD;
    this.sendSyn(f, TCP_FLAG_SYN | TCP_FLAG_ACK);
    this.sndNxt[f] = this.sndUna[f];
    this.rtoAt[f] = this.ctx.clock.now + rtoMs(0);
    this.setEvents(f, 0);
  }

  private tcpSocketEvent(f: number, ev: number): void {
    if ((ev & EV_ERR) !== 0) {
      const err = this.host!.sockGetInt(this.fd[f], SOL_SOCKET, SO_ERROR);
      if (err !== 0) return this.resetBoth(f);
    }
    if ((ev & EV_OUT) !== 0 && (this.events[f] & EV_OUT) !== 0) {
      // Send space is back: tell the namespace its window opened.
      this.events[f] &= ~EV_OUT;
      this.watcher!.modify(this.fd[f], this.events[f]);
      this.sendTcp(f, TCP_FLAG_ACK, this.ackSeq(f), 0);
    }
    if ((ev & (EV_IN | EV_HUP | EV_ERR)) !== 0) {
      this.lastSeen[f] = this.ctx.clock.now;
      this.pushToNamespace(f);
      // Hung up (shut both ways, level-triggered): nothing more to wait for from the socket;
      // what is left in it goes out as the namespace's ACKs open its window.
      if ((ev & EV_HUP) !== 0 && this.state[f] !== FREE) this.mute(f);
    }
  }

  /** Connections waiting on a published TCP port: each becomes a connection into the namespace. */
  private acceptAll(ls: ListenerSocket): void {
    const host = this.host!;
    for (;;) {
      const fd = host.sockAccept4(ls.fd, this.peer);
      if (fd < 0) return;
      const clientIp = this.peer[0] >>> 0;
      const remIp = clientIp >>> 24 === 127 ? this.p.hostLoopback : clientIp;
      const f = this.index.find(IPPROTO_TCP, ls.toIp, ls.toPort, remIp, this.peer[1]) >= 0 ? -1 : this.newFlow(IPPROTO_TCP, ls.toIp, ls.toPort, remIp, this.peer[1], true);
      if (f < 0) {
        host.sockResetOnClose(fd);
        host.sockClose(fd);
        continue;
      }
      this.hostIp[f] = clientIp;
      this.state[f] = TCP_SYN_SENT;
      this.flags[f] |= F_INBOUND;
      this.counters.tcpFlows++;
      this.counters.accepted++;
      this.fd[f] = fd;
      this.byFd.set(fd, f);
      this.prepareTcp(f, fd);
      this.sndNxt[f] = (Math.random() * 0x100000000) >>> 0;
      this.sndUna[f] = this.sndNxt[f];
      this.rcvNxt[f] = 0;
      this.mss[f] = 1460;
      this.ourWscale[f] = OUR_WSCALE;
      this.nsWscale[f] = 0;
      this.nsWnd[f] = 0;
      this.events[f] = 0;
      this.watcher!.watch(fd, 0);
      this.sendSyn(f, TCP_FLAG_SYN);
      this.rtoAt[f] = this.ctx.clock.now + rtoMs(0);
    }
  }

  /* ------------------------------------------------------------ timers */

  override tick(now: number): void {
    if (this.host === null) return;
    const idleMs = this.p.tcpIdleTimeout * 1000;
    for (let f = 0; f < this.highWater; f++) {
      const st = this.state[f];
      if (st === FREE) continue;
      if (st === UDP_FLOW || st === PING_FLOW) {
        const life = ((this.flags[f] & F_REPLIED) !== 0 ? this.p.udpRepliedTimeout : this.p.udpTimeout) * 1000;
        if (now - this.lastSeen[f] > life) this.closeFlow(f, false);
        continue;
      }
      if (now - this.lastSeen[f] > idleMs) {
        this.counters.idleClosed++;
        this.resetBoth(f);
        continue;
      }
      if (this.rtoAt[f] === 0 || now < this.rtoAt[f]) continue;
      if (++this.retries[f] > MAX_RETRIES) {
        this.resetBoth(f);
        continue;
      }
      this.rtoAt[f] = now + rtoMs(this.retries[f]);
      if (st === TCP_SYN_RCVD) this.sendSyn(f, TCP_FLAG_SYN | TCP_FLAG_ACK);
      else if (st === TCP_SYN_SENT) this.sendSyn(f, TCP_FLAG_SYN);
      else if (st === TCP_OPEN) {
        this.rewind(f);
        this.pushToNamespace(f);
      }
    }
  }

  /** After every batch: the ACKs the batch's segments earned, one per flow. */
  override endBatch(): void {
    const n = this.ackCount;
    this.ackCount = 0;
    for (let i = 0; i < n; i++) {
      const f = this.ackList[i];
      if (this.state[f] === FREE || (this.flags[f] & F_ACK_PENDING) === 0) continue;
      this.flags[f] &= ~F_ACK_PENDING;
      this.sendTcp(f, TCP_FLAG_ACK, this.ackSeq(f), 0);
    }
  }

  /* ------------------------------------------------------------ TCP frames toward the namespace */

  /** Sequence number of a bare ACK: after the data sent, and after our FIN once sent. */
  private ackSeq(f: number): number {
    return seqAdd(this.sndNxt[f], (this.flags[f] & F_FIN_SENT) !== 0 ? 1 : 0);
  }

  private resetBoth(f: number): void {
    this.sendTcp(f, TCP_FLAG_RST | TCP_FLAG_ACK, this.sndNxt[f], 0);
    this.counters.resetsToNamespace++;
    this.closeFlow(f, true);
  }

  /** SYN or SYN-ACK from our ISN (sndUna - 1 once connected; sndNxt before the inbound SYN). */
  private sendSyn(f: number, flags: number): void {
    const seq = flags === TCP_FLAG_SYN ? this.sndNxt[f] : (this.sndUna[f] - 1) >>> 0;
    this.sendTcp(f, flags, seq, SYN_OPTS_LEN);
  }

  /** A segment without data (or SYN options) in a fresh slot. */
  private sendTcp(f: number, flags: number, seq: number, optLen: number): void {
    const slot = this.ctx.arena.alloc(this.account);
    if (slot < 0) return this.record.countDrop(DROP_NO_FRAME_SLOT);
    this.buildTcp(f, slot, flags, seq >>> 0, 0, optLen);
    this.ctx.arena.release(slot);
  }

  /** Headers in front of `plen` payload bytes already at slot + TCP_PAYLOAD_AT (+ options), checksums, out. */
  private buildTcp(f: number, slot: number, flags: number, seq: number, plen: number, optLen: number): void {
    const b = this.ctx.u8;
    const hl = TCP_LEN + optLen;
    const ipOff = this.frameHeaders(slot, IPPROTO_TCP, hl + plen, f);
    const t = this.outTcp.reset(b, ipOff + IP_LEN, hl + plen);
    t.srcPort = this.index.remPort[f];
    t.dstPort = this.index.nsPort[f];
    t.seq = seq;
    t.ack = (flags & TCP_FLAG_ACK) !== 0 ? this.rcvNxt[f] : 0;
    b[t.off + 12] = (hl >>> 2) << 4;
    t.flags = flags;
    t.window = (flags & TCP_FLAG_RST) !== 0 ? 0 : this.advertisedWindow(f, (flags & TCP_FLAG_SYN) !== 0);
    t.checksum = 0;
    t.urgentPtr = 0;
    if (optLen > 0) {
      const o = t.off + TCP_LEN;
      b[o] = TCP_OPT_MSS;
      b[o + 1] = 4;
      writeU16(b, o + 2, SOCKET_UPLINK_MTU - 40 < this.mss[f] ? SOCKET_UPLINK_MTU - 40 : this.mss[f]);
      b[o + 4] = 1;
      b[o + 5] = TCP_OPT_WSCALE;
      b[o + 6] = 3;
      b[o + 7] = this.ourWscale[f];
      if (this.ourWscale[f] === 0 && (this.flags[f] & F_INBOUND) === 0) b.fill(1, o + 4, o + 8); // the namespace offered no scaling: NOPs
    }
    this.partialChecksum(slot, ipOff, hl + plen);
    if (plen > this.mss[f]) {
      // A TSO super-frame (only toward an offloaded port): the TAP cuts it into MSS segments.
      b[slot + VNET_GSO_TYPE] = VNET_GSO_TCPV4;
      writeLe16(b, slot + VNET_HDR_LEN_FIELD, HDRS + hl);
      writeLe16(b, slot + VNET_GSO_SIZE, this.mss[f]);
    }
    this.out[0].push(slot, HDRS + hl + plen);
  }

  /**
   * Checksum offload for a frame tapbridge built: the pseudo-header sum in the TCP checksum
   * field and NEEDS_CSUM; the TAP (or the device's software fallback for a port without
   * offloads) completes it, so the payload is never summed in JavaScript.
   */
  private partialChecksum(slot: number, ipOff: number, l4len: number): void {
    const b = this.ctx.u8;
    writeU16(b, ipOff + IP_LEN + 16, fold16(pseudoHeaderSum(readU32(b, ipOff + 12), readU32(b, ipOff + 16), IPPROTO_TCP, l4len)));
    b[slot + VNET_FLAGS] = VNET_F_NEEDS_CSUM;
    writeLe16(b, slot + VNET_CSUM_START, HDRS);
    writeLe16(b, slot + VNET_CSUM_OFFSET, 16);
  }

  /** The socket's free send space as a window field (unscaled in SYNs). */
  private advertisedWindow(f: number, syn: boolean): number {
    const fd = this.fd[f];
    if (fd < 0) return 0;
    const outq = this.host!.sockOutq(fd);
    const space = sendSpace(this.sndBuf[f], outq < 0 ? 0 : outq);
    return windowField(space, syn ? 0 : this.ourWscale[f]);
  }

  /** Ethernet (any MACs) and IPv4 header from the flow's remote to its namespace address; returns the IP offset. */
  private frameHeaders(slot: number, proto: number, l4len: number, f: number): number {
    const b = this.ctx.u8;
    b.fill(0, slot, slot + VNET_HDR_LEN);
    writeEthernetHeader(b, slot + VNET_HDR_LEN, 0x020000000001, 0x020000000002, ETHERTYPE_IPV4);
    const ipOff = slot + VNET_HDR_LEN + ETH_HEADER_LEN;
    writeIpv4Header(b, ipOff, IP_LEN + l4len, this.ipId++ & 0xffff, proto === IPPROTO_TCP ? IPV4_FLAG_DF : 0, 64, proto, this.index.remIp[f], this.index.nsIp[f]);
    this.ctx.arena.anno.begin(slot, this.p.uplinkIf);
    return ipOff;
  }

  /** RST for a segment no connection takes (RFC 793), from a fresh slot. */
  private resetFor(v: Ipv4View, t: TcpView): void {
    const arena = this.ctx.arena;
    const slot = arena.alloc(this.account);
    if (slot < 0) return this.record.countDrop(DROP_NO_FRAME_SLOT);
    const b = this.ctx.u8;
    b.fill(0, slot, slot + VNET_HDR_LEN);
    writeEthernetHeader(b, slot + VNET_HDR_LEN, 0x020000000001, 0x020000000002, ETHERTYPE_IPV4);
    const ipOff = slot + VNET_HDR_LEN + ETH_HEADER_LEN;
    writeIpv4Header(b, ipOff, IP_LEN + TCP_LEN, this.ipId++ & 0xffff, IPV4_FLAG_DF, 64, IPPROTO_TCP, v.dst, v.src);
    const r = this.outTcp.reset(b, ipOff + IP_LEN, TCP_LEN);
    r.srcPort = t.dstPort;
    r.dstPort = t.srcPort;
    const fl = t.flags;
    if ((fl & TCP_FLAG_ACK) !== 0) {
      r.seq = t.ack;
      r.ack = 0;
      r.flags = TCP_FLAG_RST;
    } else {
      const segLen = v.totalLength - v.headerLen - t.headerLen + ((fl & TCP_FLAG_SYN) !== 0 ? 1 : 0) + ((fl & TCP_FLAG_FIN) !== 0 ? 1 : 0);
      r.seq = 0;
      r.ack = seqAdd(t.seq, segLen);
      r.flags = TCP_FLAG_RST | TCP_FLAG_ACK;
    }
    b[r.off + 12] = 5 << 4;
    r.window = 0;
    r.checksum = 0;
    r.urgentPtr = 0;
    fillL4Checksum(b, ipOff);
    arena.anno.begin(slot, this.p.uplinkIf);
    this.counters.resetsToNamespace++;
    this.out[0].push(slot, HDRS + TCP_LEN);
    arena.release(slot);
  }

  /* ------------------------------------------------------------ UDP */

  private udpInput(v: Ipv4View, u: UdpView): void {
    const host = this.host!;
    let f = this.index.find(IPPROTO_UDP, v.src, u.srcPort, v.dst, u.dstPort);
    if (f < 0) {
      f = this.newFlow(IPPROTO_UDP, v.src, u.srcPort, v.dst, u.dstPort, true);
      if (f < 0) return;
      const fd = host.sockOpen(SocketKind.Udp);
      if (fd < 0) {
        this.closeFlow(f, false);
        return this.record.countDrop(DROP_SOCKETS_EXHAUSTED);
      }
      this.state[f] = UDP_FLOW;
      this.counters.udpFlows++;
      this.fd[f] = fd;
      this.byFd.set(fd, f);
      if (host.sockConnect4(fd, this.hostIp[f], u.dstPort) < 0) {
        this.record.countDrop(DROP_CONNECT_FAILED);
        return this.closeFlow(f, false);
      }
      this.events[f] = EV_IN;
      this.watcher!.watch(fd, EV_IN);
    }
    this.lastSeen[f] = this.ctx.clock.now;
    const plen = u.length - UDP_HEADER_LEN;
    const at = u.off + UDP_HEADER_LEN;
    const fd = this.fd[f];
    const n = (this.flags[f] & F_VIA_LISTENER) !== 0
      ? host.sockSendTo4(fd, this.ctx.arena.buffer, at, plen, this.hostIp[f], this.index.remPort[f])
      : host.sockSend(fd, this.ctx.arena.buffer, at, plen, 0);
    if (n < 0) this.record.countDrop(DROP_SOCKUP_SEND_FAILED);
  }

  /** Datagrams on a flow's connected socket: UDP packets back to the namespace address. */
  private udpReplies(f: number): void {
    const host = this.host!;
    const arena = this.ctx.arena;
    for (let i = 0; i < SEGMENTS_PER_PUSH; i++) {
      const slot = arena.alloc(this.account);
      if (slot < 0) return this.record.countDrop(DROP_NO_FRAME_SLOT);
      const n = host.sockRecv(this.fd[f], arena.buffer, slot + UDP_PAYLOAD_AT, MAX_DGRAM, 0);
      if (n >= 0) {
        this.flags[f] |= F_REPLIED;
        this.lastSeen[f] = this.ctx.clock.now;
        this.sendUdp(f, slot, n);
      }
      arena.release(slot);
      if (n < 0) return;
    }
  }

  /** Datagrams to a published UDP port: from the client's address into the namespace. */
  private listenerDatagrams(ls: ListenerSocket): void {
    const host = this.host!;
    const arena = this.ctx.arena;
    for (let i = 0; i < SEGMENTS_PER_PUSH; i++) {
      const slot = arena.alloc(this.account);
      if (slot < 0) return this.record.countDrop(DROP_NO_FRAME_SLOT);
      const n = host.sockRecvFrom4(ls.fd, arena.buffer, slot + UDP_PAYLOAD_AT, MAX_DGRAM, this.peer);
      if (n >= 0) {
        const clientIp = this.peer[0] >>> 0;
        const remIp = clientIp >>> 24 === 127 ? this.p.hostLoopback : clientIp;
        let f = this.index.find(IPPROTO_UDP, ls.toIp, ls.toPort, remIp, this.peer[1]);
        if (f < 0) {
          f = this.newFlow(IPPROTO_UDP, ls.toIp, ls.toPort, remIp, this.peer[1], false);
          if (f >= 0) {
            this.state[f] = UDP_FLOW;
            this.flags[f] |= F_VIA_LISTENER | F_REPLIED;
            this.hostIp[f] = clientIp;
            this.fd[f] = ls.fd;
            this.counters.udpFlows++;
          }
        }
        if (f >= 0) {
          this.lastSeen[f] = this.ctx.clock.now;
          this.sendUdp(f, slot, n);
        }
      }
      arena.release(slot);
      if (n < 0) return;
    }
  }

  private sendUdp(f: number, slot: number, plen: number): void {
    const b = this.ctx.u8;
    const ipOff = this.frameHeaders(slot, IPPROTO_UDP, UDP_HEADER_LEN + plen, f);
    const u = ipOff + IP_LEN;
    writeU16(b, u, this.index.remPort[f]);
    writeU16(b, u + 2, this.index.nsPort[f]);
    writeU16(b, u + 4, UDP_HEADER_LEN + plen);
    writeU16(b, u + 6, 0);
    fillL4Checksum(b, ipOff);
    this.out[0].push(slot, HDRS + UDP_HEADER_LEN + plen);
  }

  /* ------------------------------------------------------------ ICMP echo */

  private icmpInput(v: Ipv4View): void {
    const host = this.host!;
    const c = this.icmp.reset(this.ctx.u8, v.payloadOffset, v.payloadLength);
    const bad = c.checkLen();
    if (bad !== 0) return this.record.countDrop(bad);
    if (c.type !== ICMP_ECHO_REQUEST) return this.record.countDrop(DROP_ICMP_UNSUPPORTED);
    const id = this.ctx.u8[c.off + 4] << 8 | this.ctx.u8[c.off + 5];
    let f = this.index.find(IPPROTO_ICMP, v.src, id, v.dst, 0);
    if (f < 0) {
      f = this.newFlow(IPPROTO_ICMP, v.src, id, v.dst, 0, true);
      if (f < 0) return;
      const fd = host.sockOpen(SocketKind.Ping);
      if (fd < 0) {
        this.closeFlow(f, false);
        return this.record.countDrop(fd === -EACCES ? DROP_ICMP_ECHO_NOT_PERMITTED : DROP_SOCKETS_EXHAUSTED);
      }
      this.state[f] = PING_FLOW;
      this.counters.pingFlows++;
      this.echoId[f] = id;
      this.fd[f] = fd;
      this.byFd.set(fd, f);
      this.events[f] = EV_IN;
      this.watcher!.watch(fd, EV_IN);
    }
    this.lastSeen[f] = this.ctx.clock.now;
    const n = host.sockSendTo4(this.fd[f], this.ctx.arena.buffer, c.off, v.payloadLength, this.hostIp[f], 0);
    if (n < 0) this.record.countDrop(DROP_SOCKUP_SEND_FAILED);
  }

  /** Echo replies on a ping socket: the namespace's echo id put back, to the namespace. */
  private echoReplies(f: number): void {
    const host = this.host!;
    const arena = this.ctx.arena;
    const b = this.ctx.u8;
    for (let i = 0; i < SEGMENTS_PER_PUSH; i++) {
      const slot = arena.alloc(this.account);
      if (slot < 0) return this.record.countDrop(DROP_NO_FRAME_SLOT);
      const n = host.sockRecvFrom4(this.fd[f], arena.buffer, slot + ICMP_AT, MAX_DGRAM, this.peer);
      if (n >= 8 && b[slot + ICMP_AT] === ICMP_ECHO_REPLY) {
        this.flags[f] |= F_REPLIED;
        const ipOff = this.frameHeaders(slot, IPPROTO_ICMP, n, f);
        writeU16(b, ipOff + IP_LEN + 4, this.echoId[f]);
        writeU16(b, ipOff + IP_LEN + 2, 0);
        fillL4Checksum(b, ipOff);
        this.out[0].push(slot, HDRS + n);
      }
      arena.release(slot);
      if (n < 0) return;
    }
  }

  /** The destination could not be reached (host or net unreachable, timed out): ICMP from it, quoting the SYN. */
  private sendUnreachable(f: number, code: number): void {
    const arena = this.ctx.arena;
    const slot = arena.alloc(this.account);
    if (slot < 0) return this.record.countDrop(DROP_NO_FRAME_SLOT);
    const b = this.ctx.u8;
    const quote = this.synQuoteLen[f];
    const ipOff = this.frameHeaders(slot, IPPROTO_ICMP, ICMP_HEADER_LEN + quote, f);
    const c = ipOff + IP_LEN;
    b.fill(0, c, c + ICMP_HEADER_LEN);
    b[c] = ICMP_DEST_UNREACH;
    b[c + 1] = code;
    b.set(this.synQuote.subarray(f * SYN_QUOTE_LEN, f * SYN_QUOTE_LEN + quote), c + ICMP_HEADER_LEN);
    fillL4Checksum(b, ipOff);
    this.counters.unreachablesSent++;
    this.out[0].push(slot, HDRS + ICMP_HEADER_LEN + quote);
    arena.release(slot);
  }

  /** Control plane: sockets in use by source address (`ctl graph` shows the totals). */
  tenants(): { source: string; sockets: number }[] {
    return [...this.perTenant].map(([ip, n]) => ({ source: ip4ToString(ip), sockets: n }));
  }
}

