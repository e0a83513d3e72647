/*
 * The embedded default lab (DESIGN.md, "The default lab"): what `tapbridge run` brings up
 * without --config. Everything lives in namespaces tapbridge creates and removes:
 *
 *   red  10.100.0.2/24 ─┐                      ┌─ tb-host: tapbridge itself
 *   blue 10.100.0.3/24 ─┼─ br0 (gateway .1) ───┤   tb0 10.100.0.254/24 (host port)
 *                       │                      └─ eth0 uplink 203.0.113.3 (kernel) / .2 (tapbridge)
 *                                                     └── veth ── wan 203.0.113.1 (HTTP :80)
 *
 * and the same in IPv6 (documentation prefixes, never routed anywhere): br0 2001:db8:100::1/64
 * (router advertisements), red ::2, blue ::3, tb0 ::fe; wan 2001:db8:113::1/64, tapbridge's
 * external address 2001:db8:113::2 (NDP answered by tapbridge). Port 8000 (TCP and UDP) is
 * published to red in both families.
 */
export const DEFAULT_LAB = {
  instance: 'lab',
  namespace: { name: 'tb-host', create: true },
  bridges: [
    {
      name: 'br0',
      agingSeconds: 300,
      macTableSize: 8192,
      gateway: { address: ['10.100.0.1/24', '2001:db8:100::1/64'], mac: '02:74:62:00:00:01' },
      ports: [
        { name: 'red', type: 'namespace', namespace: 'red', addresses: ['10.100.0.2/24', '2001:db8:100::2/64'], defaultRoute: ['10.100.0.1', '2001:db8:100::1'] },
        { name: 'blue', type: 'namespace', namespace: 'blue', addresses: ['10.100.0.3/24', '2001:db8:100::3/64'], defaultRoute: ['10.100.0.1', '2001:db8:100::1'] },
        { name: 'host', type: 'tap', ifname: 'tb0', addresses: ['10.100.0.254/24', '2001:db8:100::fe/64'] },
      ],
    },
  ],
  uplink: { interface: 'eth0', address: ['203.0.113.2/24', '2001:db8:113::2/64'], gateway: ['203.0.113.1', '2001:db8:113::1'], mac: 'own' },
  nat: {
    publish: [
      { proto: 'tcp', port: 8000, to: '10.100.0.2' },
      { proto: 'udp', port: 8000, to: '10.100.0.2' },
      { proto: 'tcp', port: 8000, to: '2001:db8:100::2' },
      { proto: 'udp', port: 8000, to: '2001:db8:100::2' },
    ],
  },
  lab: {
    veths: [
      { namespace: 'wan', ifname: 'eth0', addresses: ['203.0.113.1/24', '2001:db8:113::1/64'], peer: 'eth0', peerAddresses: ['203.0.113.3/24'] },
    ],
    services: [
      { namespace: 'wan', http: 80 },
      { namespace: 'red', http: 8000, udpEcho: 8000 },
    ],
  },
} as const;

/*
 * The embedded default of `tapbridge run --rootless` (docs/architecture.md, "Rootless
 * mode"): no `namespace:` (tapbridge stays in the network namespace it was started in, where
 * the socket uplink opens its host sockets), no host TAP, no lab veths:
 *
 *   red  10.100.0.2/24 ─┐
 *   blue 10.100.0.3/24 ─┴─ br0 (gateway 10.100.0.1) ── socket uplink: the host's own sockets
 *
 * 8000/tcp and 8000/udp on the host's 127.0.0.1 are published to red:8000, where the lab's
 * HTTP and UDP echo servers run. DNS at the gateway answers the port names (red.tapbridge.internal)
 * and forwards the rest to the host's resolvers (/etc/resolv.conf, through host sockets).
 */
export const ROOTLESS_LAB = {
  instance: 'rootless',
  bridges: [
    {
      name: 'br0',
      gateway: { address: ['10.100.0.1/24'], mac: '02:74:62:00:00:01', dns: { enabled: true } },
      ports: [
        { name: 'red', type: 'namespace', namespace: 'red', addresses: ['10.100.0.2/24'], defaultRoute: ['10.100.0.1'] },
        { name: 'blue', type: 'namespace', namespace: 'blue', addresses: ['10.100.0.3/24'], defaultRoute: ['10.100.0.1'] },
      ],
    },
  ],
  uplink: { type: 'socket' },
  nat: {
    publish: [
      { proto: 'tcp', port: 8000, to: '10.100.0.2', hostAddress: '127.0.0.1' },
      { proto: 'udp', port: 8000, to: '10.100.0.2', hostAddress: '127.0.0.1' },
    ],
  },
  lab: { services: [{ namespace: 'red', http: 8000, udpEcho: 8000 }] },
} as const;
