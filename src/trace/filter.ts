/*
 * Packet filter: a tcpdump-like expression language compiled once into a flat program and
 * evaluated per frame without allocation.
 *
 * Input:  filter source text (compileFilter); per frame (buf, off, len) with off at the
 *         Ethernet header.
 * Output: PacketFilter.match() -> boolean.
 * Config: the expression. Primitives:
 *   arp | ip | ip6 | icmp | icmp6 | tcp | udp | vlan [ID] | proto N|NAME
 *   [src|dst|src or dst|src and dst] host A      (IPv4: src/dst, ARP sender/target address;
 *                                                  IPv6: src/dst of the fixed header)
 *   [src|dst|...] net A/LEN | net A mask M | net A[.B[.C]]   (IPv4)
 *   [src|dst|...] net A6/LEN | net A6            (IPv6 prefix; without /LEN a host, as in pcap)
 *   [src|dst|...] port N | portrange A-B        (TCP/UDP/SCTP over either family, first fragment only)
 *   ether [src|dst|...] [host] MAC | ether broadcast | ether multicast | broadcast | multicast
 *   ip multicast | ip6 multicast                 (destination 224.0.0.0/4 | ff00::/8)
 *   len < N | len <= N | len > N | len >= N | len = N | len != N | less N | greater N
 *   a bare address of either family (= host A) or prefix (= net A/LEN); `src A` = `src host A`
 *   A protocol keyword followed by a qualifier is ANDed with it: `tcp port 80`,
 *   `udp dst port 53`, `arp host 10.100.0.1`, `ip proto 17`, `ip6 proto 58`, `ip6 src fe80::1`;
 *   an address of the other family after ip/ip6/arp/icmp/icmp6 is an error (it never matches).
 * Protocols as in pcap-filter(7): `proto N` is IPv4's protocol or IPv6's; `tcp`/`udp` = `proto
 *   6`/`proto 17` of either family; `icmp` = IPv4 ICMP only; `icmp6` = ICMPv6 = `ip6 proto 58`.
 *   IPv6's protocol is the upper layer found by walking the extension-header chain (hop-by-
 *   hop, routing, fragment, destination options; bounded by Ipv6ExtWalker: 8 headers, 1 KiB),
 *   so ICMPv6 behind a hop-by-hop header (MLD) is `icmp6` too; like pcap's `ip6 proto`, the
 *   first next-header value also matches (`ip6 proto 44`: fragments; `ip6 proto 0`:
 *   hop-by-hop). A later fragment has its fragment header's protocol but no ports; a chain
 *   that does not walk (truncated, too long) has no protocol.
 * Combined with and/&&, or/||, not/!, parentheses. As in tcpdump (pcap-filter(7)), `and`
 * and `or` have EQUAL precedence and associate left to right; `not` binds tightest:
 * `a or b and c` means `(a or b) and c`. An empty expression matches every frame.
 * 802.1Q / 802.1ad tags (up to two) are looked through: `ip`, `host`, `port` ... match tagged
 * and untagged frames alike; `vlan` matches tagged frames only, `vlan 100` the outer VID 100.
 * Errors: FilterSyntaxError with `.position` (0-based character offset in the source) and a
 * message like "expected a port number after 'port' at 12".
 * Counters: none (callers count matches).
 *
 * Program layout: Int32Array, 9 ints per instruction:
 *   [op, dir, a, b, c, d, e, jumpIfTrue, jumpIfFalse]; a jump < 0 ends evaluation (ACCEPT/REJECT).
 *   IPv6 addresses are four int32 words in a..d (most significant first), a prefix length in e.
 * All jumps go forward, so evaluation always terminates. Headers are decoded once per frame
 * into number fields and a scratch Int32Array of the PacketFilter instance (so an instance is
 * not re-entrant).
 */

import { ip6ToString, parseCidrIp6, parseIp6 } from '../wire/ip6.js';
import { IPV6_HEADER_LEN, IPV6_NEXT_HEADER, IPV6_PAYLOAD_LEN, IPV6_SRC, Ipv6ExtWalker } from '../wire/ipv6.js';

export class FilterSyntaxError extends Error {
  readonly position: number;
  constructor(message: string, position: number) {
    super(`${message} at ${position}`);
    this.name = 'FilterSyntaxError';
    this.position = position;
  }
}

/* ---- opcodes ---- */
const OP_TRUE = 0;
const OP_ETHERTYPE = 1; // a = ethertype (after VLAN tags)
const OP_IPPROTO = 2; // a = protocol, b = FAMILY_*
const OP_VLAN = 3; // a = VID or -1
const OP_HOST = 4; // a = IPv4 addr (int32)
const OP_NET = 5; // a = net, b = mask
const OP_PORT = 6; // a = lo, b = hi
const OP_ETHER = 7; // a = hi16, b = lo32
const OP_BCAST = 8;
const OP_MCAST = 9;
const OP_LEN = 10; // a = cmp, b = N
const OP_HOST6 = 11; // a..d = IPv6 address words
const OP_NET6 = 12; // a..d = network words, e = prefix length

