/* Client side of the control API: HTTP over the instance's unix socket. */
import { request } from 'node:http';
import { existsSync, readdirSync } from 'node:fs';
import { RUN_DIR, SYSTEM_RUN_DIR, userRunDir } from '../lab/resources.js';

export class ClientError extends Error {
  constructor(
    message: string,
    readonly status = 0,
  ) {
    super(message);
  }
}

/**
 * The directories an instance may live in, in order: TAPBRIDGE_RUN_DIR alone when set, else
 * this user's default (RUN_DIR), root's /run/tapbridge and the user's own runtime directory
 * (a rootless instance's, $XDG_RUNTIME_DIR/tapbridge), so `ctl` finds either without flags.
 */
function runDirs(): string[] {
  return process.env.TAPBRIDGE_RUN_DIR !== undefined ? [RUN_DIR] : [...new Set([RUN_DIR, SYSTEM_RUN_DIR, userRunDir()])];
}

/**
 * An instance's file with this suffix (.sock, .agent): the named instance's, else the only
 * one in the first directory of runDirs() that has any. `undefined` when a named one is missing.
 */
export function findInstanceFile(suffix: string, instance?: string): string | undefined {
  const dirs = runDirs();
  if (instance !== undefined) return dirs.map((d) => `${d}/${instance}${suffix}`).find((f) => existsSync(f));
  for (const dir of dirs) {
    const found = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(suffix)) : [];
    if (found.length === 1) return `${dir}/${found[0]}`;
    if (found.length > 1) throw new ClientError(`several instances are running (${found.map((s) => s.slice(0, -suffix.length)).join(', ')}): pick one with --instance`);
  }
  return undefined;
}

/** The socket to talk to: --socket, else --instance, else the only instance running (see runDirs). */
export function resolveSocket(opts: { socket?: string; instance?: string }): string {
  if (opts.socket !== undefined) return opts.socket;
  const found = findInstanceFile('.sock', opts.instance);
  if (found !== undefined) return found;
  if (opts.instance !== undefined) return `${RUN_DIR}/${opts.instance}.sock`;
  throw new ClientError(`no running tapbridge instance found in ${runDirs().join(' or ')} (start one with 'tapbridge run', or pass --socket)`);
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
