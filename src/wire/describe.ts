/*
 * One-line text of a packet for traces and logs (control plane only: allocates strings).
 *   describePacket(buf, ip[, len])  IPv4 or IPv6, by the version nibble:
 *     "tcp 10.100.0.2:40000 -> 203.0.113.1:80"
 *     "tcp [2001:db8:100::2]:40000 -> [2001:db8:113::1]:80"
 *     "icmp6 2001:db8:100::2 -> 2001:db8:100::1 type 128 id 7"
 *     "icmp6 fe80::2 -> ff02::1:ff00:1 neighbor solicitation for 2001:db8:100::1"
 *     "icmp6 2001:db8:100::1 -> 2001:db8:100::2 time exceeded code 0, about udp [...]:40001 -> [...]:33434"
 *   IPv6 extension headers are walked with Ipv6ExtWalker (bounded) and listed after the packet:
 *     "udp [2001:db8:100::2]:40002 -> [2001:db8:113::1]:9000 (hop-by-hop, fragment id 0x12345678 offset 0 more)"
 *   A later fragment names its protocol without ports (its data is not the header).
 *   describeFrame(buf, eth, len)    "aa:.. -> bb:.., tcp 10.100.0.2:40000 -> 203.0.113.1:80 ttl 63"
 *     ("... hop limit 63" for IPv6)
 * len is the bytes available from ip (default: to the end of buf); IPv6 reads stay within it
 * and within the packet's payload length.
 */
import { readU16, readU32 } from './bytes.js';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from './ethernet.js';
import {
  ICMPV6_DEST_UNREACH,
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_HEADER_LEN,
  ICMPV6_ID,
  ICMPV6_MTU,
  ICMPV6_PACKET_TOO_BIG,
  ICMPV6_PARAM_PROBLEM,
  ICMPV6_POINTER,
  ICMPV6_TIME_EXCEEDED,
  NDP_NA_FLAG_OVERRIDE,
  NDP_NA_FLAG_ROUTER,
  NDP_NA_FLAG_SOLICITED,
  NDP_NA_FLAGS,
  NDP_NA_LEN,
  NDP_NEIGHBOR_ADVERT,
  NDP_NEIGHBOR_SOLICIT,
  NDP_NS_LEN,
  NDP_REDIRECT,
  NDP_REDIRECT_DST,
  NDP_REDIRECT_LEN,
  NDP_ROUTER_ADVERT,
  NDP_ROUTER_SOLICIT,
  NDP_TARGET,
  isIcmpv6Error,
} from './icmpv6.js';
import { ip4ToString } from './ip4.js';
import { IP6_WORDS, ip6ToString, readIp6 } from './ip6.js';
import {
  IPPROTO_DSTOPTS,
  IPPROTO_FRAGMENT,
  IPPROTO_HOPOPTS,
  IPPROTO_ICMPV6,
  IPPROTO_NONE,
  IPPROTO_ROUTING,
  IPV6_EXT_LEN,
  IPV6_EXT_NEXT_HEADER,
  IPV6_EXT_UNIT,
  IPV6_FRAG_HEADER_LEN,
  IPV6_HEADER_LEN,
  IPV6_HOP_LIMIT,
  IPV6_NEXT_HEADER,
  IPV6_PAYLOAD_LEN,
  IPV6_SRC,
  IPV6_DST,
  Ipv6ExtWalker,
} from './ipv6.js';
import { macToString, readMac } from './mac.js';

const ETH_HEADER = 14;
const VERSION_6 = 6;
const TCP = 6;
const UDP = 17;
const PORTS_LEN = 4; // source and destination port of TCP/UDP

export function describePacket(b: Uint8Array, ip: number, len = b.length - ip): string {
  return b[ip] >>> 4 === VERSION_6 ? describeIpv6(b, ip, len, true) : describeIpv4(b, ip);
}

