/*
 * Control API: HTTP + JSON over a unix socket (like Docker's), mode 0600.
 * Every route maps to one data-plane API call (or a control-plane handler). Bad requests
 * get a 4xx with {"error": "..."}; nothing a client sends can crash the process. A body
 * over MAX_BODY (1 MiB) gets 413 and the connection is closed: the rest is not read.
 * The route table is the documentation: GET /v1 lists it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { chmodSync, chownSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { connect } from 'node:net';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface RouteContext {
  params: Record<string, string>;
  query: URLSearchParams;
  body: Record<string, unknown>;
  req: IncomingMessage;
  res: ServerResponse;
}

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string; // e.g. /v1/ports/:port/link
  summary: string;
  /** Returns the JSON answer; or handles `res` itself (streaming) and returns undefined after setting ctx.res.headersSent. */
  handler: (ctx: RouteContext) => Promise<unknown> | unknown;
}

interface CompiledRoute extends Route {
  re: RegExp;
  names: string[];
}

const MAX_BODY = 1 << 20;

function compile(r: Route): CompiledRoute {
  const names: string[] = [];
  const re = new RegExp(
    '^' + r.path.replace(/:([a-zA-Z]+)/g, (_m, n: string) => {
      names.push(n);
      return '([^/]+)';
    }) + '$',
  );
  return { ...r, re, names };
}

/** An over-limit body: answered with 413 and the connection closed once the answer is out. */
class BodyTooLarge extends HttpError {
  constructor() {
    super(413, `request body too large (the limit is ${MAX_BODY} bytes)`);
  }
}

/** After a 413 the rest of the body is not read: the socket goes this long after the answer at the latest. */
const CLOSE_AFTER_413_MS = 1000;

function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_BODY) return reject(new BodyTooLarge());
    let size = 0;
    const chunks: Buffer[] = [];
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        req.off('data', onData);
        chunks.length = 0;
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.on('end', () => {
      if (size > MAX_BODY) return;
      if (size === 0) return resolve({});
      try {
        const v: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
        resolve(v as Record<string, unknown>);
      } catch (err) {
        reject(new HttpError(400, `malformed JSON body: ${(err as Error).message}`));
      }
    });
    req.on('error', reject);
  });
}

/**
 * Answer an error. After a 413 the connection is closed (`connection: close`), and the
 * socket is destroyed shortly after the answer went out, whatever the client still sends.
 */
function sendError(req: IncomingMessage, res: ServerResponse, err: unknown): void {
  const status = typeof (err as { status?: unknown }).status === 'number' ? (err as { status: number }).status : 500;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err instanceof BodyTooLarge) {
    res.setHeader('connection', 'close');
    res.once('finish', () => setTimeout(() => req.socket.destroy(), CLOSE_AFTER_413_MS).unref());
  }
  send(res, status, { error: (err as Error).message });
}

export class ControlServer {
  private server: Server | null = null;
  private readonly routes: CompiledRoute[] = [];

  constructor(readonly socketPath: string) {}

  add(routes: Route[]): void {
    for (const r of routes) this.routes.push(compile(r));
  }

  describe(): { method: string; path: string; summary: string }[] {
    return this.routes.map((r) => ({ method: r.method, path: r.path, summary: r.summary }));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://tapbridge');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    let pathMatched = false;
    for (const r of this.routes) {
      const m = r.re.exec(path);
      if (m === null) continue;
      pathMatched = true;
      if (r.method !== req.method) continue;
      const params: Record<string, string> = {};
      r.names.forEach((n, i) => (params[n] = decodeURIComponent(m[i + 1])));
      const body = req.method === 'GET' ? {} : await readBody(req);
      const result = await r.handler({ params, query: url.searchParams, body, req, res });
      if (!res.headersSent) send(res, 200, result ?? { ok: true });
      return;
    }
    throw new HttpError(pathMatched ? 405 : 404, pathMatched ? `method ${req.method} not allowed on ${path}` : `no such endpoint: ${path} (GET /v1 lists them)`);
  }

  async listen(): Promise<void> {
    mkdirSync(dirname(this.socketPath), { recursive: true, mode: 0o755 });
    if (existsSync(this.socketPath)) {
      if (await socketAnswers(this.socketPath)) throw new Error(`control socket ${this.socketPath} is in use by a running instance`);
      rmSync(this.socketPath, { force: true });
    }
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => sendError(req, res, err));
    });
    // `Expect: 100-continue` with a declared body over the limit: 413 at once, no 100 first
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      if (Number(req.headers['content-length'] ?? 0) > MAX_BODY) return sendError(req, res, new BodyTooLarge());
      res.writeContinue();
      server.emit('request', req, res);
    });
    this.server = server;
    const oldMask = process.umask(0o177); // the socket is born 0600: no window where others could connect
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.socketPath, () => resolve());
      });
    } finally {
      process.umask(oldMask);
    }
    chmodSync(this.socketPath, 0o600);
  }

  /** Hand the socket to another user (still 0600: that user and root may connect). */
  chown(uid: number, gid: number): void {
    chownSync(this.socketPath, uid, gid);
  }

  /** Remove the socket file (first: no new client finds it), drop every connection, close. */
  async close(): Promise<void> {
    const s = this.server;
    if (s === null) return; // never listened: the socket path may be another instance's
    this.server = null;
    try {
      rmSync(this.socketPath, { force: true });
    } catch {
      /* without privileges (--user) the directory is not ours: the supervisor removes it */
    }
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}

export function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 1) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
