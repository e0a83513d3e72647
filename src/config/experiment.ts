/*
 * The `experiment:` config section (faults, captures and the metrics listener declared in
 * the file, applied at start) and the request schemas of the experiment API (the same
 * field rules, so the file and `ctl` report problems the same way, naming the field):
 *
 *   experiment:
 *     faults:                       # one entry per port and direction
 *       - { port: red, direction: ingress, loss: { percent: 10 }, delay: { ms: 50 }, seed: 7 }
 *     captures:
 *       - { port: red, file: /tmp/red.pcapng, direction: both, filter: icmp, maxPackets: 1000 }
 *     metrics: { listen: "127.0.0.1:9464" }
 *
 * Filters are compiled here, so a syntax error is reported with its field path; rates and
 * sizes take numbers or units ("10mbit", "64k"). Cross references (port and bridge names,
 * capture directories, one fault entry per port+direction) are checked by
 * `checkExperiment`, which the config loader calls with the whole config.
 */
import { z } from 'zod';
import { existsSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { compileFilter } from '../trace/filter.js';
import type { FaultSpec } from '../faults/spec.js';
import { parseRate, parseSize } from './units.js';

const percent = z.number().min(0, 'a percentage: 0..100').max(100, 'a percentage: 0..100');
const probability = z.number().min(0, 'a probability: 0..1').max(1, 'a probability: 0..1');
const millis = z.number().min(0, 'milliseconds: 0..3600000').max(3_600_000, 'milliseconds: 0..3600000');

/** A filter expression (filter.ts syntax), compiled to catch syntax errors. */
export const filterExpr = z.string().superRefine((s, ctx) => {
  try {
    compileFilter(s);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `bad filter expression: ${(err as Error).message}` });
  }
});

