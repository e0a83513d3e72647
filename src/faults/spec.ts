/*
 * What a fault stage can be asked to do (FaultSpec, as the API and the config file give it)
 * and its validation into plain numbers. A RangeError names the field; nothing is applied
 * from a spec that fails.
 */
import { defaultBurst, defaultQueueLimit } from './token-bucket.js';

export interface FaultSpec {
  seed?: number;
  loss?: { percent: number } | { gilbertElliott: { p: number; r: number; lossGood?: number; lossBad?: number } };
  delay?: { ms: number; jitterMs?: number; distribution?: 'uniform' | 'normal' | 'pareto' };
  reorder?: { percent: number; gapMs?: number };
  duplicate?: { percent: number };
  corrupt?: { percent: number; fixChecksums?: boolean; maxBits?: number };
  rate?: { bitsPerSecond: number; burstBytes?: number; queueLimitBytes?: number };
  dropEveryNth?: number;
  dropFilter?: string;
  down?: boolean;
}

export interface FaultCounters {
  passed: number;
  lossDrops: number;
  nthDrops: number;
  filterDrops: number;
  rateDrops: number;
  downDrops: number;
  delayed: number;
  reordered: number;
  duplicated: number;
  corrupted: number;
  enqueued: number;
  released: number;
  queueFullDrops: number;
  queued: number;
}

/** A validated spec: probabilities 0..1, times in ms, sizes in bytes. */
export interface FaultParams {
  seed: number | null;
  down: boolean;
  dropFilter: string;
  everyNth: number;
  lossP: number;
  ge: { p: number; r: number; lossGood: number; lossBad: number } | null;
  duplicateP: number;
  corruptP: number;
  corruptFix: boolean;
  corruptMaxBits: number;
  rateBitsPerSecond: number;
  rateBurst: number;
  rateQueueLimit: number;
  delayMs: number;
  jitterMs: number;
  distribution: 'uniform' | 'normal' | 'pareto';
  reorderP: number;
  reorderGapMs: number;
}

const MAX_MS = 3_600_000;

function num(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new RangeError(`${field}: expected a number in ${min}..${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function percent(v: unknown, field: string): number {
  return num(v, field, 0, 100) / 100;
}

export function validateFaultSpec(s: FaultSpec): FaultParams {
  const p: FaultParams = {
    seed: s.seed !== undefined ? num(s.seed, 'seed', 0, Number.MAX_SAFE_INTEGER) : null,
    down: s.down === true,
    dropFilter: '',
    everyNth: s.dropEveryNth !== undefined ? Math.floor(num(s.dropEveryNth, 'dropEveryNth', 0, 2 ** 31)) : 0,
    lossP: 0,
    ge: null,
    duplicateP: s.duplicate !== undefined ? percent(s.duplicate.percent, 'duplicate.percent') : 0,
    corruptP: 0,
    corruptFix: false,
    corruptMaxBits: 1,
    rateBitsPerSecond: 0,
    rateBurst: 0,
    rateQueueLimit: 0,
    delayMs: 0,
    jitterMs: 0,
    distribution: 'uniform',
    reorderP: 0,
    reorderGapMs: 10,
  };
  if (s.loss !== undefined) {
    if ('percent' in s.loss) p.lossP = percent(s.loss.percent, 'loss.percent');
    else if ('gilbertElliott' in s.loss && s.loss.gilbertElliott) {
      const g = s.loss.gilbertElliott;
      p.ge = {
        p: num(g.p, 'loss.gilbertElliott.p', 0, 1),
        r: num(g.r, 'loss.gilbertElliott.r', 0, 1),
        lossGood: num(g.lossGood ?? 0, 'loss.gilbertElliott.lossGood', 0, 1),
        lossBad: num(g.lossBad ?? 1, 'loss.gilbertElliott.lossBad', 0, 1),
      };
    } else throw new RangeError('loss: expected { percent } or { gilbertElliott: { p, r } }');
  }
  if (s.delay !== undefined) {
    p.delayMs = num(s.delay.ms, 'delay.ms', 0, MAX_MS);
    p.jitterMs = num(s.delay.jitterMs ?? 0, 'delay.jitterMs', 0, MAX_MS);
    const d = s.delay.distribution ?? 'uniform';
    if (d !== 'uniform' && d !== 'normal' && d !== 'pareto') throw new RangeError(`delay.distribution: expected 'uniform', 'normal' or 'pareto', got ${JSON.stringify(d)}`);
    p.distribution = d;
  }
  if (s.reorder !== undefined) {
    p.reorderP = percent(s.reorder.percent, 'reorder.percent');
    p.reorderGapMs = num(s.reorder.gapMs ?? 10, 'reorder.gapMs', 0, MAX_MS);
  }
  if (s.corrupt !== undefined) {
    p.corruptP = percent(s.corrupt.percent, 'corrupt.percent');
    p.corruptFix = s.corrupt.fixChecksums === true;
    p.corruptMaxBits = Math.floor(num(s.corrupt.maxBits ?? 1, 'corrupt.maxBits', 1, 64));
  }
  if (s.rate !== undefined) {
    const bps = num(s.rate.bitsPerSecond, 'rate.bitsPerSecond', 1, 1e13);
    p.rateBitsPerSecond = bps;
    p.rateBurst = num(s.rate.burstBytes ?? defaultBurst(bps), 'rate.burstBytes', 1, 2 ** 40);
    p.rateQueueLimit = num(s.rate.queueLimitBytes ?? defaultQueueLimit(bps), 'rate.queueLimitBytes', 0, 2 ** 40);
  }
  if (s.dropFilter !== undefined) {
    if (typeof s.dropFilter !== 'string') throw new RangeError('dropFilter: expected a filter expression string');
    p.dropFilter = s.dropFilter.trim();
  }
  return p;
}
