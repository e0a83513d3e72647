/*
 * Entry point of the data-plane worker thread. The control plane opens the devices and posts
 * the data-plane spec (messages.ts); this thread builds the engine and its graph, polls the
 * fds on its own event loop and answers control requests by message. An exception that
 * escapes the data path is reported with its stack ({type:'fatal'}) before the worker dies,
 * so the control plane can log it, clean up and exit non-zero.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { applyExperiment, dataPlaneApi, onStreamMessage } from './api.js';
import { native } from '../io/native.js';
import { Engine } from './engine.js';
import { attachServices } from './services.js';
import { ApiError } from './errors.js';
import type { FromWorker, ToWorker, WorkerData } from './messages.js';

const port = parentPort!;
const send = (m: FromWorker, transfer?: ArrayBuffer[]) => port.postMessage(m, transfer);

process.on('uncaughtException', (err) => {
  send({ type: 'fatal', message: err.message, stack: err.stack });
  process.exit(1);
});

const { spec } = workerData as WorkerData;
// This thread polls the fds: pin it and set its busy poll before the first read.
if (spec.poll?.cpus !== undefined) native.setAffinity(spec.poll.cpus);
native.setBusyPoll(spec.poll?.busyMicros ?? 0);
const engine = new Engine(spec);
engine.onFatal = (message) => send({ type: 'log', level: 'error', msg: message, fields: {} });
const api = dataPlaneApi(engine, (m, t) => port.postMessage(m, t));
applyExperiment(engine, api);
attachServices(engine, (level, msg, fields = {}) => send({ type: 'log', level, msg, fields }));
engine.start();

port.on('message', (m: ToWorker) => {
  if (m.type === 'stop') {
    engine.stop();
    port.close();
    return;
  }
  if (m.type !== 'call') {
    onStreamMessage(api, m);
    return;
  }
  const method = Object.hasOwn(api.methods, m.method) ? api.methods[m.method] : undefined;
  try {
    if (method === undefined) throw new ApiError(404, `unknown method '${m.method}'`);
    send({ type: 'reply', id: m.id, result: method(m.params ?? {}) });
  } catch (err) {
    const status = err instanceof ApiError ? err.status : 500;
    send({ type: 'reply', id: m.id, error: (err as Error).message, status });
  }
});
send({ type: 'ready' });