const FAMILY_ANY = 0;
const FAMILY_4 = 4;
const FAMILY_6 = 6;

const CMP_LT = 0;
const CMP_LE = 1;
const CMP_GT = 2;
const CMP_GE = 3;
const CMP_EQ = 4;
const CMP_NE = 5;

const DIR_SRC = 1;
const DIR_DST = 2;
const DIR_OR = 3;
const DIR_AND = 4;

const ACCEPT = -1;
const REJECT = -2;
const STRIDE = 9;
const JT = 7; // offsets of the jumps in an instruction
const JF = 8;
const IP6_BITS = 128;

const OP_NAMES = ['true', 'ethertype', 'ipproto', 'vlan', 'host', 'net', 'port', 'ether', 'broadcast', 'multicast', 'len', 'host6', 'net6'];
const DIR_NAMES = ['', 'src ', 'dst ', 'src or dst ', 'src and dst '];

const ETH_IPV4 = 0x0800;
const ETH_ARP = 0x0806;
const ETH_IPV6 = 0x86dd;

/* ---- AST ---- */
type Node =
  | { k: 'and' | 'or'; a: Node; b: Node }
  | { k: 'not'; a: Node }
  | { k: 'prim'; op: number; dir: number; a: number; b: number; c: number; d: number; e: number };

function prim(op: number, dir = 0, a = 0, b = 0, c = 0, d = 0, e = 0): Node {
  return { k: 'prim', op, dir, a, b, c, d, e };
}

/** An IPv6 host (prefixLen 128) or network: the four words as int32. */
function prim6(dir: number, w: Uint32Array, prefixLen: number): Node {
  return prefixLen === IP6_BITS ? prim(OP_HOST6, dir, w[0] | 0, w[1] | 0, w[2] | 0, w[3] | 0) : prim(OP_NET6, dir, w[0] | 0, w[1] | 0, w[2] | 0, w[3] | 0, prefixLen);
}

/* ---- tokenizer ---- */
interface Token {
  kind: 'word' | 'op' | 'end';
  text: string;
  pos: number;
}

function isWordChar(c: number): boolean {
  return (
    (c >= 48 && c <= 57) || // 0-9
    (c >= 65 && c <= 90) || // A-Z
    (c >= 97 && c <= 122) || // a-z
    c === 46 || c === 58 || c === 47 || c === 45 || c === 95 // . : / - _
  );
}

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const ch = src.charCodeAt(i);
    if (ch === 32 || ch === 9 || ch === 10 || ch === 13) {
      i++;
      continue;
    }
    if (isWordChar(ch)) {
      const start = i;
      while (i < src.length && isWordChar(src.charCodeAt(i))) i++;
      out.push({ kind: 'word', text: src.slice(start, i), pos: start });
      continue;
    }
    const two = src.slice(i, i + 2);
    if (two === '&&' || two === '||' || two === '<=' || two === '>=' || two === '==' || two === '!=') {
      out.push({ kind: 'op', text: two, pos: i });
      i += 2;
      continue;
    }
    if ('()!<>='.includes(src[i]!)) {
      out.push({ kind: 'op', text: src[i]!, pos: i });
      i++;
      continue;
    }
    throw new FilterSyntaxError(`unexpected character '${src[i]}'`, i);
  }
  out.push({ kind: 'end', text: '', pos: src.length });
  return out;
}

/* ---- value parsers (return null when the text is not of that kind) ---- */
function parseIpv4(text: string, minParts = 4): { addr: number; parts: number } | null {
  const parts = text.split('.');
  if (parts.length < minParts || parts.length > 4) return null;
  let addr = 0;
  for (let i = 0; i < 4; i++) {
    let v = 0;
    if (i < parts.length) {
      const p = parts[i]!;
      if (!/^[0-9]{1,3}$/.test(p)) return null;
      v = Number(p);
      if (v > 255) return null;
    }
    addr = addr * 256 + v;
  }
  return { addr: addr | 0, parts: parts.length };
}

function parseMac(text: string): { hi: number; lo: number } | null {
  const parts = text.split(/[:-]/);
  if (parts.length !== 6) return null;
  const b: number[] = [];
  for (const p of parts) {
    if (!/^[0-9a-fA-F]{1,2}$/.test(p)) return null;
    b.push(parseInt(p, 16));
  }
  return { hi: (b[0]! << 8) | b[1]!, lo: ((b[2]! << 24) | (b[3]! << 16) | (b[4]! << 8) | b[5]!) | 0 };
}

