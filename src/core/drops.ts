/*
 * The data plane's one drop-reason registry. Every element counts a dropped frame under one
 * of these codes (a typed-array increment on the fast path); the name is what counters,
 * metrics (`tapbridge_port_drops_total{reason}`), traces and the docs call it. The wire
 * layer's header-soundness codes come first with the numbers its views return; the
 * elements' reasons follow. `tapbridge ctl drops` lists this table.
 *
 * Adding a reason: one `reason()` line here, in the section of the element that counts it.
 * `npm run lint:layers` fails when a reason is declared but never counted anywhere.
 */
import { DROP_REASON_NAMES as WIRE_NAMES } from '../wire/drop.js';

export interface DropReasonInfo {
  code: number;
  name: string;
  /** Who counts it. */
  where: string;
  /** One line: what happened to the frame. */
  what: string;
}

const table: DropReasonInfo[] = [{ code: 0, name: 'ok', where: '', what: 'not a drop' }];

function reason(name: string, where: string, what: string): number {
  if (table.some((r) => r.name === name)) throw new Error(`drop reason '${name}' registered twice`);
  table.push({ code: table.length, name, where, what });
  return table.length - 1;
}

/* --- wire: header soundness (codes fixed by src/wire/drop.ts) --- */
const WIRE_WHAT: Record<string, string> = {
  eth_too_short: 'shorter than an Ethernet header (or a VLAN tag cut off)',
  arp_too_short: 'ARP message shorter than 28 bytes',
  arp_bad: 'ARP that is not Ethernet/IPv4 (htype, ptype, hlen or plen)',
  ipv4_too_short: 'shorter than an IPv4 header',
  ipv4_bad_version: 'IP version is not 4',
  ipv4_bad_ihl: 'IPv4 header length below 20 or beyond the frame',
  ipv4_bad_len: 'IPv4 total length beyond the frame or below the header',
  ipv4_bad_csum: 'IPv4 header checksum wrong',
  icmp_too_short: 'ICMP message shorter than its 8-byte header',
  icmp_bad_csum: 'ICMP checksum wrong',
  udp_too_short: 'UDP header cut off',
  udp_bad_len: 'UDP length field below 8 or beyond the packet',
  udp_bad_csum: 'UDP checksum wrong',
  tcp_too_short: 'TCP header cut off',
  tcp_bad_off: 'TCP data offset below 5 or beyond the packet',
  tcp_bad_csum: 'TCP checksum wrong',
  ipv6_too_short: 'shorter than an IPv6 header',
  ipv6_bad_version: 'IP version is not 6',
  ipv6_bad_len: 'IPv6 payload length beyond the frame',
  ipv6_ext_truncated: 'an IPv6 extension header runs past the packet',
  ipv6_ext_hbh_not_first: 'hop-by-hop options not right after the IPv6 header',
  ipv6_ext_too_many: 'more IPv6 extension headers than the walk allows (8)',
  ipv6_ext_too_long: 'IPv6 extension chain longer than the walk allows (1024 bytes)',
  ipv6_ext_bad_len: 'an IPv6 option runs past its header, or a fragment length is not a multiple of 8',
  ipv6_ext_bad: 'a fragment header inside a fragment',
  icmpv6_too_short: 'ICMPv6 message shorter than its header',
  icmpv6_bad_csum: 'ICMPv6 checksum wrong',
  ndp_too_short: 'NDP message shorter than its fixed part',
  ndp_bad: 'NDP message that fails RFC 4861 validation (hop limit, code, target, addresses)',
  ndp_bad_option: 'NDP option of length 0 or running past the message',
  dhcp_too_short: 'shorter than the BOOTP header and magic cookie (240 bytes)',
  dhcp_bad_op: 'BOOTP op neither request nor reply',
  dhcp_bad_hlen: 'hardware address length above 16',
  dhcp_bad_cookie: 'magic cookie is not 99.130.83.99',
  dhcp_bad_option: 'a DHCP option runs past its area or has an impossible length',
  dhcp_bad_overload: 'option 52 not 1..3, or inside an overloaded area',
  dns_too_short: 'shorter than the 12-byte DNS header',
  dns_bad_name: 'bad DNS label type or length, or a name running past the message',
  dns_bad_pointer: 'DNS compression pointer not strictly backward, into the header, or past the end',
  dns_truncated: 'a DNS question or record runs past the message',
  dns_bad_opt: 'OPT record outside the additional section, twice, or with a non-root owner',
};
for (let code = 1; code < WIRE_NAMES.length; code++) {
  const name = WIRE_NAMES[code];
  if (reason(name, 'wire', WIRE_WHAT[name] ?? name.replace(/_/g, ' ')) !== code) throw new Error('drop registry out of step with src/wire/drop.ts');
}

