/*
 * The TCP reset a host sends for a segment to a closed port (RFC 793 "Reset Generation"),
 * shared by IPv4 and IPv6 local delivery: ports swapped; with ACK set the reset carries the
 * segment's acknowledgment number as its sequence number, otherwise it acknowledges the
 * segment (its data plus SYN and FIN). Never call it for a reset.
 */
import { TCP_FLAG_ACK, TCP_FLAG_FIN, TCP_FLAG_RST, TCP_FLAG_SYN, TCP_MIN_HEADER_LEN, type TcpView } from '../wire/tcp.js';

/** Fill the 20-byte header `rst` (checksum not yet) answering the segment `t`. */
export function fillTcpReset(t: TcpView, rst: TcpView): void {
  const flags = t.flags;
  rst.srcPort = t.dstPort;
  rst.dstPort = t.srcPort;
  if ((flags & TCP_FLAG_ACK) !== 0) {
    rst.seq = t.ack;
    rst.flags = TCP_FLAG_RST;
  } else {
    const segLen = t.payloadLength + ((flags & TCP_FLAG_SYN) !== 0 ? 1 : 0) + ((flags & TCP_FLAG_FIN) !== 0 ? 1 : 0);
    rst.ack = (t.seq + segLen) >>> 0;
    rst.flags = TCP_FLAG_RST | TCP_FLAG_ACK;
  }
  rst.buf[rst.off + 12] = (TCP_MIN_HEADER_LEN >>> 2) << 4;
}
