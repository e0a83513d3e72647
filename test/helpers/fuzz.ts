/*
 * The seeded mutation fuzzer (the hardening issue, item 18, case 2), shared by
 * test/integration/fuzz.test.ts (a bounded CI run) and scripts/fuzz.js (`npm run fuzz`, long).
 *
 * test/integration/fixtures/hostile.py takes valid frames (ARP, ICMP echo, TCP SYN/ACK/data,
 * UDP, DNS-like, ICMP errors, VLAN, fragments), mutates bits, bytes, length fields and sizes
 * with a PRNG seeded by (seed, frame index) — half of them get valid checksums again — and
 * sends them from red through an AF_PACKET socket, paced. Meanwhile blue's pings run
 * (test/helpers/hostile.ts) and tapbridge is watched every 100 ms: the process, the inner
 * process, its log. A crash is reported with the seed and the window of frame indexes sent
 * just before it; pinpoint() replays that window one frame at a time on a fresh instance to
 * find the frame itself.
 */
import { SYS_PYTHON, NatLab } from './nat-lab.js';
import { macOf, run, sleep } from './sys.js';
import { cleanupAll } from './tapbridge.js';
import {
  GATEWAY_MAC,
  HOSTILE_PY,
  Probe,
  crashReason,
  describeVitals,
  hostileBg,
  innerPid,
  jsonLines,
  measured,
  report,
  stopBg,
  vitals,
  warmUp,
  type Measured,
  type Vitals,
} from './hostile.js';

type Diag = { diagnostic(m: string): void } | null;

/** Frames that may be in flight (socket buffer, TAP queue, a batch) when a crash is seen. */
export const FUZZ_WINDOW = 4096;

export interface FuzzCrash {
  reason: string;
  /** Last frame index the fuzzer had reported as sent when the crash was seen. */
  progress: number;
  /** Frame indexes that may have caused it. */
  window: [number, number];
  /** red's MAC (the frames' source): with the seed it rebuilds every frame. */
  redMac: string;
  log: string;
}

export interface FuzzRun {
  seed: string;
  /** Frames handed to red's kernel (or the last index reached, when stopped by the time limit). */
  frames: number;
  seconds: number;
  crash: FuzzCrash | null;
  measured: Measured | null;
}

export interface FuzzOptions {
  seed: string;
  seconds: number;
  maxFrames: number;
  /** Frames per second. */
  rate: number;
  baseline: Vitals;
  /** Print vitals this often (long runs). */
  sampleEveryS?: number;
}

const lastProgress = (out: string): number => {
  let p = -1;
  for (const j of jsonLines(out)) if (typeof j.progress === 'number') p = j.progress;
  return p;
};

/** Fuzz from red for at most `seconds` / `maxFrames`; stops at the first sign of a crash. */
export async function fuzzRun(t: Diag, lab: NatLab, o: FuzzOptions): Promise<FuzzRun> {
  const pid = innerPid(lab);
  const redMac = await macOf(lab.ns('red'));
  const before = await vitals(lab);
  const probe = Probe.start(lab, o.seconds + 1);
  const t0 = Date.now();
  const bg = hostileBg(lab, 'red', ['fuzz', GATEWAY_MAC, o.seed, 0, o.maxFrames, o.rate], o.seconds + 30);
  let ended = false;
  void bg.done.then(() => (ended = true));
  let crash: string | null = null;
  let nextSample = t0 + (o.sampleEveryS ?? Infinity) * 1000;
  while (!ended && (crash = crashReason(lab, pid)) === null) {
    if (Date.now() - t0 >= o.seconds * 1000) break;
    if (Date.now() >= nextSample) {
      nextSample += (o.sampleEveryS ?? Infinity) * 1000;
      const v = await vitals(lab);
      report(t, 'fuzz', `${Math.round((Date.now() - t0) / 1000)} s, frame ${lastProgress(bg.output())}: ${describeVitals(o.baseline, v)}`);
    }
    await sleep(100);
  }
  crash ??= crashReason(lab, pid);
  const done = await stopBg(bg);
  const seconds = (Date.now() - t0) / 1000;
  const final = jsonLines(done.stdout).find((j) => j.mode === 'fuzz');
  const frames = typeof final?.sent === 'number' ? final.sent : lastProgress(done.stdout) + 1;
  if (crash !== null) {
    const p = lastProgress(done.stdout);
    return { seed: o.seed, frames, seconds, measured: null, crash: { reason: crash, progress: p, window: [Math.max(0, p - FUZZ_WINDOW), p + 512], redMac, log: lab.log().slice(-6000) } };
  }
  const m = await measured(t, lab, 'fuzz', before, probe, { baseline: o.baseline, extra: `${frames} frames of seed ${o.seed} in ${seconds.toFixed(1)} s` });
  return { seed: o.seed, frames, seconds, crash: null, measured: m };
}

