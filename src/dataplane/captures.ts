/*
 * Capture control (data-plane side): captures on a port (ingress, egress or both) or on a
 * whole bridge (every frame entering it), to a file or streamed to the control plane.
 *
 * Where a capture sees frames (stated in each pcapng record's comment), as capture elements
 * (src/trace/capture.ts) spliced into the links:
 *   port ingress  as received, before ingress faults  ("ingress, before faults")
 *   port egress   as sent, after egress faults         ("egress, after faults")
 *   bridge        at every input of the switch, after the ingress port's faults
 * Output: a CaptureWriter (src/trace/pcap.ts) whose sink is
 *   file    an fd the control plane opened (never this thread: opening a FIFO or a slow
 *           file system must not stall forwarding), written through an fs.WriteStream;
 *           'drain' resumes a backpressured writer;
 *   stream  chunks posted to the main thread ({type:'capture_chunk', token, data}, the
 *           ArrayBuffer transferred, not copied); the main thread acks bytes once they are
 *           handed to the HTTP client. More than STREAM_WINDOW unacked bytes backpressure the
 *           writer, which drops and counts (droppedBackpressure): memory stays bounded.
 * Flushing: staged records are handed to the sink on every engine tick and on stop.
 * Stop reasons: "max_packets reached", "max_bytes reached", "duration reached",
 *   "stopped by user", "client disconnected", "tapbridge stopping", "write error: ...".
 *   A stopped capture stays listed (the last MAX_FINISHED) with its reason; `closed` turns
 *   true once the file is completely written (or the stream ended).
 */
import { closeSync, createWriteStream, type WriteStream } from 'node:fs';
import { CaptureElement, CaptureTap } from '../trace/capture.js';
import { compileFilter, type PacketFilter } from '../trace/filter.js';
import { CaptureWriter } from '../trace/pcap.js';
import type { Element } from '../core/element.js';
import type { Switch } from '../switch/switch.js';
import type { Engine } from './engine.js';
import { ApiError } from './errors.js';
import { portEdge, RANK_CAPTURE_BRIDGE, RANK_CAPTURE_EGRESS, RANK_CAPTURE_INGRESS, type Direction, type FaultControl } from './faults.js';
import type { CaptureStartSpec } from './spec.js';

export const MAX_ACTIVE_CAPTURES = 16;
export const MAX_FINISHED = 32;
/** Unacknowledged stream bytes before the writer is backpressured. */
export const STREAM_WINDOW = 4 << 20;
/** Resume a backpressured stream below this many unacknowledged bytes. */
export const STREAM_RESUME = 1 << 20;

export const COMMENT_INGRESS = 'ingress, before faults';
export const COMMENT_EGRESS = 'egress, after faults';
export const COMMENT_BRIDGE = 'bridge input, after ingress faults';

/** Posts a message to the control plane (capture stream chunks). */
export type PostToMain = (message: unknown, transfer?: ArrayBuffer[]) => void;

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
  port: string | null;
  bridge: string | null;
  req: CaptureStartSpec;
  direction: Direction;
  format: 'pcap' | 'pcapng';
  writer: CaptureWriter;
  /** Capture element and the tap this capture has in it, per place. */
  places: { element: CaptureElement; tap: CaptureTap }[];
  file: WriteStream | null;
  token: string | null;
  inFlight: number;
  startedAt: number;
  deadline: number;
  closed: boolean;
}

export class CaptureControl {
  private readonly active = new Map<number, Capture>();
  private readonly finished: Capture[] = [];
  private nextId = 1;

  constructor(
    private readonly engine: Engine,
    private readonly faults: FaultControl,
    private readonly post: PostToMain,
  ) {
    engine.tickHooks.push(() => this.tick());
    engine.stopHooks.push(() => this.stopAll('tapbridge stopping'));
  }

  get activeCount(): number {
    return this.active.size;
  }

  start(req: CaptureStartSpec): CaptureInfo {
    try {
      return this.startOrThrow(req);
    } catch (err) {
      if (req.fd >= 0) closeSync(req.fd); // not ours to keep: the control plane opened it for this capture
      throw err;
    }
  }

