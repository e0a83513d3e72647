/*
 * `ctl trace` (like Open vSwitch's ofproto/trace): build one packet from a description and
 * push it into the graph as if the port's device had received it, with the tracer on. Every
 * link records the hop instead of counting, every element notes its decision, devices record
 * what they would transmit, captures and faults let it pass untouched. Afterwards everything
 * the packet changed is put back: port and element counters, flows NAT confirmed or left
 * pending. The answer names the elements the packet visited by their graph names.
 *
 * IPv4 or IPv6, by the address family of `dst` (`src`, if given, must be of the same one):
 * proto tcp (a SYN), udp, or icmp (an ICMP echo request; ICMPv6 echo for IPv6); `ttl` is the
 * TTL or the hop limit. Defaults: the source is the port's configured address of that family
 * (for a link-local IPv6 destination the port's EUI-64 link-local address); the destination
 * MAC is the gateway's for an off-link destination, the neighbour's (ARP or NDP cache) for an
 * on-link one, the group's for IPv6 multicast. On the uplink port the uplink's interface and
 * addresses decide the same way.
 */
import { ACCOUNT_CONTROL } from '../core/arena.js';
import { COUNTER_SLOTS, DROP_BASE } from '../core/counters.js';
import { dropName } from '../core/drops.js';
import type { TraceHop } from '../core/element.js';
import { VNET_HDR_LEN } from '../core/frame.js';
import type { RouterIface } from '../gateway/ifaces.js';
import { fillL4Checksum, fillL4Checksum6 } from '../wire/checksum.js';
import { describePacket } from '../wire/describe.js';
import { ETH_HEADER_LEN, ETH_MIN_FRAME_LEN, ETHERTYPE_IPV4, ETHERTYPE_IPV6, writeEthernetHeader } from '../wire/ethernet.js';
import { ICMP_ECHO_REQUEST, IcmpView } from '../wire/icmp.js';
import { ICMPV6_ECHO_REQUEST } from '../wire/icmpv6.js';
import { ip4ToString, parseIp4 } from '../wire/ip4.js';
import { ip6ToString, isLinkLocalIp6, isMulticastIp6, linkLocalFromMac, multicastMacIp6, parseIp6 } from '../wire/ip6.js';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPV4_FLAG_DF, writeIpv4Header } from '../wire/ipv4.js';
import { IPPROTO_ICMPV6, IPV6_HEADER_LEN, writeIpv6Header } from '../wire/ipv6.js';
import { BROADCAST_MAC, parseMac } from '../wire/mac.js';
import { TCP_FLAG_SYN, TCP_MIN_HEADER_LEN, TcpView } from '../wire/tcp.js';
import { UDP_HEADER_LEN, UdpView } from '../wire/udp.js';
import type { Engine } from './engine.js';
import { ApiError } from './errors.js';
import { UPLINK_PORT } from './spec.js';

export interface TraceRequest {
  port: string;
  src?: string;
  dst: string;
  proto?: 'tcp' | 'udp' | 'icmp';
  sport?: number;
  dport?: number;
  ttl?: number;
  size?: number;
  srcMac?: string;
  dstMac?: string;
}

export interface TraceResult {
  packet: string;
  ingress: string;
  steps: { stage: string; decision: string }[];
  /** Links the packet took, in order (a flood branches: hops of each branch follow each other). */
  path: TraceHop[];
  outputs: string[];
  drops: string[];
  verdict: string;
}

/** A locally administered MAC for a traced packet arriving on the uplink. */
const TRACE_UPLINK_SRC_MAC = 0x020000000001;
const TRACE_IP_ID = 0x7472;

function num(v: unknown, name: string, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) throw new ApiError(400, `'${name}' must be an integer in ${min}..${max}`);
  return n;
}

/** An address of either family: IPv4 as a number, IPv6 as four words. */
type TraceAddress = number | Uint32Array;

function address(v: unknown, name: string): TraceAddress {
  const a = typeof v !== 'string' ? null : v.includes(':') ? parseIp6(v) : parseIp4(v);
  if (a === null) throw new ApiError(400, `'${name}' must be an IPv4 or IPv6 address`);
  return a;
}

function familyOf(a: TraceAddress): 'IPv4' | 'IPv6' {
  return typeof a === 'number' ? 'IPv4' : 'IPv6';
}

