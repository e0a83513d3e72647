/*
 * From the validated config and the opened devices to the data-plane spec the worker
 * builds its graph from (src/dataplane/spec.ts): addresses stay text, devices are fds,
 * defaults are resolved here (gateway MACs, the bridge MTU, masqueraded subnets), so the
 * data plane never reads the config.
 */
import type { Config } from '../config/schema.js';
import { toFaultSpec } from '../config/experiment.js';
import type { CaptureStartSpec, DataPlaneSpec } from '../dataplane/spec.js';
import type { SetupResult } from '../lab/setup.js';
import { parseCidr } from '../wire/ip4.js';

/** 02:74:62 ("tb") + the low 24 bits of the address: a stable, locally administered MAC. */
export function ownMacFor(address: string): string {
  const a = parseCidr(address.includes('/') ? address : `${address}/32`)!.addr;
  const h = (n: number) => n.toString(16).padStart(2, '0');
  return `02:74:62:${h((a >>> 16) & 255)}:${h((a >>> 8) & 255)}:${h(a & 255)}`;
}

/** Default share of the MAC table one port may fill: a quarter (at least 16). */
export function defaultMacLimitPerPort(macTableSize: number): number {
  return Math.max(16, Math.floor(macTableSize / 4));
}

export function dataPlaneSpec(cfg: Config, setup: Pick<SetupResult, 'ports' | 'uplink'>, captures: CaptureStartSpec[] = []): DataPlaneSpec {
  const spec: DataPlaneSpec = {
    bridges: cfg.bridges.map((b) => ({
      name: b.name,
      agingSeconds: b.agingSeconds,
      macTableSize: b.macTableSize,
      macLimitPerPort: b.macLimitPerPort ?? defaultMacLimitPerPort(b.macTableSize),
      whenFull: b.macTableFull,
      static: b.static,
      gateway: b.gateway === undefined ? undefined : { address: b.gateway.address, mac: b.gateway.mac ?? ownMacFor(b.gateway.address), mtu: Math.min(...b.ports.map((p) => p.mtu)) },
    })),
    ports: setup.ports,
    routes: cfg.routes,
  };
  if (cfg.uplink !== undefined && setup.uplink !== null) {
    const u = cfg.uplink;
    const up = setup.uplink;
    spec.uplink = { fd: up.fd, vnetHdr: up.vnetHdr, ifname: up.ifname, address: u.address, mac: u.mac === 'own' ? ownMacFor(u.address) : u.mac === 'nic' ? up.mac : u.mac, gateway: u.gateway, mtu: up.mtu };
  }
  if (cfg.nat !== undefined && spec.uplink !== undefined) {
    const n = cfg.nat;
    spec.nat = {
      masquerade: n.masquerade ?? cfg.bridges.filter((b) => b.gateway !== undefined).map((b) => b.gateway!.address),
      portRange: n.portRange,
      maxFlows: n.maxFlows,
      timeouts: n.timeouts as Record<string, number>,
      publish: n.publish,
    };
  }
  const ex = cfg.experiment;
  if (ex !== undefined) {
    spec.experiment = {
      faults: ex.faults.map(({ port, direction, ...rest }) => ({ port, direction, spec: toFaultSpec(rest) })),
      captures,
    };
  }
  return spec;
}
