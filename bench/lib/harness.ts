/*
 * Micro-benchmark harness: each case processes `packetsPerCall` packets per call of
 * `run(calls)`; the harness warms it up, sizes chunks to ~5 ms, runs for a fixed time and
 * reports packets/s and ns/packet. It also watches the heap: heapUsed growth over the
 * measured window (no GC expected inside it: the fast path must not allocate) and the
 * number of GCs that happened during the window (PerformanceObserver 'gc' entries).
 *
 * A forced GC before/after the window needs --expose-gc; without it the harness tries to
 * enable it at run time (v8.setFlagsFromString) and otherwise measures without forcing.
 */
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface MicroCase {
  name: string;
  /** What one "packet" is for this case. */
  description: string;
  packetsPerCall: number;
  /** Process `calls` * packetsPerCall packets; return something derived from the work. */
  run(calls: number): number;
  /** After measuring: null if the outputs are what the case expects, else the problem. */
  check?(): string | null;
  /** Extra numbers for the report (e.g. outputs per input packet). */
  extra?(): Record<string, number>;
}

export interface MicroResult {
  name: string;
  description: string;
  packets: number;
  seconds: number;
  mpps: number;
  nsPerPacket: number;
  /** heapUsed growth during the measured window, bytes per million packets. */
  heapGrowthPerMpkt: number;
  /** heapUsed after a forced GC minus before (bytes); null without a GC function. */
  retainedBytes: number | null;
  gcsDuringRun: number;
  /**
   * Bytes allocated per packet: heap growth / packets when no GC ran in the window, else
   * measured by allocProbe over short chunks.
   */
  allocBytesPerPacket: number;
  check: string | null;
  extra?: Record<string, number>;
}

type GcFn = () => void;

/** globalThis.gc when started with --expose-gc; else try to enable it now; else null. */
export function findGc(): { gc: GcFn | null; how: 'flag' | 'runtime' | 'none' } {
  const g = (globalThis as { gc?: GcFn }).gc;
  if (typeof g === 'function') return { gc: g, how: 'flag' };
  try {
    setFlagsFromString('--expose-gc');
    const fn = runInNewContext('typeof gc === "function" ? gc : null') as GcFn | null;
    if (typeof fn === 'function') return { gc: fn, how: 'runtime' };
  } catch {
    /* not available */
  }
  return { gc: null, how: 'none' };
}

const gcTimes: number[] = [];
let observer: PerformanceObserver | null = null;
function watchGc(): void {
  if (observer !== null) return;
  observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcTimes.push(e.startTime);
  });
  observer.observe({ entryTypes: ['gc'] });
}

/** Let pending PerformanceObserver callbacks run. */
function flushObservers(): Promise<void> {
  return new Promise((r) => setTimeout(r, 5));
}

export let sink = 0;

/** The measured loop, synchronous so nothing but the case runs between the clock reads. */
function timedLoop(c: MicroCase, calls: number, ms: number): { packets: number; t0: number; t1: number } {
  let packets = 0;
  let acc = 0;
  const perChunk = calls * c.packetsPerCall;
  const t0 = performance.now();
  const end = t0 + ms;
  let t1 = t0;
  do {
    acc ^= c.run(calls);
    packets += perChunk;
    t1 = performance.now();
  } while (t1 < end);
  sink ^= acc;
  return { packets, t0, t1 };
}

function medianOf(v: number[]): number {
  const s = v.filter((x) => x >= 0).sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[s.length >> 1];
}

/**
 * Bytes allocated per packet, measured over many short chunks (~4096 packets) bracketed by
 * heapUsed readings: a chunk during which a scavenge ran shows a negative delta and is
 * ignored; the median of the rest, minus the same bracket around no work, is the
 * allocation of the chunk.
 */
function allocProbe(c: MicroCase): number {
  const calls = Math.max(1, Math.round(4096 / c.packetsPerCall));
  const work: number[] = [];
  const idle: number[] = [];
  for (let k = 0; k < 64; k++) {
    const a0 = process.memoryUsage().heapUsed;
    sink ^= c.run(calls);
    const a1 = process.memoryUsage().heapUsed;
    const b0 = process.memoryUsage().heapUsed;
    sink ^= c.run(0);
    const b1 = process.memoryUsage().heapUsed;
    work.push(a1 - a0);
    idle.push(b1 - b0);
  }
  return Math.max(0, medianOf(work) - medianOf(idle)) / (calls * c.packetsPerCall);
}

export async function measure(c: MicroCase, opts: { seconds: number; warmupSeconds: number; gc: GcFn | null }): Promise<MicroResult> {
  watchGc();
  // Warm-up, and size a chunk to ~5 ms.
  let calls = 1;
  const warmEnd = performance.now() + opts.warmupSeconds * 1000;
  while (performance.now() < warmEnd) {
    const t = performance.now();
    sink ^= c.run(calls);
    const dt = performance.now() - t;
    if (dt < 2.5) calls *= 2;
    else if (dt > 10) calls = Math.max(1, calls >> 1);
  }
  opts.gc?.();
  opts.gc?.();
  await flushObservers();
  const gcBefore = gcTimes.length;
  const heap0 = process.memoryUsage().heapUsed;
  const { packets, t0, t1 } = timedLoop(c, calls, opts.seconds * 1000);
  const heap1 = process.memoryUsage().heapUsed;
  await flushObservers();
  const gcs = gcTimes.slice(gcBefore).filter((t) => t >= t0 && t <= t1).length;
  let retained: number | null = null;
  if (opts.gc !== null) {
    opts.gc();
    retained = process.memoryUsage().heapUsed - heap0;
  }
  const seconds = (t1 - t0) / 1000;
  const alloc = gcs === 0 ? Math.max(0, heap1 - heap0) / packets : allocProbe(c);
  return {
    name: c.name,
    description: c.description,
    packets,
    seconds,
    mpps: packets / seconds / 1e6,
    nsPerPacket: (seconds * 1e9) / packets,
    heapGrowthPerMpkt: ((heap1 - heap0) / packets) * 1e6,
    retainedBytes: retained,
    gcsDuringRun: gcs,
    allocBytesPerPacket: alloc,
    check: c.check?.() ?? null,
    extra: c.extra?.(),
  };
}
