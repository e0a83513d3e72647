/*
 * Logger: pino, JSON by default, pretty on a TTY or with --pretty.
 * Both write synchronously: nothing is buffered, so there is no flush at exit — pino's
 * default (asynchronous) destination flushes with a loop that retries a write on a broken
 * pipe forever, which hung the stop whenever the reader of stdout had gone. A broken pipe
 * (EPIPE) turns logging off instead; other write errors are dropped with the line.
 */
import { pino, type Logger, type Level } from 'pino';
import pretty from 'pino-pretty';

export function makeLogger(opts: { level?: string; pretty?: boolean }): Logger {
  const level = (opts.level ?? 'info') as Level;
  const usePretty = opts.pretty ?? process.stdout.isTTY === true;
  if (usePretty) return pino({ level, base: undefined }, pretty({ colorize: process.stdout.isTTY === true, sync: true, ignore: 'pid,hostname' }));
  const dest = pino.destination({ dest: 1, sync: true });
  dest.on('error', () => {}); // EPIPE: pino already made the stream a no-op; anything else: the line is lost, the process goes on
  return pino({ level, base: { pid: process.pid } }, dest);
}