/** The port's configured address of dst's family (IPv6 toward a link-local destination: its EUI-64 link-local address). */
function defaultSource(engine: Engine, port: string, mac: number, dst: TraceAddress): TraceAddress | undefined {
  if (typeof dst !== 'number' && isLinkLocalIp6(dst)) return linkLocalFromMac(mac);
  const configured = engine.spec.ports.find((p) => p.name === port)?.addresses ?? [];
  const text = configured.map((a) => a.split('/')[0]).find((a) => a.includes(':') === (typeof dst !== 'number'));
  return text === undefined ? undefined : address(text, 'src');
}

function mac(v: string | undefined, name: string): number | null {
  if (v === undefined) return null;
  const m = parseMac(v);
  if (m === null) throw new ApiError(400, `'${name}' is not a MAC address`);
  return m;
}

/**
 * The MAC a host on `ifaceName` (a bridge, or the uplink) would send to dst: the neighbour's
 * for an on-link address that is not ours, the gateway's otherwise, the group's for IPv6
 * multicast; broadcast (with a note) when tapbridge does not know it.
 */
function defaultDstMac(engine: Engine, ifaceName: string, dst: TraceAddress, notes: string[]): number {
  if (typeof dst !== 'number' && isMulticastIp6(dst)) return multicastMacIp6(dst);
  const iface = engine.shared.ifaces.byName(ifaceName);
  const known = iface === undefined ? undefined : neighborMac(engine, iface, dst);
  if (iface === undefined || known === undefined) {
    notes.push(`no ${familyOf(dst)} gateway on this ${ifaceName === UPLINK_PORT ? 'uplink' : 'bridge'} and no dstMac given: using broadcast`);
    return BROADCAST_MAC;
  }
  const onLink = typeof dst === 'number' ? iface.onLink(dst) && dst !== iface.address : iface.onLink6(dst) && !iface.isOwn6(dst);
  if (!onLink) return iface.mac;
  if (known !== 0) return known;
  notes.push(`MAC of ${typeof dst === 'number' ? ip4ToString(dst) : ip6ToString(dst)} not known to tapbridge (pass dstMac): using broadcast`);
  return BROADCAST_MAC;
}

/** dst's MAC in the interface's ARP or NDP cache (0: not known), undefined without a gateway of dst's family there. */
function neighborMac(engine: Engine, iface: RouterIface, dst: TraceAddress): number | undefined {
  if (typeof dst === 'number') {
    const n = iface.hasV4 ? engine.gateways.find((g) => g.iface === iface)?.neigh : undefined;
    const i = n === undefined ? -1 : n.find(dst);
    return n === undefined ? undefined : i >= 0 ? n.macs[i] : 0;
  }
  const n = engine.gateways6.find((g) => g.iface === iface)?.neigh;
  const i = n === undefined ? -1 : n.find(dst);
  return n === undefined ? undefined : i >= 0 ? n.macs[i] : 0;
}

