/*
 * NatEngine: connection tracking + NAT for IPv4 -- the shared engine (engine-base.ts, where
 * the behaviour is described) with the IPv4 family (family4.ts): address values are the
 * addresses. Config: NatConfig (types.ts).
 */
import { checkCommonConfig, NatEngineBase } from './engine-base.js';
import { Family4 } from './family4.js';
import type { NatConfig, PortForward } from './types.js';

export * from './types.js';
export { MAX_PORT_TRIES } from './ports.js';
export { NatEngineBase } from './engine-base.js';

export class NatEngine extends NatEngineBase {
  readonly ifAddr: Uint32Array;
  /** Address of the uplink (0 when there is none). */
  readonly extAddr: number;
  private readonly fam4: Family4;

  constructor(cfg: NatConfig) {
    if (!(cfg.ifAddr instanceof Uint32Array)) throw new Error('nat.ifAddr: must be a Uint32Array');
    checkCommonConfig(cfg, cfg.ifAddr.length);
    const fam = new Family4(cfg.masqueradeSources);
    super(cfg, fam, cfg.ifAddr);
    this.fam4 = fam;
    this.ifAddr = cfg.ifAddr;
    this.extAddr = cfg.uplinkIf >= 0 ? cfg.ifAddr[cfg.uplinkIf] : 0;
    for (const f of cfg.forwards ?? []) this.addForward(f);
  }

  isMasqSource(a: number): boolean {
    return this.fam4.isMasqSource(a);
  }

  addForward(f: PortForward): void {
    if (!Number.isInteger(f.internalIp) || f.internalIp < 0 || f.internalIp > 0xffffffff) throw new Error('nat.forwards: bad internalIp');
    this.published.add(f, f.internalIp);
  }

  listForwards(): PortForward[] {
    return this.published.all().map((p) => ({ proto: p.proto, externalPort: p.externalPort, externalPortEnd: p.externalPortEnd, internalIp: p.internalVal, internalPort: p.internalPort }));
  }

  /** Flow id whose ORIGINAL or REPLY tuple matches (ICMP: sport = dport = echo id, icmpType 8 or 0), or -1. */
  find(proto: number, src: number, dst: number, sport: number, dport: number, icmpType = 8): number {
    return this.findFlow(proto, src >>> 0, dst >>> 0, sport, dport, icmpType);
  }
}
