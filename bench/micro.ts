/*
 * Micro benchmarks of the data plane's JavaScript, in packets per second, without devices:
 *   wire.*    wire views (Ethernet + IPv4 + UDP/TCP) over a batch of 64 real frames
 *   fdb.*     MAC table learn (refresh) + lookup per packet, 1k and 100k MACs
 *   bridge.*  a batch of 64 frames into the switch element, whose 4 outputs are linked to
 *             counting sink elements, or to device elements without an fd (their TX queues;
 *             the flush is replaced by emptying the queue, so no native call is made):
 *             known unicast and flooding
 *   engine.*  the same through an engine built from a spec: the device rx link, the switch,
 *             the device TX queues and Engine.endBatch
 * Each case is warmed up, then run for --seconds (default 1). The heap columns show that
 * the fast path does not allocate: heapUsed growth per million packets (~0) and the number
 * of GCs during the measured window (0). Run with --expose-gc for a forced GC around each
 * case (the harness tries to enable it at run time otherwise).
 *
 *   node [--expose-gc] dist/bench/micro.js [--filter NAME] [--seconds S] [--same-process] [--no-json]
 *
 * Each case runs in its own child process (same node flags) so the JIT feedback of one case
 * does not shape another; --same-process runs them all in this process instead.
 *
 * Target: the switch forwards known unicast at >= 3 Mpps on one core.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Arena } from '../src/core/arena.js';
import { C_TX_PACKETS, COUNTER_SLOTS, DROP_BASE } from '../src/core/counters.js';
import { Element, makeClock, PortRecord, Tracer } from '../src/core/element.js';
import { SLOT_SIZE, VNET_HDR_LEN } from '../src/core/frame.js';
import { Graph } from '../src/core/graph.js';
import { Engine } from '../src/dataplane/engine.js';
import { DevicePort } from '../src/io/device.js';
import { Switch } from '../src/switch/switch.js';
import { MacTable } from '../src/switch/fdb.js';
import { EthernetView, ETHERTYPE_IPV4 } from '../src/wire/ethernet.js';
import { BROADCAST_MAC } from '../src/wire/mac.js';
import { IPPROTO_TCP, IPPROTO_UDP, Ipv4View } from '../src/wire/ipv4.js';
import { TcpView } from '../src/wire/tcp.js';
import { UdpView } from '../src/wire/udp.js';
import { mixFor, Prng, randomMac, writeFrame } from './lib/frames.js';
import { findGc, measure, type MicroCase, type MicroResult } from './lib/harness.js';
import { fileStamp, fmt, table } from './lib/stats.js';
import { REPO_ROOT } from './lib/tapbridge.js';

const BATCH = 64;
const TARGET_UNICAST_MPPS = 3;

/* ------------------------------------------------------------------ wire */

function wireCase(name: string, verifyIpChecksum: boolean): MicroCase {
  const stride = 2048;
  const buf = new Uint8Array(BATCH * stride);
  const offs = new Int32Array(BATCH);
  const lens = new Int32Array(BATCH);
  const r = new Prng(7);
  const a = randomMac(r);
  const b = randomMac(r);
  for (let i = 0; i < BATCH; i++) {
    offs[i] = i * stride;
    lens[i] = writeFrame(buf, offs[i], { dst: b, src: a, ...mixFor(i), srcPort: 40000 + i });
  }
  const eth = new EthernetView();
  const ip = new Ipv4View();
  const udp = new UdpView();
  const tcp = new TcpView();
  let bad = 0;
  let udpSeen = 0;
  let tcpSeen = 0;
  return {
    name,
    description: verifyIpChecksum ? 'Ethernet+IPv4 (header checksum verified)+UDP/TCP views, all fields used' : 'Ethernet+IPv4+UDP/TCP views: reset, checkLen, read the flow fields',
    packetsPerCall: BATCH,
    run(calls: number): number {
      let acc = 0;
      for (let c = 0; c < calls; c++) {
        for (let i = 0; i < BATCH; i++) {
          eth.reset(buf, offs[i], lens[i]);
          if (eth.checkLen() !== 0 || eth.etherType !== ETHERTYPE_IPV4) {
            bad++;
            continue;
          }
          ip.reset(buf, eth.payloadOffset, eth.payloadLength);
          if (ip.checkLen() !== 0 || (verifyIpChecksum && !ip.verifyChecksum())) {
            bad++;
            continue;
          }
          acc = (acc + ip.src + ip.dst + ip.ttl) | 0;
          const proto = ip.protocol;
          if (proto === IPPROTO_UDP) {
            udp.reset(buf, ip.payloadOffset, ip.payloadLength);
            if (udp.checkLen() !== 0) bad++;
            else {
              acc = (acc + ((udp.srcPort << 16) | udp.dstPort) + udp.payloadLength) | 0;
              udpSeen++;
            }
          } else if (proto === IPPROTO_TCP) {
            tcp.reset(buf, ip.payloadOffset, ip.payloadLength);
            if (tcp.checkLen() !== 0) bad++;
            else {
              acc = (acc ^ ((tcp.srcPort << 16) | tcp.dstPort) ^ tcp.seq ^ tcp.flags ^ tcp.payloadLength) | 0;
              tcpSeen++;
            }
          } else bad++;
        }
      }
      return acc;
    },
    check: () => (bad !== 0 ? `${bad} frames rejected` : udpSeen === 0 || tcpSeen === 0 ? 'no UDP or no TCP parsed' : null),
  };
}

