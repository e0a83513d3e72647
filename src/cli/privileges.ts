/*
 * `tapbridge run --user NAME`: least privilege after setup. Setup needs root (namespaces,
 * TAPs, AF_PACKET sockets, addresses, routes); forwarding does not: reading and writing the
 * fds already open needs no capability. So once everything is up, the process that runs the
 * data plane and the control socket becomes NAME (its primary group, no supplementary
 * groups) with no capabilities left, through glibc's setgid/setuid, which apply to every
 * thread (the data-plane worker and the native readers too). The control socket is handed
 * to NAME (mode 0600: NAME and root may connect, nobody else). What needs privileges from
 * then on is the root supervisor's (the outer process): removing namespaces, links and the
 * lab's services at the end. `ctl link` still switches a TAP's carrier: TUNSETCARRIER on
 * the fd we hold needs no capability (should a kernel refuse it, the port still goes down in
 * the data plane and the answer says the carrier was kept).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface RunUser {
  name: string;
  uid: number;
  gid: number;
}

/** NAME's uid and primary gid (through NSS: `id`), or an error naming it. */
export function resolveUser(name: string): RunUser {
  const id = (flag: string) => {
    try {
      return Number(execFileSync('id', [flag, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 2000 }).trim());
    } catch {
      throw new Error(`--user: no user '${name}' on this machine`);
    }
  };
  const user = { name, uid: id('-u'), gid: id('-g') };
  if (user.uid === 0) throw new Error(`--user: '${name}' is root; name an unprivileged user (e.g. nobody)`);
  return user;
}

/** The effective capability mask of this process (/proc/self/status CapEff), as hex text. */
export function effectiveCapabilities(): string {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m === null ? 'unknown' : m[1];
}

/** Become `u` for good: groups, gid, uid; then check that root cannot be had back. */
export function dropPrivileges(u: RunUser): void {
  const p = process as Required<Pick<NodeJS.Process, 'setgroups' | 'setgid' | 'setuid'>>; // POSIX: always there on Linux
  p.setgroups([u.gid]);
  p.setgid(u.gid);
  p.setuid(u.uid);
  let regained = true;
  try {
    p.setuid(0);
  } catch {
    regained = false;
  }
  if (regained || process.getuid?.() !== u.uid || process.geteuid?.() !== u.uid) throw new Error(`could not drop privileges to ${u.name}`);
  if (!/^0+$/.test(effectiveCapabilities())) throw new Error(`capabilities left after becoming ${u.name}: ${effectiveCapabilities()}`);
}
