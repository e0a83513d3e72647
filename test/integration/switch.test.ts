/*
 * The userspace switch end to end: tapbridge runs inside its own namespace (created for
 * the test) with two bridges of namespace ports, and real clients (ping, arping, tcpdump)
 * talk through it.
 *
 *   br0: red 10.100.0.2, blue 10.100.0.3, green 10.100.0.4   (namespaces tapbridge creates)
 *   br1: ora 10.100.0.12, pur 10.100.0.13                    (namespaces the test creates,
 *        IPv6 off so they stay silent; createNamespace: false, so tapbridge must keep them)
 *
 * br1 uses the same subnet on purpose: isolation must come from the switch, not routing.
 * All names start with tbt-<pid>-; everything is removed in after(), also on failure.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { arping, capture, ping } from '../helpers/net.js';
import { PREFIX, addNamespace, announceSkip, describeRun, integrationSkipReason, linkInfo, macOf, netnsExists, netnsList, run, IP, waitFor } from '../helpers/sys.js';
import { Tapbridge, cleanupAll, runFiles, trackNamespace, type ConfigDoc } from '../helpers/tapbridge.js';
import { requireTools } from '../helpers/tools.js';

const SKIP = integrationSkipReason();
if (SKIP !== null) announceSkip('switch integration tests', SKIP);

interface PortRow {
  name: string;
  bridge: string | null;
  up: boolean;
  mac: string;
  macs: number;
  counters: { rx_packets: number; tx_packets: number; rx_bytes: number; tx_bytes: number; flooded: number; drops: Record<string, number> };
}
interface FdbRow {
  bridge: string;
  mac: string;
  port: string;
  type: string;
}

const NS = {
  host: `${PREFIX}sw-host`,
  red: `${PREFIX}red`,
  blue: `${PREFIX}blue`,
  green: `${PREFIX}green`,
  ora: `${PREFIX}ora`,
  pur: `${PREFIX}pur`,
};
const IPS = { red: '10.100.0.2', blue: '10.100.0.3', green: '10.100.0.4', ora: '10.100.0.12', pur: '10.100.0.13' };

const config: ConfigDoc = {
  instance: `${PREFIX}sw`,
  namespace: { name: NS.host, create: true },
  bridges: [
    {
      name: 'br0',
      ports: [
        { type: 'namespace', name: 'red', namespace: NS.red, addresses: [`${IPS.red}/24`] },
        { type: 'namespace', name: 'blue', namespace: NS.blue, addresses: [`${IPS.blue}/24`] },
        { type: 'namespace', name: 'green', namespace: NS.green, addresses: [`${IPS.green}/24`] },
      ],
    },
    {
      name: 'br1',
      ports: [
        { type: 'namespace', name: 'ora', namespace: NS.ora, createNamespace: false, addresses: [`${IPS.ora}/24`] },
        { type: 'namespace', name: 'pur', namespace: NS.pur, createNamespace: false, addresses: [`${IPS.pur}/24`] },
      ],
    },
  ],
};

function byName(rows: PortRow[]): Record<string, PortRow> {
  return Object.fromEntries(rows.map((r) => [r.name, r]));
}

describe('userspace switch (tapbridge in its own namespace)', { skip: SKIP ?? false, timeout: 120_000 }, () => {
  before(() => requireTools(['ping', 'arping', 'tcpdump', 'timeout']));
  let tb: Tapbridge;
  const mac: Record<string, string> = {};

  before(async () => {
    // br1's namespaces exist before tapbridge starts and must survive it
    for (const n of [NS.ora, NS.pur]) {
      trackNamespace(n);
      await addNamespace(n, { ipv6: false });
    }
    tb = await Tapbridge.start(config);
    for (const p of ['red', 'blue', 'green', 'ora', 'pur'] as const) mac[p] = await macOf(NS[p]);
  });

  after(async () => {
    await cleanupAll();
  });

  test('red pings blue; ctl fdb shows both MACs on their ports; ctl ports counters rise', async () => {
    const before = byName(await tb.ctlJson<PortRow[]>('ports'));
    const r = await ping(NS.red, IPS.blue, { count: 3 });
    assert.equal(r.received, 3, `red -> blue ping:\n${describeRun(r)}`);
    const after = byName(await tb.ctlJson<PortRow[]>('ports'));
    for (const p of ['red', 'blue']) {
      assert.ok(after[p].counters.rx_packets >= before[p].counters.rx_packets + 3, `${p} rx_packets rose by >= 3: ${before[p].counters.rx_packets} -> ${after[p].counters.rx_packets}`);
      assert.ok(after[p].counters.tx_packets >= before[p].counters.tx_packets + 3, `${p} tx_packets rose by >= 3: ${before[p].counters.tx_packets} -> ${after[p].counters.tx_packets}`);
      assert.ok(after[p].counters.rx_bytes > before[p].counters.rx_bytes);
      assert.equal(after[p].mac, mac[p], `ctl ports shows ${p}'s device MAC`);
    }
    const fdb = await tb.ctlJson<FdbRow[]>('fdb', 'br0');
    const where = (m: string) => fdb.filter((e) => e.mac.toLowerCase() === m).map((e) => `${e.bridge}/${e.port}/${e.type}`);
    assert.deepEqual(where(mac.red), ['br0/red/learned'], `red's MAC in:\n${JSON.stringify(fdb, null, 1)}`);
    assert.deepEqual(where(mac.blue), ['br0/blue/learned'], `blue's MAC in:\n${JSON.stringify(fdb, null, 1)}`);
    // the text form names them too
    const text = await tb.ctl('fdb');
    assert.equal(text.code, 0, describeRun(text));
    assert.match(text.stdout, new RegExp(`${mac.red}\\s+red\\b`));
    assert.match(text.stdout, new RegExp(`${mac.blue}\\s+blue\\b`));
  });

  test("arping from red for blue's address answers with blue's MAC", async () => {
    const r = await arping(NS.red, IPS.blue, { count: 1, deadlineS: 2 });
    assert.equal(r.code, 0, describeRun(r));
    assert.ok(r.macs.length >= 1, `no reply parsed:\n${describeRun(r)}`);
    for (const m of r.macs) assert.equal(m, mac.blue, `reply from ${m}, blue is ${mac.blue}:\n${describeRun(r)}`);
  });

  test('a broadcast from red reaches blue and green, and never comes back to red', async () => {
    const bcastFromRed = `ether src ${mac.red} and ether dst ff:ff:ff:ff:ff:ff and arp`;
    const capBlue = capture(NS.blue, bcastFromRed, { count: 1, seconds: 8 });
    const capGreen = capture(NS.green, bcastFromRed, { count: 1, seconds: 8 });
    const capRedIn = capture(NS.red, `ether src ${mac.red}`, { direction: 'in', seconds: 4 });
    const capOra = capture(NS.ora, `ether src ${mac.red}`, { seconds: 4 });
    await Promise.all([capBlue.ready, capGreen.ready, capRedIn.ready, capOra.ready]);
    const before = byName(await tb.ctlJson<PortRow[]>('ports'));
    // ARP request for an address nobody has: a broadcast, and nothing answers
    const a = await arping(NS.red, '10.100.0.99', { count: 1, deadlineS: 1 });
    assert.equal(a.macs.length, 0, `nobody should answer for 10.100.0.99:\n${describeRun(a)}`);
    const [blue, green, redIn, ora] = await Promise.all([capBlue.done, capGreen.done, capRedIn.done, capOra.done]);
    assert.equal(blue.packets.length, 1, `blue saw red's broadcast:\n${blue.output}`);
    assert.equal(green.packets.length, 1, `green saw red's broadcast:\n${green.output}`);
    assert.match(blue.packets[0], /Request who-has 10\.100\.0\.99/);
    assert.equal(redIn.captured, 0, `frames from red came back into red:\n${redIn.output}`);
    assert.equal(ora.captured, 0, `red's broadcast leaked into bridge br1:\n${ora.output}`);
    const after = byName(await tb.ctlJson<PortRow[]>('ports'));
    assert.ok(after.red.counters.flooded > before.red.counters.flooded, 'red counts a flooded frame');
    for (const p of ['blue', 'green']) assert.ok(after[p].counters.tx_packets > before[p].counters.tx_packets, `${p} tx rose`);
  });

  test('the third namespace (green) reaches red and blue', async () => {
    for (const dst of [IPS.red, IPS.blue]) {
      const r = await ping(NS.green, dst, { count: 2 });
      assert.equal(r.received, 2, `green -> ${dst}:\n${describeRun(r)}`);
    }
    const fdb = await tb.ctlJson<FdbRow[]>('fdb', 'br0');
    assert.ok(fdb.some((e) => e.mac === mac.green && e.port === 'green'), `green learned:\n${JSON.stringify(fdb)}`);
  });

  test('two bridges are isolated even with addresses in one subnet', async () => {
    // br1 has been silent so far (IPv6 off, no traffic yet): its counters must not move
    await waitFor('br1 to be quiet', async () => {
      const a = byName(await tb.ctlJson<PortRow[]>('ports'));
      await new Promise((r) => setTimeout(r, 300));
      const b = byName(await tb.ctlJson<PortRow[]>('ports'));
      return a.ora.counters.rx_packets === b.ora.counters.rx_packets && a.pur.counters.rx_packets === b.pur.counters.rx_packets;
    });
    const before = byName(await tb.ctlJson<PortRow[]>('ports'));
    const capOra = capture(NS.ora, `ether src ${mac.red}`, { seconds: 5 });
    const capPur = capture(NS.pur, `ether src ${mac.red}`, { seconds: 5 });
    await Promise.all([capOra.ready, capPur.ready]);
    const r = await ping(NS.red, IPS.ora, { count: 2, waitS: 1 });
    assert.equal(r.received, 0, `red (br0) must not reach ora (br1):\n${describeRun(r)}`);
    assert.notEqual(r.code, 0);
    const a = await arping(NS.red, IPS.pur, { count: 1, deadlineS: 1 });
    assert.equal(a.macs.length, 0, `pur (br1) answered red's ARP:\n${describeRun(a)}`);
    const [ora, pur] = await Promise.all([capOra.done, capPur.done]);
    assert.equal(ora.captured, 0, `frames from red reached ora:\n${ora.output}`);
    assert.equal(pur.captured, 0, `frames from red reached pur:\n${pur.output}`);
    const after = byName(await tb.ctlJson<PortRow[]>('ports'));
    for (const p of ['ora', 'pur']) {
      assert.equal(after[p].counters.tx_packets, before[p].counters.tx_packets, `br1 port ${p} transmitted nothing`);
      assert.equal(after[p].counters.rx_packets, before[p].counters.rx_packets, `br1 port ${p} received nothing`);
    }
    assert.ok(after.red.counters.rx_packets > before.red.counters.rx_packets, 'red did send (into br0)');
    assert.ok(after.red.counters.flooded > before.red.counters.flooded, "red's ARP requests were flooded in br0");
    // br1 itself works (so the failures above are isolation, not a dead bridge)
    const inside = await ping(NS.ora, IPS.pur, { count: 2 });
    assert.equal(inside.received, 2, `ora -> pur on br1:\n${describeRun(inside)}`);
    const fdb1 = await tb.ctlJson<FdbRow[]>('fdb', 'br1');
    assert.ok(fdb1.every((e) => e.bridge === 'br1'), JSON.stringify(fdb1));
    assert.ok(!fdb1.some((e) => e.mac === mac.red), `br1 learned red's MAC:\n${JSON.stringify(fdb1)}`);
    assert.ok(fdb1.some((e) => e.mac === mac.ora && e.port === 'ora'), `br1 knows ora:\n${JSON.stringify(fdb1)}`);
    const fdb0 = await tb.ctlJson<FdbRow[]>('fdb', 'br0');
    assert.ok(!fdb0.some((e) => e.mac === mac.ora || e.mac === mac.pur), `br0 learned a br1 MAC:\n${JSON.stringify(fdb0)}`);
  });

  test('ctl link blue down: blue sees NO-CARRIER and is unreachable; up restores it', async () => {
    const down = await tb.ctl('link', 'blue', 'down');
    assert.equal(down.code, 0, describeRun(down));
    await waitFor('NO-CARRIER on blue:eth0', async () => (await linkInfo(NS.blue, 'eth0')).flags?.includes('NO-CARRIER'), { timeoutMs: 5000 });
    const shown = await run(IP, ['-n', NS.blue, 'link', 'show', 'eth0']);
    assert.match(shown.stdout, /NO-CARRIER/);
    const ports = byName(await tb.ctlJson<PortRow[]>('ports'));
    assert.equal(ports.blue.up, false);
    assert.equal(ports.red.up, true);
    const r = await ping(NS.red, IPS.blue, { count: 2, waitS: 1 });
    assert.equal(r.received, 0, `blue is down but answered:\n${describeRun(r)}`);
    // other ports are unaffected
    const g = await ping(NS.red, IPS.green, { count: 1 });
    assert.equal(g.received, 1, describeRun(g));

    const up = await tb.ctl('link', 'blue', 'up');
    assert.equal(up.code, 0, describeRun(up));
    await waitFor('carrier on blue:eth0', async () => !(await linkInfo(NS.blue, 'eth0')).flags?.includes('NO-CARRIER'), { timeoutMs: 5000 });
    await waitFor('red -> blue to work again', async () => (await ping(NS.red, IPS.blue, { count: 1 })).received === 1, { timeoutMs: 10_000 });
    assert.equal(byName(await tb.ctlJson<PortRow[]>('ports')).blue.up, true);
  });

  test('ctl rejects an unknown port with an error naming it', async () => {
    const r = await tb.ctl('link', 'nosuchport', 'down');
    assert.notEqual(r.code, 0, describeRun(r));
    assert.match(r.stderr, /nosuchport/);
  });

  test('SIGTERM: exit 0, namespaces it created are gone, namespaces it was given are kept but emptied', async () => {
    const e = await tb.stop();
    assert.deepEqual(e, { code: 0, signal: null }, tb.describe());
    const left = (await netnsList()).filter((n) => n.startsWith(PREFIX));
    assert.deepEqual(left.sort(), [NS.ora, NS.pur].sort(), 'only the namespaces the test created itself remain');
    for (const n of [NS.host, NS.red, NS.blue, NS.green]) assert.equal(netnsExists(n), false, `${n} removed`);
    for (const n of [NS.ora, NS.pur]) {
      const l = await run(IP, ['-n', n, '-o', 'link', 'show']);
      assert.doesNotMatch(l.stdout, /eth0/, `tapbridge's device left in ${n}:\n${l.stdout}`);
    }
    assert.deepEqual(runFiles(config.instance!), [], 'socket and state files removed');
  });
});
