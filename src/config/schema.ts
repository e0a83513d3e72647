/*
 * Configuration schema (zod). One file describes an instance: bridges and their ports,
 * the namespaces tapbridge creates, the uplink, NAT and the optional lab scaffolding.
 *
 * `loadConfig` validates the whole document before anything is created and reports every
 * problem with the path of the field (`bridges[0].ports[1].mac: not a MAC address`).
 * Cross-field rules (unique names, references between sections, overlapping addresses)
 * are checked in `superRefine` so they are reported the same way.
 */
import { cpus as hostCpus } from 'node:os';
import { z } from 'zod';
import { cidr, cidr6, cidrAny, ipAny, ipv4, ipv6, onePerFamily } from './addresses.js';
import { directionSchema, experimentSchema, faultSpecShape } from './experiment.js';

export { cidr, ipv4 };

const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;
const IFNAME_RE = /^[A-Za-z0-9_.@-]{1,15}$/;
const NS_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const NAME_RE = /^[A-Za-z][A-Za-z0-9_.-]{0,31}$/;

export const macString = z.string().regex(MAC_RE, 'not a MAC address (expected aa:bb:cc:dd:ee:ff)');
export const ifName = z
  .string()
  .regex(IFNAME_RE, 'not a valid interface name (1-15 characters: letters, digits, . _ - @)');
const nsName = z.string().regex(NS_RE, 'not a valid namespace name');
const objName = z.string().regex(NAME_RE, 'not a valid name (a letter, then up to 31 letters, digits, . _ -)');

const mtu = z.number().int().min(68, 'MTU below 68').max(65521, 'MTU above 65521');

/** Port security: the port may send only from these MACs and IPv4 addresses (true: its own). */
export const securitySchema = z.union([
  z.boolean(),
  z.strictObject({
    /** Source MACs the port may use; default its device's MAC; `learn`: the first one seen, then locked. */
    macs: z.union([z.literal('learn'), z.array(macString).min(1).max(16)]).optional(),
    /** IPv4 source addresses the port may use; default its configured addresses. */
    ipv4: z.array(ipv4).max(16).optional(),
    /** IPv6 source addresses the port may use besides its link-local and SLAAC ones; default its configured addresses. */
    ipv6: z.array(ipv6).max(16).optional(),
  }),
]);

const commonPort = {
  name: objName,
  mac: macString.optional(),
  mtu: mtu.default(1500),
  /** IFF_VNET_HDR / PACKET_VNET_HDR: checksum and segmentation offload (64 KiB frames). */
  offload: z.boolean().default(true),
  /** Only the gateway (and other non-isolated ports) can be reached, not other isolated ports. Default: the bridge's isolatePorts. */
  isolated: z.boolean().optional(),
  /** Port security (off by default), like libvirt's clean-traffic. */
  security: securitySchema.optional(),
};

export const namespacePortSchema = z.strictObject({
  type: z.literal('namespace'),
  ...commonPort,
  namespace: nsName,
  /** Create the namespace (and delete it on exit). false = it must exist already. */
  createNamespace: z.boolean().default(true),
  /** Name of the device inside the namespace. */
  ifname: ifName.default('eth0'),
  /**
   * IPv4 and IPv6 addresses. Without a static IPv6 address the namespace takes one by SLAAC
   * from the gateway's router advertisements. `dhcp`: tapbridge runs busybox udhcpc inside the
   * namespace, which takes address, default route and MTU from the bridge's DHCP server.
   */
  addresses: z.union([z.literal('dhcp'), z.array(cidrAny)]).default([]),
  /** Default route inside the namespace: a next hop, or one per family. */
  defaultRoute: onePerFamily(ipAny).optional(),
});

export const tapPortSchema = z.strictObject({
  type: z.literal('tap'),
  ...commonPort,
  /** TAP device name in tapbridge's own namespace (for the host, or a VM handed the device). */
  ifname: ifName,
  addresses: z.array(cidrAny).default([]),
});

export const packetPortSchema = z.strictObject({
  type: z.literal('packet'),
  ...commonPort,
  /** Existing interface to bridge in through an AF_PACKET socket ("add eth1 to br0"). */
  interface: ifName,
});

export const portSchema = z.discriminatedUnion('type', [namespacePortSchema, tapPortSchema, packetPortSchema], {
  error: (iss) =>
    iss.code === 'invalid_union' ? 'unknown port type (expected namespace, tap or packet)' : undefined,
});

