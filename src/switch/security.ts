/*
 * Port security element (security/PORT), like libvirt's clean-traffic filter: spliced into a
 * port's ingress link (after the port's faults, before the switch), it lets the port send
 * only as itself.
 *
 * Ports:   input `in`, output `out`.
 * Config:  macs     source MACs the port may use (default: its device's MAC); with
 *                   `learn` the first source MAC seen is locked in instead
 *          ipv4     IPv4 source addresses the port may use (default: its configured
 *                   addresses); 0.0.0.0 is allowed for DHCP and ARP probes; and the
 *                   address the bridge's DHCP server leased to the port's MAC (leasedIpv4,
 *                   set by the data plane's DHCP wiring)
 *          ipv6     IPv6 source addresses the port may use (default: its configured
 *                   addresses), besides those its MAC gives it: the EUI-64 link-local
 *                   address and the SLAAC address in each of `prefixes6` (the bridge's /64);
 *                   :: is allowed for duplicate address detection
 * Does:    drops frames from any other source MAC (spoofed_mac), ARP whose sender MAC or
 *          address is not the port's (spoofed_arp), IPv4 from any other source address
 *          (spoofed_ipv4), IPv6 likewise (spoofed_ipv6); NDP whose link-layer address
 *          option is not the port's MAC, or an advertisement for an address not the port's
 *          (spoofed_nd); router advertisements and redirects, which only the gateway sends
 *          (ra_guard, RFC 6105; an extension chain that does not walk is dropped too, as
 *          RFC 7113 asks). Other ethertypes are checked on the MAC only.
 * Counters: the drops above on the port's record; element counters passed, dropped.
 *
 * The switch keeps the MACs of a secured port where they are: another port cannot move them
 * (see Switch.lockPort). No allocation per frame.
 */
