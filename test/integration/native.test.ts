/*
 * Integration tests of the native I/O addon (native/tapbridge.cc) through src/io/native.ts.
 *
 * Needs root and /dev/net/tun. Everything happens in network namespaces created here, named
 * tbn-<pid>-*, using 10.99.0.0/16 only; the root namespace is never modified. Code that must
 * run inside a namespace runs in a child `ip netns exec NS node test/integration/fixtures/native-*.mjs`.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { loadNative, nativeAddonPath, type NativeError } from '../../src/io/native.js';
import { requireTools, toolPath } from '../helpers/tools.js';

const execFileP = promisify(execFile);

function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'native'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('repo root not found');
    dir = parent;
  }
}
const ROOT = findRepoRoot();
const FIXTURES = join(ROOT, 'test', 'integration', 'fixtures');
const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => existsSync(p)) ?? 'ip';
const IPERF3 = toolPath('iperf3') ?? 'iperf3';
const PID = process.pid;

function skipReason(): string | null {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not running as root';
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing';
  if (!existsSync(IP) && IP !== 'ip') return 'iproute2 ip not found';
  return null;
}
const SKIP = skipReason();
if (SKIP) console.error(`\n!!!!! native integration tests SKIPPED: ${SKIP} !!!!!\n`);

function maybeSkip(t: TestContext): boolean {
  if (!SKIP) return false;
  console.error(`!!!!! SKIPPING "${t.name}": ${SKIP}`);
  t.skip(SKIP);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Namespace / process helpers

const namespaces = new Set<string>();
const children = new Set<Child>();

async function ip(...args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileP(IP, args, { timeout: 10_000 });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`ip ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}

async function nsExec(ns: string, cmd: string, args: string[], timeout = 20_000): Promise<string> {
  try {
    const { stdout } = await execFileP(IP, ['netns', 'exec', ns, cmd, ...args], { timeout });
    return stdout;
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`[${ns}] ${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

async function addNs(suffix: string): Promise<string> {
  const ns = `tbn-${PID}-${suffix}`;
  await ip('netns', 'add', ns);
  namespaces.add(ns);
  await ip('-n', ns, 'link', 'set', 'lo', 'up');
  return ns;
}

async function delNs(ns: string): Promise<void> {
  namespaces.delete(ns);
  await execFileP(IP, ['netns', 'del', ns], { timeout: 10_000 }).catch(() => undefined);
}

type Msg = Record<string, unknown> & { event?: string; reply?: number; ok?: boolean };

/** A fixture process speaking JSON lines (see fixtures/native-common.mjs). */
class Child {
  readonly proc: ChildProcess;
  readonly msgs: Msg[] = [];
  stderr = '';
  private seq = 0;
  private waiters: Array<() => void> = [];
  exited: Promise<number | null>;

