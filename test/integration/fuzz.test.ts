/*
 * The seeded mutation fuzzer, bounded for CI (the hardening issue, item 18, case 2): 20 s or
 * 20k mutated valid frames from red at 1000 frames/s (test/helpers/fuzz.ts), seed FUZZ_SEED
 * (default "ci-1", so a CI failure replays), while blue pings the gateway and the wan every
 * 20 ms. tapbridge must not crash, blue loses < 1% with no 1 s gap, RSS and the frame pool stay
 * bounded, and forwarding still works afterwards. A crash fails with the seed, the window of
 * frames and the command that finds the frame (`npm run fuzz -- --replay A-B`).
 *
 * One instance with the default lab's shape (test/helpers/nat-lab.ts), names tbt-<pid>-fz-*,
 * everything removed in after().
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ping } from '../helpers/net.js';
import { NatLab, curl } from '../helpers/nat-lab.js';
import { hostileSkip, useLab } from '../helpers/hostile.js';
import { describeCrash, fuzzRun } from '../helpers/fuzz.js';

const SKIP = hostileSkip('fuzz integration test');

const SEED = process.env.FUZZ_SEED ?? 'ci-1';

describe('mutation fuzzer (bounded)', { skip: SKIP ?? false, timeout: 90_000 }, () => {
  const lab = new NatLab({ tag: 'fz' });
  const baseline = useLab(lab, 'fuzz');
  test(`20 s / 20k mutated frames from red (seed ${SEED}): no crash, blue unaffected, memory bounded`, async (t) => {
    const r = await fuzzRun(t, lab, { seed: SEED, seconds: 20, maxFrames: 20_000, rate: 1000, baseline: baseline() });
    if (r.crash !== null) assert.fail(describeCrash(r));
    assert.ok(r.frames > 10_000, `the fuzzer sent its frames: ${r.frames}`);
    // still forwarding, switching and routing
    await curl(lab, 'red', 'http://203.0.113.1/');
    assert.equal((await ping(lab.ns('blue'), '10.100.0.2', { count: 3, intervalS: 0.05 })).received, 3, 'blue -> red after the fuzzer');
  });
});
