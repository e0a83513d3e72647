/*
 * NAT configuration (IPv4: NatConfig, IPv6: Nat6Config, both on NatCommonConfig), verdicts
 * and the control-plane view of a flow.
 */

/* Verdicts of prerouting/postrouting: 0 accepts, anything else is a drop (NAT_DROP_REASON_NAMES). */
export const NAT_ACCEPT = 0;
/** Truncated/unsound IPv4 or L4 header. */
export const NAT_DROP_MALFORMED = 1;
/** Non-first fragment whose first fragment was not seen. */
export const NAT_DROP_FRAGMENT = 2;
/** New flow refused: table full and no non-assured flow to early-drop. */
export const NAT_DROP_TABLE_FULL = 3;
/** TCP packet invalid for the flow's state (or SYN/ACK, FIN, RST without a flow). */
export const NAT_DROP_TCP_INVALID = 4;
/** No free SNAT port for the reply tuple. */
export const NAT_DROP_NO_PORT = 5;
/** The new flow's reply tuple is taken and cannot be remapped. */
export const NAT_DROP_CLASH = 6;
/** Untracked packet from a masqueraded source leaving through the uplink. */
export const NAT_DROP_UNTRACKED = 7;
/** New flow refused: its ingress port holds its share of the table. */
export const NAT_DROP_PORT_LIMIT = 8;
/** New flow refused: its source address holds its share of the table. */
export const NAT_DROP_SOURCE_LIMIT = 9;

/** Verdict names (IPv4): the drop reasons of the registry (src/core/drops.ts) with the same names. */
export const NAT_DROP_REASON_NAMES: readonly string[] = [
  'ok',
  'nat_malformed',
  'nat_fragment_untracked',
  'nat_table_full',
  'nat_tcp_invalid',
  'nat_no_port',
  'nat_clash',
  'nat_untracked_leak',
  'nat_port_limit',
  'nat_source_limit',
];

/** Verdict names of NAT66 (same verdicts, its own table): nat6_*. */
export const NAT6_DROP_REASON_NAMES: readonly string[] = NAT_DROP_REASON_NAMES.map((n) => n.replace(/^nat_/, 'nat6_'));

export interface PortForward {
  proto: 6 | 17;
  externalPort: number;
  /** Inclusive; equal to externalPort for a single port. Ranges map port by port. */
  externalPortEnd: number;
  internalIp: number;
  internalPort: number;
}

/** Seconds. */
export interface Timeouts {
  tcpSynSent: number;
  tcpSynRecv: number;
  tcpEstablished: number;
  tcpFinWait: number;
  tcpCloseWait: number;
  tcpLastAck: number;
  tcpTimeWait: number;
  tcpClose: number;
  tcpSynSent2: number;
  /** Cap for TCP flows that have not seen a reply (netfilter's "unacknowledged"). */
  tcpUnack: number;
  udpUnreplied: number;
  udpReplied: number;
  icmp: number;
  generic: number;
}

export const DEFAULT_TIMEOUTS: Readonly<Timeouts> = {
  tcpSynSent: 120,
  tcpSynRecv: 60,
  tcpEstablished: 432000,
  tcpFinWait: 120,
  tcpCloseWait: 60,
  tcpLastAck: 30,
  tcpTimeWait: 120,
  tcpClose: 10,
  tcpSynSent2: 120,
  tcpUnack: 300,
  udpUnreplied: 30,
  udpReplied: 120,
  icmp: 30,
  generic: 600,
};

/** What both families' engines are configured with. */
export interface NatCommonConfig {
  /** Interface id of the uplink; -1: none (no masquerade, no DNAT). */
  uplinkIf: number;
  /** SNAT ports (and ICMP ids) to pick from when the original one is taken. Default 32768..60999. */
  portRange?: [number, number];
  maxFlows: number;
  timeouts?: Partial<Timeouts>;
  /** Most confirmed flows created through one ingress port (0: no limit). */
  maxFlowsPerPort?: number;
  /** Most confirmed flows from one source address (0: no limit). */
  maxFlowsPerSource?: number;
  /** Seed for the hash and the port picker (default: random). */
  seed?: number;
}

export interface NatConfig extends NatCommonConfig {
  /** Own address per interface id: the gateway IP of a bridge, the external IP of the uplink. */
  ifAddr: Uint32Array;
  masqueradeSources: { net: number; prefixLen: number }[];
  forwards?: PortForward[];
}

/** An IPv6 prefix: the address as four uint32 words (wire/ip6.ts), its length 0..128. */
export interface Prefix6 {
  net: Uint32Array;
  prefixLen: number;
}

export interface PortForward6 {
  proto: 6 | 17;
  externalPort: number;
  /** Inclusive; equal to externalPort for a single port. Ranges map port by port. */
  externalPortEnd: number;
  /** Four uint32 words. */
  internalIp: Uint32Array;
  internalPort: number;
}

export interface Nat6Config extends NatCommonConfig {
  /**
   * Own IPv6 address per router interface id (null: the interface has none): the gateway's
   * global address of a bridge, the external address of the uplink.
   */
  ifAddr6: (Uint32Array | null)[];
  /** Sources masqueraded to the uplink's address when they leave through it. */
  masqueradeSources6: Prefix6[];
  /** Prefixes routed without NAT: no SNAT for these sources (even inside a masqueraded prefix), replies just pass. */
  routed6?: Prefix6[];
  /** Published ports of the uplink's address (at most MAX_FORWARDS6). */
  forwards6?: PortForward6[];
}

export interface FlowInfo {
  id: number;
  proto: number;
  protoName: string;
  state: string;
  secondsLeft: number;
  /** conntrack style: "src=10.100.0.2 dst=203.0.113.1 sport=40000 dport=80" (IPv6 addresses in RFC 5952 text). */
  original: string;
  reply: string;
  packetsOrig: number;
  bytesOrig: number;
  packetsReply: number;
  bytesReply: number;
  /** ASSURED, SEEN_REPLY (else UNREPLIED), SNAT, DNAT, HAIRPIN. */
  flags: string[];
  ingressIf: number;
}
