/*
 * Drop reasons: small integer codes (0 = ok) so the fast path can count drops in a typed
 * array indexed by code; DROP_REASON_NAMES maps a code to its snake_case counter name
 * (reported as `drop.<name>`). Wire-level codes come first; a few data-plane reasons that
 * several stages share follow, then the DHCP and DNS services' reasons. New codes are
 * appended at the end.
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

// DHCPv4 (wire.dhcp and the DHCP server) and DNS (wire.dns and the resolver) reasons.
export const DROP_DHCP_TOO_SHORT = 29; // shorter than the fixed BOOTP header + magic cookie (240 bytes)
export const DROP_DHCP_BAD_OP = 30; // op is neither BOOTREQUEST (1) nor BOOTREPLY (2)
export const DROP_DHCP_BAD_HLEN = 31; // hardware address length > 16
export const DROP_DHCP_BAD_COOKIE = 32; // magic cookie is not 99.130.83.99
export const DROP_DHCP_BAD_OPTION = 33; // an option runs past its area, or a known option has an impossible length
export const DROP_DHCP_BAD_OVERLOAD = 34; // option 52 not 1..3, or found inside an overloaded sname/file area
export const DROP_DHCP_NOT_REQUEST = 35; // a BOOTREPLY sent to the server
export const DROP_DHCP_NOT_ETHERNET = 36; // htype/hlen not Ethernet (1/6)
export const DROP_DHCP_RELAYED = 37; // giaddr set: relayed requests are not served
export const DROP_DHCP_BAD_MSG_TYPE = 38; // option 53 missing (plain BOOTP) or not a client message type
export const DROP_DHCP_BAD_REQUEST = 39; // REQUEST/DECLINE without the fields its state needs (RFC 2131 4.3.2)
export const DROP_DHCP_POOL_EXHAUSTED = 40; // DISCOVER with no address to offer
export const DROP_DHCP_TABLE_FULL = 41; // max clients tracked and none can be evicted
export const DROP_DNS_TOO_SHORT = 42; // shorter than the 12-byte header
export const DROP_DNS_BAD_NAME = 43; // label type, label/name length, or a name running past the message
export const DROP_DNS_BAD_POINTER = 44; // compression pointer not strictly backward (loop), into the header, or past the end
export const DROP_DNS_TRUNCATED = 45; // a question or record (or its rdata) runs past the message
export const DROP_DNS_BAD_OPT = 46; // OPT outside the additional section, twice, or with a non-root owner
export const DROP_DNS_NOT_QUERY = 47; // a response (QR=1) where a query was expected
export const DROP_DNS_UNEXPECTED_REPLY = 48; // upstream answer with no matching transaction, or a question that differs

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
  'dhcp_too_short',
  'dhcp_bad_op',
  'dhcp_bad_hlen',
  'dhcp_bad_cookie',
  'dhcp_bad_option',
  'dhcp_bad_overload',
  'dhcp_not_request',
  'dhcp_not_ethernet',
  'dhcp_relayed',
  'dhcp_bad_msg_type',
  'dhcp_bad_request',
  'dhcp_pool_exhausted',
  'dhcp_table_full',
  'dns_too_short',
  'dns_bad_name',
  'dns_bad_pointer',
  'dns_truncated',
  'dns_bad_opt',
  'dns_not_query',
  'dns_unexpected_reply',
];

/** Number of codes (size a per-reason counter array with this). */
export const DROP_REASON_COUNT = DROP_REASON_NAMES.length;

/** Count one drop by reason name in a control-plane table (`{ dhcp_bad_cookie: 3 }`). */
export function countDrop(table: Record<string, number>, code: number): void {
  const n = dropReasonName(code);
  table[n] = (table[n] ?? 0) + 1;
}

/** Name for a code; "unknown_<code>" for codes outside the table. */
export function dropReasonName(code: number): string {
  return DROP_REASON_NAMES[code] ?? `unknown_${code}`;
}
