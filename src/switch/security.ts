/*
 * Port security element (security/PORT), like libvirt's clean-traffic filter: spliced into a
 * port's ingress link (after the port's faults, before the switch), it lets the port send
 * only as itself.
 *
 * Ports:   input `in`, output `out`.
 * Config:  macs     source MACs the port may use (default: its device's MAC); with
 *                   `learn` the first source MAC seen is locked in instead
 *          ipv4     IPv4 source addresses the port may use (default: its configured
 *                   addresses); 0.0.0.0 is allowed for DHCP and ARP probes
 * Does:    drops frames from any other source MAC (spoofed_mac), ARP whose sender MAC or
 *          address is not the port's (spoofed_arp), IPv4 from any other source address
 *          (spoofed_ipv4); VLAN-tagged frames are checked on their inner ethertype. IPv6 and
 *          other ethertypes are checked on the MAC only.
 * Counters: the drops above on the port's record; element counters passed, dropped.
 *
 * The switch keeps the MACs of a secured port where they are: another port cannot move them
 * (see Switch.lockPort). No allocation per frame.
 */
import { DROP_SPOOFED_ARP, DROP_SPOOFED_IPV4, DROP_SPOOFED_MAC } from '../core/drops.js';
import { Wrapper, type DataPlaneContext, type PortRecord } from '../core/element.js';
import { VNET_HDR_LEN } from '../core/frame.js';
import { ArpView } from '../wire/arp.js';
import { EthernetView, ETHERTYPE_ARP, ETHERTYPE_IPV4 } from '../wire/ethernet.js';
import { Ipv4View } from '../wire/ipv4.js';
import { macToString } from '../wire/mac.js';
import { ip4ToString } from '../wire/ip4.js';

export interface PortSecurityParams {
  record: PortRecord;
  /** Allowed source MACs; empty with `learn` means: lock the first one seen. */
  macs: number[];
  learn: boolean;
  ipv4: number[];
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
  private readonly eth = new EthernetView();
  private readonly arp = new ArpView();
  private readonly ip = new Ipv4View();

  constructor(name: string, ctx: DataPlaneContext, p: PortSecurityParams) {
    super(name, ctx);
    if (p.macs.length > MAX_ADDRESSES || p.ipv4.length > MAX_ADDRESSES) throw new RangeError(`port security: at most ${MAX_ADDRESSES} MACs and addresses per port`);
    this.record = p.record;
    p.macs.forEach((m, i) => (this.macs[i] = m));
    this.macCount = p.macs.length;
    this.learn = p.learn;
    p.ipv4.forEach((a, i) => (this.ips[i] = a));
    this.ipCount = p.ipv4.length;
  }

  override config(): string {
    const macs = this.macCount > 0 ? Array.from(this.macs.subarray(0, this.macCount), macToString).join(' ') : this.learn ? 'first seen' : 'none';
    return `${this.record.name}: macs ${macs}; ipv4 ${Array.from(this.ips.subarray(0, this.ipCount), ip4ToString).join(' ') || 'none'}`;
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
    }
    this.counters.passed++;
    this.out[0].push(off, len);
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

  private ipAllowed(a: number): boolean {
    const n = this.ipCount;
    for (let i = 0; i < n; i++) if (this.ips[i] === a) return true;
    return false;
  }
}
