#!/usr/bin/env node
/*
 * `npm run fuzz` (as root): the seeded mutation fuzzer of test/integration/fuzz.test.ts, run
 * longer. A lab with the default lab's shape comes up in throwaway namespaces (tbt-<pid>-fuzz-*),
 * red sends mutated valid frames while blue pings the gateway and the wan every 20 ms, and
 * vitals (RSS, pool, conntrack) are printed every 30 s (test/helpers/fuzz.ts).
 *
 *   npm run fuzz [-- --seconds N] [--seed S] [--rate R] [--frames N]
 *   npm run fuzz -- --seed S --replay FIRST-LAST     find the frame of a crash
 *
 * Environment: FUZZ_SECONDS (default 300), FUZZ_SEED (default: a new random seed, printed),
 * FUZZ_RATE frames/s (default 2000). On a crash it prints the seed and the window of frames,
 * replays that window one frame at a time on a fresh instance to find the frame, prints it
 * (hex and what was mutated) and exits 1; exit 1 too when blue lost > 1%, tapbridge stalled
 * for 1 s, RSS grew > 20% or the frame pool did not come back.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { cannotRun, helpers, printer, withLab } from './hostile-run.js';

const { NatLab, describeCrash, fuzzRun, pinpoint } = await helpers('fuzz', 'nat-lab', 'fuzz');
const { values: opts } = parseArgs({
  options: {
    seconds: { type: 'string', default: process.env.FUZZ_SECONDS ?? '300' },
    seed: { type: 'string', default: process.env.FUZZ_SEED ?? randomBytes(4).toString('hex') },
    rate: { type: 'string', default: process.env.FUZZ_RATE ?? '2000' },
    frames: { type: 'string' },
    replay: { type: 'string' },
  },
});
const say = printer('fuzz');

function printPinpointed(p) {
  if (p === null) return say('the window did not crash a fresh instance on its own (the crash needs more state): replay a wider window');
  say(`${p.exact ? 'the frame that crashes tapbridge on its own' : 'the crash follows one of these frames (in the order sent)'}: ${p.reason}`);
  for (const f of p.frames) say(`  frame ${f.index}: ${f.note}\n      ${f.hex}`);
}

async function main() {
  const seed = opts.seed;
  if (opts.replay !== undefined) {
    const no = await cannotRun('fuzz');
    if (no !== null) return no;
    const m = /^(\d+)-(\d+)$/.exec(opts.replay);
    if (m === null) throw new Error('--replay FIRST-LAST (frame indexes)');
    say(`replaying frames ${m[1]}..${m[2]} of seed ${seed} one at a time`);
    const p = await pinpoint(seed, Number(m[1]), Number(m[2]));
    printPinpointed(p);
    return p === null ? 0 : 1;
  }
  const seconds = Number(opts.seconds);
  const rate = Number(opts.rate);
  const maxFrames = opts.frames !== undefined ? Number(opts.frames) : Math.ceil(seconds * rate * 1.1);
  say(`seed ${seed}, ${seconds} s at ${rate} frames/s (at most ${maxFrames} frames)`);
  let r;
  const rc = await withLab('fuzz', new NatLab({ tag: 'fuzz' }), async (baseline, lab) => {
    r = await fuzzRun(null, lab, { seed, seconds, maxFrames, rate, baseline, sampleEveryS: 30 });
    return 0;
  });
  if (rc !== 0) return rc;
  if (r.crash === null) {
    say(`done: ${r.frames} frames of seed ${seed} in ${r.seconds.toFixed(1)} s, no crash, targets met`);
    return 0;
  }
  say(`CRASH\n${describeCrash(r)}`);
  say(`replaying frames ${r.crash.window[0]}..${r.crash.window[1]} one at a time on a fresh instance to find the frame`);
  printPinpointed(await pinpoint(seed, r.crash.window[0], r.crash.window[1]));
  return 1;
}

process.exitCode = await main();