/* ------------------------------------------------------------------ fdb */

function fdbCase(n: number): MicroCase {
  const ports = 16;
  const t = new MacTable({ capacity: n, agingMs: 300_000, maxPorts: 64 });
  const r = new Prng(11);
  const macs = new Float64Array(n);
  const portOf = new Int32Array(n);
  const now = 1000;
  for (let i = 0; i < n; i++) {
    let m = randomMac(r);
    while (t.lookup(m, now) >= 0) m = randomMac(r);
    macs[i] = m;
    portOf[i] = i % ports;
    t.learn(m, portOf[i], now);
  }
  const SEQ = 1 << 16;
  const seq = new Int32Array(SEQ);
  for (let i = 0; i < SEQ; i++) seq[i] = r.below(n);
  let p = 0;
  let misses = 0;
  return {
    name: `fdb.${n >= 1000 ? `${n / 1000}k` : n}`,
    description: `MacTable with ${n} MACs: learn(src) (refresh) + lookup(dst) per packet, random MACs`,
    packetsPerCall: BATCH,
    run(calls: number): number {
      let acc = 0;
      const mask = SEQ - 1;
      for (let c = 0; c < calls; c++) {
        for (let i = 0; i < BATCH; i++) {
          const s = seq[p];
          const d = seq[(p + 1) & mask];
          p = (p + 2) & mask;
          t.learn(macs[s], portOf[s], now);
          const out = t.lookup(macs[d], now);
          if (out < 0) misses++;
          acc += out;
        }
      }
      return acc;
    },
    check: () => (misses !== 0 ? `${misses} lookups missed` : t.size !== n ? `table holds ${t.size}, expected ${n}` : null),
  };
}

/* ------------------------------------------------------------------ switch */

/** A sink element: counts what it is pushed (the "internal port" of the bridge cases). */
class CountingSink extends Element {
  readonly kind = 'CountingSink';
  frames = 0;
  bytes = 0;
  push(_input: number, _off: number, len: number): void {
    this.frames++;
    this.bytes += len;
  }
}

interface SwitchRig {
  sw: Switch;
  records: PortRecord[];
  sinks: CountingSink[];
  devices: DevicePort[];
  /** Frames transmitted through the TX-queue path (counted at the fake flush). */
  queued: number;
  offs: Int32Array;
  lens: Int32Array;
}

/**
 * 4 ports on one switch element; host i sits behind port i (learned from one broadcast frame
 * each). Each switch output is linked to a counting sink, or to a device element without an
 * fd (its TX queue). The batch: 64 frames received on port 0, to host 1..3 (unicast) or to
 * broadcast (flood).
 */
