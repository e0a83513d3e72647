/*
 * The data-plane spec: everything the worker needs to build its graph, as plain,
 * serialisable data (addresses as text, devices as already-open fds). The control plane
 * derives it from the validated config and the opened devices (src/control/spec.ts); the
 * data plane never sees the config itself.
 */
import type { FaultSpec } from '../faults/spec.js';
import type { SocketForward } from '../uplink/socket-uplink.js';

export type DevicePortKind = 'namespace' | 'tap' | 'packet';

/** A device port on a bridge: its fd is open (TAP or AF_PACKET). */
export interface PortSpec {
  name: string;
  kind: DevicePortKind;
  bridge: string;
  fd: number;
  vnetHdr: boolean;
  /** Device name as shown ("red:eth0" for a namespace port). */
  ifname: string;
  mac: string;
  /** Addresses configured on the device (CIDR), e.g. the default source of a trace. */
  addresses: string[];
  /** Reaches only non-isolated ports of its bridge. */
  isolated?: boolean;
  /** Port security: allowed source MACs (or learn the first), allowed IPv4 and IPv6 sources. */
  security?: { macs: string[]; learn: boolean; ipv4: string[]; ipv6?: string[] };
  /** Ports added at runtime: more names the port answers to in its bridge's DNS. */
  dnsNames?: string[];
}

export interface BridgeSpec {
  name: string;
  agingSeconds: number;
  macTableSize: number;
  macLimitPerPort: number;
  /** MAC table policy when full (src/switch/fdb.ts); default 'evict'. */
  whenFull?: 'evict' | 'refuse';
  /** deny: learned MACs never move between ports. */
  macMoves?: 'allow' | 'deny';
  static: { mac: string; port: string }[];
  /** The bridge's router interface: IPv4 and/or IPv6 address (CIDR), MAC, MTU, router advertisements. */
  gateway?: { address?: string; address6?: string; mac: string; mtu: number; ra?: RouterAdvertSpec; dhcp?: DhcpSpec; dns?: DnsSpec };
}

/** A bridge's DHCPv4 server (src/services/dhcp-server.ts); addresses as text, times in seconds. */
export interface DhcpSpec {
  poolStart: string;
  poolEnd: string;
  leaseTime: number;
  static: { mac: string; address: string; hostName?: string }[];
  /** Router option: null for none. */
  router: string | null;
  dns: string[];
  domain?: string;
  mtu?: number;
  /** JSON lease file (written by the worker, read at start); none: leases live in memory only. */
  leaseFile?: string;
  maxClients: number;
}

/** A bridge's DNS resolver at the gateway address (src/services/dns-resolver.ts). */
export interface DnsSpec {
  domain: string;
  /** Upstream resolvers, "a.b.c.d" or "a.b.c.d:port". */
  upstreams: string[];
  cacheSize: number;
  timeoutMs: number;
  /** Names answered locally: port names with their static addresses (DHCP clients are added as they bind). */
  hosts: { name: string; addresses: string[] }[];
  /** Port MAC -> port name: a DHCP client on that port is named after it. */
  portMacs: { mac: string; name: string }[];
}

/** What a bridge's IPv6 gateway advertises (seconds; DNS servers as text). */
export interface RouterAdvertSpec {
  routerLifetime: number;
  validLifetime: number;
  preferredLifetime: number;
  intervalSeconds: number;
  dns: string[];
}

export interface UplinkSpec {
  fd: number;
  vnetHdr: boolean;
  ifname: string;
  /** tapbridge's own addresses on the uplink (CIDR; either may be absent) and the MAC it answers ARP and NDP with. */
  address?: string;
  address6?: string;
  mac: string;
  /** Next hops of the default routes. */
  gateway?: string;
  gateway6?: string;
  mtu: number;
}

/** A published port: NAT's port forward, or a socket uplink's listening socket (hostAddress). */
export type PublishSpec = SocketForward;

/** The socket uplink (src/uplink/): no device, no fd; host sockets opened by the worker. */
export interface SocketUplinkSpec {
  /** The address that stands for the host's 127.0.0.1, both ways. */
  hostLoopback: string;
  maxSockets: number;
  maxSocketsPerTenant: number;
  /** Seconds. */
  tcpIdleTimeout: number;
  udpTimeout: number;
  udpRepliedTimeout: number;
  /** Published ports: listening host sockets. */
  publish: PublishSpec[];
}

export interface NatSpec {
  /** Masqueraded source subnets (CIDR, IPv4 and IPv6). */
  masquerade: string[];
  /** IPv6 prefixes routed without NAT (the uplink answers NDP for them). */
  routed?: string[];
  portRange: [number, number];
  maxFlows: number;
  /** Seconds per conntrack state (NatConfig timeouts). */
  timeouts: Record<string, number>;
  publish: PublishSpec[];
  maxFlowsPerPort: number;
  maxFlowsPerSource: number;
}

export interface CaptureStartSpec {
  /** A port name or "bridge:NAME". */
  target: string;
  direction: 'ingress' | 'egress' | 'both';
  /** An fd the control plane opened for writing (a regular file), or -1 to stream. */
  fd: number;
  file?: string;
  streamToken?: string;
  filter?: string;
  snaplen: number;
  maxPackets?: number;
  maxBytes?: number;
  format?: 'pcap' | 'pcapng';
  durationSeconds?: number;
}

export interface DataPlaneSpec {
  bridges: BridgeSpec[];
  ports: PortSpec[];
  uplink?: UplinkSpec;
  /** Instead of `uplink`: the socket uplink (the router's `uplink` interface leads to host sockets). */
  socketUplink?: SocketUplinkSpec;
  /** Static routes, IPv4 or IPv6 (both ends of one family). */
  routes: { to: string; via: string }[];
  /** Reverse-path source validation on routed packets (default true). */
  rpFilter?: boolean;
  nat?: NatSpec;
  /** Busy poll after a batch (µs, 0 = off) and the data-plane thread's CPUs. */
  poll?: { busyMicros: number; cpus?: number[] };
  /** RX rings kept for ports added at runtime (ports.add); default SPARE_RINGS. */
  runtimePorts?: number;
  /** Faults and captures applied before the data plane reports ready. */
  experiment?: { faults: { port: string; direction: 'ingress' | 'egress' | 'both'; spec: FaultSpec }[]; captures: CaptureStartSpec[] };
}

/** Name of the internal port of a bridge's gateway. */
export function gatewayPortName(bridge: string): string {
  return `gw-${bridge}`;
}

export const UPLINK_PORT = 'uplink';