function parseNum(text: string): number | null {
  if (/^[0-9]+$/.test(text)) return Number(text);
  if (/^0x[0-9a-fA-F]+$/.test(text)) return parseInt(text.slice(2), 16);
  return null;
}

function prefixMask(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) | 0;
}

/** Mask of word i (0..3) of an IPv6 prefix of length len, as int32. */
function prefixMask6(len: number, i: number): number {
  const bits = len - 32 * i;
  return bits <= 0 ? 0 : bits >= 32 ? -1 : -1 << (32 - bits);
}

/** "A6" or "A6/LEN" (LEN 0..128); null when the text is not an IPv6 address. */
function parseIpv6Prefix(text: string): { addr: Uint32Array; prefixLen: number } | null {
  if (!text.includes(':')) return null;
  const slash = text.indexOf('/');
  if (slash < 0) {
    const addr = parseIp6(text);
    return addr === null ? null : { addr, prefixLen: IP6_BITS };
  }
  return parseCidrIp6(text);
}

const PROTO_KEYWORDS: Record<string, Node> = {
  arp: prim(OP_ETHERTYPE, 0, ETH_ARP),
  ip: prim(OP_ETHERTYPE, 0, ETH_IPV4),
  ip6: prim(OP_ETHERTYPE, 0, ETH_IPV6),
  icmp: prim(OP_IPPROTO, 0, 1, FAMILY_4),
  icmp6: prim(OP_IPPROTO, 0, 58, FAMILY_6),
  tcp: prim(OP_IPPROTO, 0, 6, FAMILY_ANY),
  udp: prim(OP_IPPROTO, 0, 17, FAMILY_ANY),
};
/** The address family a protocol keyword implies (its host/net qualifiers must be of it). */
const KEYWORD_FAMILY: Record<string, number> = { arp: FAMILY_4, ip: FAMILY_4, icmp: FAMILY_4, ip6: FAMILY_6, icmp6: FAMILY_6 };
const QUALIFIER_STARTS = new Set(['src', 'dst', 'host', 'net', 'port', 'portrange', 'proto']);

/* ---- parser ---- */
class Parser {
  private i = 0;
  constructor(private readonly toks: Token[]) {}

  private peek(o = 0): Token {
    return this.toks[Math.min(this.i + o, this.toks.length - 1)]!;
  }
  private next(): Token {
    const t = this.peek();
    if (this.i < this.toks.length - 1) this.i++;
    return t;
  }
  private isWord(t: Token, ...w: string[]): boolean {
    return t.kind === 'word' && w.includes(t.text.toLowerCase());
  }
  private describe(t: Token): string {
    return t.kind === 'end' ? 'end of filter' : `'${t.text}'`;
  }

  parseAll(): Node | null {
    if (this.peek().kind === 'end') return null;
    const n = this.parseExpr();
    const t = this.peek();
    if (t.kind !== 'end') {
      const hint = t.text === ')' ? ' (no matching \'(\')' : ' (expected \'and\', \'or\' or end of filter)';
      throw new FilterSyntaxError(`unexpected ${this.describe(t)}${hint}`, t.pos);
    }
    return n;
  }

  /* and/or: equal precedence, left-associative (pcap-filter semantics). */
  private parseExpr(): Node {
    let left = this.parseUnary();
    for (;;) {
      const t = this.peek();
      let k: 'and' | 'or' | null = null;
      if (this.isWord(t, 'and') || (t.kind === 'op' && t.text === '&&')) k = 'and';
      else if (this.isWord(t, 'or') || (t.kind === 'op' && t.text === '||')) k = 'or';
      if (k === null) return left;
      this.next();
      if (this.peek().kind === 'end' || (this.peek().kind === 'op' && this.peek().text === ')')) {
        throw new FilterSyntaxError(`expected an expression after '${t.text}'`, this.peek().pos);
      }
      const right = this.parseUnary();
      left = { k, a: left, b: right };
    }
  }

  private parseUnary(): Node {
    const t = this.peek();
    if (this.isWord(t, 'not') || (t.kind === 'op' && t.text === '!')) {
      this.next();
      if (this.peek().kind === 'end') throw new FilterSyntaxError(`expected an expression after '${t.text}'`, this.peek().pos);
      return { k: 'not', a: this.parseUnary() };
    }
    if (t.kind === 'op' && t.text === '(') {
      this.next();
      if (this.peek().kind === 'end' || this.peek().text === ')') {
        throw new FilterSyntaxError(`expected an expression after '('`, this.peek().pos);
      }
      const n = this.parseExpr();
      const c = this.peek();
      if (!(c.kind === 'op' && c.text === ')')) {
        throw new FilterSyntaxError(`expected ')' to close '(' at ${t.pos}, found ${this.describe(c)}`, c.pos);
      }
      this.next();
      return n;
    }
    return this.parsePrimitive();
  }

