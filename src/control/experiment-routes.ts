/*
 * Control-API endpoints of the experiment features (HTTP + JSON on the control socket):
 *
 *   GET    /v1/faults                        every fault stage: spec, active, counters
 *   GET    /v1/ports/:port/faults            the port's fault stages
 *   POST   /v1/ports/:port/faults            set faults {"direction","merge",...spec | "spec":{}}
 *   DELETE /v1/ports/:port/faults            clear (?direction=ingress|egress|both, default both)
 *   GET    /v1/captures                      captures (running and recently stopped)
 *   POST   /v1/captures                      start {"target"|"port"|"bridge", "file"|"stream":true, ...}
 *                                            with "stream": true the answer IS the pcap stream
 *   GET    /v1/captures/:id                  one capture
 *   DELETE /v1/captures/:id                  stop it (answers once the file is complete)
 *   GET    /v1/stats/live                    counters, rates, table sizes, faults, captures
 *   GET    /metrics                          Prometheus text format
 *
 * Streaming: the worker posts capture chunks (transferred ArrayBuffers) tagged with a token;
 * they are written to the HTTP response and acknowledged back once handed to the socket,
 * which bounds what is in flight (the worker's writer drops and counts beyond its window).
 * The stop reason arrives as the HTTP trailer X-Capture-Stopped. A client that goes away
 * stops its capture ("client disconnected").
 * With `experiment.metrics.listen` a loopback-only TCP listener serves GET /metrics as well.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { DataPlaneWorker } from './dataplane-client.js';
import { CallError, httpCaller } from './dataplane-client.js';
import { HttpError, type Route } from './server.js';
import { LiveStatsSource } from './live.js';
import { MetricsExporter } from './metrics.js';
import type { CaptureInfo } from '../dataplane/captures.js';
import type { Config } from '../config/schema.js';
import { captureStartParams, faultSetParams, parseDirection } from './experiment-requests.js';

interface StreamEntry {
  res: ServerResponse;
  ready: boolean;
  pending: ArrayBuffer[];
  ended: boolean;
  endMsg: { reason: string; info: CaptureInfo } | null;
}

class StreamHub {
  private readonly streams = new Map<string, StreamEntry>();

  constructor(private readonly dp: DataPlaneWorker) {}

  register(token: string, res: ServerResponse): StreamEntry {
    const e: StreamEntry = { res, ready: false, pending: [], ended: false, endMsg: null };
    this.streams.set(token, e);
    res.on('close', () => {
      this.streams.delete(token);
      if (!e.ended) this.dp.post({ type: 'capture_client_gone', token, reason: 'client disconnected' } as { type: string });
    });
    return e;
  }

  unregister(token: string): void {
    this.streams.delete(token);
  }

  /** Headers are out: write what arrived meanwhile. */
  ready(token: string): void {
    const e = this.streams.get(token);
    if (e === undefined) return;
    e.ready = true;
    for (const ab of e.pending.splice(0)) this.write(token, e, ab);
    if (e.endMsg !== null) this.end(e, e.endMsg);
  }

  private write(token: string, e: StreamEntry, ab: ArrayBuffer): void {
    const bytes = ab.byteLength;
    e.res.write(Buffer.from(ab), () => this.dp.post({ type: 'capture_ack', token, bytes } as { type: string }));
  }

  private end(e: StreamEntry, m: { reason: string; info: CaptureInfo }): void {
    e.ended = true;
    e.res.addTrailers({
      'X-Capture-Stopped': m.reason,
      'X-Capture-Packets': String(m.info.packets),
      'X-Capture-Dropped': String(m.info.droppedBackpressure),
    });
    e.res.end();
  }

  handle(m: { type: string; token?: string; data?: ArrayBuffer; reason?: string; info?: CaptureInfo }): void {
    if (m.token === undefined) return;
    const e = this.streams.get(m.token);
    if (e === undefined) {
      // the client is gone: keep the worker's window open so it is not stuck
      if (m.type === 'capture_chunk' && m.data !== undefined) this.dp.post({ type: 'capture_ack', token: m.token, bytes: m.data.byteLength } as { type: string });
      return;
    }
    if (m.type === 'capture_chunk' && m.data !== undefined) {
      if (e.ready) this.write(m.token, e, m.data);
      else e.pending.push(m.data);
    } else if (m.type === 'capture_end') {
      const msg = { reason: m.reason ?? 'stopped', info: m.info! };
      if (e.ready) this.end(e, msg);
      else e.endMsg = msg;
    }
  }
}

function listenAddress(s: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(s)!;
  return { host: m[1] ?? m[2], port: Number(m[3]) };
}

