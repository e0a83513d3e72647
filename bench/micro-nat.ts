/*
 * Micro benchmark of the NAT engine (src/nat), no devices:
 *   established  prerouting + postrouting of packets of established TCP flows (half original,
 *                half reply direction, every one rewritten: masquerade / de-NAT) over a mix of
 *                N flows, packets visiting the flows in random order
 *   setup        new-flow rate: UDP packets of distinct flows through both hooks until the
 *                table holds N flows
 *   expiry       tick() removing N expired flows
 *   memory       RSS and heap with a 1M-flow table, empty and full
 *
 *   node dist/bench/micro-nat.js [--flows 1000,100000,1000000] [--seconds 1] [--no-memory]
 *
 * Targets: >= 2 Mpps lookup+rewrite; 1M flows in < 400 MB RSS.
 */
import { fillL4Checksum, ipv4HeaderChecksum } from '../src/wire/checksum.js';
import { writeU16, writeU32 } from '../src/wire/bytes.js';
import { NatEngine, NAT_ACCEPT } from '../src/nat/index.js';

const BR = 0;
const UP = 1;
const GW = 0x0a640001; // 10.100.0.1
const EXT = 0xcb007102; // 203.0.113.2
const WAN = 0xcb007101; // 203.0.113.1
const PKT = 40; // IPv4 + TCP without options
const STRIDE = 64;

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const SECONDS = Number(arg('seconds', '1'));
const FLOWS = arg('flows', '1000,100000,1000000').split(',').map(Number);
const MEMORY = !process.argv.includes('--no-memory');

function engine(maxFlows: number): NatEngine {
  return new NatEngine({
    uplinkIf: UP,
    ifAddr: Uint32Array.of(GW, EXT),
    masqueradeSources: [{ net: 0x0a000000, prefixLen: 8 }],
    maxFlows,
    seed: 1,
  });
}

/** Inside host and port of flow i: 10.100+.x.y hosts x 1000 ports. */
function inside(i: number): [number, number] {
  return [(0x0a640000 + 2 + Math.floor(i / 1000)) >>> 0, 20000 + (i % 1000)];
}

/** Server port of flow i (all flows go to wan): with inside() every reply tuple is distinct up to 1,024,000 flows. */
function service(i: number): number {
  return 1000 + (i % 8192);
}

function writeIp(buf: Uint8Array, o: number, proto: number, src: number, dst: number, l4len: number): void {
  buf[o] = 0x45;
  buf[o + 1] = 0;
  writeU16(buf, o + 2, 20 + l4len);
  writeU16(buf, o + 4, 1);
  writeU16(buf, o + 6, 0x4000);
  buf[o + 8] = 64;
  buf[o + 9] = proto;
  writeU16(buf, o + 10, 0);
  writeU32(buf, o + 12, src);
  writeU32(buf, o + 16, dst);
  writeU16(buf, o + 10, ipv4HeaderChecksum(buf, o, 20));
}

function writeTcp(buf: Uint8Array, o: number, src: number, sport: number, dst: number, dport: number, flags: number): void {
  const t = o + 20;
  buf.fill(0, t, t + 20);
  writeU16(buf, t, sport);
  writeU16(buf, t + 2, dport);
  writeU32(buf, t + 4, 1);
  buf[t + 12] = 0x50;
  buf[t + 13] = flags;
  writeU16(buf, t + 14, 65535);
  writeIp(buf, o, 6, src, dst, 20);
  fillL4Checksum(buf, o);
}

function writeUdp(buf: Uint8Array, o: number, src: number, sport: number, dst: number, dport: number): void {
  const u = o + 20;
  writeU16(buf, u, sport);
  writeU16(buf, u + 2, dport);
  writeU16(buf, u + 4, 8);
  writeU16(buf, u + 6, 0);
  writeIp(buf, o, 17, src, dst, 8);
  fillL4Checksum(buf, o);
}

function pass(nat: NatEngine, buf: Uint8Array, o: number, len: number, inIf: number, outIf: number, now: number): number {
  const v = nat.prerouting(buf, o, len, false, inIf, now);
  if (v !== NAT_ACCEPT) return v;
  return nat.postrouting(buf, o, len, false, outIf, now);
}

function rssMB(): number {
  return process.memoryUsage().rss / 1048576;
}

function fmtRate(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : `${(n / 1e3).toFixed(1)} k`;
}

/* ---------------------------------------------------------------- established */

