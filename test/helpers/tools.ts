/*
 * The system tools the integration tests run, with the Debian package of each: one table
 * for the tests (requireTools(): a suite fails loudly, never skips, when one is missing)
 * and for scripts/run-tests.js, which checks them all before the integration tests and
 * installs what is missing with apt-get when it runs as root.
 *
 * A tool is found by name in the usual directories (not $PATH: sudo and CI change it);
 * scapy is a Python module of Debian's /usr/bin/python3, checked by importing it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface Tool {
  /** Name as the tests call it (and as a message names it). */
  name: string;
  /** The apt package that provides it. */
  apt: string;
  /** Present when this returns true (default: an executable of that name in BIN_DIRS). */
  present?: () => boolean;
}

const BIN_DIRS = ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/sbin', '/usr/local/bin'];

/** Debian's python, with scapy (the first python3 on PATH may be another one). */
export const SYS_PYTHON = '/usr/bin/python3';

export const TOOLS: Tool[] = [
  { name: 'ip', apt: 'iproute2' },
  { name: 'ss', apt: 'iproute2' },
  { name: 'ping', apt: 'iputils-ping' },
  { name: 'tracepath', apt: 'iputils-tracepath' },
  { name: 'arping', apt: 'arping' },
  { name: 'traceroute', apt: 'traceroute' },
  { name: 'iperf3', apt: 'iperf3' },
  { name: 'curl', apt: 'curl' },
  { name: 'tcpdump', apt: 'tcpdump' },
  { name: 'tshark', apt: 'tshark' },
  { name: 'socat', apt: 'socat' },
  { name: 'ethtool', apt: 'ethtool' },
  { name: 'nsenter', apt: 'util-linux' },
  { name: 'setpriv', apt: 'util-linux' },
  { name: 'newuidmap', apt: 'uidmap' },
  { name: 'newgidmap', apt: 'uidmap' },
  { name: 'ndisc6', apt: 'ndisc6' },
  { name: 'rdisc6', apt: 'ndisc6' },
  { name: 'script', apt: 'bsdutils' },
  { name: 'sysctl', apt: 'procps' },
  { name: 'timeout', apt: 'coreutils' },
  { name: 'udhcpc', apt: 'udhcpc' },
  { name: 'dhclient', apt: 'isc-dhcp-client' },
  { name: 'dnsmasq', apt: 'dnsmasq-base' },
  { name: 'dig', apt: 'bind9-dnsutils' },
  // CNI IPAM plugins the CNI tests delegate to (not in a bin directory)
  { name: 'cni-host-local', apt: 'containernetworking-plugins', present: () => existsSync('/usr/lib/cni/host-local') },
  { name: 'cni-static', apt: 'containernetworking-plugins', present: () => existsSync('/usr/lib/cni/static') },
  // Podman end to end (rootful, CNI backend): the engine, its monitor and runtime, and
  // the statically linked busybox its test image is made of
  { name: 'podman', apt: 'podman' },
  { name: 'conmon', apt: 'conmon' },
  { name: 'runc', apt: 'runc' },
  { name: 'tar', apt: 'tar' },
  { name: 'busybox-static', apt: 'busybox-static', present: () => existsSync('/var/lib/dpkg/info/busybox-static.list') && existsSync('/bin/busybox') },
  {
    name: 'python3-scapy',
    apt: 'python3-scapy',
    present: () => existsSync(SYS_PYTHON) && spawnSync(SYS_PYTHON, ['-c', 'import scapy'], { stdio: 'ignore', timeout: 30_000 }).status === 0,
  },
];

/** Full path of a tool, or undefined when it is not installed. */
export function toolPath(name: string): string | undefined {
  return BIN_DIRS.map((d) => `${d}/${name}`).find((p) => existsSync(p));
}

function isPresent(t: Tool): boolean {
  return t.present !== undefined ? t.present() : toolPath(t.name) !== undefined;
}

/** The tools of the table (or of `names`) that are missing. */
export function missingTools(names?: string[]): Tool[] {
  const wanted = names === undefined ? TOOLS : names.map((n) => TOOLS.find((t) => t.name === n) ?? { name: n, apt: '?' });
  return wanted.filter((t) => !isPresent(t));
}

/** "tshark (apt: tshark), iperf3 (apt: iperf3)" */
export function describeTools(tools: Tool[]): string {
  return tools.map((t) => `${t.name} (apt: ${t.apt})`).join(', ');
}

/** Throw, naming each missing tool and its package, unless all of `names` are installed. For a suite's first before(). */
export function requireTools(names: string[]): void {
  const missing = missingTools(names);
  if (missing.length > 0)
    throw new Error(`missing system tools: ${describeTools(missing)}; install them (apt-get install -y ${[...new Set(missing.map((t) => t.apt))].join(' ')}) or run the tests through scripts/run-tests.js, which does as root`);
}