/** Router advertisements (RFC 4861 6.2.1 variables; seconds). */
export const raSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** How long hosts may use the gateway as their default router (0: not a default router). */
  routerLifetime: z.number().int().min(0).max(9000).default(1800),
  /** Seconds between unsolicited advertisements. */
  interval: z.number().int().min(4).max(1800).default(200),
  /** Prefix lifetimes. */
  validLifetime: z.number().int().min(0).max(0xffffffff).default(86400),
  preferredLifetime: z.number().int().min(0).max(0xffffffff).default(14400),
  /** Recursive DNS servers to advertise (RDNSS, RFC 8106). */
  dns: z.array(ipv6).max(3).default([]),
});
/** The bridge's DHCPv4 server (opt-in). Times in seconds. */
export const dhcpSchema = z.strictObject({
  /** The address pool (inclusive), inside the gateway's IPv4 subnet. */
  pool: z.strictObject({ start: ipv4, end: ipv4 }),
  leaseTime: z.number().int().min(60).max(0x7fffffff).default(3600),
  /** Fixed addresses by client MAC (outside or inside the pool). */
  static: z.array(z.strictObject({ mac: macString, address: ipv4, hostName: z.string().min(1).max(63).optional() })).max(4096).default([]),
  /** Router option; default the gateway; null: none. */
  router: z.union([ipv4, z.null()]).optional(),
  /** DNS servers option; default the gateway when gateway.dns is on, else none. */
  dns: z.array(ipv4).max(8).optional(),
  /** Domain name option; default gateway.dns.domain when DNS is on. */
  domain: z.string().min(1).max(253).optional(),
  /** Interface MTU option; default the bridge's MTU. */
  mtu: mtu.optional(),
  /** JSON file the leases are kept in across restarts (created and rewritten by tapbridge). */
  leaseFile: z.string().min(1).optional(),
  /** Most clients tracked at once (free entries are evicted first). */
  maxClients: z.number().int().min(1).max(65536).default(1024),
});

/** DNS at the gateway's IPv4 address, port 53 UDP and TCP (opt-in). */
export const dnsSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** The local zone: port names and DHCP host names answer as NAME.<domain> (and as a bare NAME). */
  domain: z.string().regex(/^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$/, 'not a domain name').default('tapbridge.internal'),
  /** Upstream resolvers ("a.b.c.d" or "a.b.c.d:port"); default: the nameservers of /etc/resolv.conf as tapbridge sees it. */
  upstreams: z.array(z.string().regex(/^\d{1,3}(\.\d{1,3}){3}(:\d{1,5})?$/, 'not an IPv4 address with an optional :port')).max(4).optional(),
  /** Cached answers (entries). */
  cacheSize: z.number().int().min(0).max(1 << 20).default(1024),
  /** An upstream's answer is awaited this long, then SERVFAIL. */
  timeoutMs: z.number().int().min(100).max(30_000).default(2000),
});

const RA_DEFAULTS = { enabled: true, routerLifetime: 1800, interval: 200, validLifetime: 86400, preferredLifetime: 14400, dns: [] };

export const bridgeSchema = z.strictObject({
  name: objName,
  agingSeconds: z.number().min(1).max(1_000_000).default(300),
  macTableSize: z.number().int().min(1).max(1 << 22).default(8192),
  /** Most MACs learned on one port; 0 = no per-port limit. Default: a quarter of the table. */
  macLimitPerPort: z.number().int().min(0).optional(),
  /** When the table or a port's share is full: evict the least recently seen entry (default), or refuse to learn. */
  macTableFull: z.enum(['evict', 'refuse']).default('evict'),
  /** deny: a MAC learned on one port is never taken over by another (default allow, as a switch does). */
  macMoves: z.enum(['allow', 'deny']).default('allow'),
  /** Ports reach the gateway but not each other (Docker's icc=false); a port's `isolated` overrides it. */
  isolatePorts: z.boolean().default(false),
  gateway: z
    .strictObject({
      /** The gateway's address (CIDR): IPv4, IPv6, or one of each. */
      address: onePerFamily(cidrAny),
      mac: macString.optional(),
      /** IPv6 router advertisements (sent when the gateway has an IPv6 address). */
      ra: raSchema.default(RA_DEFAULTS),
      /** DHCPv4 server on this bridge. */
      dhcp: dhcpSchema.optional(),
      /** DNS resolver at the gateway address. */
      dns: dnsSchema.optional(),
    })
    .optional(),
  static: z.array(z.strictObject({ mac: macString, port: objName })).default([]),
  ports: z.array(portSchema).min(1, 'a bridge needs at least one port'),
});

const protoPort = z.enum(['tcp', 'udp']);
export const publishSchema = z.strictObject({
  proto: protoPort.default('tcp'),
  /** External port, or the first of a range. */
  port: z.number().int().min(1).max(65535),
  /** Last port of a range (inclusive). */
  portEnd: z.number().int().min(1).max(65535).optional(),
  /** The internal host (IPv4 for NAT, IPv6 for NAT66). */
  to: ipAny,
  toPort: z.number().int().min(1).max(65535).optional(),
  /** Host address a socket uplink listens on (default 0.0.0.0); the NAT uplink publishes on its own address. */
  hostAddress: ipv4.optional(),
});

