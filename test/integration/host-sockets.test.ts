/*
 * Integration tests of the host-socket half of the native addon (native/sockets.cc) through
 * src/io/host-sockets.ts: the system calls the socket uplink is built on, on real sockets.
 *
 * TCP and UDP run on 127.0.0.1 of the test's own namespace (loopback only). The ping-socket
 * tests need net.ipv4.ping_group_range, which is per network namespace: they run in a child
 * `ip netns exec tbt-<pid>-hs-ping node -e ...` inside a namespace created (and deleted) here.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';

import {
  EACCES, EAGAIN, ECONNREFUSED, ECONNRESET, EINPROGRESS, EV_ERR, EV_HUP, EV_IN, EV_OUT, EV_RDHUP,
  IPPROTO_TCP, MSG_PEEK, MSG_TRUNC, SO_ERROR, SO_PEEK_OFF, SO_RCVBUF, SO_SNDBUF, SOL_SOCKET, SocketKind,
  TCP_NODELAY, hostSockets, type SocketWatcher,
} from '../../src/io/host-sockets.js';
import {
  IP, PREFIX, addNamespace, check, deleteNamespacesSync, describeRun, integrationSkipReason, nsRun, waitFor,
} from '../helpers/sys.js';

const hs = hostSockets();
const LOOPBACK = 0x7f000001;
const HOST_SOCKETS_MODULE = new URL('../../src/io/host-sockets.js', import.meta.url).href;

const openFds = new Set<number>();
const watchers: SocketWatcher[] = [];
const namespaces: string[] = [];

function open(kind: SocketKind): number {
  const fd = hs.sockOpen(kind);
  assert.ok(fd >= 0, `sockOpen(${kind}) = ${fd}`);
  openFds.add(fd);
  return fd;
}

function close(fd: number): void {
  assert.equal(hs.sockClose(fd), 0);
  openFds.delete(fd);
}

after(() => {
  for (const w of watchers) w.close();
  for (const fd of openFds) hs.sockClose(fd);
  const errors = deleteNamespacesSync(namespaces);
  assert.deepEqual(errors, []);
});

const mem = new ArrayBuffer(1 << 20);
const bytes = new Uint8Array(mem);
const text = (off: number, len: number): string => Buffer.from(mem, off, len).toString('latin1');
const put = (off: number, s: string): number => Buffer.from(mem).write(s, off, 'latin1');

/** A TCP listener on 127.0.0.1 (ephemeral port): [fd, port]. */
function listener(): [number, number] {
  const fd = open(SocketKind.Tcp);
  assert.equal(hs.sockBind4(fd, LOOPBACK, 0), 0);
  assert.equal(hs.sockListen(fd, 16), 0);
  const name = new Int32Array(2);
  assert.equal(hs.sockName4(fd, name), 0);
  assert.equal(name[0] >>> 0, LOOPBACK);
  return [fd, name[1]];
}

/** Waits until the watcher reports one of `mask` for fd; resolves with the event bits. */
function nextEvent(fd: number, mask: number, timeoutMs = 3000): Promise<number> {
  const fds = new Int32Array(8);
  const events = new Int32Array(8);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { w.close(); reject(new Error(`no event ${mask} on fd ${fd} in ${timeoutMs} ms`)); }, timeoutMs);
    const w = new hs.SocketWatcher(fds, events, (count) => {
      for (let i = 0; i < count; i++) {
        if (fds[i] === fd && (events[i] & mask) !== 0) {
          clearTimeout(timer);
          w.close();
          resolve(events[i]);
          return;
        }
      }
    });
    watchers.push(w);
    assert.equal(w.watch(fd, mask), 0);
    w.start();
  });
}

/** A connected TCP pair over loopback: client fd, server-side (accepted) fd. */
async function tcpPair(): Promise<{ client: number; server: number; lfd: number }> {
  const [lfd, port] = listener();
  const client = open(SocketKind.Tcp);
  assert.equal(hs.sockConnect4(client, LOOPBACK, port), -EINPROGRESS);
  await nextEvent(client, EV_OUT);
  assert.equal(hs.sockGetInt(client, SOL_SOCKET, SO_ERROR), 0);
  const peer = new Int32Array(2);
  const server = await waitFor('accept4', () => { const r = hs.sockAccept4(lfd, peer); return r >= 0 ? r : undefined; });
  openFds.add(server);
  return { client, server, lfd };
}