/* --- device ports (src/io/device.ts) --- */
export const DROP_ETH_TOO_LONG = reason('eth_too_long', 'device', 'frame larger than a 64 KiB slot');
export const DROP_TX_QUEUE_FULL = reason('tx_queue_full', 'device', 'the port\'s TX queue was full');
export const DROP_TX_ERROR = reason('tx_error', 'device', 'the kernel refused the frame on transmit');
export const DROP_TX_BUSY = reason('tx_busy', 'device', 'the device would block (EAGAIN): not sent');
export const DROP_PORT_DOWN = reason('port_down', 'device', 'the port is down (ctl link PORT down)');
export const DROP_GSO_UNSUPPORTED = reason('gso_to_non_offload_port', 'device', 'a GSO super-frame for a port without offloads');

/* --- frame memory (src/core/arena.ts users) --- */
export const DROP_NO_FRAME_SLOT = reason('no_frame_slot', 'any', 'no free frame slot to copy or build a frame in');

/* --- graph (src/core/element.ts) --- */
export const DROP_UNCONNECTED = reason('unconnected', 'graph', 'pushed to an output that is not linked to anything');

/* --- switch (src/switch/switch.ts) --- */
export const DROP_SRC_MAC_MULTICAST = reason('src_mac_multicast', 'switch', 'multicast/broadcast source MAC');
export const DROP_SRC_MAC_ZERO = reason('src_mac_zero', 'switch', 'all-zero source MAC');
export const DROP_GATEWAY_CLAIMED = reason('gateway_claimed', 'switch', 'ARP or NDP from a tenant port claiming an address of the gateway');
export const DROP_SAME_PORT = reason('same_port', 'switch', 'destination MAC lives on the ingress port (filtered)');
export const DROP_MAC_MOVE_REFUSED = reason('mac_move_refused', 'switch', "source MAC belongs to another port that keeps its MACs");
export const DROP_PORT_ISOLATED = reason('port_isolated', 'switch', 'from an isolated port to another isolated port');

/* --- port security (src/switch/security.ts) --- */
export const DROP_SPOOFED_MAC = reason('spoofed_mac', 'security', 'source MAC not the port\'s');
export const DROP_SPOOFED_ARP = reason('spoofed_arp', 'security', 'ARP sender MAC or address not the port\'s');
export const DROP_SPOOFED_IPV4 = reason('spoofed_ipv4', 'security', 'IPv4 source address not the port\'s');
export const DROP_SPOOFED_IPV6 = reason('spoofed_ipv6', 'security', 'IPv6 source address not the port\'s (configured, or link-local/SLAAC from its MAC)');
export const DROP_SPOOFED_ND = reason('spoofed_nd', 'security', 'NDP link-layer address option not the port\'s MAC');
export const DROP_RA_GUARD = reason('ra_guard', 'security', 'router advertisement or redirect from a tenant port (RA guard)');