function describeIpv4(b: Uint8Array, ip: number): string {
  const proto = b[ip + 9];
  const hl = (b[ip] & 15) << 2;
  const src = ip4ToString(readU32(b, ip + 12));
  const dst = ip4ToString(readU32(b, ip + 16));
  const l4 = ip + hl;
  if (proto === 6 || proto === 17) return `${proto === 6 ? 'tcp' : 'udp'} ${src}:${readU16(b, l4)} -> ${dst}:${readU16(b, l4 + 2)}`;
  if (proto === 1) return `icmp ${src} -> ${dst} type ${b[l4]} id ${readU16(b, l4 + 4)}`;
  return `proto ${proto} ${src} -> ${dst}`;
}

const walker = new Ipv6ExtWalker();

function address6(b: Uint8Array, at: number): string {
  return ip6ToString(readIp6(b, at, new Uint32Array(IP6_WORDS)));
}

/** quoteErrors: describe the packet an ICMPv6 error quotes (one level: a quote's quote is not described). */
function describeIpv6(b: Uint8Array, ip: number, len: number, quoteErrors: boolean): string {
  if (len < IPV6_HEADER_LEN) return 'ipv6 (truncated header)';
  if (b[ip] >>> 4 !== VERSION_6) return `ipv6 (bad version ${b[ip] >>> 4})`;
  const src = address6(b, ip + IPV6_SRC);
  const dst = address6(b, ip + IPV6_DST);
  // What is there of the packet: without link padding, and fewer bytes for a quoted packet.
  const avail = Math.min(len, IPV6_HEADER_LEN + readU16(b, ip + IPV6_PAYLOAD_LEN));
  if (walker.walk(b, ip, avail) !== 0) return `ipv6 ${src} -> ${dst} next header ${b[ip + IPV6_NEXT_HEADER]}, bad extension header chain`;
  const chain = walker.headerCount > 0 ? ` (${extensionNames(b, ip, walker.headerCount)})` : '';
  const proto = walker.protocol;
  const at = walker.offset;
  const end = ip + avail;
  if (walker.isLaterFragment) return `${protoName(proto)} ${src} -> ${dst}${chain}`;
  if ((proto === TCP || proto === UDP) && at + PORTS_LEN <= end) {
    return `${protoName(proto)} [${src}]:${readU16(b, at)} -> [${dst}]:${readU16(b, at + 2)}${chain}`;
  }
  if (proto === IPPROTO_ICMPV6) return `icmp6 ${src} -> ${dst} ${icmpv6Text(b, at, end - at, quoteErrors)}${chain}`;
  if (proto === IPPROTO_NONE) return `ipv6 ${src} -> ${dst} no next header${chain}`;
  return `${protoName(proto)} ${src} -> ${dst}${chain}`;
}

function protoName(p: number): string {
  return p === TCP ? 'tcp' : p === UDP ? 'udp' : p === IPPROTO_ICMPV6 ? 'icmp6' : `proto ${p}`;
}

/** The extension headers of a chain the walker accepted (count of them: bounded by the walker). */
function extensionNames(b: Uint8Array, ip: number, count: number): string {
  const names: string[] = [];
  let nh = b[ip + IPV6_NEXT_HEADER];
  let at = ip + IPV6_HEADER_LEN;
  for (let i = 0; i < count; i++) {
    if (nh === IPPROTO_HOPOPTS) names.push('hop-by-hop');
    else if (nh === IPPROTO_DSTOPTS) names.push('destination options');
    else if (nh === IPPROTO_ROUTING) names.push(`routing type ${walker.routingType} segments left ${walker.segmentsLeft}`);
    else if (nh === IPPROTO_FRAGMENT) {
      names.push(`fragment id 0x${walker.fragId.toString(16)} offset ${walker.fragOffset * IPV6_EXT_UNIT}${walker.moreFragments ? ' more' : ''}`);
    }
    const hl = nh === IPPROTO_FRAGMENT ? IPV6_FRAG_HEADER_LEN : (b[at + IPV6_EXT_LEN] + 1) * IPV6_EXT_UNIT;
    nh = b[at + IPV6_EXT_NEXT_HEADER];
    at += hl;
  }
  return names.join(', ');
}

