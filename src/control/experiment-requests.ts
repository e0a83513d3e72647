/*
 * Requests of the experiment endpoints, checked on the control plane against the config's
 * schemas (src/config/experiment.ts) before the data plane sees them: fault specs (with
 * `merge`, null removes one fault) and capture starts, whose file the control plane opens
 * itself (capture-files.ts) and hands over as an fd. Errors are HttpError 400 naming the
 * field, the same messages the config file gets.
 */
import type { Config } from '../config/schema.js';
import { captureRequestSchema, directionSchema, faultSpecSchema, toFaultSpec, zodProblems } from '../config/experiment.js';
import type { CaptureStartSpec } from '../dataplane/spec.js';
import { CaptureFileError, openCaptureFile } from './capture-files.js';
import { HttpError } from './server.js';

/** Body of a fault request -> data-plane params {port, direction, spec, merge}. */
export function faultSetParams(port: string, body: Record<string, unknown>): Record<string, unknown> {
  const { direction, merge, spec, ...rest } = body;
  const m = merge === true;
  return { port, direction: parseDirection(direction), merge: m, spec: parseSpec(spec ?? rest, m) };
}

export function parseDirection(v: unknown): 'ingress' | 'egress' | 'both' {
  if (v === undefined || v === null) return 'both';
  const r = directionSchema.safeParse(v);
  if (!r.success) throw new HttpError(400, `direction: expected 'ingress', 'egress' or 'both', got ${JSON.stringify(v)}`);
  return r.data;
}

/** Validate a spec (or, with merge, a patch where null removes a fault). */
export function parseSpec(v: unknown, merge: boolean): Record<string, unknown> {
  if (v === undefined) v = {};
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new HttpError(400, "'spec' must be an object of faults, e.g. {\"loss\": {\"percent\": 10}}");
  const removals: string[] = [];
  const given: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(v)) {
    if (val === null && merge) removals.push(k);
    else given[k] = val;
  }
  const r = faultSpecSchema.safeParse(given);
  if (!r.success) throw new HttpError(400, zodProblems(r.error));
  const spec: Record<string, unknown> = { ...toFaultSpec(r.data) };
  for (const k of removals) {
    if (!Object.hasOwn(faultSpecSchema.shape, k)) throw new HttpError(400, `unknown field '${k}'`);
    spec[k] = null;
  }
  return spec;
}

type CaptureFields = Pick<CaptureStartSpec, 'direction' | 'filter' | 'snaplen' | 'maxPackets' | 'maxBytes' | 'format' | 'durationSeconds'> & { file?: string; overwrite?: boolean };

/** A validated capture (request or config entry) with its file opened. */
function captureStart(target: string, c: CaptureFields, fd: number, streamToken?: string): CaptureStartSpec {
  const { direction, filter, snaplen, maxPackets, maxBytes, format, durationSeconds, file } = c;
  return { target, direction, fd, file, streamToken, filter, snaplen, maxPackets, maxBytes, format, durationSeconds };
}

/** Open a capture's file as asked (overwrite) inside the configured capture directory. */
function openFile(c: CaptureFields & { file: string }, directory: string | undefined): number {
  return openCaptureFile(c.file, { directory, overwrite: c.overwrite === true });
}

/** Body of POST /v1/captures (the route adds `streamToken` for a stream) -> a CaptureStartSpec with the file opened. */
export function captureStartParams(body: Record<string, unknown>, opts: { directory?: string } = {}): CaptureStartSpec {
  const r = captureRequestSchema.safeParse(body);
  if (!r.success) throw new HttpError(400, zodProblems(r.error));
  const c = r.data;
  let fd = -1;
  if (c.file !== undefined) {
    try {
      fd = openFile({ ...c, file: c.file }, opts.directory);
    } catch (err) {
      if (err instanceof CaptureFileError) throw new HttpError(400, `file: ${err.message}`);
      throw err;
    }
  }
  return captureStart(c.target ?? (c.bridge !== undefined ? `bridge:${c.bridge}` : c.port!), c, fd, c.streamToken);
}

/** The config's experiment captures, their files opened (at start; errors name the entry). */
export function openExperimentCaptures(cfg: Config): CaptureStartSpec[] {
  return (cfg.experiment?.captures ?? []).map((c, i) => {
    try {
      return captureStart(c.bridge !== undefined ? `bridge:${c.bridge}` : c.port!, c, openFile(c, cfg.experiment?.captureDirectory));
    } catch (err) {
      throw new Error(`experiment.captures[${i}].file: ${(err as Error).message}`);
    }
  });
}
