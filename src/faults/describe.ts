/*
 * One-line text of a fault spec: "loss 10%, delay 100ms±10ms, rate 10Mbit/s" (control plane).
 */
import type { FaultSpec } from './spec.js';

export function describeSpec(s: FaultSpec): string {
  const parts: string[] = [];
  if (s.down) parts.push('down');
  if (s.loss !== undefined) {
    if ('percent' in s.loss) parts.push(`loss ${s.loss.percent}%`);
    else parts.push(`loss GE(p=${s.loss.gilbertElliott.p},r=${s.loss.gilbertElliott.r})`);
  }
  if (s.delay !== undefined)
    parts.push(`delay ${s.delay.ms}ms${s.delay.jitterMs ? `±${s.delay.jitterMs}ms${s.delay.distribution && s.delay.distribution !== 'uniform' ? ` ${s.delay.distribution}` : ''}` : ''}`);
  if (s.reorder !== undefined) parts.push(`reorder ${s.reorder.percent}%${s.reorder.gapMs !== undefined ? ` gap ${s.reorder.gapMs}ms` : ''}`);
  if (s.duplicate !== undefined) parts.push(`duplicate ${s.duplicate.percent}%`);
  if (s.corrupt !== undefined) parts.push(`corrupt ${s.corrupt.percent}%${s.corrupt.fixChecksums ? ' (checksums fixed)' : ''}`);
  if (s.rate !== undefined) parts.push(`rate ${fmtRate(s.rate.bitsPerSecond)}`);
  if (s.dropEveryNth) parts.push(`drop every ${s.dropEveryNth}th`);
  if (s.dropFilter) parts.push(`drop '${s.dropFilter}'`);
  if (s.seed !== undefined) parts.push(`seed ${s.seed}`);
  return parts.length === 0 ? 'off' : parts.join(', ');
}

function fmtRate(bps: number): string {
  for (const [div, unit] of [
    [1e9, 'Gbit/s'],
    [1e6, 'Mbit/s'],
    [1e3, 'kbit/s'],
  ] as const)
    if (bps >= div) return `${+(bps / div).toFixed(3)}${unit}`;
  return `${bps}bit/s`;
}