function established(n: number): void {
  const nat = engine(n);
  const scratch = new Uint8Array(STRIDE);
  const extPort = new Uint16Array(n);
  let now = 1_000_000;
  // Handshake every flow (SYN, SYN/ACK, ACK): ESTABLISHED + ASSURED.
  for (let i = 0; i < n; i++) {
    const [h, p] = inside(i);
    const sv = service(i);
    writeTcp(scratch, 0, h, p, WAN, sv, 0x02);
    if (pass(nat, scratch, 0, PKT, BR, UP, now) !== NAT_ACCEPT) throw new Error(`setup of flow ${i} failed`);
    const ext = (scratch[20] << 8) | scratch[21];
    extPort[i] = ext;
    writeTcp(scratch, 0, WAN, sv, EXT, ext, 0x12);
    pass(nat, scratch, 0, PKT, UP, BR, now);
    writeTcp(scratch, 0, h, p, WAN, sv, 0x10);
    pass(nat, scratch, 0, PKT, BR, UP, now);
  }
  // Templates: M packets over random flows, alternating directions; work copies beside them.
  const M = Math.min(65536, Math.max(1024, n));
  const buf = new Uint8Array(2 * M * STRIDE);
  const work = M * STRIDE;
  const inIf = new Uint8Array(M);
  let seed = 12345;
  for (let k = 0; k < M; k++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const i = seed % n;
    const [h, p] = inside(i);
    const sv = service(i);
    if ((k & 1) === 0) {
      writeTcp(buf, k * STRIDE, h, p, WAN, sv, 0x10);
      inIf[k] = BR;
    } else {
      writeTcp(buf, k * STRIDE, WAN, sv, EXT, extPort[i], 0x10);
      inIf[k] = UP;
    }
  }
  const run = (): number => {
    buf.copyWithin(work, 0, work);
    let bad = 0;
    for (let k = 0; k < M; k++) {
      const d = inIf[k];
      if (pass(nat, buf, work + k * STRIDE, PKT, d, d === BR ? UP : BR, now) !== NAT_ACCEPT) bad++;
    }
    return bad;
  };
  for (let w = 0; w < 5; w++) if (run() !== 0) throw new Error('established packet refused');
  // Copy cost alone, to subtract.
  const tc = process.hrtime.bigint();
  for (let r = 0; r < 50; r++) buf.copyWithin(work, 0, work);
  const copyNs = Number(process.hrtime.bigint() - tc) / 50;
  let pkts = 0;
  let ns = 0;
  const t0 = process.hrtime.bigint();
  while (ns < SECONDS * 1e9) {
    run();
    now += 1;
    pkts += M;
    ns = Number(process.hrtime.bigint() - t0);
  }
  const passes = pkts / M;
  const pps = pkts / ((ns - copyNs * passes) / 1e9);
  console.log(`established  flows=${String(n).padStart(8)}  ${fmtRate(pps)}pps lookup+rewrite (both hooks; ${(1e9 / pps).toFixed(0)} ns/pkt)`);
}

/* ---------------------------------------------------------------- setup + expiry */

function setupAndExpiry(n: number): void {
  const nat = engine(n);
  const buf = new Uint8Array(STRIDE);
  const now = 1_000_000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const [h, p] = inside(i);
    writeUdp(buf, 0, h, p, WAN, service(i));
    if (pass(nat, buf, 0, 28, BR, UP, now) !== NAT_ACCEPT) throw new Error(`flow ${i} refused`);
  }
  const ns = Number(process.hrtime.bigint() - t0);
  // Rebuilding the packet (checksums from scratch) costs too; measure it alone.
  const tb = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const [h, p] = inside(i);
    writeUdp(buf, 0, h, p, WAN, service(i));
  }
  const buildNs = Number(process.hrtime.bigint() - tb);
  console.log(`setup        flows=${String(n).padStart(8)}  ${fmtRate(n / ((ns - buildNs) / 1e9))}flows/s (new UDP flow: lookup miss, alloc, port check, index x2, timer)`);
  const te = process.hrtime.bigint();
  nat.tick(now + 31_000);
  const ens = Number(process.hrtime.bigint() - te);
  if (nat.size !== 0) throw new Error('expiry incomplete');
  console.log(`expiry       flows=${String(n).padStart(8)}  ${fmtRate(n / (ens / 1e9))}flows/s (tick)`);
}

/* ---------------------------------------------------------------- memory */

function memory(): void {
  const n = 1_000_000;
  globalThis.gc?.();
  const r0 = rssMB();
  const nat = engine(n);
  const r1 = rssMB();
  const buf = new Uint8Array(STRIDE);
  for (let i = 0; i < n; i++) {
    const [h, p] = inside(i);
    writeUdp(buf, 0, h, p, WAN, service(i));
    if (pass(nat, buf, 0, 28, BR, UP, 1_000_000) !== NAT_ACCEPT) throw new Error(`flow ${i} refused`);
  }
  globalThis.gc?.();
  const r2 = rssMB();
  const heap = process.memoryUsage();
  console.log(
    `memory       flows=${String(nat.size).padStart(8)}  RSS ${r2.toFixed(0)} MB total (process before ${r0.toFixed(0)} MB; table ${(nat.memoryBytes / 1048576).toFixed(0)} MB = ` +
      `${(nat.memoryBytes / n).toFixed(0)} B/flow preallocated, ${(r1 - r0).toFixed(0)} MB resident when empty); heapUsed ${(heap.heapUsed / 1048576).toFixed(0)} MB` +
      (r2 < 400 ? '  [< 400 MB: ok]' : '  [>= 400 MB: over target]'),
  );
}

console.log(`node ${process.version}, ${SECONDS}s per case`);
if (MEMORY) memory(); // first, so RSS is not inflated by the other cases' garbage
if (!process.argv.includes("--no-warmup")) setupAndExpiry(20000); // JIT warm-up for the setup path
for (const n of FLOWS) established(n);
for (const n of FLOWS) setupAndExpiry(n);