/**
 * A port attached at runtime (`ctl ports add`, POST /v1/ports): a TAP created in an existing
 * namespace, named by its name (/run/netns/NAME) or by a path (/run/netns/X, /proc/PID/ns/net).
 */
export const runtimePortSchema = z.strictObject({
  name: objName,
  bridge: objName,
  netns: z.string().min(1).max(4096).refine((v) => v.startsWith('/') || NS_RE.test(v), 'not a namespace name or an absolute path'),
  ifname: ifName.default('eth0'),
  mac: macString.optional(),
  mtu: mtu.optional(),
  offload: z.boolean().default(true),
  addresses: z.array(cidrAny).max(16).default([]),
  /** Default route: a next hop, or one per family. */
  defaultRoute: onePerFamily(ipAny).optional(),
  /** More routes inside the namespace (a route without `via` is on-link). */
  routes: z.array(z.strictObject({ to: cidrAny, via: ipAny.optional() })).max(64).default([]),
  isolated: z.boolean().optional(),
  security: securitySchema.optional(),
  /** Ports published to this port (removed with it); `to` defaults to its first address of the family. */
  publish: z.array(publishSchema.extend({ to: ipAny.optional() })).max(64).default([]),
  /** Faults set on the port as it joins (e.g. a rate limit: {"direction":"egress","rate":{"bitsPerSecond":"10mbit"}}). */
  faults: z.array(z.strictObject({ direction: directionSchema.default('both'), ...faultSpecShape })).max(4).default([]),
  /** More names the port answers to in its bridge's DNS besides its own (a container's name and aliases). */
  dnsNames: z.array(z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/, 'not a DNS label (letters, digits, inner hyphens, up to 63)')).max(16).default([]),
  /** Free-form labels kept with the port (the CNI plugin keeps its container id here). */
  labels: z.record(z.string().max(256), z.string().max(4096)).default({}),
});

/** The AF_PACKET uplink: tapbridge is a router with its own address on an existing interface (NAT behind it). */
export const packetUplinkSchema = z.strictObject({
  type: z.literal('packet').default('packet'),
  interface: ifName,
  /** tapbridge's own external address on the uplink (answered by tapbridge, not the kernel): IPv4, IPv6, or one of each. */
  address: onePerFamily(cidrAny),
  /** Next hop of the default route, one per family of `address`. */
  gateway: onePerFamily(ipAny),
  /** 'own' = a locally administered MAC of tapbridge's; 'nic' = the interface's MAC; or a MAC. */
  mac: z.union([z.literal('own'), z.literal('nic'), macString]).default('own'),
  offload: z.boolean().default(true),
});

/**
 * The socket uplink (passt-style): every TCP connection, UDP flow and ping of the namespaces
 * becomes a host socket of tapbridge's own (src/uplink/); no interface, no address, no NAT table.
 * Published ports (nat.publish, a runtime port's publish) are listening host sockets.
 */
export const socketUplinkSchema = z.strictObject({
  type: z.literal('socket'),
  /** Packets to this address reach the host's 127.0.0.1; connections from the host's loopback appear to come from it. */
  hostLoopback: ipv4.default('10.0.2.2'),
  /** Host sockets in use at once, all namespaces together. */
  maxSockets: z.number().int().min(16).max(1_000_000).default(4096),
  /** Host sockets in use at once per namespace source address. */
  maxSocketsPerTenant: z.number().int().min(1).max(1_000_000).default(1024),
  /** Seconds a TCP connection may stay idle (no segment either way) before it is reset; keepalive probes keep live ones. */
  tcpIdleTimeout: z.number().min(1).default(7200),
  /** Seconds a UDP flow lives without traffic: unreplied / once replied. */
  udpTimeout: z.number().min(1).default(60),
  udpRepliedTimeout: z.number().min(1).default(180),
});

/** `type` absent: the AF_PACKET uplink (every config from before the socket uplink). */
export const uplinkSchema = z.union([socketUplinkSchema, packetUplinkSchema]);