import { DROP_RA_GUARD, DROP_SPOOFED_ARP, DROP_SPOOFED_IPV4, DROP_SPOOFED_IPV6, DROP_SPOOFED_MAC, DROP_SPOOFED_ND } from '../core/drops.js';
import { Wrapper, type DataPlaneContext, type PortRecord } from '../core/element.js';
import { VNET_HDR_LEN } from '../core/frame.js';
import { ArpView } from '../wire/arp.js';
import { EthernetView, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from '../wire/ethernet.js';
import { Icmpv6View, NDP_NEIGHBOR_ADVERT, NDP_OPT_SOURCE_LLADDR, NDP_OPT_TARGET_LLADDR, NDP_REDIRECT, NDP_ROUTER_ADVERT, NDP_ROUTER_SOLICIT, NdpOptionWalker } from '../wire/icmpv6.js';
import { IP6_WORDS, ip6ToString, linkLocalFromMac } from '../wire/ip6.js';
import { Ipv4View } from '../wire/ipv4.js';
import { IPPROTO_ICMPV6, Ipv6ExtWalker, Ipv6View } from '../wire/ipv6.js';
import { macToString } from '../wire/mac.js';
import { ip4ToString } from '../wire/ip4.js';

export interface PortSecurityParams {
  record: PortRecord;
  /** Allowed source MACs; empty with `learn` means: lock the first one seen. */
  macs: number[];
  learn: boolean;
  ipv4: number[];
  ipv6?: Uint32Array[];
  /** /64 prefixes whose SLAAC (EUI-64) address of an allowed MAC the port may use. */
  prefixes6?: Uint32Array[];
}

const MAX_ADDRESSES = 16;

export class PortSecurity extends Wrapper {
  readonly kind = 'PortSecurity';
  override counters = { passed: 0, dropped: 0 };
  private readonly record: PortRecord;
  private readonly macs = new Float64Array(MAX_ADDRESSES);
  private macCount: number;
  private readonly learn: boolean;
  private readonly ips = new Uint32Array(MAX_ADDRESSES);
  private readonly ipCount: number;
  /** An address the DHCP server bound to one of this port's MACs (0: none). */
  leasedIpv4 = 0;
  private readonly eth = new EthernetView();
  private readonly arp = new ArpView();
  private readonly ip = new Ipv4View();
  private readonly ip6 = new Ipv6View();
  private readonly walker = new Ipv6ExtWalker();
  private readonly icmp6 = new Icmpv6View();
  private readonly options = new NdpOptionWalker();
  private readonly ips6: Uint32Array;
  private readonly ip6Count: number;
  private readonly prefixes6: Uint32Array;
  private readonly prefix6Count: number;
  private readonly addr = new Uint32Array(IP6_WORDS);
  private readonly iid = new Uint32Array(IP6_WORDS);

  constructor(name: string, ctx: DataPlaneContext, p: PortSecurityParams) {
    super(name, ctx);
    if (p.macs.length > MAX_ADDRESSES || p.ipv4.length > MAX_ADDRESSES) throw new RangeError(`port security: at most ${MAX_ADDRESSES} MACs and addresses per port`);
    this.record = p.record;
    p.macs.forEach((m, i) => (this.macs[i] = m));
    this.macCount = p.macs.length;
    this.learn = p.learn;
    p.ipv4.forEach((a, i) => (this.ips[i] = a));
    this.ipCount = p.ipv4.length;
    const v6 = p.ipv6 ?? [];
    const pre = p.prefixes6 ?? [];
    if (v6.length > MAX_ADDRESSES || pre.length > MAX_ADDRESSES) throw new RangeError(`port security: at most ${MAX_ADDRESSES} IPv6 addresses and prefixes per port`);
    this.ips6 = new Uint32Array(MAX_ADDRESSES * IP6_WORDS);
    v6.forEach((a, i) => this.ips6.set(a, i * IP6_WORDS));
    this.ip6Count = v6.length;
    this.prefixes6 = new Uint32Array(MAX_ADDRESSES * IP6_WORDS);
    pre.forEach((a, i) => this.prefixes6.set(a, i * IP6_WORDS));
    this.prefix6Count = pre.length;
  }

  override config(): string {
    const macs = this.macCount > 0 ? Array.from(this.macs.subarray(0, this.macCount), macToString).join(' ') : this.learn ? 'first seen' : 'none';
    const v6: string[] = [];
    for (let i = 0; i < this.ip6Count; i++) v6.push(ip6ToString(this.ips6.subarray(i * IP6_WORDS, i * IP6_WORDS + IP6_WORDS)));
    return `${this.record.name}: macs ${macs}; ipv4 ${Array.from(this.ips.subarray(0, this.ipCount), ip4ToString).join(' ') || 'none'}; ipv6 ${[...v6, 'link-local', ...(this.prefix6Count > 0 ? ['SLAAC'] : [])].join(' ')}`;
  }

  /** The source MACs the port may use now (control plane: the switch locks them). */
  allowedMacs(): number[] {
    return Array.from(this.macs.subarray(0, this.macCount));
  }

  push(_input: number, off: number, len: number): void {
    const b = this.ctx.u8;
    const eth = this.eth.reset(b, off + VNET_HDR_LEN, len);
    if (eth.checkLen() !== 0) return this.out[0].push(off, len); // the switch counts it
    const src = eth.src;
    if (!this.macAllowed(src)) return this.drop(DROP_SPOOFED_MAC);
    const type = eth.etherType;
    if (type === ETHERTYPE_ARP) {
      const a = this.arp.reset(b, eth.payloadOffset, eth.payloadLength);
      if (a.checkLen() === 0 && (a.sha !== src || (a.spa !== 0 && !this.ipAllowed(a.spa)))) return this.drop(DROP_SPOOFED_ARP);
    } else if (type === ETHERTYPE_IPV4) {
      const v = this.ip.reset(b, eth.payloadOffset, eth.payloadLength);
      if (v.checkHeader() === 0 && v.src !== 0 && !this.ipAllowed(v.src)) return this.drop(DROP_SPOOFED_IPV4);
    } else if (type === ETHERTYPE_IPV6) {
      const bad = this.checkIpv6(eth.payloadOffset, eth.payloadLength, src);
      if (bad !== 0) return this.drop(bad);
    }
    this.counters.passed++;
    this.out[0].push(off, len);
  }

  /** 0, or why the IPv6 packet at off may not leave this port. */
  private checkIpv6(off: number, len: number, mac: number): number {
    const b = this.ctx.u8;
    const v = this.ip6.reset(b, off, len);
    if (v.checkLen() !== 0) return 0; // malformed: the gateway counts it, the switch carries what it is
    if (!this.ip6Allowed(v.getSrc(this.addr), mac, true)) return DROP_SPOOFED_IPV6;
    const w = this.walker;
    const chain = w.walk(b, off, v.packetLength);
    if (chain !== 0) return chain;
    if (w.protocol !== IPPROTO_ICMPV6 || w.isLaterFragment) return 0;
    const m = this.icmp6.reset(b, w.offset, off + v.packetLength - w.offset);
    if (m.checkLen() !== 0) return 0;
    const t = m.type;
    if (t === NDP_ROUTER_ADVERT || t === NDP_REDIRECT) return DROP_RA_GUARD;
    if (t < NDP_ROUTER_SOLICIT || t > NDP_NEIGHBOR_ADVERT || m.len < m.optionsOffset - m.off) return 0;
    if (t === NDP_NEIGHBOR_ADVERT && !this.ip6Allowed(m.getTarget(this.addr), mac, false)) return DROP_SPOOFED_ND;
    const o = this.options.resetFrom(m);
    while (o.next()) {
      if ((o.type === NDP_OPT_SOURCE_LLADDR || o.type === NDP_OPT_TARGET_LLADDR) && o.wellFormed && o.linkLayerAddress !== mac) return DROP_SPOOFED_ND;
    }
    return 0;
  }

  /** The port's configured addresses, and the link-local and SLAAC addresses of the MAC it sends from. */
  private ip6Allowed(a: Uint32Array, mac: number, unspecifiedOk: boolean): boolean {
    if ((a[0] | a[1] | a[2] | a[3]) === 0) return unspecifiedOk;
    const list = this.ips6;
    for (let i = 0, k = 0; i < this.ip6Count; i++, k += IP6_WORDS) {
      if (list[k] === a[0] && list[k + 1] === a[1] && list[k + 2] === a[2] && list[k + 3] === a[3]) return true;
    }
    const iid = linkLocalFromMac(mac, this.iid);
    if (a[2] !== iid[2] || a[3] !== iid[3]) return false;
    if (a[0] === iid[0] && a[1] === 0) return true;
    const pre = this.prefixes6;
    for (let i = 0, k = 0; i < this.prefix6Count; i++, k += IP6_WORDS) if (pre[k] === a[0] && pre[k + 1] === a[1]) return true;
    return false;
  }

  private drop(reason: number): void {
    this.counters.dropped++;
    this.record.countDrop(reason);
  }

  private macAllowed(mac: number): boolean {
    const n = this.macCount;
    for (let i = 0; i < n; i++) if (this.macs[i] === mac) return true;
    if (n === 0 && this.learn && !this.ctx.tracer.active) {
      this.macs[0] = mac; // the first MAC seen is locked in
      this.macCount = 1;
      return true;
    }
    return false;
  }

  /** The port may send from this MAC (a configured one, or the one it learned). */
  hasMac(mac: number): boolean {
    for (let i = 0; i < this.macCount; i++) if (this.macs[i] === mac) return true;
    return false;
  }

  private ipAllowed(a: number): boolean {
    if (a === this.leasedIpv4 && a !== 0) return true;
    const n = this.ipCount;
    for (let i = 0; i < n; i++) if (this.ips[i] === a) return true;
    return false;
  }
}
