/*
 * What crosses the thread boundary: the worker's start data, the messages between the
 * control plane (main thread) and the data-plane worker, and the answers of the data
 * plane's API methods. Plain data only.
 *
 *   main -> worker   { type: 'call', id, method, params }  an API call (api.ts)
 *                    { type: 'stop' }
 *                    { type: 'capture_ack', token, bytes } | { type: 'capture_client_gone', token, reason }
 *   worker -> main   { type: 'ready' } | { type: 'reply', id, result } | { type: 'reply', id, error, status }
 *                    { type: 'log', level, msg, fields } | { type: 'fatal', message, stack }
 *                    { type: 'capture_chunk', token, id, data } | { type: 'capture_end', token, id, reason, info }
 */
import type { CounterSnapshot } from '../core/counters.js';
import type { PortKind } from '../core/element.js';
import type { DataPlaneSpec } from './spec.js';

export interface WorkerData {
  spec: DataPlaneSpec;
}

export interface CallMessage {
  type: 'call';
  id: number;
  method: string;
  params: Record<string, unknown>;
}
export interface StopMessage {
  type: 'stop';
}
export interface CaptureAckMessage {
  type: 'capture_ack';
  token: string;
  bytes: number;
}
export interface CaptureClientGoneMessage {
  type: 'capture_client_gone';
  token: string;
  reason: string;
}
export type ToWorker = CallMessage | StopMessage | CaptureAckMessage | CaptureClientGoneMessage;

export interface ReplyMessage {
  type: 'reply';
  id: number;
  result?: unknown;
  error?: string;
  status?: number;
}
export interface LogMessage {
  type: 'log';
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  fields: Record<string, unknown>;
}
export interface FatalMessage {
  type: 'fatal';
  message: string;
  stack?: string;
}
export interface CaptureChunkMessage {
  type: 'capture_chunk';
  token: string;
  id: number;
  data: ArrayBuffer;
}
export interface CaptureEndMessage {
  type: 'capture_end';
  token: string;
  id: number;
  reason: string;
  info: unknown;
}
export type FromWorker = { type: 'ready' } | ReplyMessage | LogMessage | FatalMessage | CaptureChunkMessage | CaptureEndMessage;

/* ---- API answers ---- */

export interface PortInfo {
  name: string;
  kind: PortKind;
  bridge: string | null;
  ifname: string;
  mac: string;
  up: boolean;
  offload: boolean;
  macs: number;
  counters: CounterSnapshot;
}

export interface BridgeInfo {
  name: string;
  ports: string[];
  macs: number;
  macTableSize: number;
  agingSeconds: number;
  forwarded: number;
  flooded: number;
  learned: number;
  moved: number;
  aged: number;
  learnRefused: number;
  learnRefusedPortLimit: number;
  /** Most MACs one port may have (0: no limit). */
  macLimitPerPort: number;
  /** Entries evicted to learn a newcomer (table or port share full). */
  evicted: number;
  /** Frames dropped because their source MAC belongs to a port that keeps its MACs. */
  moveRefused: number;
}

export interface FdbRow {
  bridge: string;
  mac: string;
  port: string;
  ageSeconds: number;
  type: 'static' | 'learned';
}
