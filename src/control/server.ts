/*
 * Control API: HTTP + JSON over a unix socket (like Docker's), mode 0600.
 * Every route maps to one data-plane API call (or a control-plane handler). Bad requests
 * get a 4xx with {"error": "..."}; nothing a client sends can crash the process.
 * The route table is the documentation: GET /v1 lists it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { chmodSync, existsSync, mkdirSync, rmSync } from 'node:fs';
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

function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new HttpError(413, 'request body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
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
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        const status = typeof (err as { status?: unknown }).status === 'number' ? (err as { status: number }).status : 500;
        if (!res.headersSent) send(res, status, { error: (err as Error).message });
        else res.destroy();
      });
    });
    const server = this.server;
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

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s !== null) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
    rmSync(this.socketPath, { force: true });
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
