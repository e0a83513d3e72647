/*
 * `ctl trace` (like Open vSwitch's ofproto/trace): build one packet from a description and
 * push it into the graph as if the port's device had received it, with the tracer on. Every
 * link records the hop instead of counting, every element notes its decision, devices record
 * what they would transmit, captures and faults let it pass untouched. Afterwards everything
 * the packet changed is put back: port and element counters, flows NAT confirmed or left
 * pending. The answer names the elements the packet visited by their graph names.
 */
import { ACCOUNT_CONTROL } from '../core/arena.js';
import { COUNTER_SLOTS, DROP_BASE } from '../core/counters.js';
import { dropName } from '../core/drops.js';
import type { TraceHop } from '../core/element.js';
import { VNET_HDR_LEN } from '../core/frame.js';
import { fillL4Checksum } from '../wire/checksum.js';
import { describePacket } from '../wire/describe.js';
import { ETH_HEADER_LEN, ETH_MIN_FRAME_LEN, ETHERTYPE_IPV4, writeEthernetHeader } from '../wire/ethernet.js';
import { ICMP_ECHO_REQUEST, IcmpView } from '../wire/icmp.js';
import { ip4ToString, parseIp4 } from '../wire/ip4.js';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPV4_FLAG_DF, writeIpv4Header } from '../wire/ipv4.js';
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

function ip(v: unknown, name: string): number {
  const a = typeof v === 'string' ? parseIp4(v) : null;
  if (a === null) throw new ApiError(400, `'${name}' must be an IPv4 address`);
  return a;
}

function mac(v: string | undefined, name: string): number | null {
  if (v === undefined) return null;
  const m = parseMac(v);
  if (m === null) throw new ApiError(400, `'${name}' is not a MAC address`);
  return m;
}

export function runTrace(engine: Engine, req: TraceRequest): TraceResult {
  if (typeof req.port !== 'string') throw new ApiError(400, "'port' is required");
  const record = engine.record(req.port);
  if (record === undefined) throw new ApiError(404, `no port named '${req.port}'`);
  const device = engine.device(req.port);
  if (device === undefined) throw new ApiError(400, `'${req.port}' is the gateway's own port; trace from a namespace, tap, packet or uplink port`);
  const proto = req.proto ?? 'icmp';
  if (!['tcp', 'udp', 'icmp'].includes(proto)) throw new ApiError(400, "'proto' must be tcp, udp or icmp");
  const dst = ip(req.dst, 'dst');
  const cfgSrc = engine.spec.ports.find((p) => p.name === record.name)?.addresses[0]?.split('/')[0];
  if (req.src === undefined && cfgSrc === undefined) throw new ApiError(400, `port '${record.name}' has no configured address: pass 'src'`);
  const src = ip(req.src ?? cfgSrc, 'src');
  const ttl = num(req.ttl, 'ttl', 1, 255, 64);
  const sport = num(req.sport, 'sport', 1, 65535, 40000);
  const dport = num(req.dport, 'dport', 1, 65535, proto === 'icmp' ? 1 : 80);
  const size = num(req.size, 'size', 0, 9000, 0);
  const notes: string[] = [];
  const srcMac = mac(req.srcMac, 'srcMac') ?? (record.name === UPLINK_PORT ? TRACE_UPLINK_SRC_MAC : record.mac);
  let dstMac = mac(req.dstMac, 'dstMac');
  if (dstMac === null) {
    const iface = engine.shared.ifaces.byName(record.name === UPLINK_PORT ? UPLINK_PORT : (record.bridge ?? ''));
    const gw = iface === undefined ? undefined : engine.gateways.find((g) => g.iface === iface);
    if (iface === undefined || gw === undefined) {
      dstMac = BROADCAST_MAC;
      notes.push('no gateway on this bridge and no dstMac given: using broadcast');
    } else if (iface.onLink(dst) && dst !== iface.address) {
      const i = gw.neigh.find(dst);
      if (i >= 0 && gw.neigh.macs[i] !== 0) dstMac = gw.neigh.macs[i];
      else {
        dstMac = BROADCAST_MAC;
        notes.push(`MAC of ${ip4ToString(dst)} not known to tapbridge (pass dstMac): using broadcast`);
      }
    } else dstMac = iface.mac;
  }

  // Build the frame in a pool slot, through the wire layer.
  const arena = engine.arena;
  const slot = arena.alloc(ACCOUNT_CONTROL);
  if (slot < 0) throw new ApiError(503, 'no free frame slot');
  const b = arena.u8;
  const protoNum = proto === 'tcp' ? IPPROTO_TCP : proto === 'udp' ? IPPROTO_UDP : IPPROTO_ICMP;
  const l4len = (proto === 'tcp' ? TCP_MIN_HEADER_LEN : UDP_HEADER_LEN) + size;
  b.fill(0, slot, slot + VNET_HDR_LEN + ETH_HEADER_LEN + 20 + l4len);
  const e = slot + VNET_HDR_LEN;
  writeEthernetHeader(b, e, dstMac, srcMac, ETHERTYPE_IPV4);
  const ipOff = e + ETH_HEADER_LEN;
  writeIpv4Header(b, ipOff, 20 + l4len, TRACE_IP_ID, IPV4_FLAG_DF, ttl, protoNum, src, dst);
  const l4 = ipOff + 20;
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
    const c = new IcmpView().reset(b, l4, l4len);
    c.type = ICMP_ECHO_REQUEST;
    c.id = sport;
    c.seq = 1;
  }
  fillL4Checksum(b, ipOff);
  const frameLen = Math.max(ETH_MIN_FRAME_LEN, ETH_HEADER_LEN + 20 + l4len);
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