  constructor(ns: string, cmd: string, args: string[]) {
    this.proc = spawn(IP, ['netns', 'exec', ns, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(this);
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      try {
        this.msgs.push(JSON.parse(line) as Msg);
      } catch {
        this.msgs.push({ event: 'text', line });
      }
      this.wake();
    });
    this.proc.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
      this.wake();
    });
    this.exited = new Promise((resolve) =>
      this.proc.once('exit', (code) => {
        children.delete(this);
        this.wake();
        resolve(code);
      }),
    );
  }

  static node(ns: string, fixture: string, args: string[]): Child {
    return new Child(ns, process.execPath, [join(FIXTURES, fixture), ...args]);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  async waitFor(pred: (m: Msg) => boolean, what: string, timeoutMs = 10_000): Promise<Msg> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.msgs.find(pred);
      if (m) return m;
      if (this.proc.exitCode !== null || this.proc.signalCode !== null)
        throw new Error(`child exited (${this.proc.exitCode ?? this.proc.signalCode}) while waiting for ${what}\n${this.stderr}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for ${what}\nstderr: ${this.stderr}\nmsgs: ${JSON.stringify(this.msgs).slice(-2000)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async request(cmd: string, timeoutMs = 10_000): Promise<Msg> {
    const id = ++this.seq;
    this.proc.stdin!.write(`${id} ${cmd}\n`);
    const m = await this.waitFor((x) => x.reply === id, `reply to "${cmd}"`, timeoutMs);
    if (!m.ok) throw new Error(`child command "${cmd}" failed: ${String(m.error)}`);
    return m;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.stdin!.end();
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
    await this.exited;
    clearTimeout(t);
  }
}

after(async () => {
  for (const c of [...children]) c.proc.kill('SIGKILL');
  await Promise.all([...children].map((c) => c.exited));
  for (const ns of [...namespaces]) await delNs(ns);
});

async function linkMac(ns: string, dev: string): Promise<string> {
  const j = JSON.parse(await ip('-n', ns, '-j', 'link', 'show', 'dev', dev)) as Array<{ address: string }>;
  return j[0]!.address.replace(/:/g, '');
}

/** TCP transfer B -> C (server at cAddr in nsC). Returns bytes received. */
async function tcpTransfer(nsB: string, nsC: string, cAddr: string): Promise<number> {
  const srv = new Child(nsC, IPERF3, ['-s', '-1', '--forceflush', '-B', cAddr, '-p', '5201']);
  try {
    await srv.waitFor((m) => m.event === 'text' && String(m.line).includes('listening'), 'iperf3 server', 5000);
    const outp = await nsExec(nsB, IPERF3, ['-c', cAddr, '-p', '5201', '-t', '2', '-J'], 20_000);
    const j = JSON.parse(outp) as { end: { sum_received: { bytes: number; bits_per_second: number } } };
    console.error(`    iperf3 ${nsB} -> ${nsC}: ${(j.end.sum_received.bits_per_second / 1e9).toFixed(2)} Gbit/s`);
    return j.end.sum_received.bytes;
  } finally {
    await srv.stop();
    srv.proc.kill('SIGKILL');
  }
}

// ---------------------------------------------------------------------------------------------

describe('native addon', () => {
  before(() => {
    if (SKIP === null) requireTools(['iperf3']); // no silent fallback: a missing tool fails loudly
  });
  test('addon loads and exposes the API', (t) => {
    if (maybeSkip(t)) return;
    assert.ok(existsSync(nativeAddonPath()), `addon not built at ${nativeAddonPath()}`);
    const n = loadNative();
    for (const k of ['openTap', 'setTapCarrier', 'openPacket', 'close', 'ifInfo', 'transmit', 'Reader'] as const)
      assert.equal(typeof n[k], 'function', k);
    assert.equal(n.MAX_BATCH, 256);
  });

  test('errors: bad names, missing interfaces, bad arguments', (t) => {
    if (maybeSkip(t)) return;
    const n = loadNative();
    const long = `tbn-${PID}`.padEnd(20, 'x');
    assert.throws(
      () => n.openTap(long, false, false),
      (e: NativeError) => e.message.includes(long) && e.code === 'EINVAL',
    );
    assert.throws(
      () => n.openPacket('nosuchif0', false),
      (e: NativeError) => e.code === 'ENODEV' && e.errno === 19 && e.message.startsWith('openPacket(nosuchif0): '),
    );
    assert.throws(() => n.ifInfo('nosuchif0'), (e: NativeError) => e.code === 'ENODEV');
    assert.throws(() => n.close(-1), RangeError);
    const mem = new ArrayBuffer(4096);
    const st = new Int32Array(3);
    // Offsets outside the memory must never reach the kernel.
    assert.throws(() => n.transmit(0, 0, false, mem, Int32Array.of(4000), Int32Array.of(100), 1, st), RangeError);
    assert.throws(() => n.transmit(0, 0, false, mem, Int32Array.of(-1), Int32Array.of(10), 1, st), RangeError);
    assert.throws(() => n.transmit(0, 0, false, mem, Int32Array.of(0), Int32Array.of(10), 2, st), RangeError);
    assert.throws(() => n.transmit(0, 0, false, mem, Int32Array.of(0), Int32Array.of(10), 1, new Int32Array(2)), RangeError);
    assert.throws(() => n.transmit(0, 0, false, new Uint8Array(10) as unknown as ArrayBuffer, Int32Array.of(0), Int32Array.of(0), 1, st), TypeError);
    const noop = (): void => undefined;
    // Ring beyond the memory / budget above slotCount.
    assert.throws(() => new n.Reader(0, 0, false, mem, 0, 2048, 4, 1, new Int32Array(4), noop, noop), RangeError);
    assert.throws(() => new n.Reader(0, 0, false, mem, 0, 1024, 2, 4, new Int32Array(4), noop, noop), RangeError);
    assert.throws(() => new n.Reader(0, 0, false, mem, 0, 1024, 2, 2, new Int32Array(1), noop, noop), RangeError);
    assert.throws(() => new n.Reader(0, 0, false, mem, 0, 1024, 2, 2, new Int32Array(2), noop, 5 as never), TypeError);
  });

  for (const vnet of [true, false]) {
    test(`TAP hub between two namespaces (vnetHdr=${vnet})`, { timeout: 30_000 }, async (t) => {
      if (maybeSkip(t)) return;
      const tag = vnet ? 'v' : 'p';
      const nsA = await addNs(`${tag}a`);
      const nsB = await addNs(`${tag}b`);
      const nsC = await addNs(`${tag}c`);
      const t1 = `tbn-${PID}${tag}1`;
      const t2 = `tbn-${PID}${tag}2`;
      const hub = Child.node(nsA, 'native-hub.mjs', [t1, t2, vnet ? '1' : '0']);
      try {
        const ready = await hub.waitFor((m) => m.event === 'ready', 'hub ready');
        assert.deepEqual(ready.names, [t1, t2]);
        const info = ready.info as Array<{ mac: string; mtu: number; ifindex: number }>;
        assert.match(info[0]!.mac, /^[0-9a-f]{12}$/);
        assert.equal(info[0]!.mtu, 1500);

        await ip('-n', nsA, 'link', 'set', t1, 'netns', nsB);
        await ip('-n', nsA, 'link', 'set', t2, 'netns', nsC);
        assert.equal(await linkMac(nsB, t1), info[0]!.mac);
        await ip('-n', nsB, 'addr', 'add', '10.99.1.1/24', 'dev', t1);
        await ip('-n', nsC, 'addr', 'add', '10.99.1.2/24', 'dev', t2);
        await ip('-n', nsB, 'link', 'set', t1, 'up');
        await ip('-n', nsC, 'link', 'set', t2, 'up');

        await nsExec(nsB, 'ping', ['-c', '3', '-i', '0.2', '-W', '1', '10.99.1.2']);
        // Baseline after both links are up: a frame forwarded into a TAP that is still down
        // during setup fails with EIO, which is the kernel's answer, not a hub error.
        const before = (await hub.request('stats')).ports as Array<Record<string, number>>;

        const bytes = await tcpTransfer(nsB, nsC, '10.99.1.2');
        assert.ok(bytes > 4 << 20, `TCP transfer moved only ${bytes} bytes`);

        let st = (await hub.request('stats')).ports as Array<Record<string, number>>;
        const [p1, p2] = st as [Record<string, number>, Record<string, number>];
        console.error(`    hub stats: ${JSON.stringify(st)}`);
        assert.ok(p1.rxFrames! > 0 && p2.rxFrames! > 0);
        assert.ok(p1.rxBatches! <= p1.rxFrames!);
        assert.equal(p1.rxErrors, 0);
        assert.equal(p1.txErr - before[0]!.txErr!, 0, 'no transmit errors while both links are up');
        assert.equal(p2.txErr - before[1]!.txErr!, 0, 'no transmit errors while both links are up');
        if (vnet) assert.ok(p1.maxLen! > 1514, `expected GSO frames > 1514 bytes with vnetHdr, max was ${p1.maxLen}`);
        else assert.ok(p1.maxLen! <= 1514, `frame of ${p1.maxLen} bytes without vnetHdr`);

        // Carrier: the owner namespace sees NO-CARRIER.
        await hub.request('carrier 0 0');
        assert.match(await ip('-n', nsB, 'link', 'show', 'dev', t1), /NO-CARRIER/);
        await hub.request('carrier 0 1');
        assert.doesNotMatch(await ip('-n', nsB, 'link', 'show', 'dev', t1), /NO-CARRIER/);

        if (vnet) {
          // Deleting the namespace that holds t1 kills the device under the open fd: the reader
          // must report it once through onError and the process must keep running.
          await delNs(nsB);
          const ev = await hub.waitFor((m) => m.event === 'error', 'reader onError after netns deletion', 10_000);
          assert.equal(ev.port, t1);
          assert.ok(Number(ev.errno) > 0);
          st = (await hub.request('stats')).ports as Array<Record<string, number>>;
          assert.equal((st[0]!.errors as unknown as unknown[]).length, 1);
          assert.ok(st[0]!.rxErrors! > 0);
        }
        await hub.request('exit').catch(() => undefined);
        assert.equal(await hub.exited, 0, hub.stderr);
      } finally {
        await hub.stop();
        for (const ns of [nsA, nsB, nsC]) await delNs(ns);
      }
    });
  }

  for (const vnet of [false, true]) {
    test(`AF_PACKET socket on a veth end (vnetHdr=${vnet})`, { timeout: 30_000 }, async (t) => {
      if (maybeSkip(t)) return;
      const tag = vnet ? 'v' : 'p';
      const nsD = await addNs(`${tag}d`);
      const nsE = await addNs(`${tag}e`);
      const vd = `tbn-${PID}${tag}d`;
      const ve = `tbn-${PID}${tag}e`;
      await ip('-n', nsD, 'link', 'add', vd, 'type', 'veth', 'peer', 'name', ve, 'netns', nsE);
      await ip('-n', nsD, 'link', 'set', vd, 'up');
      await ip('-n', nsE, 'addr', 'add', '10.99.2.2/24', 'dev', ve);
      await ip('-n', nsE, 'link', 'set', ve, 'up');
      const peerMac = await linkMac(nsE, ve);
      const ownMac = await linkMac(nsD, vd);
      const child = Child.node(nsD, 'native-packet.mjs', [vd, vnet ? '1' : '0', '10.99.2.1', '10.99.2.2']);
      try {
        const ready = await child.waitFor((m) => m.event === 'ready', 'packet child ready');
        assert.equal((ready.info as { mac: string }).mac, ownMac);
        assert.ok(Number(ready.ifindex) > 0);

        // Receive: E's ARP requests for an address nobody owns reach the socket.
        await nsExec(nsE, 'ping', ['-c', '2', '-i', '0.2', '-W', '1', '10.99.2.1']).catch(() => undefined);
        let st = await child.request('stats');
        assert.ok(Number(st.rxFrames) > 0, 'no frames received');
        assert.ok(Number(st.arpRequests) > 0, 'no ARP request from the peer received');
        assert.ok((st.peers as string[]).includes(peerMac));

        // Transmit: an ARP request from the socket makes E's kernel answer it.
        const rxBefore = Number(st.rxFrames);
        const sent = await child.request('arp');
        assert.equal(sent.sent, 2, JSON.stringify(sent));
        assert.deepEqual(sent.status, [0, 0, 0]);
        const reply = await child.waitFor((m) => m.event === 'arp-reply', 'ARP reply from peer', 5000);
        assert.equal(reply.mac, peerMac);

        st = await child.request('stats');
        assert.ok(Number(st.rxFrames) > rxBefore);
        assert.equal(st.fromSelf, 0, 'own transmitted frames were received back (PACKET_IGNORE_OUTGOING)');
        assert.equal(st.badHdr, 0, 'vnet header bytes not zeroed');
        assert.equal((st.reader as { rxErrors: number }).rxErrors, 0);
        const neigh = await ip('-n', nsE, 'neigh', 'show', '10.99.2.1');
        assert.match(neigh.replace(/:/g, ''), new RegExp(ownMac));

        await child.request('exit').catch(() => undefined);
        assert.equal(await child.exited, 0, child.stderr);
      } finally {
        await child.stop();
        await delNs(nsD);
        await delNs(nsE);
      }
    });
  }

  test('worker threads: polling readers survive worker termination', { timeout: 30_000 }, async (t) => {
    if (maybeSkip(t)) return;
    const ns = await addNs('w');
    const child = Child.node(ns, 'native-worker.mjs', [`tbn-${PID}w`]);
    try {
      await child.waitFor((m) => m.event === 'done', 'worker fixture done', 20_000);
      const codes = child.msgs.filter((m) => m.event === 'terminated' || m.event === 'closed');
      assert.equal(codes.length, 6);
      for (const m of codes) assert.equal(m.code, m.event === 'terminated' ? 1 : 0, JSON.stringify(m));
      assert.equal(await child.exited, 0, child.stderr);
    } finally {
      await child.stop();
      await delNs(ns);
    }
  });
});
