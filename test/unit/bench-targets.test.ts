/*
 * The end-to-end benchmark's targets (bench/lib/scenario.ts) and its per-family scenarios
 * (bench/lib/l2-scenario.ts, nat-scenario.ts), without building anything: kernel-relative,
 * absolute and 'family' targets (IPv6 against tapbridge's own IPv4 figure), their text, and
 * that every IPv6 scenario's family targets name an IPv4 scenario with the same metric.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { l2Scenario } from '../../bench/lib/l2-scenario.js';
import { natScenario } from '../../bench/lib/nat-scenario.js';
import { assertLabAddress } from '../../bench/lib/netns.js';
import { describeTarget, evaluateTarget, targetRatio, type Target } from '../../bench/lib/scenario.js';

describe('bench targets', () => {
  test('kernel ratio and absolute targets', () => {
    const t: Target = { kind: 'ratio', min: 0.25, aim: 0.6 };
    assert.equal(evaluateTarget(t, { kernel: 10, tapbridge: 7 }), 'aim');
    assert.equal(evaluateTarget(t, { kernel: 10, tapbridge: 3 }), 'pass');
    assert.equal(evaluateTarget(t, { kernel: 10, tapbridge: 2 }), 'FAIL');
    assert.equal(evaluateTarget(t, { kernel: null, tapbridge: 2 }), '?');
    assert.equal(describeTarget(t), '>= 25% of kernel (aim 60%)');
    const max: Target = { kind: 'max', max: 150, unit: 'µs' };
    assert.equal(evaluateTarget(max, { kernel: null, tapbridge: 149 }), 'pass');
    assert.equal(evaluateTarget(max, { kernel: null, tapbridge: 150 }), 'FAIL');
  });

  test("'family' targets compare with the reference scenario's tapbridge value, not the kernel", () => {
    const higher: Target = { kind: 'family', scenario: 'switch', min: 0.9 };
    assert.equal(evaluateTarget(higher, { kernel: 100, tapbridge: 9, reference: 10 }), 'pass');
    assert.equal(evaluateTarget(higher, { kernel: 1, tapbridge: 8.9, reference: 10 }), 'FAIL');
    assert.equal(evaluateTarget(higher, { kernel: 1, tapbridge: 9, reference: null }), '?');
    assert.equal(targetRatio(higher, { kernel: 1, tapbridge: 9, reference: 10 }), 0.9);
    assert.equal(describeTarget(higher), '>= 90% of tapbridge in switch');
    const lower: Target = { kind: 'family', scenario: 'switch', max: 1.1 };
    assert.equal(evaluateTarget(lower, { kernel: 20, tapbridge: 110, reference: 100 }), 'pass');
    assert.equal(evaluateTarget(lower, { kernel: 20, tapbridge: 111, reference: 100 }), 'FAIL');
    assert.equal(describeTarget(lower), '<= 110% of tapbridge in switch');
  });

  test('the IPv6 scenarios: names, family targets on their IPv4 twins, no C loop', () => {
    const all = [l2Scenario(4), l2Scenario(6), natScenario(4), natScenario(6)];
    assert.deepEqual(all.map((s) => s.name), ['switch', 'switch6', 'nat', 'nat6']);
    for (const s of all) {
      for (const [metric, t] of Object.entries(s.targets ?? {})) {
        if (t?.kind !== 'family') continue;
        const ref = all.find((x) => x.name === t.scenario);
        assert.ok(ref !== undefined && ref !== s, `${s.name}.${metric} -> ${t.scenario}`);
        assert.ok(ref.metrics.includes(metric as never), `${t.scenario} measures ${metric}`);
      }
    }
    assert.equal(l2Scenario(6).targets?.tcp?.kind, 'family');
    assert.equal(l2Scenario(6).targets?.ping?.kind, 'family');
    assert.equal(natScenario(6).targets?.tcp?.kind, 'family');
    assert.equal(l2Scenario(6).setupCloop, undefined);
    assert.notEqual(l2Scenario(4).setupCloop, undefined);
    assert.match(natScenario(6).description, /ip6tables/);
  });

  test('lab addresses: the documentation ranges of both families only', () => {
    for (const ok of ['10.100.0.2/24', '203.0.113.1', '2001:db8:100::2/64', '2001:db8:113::1']) assertLabAddress(ok);
    for (const bad of ['192.0.2.10/24', '10.100.1.1', '2001:db9::1', 'fe80::1', '::1']) assert.throws(() => assertLabAddress(bad), /outside the lab ranges/);
  });
});