  private startOrThrow(req: CaptureStartSpec): CaptureInfo {
    if (this.active.size >= MAX_ACTIVE_CAPTURES) throw new ApiError(409, `${MAX_ACTIVE_CAPTURES} captures are running already; stop one first`);
    let port: string | null = null;
    let bridge: Switch | null = null;
    let bridgeName: string | null = null;
    if (req.target.startsWith('bridge:') || (this.engine.device(req.target) === undefined && this.engine.switchOf(req.target) !== undefined)) {
      bridgeName = req.target.startsWith('bridge:') ? req.target.slice('bridge:'.length) : req.target;
      bridge = this.engine.switchOf(bridgeName) ?? null;
      if (bridge === null) throw new ApiError(404, `no bridge named '${bridgeName}'`);
      if (req.direction === 'egress') throw new ApiError(400, 'direction: a bridge capture sees frames entering the bridge; use ingress or both');
    } else port = this.faults.hookablePort(req.target).record.name;
    if (req.fd < 0 && req.streamToken === undefined) throw new ApiError(400, 'a capture needs a file or a stream');
    const format = req.format ?? (req.file?.toLowerCase().endsWith('.pcapng') ? 'pcapng' : 'pcap');
    let filter: PacketFilter | null = null;
    if (req.filter !== undefined && req.filter.trim() !== '') {
      try {
        filter = compileFilter(req.filter);
      } catch (err) {
        throw new ApiError(400, `filter: ${(err as Error).message}`);
      }
    }
    const id = this.nextId++;
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
          interfaces: [bridgeName ?? port!],
          comments: format === 'pcapng' ? comments : [],
          tsOffsetMs: Date.now() - performance.now(),
          onStop: (reason) => this.onWriterStop(cap, reason),
        },
        (chunk) => this.sink(cap, chunk),
      );
    } catch (err) {
      throw new ApiError(400, (err as Error).message);
    }
    const direction: Direction = bridge !== null ? 'ingress' : req.direction;
    Object.assign(cap, {
      id,
      port,
      bridge: bridgeName,
      req,
      direction,
      format,
      writer,
      places: [],
      file: null,
      token: req.streamToken ?? null,
      inFlight: 0,
      startedAt: Date.now(),
      deadline: req.durationSeconds !== undefined ? performance.now() + req.durationSeconds * 1000 : Infinity,
      closed: false,
    } satisfies Capture);
    if (req.fd >= 0) {
      const ws = createWriteStream('', { fd: req.fd, autoClose: true });
      cap.file = ws;
      ws.on('drain', () => writer.resume());
      ws.on('error', (err) => {
        if (writer.stopped === null) writer.stop(`write error: ${err.message}`);
        cap.closed = true;
      });
      ws.on('close', () => (cap.closed = true));
    }
    this.active.set(id, cap);
    const pcapng = format === 'pcapng';
    if (bridge !== null) {
      for (let i = 0; i < bridge.inputs.length; i++) {
        const at = this.engine.graph.edgeInto(bridge, i);
        if (at !== null) this.attach(cap, `tap/${bridgeName}/${bridge.inputs[i]}`, 'ingress', at, RANK_CAPTURE_BRIDGE, new CaptureTap(id, writer, filter, 0, pcapng ? 0 : -1));
      }
    } else {
      const device = this.faults.hookablePort(port!);
      if (direction !== 'egress') this.attach(cap, `tap/${port}/in`, 'ingress', portEdge(this.engine, device, 'ingress'), RANK_CAPTURE_INGRESS, new CaptureTap(id, writer, filter, 0, pcapng ? 0 : -1));
      if (direction !== 'ingress') this.attach(cap, `tap/${port}/out`, 'egress', portEdge(this.engine, device, 'egress'), RANK_CAPTURE_EGRESS, new CaptureTap(id, writer, filter, 0, pcapng ? 1 : -1));
    }
    return this.info(cap);
  }

  /** Add a tap at one place: into its capture element, splicing the element in when it is new. */
  private attach(c: Capture, name: string, direction: 'ingress' | 'egress', at: { from: Element; output: number }, rank: number, tap: CaptureTap): void {
    const graph = this.engine.graph;
    let el = graph.element(name) as CaptureElement | undefined;
    if (el === undefined) {
      el = new CaptureElement(name, this.engine.ctx, direction);
      graph.wrap(at.from, at.output, el, rank);
    }
    el.taps = [...el.taps, tap];
    c.places.push({ element: el, tap });
  }

  /** New arrays, never in-place edits: a loop of the data path may be iterating the old one. */
  private detach(c: Capture): void {
    for (const { element, tap } of c.places) {
      element.taps = element.taps.filter((t) => t !== tap);
      if (element.taps.length === 0) this.engine.graph.unwrap(element);
    }
    c.places = [];
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

  /** Stop the captures on one port (it is being removed). */
  stopPort(port: string, reason: string): void {
    for (const c of [...this.active.values()]) if (c.port === port) c.writer.stop(reason);
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
  private tick(): void {
    if (this.active.size === 0) return;
    const now = performance.now();
    for (const c of [...this.active.values()]) {
      if (now >= c.deadline) c.writer.stop('duration reached');
      else c.writer.flush();
    }
  }

  private info(c: Capture): CaptureInfo {
    const stopped = c.writer.stopped;
    return {
      id: c.id,
      target: c.bridge !== null ? `bridge:${c.bridge}` : c.port!,
      port: c.port,
      bridge: c.bridge,
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
      sees: c.bridge !== null ? COMMENT_BRIDGE : c.direction === 'both' ? `${COMMENT_INGRESS}; ${COMMENT_EGRESS}` : c.direction === 'ingress' ? COMMENT_INGRESS : COMMENT_EGRESS,
    };
  }
}