/** bits/s: a number or a string with units ("10mbit", "1.5gbit", "100kbit"). */
export const rateValue = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n = typeof v === 'number' ? v : parseRate(v);
  if (n === null || !Number.isFinite(n) || n < 1 || n > 1e13) {
    ctx.addIssue({ code: 'custom', message: `expected a rate in bits/s (1..1e13, or e.g. "10mbit"), got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return n;
});

/** Bytes: a number or a string with units ("64k" = KiB, "1MB", "1MiB"). */
export const sizeValue = (min: number) =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    const n = typeof v === 'number' ? v : parseSize(v);
    if (n === null || !Number.isInteger(n) || n < min || n > 2 ** 40) {
      ctx.addIssue({ code: 'custom', message: `expected a size in bytes (${min}..2^40, or e.g. "64k"), got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return n;
  });

export const directionSchema = z.enum(['ingress', 'egress', 'both'], { error: "expected 'ingress', 'egress' or 'both'" });
export type Direction = z.output<typeof directionSchema>;

/** FaultSpec (src/faults/faults.ts) as zod fields. Absent field = that fault off. */
export const faultSpecShape = {
  seed: z.number().int('an integer').min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  loss: z
    .strictObject({
      percent: percent.optional(),
      gilbertElliott: z
        .strictObject({ p: probability, r: probability, lossGood: probability.optional(), lossBad: probability.optional() })
        .optional(),
    })
    .superRefine((l, ctx) => {
      if ((l.percent === undefined) === (l.gilbertElliott === undefined))
        ctx.addIssue({ code: 'custom', message: 'give either percent or gilbertElliott {p, r}' });
    })
    .optional(),
  delay: z
    .strictObject({ ms: millis, jitterMs: millis.optional(), distribution: z.enum(['uniform', 'normal', 'pareto']).optional() })
    .optional(),
  reorder: z.strictObject({ percent, gapMs: millis.optional() }).optional(),
  duplicate: z.strictObject({ percent }).optional(),
  corrupt: z
    .strictObject({ percent, fixChecksums: z.boolean().optional(), maxBits: z.number().int().min(1).max(64).optional() })
    .optional(),
  rate: z
    .strictObject({ bitsPerSecond: rateValue, burstBytes: sizeValue(1).optional(), queueLimitBytes: sizeValue(0).optional() })
    .optional(),
  dropEveryNth: z.number().int().min(0).max(2 ** 31).optional(),
  dropFilter: filterExpr.optional(),
  down: z.boolean().optional(),
};
export const faultSpecSchema = z.strictObject(faultSpecShape);
export type FaultSpecInput = z.output<typeof faultSpecSchema>;

export const faultEntrySchema = z.strictObject({
  /** Port name (as in bridges[].ports[].name, or `uplink`). */
  port: z.string().min(1),
  direction: directionSchema,
  ...faultSpecShape,
});

const captureShape = {
  /** Port name, or `bridge` for every frame entering a bridge. */
  port: z.string().min(1).optional(),
  bridge: z.string().min(1).optional(),
  direction: directionSchema.default('both'),
  filter: filterExpr.optional(),
  snaplen: z.number().int().min(1, 'snaplen: 1..262144').max(262144, 'snaplen: 1..262144').default(262144),
  maxPackets: z.number().int().min(1).optional(),
  maxBytes: sizeValue(64).optional(),
  /** Default: pcapng for a .pcapng file, else pcap. */
  format: z.enum(['pcap', 'pcapng']).optional(),
  durationSeconds: z.number().positive().max(1e7).optional(),
  /** Truncate a file that exists (default: refuse it). */
  overwrite: z.boolean().default(false),
};

function oneTarget(c: { port?: string; bridge?: string }, ctx: z.RefinementCtx): void {
  if ((c.port === undefined) === (c.bridge === undefined))
    ctx.addIssue({ code: 'custom', path: ['port'], message: 'give either port or bridge' });
}

export const captureEntrySchema = z
  .strictObject({
    ...captureShape,
    /** Output file; relative paths are resolved against the directory tapbridge starts in. */
    file: z
      .string()
      .min(1)
      .transform((f) => resolve(f)),
  })
  .superRefine(oneTarget);

/** Body of POST /v1/captures as the worker sees it (the route adds `streamToken`). */
export const captureRequestSchema = z
  .strictObject({
    ...captureShape,
    /** A port or bridge name; "bridge:NAME" for a bridge. Alternative to port/bridge. */
    target: z.string().min(1).optional(),
    file: z
      .string()
      .min(1)
      .refine((f) => isAbsolute(f), 'must be an absolute path (ctl resolves relative ones)')
      .optional(),
    stream: z.boolean().optional(),
    streamToken: z.string().min(1).optional(),
  })
  .superRefine((c, ctx) => {
    const targets = [c.target, c.port, c.bridge].filter((x) => x !== undefined).length;
    if (targets !== 1) ctx.addIssue({ code: 'custom', path: ['target'], message: 'give exactly one of target, port or bridge' });
    if ((c.file === undefined) === (c.streamToken === undefined))
      ctx.addIssue({ code: 'custom', path: ['file'], message: 'give either file (an absolute path) or stream: true' });
  });

function isLoopbackListen(s: string): boolean {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(s);
  if (m === null) return false;
  const host = m[1] ?? m[2];
  const port = Number(m[3]);
  return (host === '127.0.0.1' || host === '::1' || host === 'localhost') && port >= 1 && port <= 65535;
}

export const metricsSchema = z.strictObject({
  /** Prometheus listener on loopback only: "127.0.0.1:9464" (or "[::1]:9464"). */
  listen: z.string().refine(isLoopbackListen, 'expected 127.0.0.1:PORT, [::1]:PORT or localhost:PORT (loopback only)'),
});

export const experimentSchema = z.strictObject({
  /** Capture files (from the file and the API) must be inside this directory. */
  captureDirectory: z
    .string()
    .refine((d) => isAbsolute(d), 'must be an absolute path')
    .optional(),
  faults: z.array(faultEntrySchema).default([]),
  captures: z.array(captureEntrySchema).default([]),
  metrics: metricsSchema.optional(),
});
export type ExperimentConfig = z.output<typeof experimentSchema>;
export type FaultEntry = z.output<typeof faultEntrySchema>;
export type CaptureEntry = z.output<typeof captureEntrySchema>;
export type CaptureRequest = z.output<typeof captureRequestSchema>;

/** The parsed zod form -> FaultSpec (drops undefined fields and the entry's port/direction). */
export function toFaultSpec(f: FaultSpecInput): FaultSpec {
  const spec: FaultSpec = {};
  if (f.seed !== undefined) spec.seed = f.seed;
  if (f.loss !== undefined) spec.loss = f.loss.gilbertElliott !== undefined ? { gilbertElliott: f.loss.gilbertElliott } : { percent: f.loss.percent! };
  if (f.delay !== undefined) spec.delay = f.delay;
  if (f.reorder !== undefined) spec.reorder = f.reorder;
  if (f.duplicate !== undefined) spec.duplicate = f.duplicate;
  if (f.corrupt !== undefined) spec.corrupt = f.corrupt;
  if (f.rate !== undefined) spec.rate = f.rate;
  if (f.dropEveryNth !== undefined) spec.dropEveryNth = f.dropEveryNth;
  if (f.dropFilter !== undefined) spec.dropFilter = f.dropFilter;
  if (f.down !== undefined) spec.down = f.down;
  return JSON.parse(JSON.stringify(spec)) as FaultSpec;
}

/** "a.b[0].c: message; ..." from a zod error (for API answers). */
export function zodProblems(err: z.ZodError, prefix = ''): string {
  return err.issues
    .map((i) => {
      let path = prefix;
      for (const k of i.path) path += typeof k === 'number' ? `[${k}]` : path === '' ? String(k) : `.${String(k)}`;
      const msg = i.code === 'unrecognized_keys' ? `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `'${k}'`).join(', ')}` : i.message;
      return path === '' ? msg : `${path}: ${msg}`;
    })
    .join('; ');
}

/** The parts of the whole config the cross checks need (structural, to avoid an import cycle). */
interface ConfigView {
  bridges: { name: string; ports: { name: string }[] }[];
  uplink?: unknown;
  experiment?: ExperimentConfig;
}

/**
 * Cross references of the experiment section: ports and bridges exist, one fault entry per
 * port and direction, capture directories exist, no file written twice.
 */
export function checkExperiment(cfg: ConfigView, issue: (path: (string | number)[], message: string) => void): void {
  const ex = cfg.experiment;
  if (ex === undefined) return;
  const ports = new Set(cfg.bridges.flatMap((b) => b.ports.map((p) => p.name)));
  if (cfg.uplink !== undefined) ports.add('uplink');
  const bridges = new Set(cfg.bridges.map((b) => b.name));
  const portList = [...ports].join(', ');
  const seen = new Map<string, number>();
  ex.faults.forEach((f, i) => {
    if (!ports.has(f.port)) {
      issue(['experiment', 'faults', i, 'port'], `no port named '${f.port}' (ports: ${portList})`);
      return;
    }
    const dirs = f.direction === 'both' ? ['ingress', 'egress'] : [f.direction];
    for (const d of dirs) {
      const key = `${f.port}/${d}`;
      const other = seen.get(key);
      if (other !== undefined) issue(['experiment', 'faults', i, 'direction'], `${f.port} ${d} already has faults in experiment.faults[${other}]: combine them in one entry`);
      seen.set(key, i);
    }
  });
  const files = new Map<string, number>();
  ex.captures.forEach((c, i) => {
    if (c.port !== undefined && !ports.has(c.port)) issue(['experiment', 'captures', i, 'port'], `no port named '${c.port}' (ports: ${portList})`);
    if (c.bridge !== undefined && !bridges.has(c.bridge)) issue(['experiment', 'captures', i, 'bridge'], `no bridge named '${c.bridge}'`);
    const dir = dirname(c.file);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) issue(['experiment', 'captures', i, 'file'], `directory ${dir} does not exist`);
    const other = files.get(c.file);
    if (other !== undefined) issue(['experiment', 'captures', i, 'file'], `${c.file} is also written by experiment.captures[${other}]`);
    const root = ex.captureDirectory;
    if (root !== undefined && !(c.file === root || c.file.startsWith(root.endsWith('/') ? root : `${root}/`)))
      issue(['experiment', 'captures', i, 'file'], `${c.file} is outside experiment.captureDirectory ${root}`);
    files.set(c.file, i);
  });
}
