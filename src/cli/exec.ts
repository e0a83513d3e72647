/*
 * `tapbridge exec NAMESPACE -- CMD...`: run a command inside a tenant namespace, stdio
 * inherited, its exit code passed on (128 + signal when it was killed).
 *
 *   rootless instance (an <instance>.agent file in the user's runtime directory): join the
 *     agent's user, mount and pid namespaces (nsenter; joining the user namespace makes us
 *     its root, as the sandbox's creator may), where /run/netns holds the tenant namespaces,
 *     then `ip netns exec NAMESPACE CMD` there;
 *   otherwise (root mode): `ip netns exec NAMESPACE CMD`.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { findInstanceFile } from '../control/client.js';
import { IP, NSENTER, netnsExists } from '../lab/ip.js';
import { sameProcess } from '../lab/resources.js';
import { ROOTLESS_LAB } from '../lab/default-lab.js';
import type { AgentRecord } from './rootless.js';

/** The tenant namespaces of a rootless agent (its /run/netns, seen through /proc/PID/root), or null when they cannot be listed. */
function tenantNamespaces(agentPid: number): string[] | null {
  try {
    return readdirSync(`/proc/${agentPid}/root/run/netns`);
  } catch {
    return null; // ip netns exec names the problem then
  }
}

/** The command line that runs CMD in NAMESPACE, for the instance found (see the header). */
export function execCommand(namespace: string, cmd: string[], instance?: string): string[] {
  // No --instance: the rootless default's, else the only one running.
  const agentFile = instance !== undefined ? findInstanceFile('.agent', instance) : (findInstanceFile('.agent', ROOTLESS_LAB.instance) ?? findInstanceFile('.agent'));
  if (agentFile !== undefined) {
    const rec = JSON.parse(readFileSync(agentFile, 'utf8')) as AgentRecord;
    if (!sameProcess(rec.pid, rec.start)) throw new Error(`the rootless instance of ${agentFile} is not running (its agent ${rec.pid} is gone)`);
    const names = tenantNamespaces(rec.pid);
    if (names !== null && !names.includes(namespace)) throw new Error(`no namespace '${namespace}' in the rootless instance (it has: ${names.join(', ') || 'none'})`);
    return [NSENTER, '-t', String(rec.pid), '--user', '--mount', '--pid', '--preserve-credentials', '--', IP, 'netns', 'exec', namespace, ...cmd];
  }
  if (instance !== undefined && process.getuid?.() !== 0) throw new Error(`no rootless instance '${instance}' of this user is running`);
  if (!netnsExists(namespace)) throw new Error(`no namespace '${namespace}' (ip netns list shows the namespaces; a rootless instance's are only visible through tapbridge exec)`);
  return [IP, 'netns', 'exec', namespace, ...cmd];
}

/** Run it; returns CMD's exit code. */
export function runExec(namespace: string, cmd: string[], instance?: string): number {
  if (cmd.length === 0) throw new Error('exec: no command given (tapbridge exec NAMESPACE -- CMD...)');
  const argv = execCommand(namespace, cmd, instance);
  const r = spawnSync(argv[0], argv.slice(1), { stdio: 'inherit' });
  if (r.error !== undefined) throw new Error(`exec: cannot run ${argv[0]}: ${r.error.message}`);
  if (r.signal !== null) return 128 + (constants.signals[r.signal] ?? 0);
  return r.status ?? 1;
}
