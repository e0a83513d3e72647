/*
 * Entry point of the data-plane worker thread. The control plane (main thread) opens the
 * devices and posts {config, setup}; this thread builds the data plane, polls the fds on
 * its own event loop and answers control requests by message:
 *   main -> worker: { type: 'call', id, method, params } | { type: 'stop' }
 *   worker -> main: { type: 'ready' } | { type: 'reply', id, result } | { type: 'reply', id, error, status }
 *                   | { type: 'log', level, msg, fields } | { type: 'fatal', message }
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ApiError, buildDataPlane } from './dataplane.js';
import { onWorkerMessage } from '../experiments/api.js';
import type { Config } from '../config/schema.js';
import type { SetupResult } from '../lab/setup.js';

interface CallMessage {
  type: 'call';
  id: number;
  method: string;
  params: Record<string, unknown>;
}

const port = parentPort!;
const { config, setup } = workerData as { config: Config; setup: SetupResult };
const post = (message: unknown, transfer?: ArrayBuffer[]) => port.postMessage(message, transfer);
const dp = buildDataPlane(config, setup, post);
dp.engine.onFatal = (message) => port.postMessage({ type: 'log', level: 'error', msg: message, fields: {} });

port.on('message', (m: CallMessage | { type: 'stop' } | { type: string }) => {
  if (m.type === 'stop') {
    dp.stop();
    port.close();
    return;
  }
  if (m.type !== 'call') {
    onWorkerMessage({ engine: dp.engine, post }, m);
    return;
  }
  if (!('id' in m) || !('method' in m)) return;
  const method = Object.hasOwn(dp.api, m.method) ? dp.api[m.method] : undefined;
  try {
    if (method === undefined) throw new ApiError(404, `unknown method '${m.method}'`);
    port.postMessage({ type: 'reply', id: m.id, result: method(m.params ?? {}) });
  } catch (err) {
    const status = err instanceof ApiError ? err.status : 500;
    port.postMessage({ type: 'reply', id: m.id, error: (err as Error).message, status });
  }
});
port.postMessage({ type: 'ready' });
