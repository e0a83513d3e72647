#!/usr/bin/env node
/*
 * `npm run soak` (as root): the soak of test/integration/soak.test.ts, run long. A lab with
 * the default lab's shape comes up in throwaway namespaces (tbt-<pid>-soak-*) with short
 * conntrack timeouts; cycles of mixed traffic (ping, curl, iperf3 UDP at 5 Mbit/s, DNS-like
 * UDP), faults set and cleared on red and blue (loss, delay, rate) and file captures started
 * and stopped run for the duration while blue pings the gateway and the wan every 20 ms
 * (test/helpers/soak.ts). Each cycle prints RSS, pool, conntrack and neighbours; at the end
 * RSS must be within +20% of the value after the warm-up cycles, conntrack and the frame pool
 * back near their baselines, blue's loss < 1% with no 1 s gap, and no crash (exit 1 if not).
 *
 *   npm run soak [-- --seconds N]        SOAK_SECONDS (default 600)
 */
import { parseArgs } from 'node:util';
import { helpers, printer, withLab } from './hostile-run.js';

const { soak, soakLab } = await helpers('soak', 'soak');
const { values: opts } = parseArgs({ options: { seconds: { type: 'string', default: process.env.SOAK_SECONDS ?? '600' } } });
const say = printer('soak');
const seconds = Number(opts.seconds);
say(`${seconds} s`);
const lab = soakLab();
process.exitCode = await withLab('soak', lab, async (baseline) => {
  const r = await soak(null, lab, { seconds, baseline });
  say(`done: ${r.cycles} cycles in ${r.seconds.toFixed(0)} s, targets met`);
  return 0;
});