function switchRig(nPorts: number, sinks: boolean, flood: boolean): SwitchRig {
  const arena = new Arena(BATCH + nPorts, 16);
  const ctx = { arena, u8: arena.u8, clock: makeClock(() => 1000), tracer: new Tracer() };
  const ring = arena.reserveRing(BATCH);
  const learnRing = arena.reserveRing(nPorts);
  const records: PortRecord[] = [];
  for (let i = 0; i < nPorts; i++) records.push(new PortRecord(`p${i}`, 'tap', `p${i}`, 0, false, 'br0'));
  const graph = new Graph();
  const sw = graph.add(new Switch('switch/br0', ctx, { agingSeconds: 300, macTableSize: 8192, macLimitPerPort: 0, ports: records }));
  const counting: CountingSink[] = [];
  const devices: DevicePort[] = [];
  for (let i = 0; i < nPorts; i++) {
    if (sinks) {
      const k = graph.add(new CountingSink(`sink/p${i}`, ctx, ['in'], []));
      counting.push(k);
      graph.connect(sw, i, k, 0);
    } else {
      const d = graph.add(new DevicePort(`dev/p${i}`, ctx, { fd: -1, kind: 'tap', vnetHdr: false, record: records[i] }));
      devices.push(d);
      graph.connect(sw, i, d, 0);
    }
  }
  const r = new Prng(3);
  const hosts: number[] = [];
  for (let i = 0; i < nPorts; i++) hosts.push(randomMac(r));
  const u8 = arena.u8;
  for (let i = 0; i < nPorts; i++) {
    const off = learnRing + i * SLOT_SIZE;
    const len = writeFrame(u8, off + VNET_HDR_LEN, { dst: BROADCAST_MAC, src: hosts[i], proto: 'udp', payload: 18 });
    sw.push(i, off, len);
  }
  for (const d of devices) d.txCount = 0;
  const offs = new Int32Array(BATCH);
  const lens = new Int32Array(BATCH);
  for (let j = 0; j < BATCH; j++) {
    offs[j] = ring + j * SLOT_SIZE;
    const dst = flood ? BROADCAST_MAC : hosts[1 + (j % (nPorts - 1))];
    lens[j] = writeFrame(u8, offs[j] + VNET_HDR_LEN, { dst, src: hosts[0], ...mixFor(j), srcPort: 40000 + j });
  }
  for (const k of counting) k.frames = k.bytes = 0;
  sw.counters.forwarded = 0;
  sw.counters.flooded = 0;
  return { sw, records, sinks: counting, devices, queued: 0, offs, lens };
}

function bridgeCase(name: string, sinks: boolean, flood: boolean): MicroCase {
  const nPorts = 4;
  const rig = switchRig(nPorts, sinks, flood);
  const { sw, records, devices, offs, lens } = rig;
  let inputs = 0;
  const outputs = () => (sinks ? rig.sinks.reduce((n, r) => n + r.frames, 0) : rig.queued);
  return {
    name,
    description:
      `${BATCH}-frame batch into switch input 0 -> ` +
      (flood ? `broadcast, flooded to ${nPorts - 1} ports` : `known unicast to ports 1..${nPorts - 1}`) +
      (sinks ? ' (outputs linked to counting sink elements)' : ' (outputs linked to device elements: TX queues, flush = empty the queue)'),
    packetsPerCall: BATCH,
    run(calls: number): number {
      for (let c = 0; c < calls; c++) {
        for (let j = 0; j < BATCH; j++) sw.push(0, offs[j], lens[j]);
        if (!sinks) {
          for (let i = 0; i < devices.length; i++) {
            const d = devices[i];
            if (d.txCount !== 0) {
              rig.queued += d.txCount;
              d.txCount = 0;
            }
          }
        }
      }
      inputs += calls * BATCH;
      return sw.counters.forwarded;
    },
    check: () => {
      let drops = 0;
      for (const p of records) for (let i = DROP_BASE; i < COUNTER_SLOTS; i++) drops += p.counters[i];
      if (drops !== 0) return `${drops} drops counted on the ports`;
      const want = flood ? inputs * (nPorts - 1) : inputs;
      if (outputs() !== want) return `outputs ${outputs()}, expected ${want}`;
      const c = sw.counters;
      if (flood ? c.flooded !== inputs : c.forwarded !== inputs) return `switch counted forwarded ${c.forwarded}, flooded ${c.flooded} for ${inputs} inputs`;
      return null;
    },
    extra: () => ({ outputsPerInput: inputs > 0 ? outputs() / inputs : 0 }),
  };
}

/**
 * The engine's own path: an engine built from a data-plane spec with 4 tap ports without fds;
 * each frame enters through port 0's device rx link (what an RX batch does per frame, with
 * the clock stamped once per batch from performance.now()), the switch, and the egress
 * devices' TX queues; Engine.endBatch flushes them (no native call without an fd).
 */
