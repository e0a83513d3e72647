/*
 * `tapbridge top`: a live terminal view of GET /v1/stats/live, redrawn once a second on the
 * alternate screen. Keys (raw mode): q or Ctrl-C quits, w toggles the rate window (~5 s /
 * last second). The terminal is restored on every exit path (q, Ctrl-C, SIGTERM, errors).
 * Without a terminal (or with --once) frames are printed as plain text.
 */
import { apiRequest } from '../control/client.js';
import type { LiveStats } from '../control/live.js';
import { renderTop } from './render.js';

const ALT_ON = '\x1b[?1049h';
const ALT_OFF = '\x1b[?1049l';
const CURSOR_OFF = '\x1b[?25l';
const CURSOR_ON = '\x1b[?25h';
const HOME = '\x1b[H';
const CLEAR_EOL = '\x1b[K';
const CLEAR_EOS = '\x1b[J';

export async function runTop(socket: string, opts: { once: boolean }): Promise<void> {
  const out = process.stdout;
  const frame = async (window: 1 | 5): Promise<string[]> => {
    const s = (await apiRequest(socket, 'GET', '/v1/stats/live')) as LiveStats;
    return renderTop(s, { width: out.columns || 200, height: out.rows || 10_000, window, socket });
  };

  if (opts.once || !out.isTTY) {
    if (opts.once) {
      out.write((await frame(5)).join('\n') + '\n');
      return;
    }
    // Not a terminal: one plain frame per second until interrupted.
    let stop = false;
    const onSig = () => (stop = true);
    process.once('SIGINT', onSig);
    process.once('SIGTERM', onSig);
    while (!stop) {
      out.write((await frame(5)).join('\n') + '\n\n');
      await new Promise((r) => setTimeout(r, 1000));
    }
    return;
  }

  const stdin = process.stdin;
  let window: 1 | 5 = 5;
  let done: () => void = () => {};
  const finished = new Promise<void>((r) => (done = r));
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    if (stdin.isTTY) stdin.setRawMode(false);
    stdin.pause();
    out.write(CURSOR_ON + ALT_OFF);
  };
  const quit = () => {
    restore();
    done();
  };
  process.on('exit', restore);
  process.once('SIGINT', quit);
  process.once('SIGTERM', quit);
  process.once('SIGHUP', quit);

  out.write(ALT_ON + CURSOR_OFF);
  if (stdin.isTTY) stdin.setRawMode(true);
  stdin.resume();
  let timer: NodeJS.Timeout | null = null;
  const draw = async () => {
    let lines: string[];
    try {
      lines = await frame(window);
    } catch (err) {
      lines = [`tapbridge top — ${socket}`, '', `cannot read statistics: ${(err as Error).message}`, 'retrying every second; q quits'];
    }
    if (restored) return;
    out.write(HOME + lines.map((l) => l + CLEAR_EOL).join('\n') + '\n' + CLEAR_EOS);
  };
  stdin.on('data', (d: Buffer) => {
    const k = d.toString('latin1');
    if (k === 'q' || k === 'Q' || k.includes('\x03') || k.includes('\x04')) quit();
    else if (k === 'w' || k === 'W') {
      window = window === 5 ? 1 : 5;
      void draw();
    }
  });
  const onResize = () => void draw();
  out.on('resize', onResize);
  const loop = async () => {
    await draw();
    if (!restored) timer = setTimeout(() => void loop(), 1000);
  };
  void loop();
  await finished;
  if (timer !== null) clearTimeout(timer);
  out.off('resize', onResize);
  process.off('exit', restore);
  process.off('SIGINT', quit);
  process.off('SIGTERM', quit);
  process.off('SIGHUP', quit);
}
