/*
 * One-line text of an IPv6 packet for NAT66 trace notes (control plane only: allocates
 * strings), in the form of wire/describe.ts: "tcp [2001:db8:100::2]:40000 -> [2001:db8:113::1]:80",
 * "icmpv6 2001:db8:100::2 -> 2001:db8:113::1 type 128 id 7", "proto 47 a -> b".
 */
import { readU16 } from '../wire/bytes.js';
import { ip6ToString, readIp6 } from '../wire/ip6.js';
import { IPPROTO_ICMPV6, IPV6_DST, IPV6_SRC, Ipv6ExtWalker, Ipv6View } from '../wire/ipv6.js';

export function describePacket6(b: Uint8Array, ip: number, len: number): string {
  const v = new Ipv6View().reset(b, ip, len);
  if (v.checkHeader() !== 0) return `ipv6 (${len} bytes, no header)`;
  const src = ip6ToString(readIp6(b, ip + IPV6_SRC, new Uint32Array(4)));
  const dst = ip6ToString(readIp6(b, ip + IPV6_DST, new Uint32Array(4)));
  const w = new Ipv6ExtWalker();
  const total = Math.min(len, v.packetLength);
  if (w.walk(b, ip, total) !== 0) return `ipv6 ${src} -> ${dst} (bad extension headers)`;
  const p = w.protocol;
  const l4 = w.offset;
  const have = ip + total - l4;
  const frag = w.isLaterFragment ? ` fragment +${w.fragOffset * 8}` : '';
  if ((p === 6 || p === 17) && frag === '' && have >= 4) return `${p === 6 ? 'tcp' : 'udp'} [${src}]:${readU16(b, l4)} -> [${dst}]:${readU16(b, l4 + 2)}`;
  if (p === IPPROTO_ICMPV6 && frag === '' && have >= 8) return `icmpv6 ${src} -> ${dst} type ${b[l4]} id ${readU16(b, l4 + 4)}`;
  return `proto ${p} ${src} -> ${dst}${frag}`;
}