/* --- gateway interface (src/gateway/interface.ts) --- */
export const DROP_NOT_FOR_GATEWAY = reason('l2_not_for_gateway', 'gateway', 'not addressed to the gateway\'s MAC');
export const DROP_VLAN_NOT_ROUTED = reason('vlan_not_routed', 'gateway', 'VLAN-tagged frame at the gateway');
export const DROP_UNKNOWN_ETHERTYPE = reason('unknown_ethertype', 'gateway', 'not IPv4, ARP, or IPv6 on an interface with an IPv6 address');
export const DROP_NO_IPV4 = reason('ipv4_not_enabled', 'gateway', 'IPv4 or ARP on an IPv6-only interface');
export const DROP_UPLINK_NOT_OURS = reason('uplink_not_for_us', 'gateway', 'uplink traffic for the host, not for tapbridge\'s address');
export const DROP_ARP_NOT_OURS = reason('arp_not_for_us', 'gateway', 'ARP request for an address that is not the gateway\'s');
export const DROP_IPV4_NOT_UNICAST = reason('ipv4_not_unicast', 'gateway', 'IPv4 to a multicast or broadcast address');
export const DROP_BAD_SOURCE = reason('ipv4_bad_source', 'gateway', 'martian IPv4 source (0, multicast, broadcast, loopback, or an address of tapbridge)');
export const DROP_RP_FILTER = reason('ipv4_rp_filter', 'router', 'source not reachable back through the interface it came in on (rp_filter)');
export const DROP_NEIGH_QUEUE_FULL = reason('arp_queue_full', 'gateway', 'too many packets waiting for one ARP answer');
export const DROP_NEIGH_FAILED = reason('arp_failed', 'gateway', 'the next hop did not answer ARP (ICMP host unreachable sent)');
export const DROP_NEIGH_TABLE_FULL = reason('arp_table_full', 'gateway', 'the neighbour table is full');
export const DROP_NEIGH_PORT_LIMIT = reason('arp_pending_limit', 'gateway', 'the ingress port has too many unresolved neighbours');
export const DROP_ARP_TAKEOVER = reason('arp_takeover_refused', 'gateway', 'ARP claiming a neighbour learned from another port');
export const DROP_ARP_SHA_MISMATCH = reason('arp_sha_mismatch', 'gateway', 'ARP sender MAC differs from the frame source MAC');

/* --- IPv6 gateway interface (src/gateway/interface6.ts, ipv6-input.ts) --- */
export const DROP_IPV6_BAD_SOURCE = reason('ipv6_bad_source', 'gateway', 'martian IPv6 source (multicast, loopback, unspecified outside NDP, or an address of tapbridge)');
export const DROP_IPV6_BAD_DEST = reason('ipv6_bad_dest', 'gateway', 'IPv6 to the loopback address, or to a multicast address with a unicast MAC');
export const DROP_IPV6_MULTICAST = reason('ipv6_multicast_ignored', 'gateway', 'IPv6 multicast that is not NDP for the gateway (MLD reports, other groups)');
export const DROP_NDP_NOT_OURS = reason('ndp_not_for_us', 'gateway', 'neighbour solicitation for an address that is not the gateway\'s, or an unasked advertisement');
export const DROP_NDP_IGNORED = reason('ndp_ignored', 'gateway', 'router advertisement, redirect, or router solicitation on the uplink: tapbridge takes no configuration from the link');
export const DROP_ND_LLA_MISMATCH = reason('nd_lla_mismatch', 'gateway', 'NDP link-layer address option differs from the frame source MAC');
export const DROP_ND_TAKEOVER = reason('nd_takeover_refused', 'gateway', 'NDP claiming a neighbour learned from another port');
export const DROP_ND_QUEUE_FULL = reason('nd_queue_full', 'gateway', 'too many packets waiting for one neighbour solicitation');
export const DROP_ND_FAILED = reason('nd_failed', 'gateway', 'the next hop did not answer neighbour solicitations (ICMPv6 address unreachable sent)');
export const DROP_ND_TABLE_FULL = reason('nd_table_full', 'gateway', 'the IPv6 neighbour table is full');
export const DROP_ND_PORT_LIMIT = reason('nd_pending_limit', 'gateway', 'the ingress port has too many unresolved IPv6 neighbours');

/* --- router (src/gateway/router.ts, local.ts, fragment.ts, icmp-error.ts) --- */
export const DROP_TTL_EXCEEDED = reason('ttl_exceeded', 'router', 'TTL expired (ICMP time exceeded sent)');
export const DROP_NO_ROUTE = reason('no_route', 'router', 'no route to the destination (ICMP net unreachable sent)');
export const DROP_MTU_EXCEEDED = reason('mtu_exceeded', 'router', 'larger than the egress MTU with DF (ICMP frag needed sent)');
export const DROP_BRIDGE_ISOLATION = reason('bridge_isolation', 'router', 'routing between two bridges is not allowed');
export const DROP_LOCAL_UNSUPPORTED = reason('local_proto_unreachable', 'local', 'to a tapbridge address, nothing serves it (RST or ICMP unreachable sent)');
export const DROP_LOCAL_ICMP = reason('local_icmp_ignored', 'local', 'ICMP to a tapbridge address that is not an echo request');

