/*
 * The data-plane spec: everything the worker needs to build its graph, as plain,
 * serialisable data (addresses as text, devices as already-open fds). The control plane
 * derives it from the validated config and the opened devices (src/control/spec.ts); the
 * data plane never sees the config itself.
 */
import type { FaultSpec } from '../faults/spec.js';

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
  /** Port security: allowed source MACs (or learn the first), allowed IPv4 sources. */
  security?: { macs: string[]; learn: boolean; ipv4: string[] };
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
  /** The bridge's router interface: address (CIDR), MAC, MTU. */
  gateway?: { address: string; mac: string; mtu: number };
}

export interface UplinkSpec {
  fd: number;
  vnetHdr: boolean;
  ifname: string;
  /** tapbridge's own address on the uplink (CIDR) and the MAC it answers ARP with. */
  address: string;
  mac: string;
  /** Next hop of the default route. */
  gateway: string;
  mtu: number;
}

export interface PublishSpec {
  proto: 'tcp' | 'udp';
  port: number;
  portEnd?: number;
  to: string;
  toPort?: number;
}

export interface NatSpec {
  /** Masqueraded source subnets (CIDR). */
  masquerade: string[];
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
  routes: { to: string; via: string }[];
  /** Reverse-path source validation on routed packets (default true). */
  rpFilter?: boolean;
  nat?: NatSpec;
  /** Faults and captures applied before the data plane reports ready. */
  experiment?: { faults: { port: string; direction: 'ingress' | 'egress' | 'both'; spec: FaultSpec }[]; captures: CaptureStartSpec[] };
}

/** Name of the internal port of a bridge's gateway. */
export function gatewayPortName(bridge: string): string {
  return `gw-${bridge}`;
}

export const UPLINK_PORT = 'uplink';
