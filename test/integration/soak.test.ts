/*
 * The soak, about a minute in CI (the hardening issue, item 18, case 7; SOAK_SECONDS changes
 * it, `npm run soak` runs it long): cycles of mixed traffic (ping, curl through SNAT, DNAT and
 * hairpin, iperf3 UDP at 5 Mbit/s, DNS-like UDP), faults set and cleared on red and blue, file
 * captures started and stopped (test/helpers/soak.ts). At the end RSS is within +20% of the
 * value after the warm-up cycles, conntrack and the frame pool are back near their baselines
 * once the short timeouts expire the flows, blue's pings lost < 1% with no 1 s gap, no crash.
 *
 * One instance with the default lab's shape (test/helpers/nat-lab.ts), names tbt-<pid>-soak-*,
 * everything removed in after().
 */
import { describe, test } from 'node:test';
import { hostileSkip, useLab } from '../helpers/hostile.js';
import { soak, soakLab } from '../helpers/soak.js';

const SKIP = hostileSkip('soak integration test', { iperf3: '/usr/bin/iperf3', curl: '/usr/bin/curl' });
const SECONDS = Number(process.env.SOAK_SECONDS ?? 60);

describe('soak', { skip: SKIP ?? false, timeout: (SECONDS + 150) * 1000 }, () => {
  const lab = soakLab();
  const baseline = useLab(lab, 'soak');

  test(`${SECONDS} s of mixed traffic, faults and captures: RSS flat, conntrack and pool back, no crash`, async (t) => {
    await soak(t, lab, { seconds: SECONDS, baseline: baseline() });
  });
});
