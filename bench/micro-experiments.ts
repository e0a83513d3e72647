/*
 * Micro benchmark of the experiment features (captures, fault injection) on the data path,
 * no devices: a 64-frame batch received on port 0 of a 4-port bridge, known unicast to ports
 * 1..3 through the real TX-queue path (the flush just empties the queues), with the port's
 * hooks exactly as the engine runs them (ingressHooked when `port.hooked`, else straight to
 * the bridge). The traffic mix is bench/lib/frames.ts's (64 B UDP, TCP ACKs, 1448 B TCP).
 *
 *   exp.off               no capture, no fault (the zero-cost claim: compare with this)
 *   exp.capture           pcap capture of port 0 ingress into a sink that counts bytes
 *                         (staging flushed when full and every 1024 batches, as the tick does)
 *   exp.capture.filtered  the same with a filter no frame matches ('arp'): filter cost only
 *   exp.capture.pcapng    pcapng with the per-packet "ingress, before faults" comment
 *   exp.loss1             1% random loss on port 0 ingress (seeded)
 *   exp.delay             1 ms delay on port 0 ingress: every frame copied to a pool slot, held
 *                         in the fault timer queue, released by poll() (the clock advances
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
import { Arena } from '../src/engine/arena.js';
import { C_TX_PACKETS, DROP_BASE, COUNTER_SLOTS } from '../src/engine/counters.js';
import { SLOT_SIZE, VNET_HDR_LEN } from '../src/engine/frame.js';
import { Port } from '../src/engine/port.js';
import { CaptureTap, DIR_INGRESS, ingressHooked } from '../src/engine/hooks.js';
import { Bridge } from '../src/switch/bridge.js';
import { BROADCAST_MAC } from '../src/wire/mac.js';
import { CaptureWriter } from '../src/trace/pcap.js';
import { compileFilter } from '../src/trace/filter.js';
import { FaultStage } from '../src/faults/faults.js';
import { mixFor, Prng, randomMac, writeFrame } from './lib/frames.js';
import { findGc, measure, type MicroCase, type MicroResult } from './lib/harness.js';
import { fmt, table } from './lib/stats.js';

const BATCH = 64;
const N_PORTS = 4;

type Mode = 'off' | 'capture' | 'capture.filtered' | 'capture.pcapng' | 'loss1' | 'delay' | 'rate';
const MODES: Mode[] = ['off', 'capture', 'capture.filtered', 'capture.pcapng', 'loss1', 'delay', 'rate'];

function experimentCase(mode: Mode): MicroCase {
  const arena = new Arena(BATCH + N_PORTS, 4 * BATCH);
  const ring = arena.reserveRing(BATCH);
  const learnRing = arena.reserveRing(N_PORTS);
  const bridge = new Bridge(0, arena.u8, { name: 'br0', agingMs: 300_000, macTableSize: 8192, macLimitPerPort: 0, maxPorts: 64 });
  const r = new Prng(3);
  const hosts: number[] = [];
  const ports: Port[] = [];
  for (let i = 0; i < N_PORTS; i++) {
    hosts.push(randomMac(r));
    const p = new Port(i, `p${i}`, 'tap', arena, -1, false, null, `p${i}`, 0);
    bridge.attach(p);
    ports.push(p);
  }
  const u8 = arena.u8;
  for (let i = 0; i < N_PORTS; i++) {
    const off = learnRing + i * SLOT_SIZE;
    const len = writeFrame(u8, off + VNET_HDR_LEN, { dst: BROADCAST_MAC, src: hosts[i], proto: 'udp', payload: 18 });
    bridge.input(ports[i], off, len);
  }
  for (const p of ports) {
    p.txCount = 0;
    p.counters.fill(0);
  }
  const offs = new Int32Array(BATCH);
  const lens = new Int32Array(BATCH);
  for (let j = 0; j < BATCH; j++) {
    offs[j] = ring + j * SLOT_SIZE;
    lens[j] = writeFrame(u8, offs[j] + VNET_HDR_LEN, { dst: hosts[1 + (j % (N_PORTS - 1))], src: hosts[0], ...mixFor(j), srcPort: 40000 + j });
  }
  bridge.forwarded = 0;

  const inPort = ports[0];
  let sunk = 0;
  let writer: CaptureWriter | null = null;
  let stage: FaultStage | null = null;
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
    inPort.ingressTaps = [new CaptureTap(1, writer, filter, DIR_INGRESS, 0, pcapng ? 0 : -1, pcapng ? 1 : -1)];
  } else if (mode === 'loss1' || mode === 'delay' || mode === 'rate') {
    stage = new FaultStage({ seed: 7 });
    stage.configure(mode === 'loss1' ? { loss: { percent: 1 } } : mode === 'delay' ? { delay: { ms: 1 } } : { rate: { bitsPerSecond: 1e13 } });
    inPort.ingressFaults = stage;
  }
  inPort.updateHooked();

  const deliver = (p: Port, off: number, len: number) => bridge.input(p, off, len);
  const outSlots = new Int32Array(1024);
  const outLens = new Int32Array(1024);
  let now = 1000;
  let batches = 0;
  let inputs = 0;
  let queued = 0;
  const flushPorts = () => {
    for (let i = 0; i < ports.length; i++) {
      const p = ports[i];
      if (p.txCount !== 0) {
        queued += p.txCount;
        // what Port.flush does with pool slots after transmitting
        for (let k = 0; k < p.txCount; k++) if (p.txOffsets[k] >= arena.poolBase) arena.release(p.txOffsets[k]);
        p.counters[C_TX_PACKETS] += p.txCount;
        p.txCount = 0;
      }
    }
  };

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
        if (stage !== null && mode === 'delay') {
          // the FaultScheduler's fire(): release what is due
          let n: number;
          do {
            n = stage.poll(now, outSlots, outLens);
            for (let i = 0; i < n; i++) {
              deliver(inPort, outSlots[i], outLens[i]);
              arena.release(outSlots[i]);
            }
          } while (n === outSlots.length);
        }
        for (let j = 0; j < BATCH; j++) {
          if (inPort.hooked) ingressHooked(inPort, offs[j], lens[j], now, deliver);
          else deliver(inPort, offs[j], lens[j]);
        }
        flushPorts();
        if (writer !== null && (batches & 1023) === 0) writer.flush();
      }
      inputs += calls * BATCH;
      return queued;
    },
    check: () => {
      let drops = 0;
      for (const p of ports) for (let i = DROP_BASE; i < COUNTER_SLOTS; i++) drops += p.counters[i];
      const held = stage?.queued ?? 0;
      if (mode === 'loss1') {
        const lost = stage!.counters().lossDrops;
        if (queued + lost !== inputs) return `outputs ${queued} + lost ${lost} != inputs ${inputs}`;
        const share = lost / inputs;
        if (share < 0.008 || share > 0.012) return `loss share ${share}`;
        return null;
      }
      if (drops !== 0) return `${drops} drops counted`;
      if (queued + held !== inputs) return `outputs ${queued} + held ${held} != inputs ${inputs}`;
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
