/*
 * The lab's small servers, run inside a namespace by `ip netns exec NS node service.js`:
 *   --http PORT      answers every request with "hello from <ns>, you are <client ip>:<port>"
 *   --udp-echo PORT  echoes datagrams prefixed with "echo from <ns> to <client>: "
 * The reply names the client address so NAT behaviour (source kept or masqueraded) is visible.
 */
import { createServer } from 'node:http';
import { createSocket } from 'node:dgram';

const args = process.argv.slice(2);
const ns = process.env.TAPBRIDGE_NS ?? 'lab';
for (let i = 0; i < args.length; i += 2) {
  const port = Number(args[i + 1]);
  if (args[i] === '--http') {
    createServer((req, res) => {
      const body = `hello from ${ns}, you are ${req.socket.remoteAddress}:${req.socket.remotePort}\n`;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    }).listen(port, '0.0.0.0');
  } else if (args[i] === '--udp-echo') {
    const s = createSocket('udp4');
    s.on('message', (msg, rinfo) => {
      s.send(Buffer.concat([Buffer.from(`echo from ${ns} to ${rinfo.address}:${rinfo.port}: `), msg]), rinfo.port, rinfo.address);
    });
    s.bind(port, '0.0.0.0');
  }
}
process.on('SIGTERM', () => process.exit(0));