  private parseDir(): number {
    const t = this.peek();
    if (!this.isWord(t, 'src', 'dst')) return 0;
    const first = t.text.toLowerCase();
    const join = this.peek(1);
    const second = this.peek(2);
    if (this.isWord(join, 'or', 'and') && this.isWord(second, first === 'src' ? 'dst' : 'src')) {
      this.i += 3;
      return join.text.toLowerCase() === 'or' ? DIR_OR : DIR_AND;
    }
    this.next();
    return first === 'src' ? DIR_SRC : DIR_DST;
  }

  private expectNumber(after: Token, what: string, max: number): number {
    const t = this.next();
    const v = t.kind === 'word' ? parseNum(t.text) : null;
    if (v === null) throw new FilterSyntaxError(`expected ${what} after '${after.text}'`, t.pos);
    if (v > max) throw new FilterSyntaxError(`${what.replace(/^an? /, '')} ${t.text} out of range (max ${max})`, t.pos);
    return v;
  }

  private parseHostArg(after: Token, dir: number): Node {
    const t = this.next();
    const a = t.kind === 'word' ? parseIpv4(t.text) : null;
    if (a) return prim(OP_HOST, dir || DIR_OR, a.addr);
    const a6 = t.kind === 'word' && t.text.includes(':') && !t.text.includes('/') ? parseIp6(t.text) : null;
    if (a6) return prim6(dir || DIR_OR, a6, IP6_BITS);
    throw new FilterSyntaxError(`expected an IPv4 or IPv6 address after '${after.text}' (host names are not resolved)`, t.pos);
  }

  private parseNetArg(after: Token, dir: number): Node {
    const t = this.next();
    const bad = (): never => {
      throw new FilterSyntaxError(`expected a network like 10.100.0.0/24 or 2001:db8::/64 after '${after.text}'`, t.pos);
    };
    if (t.kind !== 'word') bad();
    if (t.text.includes(':')) return this.parseNet6(t, dir, bad);
    const slash = t.text.indexOf('/');
    let addr: number;
    let mask: number;
    if (slash >= 0) {
      const a = parseIpv4(t.text.slice(0, slash), 1);
      const lenText = t.text.slice(slash + 1);
      if (!a || !/^[0-9]{1,2}$/.test(lenText) || Number(lenText) > 32) bad();
      addr = a!.addr;
      mask = prefixMask(Number(lenText));
    } else {
      const a = parseIpv4(t.text, 1);
      if (!a) bad();
      addr = a!.addr;
      mask = prefixMask(a!.parts * 8);
      if (this.isWord(this.peek(), 'mask')) {
        const mt = this.next();
        const m = this.next();
        const mv = m.kind === 'word' ? parseIpv4(m.text) : null;
        if (!mv) throw new FilterSyntaxError(`expected a netmask like 255.255.255.0 after '${mt.text}'`, m.pos);
        mask = mv.addr;
      }
    }
    if ((addr & ~mask) !== 0) {
      throw new FilterSyntaxError(`non-network bits set in '${t.text}'`, t.pos);
    }
    return prim(OP_NET, dir || DIR_OR, addr & mask, mask);
  }

  /** An IPv6 network A6/LEN, or A6 alone (a host: pcap-filter's IPv6 `net` without a length). */
  private parseNet6(t: Token, dir: number, bad: () => never): Node {
    const p = parseIpv6Prefix(t.text);
    if (p === null) bad();
    const { addr, prefixLen } = p!;
    for (let i = 0; i < 4; i++) {
      if ((addr[i] & ~prefixMask6(prefixLen, i)) !== 0) throw new FilterSyntaxError(`non-network bits set in '${t.text}'`, t.pos);
    }
    if (this.isWord(this.peek(), 'mask')) {
      throw new FilterSyntaxError(`'mask' is for IPv4 networks: write an IPv6 network as ${t.text.split('/')[0]}/LEN`, this.peek().pos);
    }
    return prim6(dir || DIR_OR, addr, prefixLen);
  }

  private parsePortRange(after: Token, dir: number): Node {
    const t = this.next();
    const m = t.kind === 'word' ? /^([0-9]+)-([0-9]+)$/.exec(t.text) : null;
    if (!m) throw new FilterSyntaxError(`expected a port range like 1000-2000 after '${after.text}'`, t.pos);
    const lo = Number(m[1]);
    const hi = Number(m[2]);
    if (lo > 65535 || hi > 65535) throw new FilterSyntaxError(`port range ${t.text} out of range (max 65535)`, t.pos);
    return prim(OP_PORT, dir || DIR_OR, Math.min(lo, hi), Math.max(lo, hi));
  }

