/*
 * What the conntrack/NAT engine (engine-base.ts) needs from an address family, so one engine
 * serves IPv4 (family4.ts) and IPv6 (family6.ts):
 *
 *   KeyParser       the packet's conntrack key read into reused fields (addresses as 32-bit
 *                   "address values": the IPv4 address itself, or an IPv6 address's interned
 *                   id, addr-table.ts), and the key of the packet quoted in an ICMP error
 *   HeaderRewriter  writes a flow's address values and ports into the packet with incremental
 *                   checksums (complete: RFC 1624; virtio NEEDS_CSUM: as a sum)
 *   QuoteEditor     the same for the packet quoted inside an ICMP error, keeping the error's
 *                   own checksum right
 *   NatFamily       the three above plus the family's address policy (masquerade, leaks),
 *                   protocol numbers, names and the lifetime of address values (AddrRefs)
 *
 * The engine never branches on the family; the tables (FlowTable, FlowIndex, PortPicker,
 * SourceCounts, FragmentCache) only ever see 32-bit address values.
 */

import { NAT_DROP_REASON_NAMES, NAT6_DROP_REASON_NAMES } from './types.js';

/* What KeyParser.parse found. */
export const PK_FLOW = 0; // a packet of a trackable flow (TCP, UDP, ICMP echo, other protocol)
export const PK_MALFORMED = 1;
export const PK_LATER_FRAGMENT = 2;
export const PK_ICMP_ERROR = 3; // destination unreachable, time exceeded, parameter problem (, packet too big)
export const PK_UNTRACKED = 4; // other ICMP messages (NDP among them); IPv6 link-local and multicast

/** ICMP and ICMPv6 errors both quote the packet after an 8-byte header. */
export const ERR_QUOTE_AT = 8;

/* What a QuoteEditor found in the quoted packet. */
export const Q_OTHER = 0;
export const Q_PORTS = 1; // TCP or UDP
export const Q_ECHO = 2; // ICMP echo request or reply

/** The current packet's conntrack key, filled by KeyParser.parse (reused per packet). */
export interface FlowKey {
  /** IP protocol of the upper layer. */
  proto: number;
  /** Key protocol (ICMP echo: KP_ICMP_REQ / KP_ICMP_REP, see flow-index.ts). */
  kp: number;
  /** Address values (-1: an IPv6 address no flow holds). */
  src: number;
  dst: number;
  /** Ports; the echo identifier for ICMP echo. */
  sport: number;
  dport: number;
  tcpFlags: number;
  /** Bytes of the packet (for the flow's counters). */
  total: number;
  /** Absolute offset and length of the upper-layer message. */
  l4: number;
  l4len: number;
  /** A first fragment with more to come: later ones are matched by (src, dst, fragId, fragProto). */
  more: boolean;
  fragId: number;
  fragProto: number;
}

/** The FlowKey fields, reset by every parse (a base for the families' key parsers). */
export abstract class FlowKeyFields implements FlowKey {
  proto = 0;
  kp = 0;
  src = 0;
  dst = 0;
  sport = 0;
  dport = 0;
  tcpFlags = 0;
  total = 0;
  l4 = 0;
  l4len = 0;
  more = false;
  fragId = 0;
  fragProto = 0;
}

export interface KeyParser extends FlowKey {
  /** Read the key of the packet at buf[ipOff, ipOff+ipLen); returns PK_*. */
  parse(buf: Uint8Array, ipOff: number, ipLen: number): number;
  /** Read the key of the packet quoted in an ICMP error (header at `inner`, `avail` bytes); false when it is not trackable. */
  parseQuoted(buf: Uint8Array, inner: number, avail: number): boolean;
}

export interface HeaderRewriter {
  /** After reset: upper-layer protocol (none for a later fragment), its offset and length. */
  proto: number;
  l4: number;
  l4len: number;
  /** Make the packet at buf[ipOff, ipOff+len) the current one (its header was checked). */
  reset(buf: Uint8Array, ipOff: number, len: number, partialCsum: boolean): this;
  /** Source address value (and its share of the L4 checksum unless `headerOnly`, e.g. a later fragment). */
  setSrc(v: number, headerOnly?: boolean): void;
  setDst(v: number, headerOnly?: boolean): void;
  setSrcPort(v: number): void;
  setDstPort(v: number): void;
  setIcmpId(v: number): void;
}

export interface QuoteEditor {
  /** Q_PORTS, Q_ECHO or Q_OTHER: what the quoted packet carries (after reset). */
  kind: number;
  /** The ICMP error message at buf[icmp, icmp+len). */
  reset(buf: Uint8Array, icmp: number, len: number): this;
  setSrcAddr(v: number): void;
  setDstAddr(v: number): void;
  /** The quoted TCP/UDP source (0) or destination (2) port. */
  setPort(at: 0 | 2, v: number): void;
  setIcmpId(v: number): void;
}

/** Flows hold the address values of their tuples (IPv6: interned ids); null where values are addresses. */
export interface AddrRefs {
  hold(v: number): void;
  release(v: number): void;
}

/** A family's numbers and names. */
export interface FamilyInfo {
  /** The IP version of the packets. */
  version: 4 | 6;
  /** ICMP or ICMPv6, its conntrack name, its echo types. */
  icmpProto: number;
  icmpName: string;
  echoRequest: number;
  echoReply: number;
  /** Verdict names (types.ts): the drop reasons of the registry with the same names. */
  dropNames: readonly string[];
}

export const FAMILY4: FamilyInfo = { version: 4, icmpProto: 1, icmpName: 'icmp', echoRequest: 8, echoReply: 0, dropNames: NAT_DROP_REASON_NAMES };
export const FAMILY6: FamilyInfo = { version: 6, icmpProto: 58, icmpName: 'icmpv6', echoRequest: 128, echoReply: 129, dropNames: NAT6_DROP_REASON_NAMES };

export interface NatFamily {
  readonly info: FamilyInfo;
  readonly key: KeyParser;
  readonly rw: HeaderRewriter;
  /** A second set for ICMP errors: the quoted packet's key, the quote, the error's own header. */
  readonly quotedKey: KeyParser;
  readonly quote: QuoteEditor;
  readonly outer: HeaderRewriter;
  readonly refs: AddrRefs | null;
  /** Bytes of preallocated family memory (address table). */
  readonly memoryBytes: number;
  /** A new flow is made of the key: turn key.src/key.dst into values a flow may hold (a dry run: without holding anything). */
  bindKey(readOnly: boolean): void;
  /** Source address value that is masqueraded out of the uplink. */
  isMasqSource(v: number): boolean;
  /** The untracked packet at ipOff comes from a masqueraded source (leaving through the uplink it would leak it). */
  leaks(buf: Uint8Array, ipOff: number, ipLen: number): boolean;
  /** Text of an address value (control plane). */
  addrText(v: number): string;
}
