/*
 * The localhost proxy's UDP side (src/control/localhost-proxy.ts) with real UDP sockets on
 * 127.0.0.1 (loopback only): a client socket that fails (ICMP port unreachable because
 * nothing listens at the target) is forgotten at once — entry, timer and socket — and
 * neither its next datagram nor an idle timer can crash the process; idle clients expire;
 * the table is bounded (the least recently active client is evicted, counted); stop()
 * closes every socket. Every wait is bounded.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { pino } from 'pino';
import { LocalhostProxy, type UdpProxyStats } from '../../src/control/localhost-proxy.js';

const log = pino({ level: 'silent' });
const sockets = new Set<Socket>();
const proxies = new Set<LocalhostProxy>();

after(async () => {
  for (const s of sockets) s.close();
  for (const p of proxies) await p.stop();
});

/** A UDP port on 127.0.0.1 that was free a moment ago (nothing listens there now). */
async function freePort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A bound client socket; `replies` collects what comes back. */
async function client(): Promise<{ sock: Socket; replies: string[] }> {
  const sock = createSocket('udp4');
  sockets.add(sock);
  const replies: string[] = [];
  sock.on('message', (m) => replies.push(m.toString()));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  return { sock, replies };
}

/** An echo server on 127.0.0.1; answers "echo:<datagram>". */
async function echoServer(): Promise<number> {
  const s = createSocket('udp4');
  sockets.add(s);
  s.on('message', (m, r) => s.send(`echo:${m.toString()}`, r.port, r.address));
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s.address().port;
}

async function startProxy(toPort: number, opts: { udpIdleMs?: number; udpMaxClients?: number } = {}): Promise<{ proxy: LocalhostProxy; port: number }> {
  const proxy = new LocalhostProxy(log, opts);
  proxies.add(proxy);
  const port = await freePort();
  await proxy.start([{ proto: 'udp', listenPort: port, toAddress: '127.0.0.1', toPort }]);
  return { proxy, port };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, fn: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const show = (s: UdpProxyStats) => JSON.stringify(s);

describe('localhost proxy, UDP', { timeout: 30_000 }, () => {
  test('a client socket error (port unreachable) drops the entry, its timer and its socket; nothing crashes', async () => {
    const dead = await freePort(); // nothing listens: the target answers with ICMP port unreachable
    const { proxy, port } = await startProxy(dead, { udpIdleMs: 150 });
    const c = await client();
    c.sock.send('one', port, '127.0.0.1');
    await until('the client socket error', () => proxy.udpStats().errors >= 1);
    await until('the entry to be pruned', () => proxy.udpStats().clients === 0);
    assert.equal(proxy.udpStats().sockets, 1, `only the listener's socket is left: ${show(proxy.udpStats())}`);

    // the next datagrams of the same client: a fresh entry each time, failing and pruned again
    for (let i = 0; i < 5; i++) {
      c.sock.send(`again ${i}`, port, '127.0.0.1');
      await sleep(20);
    }
    await sleep(400); // longer than the idle timeout: a stale timer would fire now
    const s = proxy.udpStats();
    assert.equal(s.clients, 0, show(s));
    assert.equal(s.sockets, 1, show(s));
    assert.ok(s.errors >= 2, `every new client socket failed too: ${show(s)}`);
    assert.equal(s.expired, 0, `no timer of a dropped client fired: ${show(s)}`);
  });

  test('replies are relayed; idle clients expire and their sockets close', async () => {
    const echo = await echoServer();
    const { proxy, port } = await startProxy(echo, { udpIdleMs: 150 });
    const a = await client();
    const b = await client();
    a.sock.send('a1', port, '127.0.0.1');
    b.sock.send('b1', port, '127.0.0.1');
    await until('both replies', () => a.replies.length === 1 && b.replies.length === 1);
    assert.deepEqual([a.replies, b.replies], [['echo:a1'], ['echo:b1']]);
    assert.equal(proxy.udpStats().clients, 2);
    assert.equal(proxy.udpStats().sockets, 3);
    await until('the idle clients to expire', () => proxy.udpStats().clients === 0, 2000);
    const s = proxy.udpStats();
    assert.equal(s.expired, 2, show(s));
    assert.equal(s.sockets, 1, show(s));
    a.sock.send('a2', port, '127.0.0.1'); // a new entry after expiry works
    await until('the reply after expiry', () => a.replies.length === 2);
    assert.equal(a.replies[1], 'echo:a2');
  });

  test('the client table is bounded: the least recently active client is evicted, counted', async () => {
    const echo = await echoServer();
    const { proxy, port } = await startProxy(echo, { udpMaxClients: 3 });
    const cs = [await client(), await client(), await client()];
    for (const [i, c] of cs.entries()) {
      c.sock.send(`c${i}`, port, '127.0.0.1');
      await until(`reply ${i}`, () => c.replies.length === 1);
    }
    cs[0].sock.send('c0 again', port, '127.0.0.1'); // c0 is now the most recent, c1 the oldest
    await until('c0 again', () => cs[0].replies.length === 2);
    const d = await client();
    d.sock.send('d', port, '127.0.0.1');
    await until('reply to the fourth client', () => d.replies.length === 1);
    let s = proxy.udpStats();
    assert.equal(s.clients, 3, show(s));
    assert.equal(s.evicted, 1, show(s));
    assert.equal(s.sockets, 4, `the evicted client's socket is closed: ${show(s)}`);
    // c0 kept its entry (no new one); c1 was evicted and gets a new one
    const created = s.created;
    cs[0].sock.send('c0 third', port, '127.0.0.1');
    await until('c0 third', () => cs[0].replies.length === 3);
    assert.equal(proxy.udpStats().created, created, 'c0 was not evicted');
    cs[1].sock.send('c1 again', port, '127.0.0.1');
    await until('c1 again', () => cs[1].replies.length === 2);
    s = proxy.udpStats();
    assert.equal(s.created, created + 1, show(s));
    assert.equal(s.evicted, 2, show(s));
    assert.equal(s.clients, 3, show(s));
  });

  test('stop() closes every socket, also with clients in the table', async () => {
    const echo = await echoServer();
    const { proxy, port } = await startProxy(echo);
    const c = await client();
    c.sock.send('x', port, '127.0.0.1');
    await until('the reply', () => c.replies.length === 1);
    await proxy.stop();
    proxies.delete(proxy);
    const s = proxy.udpStats();
    assert.equal(s.clients, 0, show(s));
    assert.equal(s.sockets, 0, show(s));
    c.sock.send('after stop', port, '127.0.0.1'); // nobody listens any more: nothing happens, nothing throws
    await sleep(100);
  });
});
