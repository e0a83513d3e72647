import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, createWriteStream, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaptureWriter, captureToStream, PCAP_MAGIC_US, PCAP_MAGIC_NS, DIR_IN, DIR_OUT } from '../../src/trace/pcap.js';
import { hex } from '../helpers/frames.js';


// ICMP echo request 10.100.0.2 -> 10.100.0.3, id 0x4242 seq 1, 74 bytes (valid checksums)
const ICMP_ECHO = hex(
  '02000a64000302000a64000208004500003c12344000400113c10a6400020a64' +
    '00030800c3ba42420001101112131415161718191a1b1c1d1e1f202122232425' +
    '262728292a2b2c2d2e2f',
);

/** Echo request with sequence `seq`, placed at `off` inside a 0xa5-filled arena-like buffer. */
function echo(seq: number, arena: Uint8Array, off: number): number {
  arena.set(ICMP_ECHO, off);
  const icmp = off + 34;
  arena[icmp + 6] = seq >> 8;
  arena[icmp + 7] = seq & 0xff;
  arena[icmp + 2] = 0;
  arena[icmp + 3] = 0;
  let sum = 0;
  for (let i = icmp; i < off + ICMP_ECHO.length; i += 2) sum += (arena[i]! << 8) | arena[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff;
  arena[icmp + 2] = c >> 8;
  arena[icmp + 3] = c & 0xff;
  return ICMP_ECHO.length;
}

function hasTool(name: string): boolean {
  try {
    execFileSync('which', [name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const TSHARK = hasTool('tshark');

function tshark(file: string, fields: string[]): string[][] {
  const args = ['-r', file, '-T', 'fields', '-E', 'separator=|'];
  for (const f of fields) args.push('-e', f);
  const out = execFileSync('tshark', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return out
    .trim()
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => l.split('|'));
}

function collect(): { chunks: Uint8Array[]; sink: (c: Uint8Array) => boolean; bytes: () => Buffer } {
  const chunks: Uint8Array[] = [];
  return {
    chunks,
    sink: (c) => {
      chunks.push(c);
      return true;
    },
    bytes: () => Buffer.concat(chunks),
  };
}

const T0 = 1_700_000_000_123.456; // ms since epoch, fractional

test('pcap (microseconds): header, records, timestamps; tshark reads icmp.seq', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tb-pcap-'));
  try {
    const c = collect();
    const w = new CaptureWriter({ format: 'pcap', snaplen: 65535, interfaces: ['red'] }, c.sink);
    const arena = new Uint8Array(4096).fill(0xa5);
    for (let seq = 1; seq <= 3; seq++) {
      const off = 10 + seq * 200 + seq; // odd offsets
      const len = echo(seq, arena, off);
      assert.equal(w.write(0, arena, off, len, T0 + (seq - 1) * 1.5, DIR_IN), true);
    }
    assert.equal(c.chunks.length, 0, 'nothing handed to the sink before flush');
    w.flush();
    assert.equal(c.chunks.length, 1);
    const b = c.bytes();
    assert.equal(b.readUInt32LE(0), PCAP_MAGIC_US);
    assert.equal(b.readUInt16LE(4), 2);
    assert.equal(b.readUInt16LE(6), 4);
    assert.equal(b.readUInt32LE(16), 65535);
    assert.equal(b.readUInt32LE(20), 1);
    let p = 24;
    for (let seq = 1; seq <= 3; seq++) {
      const t = T0 + (seq - 1) * 1.5;
      assert.equal(b.readUInt32LE(p), Math.floor(t / 1000));
      assert.equal(b.readUInt32LE(p + 4), Math.round((t % 1000) * 1000));
      assert.equal(b.readUInt32LE(p + 8), 74);
      assert.equal(b.readUInt32LE(p + 12), 74);
      assert.equal(b.readUInt16BE(p + 16 + 34 + 6), seq);
      assert.deepEqual(b.subarray(p + 16, p + 16 + 34), Buffer.from(ICMP_ECHO.subarray(0, 34)));
      p += 16 + 74;
    }
    assert.equal(p, b.length);
    assert.equal(w.counters.packets, 3);
    assert.equal(w.counters.bytes, b.length);
    if (TSHARK) {
      const file = join(dir, 'a.pcap');
      writeFileSync(file, b);
      const rows = tshark(file, ['icmp.seq', 'ip.src', 'ip.dst', 'frame.time_epoch']);
      assert.deepEqual(rows.map((r) => r[0]), ['1', '2', '3']);
      assert.equal(rows[0]![1], '10.100.0.2');
      assert.equal(rows[0]![2], '10.100.0.3');
      assert.equal(rows[1]![3], '1700000000.124956000');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pcap (nanoseconds) with snaplen truncation', () => {
  const c = collect();
  const w = new CaptureWriter({ format: 'pcap', snaplen: 40, interfaces: [], tsResolution: 'ns' }, c.sink);
  const arena = new Uint8Array(256).fill(0xa5);
  const len = echo(7, arena, 3);
  w.write(0, arena, 3, len, 1_700_000_000_999.9996, DIR_OUT);
  w.write(0, arena, 3, len, 1000.25, DIR_OUT);
  w.stop('done');
  const b = c.bytes();
  assert.equal(b.readUInt32LE(0), PCAP_MAGIC_NS);
  assert.equal(b.readUInt32LE(16), 40);
  // 999.9996 ms -> 999999600 ns (within double precision of the ms value)
  assert.equal(b.readUInt32LE(24), 1_700_000_000);
  assert.ok(Math.abs(b.readUInt32LE(28) - 999_999_600) < 500, String(b.readUInt32LE(28)));
  assert.equal(b.readUInt32LE(32), 40);
  assert.equal(b.readUInt32LE(36), 74);
  assert.equal(b.readUInt32LE(24 + 16 + 40), 1);
  assert.equal(b.readUInt32LE(24 + 16 + 40 + 4), 250_000);
  assert.equal(b.length, 24 + 2 * (16 + 40));
  assert.equal(w.stopped, 'done');
  assert.equal(w.write(0, arena, 3, len, 0, DIR_IN), false);
});

interface Block {
  type: number;
  body: Buffer;
}
function blocks(b: Buffer): Block[] {
  const out: Block[] = [];
  let p = 0;
  while (p < b.length) {
    const type = b.readUInt32LE(p);
    const len = b.readUInt32LE(p + 4);
    assert.equal(len % 4, 0, 'block length multiple of 4');
    assert.equal(b.readUInt32LE(p + len - 4), len, 'trailing block length');
    out.push({ type, body: b.subarray(p + 8, p + len - 4) });
    p += len;
  }
  assert.equal(p, b.length);
  return out;
}
function options(b: Buffer, start: number): Map<number, Buffer[]> {
  const m = new Map<number, Buffer[]>();
  let p = start;
  while (p + 4 <= b.length) {
    const code = b.readUInt16LE(p);
    const len = b.readUInt16LE(p + 2);
    if (code === 0) break;
    const v = b.subarray(p + 4, p + 4 + len);
    m.set(code, [...(m.get(code) ?? []), v]);
    p += 4 + ((len + 3) & ~3);
  }
  return m;
}

test('pcapng: SHB, IDBs with if_name/if_tsresol, EPBs with flags and comments; tshark agrees', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tb-pcapng-'));
  try {
    for (const res of ['us', 'ns'] as const) {
      const c = collect();
      const w = new CaptureWriter(
        {
          format: 'pcapng',
          snaplen: 70,
          interfaces: ['red', 'uplink0'],
          tsResolution: res,
          comments: ['ingress, before faults', 'egress'],
        },
        c.sink,
      );
      const arena = new Uint8Array(2048).fill(0xa5);
      const specs = [
        { ifi: 0, dir: DIR_IN, cmt: 0 },
        { ifi: 1, dir: DIR_OUT, cmt: -1 },
        { ifi: 1, dir: DIR_OUT, cmt: 1 },
      ];
      specs.forEach((s, i) => {
        const off = 10 + i * 300 + i;
        const len = echo(i + 1, arena, off);
        assert.ok(w.write(s.ifi, arena, off, len, T0 + i * 1000.001, s.dir, s.cmt));
      });
      w.flush();
      const bl = blocks(c.bytes());
      assert.equal(bl.length, 1 + 2 + 3);
      const shb = bl[0]!;
      assert.equal(shb.type, 0x0a0d0d0a);
      assert.equal(shb.body.readUInt32LE(0), 0x1a2b3c4d);
      assert.equal(shb.body.readUInt16LE(4), 1);
      assert.equal(shb.body.readUInt16LE(6), 0);
      assert.equal(options(shb.body, 16).get(4)![0]!.toString(), 'tapbridge');
      for (const [i, name] of ['red', 'uplink0'].entries()) {
        const idb = bl[1 + i]!;
        assert.equal(idb.type, 1);
        assert.equal(idb.body.readUInt16LE(0), 1);
        assert.equal(idb.body.readUInt32LE(4), 70);
        const o = options(idb.body, 8);
        assert.equal(o.get(2)![0]!.toString(), name);
        assert.equal(o.get(9)![0]![0], res === 'ns' ? 9 : 6);
      }
      specs.forEach((s, i) => {
        const epb = bl[3 + i]!.body;
        assert.equal(bl[3 + i]!.type, 6);
        assert.equal(epb.readUInt32LE(0), s.ifi);
        const ts = epb.readUInt32LE(4) * 2 ** 32 + epb.readUInt32LE(8);
        const t = T0 + i * 1000.001;
        const expect = res === 'ns' ? t * 1e6 : Math.round(t * 1e3);
        assert.ok(Math.abs(ts - expect) < (res === 'ns' ? 1000 : 1), `${res} ts ${ts} vs ${expect}`);
        assert.equal(epb.readUInt32LE(12), 70);
        assert.equal(epb.readUInt32LE(16), 74);
        assert.equal(epb.readUInt16BE(20 + 34 + 6), i + 1);
        const o = options(epb, 20 + 72);
        assert.equal(o.get(2)![0]!.readUInt32LE(0), s.dir === DIR_OUT ? 2 : 1);
        const cm = o.get(1);
        if (s.cmt < 0) assert.equal(cm, undefined);
        else assert.equal(cm![0]!.toString(), ['ingress, before faults', 'egress'][s.cmt]);
      });
      if (TSHARK) {
        const file = join(dir, `a-${res}.pcapng`);
        writeFileSync(file, c.bytes());
        const rows = tshark(file, ['icmp.seq', 'frame.interface_name', 'frame.packet_flags_direction', 'frame.comment', 'frame.len', 'frame.cap_len']);
        assert.deepEqual(rows, [
          ['1', 'red', '0x00000001', 'ingress, before faults', '74', '70'],
          ['2', 'uplink0', '0x00000002', '', '74', '70'],
          ['3', 'uplink0', '0x00000002', 'egress', '74', '70'],
        ]);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('capture limits: max_packets and max_bytes stop with a reason and call onStop once', () => {
  const c = collect();
  const reasons: string[] = [];
  const w = new CaptureWriter({ format: 'pcap', snaplen: 1500, interfaces: [], maxPackets: 5, onStop: (r) => reasons.push(r) }, c.sink);
  const arena = new Uint8Array(512);
  const len = echo(1, arena, 0);
  let ok = 0;
  for (let i = 0; i < 10; i++) if (w.write(0, arena, 0, len, i, DIR_IN)) ok++;
  assert.equal(ok, 5);
  assert.equal(w.stopped, 'max_packets reached');
  assert.deepEqual(reasons, ['max_packets reached']);
  assert.equal(c.bytes().length, 24 + 5 * (16 + 74), 'stop flushed');

  const c2 = collect();
  const w2 = new CaptureWriter({ format: 'pcap', snaplen: 1500, interfaces: [], maxBytes: 24 + 3 * 90 + 50 }, c2.sink);
  let ok2 = 0;
  for (let i = 0; i < 10; i++) if (w2.write(0, arena, 0, len, i, DIR_IN)) ok2++;
  assert.equal(ok2, 3);
  assert.equal(w2.stopped, 'max_bytes reached');
  assert.equal(c2.bytes().length, 24 + 3 * 90);
});

test('backpressure: staging flushes when full, drops are counted until resume()', () => {
  const chunks: Uint8Array[] = [];
  let accept = true;
  const w = new CaptureWriter({ format: 'pcap', snaplen: 1500, interfaces: [], stagingBytes: 1000 }, (ch) => {
    chunks.push(ch);
    return accept;
  });
  const arena = new Uint8Array(512);
  const len = echo(1, arena, 0);
  // staging grows to fit one max record (16+1500), so ~16 records per flush
  for (let i = 0; i < 40; i++) assert.ok(w.write(0, arena, 0, len, i, DIR_IN));
  assert.equal(chunks.length, 2, 'flushed twice on full staging');
  accept = false;
  let dropped = 0;
  for (let i = 0; i < 100; i++) if (!w.write(0, arena, 0, len, i, DIR_IN)) dropped++;
  assert.ok(dropped > 0);
  assert.equal(w.counters.droppedBackpressure, dropped);
  assert.equal(w.isBackpressured, true);
  w.resume();
  accept = true;
  assert.ok(w.write(0, arena, 0, len, 0, DIR_IN));
  w.flush();
  // everything handed to the sink is a valid pcap stream
  const b = Buffer.concat(chunks);
  let p = 24;
  let n = 0;
  while (p < b.length) {
    assert.equal(b.readUInt32LE(p + 8), 74);
    p += 16 + b.readUInt32LE(p + 8);
    n++;
  }
  assert.equal(p, b.length);
  assert.equal(n, w.counters.packets);
  assert.equal(n + dropped, 141);
});

test('large frames (native copy path) and small frames at unaligned offsets are copied exactly', () => {
  const c = collect();
  const w = new CaptureWriter({ format: 'pcapng', snaplen: 65535, interfaces: ['x'] }, c.sink);
  const arena = new Uint8Array(70000);
  for (let i = 0; i < arena.length; i++) arena[i] = (i * 31 + 7) & 0xff;
  const sizes = [14, 15, 60, 61, 255, 256, 257, 1514, 9000, 65535];
  sizes.forEach((n, i) => w.write(0, arena, 1 + i, n, 0, DIR_IN));
  w.flush();
  const bl = blocks(c.bytes()).filter((b) => b.type === 6);
  sizes.forEach((n, i) => {
    const body = bl[i]!.body;
    assert.equal(body.readUInt32LE(12), n);
    assert.deepEqual(body.subarray(20, 20 + n), Buffer.from(arena.subarray(1 + i, 1 + i + n)), `size ${n}`);
  });
});

test('captureToStream writes a file that tshark reads', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tb-pcap-stream-'));
  try {
    const file = join(dir, 'cap.pcapng');
    const ws = createWriteStream(file);
    const done = new Promise<void>((res) => ws.on('finish', () => res()));
    const w = captureToStream({ format: 'pcapng', snaplen: 262144, interfaces: ['red'], maxPackets: 4 }, ws);
    const arena = new Uint8Array(256);
    for (let seq = 1; seq <= 6; seq++) {
      const len = echo(seq, arena, 10);
      w.write(0, arena, 10, len, T0 + seq, DIR_IN);
    }
    await done;
    assert.equal(w.stopped, 'max_packets reached');
    const b = readFileSync(file);
    assert.equal(blocks(b).filter((x) => x.type === 6).length, 4);
    if (TSHARK) assert.deepEqual(tshark(file, ['icmp.seq']).map((r) => r[0]), ['1', '2', '3', '4']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