  /** `ip6 host 10.100.0.1`, `arp net 2001:db8::/32`: a keyword and an address of the other family never match. */
  private checkFamily(keyword: Token, q: Node, pos: number): void {
    const family = KEYWORD_FAMILY[keyword.text.toLowerCase()];
    if (family === undefined || q.k !== 'prim') return;
    const addrFamily = q.op === OP_HOST || q.op === OP_NET ? FAMILY_4 : q.op === OP_HOST6 || q.op === OP_NET6 ? FAMILY_6 : FAMILY_ANY;
    if (addrFamily !== FAMILY_ANY && addrFamily !== family) {
      throw new FilterSyntaxError(`an IPv${addrFamily} address after '${keyword.text}' never matches`, pos);
    }
  }

  private parsePrimitive(): Node {
    const t = this.peek();
    if (t.kind === 'end') throw new FilterSyntaxError('expected an expression', t.pos);
    if (t.kind !== 'word') throw new FilterSyntaxError(`unexpected '${t.text}' (expected a primitive such as 'host', 'port' or 'tcp')`, t.pos);
    const w = t.text.toLowerCase();

    const proto = PROTO_KEYWORDS[w];
    if (proto) {
      this.next();
      const n = this.peek();
      if ((w === 'ip' || w === 'ip6') && this.isWord(n, 'multicast')) {
        this.next();
        const group = w === 'ip' ? prim(OP_NET, DIR_DST, 0xe0000000 | 0, prefixMask(4)) : prim(OP_NET6, DIR_DST, 0xff000000 | 0, 0, 0, 0, 8);
        return { k: 'and', a: proto, b: group };
      }
      if (this.isWord(n, ...QUALIFIER_STARTS)) {
        // `tcp port 80`, `arp host A`, `ip proto 17`, `ip6 proto 58`: protocol AND the qualified primitive.
        const q = this.parsePrimitive();
        this.checkFamily(t, q, n.pos);
        return { k: 'and', a: proto, b: q };
      }
      return proto;
    }

    switch (w) {
      case 'vlan': {
        this.next();
        const n = this.peek();
        if (n.kind === 'word' && parseNum(n.text) !== null) {
          return prim(OP_VLAN, 0, this.expectNumber(t, 'a VLAN id', 4095));
        }
        return prim(OP_VLAN, 0, -1);
      }
      case 'proto': {
        this.next();
        const n = this.peek();
        const named = n.kind === 'word' ? PROTO_KEYWORDS[n.text.toLowerCase()] : undefined;
        if (named && named.k === 'prim' && named.op === OP_IPPROTO) {
          this.next();
          return named;
        }
        return prim(OP_IPPROTO, 0, this.expectNumber(t, 'a protocol number', 255));
      }
      case 'broadcast':
        this.next();
        return prim(OP_BCAST);
      case 'multicast':
        this.next();
        return prim(OP_MCAST);
      case 'ether': {
        this.next();
        const n = this.peek();
        if (this.isWord(n, 'broadcast')) {
          this.next();
          return prim(OP_BCAST);
        }
        if (this.isWord(n, 'multicast')) {
          this.next();
          return prim(OP_MCAST);
        }
        const dir = this.parseDir();
        let after = dir ? this.toks[this.i - 1]! : t;
        if (this.isWord(this.peek(), 'host')) after = this.next();
        else if (!dir) {
          throw new FilterSyntaxError(`expected 'host', 'src', 'dst', 'broadcast' or 'multicast' after 'ether'`, this.peek().pos);
        }
        const m = this.next();
        const mac = m.kind === 'word' ? parseMac(m.text) : null;
        if (!mac) throw new FilterSyntaxError(`expected a MAC address like 02:00:00:00:00:01 after '${after.text}'`, m.pos);
        return prim(OP_ETHER, dir || DIR_OR, mac.hi, mac.lo);
      }
      case 'len': {
        this.next();
        const c = this.next();
        const cmps: Record<string, number> = { '<': CMP_LT, '<=': CMP_LE, '>': CMP_GT, '>=': CMP_GE, '=': CMP_EQ, '==': CMP_EQ, '!=': CMP_NE };
        const cmp = c.kind === 'op' ? cmps[c.text] : undefined;
        if (cmp === undefined) throw new FilterSyntaxError(`expected '<', '<=', '>', '>=', '=' or '!=' after 'len'`, c.pos);
        return prim(OP_LEN, 0, cmp, this.expectNumber(c, 'a length', 0x7fffffff));
      }
      case 'less':
        this.next();
        return prim(OP_LEN, 0, CMP_LE, this.expectNumber(t, 'a length', 0x7fffffff));
      case 'greater':
        this.next();
        return prim(OP_LEN, 0, CMP_GE, this.expectNumber(t, 'a length', 0x7fffffff));
    }

    // [dir] host|net|port|portrange ARG, [dir] ADDR, bare ADDR[/LEN]
    const dir = this.parseDir();
    const k = this.peek();
    const after = dir ? this.toks[this.i - 1]! : k;
    if (this.isWord(k, 'host')) {
      this.next();
      return this.parseHostArg(k, dir);
    }
    if (this.isWord(k, 'net')) {
      this.next();
      return this.parseNetArg(k, dir);
    }
    if (this.isWord(k, 'port')) {
      this.next();
      const p = this.expectNumber(k, 'a port number', 65535);
      return prim(OP_PORT, dir || DIR_OR, p, p);
    }
    if (this.isWord(k, 'portrange')) {
      this.next();
      return this.parsePortRange(k, dir);
    }
    if (k.kind === 'word' && /^[0-9]+(\.[0-9]+){3}$/.test(k.text)) {
      return this.parseHostArg(after, dir);
    }
    if (k.kind === 'word' && /^[0-9.]+\/[0-9]+$/.test(k.text)) {
      return this.parseNetArg(after, dir);
    }
    if (k.kind === 'word' && parseIpv6Prefix(k.text) !== null) {
      return this.parseNetArg(after, dir); // an IPv6 address is a host, A6/LEN a network
    }
    if (dir) {
      throw new FilterSyntaxError(`expected 'host', 'net', 'port' or 'portrange' after '${after.text}'`, k.pos);
    }
    throw new FilterSyntaxError(`unknown primitive ${this.describe(k)}`, k.pos);
  }
}