const NA_FLAG_NAMES: [number, string][] = [
  [NDP_NA_FLAG_ROUTER, 'router'],
  [NDP_NA_FLAG_SOLICITED, 'solicited'],
  [NDP_NA_FLAG_OVERRIDE, 'override'],
];

/** The ICMPv6 message at m, of which n bytes are there: echo as "type T id N", NDP and errors by name. */
function icmpv6Text(b: Uint8Array, m: number, n: number, quoteErrors: boolean): string {
  if (n < 4) return '(truncated)';
  const type = b[m];
  const code = b[m + 1];
  if ((type === ICMPV6_ECHO_REQUEST || type === ICMPV6_ECHO_REPLY) && n >= ICMPV6_HEADER_LEN) return `type ${type} id ${readU16(b, m + ICMPV6_ID)}`;
  if (type === NDP_ROUTER_SOLICIT) return 'router solicitation';
  if (type === NDP_ROUTER_ADVERT) return 'router advertisement';
  if (type === NDP_NEIGHBOR_SOLICIT && n >= NDP_NS_LEN) return `neighbor solicitation for ${address6(b, m + NDP_TARGET)}`;
  if (type === NDP_NEIGHBOR_ADVERT && n >= NDP_NA_LEN) {
    const flags = NA_FLAG_NAMES.filter(([bit]) => (b[m + NDP_NA_FLAGS] & bit) !== 0).map(([, name]) => name);
    return `neighbor advertisement for ${address6(b, m + NDP_TARGET)}${flags.length > 0 ? ` (${flags.join(', ')})` : ''}`;
  }
  if (type === NDP_REDIRECT && n >= NDP_REDIRECT_LEN) return `redirect of ${address6(b, m + NDP_REDIRECT_DST)} to ${address6(b, m + NDP_TARGET)}`;
  if (!isIcmpv6Error(type) || n < ICMPV6_HEADER_LEN) return `type ${type} code ${code}`;
  let what: string;
  if (type === ICMPV6_DEST_UNREACH) what = `destination unreachable code ${code}`;
  else if (type === ICMPV6_PACKET_TOO_BIG) what = `packet too big mtu ${readU32(b, m + ICMPV6_MTU)}`;
  else if (type === ICMPV6_TIME_EXCEEDED) what = `time exceeded code ${code}`;
  else if (type === ICMPV6_PARAM_PROBLEM) what = `parameter problem code ${code} pointer ${readU32(b, m + ICMPV6_POINTER)}`;
  else what = `type ${type} code ${code}`;
  const quote = m + ICMPV6_HEADER_LEN;
  const quoted = n - ICMPV6_HEADER_LEN;
  if (!quoteErrors || quoted < IPV6_HEADER_LEN || b[quote] >>> 4 !== VERSION_6) return what;
  return `${what}, about ${describeIpv6(b, quote, quoted, false)}`;
}

export function describeFrame(b: Uint8Array, e: number, len: number): string {
  const eth = `${macToString(readMac(b, e + 6))} -> ${macToString(readMac(b, e))}`;
  const type = readU16(b, e + 12);
  if (type === ETHERTYPE_IPV4 && len >= 34) return `${eth}, ${describePacket(b, e + 14)} ttl ${b[e + 22]}`;
  if (type === ETHERTYPE_IPV6 && len >= ETH_HEADER + IPV6_HEADER_LEN) {
    return `${eth}, ${describeIpv6(b, e + ETH_HEADER, len - ETH_HEADER, true)} hop limit ${b[e + ETH_HEADER + IPV6_HOP_LIMIT]}`;
  }
  if (type === ETHERTYPE_ARP && len >= 42) return `${eth}, ARP ${b[e + 21] === 1 ? 'request' : 'reply'} for ${ip4ToString(readU32(b, e + 38))}`;
  return `${eth}, ethertype 0x${type.toString(16)}`;
}
