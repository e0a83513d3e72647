/*
 * Localhost publishing: a small userspace proxy, like docker-proxy, so that
 * 127.0.0.1:PORT (and [::1]:PORT for a port published to an IPv6 host) in tapbridge's
 * namespace reaches a published service. TCP connections
 * are piped; UDP datagrams are relayed through one socket per client, connected to the
 * target (so only its replies come back), with an idle timeout. A client whose socket fails
 * (e.g. ICMP port unreachable: nothing listens at the target) or closes is forgotten at
 * once: out of its listener's table, timer cleared, socket out of the list; its next
 * datagram starts a new one. At most UDP_MAX_CLIENTS at a time: the least recently active
 * is evicted (counted, see udpStats()).
 * Connections reach the namespace through the host port (the kernel routes the bridge
 * subnet via its TAP), so the service sees the host port's address as the client.
 * Turned off with nat.localhostProxy: false.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import type { Logger } from 'pino';

export interface ProxyTarget {
  proto: 'tcp' | 'udp';
  listenPort: number;
  toAddress: string;
  toPort: number;
}

/** Where a target is served: the loopback address of its family. */
function loopbackFor(t: ProxyTarget): { host: string; shown: string; udp: 'udp4' | 'udp6' } {
  return t.toAddress.includes(':') ? { host: '::1', shown: '[::1]', udp: 'udp6' } : { host: '127.0.0.1', shown: '127.0.0.1', udp: 'udp4' };
}

/** "addr:port", with an IPv6 address in brackets. */
function endpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

const UDP_IDLE_MS = 30_000;
/** Most UDP clients relayed at once over all listeners; the least recently active is evicted. */
const UDP_MAX_CLIENTS = 1024;
/** Datagrams held for a client socket that is still connecting. */
const UDP_PENDING_MAX = 16;

export interface ProxyOptions {
  udpIdleMs?: number;
  udpMaxClients?: number;
}

/** What the UDP side has done (ctl/tests); `clients` and `sockets` are current. */
export interface UdpProxyStats {
  clients: number;
  /** Open UDP sockets: one per listener plus one per client. */
  sockets: number;
  created: number;
  evicted: number;
  expired: number;
  /** Client sockets that failed (e.g. ICMP port unreachable from the target) and were dropped. */
  errors: number;
  /** Datagrams dropped: no client socket (pending queue full, socket gone). */
  dropped: number;
}

/** One UDP client: its own socket connected to the target, so only the target's replies come back. */
interface UdpClient {
  key: string;
  clients: Map<string, UdpClient>;
  sock: UdpSocket;
  timer: NodeJS.Timeout | null;
  connected: boolean;
  closed: boolean;
  pending: Buffer[];
}

export class LocalhostProxy {
  private readonly servers: Server[] = [];
  private readonly udp = new Set<UdpSocket>();
  /** Every UDP client of every listener, least recently active first. */
  private readonly udpClients = new Set<UdpClient>();
  private readonly sockets = new Set<Socket>();
  private readonly udpIdleMs: number;
  private readonly udpMaxClients: number;
  private readonly stats = { created: 0, evicted: 0, expired: 0, errors: 0, dropped: 0 };

  constructor(
    private readonly log: Logger,
    opts: ProxyOptions = {},
  ) {
    this.udpIdleMs = opts.udpIdleMs ?? UDP_IDLE_MS;
    this.udpMaxClients = opts.udpMaxClients ?? UDP_MAX_CLIENTS;
  }

  async start(targets: ProxyTarget[]): Promise<void> {
    for (const t of targets) {
      if (t.proto === 'tcp') await this.startTcp(t);
      else await this.startUdp(t);
    }
  }

  udpStats(): UdpProxyStats {
    return { clients: this.udpClients.size, sockets: this.udp.size, ...this.stats };
  }

