/*
 * Floods through the NAT (the hardening issue, item 18, cases 4 and 5): a SYN flood with
 * spoofed sources at the published port 203.0.113.2:8000 from the wan while an established
 * iperf3 transfer runs through the same published path, and a flood of new UDP flows from
 * red. The conntrack table is small (nat.maxFlows 2048; the per-port share 512 is the default
 * quarter, the per-source share the default sixteenth, 128) so the limits are reached; blue pings the
 * gateway and the wan every 20 ms throughout (test/helpers/hostile.ts) and must lose < 1%,
 * never see a gap of 1 s, and still open new flows; RSS and the frame pool stay bounded.
 *
 * One instance with the default lab's shape (test/helpers/nat-lab.ts), names tbt-<pid>-hn-*,
 * short conntrack timeouts, everything removed in after(). Floods are bounded and paced.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { describeRun, sleep, waitFor } from '../helpers/sys.js';
import { NatLab, curl, parseIperf, udpRequest, type ConntrackJson, type PortJson } from '../helpers/nat-lab.js';
import { GATEWAY_MAC, Probe, dropDelta, hostile, hostileBg, hostileSkip, jsonLines, measured, report, sampleVitals, useLab, vitals } from '../helpers/hostile.js';

const SKIP = hostileSkip('NAT flood integration tests', { iperf3: '/usr/bin/iperf3', curl: '/usr/bin/curl' });

const MAX_FLOWS = 2048;
/** The default (a quarter of maxFlows), written out; a source's default share is a sixteenth (128). */
const PORT_SHARE = MAX_FLOWS / 4;
const WAN_ECHO = 9000;
const IPERF_PORT = 5201;

/** Wait until an earlier flood's flows expired (the short timeouts of this lab), so each test starts from a quiet table. */
async function drained(lab: NatLab): Promise<void> {
  await waitFor('the earlier flows to expire', async () => (await vitals(lab)).conntrack.flows <= 16, { timeoutMs: 30_000, intervalMs: 500 });
}

