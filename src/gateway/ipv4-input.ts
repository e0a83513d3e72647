/*
 * IPv4 input checks of a gateway interface (what Linux's ip_rcv does before the routing
 * decision), through the wire views: a sound header within the frame, a correct header
 * checksum, no martian source (0, multicast, broadcast, loopback), a unicast destination
 * (not multicast, limited or the interface's subnet broadcast), and a sound TCP/UDP header
 * for whole packets and first fragments (NAT and forwarding rely on it). Returns 0 or the
 * drop reason; allocation-free, views reused.
 */
import { DROP_BAD_SOURCE, DROP_IPV4_NOT_UNICAST } from '../core/drops.js';
import { DROP_IPV4_BAD_CSUM } from '../wire/drop.js';
import { IPPROTO_TCP, IPPROTO_UDP, Ipv4View } from '../wire/ipv4.js';
import { TcpView } from '../wire/tcp.js';
import { UdpView } from '../wire/udp.js';

export class Ipv4InputCheck {
  readonly ip = new Ipv4View();
  private readonly tcp = new TcpView();
  private readonly udp = new UdpView();

  /** Check the packet at buf[off, off+len) arriving on an interface whose subnet broadcast is `broadcast`. */
  check(buf: Uint8Array, off: number, len: number, broadcast: number): number {
    const v = this.ip.reset(buf, off, len);
    const bad = v.checkLen();
    if (bad !== 0) return bad;
    if (!v.verifyChecksum()) return DROP_IPV4_BAD_CSUM;
    const src = v.src;
    if (src === 0 || src >>> 28 === 14 || src === 0xffffffff || src >>> 24 === 127) return DROP_BAD_SOURCE;
    const dst = v.dst;
    if (dst >>> 28 === 14 || dst === 0xffffffff || dst === broadcast) return DROP_IPV4_NOT_UNICAST;
    if (v.isLaterFragment) return 0;
    const proto = v.protocol;
    const l4 = v.payloadOffset;
    const l4len = v.payloadLength;
    if (proto === IPPROTO_TCP) return this.tcp.reset(buf, l4, l4len).checkLen();
    if (proto === IPPROTO_UDP && !v.moreFragments) return this.udp.reset(buf, l4, l4len).checkLen();
    return 0;
  }
}
