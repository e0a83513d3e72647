/*
 * IPv6 input checks of a gateway interface (what Linux's ipv6_rcv and the extension-header
 * walk do before the routing decision), through the wire views: a sound fixed header within
 * the frame, an extension chain that walks within its bounds, no martian source (multicast,
 * loopback; the unspecified address only for NDP, which the caller checks), no loopback
 * destination, and a sound TCP/UDP header for whole packets and first fragments. Returns 0 or
 * the drop reason; the walk's result (upper-layer protocol and offset) stays in `walker` for
 * the caller. Allocation-free, views reused.
 */
import { DROP_IPV6_BAD_SOURCE, DROP_IPV6_BAD_DEST } from '../core/drops.js';
import { IPV6_DST, IPV6_SRC, Ipv6ExtWalker, Ipv6View } from '../wire/ipv6.js';
import { IPPROTO_TCP, IPPROTO_UDP } from '../wire/ipv4.js';
import { TcpView } from '../wire/tcp.js';
import { UdpView } from '../wire/udp.js';

/** The address at buf[o, o+16) is ::1. */
function isLoopbackAt(buf: Uint8Array, o: number): boolean {
  for (let i = 0; i < 15; i++) if (buf[o + i] !== 0) return false;
  return buf[o + 15] === 1;
}

export class Ipv6InputCheck {
  readonly ip = new Ipv6View();
  readonly walker = new Ipv6ExtWalker();
  private readonly tcp = new TcpView();
  private readonly udp = new UdpView();

  /** Check the packet at buf[off, off+len). */
  check(buf: Uint8Array, off: number, len: number): number {
    const v = this.ip.reset(buf, off, len);
    const bad = v.checkLen();
    if (bad !== 0) return bad;
    const w = this.walker;
    const chain = w.walk(buf, off, v.packetLength);
    if (chain !== 0) return chain;
    if (buf[off + IPV6_SRC] === 0xff || isLoopbackAt(buf, off + IPV6_SRC)) return DROP_IPV6_BAD_SOURCE;
    if (isLoopbackAt(buf, off + IPV6_DST)) return DROP_IPV6_BAD_DEST;
    if (w.isLaterFragment) return 0;
    const proto = w.protocol;
    const l4len = off + v.packetLength - w.offset;
    if (proto === IPPROTO_TCP) return this.tcp.reset(buf, w.offset, l4len).checkLen();
    if (proto === IPPROTO_UDP && !w.moreFragments) return this.udp.reset(buf, w.offset, l4len).checkLen();
    return 0;
  }
}
