/*
 * Micro benchmark of the experiment features (captures, fault injection) on the data path,
 * no devices: a 64-frame batch received on port 0 of a 4-port bridge (an engine built from a
 * spec, ports without fds), known unicast to ports 1..3 through the device TX queues (the
 * flush counts them), with the capture or fault element spliced into port 0's ingress link
 * exactly as the capture and fault controls do. The traffic mix is bench/lib/frames.ts's
 * (64 B UDP, TCP ACKs, 1448 B TCP).
 *
 *   exp.off               no capture, no fault (the zero-cost claim: compare with this)
 *   exp.capture           pcap capture of port 0 ingress into a sink that counts bytes
 *                         (staging flushed when full and every 1024 batches, as the tick does)
 *   exp.capture.filtered  the same with a filter no frame matches ('arp'): filter cost only
 *   exp.capture.pcapng    pcapng with the per-packet "ingress, before faults" comment
 *   exp.loss1             1% random loss on port 0 ingress (seeded)
 *   exp.delay             1 ms delay on port 0 ingress: every frame copied to a pool slot, held
 *                         in the fault element's delay line, released by release() (the clock advances
 *                         1 ms per batch, so each batch releases the previous one)
 *   exp.rate              a rate limit high enough never to queue (token-bucket arithmetic)
 *
 *   node dist/bench/micro-experiments.js [--filter NAME] [--seconds S]
 *
 * Each case runs in its own child process. Output: Mpps, ns/packet, the cost over exp.off,
 * allocation per packet, and a check that every frame ended where it should.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { C_TX_PACKETS, COUNTER_SLOTS, DROP_BASE } from '../src/core/counters.js';
import { SLOT_SIZE, VNET_HDR_LEN } from '../src/core/frame.js';
import { Engine } from '../src/dataplane/engine.js';
import { RANK_CAPTURE_INGRESS, RANK_FAULT_INGRESS } from '../src/dataplane/faults.js';
import { FaultElement } from '../src/faults/element.js';
import { CaptureElement, CaptureTap } from '../src/trace/capture.js';
import { BROADCAST_MAC } from '../src/wire/mac.js';
import { CaptureWriter } from '../src/trace/pcap.js';
import { compileFilter } from '../src/trace/filter.js';
import { FaultStage } from '../src/faults/stage.js';
import { mixFor, Prng, randomMac, writeFrame } from './lib/frames.js';
import { findGc, measure, type MicroCase, type MicroResult } from './lib/harness.js';
import { fmt, table } from './lib/stats.js';

const BATCH = 64;
const N_PORTS = 4;

type Mode = 'off' | 'capture' | 'capture.filtered' | 'capture.pcapng' | 'loss1' | 'delay' | 'rate';
const MODES: Mode[] = ['off', 'capture', 'capture.filtered', 'capture.pcapng', 'loss1', 'delay', 'rate'];

function experimentCase(mode: Mode): MicroCase {
  let now = 1000;
  const ports = Array.from({ length: N_PORTS }, (_, i) => ({ name: `p${i}`, kind: 'tap' as const, bridge: 'br0', fd: -1, vnetHdr: false, ifname: `p${i}`, mac: '02:00:00:00:00:01', addresses: [] }));
  const engine = new Engine({ bridges: [{ name: 'br0', agingSeconds: 300, macTableSize: 8192, macLimitPerPort: 0, static: [] }], ports, routes: [] }, () => now);
  const arena = engine.arena;
  const ring = arena.reserveRing(BATCH);
  const learnRing = arena.reserveRing(N_PORTS);
  const devs = ports.map((p) => engine.device(p.name)!);
  const records = devs.map((d) => d.record);
  const r = new Prng(3);
  const hosts: number[] = [];
  for (let i = 0; i < N_PORTS; i++) hosts.push(randomMac(r));
  const u8 = arena.u8;
  for (let i = 0; i < N_PORTS; i++) {
    const off = learnRing + i * SLOT_SIZE;
    const len = writeFrame(u8, off + VNET_HDR_LEN, { dst: BROADCAST_MAC, src: hosts[i], proto: 'udp', payload: 18 });
    devs[i].out[0].push(off, len);
  }
  engine.endBatch();
  for (const rec of records) rec.counters.fill(0);
  const offs = new Int32Array(BATCH);
  const lens = new Int32Array(BATCH);
  for (let j = 0; j < BATCH; j++) {
    offs[j] = ring + j * SLOT_SIZE;
    lens[j] = writeFrame(u8, offs[j] + VNET_HDR_LEN, { dst: hosts[1 + (j % (N_PORTS - 1))], src: hosts[0], ...mixFor(j), srcPort: 40000 + j });
  }

  // What the capture and fault controls splice into port 0's ingress link.
  const inDev = devs[0];
  let sunk = 0;
  let writer: CaptureWriter | null = null;
  let fault: FaultElement | null = null;
  if (mode.startsWith('capture')) {
    const pcapng = mode === 'capture.pcapng';
    writer = new CaptureWriter(
      { format: pcapng ? 'pcapng' : 'pcap', snaplen: 262144, interfaces: ['p0'], comments: pcapng ? ['ingress, before faults', 'egress, after faults'] : [] },
      (chunk) => {
        sunk += chunk.byteLength;
        return true;
      },
    );
    const filter = mode === 'capture.filtered' ? compileFilter('arp') : null;
    const tap = new CaptureElement('tap/p0/in', engine.ctx, 'ingress');
    tap.taps = [new CaptureTap(1, writer, filter, 0, pcapng ? 0 : -1)];
    engine.graph.wrap(inDev, 0, tap, RANK_CAPTURE_INGRESS);
  } else if (mode === 'loss1' || mode === 'delay' || mode === 'rate') {
    const stage = new FaultStage({ seed: 7 });
    stage.configure(mode === 'loss1' ? { loss: { percent: 1 } } : mode === 'delay' ? { delay: { ms: 1 } } : { rate: { bitsPerSecond: 1e13 } });
    fault = new FaultElement('fault/p0/in', engine.ctx, stage, inDev.record, 'ingress');
    engine.graph.wrap(inDev, 0, fault, RANK_FAULT_INGRESS);
  }
  const stage = fault?.stage ?? null;
  const rx = inDev.out[0];
  const clock = engine.ctx.clock;
  let batches = 0;
  let inputs = 0;
  const queued = () => records.reduce((n, rec) => n + rec.counters[C_TX_PACKETS], 0);

  return {
    name: `exp.${mode}`,
    description:
      {
        off: 'hooks off: the plain forwarding path',
        capture: 'capture of port 0 ingress (pcap, every frame written)',
        'capture.filtered': "capture with filter 'arp' (no frame matches)",
        'capture.pcapng': 'capture, pcapng with a per-packet comment',
        loss1: '1% random loss on port 0 ingress',
        delay: '1 ms delay on port 0 ingress (copy, timer queue, release)',
        rate: 'rate limit that never queues (token bucket only)',
      }[mode] + ` — ${BATCH}-frame batch, unicast to ${N_PORTS - 1} ports via TX queues`,
    packetsPerCall: BATCH,
    run(calls: number): number {
      for (let c = 0; c < calls; c++) {
        batches++;
        if (mode === 'delay') now++;
        else if ((batches & 1023) === 0) now++;
        clock.refresh();
        if (fault !== null && mode === 'delay') fault.release(now); // the engine's delay timer
        for (let j = 0; j < BATCH; j++) rx.push(offs[j], lens[j]);
        engine.endBatch();
        if (writer !== null && (batches & 1023) === 0) writer.flush();
      }
      inputs += calls * BATCH;
      return queued();
    },
    check: () => {
      let drops = 0;
      for (const rec of records) for (let i = DROP_BASE; i < COUNTER_SLOTS; i++) drops += rec.counters[i];
      const held = stage?.queued ?? 0;
      const out = queued();
      if (mode === 'loss1') {
        const lost = stage!.counters().lossDrops;
        if (out + lost !== inputs) return `outputs ${out} + lost ${lost} != inputs ${inputs}`;
        const share = lost / inputs;
        if (share < 0.008 || share > 0.012) return `loss share ${share}`;
        return null;
      }
      if (drops !== 0) return `${drops} drops counted`;
      if (out + held !== inputs) return `outputs ${out} + held ${held} != inputs ${inputs}`;
      if (writer !== null) {
        writer.flush();
        const want = mode === 'capture.filtered' ? 0 : inputs;
        if (writer.counters.packets !== want) return `capture wrote ${writer.counters.packets} records, expected ${want}`;
        if (sunk !== writer.counters.bytes) return `sink got ${sunk} bytes, writer counted ${writer.counters.bytes}`;
      }
      return null;
    },
    extra: () => ({ captureBytesPerPacket: writer !== null && inputs > 0 ? writer.counters.bytes / inputs : 0 }),
  };
}

function arg(name: string): string | null {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : null;
}

async function main(): Promise<number> {
  const seconds = Number(arg('seconds') ?? '1');
  const filter = arg('filter');
  const child = arg('child');
  const { gc, how } = findGc();
  const opts = { seconds, warmupSeconds: Math.min(0.5, seconds / 2), gc };
  if (child !== null) {
    process.stdout.write(JSON.stringify(await measure(experimentCase(child as Mode), opts)) + '\n');
    return 0;
  }
  const selected = MODES.filter((m) => filter === null || `exp.${m}`.includes(filter));
  process.stderr.write(`experiment micro benchmarks: ${selected.length} case(s), ${seconds} s each, one process per case, forced GC: ${how}\n`);
  const results: MicroResult[] = [];
  for (const m of selected) {
    process.stderr.write(`  exp.${m} ...\n`);
    const out = execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', m, '--seconds', String(seconds)], {
      encoding: 'utf8',
      timeout: (seconds + 30) * 1000,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    results.push(JSON.parse(out.trim().split('\n').pop()!) as MicroResult);
  }
  const base = results.find((r) => r.name === 'exp.off');
  const rows = [['case', 'Mpps', 'ns/pkt', '+ns/pkt vs off', 'alloc B/pkt', 'check']];
  for (const r of results)
    rows.push([
      r.name,
      fmt(r.mpps, 2),
      fmt(r.nsPerPacket, 1),
      base !== undefined && r !== base ? fmt(r.nsPerPacket - base.nsPerPacket, 1) : '-',
      fmt(r.allocBytesPerPacket, r.allocBytesPerPacket < 1 ? 3 : 1),
      r.check ?? 'ok',
    ]);
  process.stdout.write('\n' + table(rows) + '\n\n');
  for (const r of results) process.stdout.write(`  ${r.name.padEnd(22)} ${r.description}\n`);
  process.stdout.write('\n(alloc B/pkt of the capture cases is the output itself: staged records are handed to the sink as copied chunks)\n');
  return results.some((r) => r.check !== null) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