export function runTrace(engine: Engine, req: TraceRequest): TraceResult {
  if (typeof req.port !== 'string') throw new ApiError(400, "'port' is required");
  const record = engine.record(req.port);
  if (record === undefined) throw new ApiError(404, `no port named '${req.port}'`);
  const device = engine.device(req.port);
  if (device === undefined) throw new ApiError(400, `'${req.port}' is the gateway's own port; trace from a namespace, tap, packet or uplink port`);
  const proto = req.proto ?? 'icmp';
  if (!['tcp', 'udp', 'icmp'].includes(proto)) throw new ApiError(400, "'proto' must be tcp, udp or icmp");
  const dst = address(req.dst, 'dst');
  const src = req.src !== undefined ? address(req.src, 'src') : defaultSource(engine, record.name, record.mac, dst);
  if (src === undefined) throw new ApiError(400, `port '${record.name}' has no configured ${familyOf(dst)} address: pass 'src'`);
  if (familyOf(src) !== familyOf(dst)) throw new ApiError(400, `'src' is an ${familyOf(src)} address but 'dst' an ${familyOf(dst)} one: both must be of one family`);
  const ttl = num(req.ttl, 'ttl', 1, 255, 64);
  const sport = num(req.sport, 'sport', 1, 65535, 40000);
  const dport = num(req.dport, 'dport', 1, 65535, proto === 'icmp' ? 1 : 80);
  const size = num(req.size, 'size', 0, 9000, 0);
  const notes: string[] = [];
  const srcMac = mac(req.srcMac, 'srcMac') ?? (record.name === UPLINK_PORT ? TRACE_UPLINK_SRC_MAC : record.mac);
  const dstMac = mac(req.dstMac, 'dstMac') ?? defaultDstMac(engine, record.name === UPLINK_PORT ? UPLINK_PORT : (record.bridge ?? ''), dst, notes);

  // Build the frame in a pool slot, through the wire layer.
  const arena = engine.arena;
  const slot = arena.alloc(ACCOUNT_CONTROL);
  if (slot < 0) throw new ApiError(503, 'no free frame slot');
  const b = arena.u8;
  const v6 = typeof dst !== 'number';
  const ipHeaderLen = v6 ? IPV6_HEADER_LEN : 20;
  const protoNum = proto === 'tcp' ? IPPROTO_TCP : proto === 'udp' ? IPPROTO_UDP : v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
  const l4len = (proto === 'tcp' ? TCP_MIN_HEADER_LEN : UDP_HEADER_LEN) + size;
  b.fill(0, slot, slot + VNET_HDR_LEN + ETH_HEADER_LEN + ipHeaderLen + l4len);
  const e = slot + VNET_HDR_LEN;
  writeEthernetHeader(b, e, dstMac, srcMac, v6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4);
  const ipOff = e + ETH_HEADER_LEN;
  if (v6) writeIpv6Header(b, ipOff, l4len, protoNum, ttl, src as Uint32Array, dst);
  else writeIpv4Header(b, ipOff, 20 + l4len, TRACE_IP_ID, IPV4_FLAG_DF, ttl, protoNum, src as number, dst);
  const l4 = ipOff + ipHeaderLen;
  if (proto === 'tcp') {
    const t = new TcpView().reset(b, l4, l4len);
    t.srcPort = sport;
    t.dstPort = dport;
    t.seq = 1;
    b[l4 + 12] = (TCP_MIN_HEADER_LEN >>> 2) << 4;
    t.flags = TCP_FLAG_SYN;
    t.window = 64240;
  } else if (proto === 'udp') {
    const u = new UdpView().reset(b, l4, l4len);
    u.srcPort = sport;
    u.dstPort = dport;
    u.length = l4len;
  } else {
    // ICMP and ICMPv6 echo share the layout: type, code, checksum, id, sequence.
    const c = new IcmpView().reset(b, l4, l4len);
    c.type = v6 ? ICMPV6_ECHO_REQUEST : ICMP_ECHO_REQUEST;
    c.id = sport;
    c.seq = 1;
  }
  if (v6) fillL4Checksum6(b, ipOff, protoNum, l4, l4len);
  else fillL4Checksum(b, ipOff);
  const frameLen = Math.max(ETH_MIN_FRAME_LEN, ETH_HEADER_LEN + ipHeaderLen + l4len);
  const packet = describePacket(b, ipOff);

  // What the packet may change: counters everywhere (put back after), NAT flows (removed).
  const records = [...engine.shared.records.values()];
  const before = records.map((r) => r.counters.slice());
  const elementCounters = engine.graph.elements.map((el) => ({ ...el.counters }));
  const nat = engine.nat;
  const natCounters = nat !== null ? { ...nat.counters } : null;
  const tracer = engine.ctx.tracer;
  tracer.begin();
  if (nat !== null) nat.readOnly = true; // looks flows up and rewrites, creates and refreshes none
  for (const n of notes) tracer.note('input', n);
  try {
    device.out[0].push(slot, frameLen);
  } finally {
    tracer.end();
    if (nat !== null) {
      nat.releasePending(false);
      nat.readOnly = false;
      Object.assign(nat.counters, natCounters);
    }
    engine.graph.elements.forEach((el, i) => Object.assign(el.counters, elementCounters[i]));
    arena.release(slot);
  }
  const drops: string[] = [];
  records.forEach((r, i) => {
    for (let k = DROP_BASE; k < COUNTER_SLOTS; k++) {
      const d = r.counters[k] - before[i][k];
      if (d > 0) drops.push(`${dropName(k - DROP_BASE)} (counted on port ${r.name})`);
    }
    r.counters.set(before[i]); // a trace is not traffic
  });
  const outputs = `would transmit on ${tracer.outputs.length} port(s)`;
  const verdict =
    drops.length > 0
      ? `dropped: ${drops.join(', ')}${tracer.outputs.length > 0 ? `; ${outputs} (e.g. an ICMP error or ARP request)` : ''}`
      : tracer.outputs.length > 0
        ? outputs
        : 'consumed (no output, no drop)';
  return {
    packet,
    ingress: `port ${record.name} (${record.ifname})${record.bridge !== null ? `, bridge ${record.bridge}` : ''}`,
    steps: tracer.steps,
    path: tracer.hops,
    outputs: tracer.outputs,
    drops,
    verdict,
  };
}