  private startTcp(t: ProxyTarget): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(t.toPort, t.toAddress);
      this.sockets.add(client);
      this.sockets.add(upstream);
      const done = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', done).on('close', done);
      upstream.on('error', done).on('close', done);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    this.servers.push(server);
    const lo = loopbackFor(t);
    return new Promise((resolve, reject) => {
      server.once('error', (err) => reject(new Error(`localhost proxy: cannot listen on ${lo.shown}:${t.listenPort}/tcp: ${err.message}`)));
      server.listen({ port: t.listenPort, host: lo.host, ipv6Only: lo.udp === 'udp6' }, () => {
        this.log.info({ listen: `${lo.shown}:${t.listenPort}/tcp`, to: endpoint(t.toAddress, t.toPort) }, 'localhost proxy listening');
        resolve();
      });
    });
  }

  private startUdp(t: ProxyTarget): Promise<void> {
    const lo = loopbackFor(t);
    const front = createSocket({ type: lo.udp, ipv6Only: lo.udp === 'udp6' });
    this.udp.add(front);
    const clients = new Map<string, UdpClient>();
    front.on('message', (msg, rinfo) => {
      const key = endpoint(rinfo.address, rinfo.port);
      const c = clients.get(key) ?? this.newUdpClient(t, front, clients, key, rinfo.address, rinfo.port);
      this.armIdle(c);
      if (c.connected) this.sendSafely(c, msg);
      else if (c.pending.length < UDP_PENDING_MAX) c.pending.push(msg);
      else this.stats.dropped++;
    });
    return new Promise((resolve, reject) => {
      front.once('error', (err) => reject(new Error(`localhost proxy: cannot bind ${lo.shown}:${t.listenPort}/udp: ${err.message}`)));
      front.bind(t.listenPort, lo.host, () => {
        front.on('error', (err) => this.log.warn({ listen: `${lo.shown}:${t.listenPort}/udp`, err: err.message }, 'localhost proxy: UDP listener error'));
        this.log.info({ listen: `${lo.shown}:${t.listenPort}/udp`, to: endpoint(t.toAddress, t.toPort) }, 'localhost proxy listening');
        resolve();
      });
    });
  }

  private newUdpClient(t: ProxyTarget, front: UdpSocket, clients: Map<string, UdpClient>, key: string, address: string, port: number): UdpClient {
    for (const oldest of this.udpClients) {
      if (this.udpClients.size < this.udpMaxClients) break;
      this.stats.evicted++;
      this.dropUdpClient(oldest);
    }
    const sock = createSocket(loopbackFor(t).udp);
    const c: UdpClient = { key, clients, sock, timer: null, connected: false, closed: false, pending: [] };
    this.udp.add(sock);
    this.udpClients.add(c);
    clients.set(key, c);
    this.stats.created++;
    sock.on('message', (reply) => {
      if (c.closed) return;
      this.armIdle(c);
      try {
        front.send(reply, port, address, (err) => {
          if (err) this.stats.dropped++;
        });
      } catch {
        this.stats.dropped++; // the listener is closed (stopping)
      }
    });
    sock.on('error', (err) => {
      if (c.closed) return;
      this.stats.errors++;
      this.log.debug({ client: key, to: endpoint(t.toAddress, t.toPort), err: err.message }, 'localhost proxy: UDP client socket failed; dropped');
      this.dropUdpClient(c);
    });
    sock.on('close', () => this.dropUdpClient(c));
    sock.connect(t.toPort, t.toAddress, () => {
      if (c.closed) return;
      c.connected = true;
      for (const m of c.pending.splice(0)) this.sendSafely(c, m);
    });
    return c;
  }

  /** Activity: the client becomes the most recent (udpClients is in activity order) and its idle timer restarts. */
  private armIdle(c: UdpClient): void {
    this.udpClients.delete(c);
    this.udpClients.add(c);
    if (c.timer !== null) c.timer.refresh();
    else
      c.timer = setTimeout(() => {
        this.stats.expired++;
        this.dropUdpClient(c);
      }, this.udpIdleMs);
  }

  private sendSafely(c: UdpClient, msg: Buffer): void {
    if (c.closed) {
      this.stats.dropped++;
      return;
    }
    const failed = () => {
      this.stats.dropped++;
      if (!c.closed) this.stats.errors++;
      this.dropUdpClient(c);
    };
    try {
      c.sock.send(msg, (err) => {
        if (err) failed(); // e.g. ECONNREFUSED left by an ICMP error
      });
    } catch {
      failed(); // the socket was closed behind our back
    }
  }

  /** Forget a client: out of its listener's map, timer cleared, socket closed and out of the list. Idempotent. */
  private dropUdpClient(c: UdpClient): void {
    if (c.closed) return;
    c.closed = true;
    c.pending.length = 0;
    if (c.timer !== null) clearTimeout(c.timer);
    c.timer = null;
    if (c.clients.get(c.key) === c) c.clients.delete(c.key);
    this.udpClients.delete(c);
    this.udp.delete(c.sock);
    try {
      c.sock.close();
    } catch {
      /* already closed */
    }
  }

  async stop(): Promise<void> {
    for (const c of [...this.udpClients]) this.dropUdpClient(c);
    for (const s of this.sockets) s.destroy();
    for (const u of this.udp) {
      try {
        u.close();
      } catch {
        /* closed */
      }
    }
    this.udp.clear();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
