/*
 * The socket uplink's TCP against a scripted host (a fake of the addon's socket calls, no
 * kernel): the frames it builds are read back with the wire views. A SYN connects, the
 * SYN-ACK carries MSS and window scale, namespace data is ACKed exactly as far as the socket
 * took it, host data goes out as a TSO super-frame peeked from the socket and is discarded
 * only when ACKed, a RST resets the host socket; refused connects and the per-tenant bound
 * answer with RST and count their reason. UDP: a connected socket per flow, replies back to
 * the namespace, expiry; ping without permission is counted.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Arena } from '../../src/core/arena.js';
import { DROP_BASE } from '../../src/core/counters.js';
import { DROP_CONNECT_FAILED, DROP_ICMP_ECHO_NOT_PERMITTED, DROP_SOCKETS_EXHAUSTED, DROP_TENANT_SOCKETS_EXHAUSTED } from '../../src/core/drops.js';
import { Element, makeClock, PortRecord, Tracer, type DataPlaneContext } from '../../src/core/element.js';
import { VNET_F_NEEDS_CSUM, VNET_FLAGS, VNET_GSO_SIZE, VNET_GSO_TCPV4, VNET_GSO_TYPE, VNET_HDR_LEN } from '../../src/core/frame.js';
import { EACCES, ECONNREFUSED, EINPROGRESS, EV_IN, EV_OUT, MSG_PEEK, MSG_TRUNC, SO_PEEK_OFF, type HostSocketsAddon } from '../../src/io/host-sockets.js';
import { SocketUplink } from '../../src/uplink/socket-uplink.js';
import { ETH_HEADER_LEN, ETHERTYPE_IPV4, writeEthernetHeader } from '../../src/wire/ethernet.js';
import { parseIp4 } from '../../src/wire/ip4.js';
import { fillL4Checksum, verifyL4Checksum } from '../../src/wire/checksum.js';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPV4_FLAG_DF, Ipv4View, writeIpv4Header } from '../../src/wire/ipv4.js';
import { TCP_FLAG_ACK, TCP_FLAG_RST, TCP_FLAG_SYN, TCP_OPT_MSS, TCP_OPT_WSCALE, TcpView } from '../../src/wire/tcp.js';

const NS = parseIp4('10.100.0.2')!;
const REMOTE = parseIp4('198.51.100.1')!;

/** One fake host socket: what was sent to it, what it has to read, its peek offset. */
interface FakeSocket {
  fd: number;
  kind: number;
  connectedTo?: [number, number];
  sent: number[];
  inbound: Uint8Array;
  peekOff: number;
  truncated: number;
  reset: boolean;
  closed: boolean;
}

