/*
 * Published ports (DNAT targets of the external address, by protocol and port: a direct
 * table of 2 x 65536 entries) and the SNAT port picker. Addresses are the engine's address
 * values (family.ts).
 *
 * Port choice: keep the source port (or echo id) when the reply tuple is free, else scan the
 * configured range linearly from a pseudo-random start, at most MAX_PORT_TRIES candidates.
 * Published ports of the external address are never used for SNAT: the reply tuple would
 * shadow the published port for that remote.
 */
import { KP_ICMP_REP, type FlowIndex } from './flow-index.js';
import type { PortForward } from './types.js';

export const MAX_PORT_TRIES = 1024;
const UDP_BASE = 65536;

/** A published range, with its internal address as an address value (IPv4 address, IPv6 id). */
export interface Published {
  proto: 6 | 17;
  externalPort: number;
  externalPortEnd: number;
  internalPort: number;
  internalVal: number;
}

export class PublishedPorts {
  /** Internal port per (proto, external port), -1 when not published. */
  private readonly toPort = new Int32Array(2 * 65536).fill(-1);
  private readonly toIp = new Uint32Array(2 * 65536);
  private readonly list: Published[] = [];

  get memoryBytes(): number {
    return this.toPort.byteLength + this.toIp.byteLength;
  }

  /** Internal port for (proto 6|17, external port), or -1. */
  port(proto: number, externalPort: number): number {
    return this.toPort[(proto === 17 ? UDP_BASE : 0) + externalPort];
  }

  /** Internal address value for a published (proto, port) (valid when port() >= 0). */
  ip(proto: number, externalPort: number): number {
    return this.toIp[(proto === 17 ? UDP_BASE : 0) + externalPort];
  }

  /** Throws (naming the field) unless f can be published; returns its last external port. */
  check(f: Omit<PortForward, 'internalIp'>): number {
    const end = f.externalPortEnd ?? f.externalPort;
    if (f.proto !== 6 && f.proto !== 17) throw new Error(`nat.forwards: proto must be 6 or 17, got ${f.proto}`);
    if (!Number.isInteger(f.externalPort) || !Number.isInteger(end) || f.externalPort < 1 || end > 65535 || end < f.externalPort) {
      throw new Error(`nat.forwards: bad external port range ${f.externalPort}-${end}`);
    }
    if (!Number.isInteger(f.internalPort) || f.internalPort < 1 || f.internalPort + (end - f.externalPort) > 65535) {
      throw new Error(`nat.forwards: bad internal port ${f.internalPort} for a range of ${end - f.externalPort + 1}`);
    }
    const base = f.proto === 17 ? UDP_BASE : 0;
    for (let p = f.externalPort; p <= end; p++) {
      if (this.toPort[base + p] >= 0) throw new Error(`nat.forwards: ${f.proto === 6 ? 'tcp' : 'udp'} port ${p} is already published`);
    }
    return end;
  }

  /** Publish f (checked with check()) to internal address value `internalVal`. */
  add(f: Omit<PortForward, 'internalIp'>, internalVal: number): void {
    const end = this.check(f);
    const base = f.proto === 17 ? UDP_BASE : 0;
    for (let p = f.externalPort; p <= end; p++) {
      this.toPort[base + p] = f.internalPort + (p - f.externalPort);
      this.toIp[base + p] = internalVal >>> 0;
    }
    this.list.push({ proto: f.proto, externalPort: f.externalPort, externalPortEnd: end, internalPort: f.internalPort, internalVal: internalVal >>> 0 });
  }

  /** Remove the published range containing externalPort; returns it (null: none). Existing flows keep their mapping until they end. */
  remove(proto: number, externalPort: number): Published | null {
    const i = this.list.findIndex((f) => f.proto === proto && externalPort >= f.externalPort && externalPort <= f.externalPortEnd);
    if (i < 0) return null;
    const f = this.list[i];
    const base = f.proto === 17 ? UDP_BASE : 0;
    for (let p = f.externalPort; p <= f.externalPortEnd; p++) {
      this.toPort[base + p] = -1;
      this.toIp[base + p] = 0;
    }
    this.list.splice(i, 1);
    return f;
  }

  all(): Published[] {
    return this.list.map((f) => ({ ...f }));
  }

  get count(): number {
    return this.list.length;
  }
}

export class PortPicker {
  private rng: number;

  constructor(
    private readonly idx: FlowIndex,
    private readonly published: PublishedPorts,
    private readonly extAddr: number,
    private readonly lo: number,
    private readonly hi: number,
    seed: number,
  ) {
    this.rng = (seed >>> 0) || 0x6d2b79f5;
  }

  /** A free port for reply entry er (its dport; for ICMP both ports), or -1. */
  pick(er: number, preferred: number): number {
    const idx = this.idx;
    const kp = idx.kp(er);
    const s = idx.src(er);
    const d = idx.dst(er);
    const icmp = kp === KP_ICMP_REP;
    const rs = idx.sport(er);
    const guardPublished = d === this.extAddr && (kp === 6 || kp === 17);
    if ((!guardPublished || this.published.port(kp, preferred) < 0) && idx.lookup(kp, s, d, icmp ? preferred : rs, preferred) < 0) return preferred;
    const lo = this.lo;
    const n = this.hi - lo + 1;
    let x = this.rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rng = x >>> 0;
    const start = this.rng % n;
    const tries = n < MAX_PORT_TRIES ? n : MAX_PORT_TRIES;
    for (let i = 0; i < tries; i++) {
      const port = lo + ((start + i) % n);
      if (port === preferred || (guardPublished && this.published.port(kp, port) >= 0)) continue;
      if (idx.lookup(kp, s, d, icmp ? port : rs, port) < 0) return port;
    }
    return -1;
  }
}
