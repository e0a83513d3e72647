/*
 * Capture manager (data-plane worker): captures on a port (ingress, egress or both) or on a
 * whole bridge (every frame entering it), to a file or streamed to the control plane.
 *
 * Where a capture sees frames (stated in each pcapng record's comment):
 *   port ingress  as received, before ingress faults  ("ingress, before faults")
 *   port egress   as sent, after egress faults         ("egress, after faults")
 *   bridge        at the bridge's input, after the ingress port's faults
 * Output: a CaptureWriter (src/trace/pcap.ts) whose sink is
 *   file    an fs.WriteStream opened synchronously (so a bad path is a 400 at once);
 *           'drain' resumes a backpressured writer;
 *   stream  chunks posted to the main thread ({type:'capture_chunk', token, data}, the
 *           ArrayBuffer transferred, not copied); the main thread acks bytes once they are
 *           handed to the HTTP client ({type:'capture_ack', token, bytes}). More than
 *           STREAM_WINDOW unacked bytes backpressure the writer, which drops and counts
 *           (droppedBackpressure), so memory stays bounded when the reader is slow.
 * Flushing: staged records are handed to the sink on every engine tick (100 ms) and on stop.
 * Stop reasons: "max_packets reached", "max_bytes reached", "duration reached",
 *   "stopped by user", "client disconnected", "tapbridge stopping", "write error: ...".
 *   A stopped capture stays listed (the last MAX_FINISHED) with its reason; `closed` turns
 *   true once the file is completely written (or the stream ended).
 * Cost when no capture runs: none (the port's `hooked` flag and the bridge's empty tap list).
 */
import { closeSync, createWriteStream, openSync, type WriteStream } from 'node:fs';
import { CaptureWriter } from '../trace/pcap.js';
import { compileFilter } from '../trace/filter.js';
import { CaptureTap, DIR_EGRESS, DIR_INGRESS } from '../engine/hooks.js';
import type { Engine } from '../engine/engine.js';
import type { Port } from '../engine/port.js';
import type { Bridge } from '../switch/bridge.js';
import { ApiError } from '../engine/dataplane-errors.js';
import type { CaptureRequest, Direction } from './schema.js';
import type { FaultManager } from './fault-manager.js';
import type { PostToMain } from './api.js';

export const MAX_ACTIVE_CAPTURES = 16;
export const MAX_FINISHED = 32;
/** Unacknowledged stream bytes before the writer is backpressured. */
export const STREAM_WINDOW = 4 << 20;
/** Resume a backpressured stream below this many unacknowledged bytes. */
export const STREAM_RESUME = 1 << 20;

export const COMMENT_INGRESS = 'ingress, before faults';
export const COMMENT_EGRESS = 'egress, after faults';
export const COMMENT_BRIDGE = 'bridge input, after ingress faults';

export interface CaptureInfo {
  id: number;
  target: string;
  port: string | null;
  bridge: string | null;
  direction: Direction;
  filter: string | null;
  format: 'pcap' | 'pcapng';
  snaplen: number;
  file: string | null;
  stream: boolean;
  maxPackets: number | null;
  maxBytes: number | null;
  durationSeconds: number | null;
  startedAt: string;
  state: 'running' | 'stopping' | 'stopped';
  stopReason: string | null;
  closed: boolean;
  packets: number;
  bytes: number;
  droppedBackpressure: number;
  sees: string;
}

interface Capture {
  id: number;
  port: Port | null;
  bridge: Bridge | null;
  req: CaptureRequest;
  direction: Direction;
  format: 'pcap' | 'pcapng';
  writer: CaptureWriter;
  tap: CaptureTap;
  file: WriteStream | null;
  token: string | null;
  inFlight: number;
  startedAt: number;
  deadline: number;
  closed: boolean;
  writeError: string | null;
}

export class CaptureManager {
  private readonly active = new Map<number, Capture>();
  private readonly finished: Capture[] = [];
  private nextId = 1;

  constructor(
    private readonly engine: Engine,
    private readonly faults: FaultManager,
    private readonly post: PostToMain,
  ) {}

  get activeCount(): number {
    return this.active.size;
  }

