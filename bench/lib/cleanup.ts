/*
 * Teardown registry for benchmark runs: everything a run creates registers an undo step
 * (LIFO). `runCleanups()` is called from the run's `finally` and from the SIGINT/SIGTERM
 * handler, so an interrupted or failing run leaves no namespaces or processes behind.
 * Each step is bounded (its own commands carry timeouts) and errors are collected, not thrown.
 */
import { killAll } from './proc.js';

type Step = { what: string; fn: () => Promise<void> | void };

const steps: Step[] = [];
let running: Promise<string[]> | null = null;

/** Register an undo step; returns a function that runs it now (and unregisters it). */
export function onCleanup(what: string, fn: () => Promise<void> | void): () => Promise<void> {
  const step: Step = { what, fn };
  steps.push(step);
  return async () => {
    const i = steps.indexOf(step);
    if (i < 0) return;
    steps.splice(i, 1);
    await fn();
  };
}

/** Run every registered step, newest first. Returns the problems (never throws). */
export function runCleanups(): Promise<string[]> {
  running ??= (async () => {
    const problems: string[] = [];
    while (steps.length > 0) {
      const s = steps.pop()!;
      try {
        await s.fn();
      } catch (err) {
        problems.push(`${s.what}: ${(err as Error).message}`);
      }
    }
    killAll();
    running = null;
    return problems;
  })();
  return running;
}

/** On SIGINT/SIGTERM: clean up, then exit 130/143. A second signal during teardown is ignored. */
export function installSignalHandlers(log: (msg: string) => void = (m) => process.stderr.write(m + '\n')): void {
  let got = false;
  const handler = (sig: NodeJS.Signals) => {
    if (got) return;
    got = true;
    log(`\n${sig}: cleaning up ...`);
    void runCleanups().then((problems) => {
      for (const p of problems) log(`cleanup: ${p}`);
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}
