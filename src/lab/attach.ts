/*
 * Ports attached at runtime (ctl ports add, the CNI plugin): a TAP opened in tapbridge's
 * namespace, moved into an existing namespace named by its name or by a path
 * (/run/netns/X, /proc/PID/ns/net), renamed there, given its MAC, MTU, addresses and
 * routes, brought up. Commands inside the namespace run through nsenter --net=PATH, so a
 * namespace that is not in /run/netns works as well. Detaching is closing the fd: the
 * kernel removes the TAP wherever it is, also when its namespace is gone already.
 */
import { existsSync } from 'node:fs';
import { native } from '../io/native.js';
import type { RuntimePortRequest } from '../config/schema.js';
import type { PortSpec } from '../dataplane/spec.js';
import { IP, IP_TIMEOUT_MS, ip, NSENTER, runTool, runToolQuiet, SYSCTL } from './ip.js';

/** The namespace file of a name or path. */
export function netnsPath(netns: string): string {
  return netns.startsWith('/') ? netns : `/run/netns/${netns}`;
}

/** `ip ARGS` inside the namespace at `path`. */
export function ipIn(path: string, args: string[]): string {
  return runTool(NSENTER, [`--net=${path}`, '--', IP, ...args], IP_TIMEOUT_MS);
}

let tmpSeq = 0;

/** The opened TAP, configured inside the namespace; the fd is the caller's (close it on failure). */
export interface AttachedTap {
  fd: number;
  spec: PortSpec;
  path: string;
}

/**
 * Open, move and configure the TAP of a runtime port. On failure the fd is closed (the TAP
 * vanishes with it) and the error names the step.
 */
export function attachNamespacePort(r: RuntimePortRequest, mtu: number): AttachedTap {
  const path = netnsPath(r.netns);
  if (!existsSync(path)) throw new Error(`netns: no namespace at ${path}`);
  if (runToolQuiet(NSENTER, [`--net=${path}`, '--', IP, 'link', 'show', 'dev', r.ifname], IP_TIMEOUT_MS) === null)
    throw new Error(`ifname: the namespace ${path} already has a device '${r.ifname}'`);
  const tmp = `tbrt${process.pid % 10000}x${tmpSeq++ % 1000}`;
  const tap = native.openTap(tmp, r.offload, false);
  try {
    ip(['link', 'set', 'dev', tap.name, 'netns', path]);
    ipIn(path, ['link', 'set', 'dev', tap.name, 'name', r.ifname]);
    if (r.mac !== undefined) ipIn(path, ['link', 'set', 'dev', r.ifname, 'address', r.mac]);
    ipIn(path, ['link', 'set', 'dev', r.ifname, 'mtu', String(mtu)]);
    if (r.addresses.some((a) => a.includes(':'))) {
      for (const k of ['accept_ra', 'autoconf']) runTool(NSENTER, [`--net=${path}`, '--', SYSCTL, '-qw', `net.ipv6.conf.${r.ifname}.${k}=0`], IP_TIMEOUT_MS);
    }
    for (const a of r.addresses) ipIn(path, ['addr', 'add', a, 'dev', r.ifname, ...(a.includes(':') ? ['nodad'] : [])]);
    ipIn(path, ['link', 'set', 'dev', r.ifname, 'up']);
    const defaults = r.defaultRoute === undefined ? [] : Array.isArray(r.defaultRoute) ? r.defaultRoute : [r.defaultRoute];
    for (const via of defaults) ipIn(path, [via.includes(':') ? '-6' : '-4', 'route', 'replace', 'default', 'via', via, 'dev', r.ifname]);
    for (const rt of r.routes) {
      const fam = rt.to.includes(':') ? '-6' : '-4';
      ipIn(path, [fam, 'route', 'replace', rt.to, ...(rt.via !== undefined ? ['via', rt.via] : []), 'dev', r.ifname]);
    }
    const mac = (JSON.parse(ipIn(path, ['-j', 'link', 'show', 'dev', r.ifname])) as { address: string }[])[0].address;
    const spec: PortSpec = { name: r.name, kind: 'namespace', bridge: r.bridge, fd: tap.fd, vnetHdr: r.offload, ifname: `${r.netns.startsWith('/') ? path : r.netns}:${r.ifname}`, mac, addresses: r.addresses };
    return { fd: tap.fd, spec, path };
  } catch (err) {
    closeTap(tap.fd);
    throw err;
  }
}

/** Close a runtime port's fd (its TAP goes with it). */
export function closeTap(fd: number): void {
  try {
    native.close(fd);
  } catch {
    /* already closed */
  }
}