export interface FuzzFrame {
  index: number;
  hex: string;
  note: string;
}

/** Rebuild fuzz frames (nothing is sent: hostile.py show runs outside any lab). */
export async function showFrames(seed: string, first: number, last: number, redMac: string): Promise<FuzzFrame[]> {
  const r = await run(SYS_PYTHON, [HOSTILE_PY, 'show', GATEWAY_MAC, seed, String(Math.max(0, first)), String(last), redMac], { timeoutMs: 60_000 });
  return jsonLines(r.stdout) as unknown as FuzzFrame[];
}

export function describeCrash(r: FuzzRun): string {
  const c = r.crash!;
  return (
    `tapbridge crashed while fuzzing: seed ${r.seed}, frames ${c.window[0]}..${c.window[1]} (the crash was seen after frame ${c.progress} had been sent)\n` +
    `${c.reason}\nfind the frame: sudo FUZZ_SEED=${r.seed} npm run fuzz -- --replay ${c.window[0]}-${c.window[1]}\n` +
    `rebuild frames: /usr/bin/python3 test/integration/fixtures/hostile.py show ${GATEWAY_MAC} ${r.seed} FIRST LAST ${c.redMac}\n` +
    `--- tapbridge log (tail) ---\n${c.log}`
  );
}

export interface Pinpointed {
  reason: string;
  /** The frames that may have done it, in the order sent (the culprit is the first, when `exact`). */
  frames: FuzzFrame[];
  /** True when the frame crashed a fresh instance on its own, 250 ms after the one before. */
  exact: boolean;
}

/** Replay frames first..last one at a time, gapMs apart, on a fresh instance: the last frame sent when the crash showed. */
async function replayOnce(seed: string, first: number, last: number, gapMs: number): Promise<{ reason: string; progress: number; redMac: string } | null> {
  const lab = new NatLab({ tag: 'fzr' });
  try {
    await lab.start();
    await warmUp(lab, 'fuzz replay');
    const pid = innerPid(lab);
    const redMac = await macOf(lab.ns('red'));
    const bg = hostileBg(lab, 'red', ['replay', GATEWAY_MAC, seed, first, last, gapMs], Math.ceil(((last - first + 1) * (gapMs + 2)) / 1000) + 60);
    let ended = false;
    void bg.done.then(() => (ended = true));
    let crash: string | null = null;
    while (!ended && (crash = crashReason(lab, pid)) === null) await sleep(2);
    crash ??= crashReason(lab, pid);
    const out = (await stopBg(bg)).stdout;
    return crash === null ? null : { reason: crash, progress: lastProgress(out), redMac };
  } finally {
    await lab.stop().catch(() => undefined);
    await cleanupAll();
  }
}

/**
 * Find the frame of a crash: replay the window one frame every 10 ms on a fresh instance
 * (the crash shows a few frames after the culprit), then the last 16 frames before it one
 * every 250 ms on another fresh instance. null when the window does not crash tapbridge again.
 */
export async function pinpoint(seed: string, first: number, last: number): Promise<Pinpointed | null> {
  const coarse = await replayOnce(seed, first, last, 10);
  if (coarse === null) return null;
  const from = Math.max(first, coarse.progress - 15);
  const fine = await replayOnce(seed, from, coarse.progress, 250);
  if (fine === null) return { reason: coarse.reason, frames: await showFrames(seed, from, coarse.progress, coarse.redMac), exact: false };
  // 250 ms apart, the crash shows before the next frame is sent: the last frame sent did it
  return { reason: fine.reason, frames: await showFrames(seed, fine.progress, fine.progress, fine.redMac), exact: true };
}
