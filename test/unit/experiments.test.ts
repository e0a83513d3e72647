/*
 * Unit tests of the experiment features' pure logic and of the worker-side API on an
 * in-process engine without devices: units, the `experiment:` config section (errors name
 * the field), rates, spec merging, the faults API on port hooks, captures (pcap bytes,
 * stop reasons, bounded streaming with acks), metrics text and the text renderers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBps, formatBytes, parseRate, parseSize, si } from '../../src/config/units.js';
import { validateConfig, ConfigError } from '../../src/config/load.js';
import { RateTracker } from '../../src/control/rates.js';
import { mergeSpec, type FaultRow } from '../../src/dataplane/faults.js';
import { describeSpec } from '../../src/faults/describe.js';
import { conntrackSize } from '../../src/control/live.js';
import { applyExperiment, dataPlaneApi, onStreamMessage } from '../../src/dataplane/api.js';
import { Engine } from '../../src/dataplane/engine.js';
import { ApiError } from '../../src/dataplane/errors.js';
import { HttpError } from '../../src/control/server.js';
import { captureStartParams, faultSetParams } from '../../src/control/experiment-requests.js';
import { dataPlaneSpec } from '../../src/control/spec.js';
import { captureBodyFromOptions, faultSpecFromOptions } from '../../src/cli/ctl-experiments.js';
import { renderStats, renderTop, table } from '../../src/cli/render.js';
import { MetricsExporter } from '../../src/control/metrics.js';
import type { LiveStats } from '../../src/control/live.js';
import type { CaptureInfo } from '../../src/dataplane/captures.js';
import type { CaptureElement } from '../../src/trace/capture.js';
import { bridgeSpec, portSpec, TestPlane } from '../helpers/dataplane.js';

/* ------------------------------------------------------------------ units */

test('parseRate understands tc-like units', () => {
  assert.equal(parseRate('10mbit'), 10e6);
  assert.equal(parseRate('10 Mbit/s'), 10e6);
  assert.equal(parseRate('10M'), 10e6);
  assert.equal(parseRate('1.5gbit'), 1.5e9);
  assert.equal(parseRate('500kbit'), 500e3);
  assert.equal(parseRate('1mbps'), 8e6, 'tc: bps = bytes per second');
  assert.equal(parseRate('9600'), 9600);
  assert.equal(parseRate('fast'), null);
  assert.equal(parseRate('10 parsecs'), null);
});

test('parseSize and display helpers', () => {
  assert.equal(parseSize('1500'), 1500);
  assert.equal(parseSize('64k'), 65536);
  assert.equal(parseSize('1MiB'), 1048576);
  assert.equal(parseSize('10MB'), 10e6);
  assert.equal(parseSize('-1'), null);
  assert.equal(si(999), '999');
  assert.equal(si(12345), '12.3k');
  assert.equal(formatBps(9.8e6), '9.8Mbit/s');
  assert.equal(formatBytes(2048), '2.0KiB');
});

/* ------------------------------------------------------------------ config */

const BASE = {
  instance: 'x',
  bridges: [
    {
      name: 'br0',
      ports: [
        { name: 'red', type: 'namespace', namespace: 'ut-red', addresses: ['10.100.0.2/24'] },
        { name: 'blue', type: 'namespace', namespace: 'ut-blue', addresses: ['10.100.0.3/24'] },
      ],
    },
  ],
};