function fakeHost(opts: { connect?: number; sendTakes?: number; pingRefused?: boolean } = {}) {
  const sockets = new Map<number, FakeSocket>();
  let nextFd = 100;
  let onEvents: (n: number) => void = () => {};
  let evFds: Int32Array = new Int32Array(0);
  let evBits: Int32Array = new Int32Array(0);
  const host = {
    sockOpen: (kind: number) => {
      if (kind === 2 && opts.pingRefused === true) return -EACCES;
      const fd = nextFd++;
      sockets.set(fd, { fd, kind, sent: [], inbound: new Uint8Array(0), peekOff: 0, truncated: 0, reset: false, closed: false });
      return fd;
    },
    sockConnect4: (fd: number, ip: number, port: number) => {
      const sock = sockets.get(fd)!;
      sock.connectedTo = [ip >>> 0, port];
      return sock.kind === 0 ? (opts.connect ?? -EINPROGRESS) : 0; // UDP connects at once
    },
    sockSetInt: (fd: number, _level: number, name: number, value: number) => {
      if (name === SO_PEEK_OFF) sockets.get(fd)!.peekOff = value;
      return 0;
    },
    sockGetInt: () => 0, // SO_ERROR 0 (and SO_SNDBUF 0: a zero window, which the element never waits on)
    sockOutq: () => 0,
    sockSend: (fd: number, mem: ArrayBuffer, off: number, len: number) => {
      const n = Math.min(len, opts.sendTakes ?? len);
      sockets.get(fd)!.sent.push(...new Uint8Array(mem, off, n));
      return n;
    },
    sockRecv: (fd: number, mem: ArrayBuffer, off: number, len: number, flags: number) => {
      const s = sockets.get(fd)!;
      if ((flags & MSG_TRUNC) !== 0) {
        s.inbound = s.inbound.subarray(len);
        s.peekOff -= len;
        s.truncated += len;
        return len;
      }
      const n = Math.min(len, s.inbound.length - s.peekOff);
      if (n <= 0) return -11;
      new Uint8Array(mem, off, n).set(s.inbound.subarray(s.peekOff, s.peekOff + n));
      if ((flags & MSG_PEEK) !== 0) s.peekOff += n;
      return n;
    },
    sockSendTo4: (fd: number, mem: ArrayBuffer, off: number, len: number) => {
      sockets.get(fd)!.sent.push(...new Uint8Array(mem, off, len));
      return len;
    },
    sockShutdown: () => 0,
    sockResetOnClose: (fd: number) => {
      sockets.get(fd)!.reset = true;
      return 0;
    },
    sockClose: (fd: number) => {
      sockets.get(fd)!.closed = true;
      return 0;
    },
    SocketWatcher: class {
      constructor(fds: Int32Array, events: Int32Array, cb: (n: number) => void) {
        evFds = fds;
        evBits = events;
        onEvents = cb;
      }
      watch() {
        return 0;
      }
      modify() {
        return 0;
      }
      unwatch() {
        return 0;
      }
      start() {}
      stop() {}
      close() {}
    },
  };
  const fire = (fd: number, bits: number) => {
    evFds[0] = fd;
    evBits[0] = bits;
    onEvents(1);
  };
  return { host: host as unknown as HostSocketsAddon, sockets, fire };
}

/** Frames the element sent, copied out (vnet header included). */
class Sink extends Element {
  readonly kind = 'Sink';
  frames: Uint8Array[] = [];
  push(_input: number, off: number, len: number): void {
    this.frames.push(this.ctx.u8.slice(off, off + VNET_HDR_LEN + len));
  }
}

