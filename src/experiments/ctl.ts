/* `tapbridge ctl` subcommands of the experiment features. Filled in by issue 4. */
import type { Command } from 'commander';

export interface CtlHelpers {
  /** Wraps an action: resolves the socket, reports errors. */
  run: <A extends unknown[]>(fn: (sock: string, opts: { json?: boolean }, ...args: A) => Promise<void>) => (...args: A) => Promise<void>;
}

export function registerExperimentCtl(_ctl: Command, _program: Command, _h: CtlHelpers): void {}
