/*
 * Wire-level drop reasons: what the protocol views' checkLen() return when a header is not
 * sound or not within the bytes available. Small integer codes (0 = ok) so the fast path
 * counts a drop with one typed-array increment. These are the first entries of the data
 * plane's one drop-reason registry (src/core/drops.ts), which adds the reasons of the
 * elements and gives every reason its description; a code means the same thing everywhere.
 */

export const DROP_OK = 0;

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

// IPv6 wire reasons (Ipv6View.checkLen, Ipv6ExtWalker.walk, Icmpv6View.checkLen/checkNdp).
export const DROP_IPV6_TOO_SHORT = 17;
export const DROP_IPV6_BAD_VERSION = 18;
export const DROP_IPV6_BAD_LEN = 19; // 40 + payload length > available
export const DROP_IPV6_EXT_TRUNCATED = 20; // an extension header runs past the packet
export const DROP_IPV6_EXT_HBH_NOT_FIRST = 21; // hop-by-hop options anywhere but right after the header
export const DROP_IPV6_EXT_TOO_MANY = 22; // more than IPV6_EXT_MAX_HEADERS extension headers
export const DROP_IPV6_EXT_TOO_LONG = 23; // chain longer than IPV6_EXT_MAX_BYTES
export const DROP_IPV6_EXT_BAD_LEN = 24; // an option runs past its header; fragment length not a multiple of 8
export const DROP_IPV6_EXT_BAD = 25; // a fragment header inside a fragment
export const DROP_ICMPV6_TOO_SHORT = 26;
export const DROP_ICMPV6_BAD_CSUM = 27;
export const DROP_NDP_TOO_SHORT = 28; // shorter than the fixed part of its NDP message type
export const DROP_NDP_BAD = 29; // fails RFC 4861 validation (hop limit, code, target, addresses)
export const DROP_NDP_BAD_OPTION = 30; // an option of length 0 or running past the message

// DHCPv4 and DNS message soundness (DhcpView.checkLen, DnsView.checkLen and the name reader).
export const DROP_DHCP_TOO_SHORT = 31; // shorter than the fixed BOOTP header + magic cookie (240 bytes)
export const DROP_DHCP_BAD_OP = 32; // op is neither BOOTREQUEST (1) nor BOOTREPLY (2)
export const DROP_DHCP_BAD_HLEN = 33; // hardware address length > 16
export const DROP_DHCP_BAD_COOKIE = 34; // magic cookie is not 99.130.83.99
export const DROP_DHCP_BAD_OPTION = 35; // an option runs past its area, or a known option has an impossible length
export const DROP_DHCP_BAD_OVERLOAD = 36; // option 52 not 1..3, or found inside an overloaded sname/file area
export const DROP_DNS_TOO_SHORT = 37; // shorter than the 12-byte header
export const DROP_DNS_BAD_NAME = 38; // label type, label/name length, or a name running past the message
export const DROP_DNS_BAD_POINTER = 39; // compression pointer not strictly backward (loop), into the header, or past the end
export const DROP_DNS_TRUNCATED = 40; // a question or record (or its rdata) runs past the message
export const DROP_DNS_BAD_OPT = 41; // OPT outside the additional section, twice, or with a non-root owner

/** Names of the codes above, indexed by code (reported as drops.<name>). */
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
  'dhcp_too_short',
  'dhcp_bad_op',
  'dhcp_bad_hlen',
  'dhcp_bad_cookie',
  'dhcp_bad_option',
  'dhcp_bad_overload',
  'dns_too_short',
  'dns_bad_name',
  'dns_bad_pointer',
  'dns_truncated',
  'dns_bad_opt',
];

/** Number of wire codes. */
export const DROP_REASON_COUNT = DROP_REASON_NAMES.length;

/** Name for a wire code; "unknown_<code>" outside the table. */
export function dropReasonName(code: number): string {
  return DROP_REASON_NAMES[code] ?? `unknown_${code}`;
}
