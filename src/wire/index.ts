/*
 * The wire layer in one import: `import * as wire from '../wire/index.js'`.
 */

export * from './arp.js';
export * from './bytes.js';
export * from './checksum.js';
export * from './dhcp.js';
export * from './dns.js';
export * from './drop.js';
export * from './ethernet.js';
export * from './icmp.js';
export * from './icmpv6.js';
export * from './ip4.js';
export * from './ip6.js';
export * from './ipv4.js';
export * from './ipv6.js';
export * from './mac.js';
export * from './tcp.js';
export * from './udp.js';
export * from './view.js';
export * from './describe.js';
