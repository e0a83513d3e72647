/*
 * The embedded default lab (DESIGN.md, "The default lab"): what `tapbridge run` brings up
 * without --config. Everything lives in namespaces tapbridge creates and removes:
 *
 *   red  10.100.0.2/24 ─┐                      ┌─ tb-host: tapbridge itself
 *   blue 10.100.0.3/24 ─┼─ br0 (gateway .1) ───┤   tb0 10.100.0.254/24 (host port)
 *                       │                      └─ eth0 uplink 203.0.113.3 (kernel) / .2 (tapbridge)
 *                                                     └── veth ── wan 203.0.113.1 (HTTP :80)
 */
export const DEFAULT_LAB = {
  instance: 'lab',
  namespace: { name: 'tb-host', create: true },
  bridges: [
    {
      name: 'br0',
      agingSeconds: 300,
      macTableSize: 8192,
      gateway: { address: '10.100.0.1/24', mac: '02:74:62:00:00:01' },
      ports: [
        { name: 'red', type: 'namespace', namespace: 'red', addresses: ['10.100.0.2/24'], defaultRoute: '10.100.0.1' },
        { name: 'blue', type: 'namespace', namespace: 'blue', addresses: ['10.100.0.3/24'], defaultRoute: '10.100.0.1' },
        { name: 'host', type: 'tap', ifname: 'tb0', addresses: ['10.100.0.254/24'] },
      ],
    },
  ],
  uplink: { interface: 'eth0', address: '203.0.113.2/24', gateway: '203.0.113.1', mac: 'own' },
  nat: {
    publish: [
      { proto: 'tcp', port: 8000, to: '10.100.0.2' },
      { proto: 'udp', port: 8000, to: '10.100.0.2' },
    ],
  },
  lab: {
    veths: [
      { namespace: 'wan', ifname: 'eth0', addresses: ['203.0.113.1/24'], peer: 'eth0', peerAddresses: ['203.0.113.3/24'] },
    ],
    services: [
      { namespace: 'wan', http: 80 },
      { namespace: 'red', http: 8000, udpEcho: 8000 },
    ],
  },
} as const;
