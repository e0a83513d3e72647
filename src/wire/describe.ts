/*
 * One-line text of a packet for traces and logs (control plane only: allocates strings).
 *   describePacket(buf, ip)       "tcp 10.100.0.2:40000 -> 203.0.113.1:80"
 *   describeFrame(buf, eth, len)  "aa:.. -> bb:.., tcp 10.100.0.2:40000 -> 203.0.113.1:80 ttl 63"
 */
import { readU16, readU32 } from './bytes.js';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4 } from './ethernet.js';
import { ip4ToString } from './ip4.js';
import { macToString, readMac } from './mac.js';

export function describePacket(b: Uint8Array, ip: number): string {
  const proto = b[ip + 9];
  const hl = (b[ip] & 15) << 2;
  const src = ip4ToString(readU32(b, ip + 12));
  const dst = ip4ToString(readU32(b, ip + 16));
  const l4 = ip + hl;
  if (proto === 6 || proto === 17) return `${proto === 6 ? 'tcp' : 'udp'} ${src}:${readU16(b, l4)} -> ${dst}:${readU16(b, l4 + 2)}`;
  if (proto === 1) return `icmp ${src} -> ${dst} type ${b[l4]} id ${readU16(b, l4 + 4)}`;
  return `proto ${proto} ${src} -> ${dst}`;
}

export function describeFrame(b: Uint8Array, e: number, len: number): string {
  const eth = `${macToString(readMac(b, e + 6))} -> ${macToString(readMac(b, e))}`;
  const type = readU16(b, e + 12);
  if (type === ETHERTYPE_IPV4 && len >= 34) return `${eth}, ${describePacket(b, e + 14)} ttl ${b[e + 22]}`;
  if (type === ETHERTYPE_ARP && len >= 42) return `${eth}, ARP ${b[e + 21] === 1 ? 'request' : 'reply'} for ${ip4ToString(readU32(b, e + 38))}`;
  return `${eth}, ethertype 0x${type.toString(16)}`;
}
