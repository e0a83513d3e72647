/*
 * Drop reasons: small integer codes (0 = ok) so the fast path can count drops in a typed
 * array indexed by code; DROP_REASON_NAMES maps a code to its snake_case counter name
 * (reported as `drop.<name>`). Wire-level codes come first; a few data-plane reasons that
 * several stages share follow; IPv6 wire reasons were added after those (codes never move).
 */

export const DROP_OK = 0;

// Wire (header soundness) reasons, returned by the views' checkLen().
export const DROP_ETH_TOO_SHORT = 1;
export const DROP_ARP_TOO_SHORT = 2;
export const DROP_ARP_BAD = 3; // not Ethernet/IPv4 ARP (htype/ptype/hlen/plen)
export const DROP_IPV4_TOO_SHORT = 4;
export const DROP_IPV4_BAD_VERSION = 5;
export const DROP_IPV4_BAD_IHL = 6;
export const DROP_IPV4_BAD_LEN = 7; // total length > available or < header length
export const DROP_IPV4_BAD_CSUM = 8;
export const DROP_ICMP_TOO_SHORT = 9;
export const DROP_ICMP_BAD_CSUM = 10;
export const DROP_UDP_TOO_SHORT = 11;
export const DROP_UDP_BAD_LEN = 12; // length field < 8 or > available
export const DROP_UDP_BAD_CSUM = 13;
export const DROP_TCP_TOO_SHORT = 14;
export const DROP_TCP_BAD_OFF = 15; // data offset < 5 or header beyond available bytes
export const DROP_TCP_BAD_CSUM = 16;

// Shared data-plane reasons.
export const DROP_UNKNOWN_ETHERTYPE = 17;
export const DROP_UNKNOWN_PROTOCOL = 18;
export const DROP_TTL_EXCEEDED = 19;
export const DROP_NO_ROUTE = 20;
export const DROP_ARP_UNRESOLVED = 21;
export const DROP_QUEUE_FULL = 22;
export const DROP_FRAGMENT = 23;
export const DROP_MTU_EXCEEDED = 24;
export const DROP_PORT_DOWN = 25;
export const DROP_NAT_NO_MAPPING = 26;
export const DROP_NAT_TABLE_FULL = 27;
export const DROP_FAULT_INJECTED = 28;

// IPv6 wire reasons (Ipv6View.checkLen, Ipv6ExtWalker.walk, Icmpv6View.checkLen/checkNdp).
export const DROP_IPV6_TOO_SHORT = 29;
export const DROP_IPV6_BAD_VERSION = 30;
export const DROP_IPV6_BAD_LEN = 31; // 40 + payload length > available
export const DROP_IPV6_EXT_TRUNCATED = 32; // an extension header runs past the packet
export const DROP_IPV6_EXT_HBH_NOT_FIRST = 33; // hop-by-hop options anywhere but right after the header
export const DROP_IPV6_EXT_TOO_MANY = 34; // more than IPV6_EXT_MAX_HEADERS extension headers
export const DROP_IPV6_EXT_TOO_LONG = 35; // chain longer than IPV6_EXT_MAX_BYTES
export const DROP_IPV6_EXT_BAD_LEN = 36; // an option runs past its header; fragment length not a multiple of 8
export const DROP_IPV6_EXT_BAD = 37; // a fragment header inside a fragment
export const DROP_ICMPV6_TOO_SHORT = 38;
export const DROP_ICMPV6_BAD_CSUM = 39;
export const DROP_NDP_TOO_SHORT = 40; // shorter than the fixed part of its NDP message type
export const DROP_NDP_BAD = 41; // fails RFC 4861 validation (hop limit, code, target, addresses)
export const DROP_NDP_BAD_OPTION = 42; // an option of length 0 or running past the message

export const DROP_REASON_NAMES: readonly string[] = [
  'ok',
  'eth_too_short',
  'arp_too_short',
  'arp_bad',
  'ipv4_too_short',
  'ipv4_bad_version',
  'ipv4_bad_ihl',
  'ipv4_bad_len',
  'ipv4_bad_csum',
  'icmp_too_short',
  'icmp_bad_csum',
  'udp_too_short',
  'udp_bad_len',
  'udp_bad_csum',
  'tcp_too_short',
  'tcp_bad_off',
  'tcp_bad_csum',
  'unknown_ethertype',
  'unknown_protocol',
  'ttl_exceeded',
  'no_route',
  'arp_unresolved',
  'queue_full',
  'fragment',
  'mtu_exceeded',
  'port_down',
  'nat_no_mapping',
  'nat_table_full',
  'fault_injected',
  'ipv6_too_short',
  'ipv6_bad_version',
  'ipv6_bad_len',
  'ipv6_ext_truncated',
  'ipv6_ext_hbh_not_first',
  'ipv6_ext_too_many',
  'ipv6_ext_too_long',
  'ipv6_ext_bad_len',
  'ipv6_ext_bad',
  'icmpv6_too_short',
  'icmpv6_bad_csum',
  'ndp_too_short',
  'ndp_bad',
  'ndp_bad_option',
];

/** Number of codes (size a per-reason counter array with this). */
export const DROP_REASON_COUNT = DROP_REASON_NAMES.length;

/** Name for a code; "unknown_<code>" for codes outside the table. */
export function dropReasonName(code: number): string {
  return DROP_REASON_NAMES[code] ?? `unknown_${code}`;
}