/* ---- code generation: branch-on-true/false labels, all jumps forward ---- */
class CodeGen {
  readonly code: number[] = [];
  private readonly labelPos: number[] = [];
  private readonly fixups: number[] = []; // indices in code holding label ids

  newLabel(): number {
    this.labelPos.push(-1);
    return this.labelPos.length - 1 + 2; // 0/1 reserved: ACCEPT / REJECT label ids
  }
  place(label: number): void {
    this.labelPos[label - 2] = this.code.length / STRIDE;
  }
  gen(n: Node, t: number, f: number): void {
    switch (n.k) {
      case 'and': {
        const l = this.newLabel();
        this.gen(n.a, l, f);
        this.place(l);
        this.gen(n.b, t, f);
        return;
      }
      case 'or': {
        const l = this.newLabel();
        this.gen(n.a, t, l);
        this.place(l);
        this.gen(n.b, t, f);
        return;
      }
      case 'not':
        this.gen(n.a, f, t);
        return;
      case 'prim': {
        const at = this.code.length;
        this.code.push(n.op, n.dir, n.a, n.b, n.c, n.d, n.e, t, f);
        this.fixups.push(at + JT, at + JF);
        return;
      }
    }
  }
  finish(): Int32Array {
    for (const idx of this.fixups) {
      const label = this.code[idx]!;
      this.code[idx] = label === 0 ? ACCEPT : label === 1 ? REJECT : this.labelPos[label - 2]!;
    }
    return Int32Array.from(this.code);
  }
}

/** A compiled filter. `match` allocates nothing; one instance must not be used re-entrantly. */
export class PacketFilter {
  readonly source: string;
  /** True when the expression is empty (every frame matches). */
  readonly matchesAll: boolean;
  private readonly code: Int32Array;

  /* per-frame decode scratch */
  private etype = -1;
  private vlanCount = 0;
  private vlanId = -1;
  private ipOk = false;
  private ipSrc = 0;
  private ipDst = 0;
  private ipProto = -1;
  private portsOk = false;
  private sport = 0;
  private dport = 0;
  private arpOk = false;
  private arpSpa = 0;
  private arpTpa = 0;
  private ip6Ok = false;
  /** Source address words 0..3, destination 4..7 (int32). */
  private readonly ip6Addr = new Int32Array(8);
  /** Upper-layer protocol after the extension headers (-1: the chain did not walk). */
  private ip6Proto = -1;
  /** The fixed header's next header (pcap's `ip6 proto`). */
  private ip6FirstHeader = -1;
  private readonly ext = new Ipv6ExtWalker();

  constructor(source: string, code: Int32Array) {
    this.source = source;
    this.code = code;
    this.matchesAll = code.length === STRIDE && code[0] === OP_TRUE;
  }