function engineCase(): MicroCase {
  const nPorts = 4;
  const ports = Array.from({ length: nPorts }, (_, i) => ({ name: `p${i}`, kind: 'tap' as const, bridge: 'br0', fd: -1, vnetHdr: false, ifname: `p${i}`, mac: '02:00:00:00:00:01', addresses: [] }));
  const engine = new Engine({ bridges: [{ name: 'br0', agingSeconds: 300, macTableSize: 8192, macLimitPerPort: 0, static: [] }], ports, routes: [] });
  const r = new Prng(5);
  const hosts: number[] = [];
  for (let i = 0; i < nPorts; i++) hosts.push(randomMac(r));
  const u8 = engine.arena.u8;
  const ring = engine.arena.reserveRing(BATCH);
  const devs = ports.map((p) => engine.device(p.name)!);
  engine.ctx.clock.refresh();
  for (let i = 0; i < nPorts; i++) {
    const off = ring + i * SLOT_SIZE;
    const len = writeFrame(u8, off + VNET_HDR_LEN, { dst: BROADCAST_MAC, src: hosts[i], proto: 'udp', payload: 18 });
    devs[i].out[0].push(off, len);
  }
  engine.endBatch();
  const offs = new Int32Array(BATCH);
  const lens = new Int32Array(BATCH);
  for (let j = 0; j < BATCH; j++) {
    offs[j] = ring + j * SLOT_SIZE;
    lens[j] = writeFrame(u8, offs[j] + VNET_HDR_LEN, { dst: hosts[1 + (j % (nPorts - 1))], src: hosts[0], ...mixFor(j), srcPort: 40000 + j });
  }
  const sw = engine.switches[0];
  sw.counters.forwarded = 0;
  const sent = () => devs.slice(1).reduce((n, d) => n + d.record.counters[C_TX_PACKETS], 0);
  const base = sent();
  const rx = devs[0].out[0];
  const clock = engine.ctx.clock;
  let inputs = 0;
  return {
    name: 'engine.unicast',
    description: `${BATCH}-frame batch through the device rx link (clock stamped per batch), the switch and the device TX queues + Engine.endBatch, known unicast to 3 ports`,
    packetsPerCall: BATCH,
    run(calls: number): number {
      for (let c = 0; c < calls; c++) {
        clock.refresh();
        for (let j = 0; j < BATCH; j++) rx.push(offs[j], lens[j]);
        engine.endBatch();
      }
      inputs += calls * BATCH;
      return sw.counters.forwarded;
    },
    check: () => {
      const out = sent() - base;
      return out !== inputs || sw.counters.forwarded !== inputs ? `outputs ${out}, forwarded ${sw.counters.forwarded}, expected ${inputs}` : null;
    },
  };
}

/* ------------------------------------------------------------------ main */

const CASES: (() => MicroCase)[] = [
  () => wireCase('wire.parse', false),
  () => wireCase('wire.parse+ipcsum', true),
  () => fdbCase(1000),
  () => fdbCase(100_000),
  () => bridgeCase('bridge.unicast', true, false),
  () => bridgeCase('bridge.unicast.txq', false, false),
  () => bridgeCase('bridge.flood', true, true),
  () => bridgeCase('bridge.flood.txq', false, true),
  () => engineCase(),
];
const CASE_NAMES = ['wire.parse', 'wire.parse+ipcsum', 'fdb.1k', 'fdb.100k', 'bridge.unicast', 'bridge.unicast.txq', 'bridge.flood', 'bridge.flood.txq', 'engine.unicast'];

