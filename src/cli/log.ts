/* Logger: pino, JSON by default, pretty on a TTY or with --pretty. */
import { pino, type Logger, type Level } from 'pino';
import pretty from 'pino-pretty';

export function makeLogger(opts: { level?: string; pretty?: boolean }): Logger {
  const level = (opts.level ?? 'info') as Level;
  const usePretty = opts.pretty ?? process.stdout.isTTY === true;
  if (usePretty) return pino({ level, base: undefined }, pretty({ colorize: process.stdout.isTTY === true, sync: true, ignore: 'pid,hostname' }));
  return pino({ level, base: { pid: process.pid } });
}