/* --- IPv6 router (src/gateway/router6.ts, local6.ts) --- */
export const DROP_HOP_LIMIT = reason('hop_limit_exceeded', 'router6', 'IPv6 hop limit expired (ICMPv6 time exceeded sent)');
export const DROP_IPV6_NO_ROUTE = reason('ipv6_no_route', 'router6', 'no IPv6 route to the destination (ICMPv6 no route sent)');
export const DROP_IPV6_TOO_BIG = reason('ipv6_too_big', 'router6', 'larger than the egress MTU: IPv6 routers never fragment (ICMPv6 packet too big sent)');
export const DROP_IPV6_BEYOND_SCOPE = reason('ipv6_beyond_scope', 'router6', 'link-local destination that is not tapbridge\'s: never forwarded');
export const DROP_IPV6_RP_FILTER = reason('ipv6_rp_filter', 'router6', 'IPv6 source not reachable back through the interface it came in on');
export const DROP_IPV6_LOCAL_HEADER = reason('ipv6_local_bad_header', 'local6', 'to a tapbridge address with a routing header still to process (ICMPv6 parameter problem sent)');

/* --- NAT (src/nat/element.ts) --- */
export const DROP_NAT_MALFORMED = reason('nat_malformed', 'nat', 'IPv4/L4 header the NAT cannot track');
export const DROP_NAT_FRAGMENT = reason('nat_fragment_untracked', 'nat', 'later fragment whose first fragment was not seen');
export const DROP_NAT_TABLE_FULL = reason('nat_table_full', 'nat', 'conntrack table full and nothing to early-drop');
export const DROP_NAT_TCP_INVALID = reason('nat_tcp_invalid', 'nat', 'TCP segment invalid for the flow\'s state');
export const DROP_NAT_NO_PORT = reason('nat_no_port', 'nat', 'no free SNAT port');
export const DROP_NAT_CLASH = reason('nat_clash', 'nat', 'the new flow\'s reply tuple is taken');
export const DROP_NAT_UNTRACKED = reason('nat_untracked_leak', 'nat', 'untracked packet from a masqueraded source leaving untranslated');
export const DROP_NAT_PORT_LIMIT = reason('nat_port_limit', 'nat', 'new flow refused: its ingress port holds its share of the table');
export const DROP_NAT_SOURCE_LIMIT = reason('nat_source_limit', 'nat', 'new flow refused: its source address holds its share of the table');
export const DROP_NAT6_MALFORMED = reason('nat6_malformed', 'nat6', 'IPv6 extension chain or L4 header NAT66 cannot track');
export const DROP_NAT6_FRAGMENT = reason('nat6_fragment_untracked', 'nat6', 'later IPv6 fragment whose first fragment was not seen');
export const DROP_NAT6_TABLE_FULL = reason('nat6_table_full', 'nat6', 'IPv6 conntrack table full and nothing to early-drop');
export const DROP_NAT6_TCP_INVALID = reason('nat6_tcp_invalid', 'nat6', 'TCP segment (IPv6) invalid for the flow\'s state');
export const DROP_NAT6_NO_PORT = reason('nat6_no_port', 'nat6', 'no free SNAT port on the external IPv6 address');
export const DROP_NAT6_CLASH = reason('nat6_clash', 'nat6', 'the new IPv6 flow\'s reply tuple is taken');
export const DROP_NAT6_UNTRACKED = reason('nat6_untracked_leak', 'nat6', 'IPv6 packet from a masqueraded source that would leave the uplink untranslated (untracked, or no external IPv6 address)');
export const DROP_NAT6_PORT_LIMIT = reason('nat6_port_limit', 'nat6', 'new IPv6 flow refused: its ingress port holds its share of the table');
export const DROP_NAT6_SOURCE_LIMIT = reason('nat6_source_limit', 'nat6', 'new IPv6 flow refused: its source address holds its share of the table');