export const natSchema = z.strictObject({
  /** Source subnets masqueraded out of the uplink (IPv4 and IPv6). Default: every bridge's gateway subnet, except the routed ones. */
  masquerade: z.array(cidrAny).optional(),
  /** IPv6 prefixes routed without NAT (a bridge's prefix, or inside one): the uplink answers NDP for them, or the operator routes them to tapbridge. */
  routed: z.array(cidr6).default([]),
  portRange: z
    .tuple([z.number().int().min(1).max(65535), z.number().int().min(1).max(65535)])
    .default([32768, 60999]),
  maxFlows: z.number().int().min(16).max(4_000_000).default(65536),
  /** Most flows created through one port (0: no limit). Default: a quarter of maxFlows (none below 1024 flows). */
  maxFlowsPerPort: z.number().int().min(0).optional(),
  /** Most flows from one source address (0: no limit). Default: a sixteenth of maxFlows (none below 1024 flows). */
  maxFlowsPerSource: z.number().int().min(0).optional(),
  /** Conntrack timeouts in seconds; defaults are netfilter's. */
  timeouts: z
    .strictObject({
      tcpSynSent: z.number().min(1).optional(),
      tcpSynRecv: z.number().min(1).optional(),
      tcpEstablished: z.number().min(1).optional(),
      tcpFinWait: z.number().min(1).optional(),
      tcpCloseWait: z.number().min(1).optional(),
      tcpLastAck: z.number().min(1).optional(),
      tcpTimeWait: z.number().min(1).optional(),
      tcpClose: z.number().min(1).optional(),
      udpUnreplied: z.number().min(1).optional(),
      udpReplied: z.number().min(1).optional(),
      icmp: z.number().min(1).optional(),
      generic: z.number().min(1).optional(),
    })
    .default({}),
  publish: z.array(publishSchema).default([]),
  /** Serve published TCP ports on 127.0.0.1 too (a userspace proxy, like docker-proxy). */
  localhostProxy: z.boolean().default(true),
});

/** A static route; destination and next hop of one family. */
export const routeSchema = z.strictObject({ to: cidrAny, via: ipAny });

export const labSchema = z.strictObject({
  /** Extra namespaces linked to tapbridge's namespace by a veth pair (e.g. the `wan`). */
  veths: z
    .array(
      z.strictObject({
        namespace: nsName,
        ifname: ifName.default('eth0'),
        addresses: z.array(cidrAny).default([]),
        /** The peer end, in tapbridge's namespace. */
        peer: ifName,
        peerAddresses: z.array(cidrAny).default([]),
        mtu: mtu.default(1500),
      }),
    )
    .default([]),
  /** Small built-in servers the lab starts inside namespaces. */
  services: z
    .array(
      z.strictObject({
        namespace: nsName,
        http: z.number().int().min(1).max(65535).optional(),
        udpEcho: z.number().int().min(1).max(65535).optional(),
      }),
    )
    .default([]),
});

export const configSchema = z.strictObject({
  /** Instance name: the control socket is /run/tapbridge/<instance>.sock. */
  instance: objName.default('tapbridge'),
  socket: z.string().min(1).optional(),
  /** Run tapbridge itself inside this namespace (re-executed under `ip netns exec`). */
  namespace: z.strictObject({ name: nsName, create: z.boolean().default(true) }).optional(),
  bridges: z.array(bridgeSchema).min(1, 'at least one bridge is needed'),
  uplink: uplinkSchema.optional(),
  nat: natSchema.optional(),
  routes: z.array(routeSchema).default([]),
  /** Router behaviour. */
  routing: z
    .strictObject({
      /** Reverse-path filter: drop routed packets whose source is not reachable back through the interface they came in on. */
      rpFilter: z.boolean().default(true),
    })
    .default({ rpFilter: true }),
  /** How the data-plane thread waits for frames. */
  poll: z
    .strictObject({
      /** Adaptive busy poll: after a batch, keep reading the fds for up to this many µs after the last frame before sleeping (0: off). */
      busyMicros: z.number().int().min(0).max(1000, 'at most 1000 µs').default(0),
      /** Pin the data-plane thread to these CPUs (default: wherever the kernel puts it). */
      cpus: z
        .array(z.number().int().min(0).max(hostCpus().length - 1, `no such CPU here (this machine has CPUs 0-${hostCpus().length - 1})`))
        .min(1, 'at least one CPU')
        .optional(),
    })
    .default({ busyMicros: 0 }),
  lab: labSchema.optional(),
  /** How many ports can be attached at runtime (ctl ports add, CNI); each reserves a receive ring (~4 MiB). */
  runtimePorts: z.number().int().min(0).max(256).default(4),
  /** Faults and captures applied at start, so an experiment is one file. */
  experiment: experimentSchema.optional(),
});

export type Config = z.output<typeof configSchema>;
export type BridgeConfig = z.output<typeof bridgeSchema>;
export type PortConfig = z.output<typeof portSchema>;
export type NamespacePortConfig = z.output<typeof namespacePortSchema>;
export type PublishConfig = z.output<typeof publishSchema>;
export type UplinkConfig = z.output<typeof uplinkSchema>;
export type PacketUplinkConfig = z.output<typeof packetUplinkSchema>;
export type SocketUplinkConfig = z.output<typeof socketUplinkSchema>;
export type RuntimePortRequest = z.output<typeof runtimePortSchema>;
