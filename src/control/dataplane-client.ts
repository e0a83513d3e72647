/*
 * Main-thread handle on the data-plane worker: start it with the opened devices, call
 * its API by message (promise per call, with a timeout), stop it.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { HttpError } from './server.js';
import type { DataPlaneSpec } from '../dataplane/spec.js';
import type { FromWorker, WorkerData } from '../dataplane/messages.js';

export class CallError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A data-plane call whose errors become HTTP errors with the same status (control routes). */
export function httpCaller(dp: DataPlaneWorker): (method: string, params?: Record<string, unknown>) => Promise<unknown> {
  return async (method, params = {}) => {
    try {
      return await dp.call(method, params);
    } catch (err) {
      if (err instanceof CallError) throw new HttpError(err.status, err.message);
      throw err;
    }
  };
}

export class DataPlaneWorker {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  onExit: (code: number) => void = () => {};
  /** The data plane died of an exception (its message and stack were logged). */
  crashed = false;
  /** Worker messages other than ready/reply/log (e.g. capture stream chunks, src/experiments). */
  onMessage: (m: { type: string }) => void = () => {};

  constructor(readonly log: Logger) {}

  start(spec: DataPlaneSpec): Promise<void> {
    return new Promise((resolve, reject) => {
      const data: WorkerData = { spec };
      const w = new Worker(new URL('../dataplane/worker.js', import.meta.url), { workerData: data });
      this.worker = w;
      let ready = false;
      w.on('message', (m: FromWorker) => {
        if (m.type === 'ready') {
          ready = true;
          resolve();
        } else if (m.type === 'reply') {
          const p = this.pending.get(m.id);
          if (p === undefined) return;
          this.pending.delete(m.id);
          clearTimeout(p.timer);
          if (m.error !== undefined) p.reject(new CallError(m.status ?? 500, m.error));
          else p.resolve(m.result);
        } else if (m.type === 'log') {
          this.log[m.level](m.fields, m.msg);
        } else if (m.type === 'fatal') {
          this.crashed = true;
          this.log.error({ stack: m.stack }, `data-plane crash: ${m.message}`);
        } else this.onMessage(m);
      });
      w.on('error', (err) => {
        this.crashed = true;
        this.log.error({ err }, 'data-plane worker failed');
        if (!ready) reject(err);
      });
      w.on('exit', (code) => {
        this.worker = null;
        for (const p of this.pending.values()) {
          clearTimeout(p.timer);
          p.reject(new CallError(503, 'data plane stopped'));
        }
        this.pending.clear();
        if (!ready) reject(new Error(`data-plane worker exited during start (code ${code})`));
        this.onExit(code);
      });
    });
  }

  call(method: string, params: Record<string, unknown> = {}, timeoutMs = 5000): Promise<unknown> {
    const w = this.worker;
    if (w === null) return Promise.reject(new CallError(503, 'data plane not running'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new CallError(504, `data plane did not answer '${method}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      w.postMessage({ type: 'call', id, method, params });
    });
  }

  /** Send a message that is not a call (e.g. a stream ack); dropped when the worker is gone. */
  post(message: { type: string }): void {
    this.worker?.postMessage(message);
  }

  async stop(): Promise<void> {
    const w = this.worker;
    if (w === null) return;
    const exited = new Promise<void>((r) => w.once('exit', () => r()));
    w.postMessage({ type: 'stop' });
    const timer = setTimeout(() => void w.terminate(), 2000);
    await exited;
    clearTimeout(timer);
  }
}
