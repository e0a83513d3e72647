/*
 * What scripts/fuzz.js and scripts/soak.js share: the compiled test helpers they run
 * (dist/test/helpers, built by `npm run fuzz` / `npm run soak` first), a prefixed printer,
 * and one lab's life: check root and /dev/net/tun, start it, warm it up, run, report a
 * failure, and always stop it and remove everything it made.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HELPERS = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'test', 'helpers');

/** Import dist/test/helpers/NAME.js for each name (exits 2 when the build is missing). */
export async function helpers(tool, ...names) {
  const out = {};
  for (const name of names) {
    const file = join(HELPERS, `${name}.js`);
    if (!existsSync(file)) {
      process.stderr.write(`${tool}: ${file} is missing: build first (npx tsc -p .)\n`);
      process.exit(2);
    }
    Object.assign(out, await import(file));
  }
  return out;
}

export const printer = (tool) => (line) => process.stdout.write(`${tool}: ${line}\n`);

/** 2 (and why, printed) when this machine cannot run labs (root, /dev/net/tun, iproute2), else null. */
export async function cannotRun(tool) {
  const { integrationSkipReason } = await helpers(tool, 'sys');
  const skip = integrationSkipReason();
  if (skip === null) return null;
  printer(tool)(`cannot run: ${skip}`);
  return 2;
}

/**
 * Start `lab`, warm it up, run `fn(baseline, lab)` (its result: an exit code); 1 when it throws,
 * 2 when the machine cannot run labs. The lab is stopped and cleaned up in every case.
 */
export async function withLab(tool, lab, fn) {
  const { cleanupAll, warmUp } = await helpers(tool, 'tapbridge', 'hostile');
  const no = await cannotRun(tool);
  if (no !== null) return no;
  try {
    await lab.start();
    return await fn(await warmUp(lab, tool), lab);
  } catch (err) {
    printer(tool)(`FAILED: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    await lab.stop().catch(() => undefined);
    await cleanupAll();
  }
}