function problems(experiment: unknown): string[] {
  try {
    validateConfig({ ...structuredClone(BASE), experiment }, 't');
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
}

test('a valid experiment section is accepted and normalised', () => {
  const cfg = validateConfig(
    {
      ...structuredClone(BASE),
      experiment: {
        faults: [{ port: 'red', direction: 'ingress', loss: { percent: 10 }, delay: { ms: 50, jitterMs: 5 }, rate: { bitsPerSecond: '10mbit' }, seed: 7 }],
        captures: [{ port: 'blue', file: 'rel.pcapng', filter: 'icmp', maxBytes: '1M' }],
        metrics: { listen: '127.0.0.1:9464' },
      },
    },
    't',
  );
  const ex = cfg.experiment!;
  assert.equal(ex.faults[0].rate!.bitsPerSecond, 10e6);
  assert.equal(ex.captures[0].direction, 'both');
  assert.equal(ex.captures[0].snaplen, 262144);
  assert.equal(ex.captures[0].maxBytes, 1048576);
  assert.ok(ex.captures[0].file.startsWith('/'), 'relative capture paths are made absolute');
});

test('experiment config errors name the field', () => {
  assert.deepEqual(problems({ faults: [{ port: 'red', direction: 'ingress', loss: { percent: 150 } }] }), ['experiment.faults[0].loss.percent: a percentage: 0..100']);
  const p1 = problems({ captures: [{ port: 'red', file: '/tmp/x.pcap', filter: 'tcp port' }] });
  assert.equal(p1.length, 1);
  assert.match(p1[0], /^experiment\.captures\[0\]\.filter: bad filter expression: expected a port number/);
  assert.match(problems({ faults: [{ port: 'green', direction: 'egress', down: true }] })[0], /^experiment\.faults\[0\]\.port: no port named 'green'/);
  assert.match(problems({ faults: [{ port: 'red', direction: 'sideways' }] })[0], /^experiment\.faults\[0\]\.direction: expected 'ingress', 'egress' or 'both'/);
  assert.match(problems({ faults: [{ port: 'red', direction: 'ingress', rate: { bitsPerSecond: 'fast' } }] })[0], /^experiment\.faults\[0\]\.rate\.bitsPerSecond: expected a rate/);
  assert.match(problems({ faults: [{ port: 'red', direction: 'ingress', loss: {} }] })[0], /^experiment\.faults\[0\]\.loss: give either percent or gilbertElliott/);
  assert.match(problems({ faults: [{ port: 'red', direction: 'ingress', lose: { percent: 1 } }] })[0], /^experiment\.faults\[0\]: unknown field 'lose'/);
  assert.match(
    problems({
      faults: [
        { port: 'red', direction: 'both', loss: { percent: 1 } },
        { port: 'red', direction: 'egress', delay: { ms: 1 } },
      ],
    })[0],
    /^experiment\.faults\[1\]\.direction: red egress already has faults in experiment\.faults\[0\]/,
  );
  assert.match(problems({ captures: [{ port: 'red', bridge: 'br0', file: '/tmp/x.pcap' }] })[0], /^experiment\.captures\[0\]\.port: give either port or bridge/);
  assert.match(problems({ captures: [{ bridge: 'br9', file: '/tmp/x.pcap' }] })[0], /^experiment\.captures\[0\]\.bridge: no bridge named 'br9'/);
  assert.match(problems({ captures: [{ port: 'red', file: '/nonexistent-dir-tbx/x.pcap' }] })[0], /^experiment\.captures\[0\]\.file: directory \/nonexistent-dir-tbx does not exist/);
  assert.match(problems({ metrics: { listen: '0.0.0.0:9464' } })[0], /^experiment\.metrics\.listen: expected 127\.0\.0\.1:PORT/);
});

/* ------------------------------------------------------------------ rates, specs */

test('RateTracker: rates over the window from counter samples', () => {
  const r = new RateTracker();
  assert.equal(r.rates(5000).windowSeconds, 0);
  for (let i = 0; i <= 7; i++) r.add({ t: 1000 * i, ports: [['red', 100 * i, 150_000 * i, 10 * i, 1000 * i, i]], bridges: [['br0', 50 * i, 2 * i]] });
  const v = r.rates(5000);
  assert.equal(v.windowSeconds, 5);
  assert.deepEqual(v.ports.red, { rx_pps: 100, rx_bps: 1_200_000, tx_pps: 10, tx_bps: 8000, drop_pps: 1 });
  assert.deepEqual(v.bridges.br0, { forwarded_pps: 50, flooded_pps: 2 });
  assert.equal(r.rates(1000).windowSeconds, 1);
  assert.ok(r.size <= 8);
  r.add({ t: 7000, ports: [], bridges: [] }); // not newer: ignored
  assert.equal(r.rates(1000).ports.red.rx_pps, 100);
});

test('mergeSpec and describeSpec', () => {
  const merged = mergeSpec({ loss: { percent: 5 }, delay: { ms: 10 } }, { delay: null, rate: { bitsPerSecond: 1e6 } });
  assert.deepEqual(merged, { loss: { percent: 5 }, rate: { bitsPerSecond: 1e6 } });
  assert.equal(describeSpec(merged), 'loss 5%, rate 1Mbit/s');
  assert.equal(describeSpec({}), 'off');
  assert.equal(describeSpec({ delay: { ms: 100, jitterMs: 10 }, seed: 3 }), 'delay 100ms±10ms, seed 3');
});

test('conntrackSize tolerates the shapes a NAT might answer', () => {
  assert.deepEqual(conntrackSize([1, 2, 3]), { flows: 3 });
  assert.deepEqual(conntrackSize({ flows: 7, maxFlows: 100 }), { flows: 7, max: 100 });
  assert.deepEqual(conntrackSize({ entries: [1] }), { flows: 1 });
  assert.deepEqual(conntrackSize({ size: 42, max: 65536, flows: [{}] }), { flows: 42, max: 65536 }, "the NAT's answer: size wins over the listed flows");
  assert.equal(conntrackSize('nope'), null);
});

test('ctl option parsing builds the API bodies', () => {
  assert.deepEqual(faultSpecFromOptions({ direction: 'both', loss: '10', delay: '100', jitter: '5', rate: '10mbit', seed: '3' }), {
    loss: { percent: 10 },
    delay: { ms: 100, jitterMs: 5 },
    rate: { bitsPerSecond: '10mbit' },
    seed: 3,
  });
  assert.deepEqual(faultSpecFromOptions({ direction: 'both', lossGe: '0.01,0.3' }), { loss: { gilbertElliott: { p: 0.01, r: 0.3 } } });
  assert.throws(() => faultSpecFromOptions({ direction: 'both', loss: 'lots' }), /--loss: not a number/);
  assert.deepEqual(captureBodyFromOptions('red', 'x.pcap', { direction: 'ingress', count: '5', filter: 'icmp' }, '/tmp'), {
    target: 'red',
    direction: 'ingress',
    file: '/tmp/x.pcap',
    maxPackets: 5,
    filter: 'icmp',
  });
  assert.deepEqual(captureBodyFromOptions('bridge:br0', '-', { direction: 'both' }), { target: 'bridge:br0', direction: 'both', stream: true });
  assert.equal(captureBodyFromOptions('red', '/tmp/x.pcap', { direction: 'both', overwrite: true }).overwrite, true);
  assert.equal(captureBodyFromOptions('red', '/tmp/x.pcap', { direction: 'both' }).overwrite, undefined);
});

/* ------------------------------------------------------------------ worker API on an engine */

// ICMP echo request 10.100.0.2 -> 10.100.0.3 seq 1 (74 bytes)
const ICMP_ECHO = Buffer.from(
  '02000a64000302000a64000208004500003c12344000400113c10a6400020a64' + '00030800c3ba42420001101112131415161718191a1b1c1d1e1f202122232425' + '262728292a2b2c2d2e2f',
  'hex',
);
// TCP SYN 10.100.0.2:40000 -> 203.0.113.1:80 (54 bytes)
const TCP_SYN = Buffer.from('02000a64000102000a640002080045000028123440004006e2340a640002cb00' + '71019c40005001020304000000005002faf0cdf30000', 'hex');

function makeEngine() {
  const plane = TestPlane.switches({ br0: ['a', 'b'] });
  const engine = plane.engine;
  const posted: { message: Record<string, unknown>; transfer?: ArrayBuffer[] }[] = [];
  const post = (message: unknown, transfer?: ArrayBuffer[]) => posted.push({ message: message as Record<string, unknown>, transfer });
  const dp = dataPlaneApi(engine, post);
  // The control plane checks request bodies before the data plane sees them (src/control/).
  const api: Record<string, (p: Record<string, unknown>) => unknown> = {
    ...dp.methods,
    faults_set: (p) => dp.methods.faults_set(faultSetParams(p.port as string, { direction: p.direction, merge: p.merge, spec: p.spec })),
    capture_start: (p) => dp.methods.capture_start({ ...captureStartParams(p) }),
  };
  /** Frames the switch delivered past port a's ingress (to b), by length. */
  const delivered: number[] = [];
  const send = (frame: Buffer) => {
    plane.inject('a', frame, performance.now());
    for (const f of plane.sent('b')) delivered.push(f.length);
  };
  /** Is anything (a fault or a capture) spliced into port a's links? */
  const port = {
    get hooked() {
      return engine.graph.elements.some((e) => e.name.startsWith('fault/a/') || e.name.startsWith('tap/a/'));
    },
  };
  return { engine, api, dp, posted, port, send, delivered };
}

function apiError(fn: () => unknown, status: number, re: RegExp): void {
  assert.throws(fn, (err: unknown) => (err instanceof ApiError || err instanceof HttpError) && err.status === status && re.test(err.message));
}

/** Capture elements on the switch's inputs (bridge captures), with their tap counts. */
function bridgeTaps(engine: Engine): number[] {
  return engine.graph.elements.filter((e) => e.name.startsWith('tap/br0/')).map((e) => (e as CaptureElement).taps.length);
}

test('faults API hooks a port, drops and counts, and unhooks when cleared', () => {
  const { api, port, send, delivered } = makeEngine();
  assert.equal(port.hooked, false);
  const rows = api.faults_set({ port: 'a', direction: 'ingress', spec: { loss: { percent: 100 } } }) as FaultRow[];
  assert.equal(rows.length, 1);
  assert.equal(rows[0].summary, 'loss 100%');
  assert.equal(port.hooked, true);
  for (let i = 0; i < 5; i++) send(ICMP_ECHO);
  assert.equal(delivered.length, 0);
  const list = api.faults({}) as FaultRow[];
  assert.equal(list[0].counters.lossDrops, 5);
  assert.equal((api.experiment_stats({}) as { ports: { name: string; counters: { drops: Record<string, number> } }[] }).ports[0].counters.drops.fault_loss, 5);
  // merge: add a filter drop, keep the loss; then remove the loss with null
  api.faults_set({ port: 'a', direction: 'ingress', merge: true, spec: { dropFilter: 'tcp', loss: null } });
  send(ICMP_ECHO);
  send(TCP_SYN);
  assert.deepEqual(delivered, [ICMP_ECHO.length]);
  api.faults_clear({ port: 'a', direction: 'both' });
  assert.equal(port.hooked, false);
  send(TCP_SYN);
  assert.equal(delivered.length, 2);
  const after = api.faults({ port: 'a' }) as FaultRow[];
  assert.equal(after[0].active, false);
  assert.equal(after[0].counters.filterDrops, 1, 'counters survive a clear');
});

test('faults API rejects bad input with 4xx and changes nothing', () => {
  const { api, port } = makeEngine();
  apiError(() => api.faults_set({ port: 'zz', spec: {} }), 404, /no port named 'zz'/);
  apiError(() => api.faults_set({ port: 'a', spec: { loss: { percent: -1 } } }), 400, /^loss\.percent:/);
  apiError(() => api.faults_set({ port: 'a', direction: 'up', spec: {} }), 400, /direction/);
  apiError(() => api.faults_set({ port: 'a', spec: { dropFilter: 'port' } }), 400, /dropFilter: bad filter expression/);
  apiError(() => api.faults_set({ port: 'a', spec: 'loss' }), 400, /'spec' must be an object/);
  apiError(() => api.faults_set({ port: 'a', spec: { jitter: 1 } }), 400, /unknown field 'jitter'/);
  assert.equal(port.hooked, false);
  assert.deepEqual(api.faults({}), []);
});

/** Parse classic pcap bytes into records. */
function parsePcap(buf: Buffer): { caplen: number; len: number; data: Buffer }[] {
  assert.equal(buf.readUInt32LE(0), 0xa1b2c3d4);
  assert.equal(buf.readUInt32LE(20), 1, 'LINKTYPE_ETHERNET');
  const out = [];
  for (let p = 24; p < buf.length; ) {
    const caplen = buf.readUInt32LE(p + 8);
    const len = buf.readUInt32LE(p + 12);
    out.push({ caplen, len, data: buf.subarray(p + 16, p + 16 + caplen) });
    p += 16 + caplen;
  }
  return out;
}

function streamBytes(posted: { message: Record<string, unknown> }[], token: string): Buffer {
  return Buffer.concat(posted.filter((m) => m.message.type === 'capture_chunk' && m.message.token === token).map((m) => Buffer.from(m.message.data as ArrayBuffer)));
}

test('stream capture: filter, snaplen, flush on tick, transferred chunks, stop reason', () => {
  const { engine, api, posted, send, port } = makeEngine();
  const info = api.capture_start({ target: 'a', streamToken: 'T1', filter: 'icmp', snaplen: 40, maxPackets: 3 }) as CaptureInfo;
  assert.equal(info.state, 'running');
  assert.equal(info.sees, 'ingress, before faults; egress, after faults');
  assert.equal(port.hooked, true);
  send(TCP_SYN); // filtered out
  send(ICMP_ECHO);
  engine.tick();
  const chunk = posted.find((m) => m.message.type === 'capture_chunk')!;
  assert.deepEqual(chunk.transfer, [chunk.message.data], 'the chunk buffer is transferred');
  send(ICMP_ECHO);
  send(ICMP_ECHO); // third: max_packets reached
  send(ICMP_ECHO); // after the stop: not captured
  const end = posted.find((m) => m.message.type === 'capture_end')!;
  assert.equal(end.message.reason, 'max_packets reached');
  assert.equal(port.hooked, false, 'a stopped capture unhooks the port');
  const recs = parsePcap(streamBytes(posted, 'T1'));
  assert.equal(recs.length, 3);
  for (const r of recs) {
    assert.equal(r.caplen, 40);
    assert.equal(r.len, ICMP_ECHO.length);
    assert.deepEqual(r.data, ICMP_ECHO.subarray(0, 40));
  }
  const listed = (api.captures({}) as CaptureInfo[])[0];
  assert.equal(listed.stopReason, 'max_packets reached');
  assert.equal(listed.state, 'stopped');
});

test('stream capture is bounded: without acks the writer drops and counts, acks resume it', () => {
  const { engine, api, posted, send, dp } = makeEngine();
  api.capture_start({ target: 'a', streamToken: 'T2' });
  const big = Buffer.alloc(1500, 0x11);
  ICMP_ECHO.copy(big);
  // ~4 MiB window / ~1.5 kB per record: a few thousand records fill it
  for (let i = 0; i < 4000; i++) {
    send(big);
    if (i % 500 === 0) engine.tick();
  }
  engine.tick();
  let c = (api.captures({}) as CaptureInfo[])[0];
  assert.ok(c.droppedBackpressure > 0, `dropped ${c.droppedBackpressure}`);
  const inFlight = streamBytes(posted, 'T2').length;
  assert.ok(inFlight < 6 << 20, `in flight ${inFlight} bytes stays bounded`);
  const before = c.packets;
  assert.equal(onStreamMessage(dp, { type: 'capture_ack', token: 'T2', bytes: inFlight }), true);
  send(big);
  c = (api.captures({}) as CaptureInfo[])[0];
  assert.equal(c.packets, before + 1, 'resumed after the ack');
  // the client goes away
  onStreamMessage(dp, { type: 'capture_client_gone', token: 'T2' });
  c = (api.captures({}) as CaptureInfo[])[0];
  assert.equal(c.stopReason, 'client disconnected');
});

test('capture API: bridge captures, stop by user, errors', () => {
  const { api, engine, posted } = makeEngine();
  const b = api.capture_start({ target: 'bridge:br0', streamToken: 'T3', format: 'pcapng' }) as CaptureInfo;
  assert.equal(b.bridge, 'br0');
  assert.equal(b.sees, 'bridge input, after ingress faults');
  assert.deepEqual(bridgeTaps(engine), [1, 1], 'one capture element on each input of the switch, one tap each');
  const stopped = api.capture_stop({ id: b.id }) as CaptureInfo;
  assert.equal(stopped.stopReason, 'stopped by user');
  assert.deepEqual(bridgeTaps(engine), [], 'taken off the links when stopped');
  // pcapng: SHB first
  assert.equal(streamBytes(posted, 'T3').readUInt32LE(0), 0x0a0d0d0a);
  apiError(() => api.capture_start({ target: 'nope', streamToken: 'x' }), 404, /no port named 'nope'/);
  apiError(() => api.capture_start({ target: 'a' }), 400, /file: give either file/);
  apiError(() => api.capture_start({ target: 'a', file: 'relative.pcap' }), 400, /absolute path/);
  apiError(() => api.capture_start({ target: 'a', streamToken: 'x', snaplen: 0 }), 400, /snaplen/);
  apiError(() => api.capture_start({ target: 'bridge:br0', streamToken: 'x', direction: 'egress' }), 400, /bridge capture/);
  apiError(() => api.capture_stop({ id: 42 }), 404, /no capture with id 42/);
  apiError(() => api.capture({ id: 'x' }), 400, /capture id/);
});

test('the experiment section is applied at start, errors naming the entry', () => {
  const cfg = validateConfig({ ...structuredClone(BASE), experiment: { faults: [{ port: 'red', direction: 'egress', dropEveryNth: 2 }] } });
  const experiment = dataPlaneSpec(cfg, { ports: [], uplink: null }).experiment;
  const make = () => new Engine({ bridges: [bridgeSpec('br0')], ports: [portSpec('a', 'br0')], routes: [], experiment });
  // the config names port 'red'; this engine has only 'a': the start fails naming the entry
  const e1 = make();
  assert.throws(() => applyExperiment(e1, dataPlaneApi(e1, () => {})), /experiment\.faults\[0\]: no port named 'red'/);
  experiment!.faults[0].port = 'a';
  const e2 = make();
  const dp = dataPlaneApi(e2, () => {});
  applyExperiment(e2, dp);
  assert.ok(e2.graph.element('fault/a/out'), 'the fault element is on the egress link');
  assert.equal((dp.methods.faults({}) as FaultRow[])[0].summary, 'drop every 2th');
});

/* ------------------------------------------------------------------ views */

function fakeStats(): LiveStats {
  const counters = { rx_packets: 10, rx_bytes: 1000, tx_packets: 5, tx_bytes: 500, flooded: 0, drops: { fault_loss: 3 }, dropped: 3 };
  const r = { rx_pps: 0, rx_bps: 0, tx_pps: 0, tx_bps: 0, drop_pps: 0 };
  return {
    time: '2026-01-01T00:00:00.000Z',
    rateWindowSeconds: 5,
    ports: [
      { name: 'quiet', kind: 'tap', bridge: 'br0', ifname: 'q', mac: '02:00:00:00:00:01', up: true, offload: true, macs: 0, counters, rates: r, rates1s: r },
      { name: 'busy', kind: 'tap', bridge: 'br0', ifname: 'b', mac: '02:00:00:00:00:02', up: false, offload: true, macs: 1, counters, rates: { ...r, rx_bps: 9.8e6, rx_pps: 800 }, rates1s: r },
    ],
    bridges: [{ name: 'br0', ports: ['quiet', 'busy'], macs: 1, macTableSize: 64, agingSeconds: 300, forwarded: 1, flooded: 2, rates: { forwarded_pps: 0, flooded_pps: 0 } }],
    pool: { free: 500, total: 512 },
    faults: [
      {
        port: 'busy',
        direction: 'ingress',
        active: true,
        spec: { loss: { percent: 10 } },
        summary: 'loss 10%',
        counters: { passed: 7, lossDrops: 3, nthDrops: 0, filterDrops: 0, rateDrops: 0, downDrops: 0, delayed: 0, reordered: 0, duplicated: 0, corrupted: 0, enqueued: 0, released: 0, queueFullDrops: 0, queued: 0 },
      },
    ],
    captures: [],
    router: null,
    neighbors: null,
    conntrack: null,
  };
}

test('stats and top views', () => {
  const text = renderStats(fakeStats());
  assert.match(text, /fault_loss=3/);
  assert.match(text, /busy\s+ingress\s+on\s+loss 10%\s+passed 7, lost 3/);
  assert.match(text, /conntrack: n\/a/);
  const lines = renderTop(fakeStats(), { width: 100, height: 40, window: 5, socket: '/run/x.sock' });
  const busy = lines.findIndex((l) => l.startsWith('busy'));
  const quiet = lines.findIndex((l) => l.startsWith('quiet'));
  assert.ok(busy > 0 && busy < quiet, 'ports sorted by traffic');
  assert.match(lines[busy], /DOWN/);
  assert.match(lines[busy], /in: loss 10%/);
  assert.ok(lines.every((l) => l.length <= 100));
  assert.equal(table(['A', 'N'], [['x', '1.5k']]), 'A     N\nx  1.5k');
});

test('metrics text carries the counters with labels', async () => {
  const m = new MetricsExporter();
  const text = await m.render(fakeStats());
  assert.match(text, /tapbridge_port_rx_packets_total\{port="busy",bridge="br0"\} 10/);
  assert.match(text, /tapbridge_port_drops_total\{port="busy",bridge="br0",reason="fault_loss"\} 3/);
  assert.match(text, /tapbridge_fault_events_total\{port="busy",direction="ingress",event="lossDrops"\} 3/);
  assert.match(text, /tapbridge_port_up\{port="busy",bridge="br0"\} 0/);
  assert.match(text, /# TYPE tapbridge_port_rx_bytes_total counter/);
  // a second render with fewer faults drops the stale label set
  const s = fakeStats();
  s.faults = [];
  assert.doesNotMatch(await m.render(s), /tapbridge_fault_events_total\{/);
});

test('metrics, stats and top with IPv6: router events of both families, ARP and NDP neighbour gauges, IPv6 drop reasons', async () => {
  const s = fakeStats();
  s.router = { forwarded: 4, forwarded6: 2, icmp6ErrorsSent: 1, neighborSolicitsSent: 3, routerAdvertsSent: 5 };
  s.neighbors = 2;
  s.neighbors6 = 3;
  s.ports[0].counters = { ...s.ports[0].counters, drops: { ipv6_no_route: 1, hop_limit_exceeded: 2 }, dropped: 3 };
  const text = await new MetricsExporter().render(s);
  assert.match(text, /^tapbridge_router_events_total\{event="forwarded"\} 4$/m);
  assert.match(text, /^tapbridge_router_events_total\{event="forwarded6"\} 2$/m);
  assert.match(text, /^tapbridge_router_events_total\{event="neighborSolicitsSent"\} 3$/m);
  assert.match(text, /^tapbridge_router_events_total\{event="routerAdvertsSent"\} 5$/m);
  assert.match(text, /^tapbridge_neighbors 2$/m, 'the ARP gauge keeps its name');
  assert.match(text, /^tapbridge_neighbors6 3$/m);
  assert.match(text, /^tapbridge_port_drops_total\{port="quiet",bridge="br0",reason="ipv6_no_route"\} 1$/m);
  assert.match(text, /^tapbridge_port_drops_total\{port="quiet",bridge="br0",reason="hop_limit_exceeded"\} 2$/m);
  assert.match(renderStats(s), /neighbours: 2 ARP, 3 NDP/);
  assert.match(renderStats(s), /router: forwarded=4 forwarded6=2 icmp6ErrorsSent=1 neighborSolicitsSent=3 routerAdvertsSent=5/);
  assert.match(renderTop(s, { width: 200, height: 40, window: 5, socket: '/run/x.sock' })[1], /neighbours 2 ARP, 3 NDP/);
  // a data plane that does not answer for IPv6: as before
  assert.match(renderStats(fakeStats()), /neighbours: n\/a /);
  assert.doesNotMatch(await new MetricsExporter().render(fakeStats()), /tapbridge_neighbors6/);
});
