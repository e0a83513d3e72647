/*
 * Main-thread handle on the data-plane worker: start it with the opened devices, call
 * its API by message (promise per call, with a timeout), stop it (bounded: a stop message,
 * terminate() after a grace period, and never an unbounded wait for the exit).
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { HttpError } from './server.js';
import type { DataPlaneSpec } from '../dataplane/spec.js';
import type { FromWorker, WorkerData } from '../dataplane/messages.js';

/** How long the worker gets to stop by itself before it is terminated (and again after that). */
export const STOP_GRACE_MS = 400;

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
  /** The message of the exception it died of, when it said. */
  fatalMessage: string | null = null;
  /** Worker messages other than ready/reply/log (e.g. capture stream chunks, src/experiments). */
  onMessage: (m: { type: string }) => void = () => {};

  /** `workerUrl`: the worker's entry point (tests pass stand-ins that misbehave). */
  constructor(
    readonly log: Logger,
    private readonly workerUrl: URL = new URL('../dataplane/worker.js', import.meta.url),
  ) {}

  start(spec: DataPlaneSpec): Promise<void> {
    return new Promise((resolve, reject) => {
      const data: WorkerData = { spec };
      const w = new Worker(this.workerUrl, { workerData: data });
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
          this.fatalMessage = m.message;
          this.log.error({ stack: m.stack }, `data-plane crash: ${m.message}`);
        } else this.onMessage(m);
      });
      w.on('error', (err) => {
        this.crashed = true;
        this.fatalMessage ??= err.message;
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

  /**
   * Ask the worker to stop; terminate it after `graceMs`; give up waiting `graceMs` after
   * that. Never waits forever: resolves with how the worker ended.
   */
  async stop(graceMs = STOP_GRACE_MS): Promise<'stopped' | 'terminated' | 'gone' | 'abandoned'> {
    const w = this.worker;
    if (w === null) return 'gone';
    const exited = new Promise<void>((r) => w.once('exit', () => r()));
    const within = (ms: number) => Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);
    try {
      w.postMessage({ type: 'stop' });
    } catch {
      /* its port is already closed */
    }
    if (await within(graceMs)) return 'stopped';
    this.log.warn({ graceMs }, 'data-plane worker did not stop in time; terminating it');
    void w.terminate().catch(() => {});
    if (await within(graceMs)) return 'terminated';
    this.log.error({ graceMs }, 'data-plane worker did not exit after terminate(); giving up on it');
    this.worker = null;
    w.unref(); // it must not keep the process alive either
    return 'abandoned';
  }
}
