/*
 * The lab's small servers, run inside a namespace by `ip netns exec NS node service.js`:
 *   --http PORT      answers every request with "hello from <ns>, you are <client ip>:<port>"
 *   --udp-echo PORT  echoes datagrams prefixed with "echo from <ns> to <client>: "
 * The reply names the client address so NAT behaviour (source kept or masqueraded) is visible.
 * Both families are served, on separate sockets (IPv6-only beside 0.0.0.0), so an IPv4 client
 * is shown as a.b.c.d:port and an IPv6 one as [addr]:port.
 */
import { createServer } from 'node:http';
import { createSocket } from 'node:dgram';

const args = process.argv.slice(2);
const ns = process.env.TAPBRIDGE_NS ?? 'lab';

function endpoint(address: string | undefined, port: number | undefined): string {
  return address?.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

function serveHttp(port: number, host: string): void {
  const srv = createServer((req, res) => {
    const body = `hello from ${ns}, you are ${endpoint(req.socket.remoteAddress, req.socket.remotePort)}\n`;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  srv.on('error', (err) => {
    if (host !== '::') throw err; // no IPv6 in this namespace: IPv4 only
  });
  srv.listen({ port, host, ipv6Only: host === '::' });
}

function serveUdpEcho(port: number, type: 'udp4' | 'udp6'): void {
  const s = createSocket({ type, ipv6Only: type === 'udp6' });
  s.on('message', (msg, rinfo) => {
    s.send(Buffer.concat([Buffer.from(`echo from ${ns} to ${endpoint(rinfo.address, rinfo.port)}: `), msg]), rinfo.port, rinfo.address);
  });
  s.on('error', () => s.close()); // no IPv6 in this namespace: IPv4 only
  s.bind(port, type === 'udp6' ? '::' : '0.0.0.0');
}

for (let i = 0; i < args.length; i += 2) {
  const port = Number(args[i + 1]);
  if (args[i] === '--http') {
    serveHttp(port, '0.0.0.0');
    serveHttp(port, '::');
  } else if (args[i] === '--udp-echo') {
    serveUdpEcho(port, 'udp4');
    serveUdpEcho(port, 'udp6');
  }
}
process.on('SIGTERM', () => process.exit(0));