export function experimentRoutes(dp: DataPlaneWorker, cfg: Pick<Config, 'experiment'> = {}): Route[] {
  const call = httpCaller(dp);
  const hub = new StreamHub(dp);
  dp.onMessage = (m) => hub.handle(m);
  const live = new LiveStatsSource(dp);
  live.start();
  const exporter = new MetricsExporter();
  let scrape: Promise<unknown> = Promise.resolve();
  const metricsText = (): Promise<string> => {
    const next = scrape.then(async () => exporter.render(await live.collect()));
    scrape = next.catch(() => undefined);
    return next;
  };

  let metricsServer: Server | null = null;
  const prevExit = dp.onExit;
  dp.onExit = (code) => {
    live.stop();
    metricsServer?.close();
    metricsServer = null;
    prevExit(code);
  };
  void Promise.resolve(cfg.experiment?.metrics?.listen)
    .then((listen) => {
      if (listen === undefined) return;
      const { host, port } = listenAddress(listen);
      const srv = createServer((req, res) => {
        const path = (req.url ?? '/').split('?')[0];
        if (req.method !== 'GET' || path !== '/metrics') {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n');
          return;
        }
        metricsText().then(
          (text) => res.writeHead(200, { 'content-type': exporter.contentType }).end(text),
          (err: Error) => res.writeHead(503, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
        );
      });
      srv.on('error', (err) => dp.log.error({ err: err.message, listen }, 'metrics listener failed'));
      srv.listen(port, host, () => dp.log.info({ listen: `http://${listen}/metrics` }, 'Prometheus metrics listener started'));
      srv.unref();
      metricsServer = srv;
    })
    .catch(() => {});

  const captureId = (s: string): number => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1) throw new HttpError(400, `not a capture id: '${s}'`);
    return n;
  };

  return [
    { method: 'GET', path: '/v1/faults', summary: 'fault stages of every port and direction: spec, active, counters', handler: () => call('faults') },
    { method: 'GET', path: '/v1/ports/:port/faults', summary: "a port's fault stages", handler: (c) => call('faults', { port: c.params.port }) },
    {
      method: 'POST',
      path: '/v1/ports/:port/faults',
      summary:
        'set faults: {"direction":"ingress|egress|both", "loss":{"percent":10}, "delay":{"ms":100,"jitterMs":10}, "rate":{"bitsPerSecond":"10mbit"}, ...}; replaces the spec unless "merge":true (null removes one fault)',
      handler: (c) => call('faults_set', faultSetParams(c.params.port, c.body)),
    },
    {
      method: 'DELETE',
      path: '/v1/ports/:port/faults',
      summary: 'clear faults (?direction=ingress|egress|both, default both)',
      handler: (c) => call('faults_clear', { port: c.params.port, direction: parseDirection(c.query.get('direction') ?? c.body.direction) }),
    },
    { method: 'GET', path: '/v1/captures', summary: 'captures, running and recently stopped (with the stop reason)', handler: () => call('captures') },
    {
      method: 'POST',
      path: '/v1/captures',
      summary:
        'start a capture: {"target":"red"|"bridge:br0", "file":"/abs/path.pcap[ng]" | "stream":true, "direction","filter","snaplen","maxPackets","maxBytes","format","durationSeconds"}; with stream the answer is the pcap byte stream',
      handler: async (c) => {
        if (c.body.stream !== true) {
          if (c.body.streamToken !== undefined) throw new HttpError(400, "unknown field 'streamToken'");
          return call('capture_start', { ...captureStartParams(c.body, { directory: cfg.experiment?.captureDirectory }) });
        }
        const token = randomUUID();
        const { stream: _s, ...rest } = c.body;
        const params = captureStartParams({ ...rest, streamToken: token }, { directory: cfg.experiment?.captureDirectory });
        hub.register(token, c.res);
        let info: CaptureInfo;
        try {
          info = (await call('capture_start', { ...params })) as CaptureInfo;
        } catch (err) {
          hub.unregister(token);
          throw err;
        }
        c.res.writeHead(200, {
          'content-type': info.format === 'pcapng' ? 'application/x-pcapng' : 'application/vnd.tcpdump.pcap',
          'x-capture-id': String(info.id),
          'cache-control': 'no-store',
          trailer: 'X-Capture-Stopped, X-Capture-Packets, X-Capture-Dropped',
        });
        c.res.flushHeaders();
        hub.ready(token);
        return undefined;
      },
    },
    { method: 'GET', path: '/v1/captures/:id', summary: 'one capture', handler: (c) => call('capture', { id: captureId(c.params.id) }) },
    {
      method: 'DELETE',
      path: '/v1/captures/:id',
      summary: 'stop a capture; answers when its file is complete',
      handler: async (c) => {
        const id = captureId(c.params.id);
        let info = (await call('capture_stop', { id })) as CaptureInfo;
        for (let i = 0; i < 100 && !info.closed; i++) {
          await new Promise((r) => setTimeout(r, 50));
          info = (await call('capture', { id })) as CaptureInfo;
        }
        return info;
      },
    },
    {
      method: 'GET',
      path: '/v1/stats/live',
      summary: 'ports and bridges with counters and rates (pps, bit/s over ~5 s and ~1 s), MAC-table, neighbour and conntrack sizes, faults, captures',
      handler: async () => {
        try {
          return await live.collect();
        } catch (err) {
          if (err instanceof CallError) throw new HttpError(err.status, err.message);
          throw err;
        }
      },
    },
    {
      method: 'GET',
      path: '/metrics',
      summary: 'Prometheus text format (tapbridge_port_rx_packets_total, ..._drops_total{reason}, tapbridge_fault_events_total, ...)',
      handler: async (c) => {
        let text: string;
        try {
          text = await metricsText();
        } catch (err) {
          if (err instanceof CallError) throw new HttpError(err.status, err.message);
          throw err;
        }
        c.res.writeHead(200, { 'content-type': exporter.contentType, 'content-length': Buffer.byteLength(text) });
        c.res.end(text);
        return undefined;
      },
    },
  ];
}
