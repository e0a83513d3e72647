/*
 * Localhost publishing: a small userspace proxy, like docker-proxy, so that
 * 127.0.0.1:PORT in tapbridge's namespace reaches a published service. TCP connections
 * are piped; UDP datagrams are relayed through one socket per client with an idle timeout.
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

const UDP_IDLE_MS = 30_000;

export class LocalhostProxy {
  private readonly servers: Server[] = [];
  private readonly udp: UdpSocket[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly log: Logger) {}

  async start(targets: ProxyTarget[]): Promise<void> {
    for (const t of targets) {
      if (t.proto === 'tcp') await this.startTcp(t);
      else await this.startUdp(t);
    }
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
    return new Promise((resolve, reject) => {
      server.once('error', (err) => reject(new Error(`localhost proxy: cannot listen on 127.0.0.1:${t.listenPort}/tcp: ${err.message}`)));
      server.listen(t.listenPort, '127.0.0.1', () => {
        this.log.info({ listen: `127.0.0.1:${t.listenPort}/tcp`, to: `${t.toAddress}:${t.toPort}` }, 'localhost proxy listening');
        resolve();
      });
    });
  }

  private startUdp(t: ProxyTarget): Promise<void> {
    const front = createSocket('udp4');
    this.udp.push(front);
    const clients = new Map<string, { sock: UdpSocket; timer: NodeJS.Timeout }>();
    front.on('message', (msg, rinfo) => {
      const key = `${rinfo.address}:${rinfo.port}`;
      let c = clients.get(key);
      if (c === undefined) {
        const sock = createSocket('udp4');
        this.udp.push(sock);
        sock.on('message', (reply) => front.send(reply, rinfo.port, rinfo.address));
        sock.on('error', () => sock.close());
        const entry = { sock, timer: setTimeout(() => {}, 0) };
        c = entry;
        clients.set(key, entry);
      }
      const entry = c;
      clearTimeout(entry.timer);
      this.timers.delete(entry.timer);
      entry.timer = setTimeout(() => {
        clients.delete(key);
        entry.sock.close();
        this.timers.delete(entry.timer);
      }, UDP_IDLE_MS);
      this.timers.add(entry.timer);
      entry.sock.send(msg, t.toPort, t.toAddress);
    });
    return new Promise((resolve, reject) => {
      front.once('error', (err) => reject(new Error(`localhost proxy: cannot bind 127.0.0.1:${t.listenPort}/udp: ${err.message}`)));
      front.bind(t.listenPort, '127.0.0.1', () => {
        this.log.info({ listen: `127.0.0.1:${t.listenPort}/udp`, to: `${t.toAddress}:${t.toPort}` }, 'localhost proxy listening');
        resolve();
      });
    });
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    for (const s of this.sockets) s.destroy();
    for (const u of this.udp) {
      try {
        u.close();
      } catch {
        /* closed */
      }
    }
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
