/* Client side of the control API: HTTP over the instance's unix socket. */
import { request } from 'node:http';
import { existsSync, readdirSync } from 'node:fs';
import { RUN_DIR } from '../lab/resources.js';

export class ClientError extends Error {
  constructor(
    message: string,
    readonly status = 0,
  ) {
    super(message);
  }
}

/** The socket to talk to: --socket, else --instance, else the only instance running. */
export function resolveSocket(opts: { socket?: string; instance?: string }): string {
  if (opts.socket !== undefined) return opts.socket;
  if (opts.instance !== undefined) return `${RUN_DIR}/${opts.instance}.sock`;
  const socks = existsSync(RUN_DIR) ? readdirSync(RUN_DIR).filter((f) => f.endsWith('.sock')) : [];
  if (socks.length === 1) return `${RUN_DIR}/${socks[0]}`;
  if (socks.length === 0) throw new ClientError(`no running tapbridge instance found in ${RUN_DIR} (start one with 'tapbridge run', or pass --socket)`);
  throw new ClientError(`several instances are running (${socks.map((s) => s.replace(/\.sock$/, '')).join(', ')}): pick one with --instance`);
}

export function apiRequest(socketPath: string, method: string, path: string, body?: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      { socketPath, method, path, headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            /* not JSON */
          }
          if ((res.statusCode ?? 500) >= 400) {
            const msg = typeof parsed === 'object' && parsed !== null && 'error' in parsed ? String((parsed as { error: unknown }).error) : text;
            reject(new ClientError(msg, res.statusCode));
          } else resolve(parsed);
        });
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED')
        reject(new ClientError(`cannot reach tapbridge at ${socketPath} (${err.code}): is it running?`));
      else if (err.code === 'EACCES') reject(new ClientError(`permission denied on ${socketPath}: the socket is 0600, run as the user that started tapbridge (sudo)`));
      else reject(err);
    });
    req.setTimeout(10000, () => req.destroy(new Error('control request timed out')));
    if (payload) req.write(payload);
    req.end();
  });
}

/** Aligned text table: header row then one row per record. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells: (string | number)[]) =>
    cells
      .map((c, i) => (typeof c === 'number' ? String(c).padStart(widths[i]) : String(c).padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}
