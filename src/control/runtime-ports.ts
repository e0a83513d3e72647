/*
 * Ports attached and detached while the instance runs (POST /v1/ports, DELETE
 * /v1/ports/:port; `ctl ports add|rm`; the CNI plugin). Adding: validate the request
 * (field paths), create the TAP in the namespace (lab/attach.ts), hand its spec to the
 * data plane (ports.add: a device joins the running switch, nothing else moves), then
 * set its faults (a rate limit, say) and publish its ports; if one fails, the port goes again. Removing: unpublish, take it out of the data plane (ports.remove),
 * close the fd; a port whose namespace is gone already is removed all the same. The
 * instance closes what is left at exit (the fds are in its list).
 */
import { existsSync } from 'node:fs';
import type { Config, RuntimePortRequest } from '../config/schema.js';
import { runtimePortSchema } from '../config/schema.js';
import { toFaultSpec, zodProblems } from '../config/experiment.js';
import { addressOf } from '../config/addresses.js';
import type { PublishSpec } from '../dataplane/spec.js';
import { attachNamespacePort, closeTap } from '../lab/attach.js';
import { CallError, type DataPlaneWorker } from './dataplane-client.js';
import { HttpError, type Route } from './server.js';
import { withPolicy } from './spec.js';

export interface RuntimePortInfo {
  name: string;
  bridge: string;
  netns: string;
  path: string;
  ifname: string;
  mac: string;
  addresses: string[];
  publish: PublishSpec[];
  labels: Record<string, string>;
  /** false when its namespace is gone (the port is still in the data plane until removed). */
  netnsPresent?: boolean;
}

interface Entry {
  info: RuntimePortInfo;
  fd: number;
}

export class RuntimePorts {
  private readonly ports = new Map<string, Entry>();
  /** One change at a time: the ip commands of two adds must not interleave with a remove. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly dp: DataPlaneWorker,
    private readonly cfg: Config,
    /** The instance's fd list (closed at exit). */
    private readonly fds: number[],
  ) {}

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  list(): RuntimePortInfo[] {
    return [...this.ports.values()].map((e) => ({ ...e.info, netnsPresent: pathExists(e.info.path) }));
  }

  add(body: unknown): Promise<RuntimePortInfo> {
    const r = runtimePortSchema.safeParse(body);
    if (!r.success) return Promise.reject(new HttpError(400, zodProblems(r.error)));
    return this.serial(() => this.addNow(r.data));
  }

  private async addNow(req: RuntimePortRequest): Promise<RuntimePortInfo> {
    const bridge = this.cfg.bridges.find((b) => b.name === req.bridge);
    if (bridge === undefined) throw new HttpError(404, `bridge: no bridge named '${req.bridge}' (bridges: ${this.cfg.bridges.map((b) => b.name).join(', ')})`);
    const existing = (await this.call('ports')) as { name: string }[];
    if (existing.some((p) => p.name === req.name)) throw new HttpError(409, `name: a port named '${req.name}' exists already`);
    const publish = req.publish.map((p, i) => {
      const to = p.to ?? firstAddress(req.addresses, false);
      if (to === undefined) throw new HttpError(400, `publish[${i}].to: the port has no IPv4 address to publish to`);
      return { ...p, to } as PublishSpec;
    });
    let tap;
    try {
      tap = attachNamespacePort(req, req.mtu ?? Math.min(...bridge.ports.map((p) => p.mtu)));
    } catch (err) {
      throw new HttpError(400, (err as Error).message);
    }
    const spec = { ...withPolicy(tap.spec, req, bridge.isolatePorts), dnsNames: req.dnsNames };
    try {
      await this.call('ports.add', spec as unknown as Record<string, unknown>);
    } catch (err) {
      closeTap(tap.fd);
      throw err;
    }
    this.fds.push(tap.fd);
    const info: RuntimePortInfo = { name: req.name, bridge: req.bridge, netns: req.netns, path: tap.path, ifname: req.ifname, mac: spec.mac, addresses: req.addresses, publish: [], labels: req.labels };
    this.ports.set(req.name, { info, fd: tap.fd });
    try {
      for (const { direction, ...rest } of req.faults) await this.call('faults_set', { port: req.name, direction, spec: toFaultSpec(rest) });
      for (const p of publish) {
        await this.call('forwards.add', p as unknown as Record<string, unknown>);
        info.publish.push(p);
      }
    } catch (err) {
      await this.removeNow(req.name);
      throw err;
    }
    return info;
  }

  remove(name: string): Promise<{ removed: string; netnsWasGone: boolean }> {
    return this.serial(() => this.removeNow(name));
  }

  private async removeNow(name: string): Promise<{ removed: string; netnsWasGone: boolean }> {
    const e = this.ports.get(name);
    if (e === undefined) {
      const known = ((await this.call('ports')) as { name: string }[]).some((p) => p.name === name);
      throw new HttpError(known ? 409 : 404, known ? `port '${name}' is from the config, not attached at runtime: it cannot be removed` : `no port named '${name}'`);
    }
    for (const p of e.info.publish) {
      try {
        await this.call('forwards.remove', { proto: p.proto, port: p.port });
      } catch {
        /* removed by hand already */
      }
    }
    await this.call('ports.remove', { name });
    this.ports.delete(name);
    closeTap(e.fd);
    const i = this.fds.indexOf(e.fd);
    if (i >= 0) this.fds.splice(i, 1);
    return { removed: name, netnsWasGone: !pathExists(e.info.path) };
  }

  private async call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    try {
      return await this.dp.call(method, params);
    } catch (err) {
      if (err instanceof CallError) throw new HttpError(err.status, err.message);
      throw err;
    }
  }

  routes(): Route[] {
    return [
      { method: 'GET', path: '/v1/ports/runtime', summary: 'ports attached at runtime: namespace, device, addresses, published ports, labels', handler: () => this.list() },
      {
        method: 'POST',
        path: '/v1/ports',
        summary: 'attach a namespace at runtime: {"name","bridge","netns":"NAME|/run/netns/X|/proc/PID/ns/net","ifname","mac","mtu","addresses","defaultRoute","routes","isolated","security","faults":[{"direction","rate":{...}}],"publish","labels"}',
        handler: (c) => this.add(c.body),
      },
      { method: 'DELETE', path: '/v1/ports/:port', summary: 'detach a port attached at runtime (fine when its namespace is gone)', handler: (c) => this.remove(c.params.port) },
    ];
  }
}

function firstAddress(addresses: string[], v6: boolean): string | undefined {
  const a = addresses.find((x) => x.includes(':') === v6);
  return a === undefined ? undefined : addressOf(a);
}

function pathExists(path: string): boolean {
  return existsSync(path);
}
