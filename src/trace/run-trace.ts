/*
 * `ctl trace`: build one packet from a description, push it through the pipeline in
 * dry-run mode (every port records instead of transmitting, see hooks.ts) and report each
 * stage's decision, every would-be transmission and every drop (by diffing the ports'
 * drop counters). Ingress faults and captures are not applied to a traced packet.
 */
import type { Engine } from '../engine/engine.js';
import type { Router } from '../gateway/router.js';
import { describePacket } from '../gateway/router.js';
import type { Config } from '../config/schema.js';
import { DecisionTrace, type TraceHolder } from './decision.js';
import { DROP_BASE, COUNTER_SLOTS, dropName } from '../engine/counters.js';
import { VNET_HDR_LEN } from '../engine/frame.js';
import { macToString, parseMac } from '../wire/mac.js';
import { ip4ToString, parseIp4 } from '../wire/ip4.js';
import { writeU16, writeU32 } from '../wire/bytes.js';
import { ipv4HeaderChecksum, fillL4Checksum } from '../wire/checksum.js';
import { ApiError } from '../engine/dataplane-errors.js';

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
  outputs: string[];
  drops: string[];
  verdict: string;
}

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

/** What a trace must undo in the NAT: flows it created. */
export interface TraceNat {
  counters: { created: number };
  curFlow: number;
  removeFlow(f: number): boolean;
}

export function runTrace(engine: Engine, router: Router | null, cfg: Config, holder: TraceHolder, req: TraceRequest, nat: TraceNat | null = null): TraceResult {
  if (typeof req.port !== 'string') throw new ApiError(400, "'port' is required");
  const port = engine.port(req.port);
  if (port === undefined) throw new ApiError(404, `no port named '${req.port}'`);
  if (port.kind === 'internal') throw new ApiError(400, `'${req.port}' is the gateway's own port; trace from a namespace, tap, packet or uplink port`);
  const deliver = engine.deliverer(port);
  if (deliver === undefined) throw new ApiError(400, `port '${req.port}' does not receive frames`);
  const proto = req.proto ?? 'icmp';
  if (!['tcp', 'udp', 'icmp'].includes(proto)) throw new ApiError(400, "'proto' must be tcp, udp or icmp");
  const dst = ip(req.dst, 'dst');
  const portCfg = cfg.bridges.flatMap((b) => b.ports).find((p) => p.name === port.name);
  const cfgSrc = portCfg && 'addresses' in portCfg && portCfg.addresses.length > 0 ? portCfg.addresses[0].split('/')[0] : undefined;
  if (req.src === undefined && cfgSrc === undefined) throw new ApiError(400, `port '${port.name}' has no configured address: pass 'src'`);
  const src = ip(req.src ?? cfgSrc, 'src');
  const ttl = num(req.ttl, 'ttl', 1, 255, 64);
  const sport = num(req.sport, 'sport', 1, 65535, 40000);
  const dport = num(req.dport, 'dport', 1, 65535, proto === 'icmp' ? 1 : 80);
  const size = num(req.size, 'size', 0, 9000, 0);

  const notes: string[] = [];
  let srcMac = req.srcMac !== undefined ? parseMac(req.srcMac) : port.kind === 'uplink' ? 0x020000000001 : port.mac;
  if (srcMac === null) throw new ApiError(400, "'srcMac' is not a MAC address");
  let dstMac: number | null = req.dstMac !== undefined ? parseMac(req.dstMac) : null;
  if (req.dstMac !== undefined && dstMac === null) throw new ApiError(400, "'dstMac' is not a MAC address");
  if (dstMac === null) {
    const ifaces = router?.ifaces ?? [];
    const iface = port.kind === 'uplink' ? ifaces.find((f) => f.kind === 'uplink') : ifaces.find((f) => f.bridge !== null && f.bridge.id === port.bridgeId);
    if (iface === undefined) {
      dstMac = 0xffffffffffff;
      notes.push('no gateway on this bridge and no dstMac given: using broadcast');
    } else if (((dst & iface.mask) >>> 0) === iface.net && dst !== iface.address) {
      const i = iface.neigh.find(dst);
      if (i >= 0 && iface.neigh.macs[i] !== 0) dstMac = iface.neigh.macs[i];
      else {
        dstMac = 0xffffffffffff;
        notes.push(`MAC of ${ip4ToString(dst)} not known to tapbridge (pass dstMac): using broadcast`);
      }
    } else dstMac = iface.mac;
  }
  srcMac = srcMac ?? 0;

  // Build the frame in a pool slot.
  const arena = engine.arena;
  const slot = arena.alloc();
  if (slot < 0) throw new ApiError(503, 'no free frame slot');
  const b = arena.u8;
  b.fill(0, slot, slot + VNET_HDR_LEN + 1600);
  const e = slot + VNET_HDR_LEN;
  writeMacAt(b, e, dstMac);
  writeMacAt(b, e + 6, srcMac);
  writeU16(b, e + 12, 0x0800);
  const ipOff = e + 14;
  const l4len = proto === 'tcp' ? 20 : 8;
  const total = 20 + l4len + size;
  b[ipOff] = 0x45;
  writeU16(b, ipOff + 2, total);
  writeU16(b, ipOff + 4, 0x7472);
  writeU16(b, ipOff + 6, 0x4000);
  b[ipOff + 8] = ttl;
  b[ipOff + 9] = proto === 'tcp' ? 6 : proto === 'udp' ? 17 : 1;
  writeU32(b, ipOff + 12, src);
  writeU32(b, ipOff + 16, dst);
  writeU16(b, ipOff + 10, ipv4HeaderChecksum(b, ipOff, 20));
  const l4 = ipOff + 20;
  if (proto === 'tcp') {
    writeU16(b, l4, sport);
    writeU16(b, l4 + 2, dport);
    writeU32(b, l4 + 4, 1);
    b[l4 + 12] = 0x50;
    b[l4 + 13] = 0x02; // SYN
    writeU16(b, l4 + 14, 64240);
  } else if (proto === 'udp') {
    writeU16(b, l4, sport);
    writeU16(b, l4 + 2, dport);
    writeU16(b, l4 + 4, 8 + size);
  } else {
    b[l4] = 8;
    writeU16(b, l4 + 4, sport);
    writeU16(b, l4 + 6, 1);
  }
  fillL4Checksum(b, ipOff);
  const frameLen = Math.max(60, 14 + total);

  const trace = new DecisionTrace();
  for (const n of notes) trace.note('input', n);
  const before = engine.ports.map((p) => p.counters.slice(DROP_BASE, COUNTER_SLOTS));
  const hooked = engine.ports.map((p) => p.hooked);
  for (const p of engine.ports) {
    p.dryRun = trace;
    p.hooked = true;
  }
  holder.current = trace;
  const packet = describePacket(b, ipOff);
  const createdBefore = nat?.counters.created ?? 0;
  try {
    deliver(port, slot, frameLen);
  } finally {
    // A trace is not traffic: forget the conntrack entry it created.
    if (nat !== null && nat.counters.created > createdBefore && nat.curFlow >= 0) {
      nat.removeFlow(nat.curFlow);
      nat.counters.created = createdBefore;
      trace.note('nat', 'the flow created by this trace was removed again');
    }
    holder.current = null;
    engine.ports.forEach((p, i) => {
      p.dryRun = null;
      p.hooked = hooked[i];
    });
    arena.release(slot);
  }
  const drops: string[] = [];
  engine.ports.forEach((p, i) => {
    const now = p.counters.slice(DROP_BASE, COUNTER_SLOTS);
    for (let r = 1; r < now.length; r++) {
      const d = now[r] - before[i][r];
      if (d > 0) {
        drops.push(`${dropName(r)} (counted on port ${p.name})`);
        p.counters[DROP_BASE + r] -= d; // a trace is not traffic
      }
    }
  });
  const outputs = `would transmit on ${trace.outputs.length} port(s)`;
  const verdict =
    drops.length > 0
      ? `dropped: ${drops.join(', ')}${trace.outputs.length > 0 ? `; ${outputs} (e.g. an ICMP error or ARP request)` : ''}`
      : trace.outputs.length > 0
        ? outputs
        : 'consumed (no output, no drop)';
  return { packet, ingress: `port ${port.name} (${port.ifname})${port.bridgeId >= 0 ? `, bridge ${engine.bridges[port.bridgeId].name}` : ''}`, steps: trace.steps, outputs: trace.outputs, drops, verdict };
}