  private decode(buf: Uint8Array, off: number, len: number): void {
    this.etype = -1;
    this.vlanCount = 0;
    this.vlanId = -1;
    this.ipOk = false;
    this.ipProto = -1;
    this.portsOk = false;
    this.arpOk = false;
    this.ip6Ok = false;
    this.ip6Proto = -1;
    if (len < 14) return;
    const end = off + len;
    let p = off + 12;
    let et = (buf[p]! << 8) | buf[p + 1]!;
    while ((et === 0x8100 || et === 0x88a8 || et === 0x9100) && this.vlanCount < 2 && p + 6 <= end) {
      if (this.vlanCount === 0) this.vlanId = ((buf[p + 2]! << 8) | buf[p + 3]!) & 0xfff;
      this.vlanCount++;
      p += 4;
      et = (buf[p]! << 8) | buf[p + 1]!;
    }
    this.etype = et;
    const l3 = p + 2;
    if (et === ETH_IPV4) {
      if (l3 + 20 > end) return;
      const vihl = buf[l3]!;
      const ihl = (vihl & 15) << 2;
      if (vihl >> 4 !== 4 || ihl < 20 || l3 + ihl > end) return;
      this.ipOk = true;
      this.ipProto = buf[l3 + 9]!;
      this.ipSrc = (buf[l3 + 12]! << 24) | (buf[l3 + 13]! << 16) | (buf[l3 + 14]! << 8) | buf[l3 + 15]!;
      this.ipDst = (buf[l3 + 16]! << 24) | (buf[l3 + 17]! << 16) | (buf[l3 + 18]! << 8) | buf[l3 + 19]!;
      const fragOff = ((buf[l3 + 6]! << 8) | buf[l3 + 7]!) & 0x1fff;
      const l4 = l3 + ihl;
      if (fragOff === 0 && hasPorts(this.ipProto)) this.decodePorts(buf, l4, end);
    } else if (et === ETH_IPV6) {
      this.decodeIpv6(buf, l3, end);
    } else if (et === ETH_ARP) {
      if (l3 + 28 > end) return;
      // Ethernet/IPv4 ARP only
      if (buf[l3]! !== 0 || buf[l3 + 1]! !== 1 || buf[l3 + 2]! !== 8 || buf[l3 + 3]! !== 0 || buf[l3 + 4]! !== 6 || buf[l3 + 5]! !== 4) return;
      this.arpOk = true;
      this.arpSpa = (buf[l3 + 14]! << 24) | (buf[l3 + 15]! << 16) | (buf[l3 + 16]! << 8) | buf[l3 + 17]!;
      this.arpTpa = (buf[l3 + 24]! << 24) | (buf[l3 + 25]! << 16) | (buf[l3 + 26]! << 8) | buf[l3 + 27]!;
    }
  }

  private decodePorts(buf: Uint8Array, l4: number, end: number): void {
    if (l4 + 4 > end) return;
    this.portsOk = true;
    this.sport = (buf[l4]! << 8) | buf[l4 + 1]!;
    this.dport = (buf[l4 + 2]! << 8) | buf[l4 + 3]!;
  }

  /** The IPv6 packet at l3: addresses, protocol through the extension chain, ports of a first fragment. */
  private decodeIpv6(buf: Uint8Array, l3: number, end: number): void {
    if (l3 + IPV6_HEADER_LEN > end || buf[l3]! >>> 4 !== 6) return;
    this.ip6Ok = true;
    const a = this.ip6Addr;
    for (let i = 0, o = l3 + IPV6_SRC; i < 8; i++, o += 4) a[i] = (buf[o]! << 24) | (buf[o + 1]! << 16) | (buf[o + 2]! << 8) | buf[o + 3]!;
    this.ip6FirstHeader = buf[l3 + IPV6_NEXT_HEADER]!;
    // Without link padding: at most what the payload length says.
    const avail = Math.min(end - l3, IPV6_HEADER_LEN + ((buf[l3 + IPV6_PAYLOAD_LEN]! << 8) | buf[l3 + IPV6_PAYLOAD_LEN + 1]!));
    const w = this.ext;
    if (w.walk(buf, l3, avail) !== 0) return;
    this.ip6Proto = w.protocol;
    if (!w.isLaterFragment && hasPorts(w.protocol)) this.decodePorts(buf, w.offset, l3 + avail);
  }

  /** Word i..i+3 of ip6Addr (0: source, 4: destination) in the prefix at code[base+2 .. base+6) of length prefixLen. */
  private inPrefix6(at: number, code: Int32Array, base: number, prefixLen: number): boolean {
    const a = this.ip6Addr;
    for (let i = 0; i < 4; i++) {
      if (((a[at + i]! ^ code[base + 2 + i]!) & prefixMask6(prefixLen, i)) !== 0) return false;
    }
    return true;
  }