  start(req: CaptureRequest): CaptureInfo {
    if (this.active.size >= MAX_ACTIVE_CAPTURES) throw new ApiError(409, `${MAX_ACTIVE_CAPTURES} captures are running already; stop one first`);
    let port: Port | null = null;
    let bridge: Bridge | null = null;
    if (req.bridge !== undefined || req.target?.startsWith('bridge:')) {
      const name = req.bridge ?? req.target!.slice('bridge:'.length);
      bridge = this.engine.bridge(name) ?? null;
      if (bridge === null) throw new ApiError(404, `no bridge named '${name}'`);
    } else {
      const name = (req.port ?? req.target)!;
      if (req.port === undefined && this.engine.port(name) === undefined && this.engine.bridge(name) !== undefined) bridge = this.engine.bridge(name)!;
      else port = this.faults.hookablePort(name);
    }
    if (bridge !== null && req.direction === 'egress') throw new ApiError(400, 'direction: a bridge capture sees frames entering the bridge; use ingress or both');
    const format = req.format ?? (req.file?.toLowerCase().endsWith('.pcapng') ? 'pcapng' : 'pcap');
    let filter = null;
    if (req.filter !== undefined && req.filter.trim() !== '') {
      try {
        filter = compileFilter(req.filter);
      } catch (err) {
        throw new ApiError(400, `filter: ${(err as Error).message}`);
      }
    }

    const id = this.nextId++;
    let fd = -1;
    if (req.file !== undefined) {
      try {
        fd = openSync(req.file, 'w', 0o644);
      } catch (err) {
        throw new ApiError(400, `file: cannot open ${req.file}: ${(err as Error).message}`);
      }
    }
    const comments = bridge !== null ? [COMMENT_BRIDGE] : [COMMENT_INGRESS, COMMENT_EGRESS];
    const cap = {} as Capture;
    let writer: CaptureWriter;
    try {
      writer = new CaptureWriter(
        {
          format,
          snaplen: req.snaplen,
          maxPackets: req.maxPackets,
          maxBytes: req.maxBytes,
          interfaces: [bridge !== null ? bridge.name : port!.name],
          comments: format === 'pcapng' ? comments : [],
          tsOffsetMs: Date.now() - performance.now(),
          onStop: (reason) => this.onWriterStop(cap, reason),
        },
        (chunk) => this.sink(cap, chunk),
      );
    } catch (err) {
      if (fd >= 0) closeSync(fd);
      throw new ApiError(400, (err as Error).message);
    }
    const dirs = bridge !== null ? DIR_INGRESS : req.direction === 'ingress' ? DIR_INGRESS : req.direction === 'egress' ? DIR_EGRESS : DIR_INGRESS | DIR_EGRESS;
    const pcapng = format === 'pcapng';
    const tap = new CaptureTap(id, writer, filter, dirs, 0, pcapng ? 0 : -1, pcapng && bridge === null ? 1 : -1);
    Object.assign(cap, {
      id,
      port,
      bridge,
      req,
      direction: bridge !== null ? 'ingress' : req.direction,
      format,
      writer,
      tap,
      file: null,
      token: req.streamToken ?? null,
      inFlight: 0,
      startedAt: Date.now(),
      deadline: req.durationSeconds !== undefined ? performance.now() + req.durationSeconds * 1000 : Infinity,
      closed: false,
      writeError: null,
    } satisfies Capture);
    if (fd >= 0) {
      const ws = createWriteStream('', { fd, autoClose: true });
      cap.file = ws;
      ws.on('drain', () => writer.resume());
      ws.on('error', (err) => {
        cap.writeError = err.message;
        if (writer.stopped === null) writer.stop(`write error: ${err.message}`);
        cap.closed = true;
      });
      ws.on('close', () => (cap.closed = true));
    }
    this.active.set(id, cap);
    this.attach(cap);
    return this.info(cap);
  }

  private attach(c: Capture): void {
    if (c.bridge !== null) {
      c.bridge.taps = [...c.bridge.taps, c.tap];
      return;
    }
    const p = c.port!;
    if ((c.tap.directions & DIR_INGRESS) !== 0) p.ingressTaps = [...p.ingressTaps, c.tap];
    if ((c.tap.directions & DIR_EGRESS) !== 0) p.egressTaps = [...p.egressTaps, c.tap];
    p.updateHooked();
  }

  /** New arrays, never in-place edits: a loop of the data path may be iterating the old one. */
  private detach(c: Capture): void {
    if (c.bridge !== null) {
      c.bridge.taps = c.bridge.taps.filter((t) => t !== c.tap);
      return;
    }
    const p = c.port!;
    p.ingressTaps = p.ingressTaps.filter((t) => t !== c.tap);
    p.egressTaps = p.egressTaps.filter((t) => t !== c.tap);
    p.updateHooked();
  }

