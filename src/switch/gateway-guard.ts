/*
 * Gateway address guard: part of the switch of a bridge with a gateway. Only the gateway may
 * speak for the gateway's addresses, so from every other port the switch drops (as
 * gateway_claimed)
 *   - ARP whose sender address is a gateway IPv4 address (a gratuitous claim or a spoofed
 *     reply would move the tenants' ARP entry for their router to the sender);
 *   - neighbour advertisements whose target is a gateway IPv6 address (global or
 *     link-local), and neighbour solicitations sent from one (they update the receiver's
 *     cache entry of the source).
 * Without port security a tenant can still claim another tenant's address, as on a kernel
 * bridge; the guard keeps the one address every tenant depends on. It applies whether port
 * security is on or not, and costs a type test per frame: only ARP and IPv6 that is not
 * plain TCP or UDP is looked at further. No allocation per frame.
 */
import { IPPROTO_TCP, IPPROTO_UDP } from '../wire/ipv4.js';
import { IPPROTO_ICMPV6, Ipv6ExtWalker } from '../wire/ipv6.js';
import { ETH_HEADER_LEN, ETHERTYPE_ARP, ETHERTYPE_IPV6 } from '../wire/ethernet.js';
import { IP6_WORDS, ip6EqualsAt } from '../wire/ip6.js';
import { NDP_NEIGHBOR_ADVERT, NDP_NEIGHBOR_SOLICIT } from '../wire/icmpv6.js';

/** ARP: Ethernet/IPv4 header fields, then the sender protocol address at 14. */
const ARP_SPA = 14;
const ARP_MIN = 28;
const IPV6_LEN = 40;
const IPV6_SRC = 8;
/** ICMPv6 NS/NA: type, code, checksum, 4 bytes, then the target address. */
const ND_TARGET = 8;
const ND_MIN = 24;

export class GatewayGuard {
  private readonly v4: Uint32Array;
  private readonly v6: Uint32Array[];
  private readonly v6Count: number;
  private readonly walker = new Ipv6ExtWalker();

  constructor(ipv4: number[], ipv6: Uint32Array[]) {
    this.v4 = Uint32Array.from(ipv4);
    this.v6 = ipv6.map((a) => Uint32Array.from(a.subarray(0, IP6_WORDS)));
    this.v6Count = ipv6.length;
  }

  get empty(): boolean {
    return this.v4.length === 0 && this.v6Count === 0;
  }

  /** The frame at e (Ethernet header, len bytes) claims one of the gateway's addresses. */
  claims(b: Uint8Array, e: number, len: number): boolean {
    const type = (b[e + 12] << 8) | b[e + 13];
    if (type === ETHERTYPE_ARP) return this.arpClaims(b, e + ETH_HEADER_LEN, len - ETH_HEADER_LEN);
    if (type !== ETHERTYPE_IPV6 || this.v6Count === 0 || len < ETH_HEADER_LEN + IPV6_LEN) return false;
    const ip = e + ETH_HEADER_LEN;
    const nh = b[ip + 6];
    if (nh === IPPROTO_TCP || nh === IPPROTO_UDP) return false;
    const w = this.walker;
    const avail = Math.min(len - ETH_HEADER_LEN, IPV6_LEN + ((b[ip + 4] << 8) | b[ip + 5]));
    if (w.walk(b, ip, avail) !== 0 || w.protocol !== IPPROTO_ICMPV6 || w.isLaterFragment) return false;
    if (ip + avail - w.offset < ND_MIN) return false;
    const t = b[w.offset];
    if (t === NDP_NEIGHBOR_ADVERT) return this.isOurs6(b, w.offset + ND_TARGET);
    if (t === NDP_NEIGHBOR_SOLICIT) return this.isOurs6(b, ip + IPV6_SRC);
    return false;
  }

  private arpClaims(b: Uint8Array, a: number, len: number): boolean {
    if (len < ARP_MIN || b[a + 4] !== 6 || b[a + 5] !== 4) return false;
    const spa = ((b[a + ARP_SPA] << 24) | (b[a + ARP_SPA + 1] << 16) | (b[a + ARP_SPA + 2] << 8) | b[a + ARP_SPA + 3]) >>> 0;
    const v4 = this.v4;
    for (let i = 0; i < v4.length; i++) if (v4[i] === spa) return true;
    return false;
  }

  private isOurs6(b: Uint8Array, at: number): boolean {
    for (let i = 0; i < this.v6Count; i++) if (ip6EqualsAt(b, at, this.v6[i])) return true;
    return false;
  }
}
