/*
 * Addresses in the configuration: IPv4 or IPv6 wherever an address is taken. The schemas
 * here validate the text (with ip-address), and the subnet math the cross-field checks need
 * works on both families as BigInt (config time only; the data plane has its own words).
 */
import { z } from 'zod';
import { Address4, Address6 } from 'ip-address';

export type Family = 4 | 6;

export function isIpv4(s: string): boolean {
  return typeof s === 'string' && /^\d{1,3}(\.\d{1,3}){3}$/.test(s) && Address4.isValid(s);
}

/** Plain IPv6 text (no prefix, no zone). */
export function isIpv6(s: string): boolean {
  return typeof s === 'string' && s.includes(':') && !s.includes('/') && !s.includes('%') && Address6.isValid(s);
}

/** 4, 6, or 0 for neither. */
export function familyOf(ip: string): Family | 0 {
  return isIpv4(ip) ? 4 : isIpv6(ip) ? 6 : 0;
}

function cidrParts(s: string): { ip: string; prefix: number } | null {
  const m = typeof s === 'string' ? /^(.+)\/(\d{1,3})$/.exec(s) : null;
  return m === null ? null : { ip: m[1], prefix: Number(m[2]) };
}

function isCidr(s: string, family: Family | 0): boolean {
  const c = cidrParts(s);
  if (c === null) return false;
  const f = familyOf(c.ip);
  if (f === 0 || (family !== 0 && f !== family)) return false;
  return c.prefix <= (f === 4 ? 32 : 128);
}

export const ipv4 = z.string().refine(isIpv4, 'not an IPv4 address (a.b.c.d)');
export const ipv6 = z.string().refine(isIpv6, 'not an IPv6 address');
export const ipAny = z.string().refine((s) => familyOf(s) !== 0, 'not an IPv4 or IPv6 address');
export const cidr = z.string().refine((s) => isCidr(s, 4), 'not an IPv4 address with prefix length (a.b.c.d/len)');
export const cidr6 = z.string().refine((s) => isCidr(s, 6), 'not an IPv6 address with prefix length (addr/len)');
export const cidrAny = z.string().refine((s) => isCidr(s, 0), 'not an IPv4 or IPv6 address with prefix length (a.b.c.d/len or addr/len)');

/** One value, or a list of one per family (e.g. `[10.0.0.1/24, 2001:db8::1/64]`), read as a list. */
export function onePerFamily<T extends z.ZodType<string>>(item: T) {
  return z.union([item, z.array(item).min(1, 'at least one address').max(2, 'at most one address of each family')]).transform((v) => (Array.isArray(v) ? v : [v]));
}

/** A value as written, as a list (cross checks read raw documents too). */
export function asList(v: unknown): string[] {
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  return typeof v === 'string' ? [v] : [];
}

export interface Subnet {
  family: Family;
  net: bigint;
  prefix: number;
}

function toBig(ip: string): bigint | null {
  const f = familyOf(ip);
  if (f === 4) return new Address4(ip).bigInt();
  if (f === 6) return new Address6(ip).bigInt();
  return null;
}

function maskOf(family: Family, prefix: number): bigint {
  const bits = family === 4 ? 32n : 128n;
  const all = (1n << bits) - 1n;
  return prefix === 0 ? 0n : (all >> (bits - BigInt(prefix))) << (bits - BigInt(prefix));
}

/** The subnet of "addr/len" (null when invalid). */
export function subnetOf(s: string): Subnet | null {
  const c = cidrParts(s);
  const f = c === null ? 0 : familyOf(c.ip);
  if (c === null || f === 0) return null;
  return { family: f, net: toBig(c.ip)! & maskOf(f, c.prefix), prefix: c.prefix };
}

/** The address part of "addr/len" (or the text itself). */
export function addressOf(s: string): string {
  return s.split('/')[0];
}

export function inSubnet(ip: string, s: Subnet | null): boolean {
  const v = toBig(addressOf(ip));
  return s !== null && v !== null && familyOf(addressOf(ip)) === s.family && (v & maskOf(s.family, s.prefix)) === s.net;
}

/** Do two subnets overlap (one inside the other)? */
export function overlaps(a: Subnet, b: Subnet): boolean {
  if (a.family !== b.family) return false;
  const p = Math.min(a.prefix, b.prefix);
  const m = maskOf(a.family, p);
  return (a.net & m) === (b.net & m);
}

/** The entry of each family in a list (the first one; `duplicate` names a family listed twice). */
export function byFamily(list: string[]): { v4?: string; v6?: string; duplicate?: Family } {
  const out: { v4?: string; v6?: string; duplicate?: Family } = {};
  for (const s of list) {
    const f = familyOf(addressOf(s));
    if (f === 4) {
      if (out.v4 !== undefined) out.duplicate = 4;
      else out.v4 = s;
    } else if (f === 6) {
      if (out.v6 !== undefined) out.duplicate = 6;
      else out.v6 = s;
    }
  }
  return out;
}
