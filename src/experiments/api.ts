/* Worker-side API of the experiment features (captures, faults). Filled in by issue 4. */
import type { Engine } from '../engine/engine.js';
import type { ApiMethod } from '../engine/dataplane.js';
import type { Config } from '../config/schema.js';

/** Posts a message to the control plane (e.g. capture stream chunks). */
export type PostToMain = (message: unknown, transfer?: ArrayBuffer[]) => void;

export interface ExperimentContext {
  engine: Engine;
  post: PostToMain;
  /** The whole validated config; `config.experiment` is applied when the API is built. */
  config?: Config;
}

export function experimentApi(_ctx: ExperimentContext): Record<string, ApiMethod> {
  return {};
}

/** Messages the main thread sends to the worker besides API calls (e.g. stream acks). */
export function onWorkerMessage(_ctx: ExperimentContext, _message: { type: string }): boolean {
  return false;
}