  /** Does the frame at buf[off .. off+len) (Ethernet header first) match? */
  match(buf: Uint8Array, off: number, len: number): boolean {
    const code = this.code;
    if (this.matchesAll) return true;
    this.decode(buf, off, len);
    let pc = 0;
    for (;;) {
      const base = pc * STRIDE;
      const dir = code[base + 1]!;
      const a = code[base + 2]!;
      const b = code[base + 3]!;
      let r = false;
      switch (code[base]!) {
        case OP_TRUE:
          r = true;
          break;
        case OP_ETHERTYPE:
          r = this.etype === a;
          break;
        case OP_IPPROTO:
          r =
            (b !== FAMILY_6 && this.ipOk && this.ipProto === a) ||
            (b !== FAMILY_4 && this.ip6Ok && (this.ip6Proto === a || this.ip6FirstHeader === a));
          break;
        case OP_VLAN:
          r = this.vlanCount > 0 && (a < 0 || this.vlanId === a);
          break;
        case OP_HOST:
        case OP_NET: {
          let s: number;
          let d: number;
          if (this.ipOk) {
            s = this.ipSrc;
            d = this.ipDst;
          } else if (this.arpOk) {
            s = this.arpSpa;
            d = this.arpTpa;
          } else break;
          if (code[base]! === OP_NET) {
            s &= b;
            d &= b;
          }
          r = dirMatch(dir, s === a, d === a);
          break;
        }
        case OP_PORT: {
          if (!this.portsOk) break;
          const sp = this.sport;
          const dp = this.dport;
          r = dirMatch(dir, sp >= a && sp <= b, dp >= a && dp <= b);
          break;
        }
        case OP_ETHER: {
          if (len < 14) break;
          const dHi = (buf[off]! << 8) | buf[off + 1]!;
          const dLo = (buf[off + 2]! << 24) | (buf[off + 3]! << 16) | (buf[off + 4]! << 8) | buf[off + 5]!;
          const sHi = (buf[off + 6]! << 8) | buf[off + 7]!;
          const sLo = (buf[off + 8]! << 24) | (buf[off + 9]! << 16) | (buf[off + 10]! << 8) | buf[off + 11]!;
          r = dirMatch(dir, sHi === a && sLo === b, dHi === a && dLo === b);
          break;
        }
        case OP_BCAST:
          r =
            len >= 6 &&
            (buf[off]! & buf[off + 1]! & buf[off + 2]! & buf[off + 3]! & buf[off + 4]! & buf[off + 5]!) === 0xff;
          break;
        case OP_MCAST:
          r = len >= 6 && (buf[off]! & 1) === 1;
          break;
        case OP_HOST6:
        case OP_NET6: {
          if (!this.ip6Ok) break;
          const plen = code[base]! === OP_HOST6 ? IP6_BITS : code[base + 6]!;
          r = dirMatch(dir, this.inPrefix6(0, code, base, plen), this.inPrefix6(4, code, base, plen));
          break;
        }
        case OP_LEN:
          switch (a) {
            case CMP_LT: r = len < b; break;
            case CMP_LE: r = len <= b; break;
            case CMP_GT: r = len > b; break;
            case CMP_GE: r = len >= b; break;
            case CMP_EQ: r = len === b; break;
            default: r = len !== b; break;
          }
          break;
      }
      const nx = r ? code[base + JT]! : code[base + JF]!;
      if (nx < 0) return nx === ACCEPT;
      pc = nx;
    }
  }

  /** Human-readable listing of the compiled program (for debugging / `--explain`). */
  disassemble(): string {
    const lines: string[] = [];
    const c = this.code;
    const target = (j: number): string => (j === ACCEPT ? 'accept' : j === REJECT ? 'reject' : `${j}`);
    for (let pc = 0; pc * STRIDE < c.length; pc++) {
      const b = pc * STRIDE;
      const op = c[b]!;
      let args = `${c[b + 2]} ${c[b + 3]}`;
      if (op === OP_HOST6 || op === OP_NET6) {
        const words = Uint32Array.of(c[b + 2]!, c[b + 3]!, c[b + 4]!, c[b + 5]!);
        args = `${ip6ToString(words)}${op === OP_NET6 ? `/${c[b + 6]}` : ''}`;
      } else if (op === OP_IPPROTO && c[b + 3] !== FAMILY_ANY) args = `${c[b + 2]} (ip${c[b + 3] === FAMILY_6 ? '6' : ''} only)`;
      lines.push(`${pc}: ${DIR_NAMES[c[b + 1]!] ?? ''}${OP_NAMES[op]} ${args} -> t:${target(c[b + JT]!)} f:${target(c[b + JF]!)}`);
    }
    return lines.join('\n');
  }
}

/** TCP, UDP and SCTP carry ports in their first four bytes. */
function hasPorts(proto: number): boolean {
  return proto === 6 || proto === 17 || proto === 132;
}

function dirMatch(dir: number, s: boolean, d: boolean): boolean {
  switch (dir) {
    case DIR_SRC: return s;
    case DIR_DST: return d;
    case DIR_AND: return s && d;
    default: return s || d;
  }
}

/** Compile a filter expression. Throws FilterSyntaxError on malformed input. */
export function compileFilter(source: string): PacketFilter {
  const ast = new Parser(tokenize(source)).parseAll();
  if (ast === null) return new PacketFilter(source, Int32Array.from([OP_TRUE, 0, 0, 0, 0, 0, 0, ACCEPT, ACCEPT]));
  const g = new CodeGen();
  g.gen(ast, 0, 1);
  return new PacketFilter(source, g.finish());
}