describe('host sockets (native/sockets.cc)', () => {
  test('argument types throw TypeError; bad fds and ranges return -errno', () => {
    assert.throws(() => hs.sockRecv(0, 'x' as unknown as ArrayBuffer, 0, 1, 0), TypeError);
    assert.throws(() => hs.sockOpen('tcp' as unknown as SocketKind), TypeError);
    assert.throws(() => hs.sockAccept4(0, [0, 0] as unknown as Int32Array), TypeError);
    assert.throws(() => new hs.SocketWatcher(new Int32Array(4), new Int32Array(4), 1 as unknown as () => void), TypeError);
    assert.equal(hs.sockClose(-1), -9 /* EBADF */);
    assert.equal(hs.sockOpen(7 as SocketKind), -22 /* EINVAL */);
    const fd = open(SocketKind.Udp);
    assert.equal(hs.sockRecv(fd, mem, mem.byteLength - 4, 8, 0), -14 /* EFAULT */);
    assert.equal(hs.sockSend(fd, mem, -1, 8, 0), -14);
    assert.equal(hs.sockRecv(fd, mem, 0, 8, 0), -EAGAIN);
    assert.equal(hs.sockBind4(fd, LOOPBACK, 70000), -22);
    // numbers that are not integers never reach a system call (NaN is not fd 0)
    assert.equal(hs.sockClose(NaN), -9);
    assert.equal(hs.sockRecv(fd, mem, 0.5, 8, 0), -14);
    assert.equal(hs.sockSetInt(fd, SOL_SOCKET, 1.5, 1), -22);
    assert.equal(hs.sockRecv(fd, mem, 0, 8, 2 ** 40), -22);
    close(fd);
  });

  test('TCP: non-blocking connect (-EINPROGRESS, EV_OUT, SO_ERROR 0), accept4 gives the peer address', async () => {
    const [lfd, port] = listener();
    const peer = new Int32Array(2);
    assert.equal(hs.sockAccept4(lfd, peer), -EAGAIN);
    const client = open(SocketKind.Tcp);
    assert.equal(hs.sockConnect4(client, LOOPBACK, port), -EINPROGRESS);
    const ev = await nextEvent(client, EV_OUT);
    assert.ok((ev & EV_OUT) !== 0);
    assert.equal(hs.sockGetInt(client, SOL_SOCKET, SO_ERROR), 0);
    const server = await waitFor('accept4', () => { const r = hs.sockAccept4(lfd, peer); return r >= 0 ? r : undefined; });
    openFds.add(server);
    const clientName = new Int32Array(2);
    assert.equal(hs.sockName4(client, clientName), 0);
    assert.equal(peer[0] >>> 0, LOOPBACK);
    assert.equal(peer[1], clientName[1]);
    const serverPeer = new Int32Array(2);
    assert.equal(hs.sockPeer4(client, serverPeer), 0);
    assert.deepEqual([serverPeer[0] >>> 0, serverPeer[1]], [LOOPBACK, port]);
    assert.equal(hs.sockSetInt(client, IPPROTO_TCP, TCP_NODELAY, 1), 0);
    assert.equal(hs.sockGetInt(client, IPPROTO_TCP, TCP_NODELAY), 1);
    close(client);
    close(server);
    close(lfd);
  });

  test('TCP: connecting to a closed port ends with SO_ERROR = ECONNREFUSED', async () => {
    const probe = open(SocketKind.Tcp);
    assert.equal(hs.sockBind4(probe, LOOPBACK, 0), 0);
    const name = new Int32Array(2);
    hs.sockName4(probe, name);
    close(probe); // the port is now closed
    const fd = open(SocketKind.Tcp);
    assert.equal(hs.sockConnect4(fd, LOOPBACK, name[1]), -EINPROGRESS);
    const ev = await nextEvent(fd, EV_OUT | EV_ERR);
    assert.ok((ev & EV_ERR) !== 0, `events ${ev}`);
    assert.equal(hs.sockGetInt(fd, SOL_SOCKET, SO_ERROR), ECONNREFUSED);
    close(fd);
  });

  test('TCP: send/recv, MSG_PEEK with SO_PEEK_OFF (re-read from offset 0), MSG_TRUNC discards, SIOCINQ', async () => {
    const { client, server, lfd } = await tcpPair();
    put(0, 'abcdefgh');
    assert.equal(hs.sockSend(client, mem, 0, 8, 0), 8);
    await waitFor('8 bytes readable', () => hs.sockInq(server) === 8);
    assert.equal(hs.sockSetInt(server, SOL_SOCKET, SO_PEEK_OFF, 0), 0);
    assert.equal(hs.sockRecv(server, mem, 100, 4, MSG_PEEK), 4);
    assert.equal(text(100, 4), 'abcd');
    assert.equal(hs.sockRecv(server, mem, 100, 4, MSG_PEEK), 4);
    assert.equal(text(100, 4), 'efgh', 'a second peek continues at the peek offset');
    assert.equal(hs.sockGetInt(server, SOL_SOCKET, SO_PEEK_OFF), 8);
    assert.equal(hs.sockSetInt(server, SOL_SOCKET, SO_PEEK_OFF, 0), 0);
    assert.equal(hs.sockRecv(server, mem, 100, 4, MSG_PEEK), 4);
    assert.equal(text(100, 4), 'abcd', 'peek offset 0 re-reads (retransmit)');
    assert.equal(hs.sockInq(server), 8, 'peeking consumes nothing');
    bytes.fill(0, 200, 210);
    assert.equal(hs.sockRecv(server, mem, 200, 4, MSG_TRUNC), 4);
    assert.equal(bytes[200], 0, 'MSG_TRUNC discards without copying');
    assert.equal(hs.sockInq(server), 4);
    assert.equal(hs.sockRecv(server, mem, 300, 16, 0), 4);
    assert.equal(text(300, 4), 'efgh');
    assert.equal(hs.sockRecv(server, mem, 300, 16, 0), -EAGAIN);
    close(client);
    close(server);
    close(lfd);
  });

  test('TCP: SIOCOUTQ counts bytes not yet acknowledged, 0 once the peer read everything', async () => {
    const { client, server, lfd } = await tcpPair();
    hs.sockSetInt(server, SOL_SOCKET, SO_RCVBUF, 4096);
    hs.sockSetInt(client, SOL_SOCKET, SO_SNDBUF, 4096);
    let sent = 0;
    for (let i = 0; i < 10_000; i++) {
      const r = hs.sockSend(client, mem, 0, 65536, 0);
      if (r === -EAGAIN) break;
      assert.ok(r > 0, `send ${r}`);
      sent += r;
    }
    assert.ok(sent > 0);
    assert.ok(hs.sockOutq(client) > 0, 'a full receiver leaves bytes in the send queue');
    let received = 0;
    await waitFor('all bytes received', () => {
      for (;;) {
        const r = hs.sockRecv(server, mem, 0, 65536, 0);
        if (r <= 0) break;
        received += r;
      }
      return received === sent;
    }, { timeoutMs: 5000, intervalMs: 5 });
    await waitFor('SIOCOUTQ 0', () => hs.sockOutq(client) === 0);
    assert.equal(hs.sockInq(server), 0);
    close(client);
    close(server);
    close(lfd);
  });

  test('TCP: shutdown(WR) gives EOF on the peer, sockResetOnClose gives it ECONNRESET', async () => {
    const a = await tcpPair();
    assert.equal(hs.sockShutdown(a.client, 1), 0);
    const ev = await nextEvent(a.server, EV_IN | EV_RDHUP);
    assert.ok((ev & EV_RDHUP) !== 0, `events ${ev}`);
    assert.equal(hs.sockRecv(a.server, mem, 0, 64, 0), 0);
    // the other direction still works
    put(0, 'still');
    assert.equal(hs.sockSend(a.server, mem, 0, 5, 0), 5);
    await waitFor('reply', () => hs.sockInq(a.client) === 5);
    assert.equal(hs.sockShutdown(a.client, 5), -22);

    assert.equal(hs.sockResetOnClose(a.server), 0);
    close(a.server);
    const evr = await nextEvent(a.client, EV_ERR | EV_HUP);
    assert.ok((evr & (EV_ERR | EV_HUP)) !== 0);
    // the bytes received before the reset are still read, then the reset is reported
    assert.equal(hs.sockRecv(a.client, mem, 0, 64, 0), 5);
    assert.equal(text(0, 5), 'still');
    assert.equal(hs.sockRecv(a.client, mem, 0, 64, 0), -ECONNRESET);
    close(a.client);
    close(a.lfd);
  });

  test('UDP: sendTo4 / recvFrom4 give the sender address', () => {
    const a = open(SocketKind.Udp);
    const b = open(SocketKind.Udp);
    assert.equal(hs.sockBind4(a, LOOPBACK, 0), 0);
    assert.equal(hs.sockBind4(b, LOOPBACK, 0), 0);
    const an = new Int32Array(2), bn = new Int32Array(2);
    hs.sockName4(a, an);
    hs.sockName4(b, bn);
    put(1000, 'datagram');
    assert.equal(hs.sockSendTo4(a, mem, 1000, 8, LOOPBACK, bn[1]), 8);
    const from = new Int32Array(2);
    assert.equal(hs.sockRecvFrom4(b, mem, 2000, 64, from), 8);
    assert.equal(text(2000, 8), 'datagram');
    assert.deepEqual([from[0] >>> 0, from[1]], [LOOPBACK, an[1]]);
    assert.equal(hs.sockRecvFrom4(b, mem, 2000, 64, from), -EAGAIN);
    close(a);
    close(b);
  });

  test('SocketWatcher: several ready sockets come in one onEvents call; modify and unwatch', async () => {
    const sender = open(SocketKind.Udp);
    const receivers = [0, 1, 2].map(() => open(SocketKind.Udp));
    for (const fd of receivers) {
      assert.equal(hs.sockBind4(fd, LOOPBACK, 0), 0);
      const n = new Int32Array(2);
      hs.sockName4(fd, n);
      assert.equal(hs.sockSendTo4(sender, mem, 0, 4, LOOPBACK, n[1]), 4);
    }
    const fds = new Int32Array(16), events = new Int32Array(16);
    const calls: number[][] = [];
    const w = new hs.SocketWatcher(fds, events, (count) => {
      const ready: number[] = [];
      for (let i = 0; i < count; i++) {
        ready.push(fds[i]);
        if ((events[i] & EV_IN) !== 0) hs.sockRecvFrom4(fds[i], mem, 0, 64, new Int32Array(2)); // level-triggered: drain
      }
      calls.push(ready.sort((x, y) => x - y));
    });
    watchers.push(w);
    for (const fd of receivers) assert.equal(w.watch(fd, EV_IN), 0);
    assert.equal(w.watch(receivers[0], EV_IN), -17 /* EEXIST */);
    w.start();
    await waitFor('one batch', () => calls.length >= 1);
    assert.deepEqual(calls[0], [...receivers].sort((x, y) => x - y), 'all three in the first call');
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(calls.length, 1, 'drained sockets are not reported again');
    // modify: EV_OUT on a UDP socket is always ready; unwatch stops the reports
    assert.equal(w.modify(receivers[1], EV_OUT), 0);
    await waitFor('EV_OUT', () => calls.length >= 2);
    assert.deepEqual(calls[1], [receivers[1]]);
    assert.equal(w.unwatch(receivers[1]), 0);
    assert.equal(w.unwatch(receivers[1]), -2 /* ENOENT */);
    const seen = calls.length;
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(calls.length, seen, 'nothing ready after unwatch');
    w.stop();
    w.close();
    assert.equal(w.watch(receivers[0], EV_IN), -9 /* EBADF: closed */);
    for (const fd of [sender, ...receivers]) close(fd);
  });

  test('SocketWatcher in a worker thread (its own loop); close lets the worker exit', async () => {
    const code = `
      const { parentPort } = require('node:worker_threads');
      import(${JSON.stringify(HOST_SOCKETS_MODULE)}).then(({ hostSockets }) => {
        const hs = hostSockets();
        const fd = hs.sockOpen(1);
        hs.sockBind4(fd, 0x7f000001, 0);
        const name = new Int32Array(2);
        hs.sockName4(fd, name);
        const mem = new ArrayBuffer(256);
        const fds = new Int32Array(4), events = new Int32Array(4);
        const w = new hs.SocketWatcher(fds, events, (count) => {
          const n = hs.sockRecvFrom4(fds[0], mem, 0, 256, new Int32Array(2));
          parentPort.postMessage({ count, fd: fds[0] === fd, text: Buffer.from(mem, 0, n).toString() });
          w.close();
          hs.sockClose(fd);
          parentPort.close();
        });
        w.watch(fd, 1);
        w.start();
        parentPort.postMessage({ port: name[1] });
      });`;
    const worker = new Worker(code, { eval: true });
    const messages: Array<{ port?: number; count?: number; fd?: boolean; text?: string }> = [];
    const exited = new Promise<number>((resolve) => worker.on('exit', resolve));
    worker.on('message', (m) => messages.push(m));
    try {
      const port = await waitFor('worker port', () => messages[0]?.port);
      const s = open(SocketKind.Udp);
      put(0, 'to the worker');
      assert.equal(hs.sockSendTo4(s, mem, 0, 13, LOOPBACK, port), 13);
      await waitFor('worker event', () => messages.length >= 2);
      assert.deepEqual(messages[1], { count: 1, fd: true, text: 'to the worker' });
      const timeout = setTimeout(() => void worker.terminate(), 3000);
      assert.equal(await exited, 0, 'the worker exits by itself once its watcher is closed');
      clearTimeout(timeout);
      close(s);
    } finally {
      await worker.terminate();
    }
  });

  test('ping sockets follow the namespace\'s net.ipv4.ping_group_range', async (t) => {
    const skip = integrationSkipReason();
    if (skip !== null) throw new Error(`needs a network namespace: ${skip}`);
    const ns = `${PREFIX}hs-ping`;
    namespaces.push(ns);
    await addNamespace(ns, { ipv6: false });
    const script = `
      import(${JSON.stringify(HOST_SOCKETS_MODULE)}).then(async ({ hostSockets }) => {
        const hs = hostSockets();
        const fd = hs.sockOpen(2);
        if (fd < 0) { console.log(JSON.stringify({ open: fd })); return; }
        const mem = new ArrayBuffer(64), b = new Uint8Array(mem);
        b.set([8, 0, 0, 0, 0, 0, 0, 1]); b.set(Buffer.from('tapbridge'), 8);
        const sent = hs.sockSendTo4(fd, mem, 0, 17, 0x7f000001, 0);
        const from = new Int32Array(2);
        let got = -11;
        for (let i = 0; i < 200 && got === -11; i++) {
          got = hs.sockRecvFrom4(fd, mem, 0, 64, from);
          if (got === -11) await new Promise((r) => setTimeout(r, 5));
        }
        console.log(JSON.stringify({ open: fd, sent, got, type: b[0], payload: Buffer.from(mem, 8, 9).toString(), from: from[0] >>> 0 }));
        hs.sockClose(fd);
      });`;
    const ping = async (): Promise<Record<string, number | string>> => {
      const r = await nsRun(ns, process.execPath, ['-e', script], { timeoutMs: 10_000 });
      assert.equal(r.code, 0, describeRun(r));
      return JSON.parse(r.stdout.trim()) as Record<string, number | string>;
    };
    await check(IP, ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ping_group_range=1 0']);
    assert.deepEqual(await ping(), { open: -EACCES });
    await check(IP, ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ping_group_range=0 2147483647']);
    const r = await ping();
    t.diagnostic(JSON.stringify(r));
    assert.ok(typeof r.open === 'number' && r.open >= 0);
    assert.deepEqual({ sent: r.sent, got: r.got, type: r.type, payload: r.payload, from: r.from },
      { sent: 17, got: 17, type: 0, payload: 'tapbridge', from: LOOPBACK });
  });
});