function setup(maxSocketsPerTenant = 8, hostOpts: { connect?: number; sendTakes?: number; pingRefused?: boolean } = {}) {
  const arena = new Arena(0, 64);
  const time = { now: 0 };
  const ctx: DataPlaneContext = { arena, u8: arena.u8, clock: makeClock(() => time.now), tracer: new Tracer() };
  const uplink = new PortRecord('uplink', 'uplink', 'host sockets', 0, false, null);
  const el = new SocketUplink('sockup', ctx, {
    hostLoopback: parseIp4('10.0.2.2')!, maxSockets: 16, maxSocketsPerTenant, tcpIdleTimeout: 60, udpTimeout: 60, udpRepliedTimeout: 180, publish: [], uplinkIf: 1,
    records: new Map([['uplink', uplink]]),
  });
  const sink = new Sink('sink', ctx, ['in'], []);
  el.out[0].to = sink;
  const fake = fakeHost(hostOpts);
  el.start(() => el.endBatch(), fake.host);
  /** A segment from the namespace (partial checksum: an offloaded TAP). */
  const segment = (flags: number, seq: number, ack: number, payload = 0, opts = false, sport = 40000) => {
    const slot = arena.alloc();
    const b = arena.u8;
    b.fill(0, slot, slot + VNET_HDR_LEN);
    b[slot + VNET_FLAGS] = VNET_F_NEEDS_CSUM;
    writeEthernetHeader(b, slot + VNET_HDR_LEN, 0x020000000001, 0x020000000002, ETHERTYPE_IPV4);
    const ip = slot + VNET_HDR_LEN + ETH_HEADER_LEN;
    const hl = opts ? 28 : 20;
    writeIpv4Header(b, ip, 20 + hl + payload, 1, IPV4_FLAG_DF, 63, IPPROTO_TCP, NS, REMOTE);
    const t = new TcpView().reset(b, ip + 20, hl + payload);
    t.srcPort = sport;
    t.dstPort = 80;
    t.seq = seq;
    t.ack = ack;
    b[t.off + 12] = (hl / 4) << 4;
    t.flags = flags;
    t.window = 1000;
    if (opts) b.set([TCP_OPT_MSS, 4, 0x05, 0xb4, 1, TCP_OPT_WSCALE, 3, 7], t.off + 20);
    for (let i = 0; i < payload; i++) b[t.off + hl + i] = i & 0xff;
    el.push(0, slot, ETH_HEADER_LEN + 20 + hl + payload);
    arena.release(slot);
  };
  /** A UDP datagram (or, with icmp, an echo request) from the namespace to REMOTE. */
  const datagram = (payload: string, icmp = false) => {
    const slot = arena.alloc();
    const b = arena.u8;
    b.fill(0, slot, slot + VNET_HDR_LEN);
    const ip = slot + VNET_HDR_LEN + ETH_HEADER_LEN;
    const l4 = 8 + payload.length;
    writeIpv4Header(b, ip, 20 + l4, 1, 0, 63, icmp ? IPPROTO_ICMP : IPPROTO_UDP, NS, REMOTE);
    b.fill(0, ip + 20, ip + 28);
    if (icmp) {
      b[ip + 20] = 8;
      b[ip + 25] = 42; // echo id 42
    } else {
      b[ip + 20] = 0x9c;
      b[ip + 21] = 0x40;
      b[ip + 23] = 53;
      b[ip + 25] = l4;
    }
    b.set(new TextEncoder().encode(payload), ip + 28);
    fillL4Checksum(b, ip);
    el.push(0, slot, ETH_HEADER_LEN + 20 + l4);
    arena.release(slot);
  };
  return { el, sink, fake, segment, datagram, uplink, time };
}

/** The IPv4 and TCP views of a frame the element sent. */
function parse(frame: Uint8Array) {
  const ip = new Ipv4View().reset(frame, VNET_HDR_LEN + ETH_HEADER_LEN, frame.length - VNET_HDR_LEN - ETH_HEADER_LEN);
  const tcp = new TcpView().reset(frame, ip.payloadOffset, ip.totalLength - ip.headerLen);
  return { ip, tcp, payload: ip.totalLength - ip.headerLen - tcp.headerLen };
}