function usage(): never {
  process.stderr.write(
    `usage: node [--expose-gc] dist/bench/micro.js [--filter NAME] [--seconds S] [--same-process] [--no-json]\ncases: ${CASE_NAMES.join(', ')}\n`,
  );
  process.exit(2);
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  let filter: string | null = null;
  let seconds = 1;
  let json = true;
  let sameProcess = false;
  let child: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--filter') filter = argv[++i] ?? usage();
    else if (argv[i] === '--seconds') {
      seconds = Number(argv[++i]);
      if (!(seconds > 0 && seconds <= 60)) usage();
    } else if (argv[i] === '--no-json') json = false;
    else if (argv[i] === '--same-process') sameProcess = true;
    else if (argv[i] === '--child') child = argv[++i] ?? usage();
    else usage();
  }
  const { gc, how } = findGc();
  const opts = { seconds, warmupSeconds: Math.min(0.5, seconds / 2), gc };

  if (child !== null) {
    // One case in a fresh process: its JIT feedback is not shaped by the other cases.
    const i = CASE_NAMES.indexOf(child);
    if (i < 0) usage();
    process.stdout.write(JSON.stringify(await measure(CASES[i](), opts)) + '\n');
    return 0;
  }

  const selected = CASE_NAMES.filter((n) => filter === null || n.includes(filter));
  if (selected.length === 0) {
    process.stderr.write(`no case matches '${filter}'\n`);
    usage();
  }
  process.stderr.write(
    `micro benchmarks: ${selected.length} case(s), ${seconds} s each, ${sameProcess ? 'one process' : 'one process per case'}, ` +
      `forced GC: ${how === 'none' ? 'not available' : how === 'flag' ? '--expose-gc' : 'enabled at run time'}\n`,
  );

  const results: MicroResult[] = [];
  for (const name of selected) {
    process.stderr.write(`  ${name} ...\n`);
    if (sameProcess) results.push(await measure(CASES[CASE_NAMES.indexOf(name)](), opts));
    else {
      const out = execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', name, '--seconds', String(seconds)], {
        encoding: 'utf8',
        timeout: (seconds + 30) * 1000,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      results.push(JSON.parse(out.trim().split('\n').pop()!) as MicroResult);
    }
  }

  const rows = [['case', 'Mpps', 'ns/pkt', 'heapUsed Δ B/Mpkt', 'GCs', 'alloc B/pkt', 'check']];
  for (const r of results)
    rows.push([
      r.name,
      fmt(r.mpps, 2),
      fmt(r.nsPerPacket, 1),
      r.gcsDuringRun === 0 ? fmt(r.heapGrowthPerMpkt, 0) : '(GC ran)',
      String(r.gcsDuringRun),
      fmt(r.allocBytesPerPacket, r.allocBytesPerPacket < 1 ? 3 : 1),
      r.check ?? 'ok',
    ]);
  process.stdout.write('\n' + table(rows) + '\n\n');
  for (const r of results) process.stdout.write(`  ${r.name.padEnd(20)} ${r.description}\n`);

  const uni = results.find((r) => r.name === 'bridge.unicast');
  const uniq = results.find((r) => r.name === 'bridge.unicast.txq');
  let targetOk: boolean | null = null;
  if (uni !== undefined) {
    targetOk = uni.mpps >= TARGET_UNICAST_MPPS;
    process.stdout.write(
      `\ntarget: known unicast >= ${TARGET_UNICAST_MPPS} Mpps on one core: bridge.unicast ${fmt(uni.mpps, 2)} Mpps -> ${targetOk ? 'PASS' : 'FAIL'}` +
        (uniq ? ` (with the TX-queue path: ${fmt(uniq.mpps, 2)} Mpps)` : '') +
        '\n',
    );
  }
  // A per-packet allocation is >= 8 bytes (a boxed double): 0.1 B/pkt is far below that.
  const allocating = results.filter((r) => r.allocBytesPerPacket > 0.1);
  process.stdout.write(
    'allocation (heapUsed growth over the measured window, GCs inside it): ' +
      (allocating.length === 0
        ? 'none per packet in any case\n'
        : `per-packet allocation in ${allocating.map((r) => `${r.name} (${r.gcsDuringRun} GCs in ${fmt(r.seconds, 1)} s, ${fmt(r.allocBytesPerPacket, 1)} B/pkt)`).join(', ')}\n`),
  );

  const failed = results.filter((r) => r.check !== null);
  if (json) {
    const started = new Date();
    const dir = join(REPO_ROOT, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `micro-${fileStamp(started)}.json`);
    writeFileSync(
      file,
      JSON.stringify(
        {
          kind: 'tapbridge-micro',
          date: started.toISOString(),
          environment: { node: process.version, kernel: release(), cpus: cpus().length, cpuModel: cpus()[0]?.model ?? null, forcedGc: how },
          options: { filter, seconds },
          target: { case: 'bridge.unicast', minMpps: TARGET_UNICAST_MPPS, pass: targetOk },
          results,
        },
        null,
        2,
      ) + '\n',
    );
    process.stderr.write(`\nresults written to ${file}\n`);
  }
  return failed.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`fatal: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
