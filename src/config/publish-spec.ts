/*
 * The text form of a published port, shared by `tapbridge run --publish` and
 * `ctl forwards add`:
 *
 *   [HOSTADDR:]PORT[-END][/tcp|udp]=IP[:PORT]     e.g. 8080/tcp=10.100.0.3:80
 *                                                      198.51.100.1:8001/tcp=10.100.0.2:8000
 *                                                      8080/tcp=[2001:db8:100::3]:80 (NAT66)
 *
 * HOSTADDR (IPv4) is the host address a socket uplink listens on (rootless mode); the NAT
 * uplink publishes on its own external address and ignores it.
 */
import type { PublishConfig } from './schema.js';

const SPEC_RE = /^(?:(\d{1,3}(?:\.\d{1,3}){3}):)?(\d+)(?:-(\d+))?(?:\/(tcp|udp))?=(?:([\d.]+)|\[([0-9a-fA-F:.]+)\])(?::(\d+))?$/;

export const PUBLISH_SPEC_SYNTAX = '[HOSTADDR:]PORT[-END][/tcp|udp]=IP[:PORT] or =[IPv6][:PORT]';

/** Parse one SPEC into the config's publish entry (validated later by the schema); throws naming the problem. */
export function parsePublishSpec(spec: string): PublishConfig {
  const m = SPEC_RE.exec(spec.trim());
  if (m === null) throw new Error(`cannot parse '${spec}': expected ${PUBLISH_SPEC_SYNTAX}`);
  const [, hostAddress, port, portEnd, proto, to4, to6, toPort] = m;
  return {
    proto: (proto ?? 'tcp') as 'tcp' | 'udp',
    port: Number(port),
    ...(portEnd ? { portEnd: Number(portEnd) } : {}),
    to: to4 ?? to6,
    ...(toPort ? { toPort: Number(toPort) } : {}),
    ...(hostAddress ? { hostAddress } : {}),
  };
}