  private sink(c: Capture, chunk: Uint8Array): boolean {
    if (c.file !== null) return c.file.write(chunk);
    if (c.token === null) return true;
    c.inFlight += chunk.byteLength;
    const ab = chunk.buffer as ArrayBuffer;
    const whole = chunk.byteOffset === 0 && chunk.byteLength === ab.byteLength;
    const data = whole ? ab : chunk.slice().buffer;
    this.post({ type: 'capture_chunk', token: c.token, id: c.id, data }, [data]);
    return c.inFlight < STREAM_WINDOW;
  }

  /** The main thread handed `bytes` of a stream to its client. */
  ack(token: string, bytes: number): void {
    for (const c of this.active.values()) {
      if (c.token !== token) continue;
      c.inFlight = Math.max(0, c.inFlight - bytes);
      if (c.inFlight < STREAM_RESUME && c.writer.isBackpressured) c.writer.resume();
    }
  }

  private onWriterStop(c: Capture, reason: string): void {
    // Called from inside the data path when a limit is reached: detaching replaces arrays.
    this.detach(c);
    this.active.delete(c.id);
    this.finished.push(c);
    if (this.finished.length > MAX_FINISHED) this.finished.shift();
    if (c.file !== null) c.file.end();
    else {
      c.closed = true;
      if (c.token !== null) this.post({ type: 'capture_end', token: c.token, id: c.id, reason, info: this.info(c) });
    }
  }

  stop(id: number, reason = 'stopped by user'): CaptureInfo {
    const c = this.active.get(id);
    if (c === undefined) {
      const done = this.finished.find((f) => f.id === id);
      if (done !== undefined) return this.info(done);
      throw new ApiError(404, `no capture with id ${id}`);
    }
    c.writer.stop(reason);
    return this.info(c);
  }

  /** Stop the capture of a stream whose client went away. */
  stopStream(token: string, reason: string): void {
    for (const c of [...this.active.values()]) if (c.token === token) c.writer.stop(reason);
  }

  stopAll(reason: string): void {
    for (const c of [...this.active.values()]) c.writer.stop(reason);
  }

  get(id: number): CaptureInfo {
    const c = this.active.get(id) ?? this.finished.find((f) => f.id === id);
    if (c === undefined) throw new ApiError(404, `no capture with id ${id}`);
    return this.info(c);
  }

  list(): CaptureInfo[] {
    return [...this.finished, ...this.active.values()].sort((a, b) => a.id - b.id).map((c) => this.info(c));
  }

  /** Engine tick: hand staged records to the sinks; end captures past their duration. */
  tick(): void {
    if (this.active.size === 0) return;
    const now = performance.now();
    for (const c of [...this.active.values()]) {
      if (now >= c.deadline) c.writer.stop('duration reached');
      else c.writer.flush();
    }
  }

  private info(c: Capture): CaptureInfo {
    const stopped = c.writer.stopped;
    const target = c.bridge !== null ? `bridge:${c.bridge.name}` : c.port!.name;
    return {
      id: c.id,
      target,
      port: c.port?.name ?? null,
      bridge: c.bridge?.name ?? null,
      direction: c.direction,
      filter: c.req.filter ?? null,
      format: c.format,
      snaplen: c.req.snaplen,
      file: c.req.file ?? null,
      stream: c.token !== null,
      maxPackets: c.req.maxPackets ?? null,
      maxBytes: c.req.maxBytes ?? null,
      durationSeconds: c.req.durationSeconds ?? null,
      startedAt: new Date(c.startedAt).toISOString(),
      state: stopped === null ? 'running' : c.closed ? 'stopped' : 'stopping',
      stopReason: stopped,
      closed: c.closed,
      packets: c.writer.counters.packets,
      bytes: c.writer.counters.bytes,
      droppedBackpressure: c.writer.counters.droppedBackpressure,
      sees:
        c.bridge !== null
          ? COMMENT_BRIDGE
          : c.direction === 'both'
            ? `${COMMENT_INGRESS}; ${COMMENT_EGRESS}`
            : c.direction === 'ingress'
              ? COMMENT_INGRESS
              : COMMENT_EGRESS,
    };
  }
}