/* --- services: DHCP server, DNS resolver (src/services/) --- */
export const DROP_DHCP_NOT_REQUEST = reason('dhcp_not_request', 'dhcp', 'a BOOTREPLY sent to the server');
export const DROP_DHCP_NOT_ETHERNET = reason('dhcp_not_ethernet', 'dhcp', 'htype/hlen not Ethernet (1/6)');
export const DROP_DHCP_RELAYED = reason('dhcp_relayed', 'dhcp', 'giaddr set: relayed requests are not served');
export const DROP_DHCP_BAD_MSG_TYPE = reason('dhcp_bad_msg_type', 'dhcp', 'option 53 missing (plain BOOTP) or not a client message type');
export const DROP_DHCP_BAD_REQUEST = reason('dhcp_bad_request', 'dhcp', 'REQUEST/DECLINE without the fields its state needs (RFC 2131 4.3.2)');
export const DROP_DHCP_POOL_EXHAUSTED = reason('dhcp_pool_exhausted', 'dhcp', 'DISCOVER with no address left to offer');
export const DROP_DHCP_TABLE_FULL = reason('dhcp_table_full', 'dhcp', 'the most clients are tracked and none can be evicted');
export const DROP_DNS_NOT_QUERY = reason('dns_not_query', 'dns', 'a response (QR=1) where a query was expected');
export const DROP_DNS_TCP_FULL = reason('dns_tcp_full', 'dns', 'DNS over TCP: a SYN while the most connections are open');
export const DROP_DNS_TCP_TOO_LONG = reason('dns_tcp_too_long', 'dns', 'DNS over TCP: a query longer than the responder buffers');
export const DROP_DNS_UNEXPECTED_REPLY = reason('dns_unexpected_reply', 'dns', 'an upstream answer with no matching transaction, or a different question');

/* --- socket uplink (src/uplink/socket-uplink.ts) --- */
export const DROP_SOCKETS_EXHAUSTED = reason('sockets_exhausted', 'sockup', 'new flow refused (TCP: reset): maxSockets host sockets in use, or the host refused a socket');
export const DROP_TENANT_SOCKETS_EXHAUSTED = reason('tenant_sockets_exhausted', 'sockup', 'new flow refused (TCP: reset): its source address holds maxSocketsPerTenant host sockets');
export const DROP_CONNECT_FAILED = reason('connect_failed', 'sockup', 'the host socket could not connect (refused, unreachable, timed out): TCP reset to the namespace');
export const DROP_SOCKUP_NO_FLOW = reason('sockup_no_flow', 'sockup', 'TCP segment (not a SYN) of no connection: answered with a reset');
export const DROP_SOCKUP_UNSUPPORTED = reason('sockup_unsupported', 'sockup', 'not TCP, UDP or ICMP echo, or a fragment: the socket uplink cannot carry it');
export const DROP_ICMP_UNSUPPORTED = reason('icmp_unsupported', 'sockup', 'ICMP other than an echo request toward the socket uplink');
export const DROP_ICMP_ECHO_NOT_PERMITTED = reason('icmp_echo_not_permitted', 'sockup', 'ping socket refused (net.ipv4.ping_group_range excludes tapbridge\'s group)');
export const DROP_SOCKUP_SEND_FAILED = reason('sockup_send_failed', 'sockup', 'a UDP datagram or echo request the host socket did not take');
export const DROP_SOCKUP_TCP_INVALID = reason('sockup_tcp_invalid', 'sockup', 'TCP segment outside the connection\'s state (a SYN on a live connection, an ACK of unsent data)');

/* --- fault injection (src/faults/element.ts) --- */
export const DROP_FAULT_LOSS = reason('fault_loss', 'fault', 'injected loss (Bernoulli or Gilbert-Elliott)');
export const DROP_FAULT_EVERY_NTH = reason('fault_every_nth', 'fault', 'injected: every Nth frame dropped');
export const DROP_FAULT_FILTER = reason('fault_filter', 'fault', 'injected: the frame matched the drop filter');
export const DROP_FAULT_RATE_QUEUE_FULL = reason('fault_rate_queue_full', 'fault', 'rate limit backlog over its byte limit');
export const DROP_FAULT_LINK_DOWN = reason('fault_link_down', 'fault', 'injected link down');
export const DROP_FAULT_QUEUE_FULL = reason('fault_queue_full', 'fault', 'the delay line is full');

/** Number of codes: size a per-reason counter array with this. */
export const DROP_REASONS = table.length;

/** Name for a code; "unknown_<code>" outside the table. */
export function dropName(code: number): string {
  return table[code]?.name ?? `unknown_${code}`;
}

/** Count one drop by name in a control-plane table (`{ dhcp_bad_cookie: 3 }`). */
export function countDrop(table: Record<string, number>, code: number): void {
  const n = dropName(code);
  table[n] = (table[n] ?? 0) + 1;
}

/** The whole registry (control plane: docs, `ctl drops`). */
export function dropReasons(): readonly DropReasonInfo[] {
  return table;
}