describe('socket uplink: TCP against a scripted host', () => {
  test('SYN -> connect; connected -> SYN-ACK; data ACKed as far as taken; host data as a TSO super-frame; ACK discards; RST resets', () => {
    const { sink, fake, segment, el } = setup(8, { sendTakes: 60 });
    segment(TCP_FLAG_SYN, 1000, 0, 0, true);
    const [sock] = [...fake.sockets.values()];
    assert.deepEqual(sock.connectedTo, [REMOTE, 80]);
    assert.equal(sink.frames.length, 0, 'nothing until the host connect finishes');
    segment(TCP_FLAG_SYN, 1000, 0, 0, true); // retransmitted SYN while connecting: ignored
    assert.equal(el.counters.connects, 1);

    fake.fire(sock.fd, EV_OUT);
    assert.equal(sink.frames.length, 1);
    const synAck = parse(sink.frames[0]);
    assert.equal(synAck.ip.src, REMOTE);
    assert.equal(synAck.ip.dst, NS);
    assert.equal(synAck.tcp.flags, TCP_FLAG_SYN | TCP_FLAG_ACK);
    assert.equal(synAck.tcp.ack, 1001);
    const mss = synAck.tcp.findOption(TCP_OPT_MSS);
    assert.equal((sink.frames[0][mss + 2] << 8) | sink.frames[0][mss + 3], 1460);
    assert.equal(sink.frames[0][synAck.tcp.findOption(TCP_OPT_WSCALE) + 2], 7);
    assert.equal(sink.frames[0][VNET_FLAGS] & VNET_F_NEEDS_CSUM, VNET_F_NEEDS_CSUM, 'checksum left to the TAP');
    const isn = synAck.tcp.seq;

    // The handshake's ACK with 100 bytes: the socket takes 60, the ACK says so.
    sock.inbound = new Uint8Array(3000).map((_, i) => i % 251);
    segment(TCP_FLAG_ACK, 1001, (isn + 1) >>> 0, 100);
    assert.deepEqual(sock.sent, Array.from({ length: 60 }, (_, i) => i));
    el.endBatch();
    const frames = sink.frames.slice(1).map(parse);
    const ack = frames.find((f) => f.payload === 0)!;
    assert.equal(ack.tcp.ack, 1061, 'exactly what the socket took');

    // Host data went out with the ACK's window: one super-frame, GSO with the namespace's MSS.
    const dataFrame = sink.frames.slice(1).find((f) => parse(f).payload > 0)!;
    assert.ok(dataFrame !== undefined, 'host data sent');
    const d = parse(dataFrame);
    assert.equal(d.payload, 3000);
    assert.equal(d.tcp.seq, (isn + 1) >>> 0);
    assert.equal(dataFrame[VNET_GSO_TYPE], VNET_GSO_TCPV4);
    assert.equal(dataFrame[VNET_GSO_SIZE] | (dataFrame[VNET_GSO_SIZE + 1] << 8), 1460);
    assert.equal(dataFrame[d.tcp.payloadOffset + 7], 7 % 251, 'payload peeked from the socket');
    assert.equal(sock.truncated, 0, 'kept in the socket until ACKed');

    segment(TCP_FLAG_ACK, 1061, (isn + 1 + 3000) >>> 0);
    assert.equal(sock.truncated, 3000, 'discarded once ACKed');

    segment(TCP_FLAG_RST, 1061, 0);
    assert.ok(sock.reset && sock.closed, 'RST from the namespace resets the host socket');
    assert.equal(el.counters.socketsInUse, 0);
  });

  test('a refused connect answers the SYN with RST and counts connect_failed', () => {
    const { sink, segment, uplink } = setup(8, { connect: -ECONNREFUSED });
    segment(TCP_FLAG_SYN, 5000, 0, 0, true);
    assert.equal(sink.frames.length, 1);
    const r = parse(sink.frames[0]);
    assert.equal(r.tcp.flags, TCP_FLAG_RST | TCP_FLAG_ACK);
    assert.equal(r.tcp.ack, 5001);
    assert.equal(uplink.counters[DROP_BASE + DROP_CONNECT_FAILED], 1);
  });

  test('beyond maxSocketsPerTenant a SYN gets RST and tenant_sockets_exhausted', () => {
    const { sink, segment, uplink, el } = setup(1);
    segment(TCP_FLAG_SYN, 1, 0, 0, true, 40001);
    segment(TCP_FLAG_SYN, 1, 0, 0, true, 40002);
    assert.equal(el.counters.socketsInUse, 1);
    assert.equal(uplink.counters[DROP_BASE + DROP_TENANT_SOCKETS_EXHAUSTED], 1);
    assert.equal(parse(sink.frames[0]).tcp.flags & TCP_FLAG_RST, TCP_FLAG_RST);
    assert.equal(parse(sink.frames[0]).tcp.dstPort, 40002);
  });

  test('beyond maxSockets a SYN gets RST and sockets_exhausted; a closed flow frees its socket for the next', () => {
    const { sink, segment, uplink, el } = setup(16);
    for (let i = 0; i < 17; i++) segment(TCP_FLAG_SYN, 1, 0, 0, true, 41000 + i);
    assert.equal(el.counters.socketsInUse, 16);
    assert.equal(uplink.counters[DROP_BASE + DROP_SOCKETS_EXHAUSTED], 1);
    assert.equal(parse(sink.frames[0]).tcp.dstPort, 41016);
    segment(TCP_FLAG_RST, 2, 0, 0, false, 41000);
    segment(TCP_FLAG_SYN, 1, 0, 0, true, 41016);
    assert.equal(el.counters.socketsInUse, 16);
    assert.equal(uplink.counters[DROP_BASE + DROP_SOCKETS_EXHAUSTED], 1);
  });

  test('host EOF after the data: FIN to the namespace', () => {
    const { sink, fake, segment } = setup();
    segment(TCP_FLAG_SYN, 1000, 0, 0, true);
    const [sock] = [...fake.sockets.values()];
    fake.fire(sock.fd, EV_OUT);
    const isn = parse(sink.frames[0]).tcp.seq;
    sock.inbound = new Uint8Array(10);
    // The fake reports EOF as a read of 0 once everything was peeked.
    const recv = fake.host.sockRecv;
    fake.host.sockRecv = (fd, mem, off, len, flags) => {
      const n = recv(fd, mem, off, len, flags);
      return n === -11 ? 0 : n;
    };
    segment(TCP_FLAG_ACK, 1001, (isn + 1) >>> 0);
    fake.fire(sock.fd, EV_IN);
    const last = parse(sink.frames[sink.frames.length - 1]);
    assert.equal(last.tcp.flags & 0x01, 0x01, 'FIN');
    assert.equal(last.tcp.seq, (isn + 1 + 10) >>> 0);
  });
});

