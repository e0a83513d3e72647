/*
 * NatEngine6: connection tracking + NAT66 for IPv6, as Docker does with ip6tables --
 * masquerade out of the uplink (port preservation, the ICMPv6 echo id as the port), published
 * ports (DNAT keeping the client's address), hairpin, ICMPv6 errors about tracked flows
 * translated with their quote, fragments through the first fragment's flow. It is the shared
 * engine (engine-base.ts, where the behaviour is described) with the IPv6 family
 * (family6.ts); IPv6 specifics:
 *  - Addresses are interned ids (addr-table.ts). A flow holds its original source and
 *    destination and its reply source; the reply destination is the original source or one
 *    of the engine's own addresses. The engine holds (pins) its own addresses and the
 *    internal address of every published range. So a flow holds at most two addresses that
 *    are not pinned (masquerade: inside host, remote; published port: client, internal
 *    address of a range removed since), and the table is sized 2 x maxFlows + own addresses
 *    + MAX_FORWARDS6.
 *  - Routed prefixes (routed6) are tracked but never masqueraded, also inside a masqueraded
 *    prefix; their replies pass untranslated.
 *  - A masqueraded source that leaves through an uplink without an IPv6 address is refused
 *    (nat6_untracked_leak), like any untracked packet that would leak it.
 *  - The extension-header chain is walked (bounded) to the upper layer; NDP, MLD, link-local
 *    and multicast traffic is never tracked or translated (packet-key6.ts).
 *  - Later fragments follow the first one by (src, dst, fragment id).
 * Config: Nat6Config (types.ts). Counters: the engine's `counters`; addressCount.
 */
import { checkCommonConfig, NatEngineBase, NO_IF_ADDR } from './engine-base.js';
import { NO_ADDR } from './addr-table.js';
import { checkAddr6, Family6 } from './family6.js';
import type { Nat6Config, PortForward6 } from './types.js';

/** Most published ranges (each pins its internal address). */
export const MAX_FORWARDS6 = 1024;

export class NatEngine6 extends NatEngineBase {
  /** Own address per interface id (null: none), as configured. */
  readonly ifAddr6: readonly (Uint32Array | null)[];
  private readonly fam6: Family6;

  constructor(cfg: Nat6Config) {
    if (!Array.isArray(cfg.ifAddr6)) throw new Error('nat6.ifAddr6: must be an array (one entry per interface id)');
    cfg.ifAddr6.forEach((a, i) => a === null || checkAddr6(a, `nat6.ifAddr6[${i}]`));
    checkCommonConfig(cfg, cfg.ifAddr6.length);
    const capacity = 2 * cfg.maxFlows + cfg.ifAddr6.length + MAX_FORWARDS6;
    const seed = cfg.seed ?? Math.floor(Math.random() * 0x100000000);
    const fam = new Family6(capacity, seed ^ 0x2545f491, cfg.masqueradeSources6 ?? [], cfg.routed6 ?? []);
    const ifVal = Uint32Array.from(cfg.ifAddr6, (a) => (a === null ? NO_IF_ADDR : fam.addrs.pin(a)));
    super({ ...cfg, seed }, fam, ifVal);
    this.fam6 = fam;
    this.ifAddr6 = cfg.ifAddr6.map((a) => (a === null ? null : a.slice()));
    for (const f of cfg.forwards6 ?? []) this.addForward(f);
  }

  /** Addresses interned now (the engine's own, published, and those of flows). */
  get addressCount(): number {
    return this.fam6.addrs.size;
  }

  /** Source address that is masqueraded out of the uplink. */
  isMasqSource(a: Uint32Array): boolean {
    return this.fam6.inMasq(a, 0);
  }

  addForward(f: PortForward6): void {
    checkAddr6(f.internalIp, 'nat6.forwards6.internalIp');
    if (this.published.count >= MAX_FORWARDS6) throw new Error(`nat6.forwards6: at most ${MAX_FORWARDS6} published ranges`);
    this.published.check(f);
    this.published.add(f, this.fam6.addrs.pin(f.internalIp));
  }

  override removeForward(proto: number, externalPort: number): boolean {
    const r = this.published.remove(proto, externalPort);
    if (r === null) return false;
    this.fam6.addrs.release(r.internalVal);
    return true;
  }

  listForwards(): PortForward6[] {
    return this.published.all().map((p) => ({
      proto: p.proto,
      externalPort: p.externalPort,
      externalPortEnd: p.externalPortEnd,
      internalIp: this.fam6.addrs.address(p.internalVal),
      internalPort: p.internalPort,
    }));
  }

  /** Flow id whose ORIGINAL or REPLY tuple matches (ICMPv6: sport = dport = echo id, icmpType 128 or 129), or -1. */
  find(proto: number, src: Uint32Array, dst: Uint32Array, sport: number, dport: number, icmpType = 128): number {
    const a = this.fam6.addrs;
    const s = a.find(src);
    const d = a.find(dst);
    if (s === NO_ADDR || d === NO_ADDR) return -1;
    return this.findFlow(proto, s, d, sport, dport, icmpType);
  }
}
