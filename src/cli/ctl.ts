/*
 * `tapbridge ctl`: one subcommand per control-API call. Aligned text by default,
 * --json for scripts.
 */
import { Option, type Command } from 'commander';
import { apiRequest, resolveSocket, table } from '../control/client.js';
import type { BridgeInfo, FdbRow, PortInfo } from '../dataplane/messages.js';
import { parsePublishSpec, PUBLISH_SPEC_SYNTAX } from '../config/publish-spec.js';
import { registerExperimentCtl } from './ctl-experiments.js';
import { renderNeighbors6, type Neighbor6Row } from './render.js';
import type { TraceResult } from '../dataplane/trace.js';
import type { GraphInfo } from '../core/graph.js';
import type { TraceHop } from '../core/element.js';

interface CtlOpts {
  socket?: string;
  instance?: string;
  json?: boolean;
}

function human(n: number): string {
  if (n < 10_000) return String(n);
  const units = ['k', 'M', 'G', 'T'];
  let v = n;
  let u = -1;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v.toFixed(1)}${units[u]}`;
}

/** Trace hops as chains "a[out] -> [in]b[out] -> [in]c"; a new chain where the path branches. */
export function pathLines(hops: TraceHop[]): string[] {
  const lines: string[] = [];
  let last = '';
  for (const h of hops) {
    if (lines.length > 0 && h.from === last) lines[lines.length - 1] += `[${h.output}] -> [${h.input}]${h.to}`;
    else lines.push(`${h.from}[${h.output}] -> [${h.input}]${h.to}`);
    last = h.to;
  }
  return lines;
}

/** The live graph as text: elements with their kind and configuration, then every link with its packet count (Click's flattened form). */
export function renderGraph(g: GraphInfo & { unconnectedDrops?: number }): string {
  const nw = Math.max(...g.elements.map((e) => e.name.length));
  const kw = Math.max(...g.elements.map((e) => e.kind.length));
  const counters = (c: Record<string, number>) => Object.entries(c).filter(([, v]) => v !== 0).map(([k, v]) => `${k}=${v}`).join(' ');
  const elements = g.elements.map((e) => `  ${e.name.padEnd(nw)} :: ${e.kind.padEnd(kw)}  ${e.config}${counters(e.counters) ? `  [${counters(e.counters)}]` : ''}`.trimEnd());
  const links = g.links.map((l) => [`${l.from}[${l.output}]`, '->', `[${l.input}]${l.to}`, String(l.packets)]);
  return [`elements (${g.elements.length}):`, ...elements, '', `links (${g.links.length}):`, ...table(['FROM', '', 'TO', 'PACKETS'], links).split('\n').map((l) => `  ${l}`), ...(g.unconnectedDrops ? ['', `frames pushed to unconnected outputs: ${g.unconnectedDrops}`] : [])].join('\n');
}

/** Rows asked for per conntrack call: no single call makes the data plane build more. */
export const CONNTRACK_PAGE = 1000;

/** The fields of a conntrack row that ctl shows (the data plane's FlowInfo, src/nat/types.ts, has more; cli may not import nat). */
export type FlowRow = Record<'protoName' | 'state' | 'original' | 'reply', string> &
  Record<'secondsLeft' | 'packetsOrig' | 'bytesOrig' | 'packetsReply' | 'bytesReply', number> & { flags: string[] };

/** One answer of GET /v1/conntrack: `next` is the flow id the next page starts at, null after the last. */
export interface ConntrackPage {
  size: number;
  max: number;
  counters?: Record<string, number>;
  flows: FlowRow[];
  next: number | null;
}

/**
 * Every flow (or the first `limit`), asked for in pages of at most CONNTRACK_PAGE rows until
 * the data plane says there is no next page. Returns the last answer with all the flows;
 * `next` is non-null only when `limit` cut the listing short.
 */
export async function fetchConntrack(getPage: (limit: number, from: number) => Promise<ConntrackPage>, limit = Infinity): Promise<ConntrackPage> {
  const flows: FlowRow[] = [];
  let from = 0;
  for (;;) {
    const want = Math.min(CONNTRACK_PAGE, limit - flows.length);
    const page = await getPage(want, from);
    flows.push(...page.flows.slice(0, want));
    if (page.next === null || flows.length >= limit) return { ...page, flows };
    if (page.next <= from) throw new Error(`conntrack paging did not advance (from ${from}, next ${page.next})`);
    from = page.next;
  }
}

export function registerCtl(program: Command, fail: (err: unknown) => never): void {
  const ctl = program
    .command('ctl')
    .description('query or change a running instance over its control socket (HTTP+JSON on a unix socket)')
    .option('-s, --socket <path>', 'control socket path')
    .option('-i, --instance <name>', 'instance name (socket /run/tapbridge/<name>.sock); default: the only one running')
    .option('--json', 'print the raw JSON answer');

  const run = (fn: (sock: string, o: CtlOpts) => Promise<void>) => async () => {
    const o = ctl.opts<CtlOpts>();
    try {
      await fn(resolveSocket(o), o);
    } catch (err) {
      fail(err);
    }
  };
  const out = (o: CtlOpts, data: unknown, text: () => string) => {
    process.stdout.write(o.json ? JSON.stringify(data, null, 2) + '\n' : text() + '\n');
  };

  const ports = ctl.command('ports').description('ports with their counters; add and rm attach and detach namespaces at runtime');
  ports
    .command('list', { isDefault: true })
    .description('ports with their counters')
    .action(
      run(async (sock, o) => {
        const ports = (await apiRequest(sock, 'GET', '/v1/ports')) as PortInfo[];
        out(o, ports, () =>
          table(
            ['PORT', 'BRIDGE', 'KIND', 'DEVICE', 'MAC', 'STATE', 'MACS', 'RX_PKTS', 'RX_BYTES', 'TX_PKTS', 'TX_BYTES', 'DROPS'],
            ports.map((p) => [
              p.name,
              p.bridge ?? '-',
              p.kind,
              p.ifname,
              p.mac,
              p.up ? 'up' : 'down',
              p.macs,
              human(p.counters.rx_packets),
              human(p.counters.rx_bytes),
              human(p.counters.tx_packets),
              human(p.counters.tx_bytes),
              Object.entries(p.counters.drops).map(([k, v]) => `${k}=${v}`).join(',') || '0',
            ]),
          ),
        );
      }),
    );
  const collect = (v: string, prev: string[]) => [...prev, v];
  ports
    .command('add <name>')
    .description('attach a namespace to a bridge: creates the TAP there (ifname, MAC, MTU, addresses, routes) and adds it to the running data plane')
    .requiredOption('--netns <name|path>', 'namespace: a name (/run/netns/NAME) or a path such as /run/netns/X or /proc/PID/ns/net')
    .option('--bridge <name>', 'bridge to attach to (default: the only or first bridge)')
    .option('--ifname <name>', 'device name inside the namespace', 'eth0')
    .option('--mac <mac>', 'MAC address of the device')
    .option('--mtu <n>', 'MTU (default: the bridge ports\' smallest)')
    .option('--address <cidr>', 'an address (repeatable), e.g. 10.100.0.7/24', collect, [])
    .option('--gateway <ip>', 'default route via this next hop (repeatable, one per family)', collect, [])
    .option('--route <to[=via]>', 'a route inside the namespace (repeatable), e.g. 198.51.100.0/24=10.100.0.1', collect, [])
    .option('--isolated', 'isolate the port (reaches only non-isolated ports, e.g. the gateway)')
    .option('--security', 'port security: only its own MAC and addresses as sources')
    .option('--publish <spec>', 'publish to it: PORT[/tcp|udp][:TOPORT] (repeatable), removed with the port', collect, [])
    .option('--rate <dir=rate>', 'a rate limit on the port: ingress|egress|both=RATE, e.g. egress=10mbit (repeatable)', collect, [])
    .option('--no-offload', 'no IFF_VNET_HDR offloads on the TAP')
    .action((name: string, a: { netns: string; bridge?: string; ifname: string; mac?: string; mtu?: string; address: string[]; gateway: string[]; route: string[]; isolated?: boolean; security?: boolean; publish: string[]; rate: string[]; offload: boolean }) =>
      run(async (sock, o) => {
        const bridge = a.bridge ?? ((await apiRequest(sock, 'GET', '/v1/bridges')) as BridgeInfo[])[0]?.name;
        const body: Record<string, unknown> = {
          name,
          bridge,
          netns: a.netns,
          ifname: a.ifname,
          addresses: a.address,
          offload: a.offload,
          routes: a.route.map((r) => {
            const [to, via] = r.split('=');
            return via === undefined ? { to } : { to, via };
          }),
          publish: a.publish.map((p) => {
            const m = /^(\d+)(?:\/(tcp|udp))?(?::(\d+))?$/.exec(p);
            if (m === null) throw new Error(`--publish '${p}': expected PORT[/tcp|udp][:TOPORT]`);
            return { port: Number(m[1]), proto: m[2] ?? 'tcp', ...(m[3] ? { toPort: Number(m[3]) } : {}) };
          }),
        };
        if (a.mac !== undefined) body.mac = a.mac;
        if (a.mtu !== undefined) body.mtu = Number(a.mtu);
        if (a.rate.length > 0)
          body.faults = a.rate.map((r) => {
            const [direction, rate] = r.split('=');
            if (rate === undefined) throw new Error(`--rate '${r}': expected ingress|egress|both=RATE`);
            return { direction, rate: { bitsPerSecond: /^\d+$/.test(rate) ? Number(rate) : rate } };
          });
        if (a.gateway.length > 0) body.defaultRoute = a.gateway.length === 1 ? a.gateway[0] : a.gateway;
        if (a.isolated) body.isolated = true;
        if (a.security) body.security = true;
        const r = (await apiRequest(sock, 'POST', '/v1/ports', body)) as { name: string; bridge: string; path: string; ifname: string; mac: string };
        out(o, r, () => `attached ${r.name}: ${r.path} ${r.ifname} ${r.mac} on ${r.bridge}`);
      })(),
    );
  ports
    .command('rm <name>')
    .description('detach a port attached at runtime (fine when its namespace is gone already)')
    .action((name: string) =>
      run(async (sock, o) => {
        const r = (await apiRequest(sock, 'DELETE', `/v1/ports/${encodeURIComponent(name)}`)) as { removed: string; netnsWasGone: boolean };
        out(o, r, () => `removed ${r.removed}${r.netnsWasGone ? ' (its namespace was gone already)' : ''}`);
      })(),
    );
  ports
    .command('runtime')
    .description('ports attached at runtime: namespace, device, addresses, published ports, labels')
    .action(
      run(async (sock, o) => {
        const rows = (await apiRequest(sock, 'GET', '/v1/ports/runtime')) as { name: string; bridge: string; path: string; ifname: string; mac: string; addresses: string[]; publish: { proto: string; port: number }[]; netnsPresent: boolean }[];
        out(o, rows, () =>
          table(
            ['PORT', 'BRIDGE', 'NETNS', 'DEVICE', 'MAC', 'ADDRESSES', 'PUBLISHED'],
            rows.map((r) => [r.name, r.bridge, `${r.path}${r.netnsPresent ? '' : ' (gone)'}`, r.ifname, r.mac, r.addresses.join(',') || '-', r.publish.map((p) => `${p.port}/${p.proto}`).join(',') || '-']),
          ),
        );
      }),
    );

  ctl
    .command('fdb [bridge]')
    .description('MAC table: MAC, port, age, static/learned')
    .action((bridge: string | undefined) =>
      run(async (sock, o) => {
        const rows = (await apiRequest(sock, 'GET', `/v1/fdb${bridge ? `?bridge=${encodeURIComponent(bridge)}` : ''}`)) as FdbRow[];
        out(o, rows, () => table(['BRIDGE', 'MAC', 'PORT', 'AGE', 'TYPE'], rows.map((r) => [r.bridge, r.mac, r.port, r.type === 'static' ? '-' : `${r.ageSeconds}s`, r.type])));
      })(),
    );

  ctl
    .command('bridges')
    .description('bridges with MAC-table sizes and counters')
    .action(
      run(async (sock, o) => {
        const rows = (await apiRequest(sock, 'GET', '/v1/bridges')) as BridgeInfo[];
        out(o, rows, () =>
          table(
            ['BRIDGE', 'PORTS', 'MACS', 'LIMIT', 'AGING', 'FORWARDED', 'FLOODED', 'LEARN_REFUSED'],
            rows.map((b) => [b.name, b.ports.join(','), b.macs, b.macTableSize, `${b.agingSeconds}s`, b.forwarded, b.flooded, b.learnRefused]),
          ),
        );
      }),
    );

  ctl
    .command('link <port> <state>')
    .description('set a port up or down (down = carrier off: the namespace sees NO-CARRIER)')
    .action((port: string, state: string) =>
      run(async (sock, o) => {
        if (state !== 'up' && state !== 'down') throw new Error(`state must be 'up' or 'down', not '${state}'`);
        const r = (await apiRequest(sock, 'POST', `/v1/ports/${encodeURIComponent(port)}/link`, { up: state === 'up' })) as { carrier?: string };
        out(o, r, () => `${port}: ${state}${r.carrier !== undefined ? ` (carrier ${r.carrier})` : ''}`);
      })(),
    );

  ctl
    .command('conntrack')
    .description('tracked connections, like conntrack -L: proto, state, timeout, original and reply tuples, packets/bytes')
    .option('--limit <n>', 'at most this many flows (default: all)')
    .action((opts: { limit?: string }) =>
      run(async (sock, o) => {
        const limit = opts.limit === undefined ? Infinity : Number(opts.limit);
        if (!(limit === Infinity || (Number.isInteger(limit) && limit > 0))) throw new Error(`--limit must be a positive integer, not '${opts.limit}'`);
        const r = await fetchConntrack((n, from) => apiRequest(sock, 'GET', `/v1/conntrack?limit=${n}&from=${from}`) as Promise<ConntrackPage>, limit);
        out(o, r, () =>
          [
            ...r.flows.map(
              (f) =>
                `${f.protoName.padEnd(5)} ${f.state ? f.state.padEnd(12) : ''.padEnd(12)} ${String(f.secondsLeft).padStart(6)} ${f.original} packets=${f.packetsOrig} bytes=${f.bytesOrig} ${f.reply} packets=${f.packetsReply} bytes=${f.bytesReply}${f.flags.length ? ` [${f.flags.join(',')}]` : ''}`,
            ),
            `conntrack: ${r.size} flow(s) of ${r.max}`,
          ].join('\n'),
        );
      })(),
    );

  const forwards = ctl.command('forwards').description('published ports (DNAT): list, add, rm');
  forwards
    .command('list', { isDefault: true })
    .description('list published ports')
    .action(
      run(async (sock, o) => {
        const rows = (await apiRequest(sock, 'GET', '/v1/forwards')) as { proto: string; port: number; portEnd: number; to: string; toPort: number; family?: string }[];
        out(o, rows, () =>
          table(
            ['PROTO', 'EXTERNAL', 'TO'],
            rows.map((r) => [r.proto, r.portEnd !== r.port ? `${r.port}-${r.portEnd}` : String(r.port), `${r.to.includes(':') ? `[${r.to}]` : r.to}:${r.toPort}${r.portEnd !== r.port ? `-${r.toPort + r.portEnd - r.port}` : ''}`]),
          ),
        );
      }),
    );
  forwards
    .command('add <spec>')
    .description(`publish: ${PUBLISH_SPEC_SYNTAX}, e.g. 8080/tcp=10.100.0.3:80, 127.0.0.1:8080/tcp=10.100.0.3:80 (socket uplink) or 8080/tcp=[2001:db8:100::3]:80 (NAT66)`)
    .action((spec: string) =>
      run(async (sock, o) => {
        const body = parsePublishSpec(spec);
        const r = await apiRequest(sock, 'POST', '/v1/forwards', body);
        out(o, r, () => `published ${spec}`);
      })(),
    );
  forwards
    .command('rm <port>')
    .description('unpublish: PORT[/tcp|udp]')
    .action((spec: string) =>
      run(async (sock, o) => {
        const [port, proto = 'tcp'] = spec.split('/');
        const r = await apiRequest(sock, 'DELETE', `/v1/forwards/${encodeURIComponent(proto)}/${encodeURIComponent(port)}`);
        out(o, r, () => `removed ${port}/${proto}`);
      })(),
    );

  /** A command that shows one GET answer: as text, or as it came with --json. */
  const showCommand = <T>(name: string, description: string, path: string, text: (answer: T) => string) =>
    ctl
      .command(name)
      .description(description)
      .action(
        run(async (sock, o) => {
          const answer = (await apiRequest(sock, 'GET', path)) as T;
          out(o, answer, () => text(answer));
        }),
      );

  showCommand<{ iface: string; ipText: string; macText: string; state: string; ageSeconds: number; queued: number; probes: number }[]>(
    'arp',
    'neighbour cache (ARP) of the gateway and uplink interfaces',
    '/v1/arp',
    (rows) => table(['IFACE', 'IP', 'MAC', 'STATE', 'AGE', 'QUEUED', 'PROBES'], rows.map((r) => [r.iface, r.ipText, r.macText, r.state, `${r.ageSeconds}s`, r.queued, r.probes])),
  );
  showCommand<Neighbor6Row[]>(
    'neigh',
    'IPv6 neighbour cache (NDP) of the gateway and uplink interfaces: address, MAC, state, age, router flag, queued packets, probes',
    '/v1/neigh',
    renderNeighbors6,
  );
  showCommand<{ bridge: string; mac: string; ip: string; state: string; hostName?: string; expiresIn: number }[]>(
    'leases',
    'DHCP leases of the bridges with a DHCP server: address, MAC, state (offered, bound, free), host name, time left',
    '/v1/leases',
    (rows) => table(['BRIDGE', 'IP', 'MAC', 'STATE', 'HOSTNAME', 'EXPIRES'], rows.map((r) => [r.bridge, r.ip, r.mac, r.state, r.hostName ?? '-', r.state === 'free' ? '-' : `${r.expiresIn}s`])),
  );
  showCommand<{ destination: string; via: string; iface: string; origin: string }[]>('routes', 'route table', '/v1/routes', (rows) =>
    table(['DESTINATION', 'VIA', 'IFACE', 'ORIGIN'], rows.map((r) => [r.destination, r.via, r.iface, r.origin])),
  );
  showCommand<GraphInfo>(
    'graph',
    'the live element graph: elements, their ports and configuration, the links between them with packet counters',
    '/v1/graph',
    renderGraph,
  );
  showCommand<{ name: string; where: string; what: string }[]>(
    'drops',
    'every drop reason: its name, which element counts it, what happened to the frame',
    '/v1/drops',
    (d) => table(['REASON', 'COUNTED BY', 'WHAT'], d.map((r) => [r.name, r.where, r.what])),
  );

  ctl
    .command('trace')
    .description('show what each stage would do with a described packet, without sending it (like ofproto/trace)')
    .requiredOption('--port <name>', 'ingress port (a namespace, tap, packet or the uplink port)')
    .requiredOption('--dst <ip>', 'destination address, IPv4 or IPv6 (the family of the packet)')
    .addOption(new Option('--proto <proto>', 'protocol (icmp: an echo request, ICMPv6 for IPv6)').choices(['icmp', 'tcp', 'udp']).default('icmp'))
    .option('--src <ip>', "source address, of the destination's family (default: the port's configured address of that family)")
    .option('--sport <n>', 'source port / ICMP id', Number)
    .option('--dport <n>', 'destination port', Number)
    .option('--ttl <n>', 'IPv4 TTL or IPv6 hop limit', Number)
    .option('--size <n>', 'payload bytes', Number)
    .option('--src-mac <mac>', 'source MAC (default: the port device MAC)')
    .option('--dst-mac <mac>', 'destination MAC (default: gateway, or the neighbour if on-link)')
    .action((opts: Record<string, unknown>) =>
      run(async (sock, o) => {
        const body = { ...opts, srcMac: opts.srcMac, dstMac: opts.dstMac };
        const r = (await apiRequest(sock, 'POST', '/v1/trace', body)) as TraceResult;
        out(o, r, () => {
          const w = Math.max(8, ...r.steps.map((s) => s.stage.length));
          return [
            `packet:  ${r.packet}`,
            `ingress: ${r.ingress}`,
            ...r.steps.map((s) => `  ${s.stage.padEnd(w)}  ${s.decision}`),
            ...r.outputs.map((x) => `  ${'output'.padEnd(w)}  ${x}`),
            ...pathLines(r.path).map((l, i) => `${i === 0 ? 'path:   ' : '        '} ${l}`),
            `verdict: ${r.verdict}`,
          ].join('\n');
        });
      })(),
    );

  registerExperimentCtl(ctl, program, {
    run:
      <A extends unknown[]>(fn: (sock: string, o: CtlOpts, ...args: A) => Promise<void>) =>
      async (...args: A) => {
        const o = ctl.opts<CtlOpts>();
        try {
          await fn(resolveSocket(o), o, ...args);
        } catch (err) {
          fail(err);
        }
      },
  });

  ctl
    .command('api <method> <path> [json]')
    .description('raw API call, e.g. `tapbridge ctl api GET /v1`')
    .action((method: string, path: string, body: string | undefined) =>
      run(async (sock) => {
        const r = await apiRequest(sock, method.toUpperCase(), path, body === undefined ? undefined : JSON.parse(body));
        process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      })(),
    );
}