describe('socket uplink: UDP and ping against a scripted host', () => {
  test('a datagram opens a connected socket; the reply comes back as UDP to the namespace address; the flow expires', () => {
    const { el, sink, fake, datagram, time } = setup();
    datagram('query');
    const [sock] = [...fake.sockets.values()];
    assert.deepEqual(sock.connectedTo, [REMOTE, 53]);
    assert.equal(new TextDecoder().decode(new Uint8Array(sock.sent)), 'query');
    sock.inbound = new TextEncoder().encode('answer');
    const recv = fake.host.sockRecv;
    let once = false;
    fake.host.sockRecv = (fd, mem, off, len, flags) => (once ? -11 : ((once = true), recv(fd, mem, off, len, flags)));
    fake.fire(sock.fd, EV_IN);
    assert.equal(sink.frames.length, 1);
    const f = sink.frames[0];
    const ip = new Ipv4View().reset(f, VNET_HDR_LEN + ETH_HEADER_LEN, f.length - VNET_HDR_LEN - ETH_HEADER_LEN);
    assert.equal(ip.src, REMOTE);
    assert.equal(ip.dst, NS);
    assert.equal((f[ip.payloadOffset] << 8) | f[ip.payloadOffset + 1], 53);
    assert.equal((f[ip.payloadOffset + 2] << 8) | f[ip.payloadOffset + 3], 40000);
    assert.equal(new TextDecoder().decode(f.subarray(ip.payloadOffset + 8)), 'answer');
    assert.ok(verifyL4Checksum(f, VNET_HDR_LEN + ETH_HEADER_LEN));
    assert.equal(el.counters.udpFlows, 1);
    time.now = 181_000;
    el.tick(time.now);
    assert.equal(el.counters.udpFlows, 0);
    assert.ok(sock.closed);
  });

  test('an echo request without ping-socket permission is dropped as icmp_echo_not_permitted', () => {
    const { el, datagram, uplink } = setup(8, { pingRefused: true });
    datagram('abcd', true);
    assert.equal(uplink.counters[DROP_BASE + DROP_ICMP_ECHO_NOT_PERMITTED], 1);
    assert.equal(el.counters.socketsInUse, 0, 'the refused socket is not counted');
  });
});