function writeMacAt(b: Uint8Array, o: number, mac: number): void {
  const hi = Math.floor(mac / 4294967296);
  b[o] = hi >>> 8;
  b[o + 1] = hi & 255;
  writeU32(b, o + 2, mac >>> 0);
}

/** One line for a frame a port would transmit. */
export function describeFrame(b: Uint8Array, slotOff: number, len: number): string {
  const e = slotOff + VNET_HDR_LEN;
  const eth = `${macToString(readMacAt(b, e + 6))} -> ${macToString(readMacAt(b, e))}`;
  const type = (b[e + 12] << 8) | b[e + 13];
  if (type === 0x0800 && len >= 34) return `${eth}, ${describePacket(b, e + 14)} ttl ${b[e + 22]}`;
  if (type === 0x0806) return `${eth}, ARP ${b[e + 21] === 1 ? 'request' : 'reply'} for ${ip4ToString(((b[e + 38] << 24) | (b[e + 39] << 16) | (b[e + 40] << 8) | b[e + 41]) >>> 0)}`;
  return `${eth}, ethertype 0x${type.toString(16)}`;
}

function readMacAt(b: Uint8Array, o: number): number {
  return ((b[o] << 8) | b[o + 1]) * 4294967296 + (((b[o + 2] << 24) | (b[o + 3] << 16) | (b[o + 4] << 8) | b[o + 5]) >>> 0);
}
