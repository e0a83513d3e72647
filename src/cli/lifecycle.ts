/*
 * The stop side of `tapbridge run`: stop requests and bounded, logged teardown.
 *
 *   StopRequest  SIGINT/SIGTERM handlers, installed before the first resource is created.
 *                The first signal (or a data-plane crash, via request()) resolves `stopped`;
 *                setup awaits checkpoint() between its steps, which yields to the event loop
 *                (so a pending signal is seen) and throws SetupAborted once a stop was asked
 *                for. Later signals are absorbed (and logged): teardown is never cut short.
 *   runSteps     teardown as named steps, run in order, each with a time limit; every step
 *                is logged with its duration ({step, ms}), a late or failing one at warn
 *                level, and the next step starts anyway. Synchronous steps cannot be cut
 *                off: they bound themselves (every `ip` call has a timeout).
 *
 * Exit codes of `tapbridge run` (README, CLI): 0 stopped cleanly (also when a signal came
 * during setup), 70 the data plane died, 2 bad config, 1 any other error.
 */
import type { Logger } from 'pino';

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_CONFIG = 2;
/** EX_SOFTWARE (sysexits.h): the data plane died of an internal error. */
export const EXIT_DATAPLANE_CRASH = 70;

export type StopReason = { kind: 'signal'; signal: NodeJS.Signals } | { kind: 'crash'; message: string } | { kind: 'error'; message: string };

/** Thrown by StopRequest.checkpoint() when a stop was asked for during setup. */
export class SetupAborted extends Error {
  constructor(readonly reason: StopReason) {
    super(`setup aborted: ${describeStop(reason)}`);
    this.name = 'SetupAborted';
  }
}

export function describeStop(r: StopReason): string {
  return r.kind === 'signal' ? r.signal : r.kind === 'crash' ? `data-plane crash (${r.message})` : `setup failed (${r.message})`;
}

export class StopRequest {
  reason: StopReason | null = null;
  readonly stopped: Promise<StopReason>;
  private resolve: (r: StopReason) => void = () => {};
  private readonly onSignal = (signal: NodeJS.Signals) => {
    if (this.reason !== null) {
      this.log.info({ signal }, 'already stopping; signal ignored');
      return;
    }
    this.request({ kind: 'signal', signal });
  };

  constructor(private readonly log: Logger) {
    this.stopped = new Promise((r) => (this.resolve = r));
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  /** Ask for a stop (the first reason wins). */
  request(reason: StopReason): void {
    if (this.reason !== null) return;
    this.reason = reason;
    this.resolve(reason);
  }

  /** Between setup steps: let pending signals in, then throw SetupAborted if a stop was asked for. */
  readonly checkpoint = async (): Promise<void> => {
    await new Promise<void>((r) => setImmediate(r));
    if (this.reason !== null) throw new SetupAborted(this.reason);
  };

  /** Remove the signal handlers (only when the process is about to exit). */
  dispose(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }
}

export interface TeardownStep {
  step: string;
  /** Longest wait for this step; the next one starts after it even if this one is still running. */
  timeoutMs: number;
  run: () => unknown;
}

/** Run the steps in order, bounded and logged. Returns the problems (late or failed steps). */
export async function runSteps(log: Logger, steps: TeardownStep[]): Promise<string[]> {
  const problems: string[] = [];
  for (const s of steps) {
    const t0 = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), s.timeoutMs)));
    let outcome: unknown;
    try {
      outcome = await Promise.race([Promise.resolve().then(s.run), late]);
    } catch (err) {
      outcome = err instanceof Error ? err : new Error(String(err));
    } finally {
      clearTimeout(timer);
    }
    const ms = Math.round(performance.now() - t0);
    if (outcome === 'late') {
      problems.push(`${s.step}: not done after ${s.timeoutMs} ms`);
      log.warn({ step: s.step, ms, timeoutMs: s.timeoutMs }, 'teardown step timed out; going on');
    } else if (outcome instanceof Error) {
      problems.push(`${s.step}: ${outcome.message}`);
      log.warn({ step: s.step, ms, err: outcome.message }, 'teardown step failed; going on');
    } else {
      const problemsOfStep = Array.isArray(outcome) ? (outcome as unknown[]).map(String) : [];
      problems.push(...problemsOfStep);
      log[problemsOfStep.length > 0 ? 'warn' : 'info']({ step: s.step, ms, ...(problemsOfStep.length > 0 ? { problems: problemsOfStep } : {}) }, 'teardown step done');
    }
  }
  return problems;
}