describe('floods through the NAT', { skip: SKIP ?? false, timeout: 120_000 }, () => {
  const lab = new NatLab({
    tag: 'hn',
    wanUdpEcho: WAN_ECHO,
    nat: { maxFlows: MAX_FLOWS, maxFlowsPerPort: PORT_SHARE, timeouts: { tcpSynSent: 10, tcpSynRecv: 10, udpUnreplied: 10, udpReplied: 20, icmp: 10 } },
  });
  const baseline = useLab(lab, 'nat floods');
  test('a spoofed SYN flood at 203.0.113.2:8000 while an iperf3 transfer runs through the published path', async (t) => {
    await lab.ctl('forwards', 'add', `${IPERF_PORT}/tcp=10.100.0.2:${IPERF_PORT}`);
    const server = lab.bg('red', 'iperf3', ['-s', '-1', '-p', String(IPERF_PORT)], 30);
    await lab.waitListening('red', 'tcp', IPERF_PORT);
    const uplinkMac = (await lab.ctl<(PortJson & { mac: string })[]>('ports')).find((p) => p.name === 'uplink')!.mac;
    const before = await vitals(lab);
    const probe = Probe.start(lab, 10);
    // 50 Mbit/s for 9 s, wan -> 203.0.113.2:5201 -> red; established before the flood starts
    const transfer = lab.exec('wan', 'iperf3', ['-c', '203.0.113.2', '-p', String(IPERF_PORT), '-t', '9', '-b', '50M', '-J'], 30_000);
    await sleep(1500);
    const sampler = sampleVitals(lab);
    const sent = await hostile(lab, 'wan', ['syn', uplinkMac, 6000, 1500, 4]);
    const r = await transfer;
    const maxSeen = (await sampler.stop()).maxConntrack;
    const m = await measured(t, lab, 'syn flood', before, probe, { baseline: baseline(), extra: `${sent.sent} SYNs in ${sent.seconds} s; conntrack at most ${maxSeen} of ${MAX_FLOWS}` });
    await server.done;
    const j = parseIperf(r, 'iperf3 wan -> published port during the SYN flood');
    assert.equal(j.error, undefined, describeRun(r));
    assert.equal(r.code, 0, describeRun(r));
    const sentB = j.end?.sum_sent?.bytes ?? 0;
    const recvB = j.end?.sum_received?.bytes ?? 0;
    const bps = j.end?.sum_received?.bits_per_second ?? 0;
    report(t, 'syn flood', `transfer ${(recvB / 1e6).toFixed(1)} of ${(sentB / 1e6).toFixed(1)} MB at ${(bps / 1e6).toFixed(1)} Mbit/s`);
    assert.ok(sentB > 0 && recvB >= sentB * 0.95, `the transfer completes: ${recvB} of ${sentB} bytes received`);
    assert.ok(bps >= 40e6, `the transfer kept its rate (${(bps / 1e6).toFixed(1)} Mbit/s of 50)`);
    assert.ok(maxSeen <= MAX_FLOWS, `conntrack stayed within maxFlows: ${maxSeen}`);
    const ct = await lab.ctl<ConntrackJson>('conntrack', '--limit', '1');
    report(t, 'syn flood', `conntrack ${ct.size}/${ct.max}; counters ${JSON.stringify(ct.counters)}; drops ${JSON.stringify(dropDelta(before.ports, m.after.ports))}`);
    assert.ok(ct.size <= MAX_FLOWS, JSON.stringify(ct));
    assert.ok(ct.counters.refusedPortLimit > 0, `the flood reached the uplink's share: ${JSON.stringify(ct.counters)}`);
    // blue still opens new flows to the wan
    await curl(lab, 'blue', 'http://203.0.113.1/');
  });

  test('during a spoofed SYN flood at the published port, a new client from the wan still connects', async (t) => {
    await drained(lab);
    const uplinkMac = (await lab.ctl<(PortJson & { mac: string })[]>('ports')).find((p) => p.name === 'uplink')!.mac;
    // 1500 SYNs/s for up to 8 s: after 2 s the half-open flows fill the uplink's share, then a client tries for 5 s
    const flood = hostileBg(lab, 'wan', ['syn', uplinkMac, 12_000, 1500, 6], 20);
    await sleep(2000);
    const r = await lab.exec('wan', 'curl', ['-sS', '--max-time', '5', 'http://203.0.113.2:8000/'], 10_000);
    const ct = await lab.ctl<ConntrackJson>('conntrack', '--limit', '1');
    const sent = jsonLines((await flood.done).stdout).pop(); // it ends by itself after 8 s
    report(t, 'syn flood lockout', `${String(sent?.sent ?? '?')} spoofed SYNs; curl wan -> 203.0.113.2:8000 during the flood: ${r.code === 0 ? 'connected' : `failed (${r.stderr.trim()})`}; conntrack ${ct.size}/${ct.max}, refusedPortLimit ${ct.counters.refusedPortLimit}, earlyDropped ${ct.counters.earlyDropped}`);
    // the flood's half-open flows hold the uplink's share; a legitimate client must not be refused for it
    assert.equal(r.code, 0, `a new connection from the wan to the published port was refused during the SYN flood (the uplink's share of ${PORT_SHARE} flows is held by half-open flows): ${describeRun(r)}\nconntrack counters ${JSON.stringify(ct.counters)}`);
  });

  test('a flood of new UDP flows from red: blue can still open new flows', async (t) => {
    await drained(lab);
    const before = await vitals(lab);
    const ct0 = await lab.ctl<ConntrackJson>('conntrack', '--limit', '1');
    const probe = Probe.start(lab, 6);
    const sampler = sampleVitals(lab);
    // from 8 addresses of red's subnet: 8 x 128 flows would pass the source limit, the port's 512 do not
    const sent = await hostile(lab, 'red', ['udp', GATEWAY_MAC, 5000, 2000, 5, 8]);
    // while red's flows are still in the table: blue opens TCP and UDP flows to the wan
    const body = await curl(lab, 'blue', 'http://203.0.113.1/');
    assert.match(body, /you are 203\.0\.113\.2:/, body);
    const echo = await udpRequest(lab, 'blue', '203.0.113.1', WAN_ECHO, 'after the flood');
    assert.match(echo, /after the flood$/, echo);
    const maxSeen = (await sampler.stop()).maxConntrack;
    const ct = await lab.ctl<ConntrackJson>('conntrack', '--limit', '1');
    const m = await measured(t, lab, 'udp flood', before, probe, { baseline: baseline(), extra: `${sent.sent} new flows in ${sent.seconds} s; conntrack at most ${maxSeen} of ${MAX_FLOWS}` });
    const refused = (k: 'refusedPortLimit' | 'refusedSourceLimit') => ct.counters[k] - ct0.counters[k];
    report(t, 'udp flood', `conntrack ${ct.size}/${ct.max}; refused by the port limit ${refused('refusedPortLimit')}, by the source limit ${refused('refusedSourceLimit')}; drops ${JSON.stringify(dropDelta(before.ports, m.after.ports))}`);
    assert.ok(maxSeen <= MAX_FLOWS, `conntrack stayed within maxFlows: ${maxSeen}`);
    assert.ok(refused('refusedPortLimit') > 0, `red's excess flows were refused by its port's share: ${JSON.stringify(ct.counters)}`);
    assert.ok(maxSeen - before.conntrack.flows <= PORT_SHARE + 16, `red's flows stayed near its share of ${PORT_SHARE}: ${maxSeen} flows, ${before.conntrack.flows} before the flood`);
  });
});
