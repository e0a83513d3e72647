/*
 * The conntrack key of one IPv4 packet (family.ts KeyParser), read through the wire views into
 * reused fields: protocol and key protocol (ICMP echo requests and replies are different
 * keys, see flow-index.ts), addresses, ports (the echo id for ICMP), TCP flags, fragment
 * fields and the L4 offset. `parse` returns what kind of packet it is; nothing is allocated.
 */
import { ICMP_DEST_UNREACH, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, ICMP_HEADER_LEN, ICMP_PARAM_PROBLEM, ICMP_TIME_EXCEEDED, IcmpView } from '../wire/icmp.js';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPV4_FLAG_MF, IPV4_FRAG_OFF_MASK, Ipv4View } from '../wire/ipv4.js';
import { TCP_MIN_HEADER_LEN, TcpView } from '../wire/tcp.js';
import { UDP_HEADER_LEN, UdpView } from '../wire/udp.js';
import { FlowKeyFields, PK_FLOW, PK_ICMP_ERROR, PK_LATER_FRAGMENT, PK_MALFORMED, PK_UNTRACKED, type KeyParser } from './family.js';
import { KP_ICMP_REP, KP_ICMP_REQ } from './flow-index.js';

export class PacketKey extends FlowKeyFields implements KeyParser {
  readonly ip = new Ipv4View();
  private readonly tcp = new TcpView();
  private readonly udp = new UdpView();
  private readonly icmp = new IcmpView();
  /** Flags + fragment offset word. */
  frag = 0;
  headerLen = 0;

  parse(buf: Uint8Array, ipOff: number, ipLen: number): number {
    const v = this.ip.reset(buf, ipOff, ipLen);
    if (v.checkLen() !== 0) return PK_MALFORMED;
    const proto = v.protocol;
    this.proto = proto;
    this.src = v.src;
    this.dst = v.dst;
    const frag = (this.frag = v.flagsFrag);
    this.more = (frag & IPV4_FLAG_MF) !== 0;
    this.fragId = v.id;
    this.fragProto = proto;
    this.total = v.totalLength;
    this.headerLen = v.headerLen;
    this.l4 = v.payloadOffset;
    const l4len = (this.l4len = this.total - this.headerLen);
    this.sport = 0;
    this.dport = 0;
    this.tcpFlags = 0;
    if ((frag & IPV4_FRAG_OFF_MASK) !== 0) return PK_LATER_FRAGMENT;
    if (proto === IPPROTO_TCP) {
      if (l4len < TCP_MIN_HEADER_LEN) return PK_MALFORMED;
      const t = this.tcp.reset(buf, this.l4, l4len);
      this.sport = t.srcPort;
      this.dport = t.dstPort;
      this.tcpFlags = t.flags;
      this.kp = IPPROTO_TCP;
    } else if (proto === IPPROTO_UDP) {
      if (l4len < UDP_HEADER_LEN) return PK_MALFORMED;
      const u = this.udp.reset(buf, this.l4, l4len);
      this.sport = u.srcPort;
      this.dport = u.dstPort;
      this.kp = IPPROTO_UDP;
    } else if (proto === IPPROTO_ICMP) {
      if (l4len < ICMP_HEADER_LEN) return PK_MALFORMED;
      const c = this.icmp.reset(buf, this.l4, l4len);
      const type = c.type;
      if (type === ICMP_ECHO_REQUEST) this.kp = KP_ICMP_REQ;
      else if (type === ICMP_ECHO_REPLY) this.kp = KP_ICMP_REP;
      else if (type === ICMP_DEST_UNREACH || type === ICMP_TIME_EXCEEDED || type === ICMP_PARAM_PROBLEM) return PK_ICMP_ERROR;
      else return PK_UNTRACKED;
      this.sport = this.dport = c.id;
    } else {
      this.kp = proto;
    }
    return PK_FLOW;
  }

  /** Read the key of the packet quoted in an ICMP error (header at `inner`, `avail` bytes); false when it is not trackable. */
  parseQuoted(buf: Uint8Array, inner: number, avail: number): boolean {
    const v = this.ip.reset(buf, inner, avail);
    if (v.checkHeader() !== 0 || v.headerLen + 8 > avail || v.isLaterFragment) return false;
    const proto = v.protocol;
    this.proto = proto;
    this.src = v.src;
    this.dst = v.dst;
    this.l4 = v.payloadOffset;
    this.sport = 0;
    this.dport = 0;
    if (proto === IPPROTO_TCP || proto === IPPROTO_UDP) {
      // both views put the ports at the same offsets; only 8 bytes are guaranteed here
      const u = this.udp.reset(buf, this.l4, 8);
      this.sport = u.srcPort;
      this.dport = u.dstPort;
      this.kp = proto;
    } else if (proto === IPPROTO_ICMP) {
      const c = this.icmp.reset(buf, this.l4, 8);
      // the quoted packet, inverted, is the tuple we look up: a quoted request is a reply key
      if (c.type === ICMP_ECHO_REQUEST) this.kp = KP_ICMP_REP;
      else if (c.type === ICMP_ECHO_REPLY) this.kp = KP_ICMP_REQ;
      else return false;
      this.sport = this.dport = c.id;
    } else {
      this.kp = proto;
    }
    return true;
  }
}
